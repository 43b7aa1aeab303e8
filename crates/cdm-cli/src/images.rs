//! Image data for a run: `digits`, `mnist:DIR`, `fashion-mnist:DIR`, `cifar10:DIR`,
//! `folder:DIR`, split into training and held-out images and reshaped for the UNet.

use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use cdm_data::{ColorMode, ImageDataset, Split};

use crate::config::DataConfig;

/// Whether `dataset` names an image data set (rather than a toy or a CSV of points).
pub fn is_image_dataset(dataset: &str) -> bool {
    dataset == "digits" || ["mnist:", "fashion-mnist:", "cifar10:", "folder:"].iter().any(|p| dataset.starts_with(p))
}

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

/// Loads `cfg.dataset` (see [`is_image_dataset`]) with `cfg`'s upsampling and padding.
///
/// Data sets with a test split hold out (up to `n_validation` of) its images; `digits` and
/// folders hold out a seeded `min(n_validation, N/5)` of theirs. `n_train` caps the training
/// images.
pub fn load_images(cfg: &DataConfig) -> Result<ImageData> {
    let name = cfg.dataset.as_str();
    let (train, validation, flip) = if name == "digits" {
        let all = cdm_data::load_digits()?;
        let (t, v) = split(&all, cfg)?;
        (t, v, false)
    } else if let Some(dir) = name.strip_prefix("mnist:").or_else(|| name.strip_prefix("fashion-mnist:")) {
        let dir = Path::new(dir);
        let t = cdm_data::load_idx_dir(dir, Split::Train).with_context(|| format!("{name}: training split"))?;
        let v = cdm_data::load_idx_dir(dir, Split::Test).with_context(|| format!("{name}: test split"))?;
        (t, v, false)
    } else if let Some(dir) = name.strip_prefix("cifar10:") {
        let dir = Path::new(dir);
        let t = cdm_data::load_cifar10_dir(dir, Split::Train).with_context(|| format!("{name}: training batches"))?;
        let v = cdm_data::load_cifar10_dir(dir, Split::Test).with_context(|| format!("{name}: test batch"))?;
        (t, v, true)
    } else if let Some(dir) = name.strip_prefix("folder:") {
        let side = cfg.image_size.unwrap_or(32) as u32;
        let color = match cfg.channels.unwrap_or(3) {
            3 => ColorMode::Rgb,
            1 => ColorMode::Grayscale,
            c => bail!("data.channels = {c}: expected 1 or 3"),
        };
        let all = cdm_data::load_image_folder(Path::new(dir), (side, side), color)
            .with_context(|| format!("reading {name}"))?;
        let (t, v) = split(&all, cfg)?;
        (t, v, true)
    } else {
        bail!("{name:?} is not an image data set");
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

/// Writes `x` (B, C, H, W) in `[−1, 1]` as a PNG grid of `columns` images, each pixel drawn as
/// a `scale × scale` block, with a 1-block grey gutter: `p = round(127.5·(x + 1))` clipped to
/// 0–255.
pub fn write_grid(path: &Path, x: &Tensor, columns: usize, scale: usize) -> Result<(u32, u32)> {
    let (b, c, h, w) = x.dims4().context("image grid: expected (B, C, H, W) samples")?;
    if c != 1 && c != 3 {
        bail!("image grid: {c} channels (expected 1 or 3)");
    }
    let values = x.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
    let columns = columns.clamp(1, b.max(1));
    let rows = b.div_ceil(columns);
    let (cell_w, cell_h) = ((w + 1) * scale, (h + 1) * scale);
    let (width, height) = ((columns * cell_w + scale) as u32, (rows * cell_h + scale) as u32);
    let mut img = image::RgbImage::from_pixel(width, height, image::Rgb([128, 128, 128]));
    let to_byte = |v: f32| (127.5 * (v + 1.0)).round().clamp(0.0, 255.0) as u8;
    for k in 0..b {
        let (x0, y0) = ((k % columns) * cell_w + scale, (k / columns) * cell_h + scale);
        for y in 0..h * scale {
            for xx in 0..w * scale {
                let (py, px) = (y / scale, xx / scale);
                let at = |ch: usize| to_byte(values[((k * c + ch) * h + py) * w + px]);
                let rgb = if c == 1 { [at(0); 3] } else { [at(0), at(1), at(2)] };
                img.put_pixel((x0 + xx) as u32, (y0 + y) as u32, image::Rgb(rgb));
            }
        }
    }
    img.save(path).with_context(|| format!("writing {}", path.display()))?;
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ModelSpec, RunConfig};

    #[test]
    fn image_configs_parse_and_name_image_data_sets() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for name in ["digits-mse.toml", "digits-cdl-finetune.toml", "cifar10-cdl-finetune.toml"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let cfg: RunConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(is_image_dataset(&cfg.data.dataset), "{name}");
            cfg.train.validate().unwrap();
            if name.starts_with("digits") {
                assert!(matches!(cfg.model, ModelSpec::Unet(_)), "{name}");
            }
        }
        let cdl: RunConfig =
            toml::from_str(&std::fs::read_to_string(dir.join("cifar10-cdl-finetune.toml")).unwrap()).unwrap();
        let c = cdl.objective.cdl.unwrap();
        assert_eq!(c.proposal.map(|p| (p.loc, p.scale, p.clip)), Some((4.0, 4.0, 3.0)));
        assert!(!is_image_dataset("dino") && !is_image_dataset("csv:digits.csv"));
    }

    #[test]
    fn digits_are_split_and_shaped() {
        let cfg = DataConfig { dataset: "digits".into(), n_validation: 100, pad_to: Some(16), ..Default::default() };
        let d = load_images(&cfg).unwrap();
        assert_eq!(d.shape(), [1, 16, 16]);
        assert_eq!((d.train.len(), d.validation.len()), (1697, 100));
        assert!(!d.random_flip);
        let up = load_images(&DataConfig { upsample: Some(2), pad_to: None, ..cfg }).unwrap();
        assert_eq!(up.shape(), [1, 16, 16]);
    }
}
