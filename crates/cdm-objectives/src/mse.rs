//! The DDPM ε-prediction loss (Ho et al. 2020), the paper's baseline.
//!
//! ```text
//! t ~ U{0, …, T−1},  ε ~ N(0, I),  z = √ᾱ_t·x + √(1 − ᾱ_t)·ε
//! L_mse = (1/B) Σ_b ‖ε_b − ε̂(z_b, α_t)‖²,   α_t = logit(ᾱ_t)
//! ```
//!
//! The squared error is **summed over the d dimensions of a sample and averaged over the
//! batch** — the DDPM/ITD convention (docs/math.md §11) — so it is on the scale of the
//! per-sample CDL logit and a CDL weight means the same at d = 2 as at d = 3072.
//!
//! At the exact denoiser its expectation is the floor `(1/T) Σ_t mmse(α_t)`, where
//! `mmse(α) = E‖ε − ε̂*‖²`; for `N(μ, Σ)` data `mmse(α) = Σ_i σ(α + log λ_i)`.

use candle_core::Tensor;
use cdm_core::log_snr::{noise_coef, signal_coef};
use cdm_core::{Denoiser, DiscreteSchedule, NoiseSource};

use crate::objective::{LossOutput, Objective};
use crate::{Error, Result};

/// ε-MSE with timesteps drawn uniformly from a DDPM schedule.
#[derive(Clone, Debug)]
pub struct Mse {
    schedule: DiscreteSchedule,
}

impl Mse {
    /// The loss over `schedule`'s timesteps.
    pub fn new(schedule: DiscreteSchedule) -> Self {
        Self { schedule }
    }
}

impl Objective for Mse {
    fn name(&self) -> &'static str {
        "mse"
    }

    fn loss(&self, d: &dyn Denoiser, x: &Tensor, noise: &NoiseSource) -> Result<LossOutput> {
        let b = x.dim(0)?;
        if b == 0 {
            return Err(Error::BatchTooSmall { objective: "mse", need: 1, got: 0 });
        }
        let mut streams = noise.fork("mse").streams(0, b);
        let n_t = self.schedule.num_timesteps();
        let log_snr: Vec<f64> = streams
            .uniform_f64(1)
            .iter()
            .map(|u| self.schedule.log_snrs()[((u * n_t as f64) as usize).min(n_t - 1)])
            .collect();
        let eps = streams.normal(&x.dims()[1..], x.dtype(), x.device())?;
        let z = (row_scale(x, log_snr.iter().map(|&a| signal_coef(a)))?
            + row_scale(&eps, log_snr.iter().map(|&a| noise_coef(a)))?)?;
        let eps_hat = d.eps_at(&z, &log_snr)?;
        let loss = eps.sub(&eps_hat)?.sqr()?.flatten_from(1)?.sum(1)?.mean(0)?;
        Ok(LossOutput { loss, metrics: Vec::new() })
    }
}

/// Multiplies row `i` of `x` by the `i`-th coefficient.
pub(crate) fn row_scale(x: &Tensor, coef: impl Iterator<Item = f64>) -> Result<Tensor> {
    let coef: Vec<f64> = coef.collect();
    let mut shape = vec![1usize; x.rank()];
    shape[0] = coef.len();
    Ok(x.broadcast_mul(&cdm_core::host_tensor(&coef, x)?.reshape(shape)?)?)
}
