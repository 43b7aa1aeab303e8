//! The step-map form every sampler is written in (`docs/samplers.md` §2, §8.1).
//!
//! A sampler with `S` steps moves the state from position `j` to position `j + 1`:
//!
//! ```text
//! x_0 = c_init·ξ_init                     (c_init = 1 for DDPM/DDIM, σ_0 for EDM)
//! x_{j+1} = F_j(x_j; ξ_j) + n_j,          n_j = σ_j·ξ_j,     ξ_j ~ N(0, I) pre-drawn
//! ```
//!
//! `F_j` is deterministic given the pre-drawn `ξ_j` (one or two denoiser calls; EDM churn folds
//! its noise into `F_j`), and `n_j` does not depend on `x_j`. The sequential sampler applies
//! the map step by step; ParaDiGMS telescopes it,
//! `x_{j+1} = x_a + Σ_{i=a}^{j} (F_i(x_i) − x_i) + Σ_{i=a}^{j} n_i`,
//! and evaluates `F` on a whole window of positions in one batched call.
//! That is why [`StepMap::apply`] takes a batch of rows whose positions may differ: each row
//! carries its own step index, hence its own log-SNR and coefficients.
//!
//! | name here | symbol | meaning |
//! |---|---|---|
//! | `steps()` | S | number of steps (positions 0…S) |
//! | `apply` | F_j | the noise-free step map |
//! | `noise_std(j)` | σ_j | standard deviation of the additive noise n_j |
//! | `tolerance_variance(j)` | σ²_j (ParaDiGMS) | normaliser of the Picard error at position j |
//! | `init_scale()` | c_init | scale of the initial noise |
//! | `evals_at(j)` | — | denoiser evaluations F_j makes per row |

use candle_core::Tensor;
use cdm_core::Denoiser;

use crate::{Error, Result};

/// One sampler written as a step map `x_{j+1} = F_j(x_j; ξ_j) + σ_j·ξ_j`.
///
/// Implemented by [`crate::Ddpm`], [`crate::Ddim`], [`crate::EdmHeun`] and
/// [`crate::EdmStochastic`]; driven by [`crate::Sequential`] and [`crate::Paradigms`].
pub trait StepMap {
    /// Number of steps `S`.
    fn steps(&self) -> usize;

    /// Denoiser evaluations `F_j` makes per row (1, or 2 for a Heun step).
    fn evals_at(&self, step: usize) -> usize;

    /// Scale of the initial state: `x_0 = init_scale·ξ_init`.
    fn init_scale(&self) -> f64 {
        1.0
    }

    /// σ_j, the standard deviation of the additive noise `n_j = σ_j·ξ_j` of step `j`.
    fn noise_std(&self, step: usize) -> f64;

    /// σ²_j that normalises the ParaDiGMS error at position `j` (the variance of the step
    /// leaving position `j`, `docs/samplers.md` §8.2); positive.
    fn tolerance_variance(&self, step: usize) -> f64;

    /// Whether the map is an ODE: it uses no step noise ξ at all (then none is drawn).
    fn is_ode(&self) -> bool;

    /// `F_j` on a batch of rows.
    ///
    /// # Shapes
    /// `x`: (N, …); `steps`: N step indices, one per row, in non-decreasing order (rows are
    /// grouped by position); `xi`: the rows' pre-drawn ξ (N, …), required unless
    /// [`StepMap::is_ode`]. Returns (N, …). Each denoiser call covers all N rows (a Heun
    /// step's second call, those not ending at σ = 0); a [`cdm_core::Chunked`] denoiser caps them.
    fn apply(&self, d: &dyn Denoiser, x: &Tensor, steps: &[usize], xi: Option<&Tensor>) -> Result<Tensor>;
}

/// A (N, 1, …, 1) tensor of per-row host coefficients, broadcastable against `like` (N, …).
pub(crate) fn per_row(values: &[f64], like: &Tensor) -> Result<Tensor> {
    let mut shape = vec![values.len()];
    shape.extend(std::iter::repeat_n(1, like.rank().saturating_sub(1)));
    Ok(Tensor::from_slice(values, shape, like.device())?.to_dtype(like.dtype())?)
}

/// Checks that `steps` has one valid step index per row of `x`.
pub(crate) fn check_rows(op: &'static str, x: &Tensor, steps: &[usize], len: usize) -> Result<()> {
    let rows = x.dim(0)?;
    if steps.len() != rows {
        return Err(Error::shape(op, [rows], [steps.len()]));
    }
    if let Some(&j) = steps.iter().find(|&&j| j >= len) {
        return Err(Error::invalid("step", j, "must be below the number of steps"));
    }
    if steps.windows(2).any(|w| w[0] > w[1]) {
        return Err(Error::invalid("step", format!("{steps:?}"), "rows must be ordered by step"));
    }
    Ok(())
}

/// The pre-drawn ξ rows a noisy map needs, shape-checked against `x`.
pub(crate) fn required_xi<'a>(op: &'static str, x: &Tensor, xi: Option<&'a Tensor>) -> Result<&'a Tensor> {
    let xi = xi.ok_or_else(|| Error::invalid("noise", "none", "this step map needs its pre-drawn step noise"))?;
    if xi.dims() != x.dims() {
        return Err(Error::shape(op, x.dims(), xi.dims()));
    }
    Ok(xi)
}

/// The step indices of `S` steps, validated against `T` training timesteps.
pub(crate) fn check_steps(steps: usize, max: usize) -> Result<()> {
    if steps == 0 {
        return Err(Error::invalid("steps", steps, "must be at least 1"));
    }
    if steps > max {
        return Err(Error::invalid("steps", steps, "must not exceed the number of training timesteps"));
    }
    Ok(())
}

/// Checks a `clip_sample` range: positive and finite.
pub(crate) fn check_clip(range: Option<f64>) -> Result<()> {
    match range {
        Some(r) if !(r > 0.0 && r.is_finite()) => Err(Error::invalid("clip_sample", r, "must be positive and finite")),
        _ => Ok(()),
    }
}

/// x̂₀ clamped to `[−r, r]`, or unchanged without a range.
pub(crate) fn clip(x0_hat: Tensor, range: Option<f64>) -> Result<Tensor> {
    Ok(match range {
        Some(r) => x0_hat.clamp(-r, r)?,
        None => x0_hat,
    })
}

/// DDPM posterior variance σ̃² = (1 − ᾱ_s)/(1 − ᾱ_t)·(1 − ᾱ_t/ᾱ_s), clamped at 1e-20 as diffusers does.
pub(crate) fn posterior_variance(alpha_bar_t: f64, alpha_bar_s: f64) -> f64 {
    ((1.0 - alpha_bar_s) / (1.0 - alpha_bar_t) * (1.0 - alpha_bar_t / alpha_bar_s)).max(MIN_VARIANCE)
}

/// diffusers' floor on the per-step variance; the step into the clean end would otherwise be 0.
pub(crate) const MIN_VARIANCE: f64 = 1e-20;
