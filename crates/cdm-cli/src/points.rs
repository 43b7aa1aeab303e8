//! Point-cloud data for a run: a toy or a CSV file, split and standardised.

use anyhow::{Context, Result};
use cdm_data::{PointCloud, Standardizer, Toy};

use crate::config::DataConfig;

/// Training and held-out points, in the model's units.
pub struct PointData {
    /// Training points.
    pub train: PointCloud,
    /// Held-out points (validation loss, MMD).
    pub validation: PointCloud,
    /// The column standardisation applied to both, if any.
    pub standardizer: Option<Standardizer>,
}

/// Loads `cfg.dataset`: a toy name, or `csv:PATH`.
pub fn load_points(cfg: &DataConfig) -> Result<PointData> {
    if crate::images::is_image_dataset(&cfg.dataset) {
        anyhow::bail!(
            "{} is an image data set: this command takes point runs (sample image runs with `cdm sample`)",
            cfg.dataset
        );
    }
    let (train, validation) = match cfg.dataset.strip_prefix("csv:") {
        Some(path) => {
            let all = cdm_data::read_csv(std::path::Path::new(path))?;
            let fraction = (cfg.n_validation as f64 / all.len() as f64).min(0.5);
            all.split(fraction, cfg.seed).with_context(|| format!("splitting {path}"))?
        }
        None => {
            let toy: Toy = cfg.dataset.parse()?;
            (toy.sample(cfg.n_train, cfg.seed), toy.sample(cfg.n_validation, cfg.seed.wrapping_add(1)))
        }
    };
    if train.len() < 2 || validation.is_empty() {
        anyhow::bail!("dataset {}: need at least 2 training and 1 held-out points", cfg.dataset);
    }
    if !cfg.standardize {
        return Ok(PointData { train, validation, standardizer: None });
    }
    let s = Standardizer::fit(&train)?;
    Ok(PointData { train: s.apply(&train), validation: s.apply(&validation), standardizer: Some(s) })
}
