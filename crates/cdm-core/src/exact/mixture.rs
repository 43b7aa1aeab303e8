//! Mixtures of diagonal Gaussians `Σ_k π_k N(μ_k, diag(v_k))`.
//!
//! Component k noised at α is `N(a·μ_k, a²v_k + s²)` per coordinate; with responsibilities
//! `r_k(z) ∝ π_k N_k(z)`:
//!
//! ```text
//! log p_α(z) = LSE_k (log π_k + log N_k(z))
//! ε̂*(z, α)  = s · Σ_k r_k(z) · (z − a·μ_k) / (a²v_k + s²)
//! ```
//!
//! The 1-D two-mode mixture `0.5·N(−5, 1) + 0.5·N(5, 1)` of the paper is
//! [`GaussianMixture::two_mode_1d`]; its exact −log p(0) is 13.41894.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{ExactDensity, HALF_LN_2PI, eps_tensor};
use crate::log_snr::{log_sum_exp, noise_coef, signal_coef};
use crate::{Denoiser, Error, Result};

/// One diagonal component of a [`GaussianMixture`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MixtureComponent {
    /// Mixture weight π_k (normalised on construction).
    pub weight: f64,
    /// Mean μ_k.
    pub mean: Vec<f64>,
    /// Per-coordinate variances v_k.
    pub variance: Vec<f64>,
}

/// A mixture of diagonal Gaussians.
#[derive(Clone, Debug)]
pub struct GaussianMixture {
    components: Vec<MixtureComponent>,
    log_weights: Vec<f64>,
}

impl GaussianMixture {
    /// A mixture of `components`; weights are normalised to sum to one.
    pub fn new(components: Vec<MixtureComponent>) -> Result<Self> {
        let Some(first) = components.first() else {
            return Err(Error::invalid("components", "[]", "need at least one component"));
        };
        let d = first.mean.len();
        if d == 0 {
            return Err(Error::invalid("mean", "[]", "must have at least one dimension"));
        }
        for c in &components {
            if c.mean.len() != d || c.variance.len() != d {
                return Err(Error::shape("mixture component", [d, d], [c.mean.len(), c.variance.len()]));
            }
            if !(c.weight > 0.0 && c.weight.is_finite()) {
                return Err(Error::invalid("weight", c.weight, "must be positive and finite"));
            }
            if let Some(v) = c.variance.iter().find(|v| !(**v > 0.0 && v.is_finite())) {
                return Err(Error::invalid("variance", v, "must be positive and finite"));
            }
            if let Some(m) = c.mean.iter().find(|m| !m.is_finite()) {
                return Err(Error::invalid("mean", m, "must be finite"));
            }
        }
        // normalised relative to the largest weight, so finite weights whose sum overflows (two of
        // 1e308) still give their true proportions
        let largest = components.iter().map(|c| c.weight).fold(0.0, f64::max);
        let total: f64 = components.iter().map(|c| c.weight / largest).sum();
        let log_weights = components.iter().map(|c| (c.weight / largest / total).ln()).collect();
        Ok(Self { components, log_weights })
    }

    /// The paper's 1-D example `0.5·N(−5, 1) + 0.5·N(5, 1)`.
    pub fn two_mode_1d() -> Self {
        let comp = |m: f64| MixtureComponent { weight: 0.5, mean: vec![m], variance: vec![1.0] };
        Self::new(vec![comp(-5.0), comp(5.0)]).expect("valid mixture")
    }

    /// The components.
    pub fn components(&self) -> &[MixtureComponent] {
        &self.components
    }

    /// log π_k + log N_k(z) for every component at log-SNR α.
    fn joint_log_probs(&self, z: &[f64], a: f64, s: f64) -> Vec<f64> {
        self.components
            .iter()
            .zip(&self.log_weights)
            .map(|(c, lw)| {
                lw + z
                    .iter()
                    .zip(c.mean.iter().zip(&c.variance))
                    .map(|(zi, (m, v))| {
                        let var = a * a * v + s * s;
                        let r = zi - a * m;
                        -0.5 * r * r / var - 0.5 * var.ln() - HALF_LN_2PI
                    })
                    .sum::<f64>()
            })
            .collect()
    }
}

impl ExactDensity for GaussianMixture {
    fn dim(&self) -> usize {
        self.components[0].mean.len()
    }

    fn log_prob(&self, z: &[f64], log_snr: f64) -> f64 {
        log_sum_exp(&self.joint_log_probs(z, signal_coef(log_snr), noise_coef(log_snr)))
    }

