//! Figure 1 of the paper on the 1-D mixture `0.5·N(−5, 1) + 0.5·N(5, 1)`: where each trained
//! model's score is wrong, near the forward-process paths and away from them.
//!
//! Each model's score error `|ŝ − s*|` against the exact mixture is averaged over the cells of
//! the paper's (timestep, value) grid where the noised density is at least
//! [`MIN_DENSITY`] ("near") and over the others ("away"); the
//! paper's claim is that contrastive training lowers the error away from the paths, where
//! parallel samplers' early Picard iterates travel.

use anyhow::{Context, Result};
use candle_core::Device;
use cdm_core::Denoiser;
use serde::{Deserialize, Serialize};

use crate::data::PointData;
use crate::dataset::DatasetSpec;
use crate::gmm1d_map::{MIN_DENSITY, error_map, exact_gmm1d};

/// One 1-D model's error near and away from the paths (`eval-figure1.json`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct OffPathError {
    /// Mean score error near the paths.
    pub near: f64,
    /// Mean score error away from them.
    pub away: f64,
}

impl OffPathError {
    /// `away / near`.
    pub fn ratio(&self) -> f64 {
        self.away / self.near
    }
}

/// Measures `net`'s error map on the paper's grid and, if `heatmap` names a file, draws it.
pub fn off_path_error(
    net: &dyn Denoiser,
    data: &PointData,
    device: &Device,
    heatmap: Option<(&std::path::Path, &str)>,
) -> Result<OffPathError> {
    let standardizer = data.standardizer.as_ref();
    let gmm = exact_gmm1d(&DatasetSpec::Toy(cdm_data::Toy::TwoModes1d), standardizer)
        .context("the exact 1-D mixture needs a 1-D standardiser")?;
    let map = error_map(net, &gmm, standardizer, device)?;
    let regions = map.region_means(&gmm, MIN_DENSITY)?;
    if let Some((path, title)) = heatmap {
        cdm_metrics::heatmap_with_trajectories(path, &map, &[], title)?;
    }
    Ok(OffPathError { near: regions.near, away: regions.away })
}
