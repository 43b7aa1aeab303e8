//! DDPM ancestral sampling on a respaced chain (Ho, Jain, Abbeel 2020, *Denoising Diffusion
//! Probabilistic Models*, arXiv:2006.11239; respacing as diffusers' `DDPMScheduler.step`,
//! `docs/samplers.md` §1.4 and §3).
//!
//! Step `j` goes from timestep `t = τ_j` to its predecessor `s = τ_{j+1}` **taken from the
//! list** (`τ_S = −1`, ᾱ_{−1} = 1), with the denoiser called at the log-SNR α_t = logit(ᾱ_t):
//!
//! ```text
//! ε̂    = ε̂(x_j, α_t)
//! x̂₀   = (x_j − √(1−ᾱ_t)·ε̂) / √ᾱ_t,   clamped to [−r, r] with `clip_sample = Some(r)`
//! β′_j = 1 − ᾱ_t/ᾱ_s
//! F_j(x_j) = μ_j = √ᾱ_s·β′_j/(1−ᾱ_t) · x̂₀ + √(1−β′_j)·(1−ᾱ_s)/(1−ᾱ_t) · x_j
//! x_{j+1}  = μ_j + σ_j·ξ_j
//! σ²_j = σ̃²_j = max((1−ᾱ_s)/(1−ᾱ_t)·β′_j, 1e-20)     (fixed_small, diffusers' default)
//!      = β′_j                                         (fixed_large)
//! ```
//!
//! For `S = T` and no clipping `μ_j` equals the familiar `(x − β_t/√(1−ᾱ_t)·ε̂)/√α_t`.
//! The step into the clean end (`s = −1`) uses the clamped σ̃² (≤ 1e-10·ξ of noise) for both
//! variance types, as Ho et al. and improved DDPM add no noise on their last step. (diffusers'
//! `fixed_large` adds β′ noise there whenever the last timestep is not 0, e.g. trailing S = 200.)
//! The ParaDiGMS tolerance is normalised by the same σ²_j.
//!
//! | name here | symbol |
//! |---|---|
//! | `timesteps[j]`, `prev[j]` | τ_j = t, τ_{j+1} = s |
//! | `alpha_bar_t`, `alpha_bar_s` | ᾱ_t, ᾱ_s |
//! | `log_snr` | α_t = logit(ᾱ_t) |
//! | `eps`, `x0_hat` | ε̂, x̂₀ |
//! | `clip_sample` | r |
//! | `coef_x0`, `coef_xt` | the two coefficients of μ_j |
//! | `variance` | σ²_j |

use candle_core::Tensor;
use cdm_core::{Denoiser, DiscreteSchedule, TimestepSpacing, predecessors};

use crate::Result;
use crate::step_map::{StepMap, check_clip, check_rows, check_steps, clip, per_row, posterior_variance};

/// Which per-step variance DDPM adds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DdpmVariance {
    /// The posterior variance σ̃²_j, clamped ≥ 1e-20 (diffusers `fixed_small`, the default).
    #[default]
    FixedSmall,
    /// The respaced β′_j (diffusers `fixed_large`; the authors' sequential DDPM).
    FixedLarge,
}

/// Options of a [`Ddpm`] sampler. The default is DDPM's 1000-step chain with σ̃² variance on the
/// trailing grid (which for S = T is every timestep).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DdpmConfig {
    /// Number of sampling steps S (1 ≤ S ≤ T).
    pub steps: usize,
    /// Which S of the T training timesteps are visited.
    pub spacing: TimestepSpacing,
    /// The per-step variance.
    pub variance: DdpmVariance,
    /// Clamp x̂₀ to `[−r, r]` (diffusers' `clip_sample` with `clip_sample_range = r`).
    pub clip_sample: Option<f64>,
}

impl Default for DdpmConfig {
    fn default() -> Self {
        Self { steps: 1000, spacing: TimestepSpacing::Trailing, variance: DdpmVariance::FixedSmall, clip_sample: None }
    }
}

impl DdpmConfig {
    /// The step map on `schedule`; `steps` must lie in `1..=T`.
    pub fn build(&self, schedule: &DiscreteSchedule) -> Result<Ddpm> {
        check_steps(self.steps, schedule.num_timesteps())?;
        check_clip(self.clip_sample)?;
        let timesteps = self.spacing.timesteps(schedule.num_timesteps(), self.steps)?;
        let prev = predecessors(&timesteps);
        let steps = timesteps
            .iter()
            .zip(&prev)
            .map(|(&t, &s)| {
                let (alpha_bar_t, alpha_bar_s) = (schedule.alpha_bar_at(t as i64), schedule.alpha_bar_at(s));
                let beta = 1.0 - alpha_bar_t / alpha_bar_s;
                let variance = match self.variance {
                    DdpmVariance::FixedLarge if s >= 0 => beta,
                    _ => posterior_variance(alpha_bar_t, alpha_bar_s),
                };
                DdpmStep {
                    log_snr: schedule.log_snrs()[t],
                    signal_t: alpha_bar_t.sqrt(),
                    noise_t: (1.0 - alpha_bar_t).sqrt(),
                    coef_x0: alpha_bar_s.sqrt() * beta / (1.0 - alpha_bar_t),
                    coef_xt: (1.0 - beta).sqrt() * (1.0 - alpha_bar_s) / (1.0 - alpha_bar_t),
                    variance,
                }
            })
            .collect();
        Ok(Ddpm { timesteps, prev, clip_sample: self.clip_sample, steps })
    }
}