    fn eps_into(&self, z: &[f64], log_snr: f64, out: &mut [f64]) {
        let (a, s) = (signal_coef(log_snr), noise_coef(log_snr));
        let joint = self.joint_log_probs(z, a, s);
        let norm = log_sum_exp(&joint);
        out.fill(0.0);
        for (c, lj) in self.components.iter().zip(&joint) {
            let r = (lj - norm).exp();
            for (o, (zi, (m, v))) in out.iter_mut().zip(z.iter().zip(c.mean.iter().zip(&c.variance))) {
                *o += r * s * (zi - a * m) / (a * a * v + s * s);
            }
        }
    }

    fn sample(&self, rng: &mut dyn rand::RngCore) -> Vec<f64> {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        let mut chosen = &self.components[self.components.len() - 1];
        for (c, lw) in self.components.iter().zip(&self.log_weights) {
            acc += lw.exp();
            if u < acc {
                chosen = c;
                break;
            }
        }
        chosen
            .mean
            .iter()
            .zip(&chosen.variance)
            .map(|(m, v)| m + v.sqrt() * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng))
            .collect()
    }
}

impl Denoiser for GaussianMixture {
    fn eps(&self, z: &candle_core::Tensor, log_snr: &candle_core::Tensor) -> Result<candle_core::Tensor> {
        eps_tensor(self, z, log_snr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_mode_log_density_at_zero_is_the_papers_value() {
        let gmm = GaussianMixture::two_mode_1d();
        assert!((-gmm.log_prob(&[0.0], f64::INFINITY) - 13.41894).abs() < 1e-5);
        // ζ = 2 noised density at z = 1: −log p_ζ(1) = 8.42943 (docs/math.md §7.1)
        assert!((-gmm.log_prob(&[1.0], 2.0) - 8.42943).abs() < 1e-5);
    }

    #[test]
    fn eps_is_the_scaled_score_by_finite_differences() {
        let comp =
            |w: f64, m: [f64; 2], v: [f64; 2]| MixtureComponent { weight: w, mean: m.to_vec(), variance: v.to_vec() };
        let gmm =
            GaussianMixture::new(vec![comp(0.3, [1.0, 2.0], [0.5, 0.1]), comp(0.7, [-1.0, 0.0], [1.0, 2.0])]).unwrap();
        let (z, h) = ([0.2, 0.9], 1e-5);
        for alpha in [-3.0, 0.0, 4.0] {
            let mut eps = [0.0; 2];
            gmm.eps_into(&z, alpha, &mut eps);
            for i in 0..2 {
                let (mut zp, mut zm) = (z, z);
                zp[i] += h;
                zm[i] -= h;
                let score = (gmm.log_prob(&zp, alpha) - gmm.log_prob(&zm, alpha)) / (2.0 * h);
                assert!((eps[i] + noise_coef(alpha) * score).abs() < 1e-7, "α={alpha}");
            }
        }
    }

    #[test]
    fn weights_whose_sum_overflows_keep_their_proportions() {
        let comp = |w: f64, m: f64| MixtureComponent { weight: w, mean: vec![m], variance: vec![1.0] };
        let huge = GaussianMixture::new(vec![comp(1e308, -5.0), comp(1e308, 5.0)]).unwrap();
        let plain = GaussianMixture::new(vec![comp(0.5, -5.0), comp(0.5, 5.0)]).unwrap();
        assert_eq!(huge.log_prob(&[0.3], 1.0), plain.log_prob(&[0.3], 1.0));
    }

    #[test]
    fn invalid_components_are_typed_errors() {
        let comp = |w: f64, v: f64| MixtureComponent { weight: w, mean: vec![0.0], variance: vec![v] };
        assert!(matches!(GaussianMixture::new(vec![]), Err(Error::InvalidArgument { field: "components", .. })));
        assert!(matches!(
            GaussianMixture::new(vec![comp(-1.0, 1.0)]),
            Err(Error::InvalidArgument { field: "weight", .. })
        ));
        assert!(matches!(
            GaussianMixture::new(vec![comp(1.0, 0.0)]),
            Err(Error::InvalidArgument { field: "variance", .. })
        ));
        let wrong = MixtureComponent { weight: 1.0, mean: vec![0.0, 1.0], variance: vec![1.0] };
        assert!(matches!(GaussianMixture::new(vec![wrong]), Err(Error::ShapeMismatch { .. })));
    }
}
