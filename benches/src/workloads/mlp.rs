//! Workloads of the paper's 2-D residual MLP ([`MlpConfig::default`]: d_model 128, 2 blocks,
//! sinusoidal log-SNR embedding with scale 50; 67 202 parameters).
//!
//! - [`forward`]: ε̂ on `batch` rows of [`deterministic_input`] at log-SNRs in [−10, 10];
//! - [`train`]: one step of an objective on a fixed batch of standard-normal 2-D points; the
//!   objectives are [`mse_only`] (DDPM ε-MSE over the linear 1000-step schedule) and
//!   [`mse_plus_improved_cdl`] (`train_step.rs`' `mse+cdl_improved_k128_i128` at K = n = 128:
//!   128 MSE rows plus one denoiser call of 2·n·K rows; the MLP is wrapped in [`Chunked`] at
//!   the CLI's 65 536-row cap).

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use cdm_core::{Chunked, DiscreteSchedule, GaussianBase, Itd, NoiseSource};
use cdm_models::{MlpConfig, ModelConfig};
use cdm_objectives::{Cdl, CdlMode, Mse, Objective, WeightedSum, ZetaDistribution};

use super::{Losses, Workload, deterministic_input, parameter_count, training_step};

/// Most rows per call of the MLP in a training step (the CLI's cap for point models).
pub const MAX_ROWS: usize = 1 << 16;

/// A boxed objective, as [`WeightedSum`] takes its parts.
pub type BoxedObjective = Box<dyn Objective + Send + Sync>;

/// The MLP's forward pass on `batch` rows. candle has no `no_grad`: the output still references
/// the graph through the weights until it is dropped, at the end of the iteration.
pub fn forward(batch: usize) -> Result<Workload> {
    let (mlp, vars) = MlpConfig::default().init(0, DType::F32, &Device::Cpu)?;
    let z = deterministic_input(&[batch, 2])?;
    let log_snr = deterministic_input(&[batch])?.affine(10.0, 0.0)?;
    Ok(Workload::new(parameter_count(&vars), batch, move || -> Result<Losses> {
        mlp.forward(&z, &log_snr)?;
        Ok(Vec::new())
    }))
}

/// One training step of `objective` per iteration on a fixed batch of `batch` points;
/// `estimator_rows` counts the extra denoiser rows of its estimators (`2·n·K` for a CDL part).
pub fn train(batch: usize, objective: impl Objective + 'static, estimator_rows: usize) -> Result<Workload> {
    let (mlp, vars) = MlpConfig::default().init(0, DType::F32, &Device::Cpu)?;
    let step = training_step(Chunked::new(mlp, MAX_ROWS)?, &vars, objective, data_batch(batch)?)?;
    Ok(Workload::new(parameter_count(&vars), batch + estimator_rows, step))
}

/// `batch` standard-normal 2-D points (the fixed training batch).
pub fn data_batch(batch: usize) -> Result<Tensor> {
    let x = NoiseSource::new(3).streams(0, batch).normal_f64(2);
    Ok(Tensor::from_vec(x, (batch, 2), &Device::Cpu)?.to_dtype(DType::F32)?)
}

/// The DDPM ε-MSE over the linear 1000-step schedule.
pub fn mse() -> BoxedObjective {
    Box::new(Mse::new(DiscreteSchedule::ddpm()))
}

/// A contrastive loss with `points` (K) integration points and `instances` instances, its ITD
/// proposal and ζ from a standard-normal base (logistic, loc 0, scale 3, clip 3).
pub fn cdl(mode: CdlMode, points: usize, instances: usize) -> Result<BoxedObjective> {
    let itd = Itd::from_base_heuristic(GaussianBase::standard(2), 3.0, points)?;
    let zeta = ZetaDistribution::Logistic(itd.config().proposal);
    Ok(Box::new(Cdl::new(itd, zeta, mode, Some(instances))?))
}

/// `1·MSE`.
pub fn mse_only() -> WeightedSum {
    WeightedSum::new(vec![(1.0, mse())])
}

/// `1·MSE + 1·CDL(improved, K = points, instances)`.
pub fn mse_plus_improved_cdl(points: usize, instances: usize) -> Result<WeightedSum> {
    Ok(WeightedSum::new(vec![(1.0, mse()), (1.0, cdl(CdlMode::Improved, points, instances)?)]))
}