/// Per-step host coefficients of DDPM.
#[derive(Clone, Copy, Debug)]
struct DdpmStep {
    log_snr: f64,
    signal_t: f64,
    noise_t: f64,
    coef_x0: f64,
    coef_xt: f64,
    variance: f64,
}

/// DDPM ancestral sampling as a step map; build it with [`DdpmConfig::build`].
#[derive(Clone, Debug)]
pub struct Ddpm {
    timesteps: Vec<usize>,
    prev: Vec<i64>,
    clip_sample: Option<f64>,
    steps: Vec<DdpmStep>,
}

impl Ddpm {
    /// The visited timesteps τ_0 > … > τ_{S−1}.
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// Each step's predecessor τ_{j+1} (−1 last).
    pub fn predecessors(&self) -> &[i64] {
        &self.prev
    }

    /// The posterior mean μ_j of each row (the noise-free step).
    fn mean(&self, d: &dyn Denoiser, x: &Tensor, rows: &[usize]) -> Result<Tensor> {
        let pick = |f: fn(&DdpmStep) -> f64| rows.iter().map(|&j| f(&self.steps[j])).collect::<Vec<_>>();
        let eps = d.eps_at(x, &pick(|s| s.log_snr))?;
        let x0_hat = x
            .sub(&eps.broadcast_mul(&per_row(&pick(|s| s.noise_t), x)?)?)?
            .broadcast_div(&per_row(&pick(|s| s.signal_t), x)?)?;
        let mean = clip(x0_hat, self.clip_sample)?
            .broadcast_mul(&per_row(&pick(|s| s.coef_x0), x)?)?
            .add(&x.broadcast_mul(&per_row(&pick(|s| s.coef_xt), x)?)?)?;
        Ok(mean)
    }
}

impl StepMap for Ddpm {
    fn steps(&self) -> usize {
        self.steps.len()
    }

    fn evals_at(&self, _step: usize) -> usize {
        1
    }

    fn noise_std(&self, step: usize) -> f64 {
        self.steps[step].variance.sqrt()
    }

    fn tolerance_variance(&self, step: usize) -> f64 {
        self.steps[step].variance
    }

    fn is_ode(&self) -> bool {
        false
    }

    fn apply(&self, d: &dyn Denoiser, x: &Tensor, steps: &[usize], _xi: Option<&Tensor>) -> Result<Tensor> {
        check_rows("Ddpm::apply", x, steps, self.steps.len())?;
        self.mean(d, x, steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// ε̂ = z, to check the coefficients on the host.
    struct Identity;
    impl Denoiser for Identity {
        fn eps(&self, z: &Tensor, _log_snr: &Tensor) -> cdm_core::Result<Tensor> {
            Ok(z.clone())
        }
    }

    #[test]
    fn full_chain_mean_is_the_textbook_update() {
        let schedule = DiscreteSchedule::ddpm();
        let ddpm = DdpmConfig::default().build(&schedule).unwrap();
        let x = Tensor::new(&[[0.7f64, -1.3]], &Device::Cpu).unwrap();
        for j in [0usize, 500, 998, 999] {
            let t = 999 - j;
            let out = ddpm.apply(&Identity, &x, &[j], None).unwrap().to_vec2::<f64>().unwrap();
            let (beta, ab) = (schedule.betas()[t], schedule.alpha_bar()[t]);
            for (o, v) in out[0].iter().zip([0.7, -1.3]) {
                let want = (v - beta / (1.0 - ab).sqrt() * v) / (1.0 - beta).sqrt();
                assert!((o - want).abs() < 1e-10 * want.abs().max(1.0), "t={t}: {o} vs {want}");
            }
        }
        // σ̃² at t = 0 is exactly 0, clamped to 1e-20; the variance types agree there
        assert_eq!(ddpm.tolerance_variance(999), 1e-20);
        let large = DdpmConfig { variance: DdpmVariance::FixedLarge, ..Default::default() }.build(&schedule).unwrap();
        assert_eq!(large.tolerance_variance(999), 1e-20);
        assert!((large.noise_std(0).powi(2) - schedule.betas()[999]).abs() < 1e-15);
    }

    #[test]
    fn predecessors_come_from_the_list() {
        let ddpm = DdpmConfig { steps: 13, ..Default::default() }.build(&DiscreteSchedule::ddpm()).unwrap();
        assert_eq!(&ddpm.timesteps()[..2], &[999, 922]);
        assert_eq!(ddpm.predecessors()[0], 922);
        assert_eq!(*ddpm.predecessors().last().unwrap(), -1);
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(ddpm.apply(&Identity, &x, &[0], None).is_err(), "one step index per row");
        assert!(ddpm.apply(&Identity, &x, &[0, 13], None).is_err(), "step out of range");
    }
}
