//! EDM's deterministic Heun sampler (Karras, Aittala, Aila, Laine 2022, *Elucidating the Design
//! Space of Diffusion-Based Generative Models*, arXiv:2206.00364, Algorithm 1; `docs/samplers.md` §5).
//!
//! The state lives in variance-exploding scale, `x ≈ x_data + σ·n`, on the ρ-grid
//! σ_0 = σ_max > … > σ_{N−1} = σ_min, σ_N = 0 ([`KarrasSigmas`]). A log-SNR denoiser gives the
//! EDM denoiser through the VP input `z = x/√(1+σ²)` at α = −2·ln σ:
//!
//! ```text
//! D(x; σ) = x − σ·ε̂(x/√(1+σ²), −2 ln σ),       d(x; σ) = (x − D(x; σ))/σ = ε̂(…)
//! x_0 = σ_0·ξ_init
//! d_i  = d(x_i; σ_i)
//! x′   = x_i + (σ_{i+1} − σ_i)·d_i                          (Euler)
//! F_i(x_i) = x_i + (σ_{i+1} − σ_i)·(d_i + d(x′; σ_{i+1}))/2   if σ_{i+1} > 0   (Heun)
//!          = x′                                              on the last step
//! ```
//!
//! NFE = 2N − 1 (35 for N = 18). The σ are not rounded to a discrete table (the denoiser is
//! continuous in α). For ParaDiGMS the error at position i is normalised by the Brownian-bridge
//! variance `σ²_{i+1}(σ²_i − σ²_{i+1})/σ²_i` (clamped ≥ 1e-20), which is exactly DDPM's σ̃²
//! written in variance-exploding units.
//!
//! | name here | symbol |
//! |---|---|
//! | `sigmas[i]` | σ_i (σ_N = 0 appended) |
//! | `from`, `to` | σ_i (or σ̂_i), σ_{i+1} |
//! | `slope` | d_i, or (d_i + d′_i)/2 |
//! | `c_in` | 1/√(1+σ²) |

use candle_core::Tensor;
use cdm_core::log_snr::log_snr_of_sigma_edm;
use cdm_core::{Denoiser, KarrasSigmas};

use crate::step_map::{MIN_VARIANCE, StepMap, check_rows, check_steps, per_row};
use crate::{Error, Result};

/// Options of an [`EdmHeun`] sampler; the default is EDM's N = 18 on σ ∈ [0.002, 80], ρ = 7.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EdmHeunConfig {
    /// Number of noise levels N (steps); at least 1.
    pub steps: usize,
    /// The ρ-schedule of σ.
    pub sigmas: KarrasSigmas,
}

impl Default for EdmHeunConfig {
    fn default() -> Self {
        Self { steps: 18, sigmas: KarrasSigmas::default() }
    }
}

impl EdmHeunConfig {
    /// The step map; `steps` ≥ 1.
    pub fn build(&self) -> Result<EdmHeun> {
        Ok(EdmHeun { sigmas: edm_sigmas(&self.sigmas, self.steps)? })
    }
}

/// EDM deterministic Heun as a step map; build it with [`EdmHeunConfig::build`].
#[derive(Clone, Debug)]
pub struct EdmHeun {
    sigmas: Vec<f64>,
}

impl EdmHeun {
    /// σ_0 … σ_{N−1} followed by σ_N = 0.
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }
}

impl StepMap for EdmHeun {
    fn steps(&self) -> usize {
        self.sigmas.len() - 1
    }

    fn evals_at(&self, step: usize) -> usize {
        heun_evals(self.sigmas[step + 1])
    }

    fn init_scale(&self) -> f64 {
        self.sigmas[0]
    }

    fn noise_std(&self, _step: usize) -> f64 {
        0.0
    }

    fn tolerance_variance(&self, step: usize) -> f64 {
        bridge_variance(self.sigmas[step], self.sigmas[step + 1])
    }

    fn is_ode(&self) -> bool {
        true
    }

    fn apply(&self, d: &dyn Denoiser, x: &Tensor, steps: &[usize], _xi: Option<&Tensor>) -> Result<Tensor> {
        check_rows("EdmHeun::apply", x, steps, self.steps())?;
        let from: Vec<f64> = steps.iter().map(|&i| self.sigmas[i]).collect();
        let to: Vec<f64> = steps.iter().map(|&i| self.sigmas[i + 1]).collect();
        heun_rows(d, x, &from, &to)
    }
}

