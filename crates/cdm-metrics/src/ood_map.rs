//! The paper's Figure 1: where a denoiser's score is wrong, over (DDPM timestep, value).
//!
//! For 1-D data with an exact density, every grid cell (t, v) compares the model with the
//! exact denoiser at `α_t = schedule.log_snrs()[t]`. The map holds the **score-estimate error**
//! (what the paper plots), using Tweedie's `s(z, α) = −ε̂(z, α)/√σ(−α)`:
//!
//! ```text
//! error(t, v) = |ŝ(v, α_t) − s*(v, α_t)| = |ε̂(v, α_t) − ε̂*(v, α_t)| / √σ(−α_t)
//! ```
//!
//! A network fitted on samples of the forward process is accurate where the noised density
//! `p_α(v)` has mass and arbitrary elsewhere; [`ErrorMap::region_means`] splits the grid by
//! `p_α(v) ≥ min_density` into the region near the forward paths and the region away from
//! them and averages the error over each. All grid points go through the model in one
//! batched call (a [`Chunked`](cdm_core::Chunked) model splits it).

use candle_core::{DType, Device, Tensor};
use cdm_core::log_snr::noise_coef;
use cdm_core::{Denoiser, DiscreteSchedule, ExactDensity};

use crate::{Error, Result};

/// Score-estimate error over a grid of timesteps × values.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorMap {
    /// The DDPM timesteps, one per map row.
    pub timesteps: Vec<usize>,
    /// Their log-SNRs α_t.
    pub log_snrs: Vec<f64>,
    /// The values v, one per map column.
    pub values: Vec<f64>,
    /// `error[i][j]`: the score error at `timesteps[i]`, `values[j]`.
    pub error: Vec<Vec<f64>>,
}

/// Mean errors near and away from the forward-process paths.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RegionMeans {
    /// Mean error over cells with `p_α(v) ≥ min_density`.
    pub near: f64,
    /// Mean error over the other cells.
    pub away: f64,
    /// Number of cells near the paths.
    pub near_cells: usize,
    /// Number of cells away from them.
    pub away_cells: usize,
}

impl RegionMeans {
    /// `away / near`: how much worse the model is off the forward paths.
    pub fn ratio(&self) -> f64 {
        self.away / self.near
    }
}

/// The score error of `model` against `exact` (1-D) at every (`timesteps[i]`, `values[j]`).
///
/// Grid points are passed to the model as a (T·V, 1) tensor of `dtype` on `device`.
pub fn ood_error_map(
    model: &dyn Denoiser,
    exact: &dyn ExactDensity,
    schedule: &DiscreteSchedule,
    timesteps: &[usize],
    values: &[f64],
    device: &Device,
    dtype: DType,
) -> Result<ErrorMap> {
    if exact.dim() != 1 {
        return Err(Error::invalid("exact.dim()", exact.dim(), "the error map is for 1-D data"));
    }
    if timesteps.is_empty() || values.is_empty() {
        return Err(Error::invalid("grid", format!("{} × {}", timesteps.len(), values.len()), "must not be empty"));
    }
    if let Some(t) = timesteps.iter().find(|&&t| t >= schedule.num_timesteps()) {
        return Err(Error::invalid("timesteps", t, "must be below the schedule's number of timesteps"));
    }
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(Error::invalid("values", v, "must be finite"));
    }
    let log_snrs: Vec<f64> = timesteps.iter().map(|&t| schedule.log_snrs()[t]).collect();
    let rows = timesteps.len() * values.len();
    let alphas: Vec<f64> = log_snrs.iter().flat_map(|&a| std::iter::repeat_n(a, values.len())).collect();
    let z = Tensor::from_vec(values.repeat(timesteps.len()), (rows, 1), device)?.to_dtype(dtype)?;
    let eps = model.eps_at(&z, &alphas)?;
    if eps.elem_count() != rows {
        return Err(Error::shape("ood_error_map model output", [rows, 1], eps.dims()));
    }
    let eps = eps.to_dtype(DType::F64)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f64>()?;
    let mut exact_eps = [0.0];
    let error = log_snrs
        .iter()
        .zip(eps.chunks_exact(values.len()))
        .map(|(&alpha, row)| {
            let scale = noise_coef(alpha);
            values
                .iter()
                .zip(row)
                .map(|(&v, e)| {
                    exact.eps_into(&[v], alpha, &mut exact_eps);
                    (e - exact_eps[0]).abs() / scale
                })
                .collect()
        })
        .collect();
    Ok(ErrorMap { timesteps: timesteps.to_vec(), log_snrs, values: values.to_vec(), error })
}

impl ErrorMap {
    /// The largest finite error (0 for an empty or all-NaN map).
    pub fn max_error(&self) -> f64 {
        self.error.iter().flatten().copied().filter(|e| e.is_finite()).fold(0.0, f64::max)
    }

    /// Mean errors where the noised density `p_α(v)` of `exact` is at least `min_density`
    /// (near the forward paths) and where it is below (away from them).
    ///
    /// For unit-variance modes, `min_density ≈ 0.05·weight` keeps about ±2 std around each
    /// noised mode.
    pub fn region_means(&self, exact: &dyn ExactDensity, min_density: f64) -> Result<RegionMeans> {
        if !(min_density > 0.0 && min_density.is_finite()) {
            return Err(Error::invalid("min_density", min_density, "must be positive and finite"));
        }
        let log_min = min_density.ln();
        let (mut near, mut away) = ((0.0, 0usize), (0.0, 0usize));
        for (&alpha, row) in self.log_snrs.iter().zip(&self.error) {
            for (&v, &e) in self.values.iter().zip(row) {
                let region = if exact.log_prob(&[v], alpha) >= log_min { &mut near } else { &mut away };
                region.0 += e;
                region.1 += 1;
            }
        }
        if near.1 == 0 || away.1 == 0 {
            return Err(Error::invalid("min_density", min_density, "leaves the near or the away region empty"));
        }
        Ok(RegionMeans {
            near: near.0 / near.1 as f64,
            away: away.0 / away.1 as f64,
            near_cells: near.1,
            away_cells: away.1,
        })
    }
}
