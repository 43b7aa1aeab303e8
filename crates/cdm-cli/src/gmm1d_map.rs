//! The paper's Figure 1 for a trained 1-D run: the exact two-mode mixture in the model's units
//! and the model's score-error map over the paper's grid (every 10th DDPM timestep × values
//! −30 … 30 in data units, step 0.5), used by `cdm eval` and `cdm reproduce gmm1d`.

use anyhow::Result;
use candle_core::{DType, Device};
use cdm_core::{Chunked, Denoiser, DiscreteSchedule, GaussianMixture, MixtureComponent};
use cdm_data::{Standardizer, Toy};
use cdm_metrics::ErrorMap;

use crate::data::POINT_ROWS_PER_CALL as ROWS_PER_CALL;
use crate::dataset::DatasetSpec;

/// Noised-density threshold separating "near the forward paths" from "away" in the error map.
pub const MIN_DENSITY: f64 = 0.025;

/// Timestep stride of the map's rows.
pub const TIMESTEP_STRIDE: usize = 10;

/// The paper's `0.5·N(−5, 1) + 0.5·N(5, 1)` in the model's units (`(x − μ)/s`), for `gmm1d`.
pub fn exact_gmm1d(dataset: &DatasetSpec, standardizer: Option<&Standardizer>) -> Option<GaussianMixture> {
    if dataset.toy()? != Toy::TwoModes1d {
        return None;
    }
    let (mu, s) = match standardizer {
        Some(st) if st.dim() == 1 => (st.mean[0], st.std[0]),
        Some(_) => return None,
        None => (0.0, 1.0),
    };
    let comp = |m: f64| MixtureComponent { weight: 0.5, mean: vec![(m - mu) / s], variance: vec![1.0 / (s * s)] };
    GaussianMixture::new(vec![comp(-5.0), comp(5.0)]).ok()
}

/// The score error of `net` against `gmm` over the paper's grid.
pub fn error_map(
    net: &dyn Denoiser,
    gmm: &GaussianMixture,
    standardizer: Option<&Standardizer>,
    device: &Device,
) -> Result<ErrorMap> {
    let schedule = DiscreteSchedule::ddpm();
    let timesteps: Vec<usize> = (0..schedule.num_timesteps()).step_by(TIMESTEP_STRIDE).collect();
    let (mu, s) = standardizer.map_or((0.0, 1.0), |st| (st.mean[0], st.std[0]));
    let values: Vec<f64> = (0..=120).map(|i| (-30.0 + 0.5 * i as f64 - mu) / s).collect();
    let net = Chunked::new(net, ROWS_PER_CALL)?;
    Ok(cdm_metrics::ood_error_map(&net, gmm, &schedule, &timesteps, &values, device, DType::F32)?)
}
