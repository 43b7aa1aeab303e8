//! DDIM with stochasticity η (Song, Meng, Ermon 2021, *Denoising Diffusion Implicit Models*,
//! arXiv:2010.02502, eqs. 12 and 16; diffusers `DDIMScheduler.step`, `docs/samplers.md` §4).
//!
//! Step `j` goes from `t = τ_j` to `s = τ_{j+1}` (from the list; `τ_S = −1`, ᾱ_{−1} = 1, or ᾱ_0
//! with diffusers' `set_alpha_to_one = false`):
//!
//! ```text
//! ε̂      = ε̂(x_j, α_t)
//! x̂₀     = (x_j − √(1−ᾱ_t)·ε̂) / √ᾱ_t,   clamped to [−r, r] with `clip_sample = Some(r)`
//! σ̃²_j   = (1−ᾱ_s)/(1−ᾱ_t) · (1 − ᾱ_t/ᾱ_s)
//! σ_j(η) = η·σ̃_j
//! F_j(x_j) = √ᾱ_s·x̂₀ + √(1 − ᾱ_s − σ_j(η)²)·ε̂
//! x_{j+1}  = F_j(x_j) + σ_j(η)·ξ_j
//! ```
//!
//! Clipping changes x̂₀ only, not the ε̂ of the direction term, as diffusers' default
//! `use_clipped_model_output = False`.
//!
//! η = 0 is the deterministic sampler (an ODE: no step noise is drawn); η = 1 has the marginals
//! of the respaced DDPM with σ̃² variance. The ParaDiGMS tolerance is normalised by
//! `max(σ̃²_j, 1e-20)` for every η (the η = 1 variance, `docs/samplers.md` §8.2 and §8.6). With
//! η > 0 the noise is part of the step map, so ParaDiGMS stays consistent (`docs/samplers.md` §8.7).
//!
//! | name here | symbol |
//! |---|---|
//! | `eta` | η |
//! | `alpha_bar_t`, `alpha_bar_s` | ᾱ_t, ᾱ_s |
//! | `log_snr` | α_t = logit(ᾱ_t) |
//! | `eps`, `x0_hat` | ε̂, x̂₀ |
//! | `clip_sample` | r |
//! | `coef_x0`, `coef_eps` | √ᾱ_s, √(1 − ᾱ_s − σ_j(η)²) |
//! | `noise_std` | σ_j(η) |

use candle_core::Tensor;
use cdm_core::{Denoiser, DiscreteSchedule, TimestepSpacing, predecessors};

use crate::step_map::{MIN_VARIANCE, StepMap, check_clip, check_rows, check_steps, clip, per_row};
use crate::{Error, Result};

/// Options of a [`Ddim`] sampler; the default is deterministic 50-step DDIM on the trailing grid.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DdimConfig {
    /// Number of sampling steps S (1 ≤ S ≤ T).
    pub steps: usize,
    /// Which S of the T training timesteps are visited.
    pub spacing: TimestepSpacing,
    /// Stochasticity η ∈ [0, 1]; 0 is deterministic.
    pub eta: f64,
    /// Clamp x̂₀ to `[−r, r]` (diffusers' `clip_sample` with `clip_sample_range = r`).
    pub clip_sample: Option<f64>,
    /// ᾱ after the last step: 1 (`true`), or ᾱ_0 of the first training timestep (diffusers'
    /// `set_alpha_to_one`).
    pub set_alpha_to_one: bool,
}

impl Default for DdimConfig {
    fn default() -> Self {
        Self { steps: 50, spacing: TimestepSpacing::Trailing, eta: 0.0, clip_sample: None, set_alpha_to_one: true }
    }
}

