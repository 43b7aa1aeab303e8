//! EDM's stochastic sampler with churn (Karras et al. 2022, arXiv:2206.00364, Algorithm 2;
//! `docs/samplers.md` §6).
//!
//! On the ρ-grid σ_0 > … > σ_{N−1}, σ_N = 0, with the VP denoiser as in [`crate::EdmHeun`]:
//!
//! ```text
//! γ_i  = min(S_churn/N, √2 − 1)  if S_min ≤ σ_i ≤ S_max,  else 0
//! σ̂_i  = σ_i·(1 + γ_i)
//! x̂_i  = x_i + √(σ̂_i² − σ_i²)·S_noise·ξ_i
//! F_i(x_i; ξ_i) = Heun step of x̂_i from σ̂_i to σ_{i+1}   (Euler on the last step)
//! x_{i+1} = F_i(x_i; ξ_i)                                  (n_i = 0)
//! ```
//!
//! `S_churn` is divided by **N**, and the churn window is tested on σ_i, not σ̂_i. The churn
//! noise ξ_i is pre-drawn and folded into `F_i`, so for fixed ξ the map is deterministic and
//! ParaDiGMS converges to exactly the sequential chain with the same ξ (`docs/samplers.md` §6).
//! The ParaDiGMS tolerance is normalised by the bridge variance from σ̂_i to σ_{i+1}. With
//! `S_churn = 0` this is [`crate::EdmHeun`] and no noise is drawn.
//!
//! | name here | symbol |
//! |---|---|
//! | `s_churn`, `s_min`, `s_max`, `s_noise` | S_churn, S_min, S_max, S_noise |
//! | `gamma` | γ_i |
//! | `sigma_hat` | σ̂_i |
//! | `churn` | √(σ̂_i² − σ_i²)·S_noise |

use candle_core::Tensor;
use cdm_core::{Denoiser, KarrasSigmas};

use crate::edm_heun::{bridge_variance, edm_sigmas, heun_evals, heun_rows};
use crate::step_map::{StepMap, check_rows, per_row, required_xi};
use crate::{Error, Result};

/// Options of an [`EdmStochastic`] sampler; the defaults are EDM's (`S_churn = 0`, `S_min = 0`,
/// `S_max = ∞`, `S_noise = 1`, N = 18). EDM's ImageNet-64 preset is N = 256, S_churn = 40,
/// S_min = 0.05, S_max = 50, S_noise = 1.003.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EdmStochasticConfig {
    /// Number of noise levels N (steps); at least 1.
    pub steps: usize,
    /// The ρ-schedule of σ.
    pub sigmas: KarrasSigmas,
    /// Total churn S_churn ≥ 0 (γ_i = S_churn/N, capped at √2 − 1).
    pub s_churn: f64,
    /// Lower end of the churn window on σ_i.
    pub s_min: f64,
    /// Upper end of the churn window on σ_i (may be +∞).
    pub s_max: f64,
    /// Scale S_noise ≥ 0 of the churn noise.
    pub s_noise: f64,
}

impl Default for EdmStochasticConfig {
    fn default() -> Self {
        Self {
            steps: 18,
            sigmas: KarrasSigmas::default(),
            s_churn: 0.0,
            s_min: 0.0,
            s_max: f64::INFINITY,
            s_noise: 1.0,
        }
    }
}

impl EdmStochasticConfig {
    /// The step map; rejects negative or non-finite churn options and `S_max < S_min`.
    pub fn build(&self) -> Result<EdmStochastic> {
        let sigmas = edm_sigmas(&self.sigmas, self.steps)?;
        for (field, v) in [("s_churn", self.s_churn), ("s_noise", self.s_noise), ("s_min", self.s_min)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::invalid(field, v, "must be finite and non-negative"));
            }
        }
        if self.s_max.is_nan() || self.s_max < self.s_min {
            return Err(Error::invalid("s_max", self.s_max, "must be at least s_min"));
        }
        let n = self.steps as f64;
        let (sigma_hat, churn) = sigmas[..self.steps]
            .iter()
            .map(|&s| {
                let gamma =
                    if self.s_min <= s && s <= self.s_max { (self.s_churn / n).min(2f64.sqrt() - 1.0) } else { 0.0 };
                let hat = s * (1.0 + gamma);
                (hat, (hat * hat - s * s).sqrt() * self.s_noise)
            })
            .unzip();
        Ok(EdmStochastic { sigmas, sigma_hat, churn })
    }
}

/// EDM Algorithm 2 as a step map; build it with [`EdmStochasticConfig::build`].
#[derive(Clone, Debug)]
pub struct EdmStochastic {
    sigmas: Vec<f64>,
    sigma_hat: Vec<f64>,
    churn: Vec<f64>,
}

impl EdmStochastic {
    /// σ_0 … σ_{N−1} followed by σ_N = 0.
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// The churned levels σ̂_0 … σ̂_{N−1}.
    pub fn sigma_hats(&self) -> &[f64] {
        &self.sigma_hat
    }
}

impl StepMap for EdmStochastic {
    fn steps(&self) -> usize {
        self.sigma_hat.len()
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
        bridge_variance(self.sigma_hat[step], self.sigmas[step + 1])
    }

    fn is_ode(&self) -> bool {
        self.churn.iter().all(|&c| c == 0.0)
    }

    fn apply(&self, d: &dyn Denoiser, x: &Tensor, steps: &[usize], xi: Option<&Tensor>) -> Result<Tensor> {
        check_rows("EdmStochastic::apply", x, steps, self.steps())?;
        let churn: Vec<f64> = steps.iter().map(|&i| self.churn[i]).collect();
        let x_hat = if churn.iter().all(|&c| c == 0.0) {
            x.clone()
        } else {
            let xi = required_xi("EdmStochastic::apply", x, xi)?;
            x.add(&xi.broadcast_mul(&per_row(&churn, x)?)?)?
        };
        let from: Vec<f64> = steps.iter().map(|&i| self.sigma_hat[i]).collect();
        let to: Vec<f64> = steps.iter().map(|&i| self.sigmas[i + 1]).collect();
        heun_rows(d, &x_hat, &from, &to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_is_divided_by_n_capped_and_windowed() {
        let cfg = EdmStochasticConfig { steps: 10, s_churn: 2.0, s_min: 0.05, s_max: 50.0, ..Default::default() };
        let edm = cfg.build().unwrap();
        for (s, h) in edm.sigmas().iter().zip(edm.sigma_hats()) {
            let want = if (0.05..=50.0).contains(s) { s * 1.2 } else { *s };
            assert!((h - want).abs() < 1e-12 * want, "σ={s}: σ̂={h}");
        }
        let capped = EdmStochasticConfig { s_churn: 100.0, ..Default::default() }.build().unwrap();
        assert!((capped.sigma_hats()[0] / 80.0 - 2f64.sqrt()).abs() < 1e-12);
        assert!(EdmStochasticConfig::default().build().unwrap().is_ode());
        assert!(!capped.is_ode());
        let bad = EdmStochasticConfig { s_churn: -1.0, ..Default::default() };
        assert!(matches!(bad.build(), Err(Error::InvalidArgument { field: "s_churn", .. })));
        let bad = EdmStochasticConfig { s_min: 2.0, s_max: 1.0, ..Default::default() };
        assert!(matches!(bad.build(), Err(Error::InvalidArgument { field: "s_max", .. })));
    }
}
