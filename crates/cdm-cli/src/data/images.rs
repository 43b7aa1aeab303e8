//! Image data of a run: `digits`, `mnist:DIR`, `fashion-mnist:DIR`, `cifar10:DIR`,
//! `folder:DIR` and (with the `hub` feature) `hub:NAME`, split into training and held-out images
//! and reshaped for the UNet, as a [`RunData`].

use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use cdm_core::GaussianBase;
use cdm_data::{ColorMode, ImageDataset, Split};
use cdm_objectives::{WeightedSum, ZetaDistribution};
use cdm_train::BatchSource;

use super::grid::write_grid;
use super::run_data::{Measurement, RunData};
use super::sample_files::write_samples;
use crate::config::{DataConfig, ModelSpec, ObjectiveConfig, SampleConfig};
use crate::dataset::DatasetSpec;
use crate::objective::assemble_objective;

/// Most rows per denoiser call for the UNet (its activations are large).
pub const ROWS_PER_CALL: usize = 256;
/// Images the Gaussian base is fitted to.
const BASE_IMAGES: usize = 1024;
/// Smallest per-pixel variance of the base: constant pixels (padding, borders) would otherwise
/// give log λ ≈ −28 and drag the log-SNR proposal far into the noise-free end.
const MIN_PIXEL_VARIANCE: f64 = 1e-2;
/// Held-out images of the validation loss.
const VALIDATION_IMAGES: usize = 64;
/// Pixels are drawn as `GRID_SCALE × GRID_SCALE` blocks in the sample grid.
const GRID_SCALE: usize = 4;

/// Training and held-out images, as the model sees them.
pub struct ImageData {
    /// Training images.
    pub train: ImageDataset,
    /// Held-out images (validation loss, MMD).
    pub validation: ImageDataset,
    /// Random horizontal flips of training batches.
    pub random_flip: bool,
}

impl ImageData {
    /// `[C, H, W]` of every image.
    pub fn shape(&self) -> [usize; 3] {
        self.train.shape()
    }

    /// The first `n` held-out images (all if `n` is 0 or too large) as a tensor in `[−1, 1]`.
    pub fn validation_tensor(&self, n: usize, device: &Device) -> Result<Tensor> {
        let n = if n == 0 { self.validation.len() } else { n.min(self.validation.len()) };
        let idx: Vec<usize> = (0..n).collect();
        Ok(self.validation.to_tensor(&idx, &[], DType::F32, device)?)
    }
}

/// Loads an image data set with `cfg`'s upsampling and padding.
///
/// Data sets with a test split (`mnist:`, `fashion-mnist:`, `cifar10:` and their `hub:` twins)
/// hold out (up to `n_validation` of) its images; `digits`, folders and `hub:OWNER/NAME` hold out
/// a seeded `min(n_validation, N/5)` of theirs. `n_train` caps the training images.
pub fn load_images(cfg: &DataConfig) -> Result<ImageData> {
    let name = &cfg.dataset;
    let (train, validation, flip) = match name {
        DatasetSpec::Digits => {
            let (t, v) = split(&cdm_data::load_digits()?, cfg)?;
            (t, v, false)
        }
        DatasetSpec::Idx(_, dir) => {
            let t = cdm_data::load_idx_dir(dir, Split::Train).with_context(|| format!("{name}: training split"))?;
            let v = cdm_data::load_idx_dir(dir, Split::Test).with_context(|| format!("{name}: test split"))?;
            (t, v, false)
        }
        DatasetSpec::Cifar10(dir) => {
            let t =
                cdm_data::load_cifar10_dir(dir, Split::Train).with_context(|| format!("{name}: training batches"))?;
            let v = cdm_data::load_cifar10_dir(dir, Split::Test).with_context(|| format!("{name}: test batch"))?;
            (t, v, true)
        }
        DatasetSpec::Folder(dir) => {
            let side = cfg.image_size.unwrap_or(32) as u32;
            let color = match cfg.channels.unwrap_or(3) {
                3 => ColorMode::Rgb,
                1 => ColorMode::Grayscale,
                c => bail!("data.channels = {c}: expected 1 or 3"),
            };
            let all =
                cdm_data::load_image_folder(dir, (side, side), color).with_context(|| format!("reading {name}"))?;
            let (t, v) = split(&all, cfg)?;
            (t, v, true)
        }
        DatasetSpec::Hub(hub) => load_hub(name, hub, cfg)?,
        points => bail!("{points} is not an image data set"),
    };
    let train = cap(train, cfg.n_train)?;
    let validation = cap(validation, cfg.n_validation)?;
    let pad = cfg.pad_to;
    let shape = |d: ImageDataset| -> Result<ImageDataset> {
        let d = match cfg.upsample {
            Some(f) if f != 1 => d.upsample(f)?,
            _ => d,
        };
        Ok(match pad {
            Some(side) => d.pad_to(side, side)?,
            None => d,
        })
    };
    let (train, validation) = (shape(train)?, shape(validation)?);
    if train.len() < 2 || validation.len() < 2 {
        bail!("dataset {name}: need at least 2 training and 2 held-out images");
    }
    Ok(ImageData { train, validation, random_flip: cfg.random_flip.unwrap_or(flip) })
}