/// The N ρ-levels followed by σ_N = 0.
pub(crate) fn edm_sigmas(sigmas: &KarrasSigmas, steps: usize) -> Result<Vec<f64>> {
    check_steps(steps, usize::MAX)?;
    let mut out = sigmas.sigmas(steps)?;
    out.push(0.0);
    Ok(out)
}

/// Denoiser evaluations of a Heun step ending at `to` (the last step is Euler only).
pub(crate) fn heun_evals(to: f64) -> usize {
    if to > 0.0 { 2 } else { 1 }
}

/// σ²_to(σ²_from − σ²_to)/σ²_from, clamped ≥ 1e-20: DDPM's σ̃² in variance-exploding units.
pub(crate) fn bridge_variance(from: f64, to: f64) -> f64 {
    (to * to * (from * from - to * to) / (from * from)).max(MIN_VARIANCE)
}

/// One Heun step per row from σ = `from` to σ = `to`, batched: one denoiser call over all rows,
/// then one over the rows with `to > 0` (which must come first, as rows are ordered by step).
pub(crate) fn heun_rows(d: &dyn Denoiser, x: &Tensor, from: &[f64], to: &[f64]) -> Result<Tensor> {
    let rows = x.dim(0)?;
    let second = to.iter().take_while(|&&s| s > 0.0).count();
    if to[second..].iter().any(|&s| s > 0.0) {
        return Err(Error::invalid("step", format!("{to:?}"), "rows ending at σ = 0 must come last"));
    }
    let step: Vec<f64> = to.iter().zip(from).map(|(t, f)| t - f).collect();
    let step = per_row(&step, x)?;
    let slope = vp_eps(d, x, from)?;
    let euler = x.add(&slope.broadcast_mul(&step)?)?;
    if second == 0 {
        return Ok(euler);
    }
    let slope2 = vp_eps(d, &euler.narrow(0, 0, second)?, &to[..second])?;
    let mut heun = slope.narrow(0, 0, second)?.add(&slope2)?.affine(0.5, 0.0)?;
    if second < rows {
        heun = Tensor::cat(&[&heun, &slope.narrow(0, second, rows - second)?], 0)?;
    }
    Ok(x.add(&heun.broadcast_mul(&step)?)?)
}

/// d(x; σ) = ε̂(x/√(1+σ²), −2 ln σ) per row.
fn vp_eps(d: &dyn Denoiser, x: &Tensor, sigma: &[f64]) -> Result<Tensor> {
    let c_in: Vec<f64> = sigma.iter().map(|s| 1.0 / (1.0 + s * s).sqrt()).collect();
    let alpha: Vec<f64> = sigma.iter().map(|&s| log_snr_of_sigma_edm(s)).collect();
    let z = x.broadcast_mul(&per_row(&c_in, x)?)?;
    Ok(d.eps_at(&z, &alpha)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    #[test]
    fn eighteen_levels_end_at_zero_and_the_last_step_is_euler() {
        let heun = EdmHeunConfig::default().build().unwrap();
        assert_eq!(heun.steps(), 18);
        assert_eq!(heun.sigmas()[18], 0.0);
        assert_eq!((0..18).map(|i| heun.evals_at(i)).sum::<usize>(), 35);
        assert_eq!(heun.init_scale(), 80.0);
        // bridge variance = DDPM's posterior variance in VE units (ᾱ = 1/(1+σ²))
        let (sf, st) = (3.0f64, 1.5f64);
        let (at, as_) = (1.0 / (1.0 + sf * sf), 1.0 / (1.0 + st * st));
        let ddpm = (1.0 - as_) / (1.0 - at) * (1.0 - at / as_);
        assert!((bridge_variance(sf, st) * as_ - ddpm).abs() < 1e-14);
        assert!(matches!(
            EdmHeunConfig { steps: 0, ..Default::default() }.build(),
            Err(Error::InvalidArgument { field: "steps", .. })
        ));
    }

    #[test]
    fn rows_ending_at_zero_must_come_last() {
        let gauss = cdm_core::Gaussian::isotropic(vec![0.0], 1.0).unwrap();
        let x = Tensor::ones((2, 1), DType::F64, &candle_core::Device::Cpu).unwrap();
        assert!(heun_rows(&gauss, &x, &[1.0, 2.0], &[0.0, 1.0]).is_err());
        assert!(heun_rows(&gauss, &x, &[2.0, 1.0], &[1.0, 0.0]).is_ok());
    }
}
