//! FID and KID of generated images against a data set's images, for `cdm eval` and
//! `cdm reproduce fashion-mnist` (docs/fid.md).
//!
//! Images in the model's `[−1, 1]` are first quantised to 8 bits, `p = round(127.5·(x + 1))`
//! clipped to 0–255 (what saving them as PNG would give; a data set's own images come back
//! exactly), then fed to the FID Inception network as `p / 255`. The reference side is fitted
//! once: its features (cached in a safetensors file, since 10 000 images take half an hour on
//! two cores) and their Gaussian for the FID.
//!
//! | quantity | definition |
//! |---|---|
//! | FID | ‖μ_g − μ_r‖² + tr(Σ_g + Σ_r − 2(Σ_g Σ_r)^½) of the pool features; biased upwards at small n |
//! | KID | mean over 100 subset pairs of the unbiased cubic-kernel MMD² (torch-fidelity's defaults); unbiased at every n |

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use cdm_metrics::fid::{self, FeatureStats, InceptionV3, KidOptions};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

/// Images per Inception call.
const BATCH: usize = 16;

/// FID and KID of one image set.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageScore {
    /// Fréchet Inception Distance.
    pub fid: f64,
    /// Kernel Inception Distance (mean over subsets).
    pub kid: f64,
    /// SD of KID over its subsets.
    pub kid_subset_sd: f64,
    /// Images scored.
    pub n: usize,
    /// Reference images.
    pub reference: usize,
}

/// The Inception network and the reference side of every score.
pub struct FidScorer {
    net: InceptionV3,
    reference: Vec<f64>,
    stats: FeatureStats,
    progress: bool,
}

impl FidScorer {
    /// Loads the network from `weights` (default: `cargo xtask fetch-fid`'s path) and the
    /// features of `reference` (N, C, H, W in `[−1, 1]`), read from `cache` when it holds
    /// features of as many images and dimensions, else computed and written there.
    pub fn new(
        weights: Option<&Path>,
        reference: impl FnOnce() -> Result<Tensor>,
        cache: &Path,
        device: &Device,
        progress: bool,
    ) -> Result<Self> {
        let net = fid::load_network(weights, device)?;
        let reference = reference()?;
        let n = reference.dim(0)?;
        let dim = net.feature_dim();
        let reference = match read_features(cache, n, dim) {
            Some(f) => {
                tracing::info!(cache = %cache.display(), n, "reference features cached");
                f
            }
            None => {
                let f = features(&net, &reference, "reference features", progress)?;
                write_features(cache, &f, n, dim)?;
                f
            }
        };
        let stats = FeatureStats::fit(&reference, dim)?;
        Ok(Self { net, reference, stats, progress })
    }

    /// Pool features of `images` (N, C, H, W in `[−1, 1]`), row-major.
    pub fn features(&self, images: &Tensor, what: &str) -> Result<Vec<f64>> {
        features(&self.net, images, what, self.progress)
    }

    /// FID and KID of `features` (rows of the network's width) against the reference;
    /// `seed` draws KID's subsets.
    pub fn score(&self, features: &[f64], seed: u64) -> Result<ImageScore> {
        let dim = self.net.feature_dim();
        let fid = fid::frechet_distance(&FeatureStats::fit(features, dim)?, &self.stats)?;
        let kid = fid::kid(features, &self.reference, dim, &KidOptions { seed, ..Default::default() })?;
        Ok(ImageScore {
            fid,
            kid: kid.mean,
            kid_subset_sd: kid.std,
            n: features.len() / dim,
            reference: self.reference.len() / dim,
        })
    }

    /// Features and score of `images` in one call.
    pub fn score_images(&self, images: &Tensor, what: &str, seed: u64) -> Result<ImageScore> {
        self.score(&self.features(images, what)?, seed)
    }
}

/// 8-bit quantisation of `[−1, 1]` images to the network's `[0, 1]`.
fn quantised(images: &Tensor) -> Result<Tensor> {
    let bytes = ((images.to_dtype(DType::F32)? + 1.0)? * 127.5)?.round()?.clamp(0.0, 255.0)?;
    // A true division, as PyTorch's `x / 255`: multiplying by 1/255 is off by an ulp for some bytes.
    Ok(bytes.broadcast_div(&Tensor::new(255f32, images.device())?)?)
}

fn features(net: &InceptionV3, images: &Tensor, what: &str, progress: bool) -> Result<Vec<f64>> {
    let n = images.dim(0).context("FID: expected (N, C, H, W) images")?;
    let bar = if progress { ProgressBar::new(n as u64) } else { ProgressBar::hidden() };
    let style = ProgressStyle::with_template("{spinner} {msg} {bar:30} {pos}/{len} images [{elapsed_precise}<{eta}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_string());
    let started = std::time::Instant::now();
    let mut out = Vec::with_capacity(n * net.feature_dim());
    for start in (0..n).step_by(BATCH) {
        let chunk = quantised(&images.narrow(0, start, BATCH.min(n - start))?)?;
        out.extend(fid::features(net, &chunk, BATCH)?);
        bar.set_position((start + BATCH).min(n) as u64);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(what, n, seconds, images_per_second = n as f64 / seconds, "Inception features");
    Ok(out)
}

/// Cached features, if `path` holds `n × dim` of them.
fn read_features(path: &Path, n: usize, dim: usize) -> Option<Vec<f64>> {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu).ok()?;
    let f = tensors.get("features")?;
    (f.dims() == [n, dim]).then(|| f.to_dtype(DType::F64).ok()?.flatten_all().ok()?.to_vec1().ok())?
}

/// Writes features through a temporary file, so an interrupted run leaves no partial cache.
fn write_features(path: &Path, features: &[f64], n: usize, dim: usize) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let t = Tensor::from_slice(features, (n, dim), &Device::Cpu)?.to_dtype(DType::F32)?;
    let tmp = PathBuf::from(format!("{}.partial", path.display()));
    candle_core::safetensors::save(&std::collections::HashMap::from([("features".to_string(), t)]), &tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data set's own images come back exactly: byte k ↦ x = k/127.5 − 1 ↦ k/255.
    #[test]
    fn quantisation_returns_the_bytes_of_real_images() {
        let bytes: Vec<f32> = (0..=255).map(|k| k as f32).collect();
        let x = Tensor::from_slice(&bytes, (1, 1, 16, 16), &Device::Cpu).unwrap().affine(1.0 / 127.5, -1.0).unwrap();
        let q = quantised(&x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (k, v) in q.iter().enumerate() {
            assert_eq!(*v, k as f32 / 255.0);
        }
        let out = Tensor::new(&[[[[-3.0f32, 2.0]]]], &Device::Cpu).unwrap();
        assert_eq!(quantised(&out).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(), [0.0, 1.0]);
    }

    #[test]
    fn the_feature_cache_is_read_back_only_at_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/features.safetensors");
        let f: Vec<f64> = (0..12).map(|i| i as f64 * 0.5).collect();
        write_features(&path, &f, 3, 4).unwrap();
        assert_eq!(read_features(&path, 3, 4), Some(f));
        assert_eq!(read_features(&path, 4, 3), None);
        assert_eq!(read_features(&dir.path().join("missing"), 3, 4), None);
    }
}