/// Training and held-out images of `hub:NAME` (`name` is the whole spec), and whether to flip them:
/// the named data sets' train and test splits (CIFAR-10 flipped), or a seeded hold-out of an
/// `OWNER/NAME` train split (flipped when it has colour).
#[cfg(feature = "hub")]
fn load_hub(name: &DatasetSpec, hub: &str, cfg: &DataConfig) -> Result<(ImageDataset, ImageDataset, bool)> {
    use cdm_data::HubDataset;
    let dataset: HubDataset = hub.parse()?;
    let source = cdm_data::Hub::from_env()?;
    let load = |split| source.load(&dataset, split);
    Ok(match &dataset {
        HubDataset::Parquet { .. } => {
            let all = load(Split::Train).with_context(|| format!("{name}: train split"))?;
            let (t, v) = split(&all, cfg)?;
            let colour = all.shape()[0] == 3;
            (t, v, colour)
        }
        _ => {
            let t = load(Split::Train).with_context(|| format!("{name}: train split"))?;
            let v = load(Split::Test).with_context(|| format!("{name}: test split"))?;
            (t, v, matches!(dataset, HubDataset::Cifar10))
        }
    })
}

/// Without the `hub` feature, `hub:` data sets parse (so configs read back) but do not load.
#[cfg(not(feature = "hub"))]
fn load_hub(name: &DatasetSpec, _hub: &str, _cfg: &DataConfig) -> Result<(ImageDataset, ImageDataset, bool)> {
    bail!(
        "dataset {name}: this `cdm` was built without the `hub` feature; rebuild with `--features hub` \
         (e.g. `cargo xtask train --features hub -- --dataset {name} …`)"
    )
}

/// A seeded hold-out of `min(n_validation, N/5)` images (at least 2), the rest for training.
fn split(all: &ImageDataset, cfg: &DataConfig) -> Result<(ImageDataset, ImageDataset)> {
    let order = all.shuffled_indices(cfg.seed, 0);
    let held = cfg.n_validation.min(all.len() / 5).max(2).min(all.len().saturating_sub(2));
    let (v, t) = order.split_at(held);
    Ok((all.subset(t)?, all.subset(v)?))
}

/// The first `n` images (all if `n` is 0 or larger than the set).
fn cap(d: ImageDataset, n: usize) -> Result<ImageDataset> {
    if n == 0 || n >= d.len() {
        return Ok(d);
    }
    Ok(d.subset(&(0..n).collect::<Vec<_>>())?)
}

/// The diagonal Gaussian base of the pixels of (up to) [`BASE_IMAGES`] training images, with
/// variances clamped below at [`MIN_PIXEL_VARIANCE`].
fn pixel_base(data: &ImageData, seed: u64) -> Result<GaussianBase> {
    let n = data.train.len().min(BASE_IMAGES);
    let x = data.train.batch(0, n, seed, false, DType::F64, &Device::Cpu)?;
    let mean = x.mean_keepdim(0)?;
    let var = (x.broadcast_sub(&mean)?.sqr()?.sum(0)? / (n - 1) as f64)?;
    let log_lambda: Vec<f64> =
        var.flatten_all()?.to_vec1::<f64>()?.into_iter().map(|v| v.max(MIN_PIXEL_VARIANCE).ln()).collect();
    Ok(GaussianBase::from_log_eigenvalues(log_lambda)?)
}

impl RunData for ImageData {
    fn sample_shape(&self) -> Vec<usize> {
        self.shape().to_vec()
    }

    fn rows_per_call(&self) -> usize {
        ROWS_PER_CALL
    }

    fn describe(&self) -> String {
        let [c, h, w] = self.shape();
        format!("{} training and {} held-out images of {c}×{h}×{w}", self.train.len(), self.validation.len())
    }

    fn fit_model(&self, spec: ModelSpec, from_diffusers: bool) -> Result<ModelSpec> {
        let [c, h, w] = self.shape();
        let ModelSpec::Unet(mut u) = spec else {
            bail!("image data sets need the UNet (`--model unet` or [model] kind = \"unet\")");
        };
        if u.in_channels != c || u.out_channels != c {
            if from_diffusers {
                bail!("the diffusers UNet has {} input channels, the images {c}", u.in_channels);
            }
            u.in_channels = c;
            u.out_channels = c;
        }
        let factor = 1usize << u.block_out_channels.len().saturating_sub(1);
        if !h.is_multiple_of(factor) || !w.is_multiple_of(factor) {
            bail!("{h}×{w} images: the UNet needs sides divisible by {factor} (set data.pad_to or data.upsample)");
        }
        if u.sample_size.is_none() {
            u.sample_size = Some(if h == w {
                cdm_models::SampleSize::Square(h)
            } else {
                cdm_models::SampleSize::Rectangular([h, w])
            });
        }
        Ok(ModelSpec::Unet(u))
    }