impl DdimConfig {
    /// The step map on `schedule`; `steps` must lie in `1..=T` and η in [0, 1].
    pub fn build(&self, schedule: &DiscreteSchedule) -> Result<Ddim> {
        check_steps(self.steps, schedule.num_timesteps())?;
        if !(0.0..=1.0).contains(&self.eta) {
            return Err(Error::invalid("eta", self.eta, "must lie in [0, 1]"));
        }
        check_clip(self.clip_sample)?;
        let end = if self.set_alpha_to_one { 1.0 } else { schedule.alpha_bar()[0] };
        let timesteps = self.spacing.timesteps(schedule.num_timesteps(), self.steps)?;
        let prev = predecessors(&timesteps);
        let steps = timesteps
            .iter()
            .zip(&prev)
            .map(|(&t, &s)| {
                let alpha_bar_t = schedule.alpha_bar_at(t as i64);
                let alpha_bar_s = if s < 0 { end } else { schedule.alpha_bar_at(s) };
                let posterior = (1.0 - alpha_bar_s) / (1.0 - alpha_bar_t) * (1.0 - alpha_bar_t / alpha_bar_s);
                let noise_var = self.eta * self.eta * posterior;
                DdimStep {
                    log_snr: schedule.log_snrs()[t],
                    signal_t: alpha_bar_t.sqrt(),
                    noise_t: (1.0 - alpha_bar_t).sqrt(),
                    coef_x0: alpha_bar_s.sqrt(),
                    coef_eps: (1.0 - alpha_bar_s - noise_var).max(0.0).sqrt(),
                    noise_std: noise_var.sqrt(),
                    tolerance_variance: posterior.max(MIN_VARIANCE),
                }
            })
            .collect();
        Ok(Ddim { timesteps, prev, eta: self.eta, clip_sample: self.clip_sample, steps })
    }
}

/// Per-step host coefficients of DDIM.
#[derive(Clone, Copy, Debug)]
struct DdimStep {
    log_snr: f64,
    signal_t: f64,
    noise_t: f64,
    coef_x0: f64,
    coef_eps: f64,
    noise_std: f64,
    tolerance_variance: f64,
}

/// DDIM(η) as a step map; build it with [`DdimConfig::build`].
#[derive(Clone, Debug)]
pub struct Ddim {
    timesteps: Vec<usize>,
    prev: Vec<i64>,
    eta: f64,
    clip_sample: Option<f64>,
    steps: Vec<DdimStep>,
}

impl Ddim {
    /// The visited timesteps τ_0 > … > τ_{S−1}.
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// Each step's predecessor τ_{j+1} (−1 last).
    pub fn predecessors(&self) -> &[i64] {
        &self.prev
    }
}

impl StepMap for Ddim {
    fn steps(&self) -> usize {
        self.steps.len()
    }

    fn evals_at(&self, _step: usize) -> usize {
        1
    }

    fn noise_std(&self, step: usize) -> f64 {
        self.steps[step].noise_std
    }

    fn tolerance_variance(&self, step: usize) -> f64 {
        self.steps[step].tolerance_variance
    }

    fn is_ode(&self) -> bool {
        self.eta == 0.0
    }

    fn apply(&self, d: &dyn Denoiser, x: &Tensor, steps: &[usize], _xi: Option<&Tensor>) -> Result<Tensor> {
        check_rows("Ddim::apply", x, steps, self.steps.len())?;
        let pick = |f: fn(&DdimStep) -> f64| steps.iter().map(|&j| f(&self.steps[j])).collect::<Vec<_>>();
        let eps = d.eps_at(x, &pick(|s| s.log_snr))?;
        let x0_hat = x
            .sub(&eps.broadcast_mul(&per_row(&pick(|s| s.noise_t), x)?)?)?
            .broadcast_div(&per_row(&pick(|s| s.signal_t), x)?)?;
        let x0_hat = clip(x0_hat, self.clip_sample)?;
        let out = x0_hat
            .broadcast_mul(&per_row(&pick(|s| s.coef_x0), x)?)?
            .add(&eps.broadcast_mul(&per_row(&pick(|s| s.coef_eps), x)?)?)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_one_has_the_ddpm_posterior_variance_and_eta_zero_none() {
        let schedule = DiscreteSchedule::ddpm();
        let stochastic = DdimConfig { steps: 20, eta: 1.0, ..Default::default() }.build(&schedule).unwrap();
        let ddpm = crate::DdpmConfig { steps: 20, ..Default::default() }.build(&schedule).unwrap();
        for j in 0..19 {
            let (a, b) = (stochastic.noise_std(j), ddpm.noise_std(j));
            assert!((a - b).abs() < 1e-14 * b, "step {j}: {a} vs {b}");
        }
        assert_eq!(stochastic.noise_std(19), 0.0, "the step into the clean end is deterministic");
        let deterministic = DdimConfig { steps: 20, ..Default::default() }.build(&schedule).unwrap();
        assert!(deterministic.is_ode() && !stochastic.is_ode());
        assert_eq!(deterministic.tolerance_variance(3), stochastic.tolerance_variance(3));
        assert!(matches!(
            DdimConfig { eta: -0.1, ..Default::default() }.build(&schedule),
            Err(Error::InvalidArgument { field: "eta", .. })
        ));
    }
}