    /// ζ ~ logistic(10.5, 1.5) clipped at 3 (ζ ∈ [6, 15], the authors' image setting) unless
    /// configured; the log-SNR proposal from the pixel base.
    fn objective(&self, cfg: &ObjectiveConfig, batch_size: usize, seed: u64) -> Result<WeightedSum> {
        assemble_objective(cfg, pixel_base(self, seed)?, batch_size, |_| ZetaDistribution::images())
    }

    fn batches<'a>(
        &'a self,
        batch_size: usize,
        grad_accumulation: usize,
        seed: u64,
        device: &'a Device,
    ) -> Result<Box<dyn BatchSource + 'a>> {
        let (train, flip, accumulation) = (&self.train, self.random_flip, grad_accumulation as u64);
        Ok(Box::new(move |step: u64, micro: usize| -> cdm_train::Result<Tensor> {
            train
                .batch(step * accumulation + micro as u64, batch_size, seed, flip, DType::F32, device)
                .map_err(|e| candle_core::Error::Msg(format!("image batch {step}: {e}")).into())
        }))
    }

    fn validation(&self, device: &Device) -> Result<Tensor> {
        self.validation_tensor(VALIDATION_IMAGES, device)
    }

    fn save(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }

    /// Writes `samples.npy`, `samples.png` (a grid, pixels ×[`GRID_SCALE`]) and `data.png` (as
    /// many held-out images); the pixel-space MMD² to `cfg.mmd_reference` held-out images (0:
    /// all) uses the median heuristic on the held-out images alone, so every run on one data
    /// set is scored with the same kernel.
    fn measure(&self, out: &Path, x: &Tensor, cfg: &SampleConfig, _title: &str) -> Result<Measurement> {
        let samples = write_samples(out, "samples", x)?;
        let n = x.dim(0)?;
        let columns = (n as f64).sqrt().ceil() as usize;
        let plot = out.join("samples.png");
        write_grid(&plot, x, columns, GRID_SCALE)?;
        write_grid(&out.join("data.png"), &self.validation_tensor(n, &Device::Cpu)?, columns, GRID_SCALE)?;
        let held = self.validation_tensor(cfg.mmd_reference, &Device::Cpu)?;
        let dim = samples.dim();
        let y = held.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let bandwidth = cdm_metrics::median_heuristic(&y, dim)?;
        let mmd = if n >= 2 { Some(cdm_metrics::mmd2(samples.data(), &y, dim, bandwidth)?) } else { None };
        Ok(Measurement {
            mmd,
            bandwidth,
            bandwidth_rule: "median heuristic on held-out images",
            reference: held.dim(0)?,
            fresh: None,
            plot: Some(plot),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelSpec, RunConfig};
    use crate::dataset::DataKind;

    #[test]
    fn image_configs_parse_and_name_image_data_sets() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for name in ["digits-mse.toml", "digits-cdl-finetune.toml", "cifar10-cdl-finetune.toml"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let cfg = RunConfig::from_toml(&text, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(cfg.data.dataset.kind(), DataKind::Images, "{name}");
            cfg.train.validate().unwrap();
            if name.starts_with("digits") {
                assert!(matches!(cfg.model, ModelSpec::Unet(_)), "{name}");
            }
        }
        let cdl = RunConfig::from_toml(&std::fs::read_to_string(dir.join("cifar10-cdl-finetune.toml")).unwrap(), None)
            .unwrap();
        let c = cdl.objective.cdl.unwrap();
        assert_eq!(c.proposal.map(|p| (p.loc, p.scale, p.clip)), Some((4.0, 4.0, 3.0)));
    }

    #[cfg(not(feature = "hub"))]
    #[test]
    fn hub_data_sets_say_how_to_get_the_feature() {
        let cfg = DataConfig { dataset: "hub:fashion-mnist".parse().unwrap(), ..Default::default() };
        let message = format!("{:#}", load_images(&cfg).err().unwrap());
        assert!(
            message.contains("dataset hub:fashion-mnist: this `cdm` was built without the `hub` feature"),
            "{message}"
        );
        assert!(message.contains("cargo xtask train --features hub"), "{message}");
    }

    #[test]
    fn digits_are_split_and_shaped() {
        let cfg =
            DataConfig { dataset: DatasetSpec::Digits, n_validation: 100, pad_to: Some(16), ..Default::default() };
        let d = load_images(&cfg).unwrap();
        assert_eq!(d.shape(), [1, 16, 16]);
        assert_eq!((d.train.len(), d.validation.len()), (1697, 100));
        assert!(!d.random_flip);
        let up = load_images(&DataConfig { upsample: Some(2), pad_to: None, ..cfg }).unwrap();
        assert_eq!(up.shape(), [1, 16, 16]);
    }
}
