//! The Gaussian reference density of the ITD integral.
//!
//! For `N(μ, Σ)` with eigenvalues `λ_1…λ_d` (`docs/math.md` §4):
//!
//! ```text
//! h_G        = d/2·log(2πe) + ½ Σ_i log λ_i            (differential entropy, nats)
//! mmse_G(α)  = Σ_i σ(α + log λ_i)                      (ε-MMSE of the Gaussian at α)
//! −log p(x)  = h_G + ½ ∫ (E_ε‖ε − ε̂*(z_α, α)‖² − mmse_G(α)) dα
//! ```
//!
//! The base changes only the integrand outside the clip window (its exact integral is the same
//! for every base), so a base close to the data lowers both truncation bias and variance.
//! The authors' heuristic for the logistic proposal (`docs/math.md` §4) is
//! `m = −mean(log λ)`, `s = √(1 + (3/π)·Var(log λ))` for d > 2 and `s = 3` otherwise
//! (the 3/π is theirs; a variance match would be 3/π²).

use nalgebra::{DMatrix, SymmetricEigen};

use crate::log_snr::sigmoid;
use crate::{Error, Result};

/// Variances below this are clamped before taking logs (constant pixels).
const MIN_VARIANCE: f64 = 1e-12;

/// Which covariance of the data the Gaussian base uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaseCovariance {
    /// Per-dimension variances (what every script of the paper uses).
    #[default]
    Diagonal,
    /// The full sample covariance's eigenvalues; needs more samples than dimensions.
    Full,
}

/// A Gaussian described by the logs of its covariance eigenvalues.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GaussianBase {
    log_lambda: Vec<f64>,
}

impl GaussianBase {
    /// The standard normal `N(0, I_d)`.
    pub fn standard(dim: usize) -> Self {
        Self { log_lambda: vec![0.0; dim] }
    }

    /// A base from the logs of its eigenvalues.
    pub fn from_log_eigenvalues(log_lambda: Vec<f64>) -> Result<Self> {
        if log_lambda.is_empty() {
            return Err(Error::invalid("log_lambda", "[]", "need at least one dimension"));
        }
        if let Some(v) = log_lambda.iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid("log_lambda", v, "must be finite"));
        }
        Ok(Self { log_lambda })
    }

    /// The base fitted to `n` samples of dimension `dim`, row-major in `x` (unbiased variances).
    pub fn from_data(x: &[f64], n: usize, dim: usize, covariance: BaseCovariance) -> Result<Self> {
        if dim == 0 || x.len() != n * dim {
            return Err(Error::shape("GaussianBase::from_data", [n, dim], [x.len()]));
        }
        if n < 2 {
            return Err(Error::invalid("samples", n, "need at least 2 samples"));
        }
        if let Some(v) = x.iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid("data", v, "must be finite"));
        }
        let mut mean = vec![0.0; dim];
        for row in x.chunks(dim) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v / n as f64;
            }
        }
        let lambdas: Vec<f64> = match covariance {
            BaseCovariance::Diagonal => (0..dim)
                .map(|j| x.chunks(dim).map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / (n - 1) as f64)
                .collect(),
            BaseCovariance::Full => {
                if n <= dim {
                    return Err(Error::invalid("samples", n, "full covariance needs more samples than dimensions"));
                }
                let centred = DMatrix::from_fn(n, dim, |i, j| x[i * dim + j] - mean[j]);
                let cov = centred.tr_mul(&centred) / (n - 1) as f64;
                SymmetricEigen::new(cov).eigenvalues.iter().copied().collect()
            }
        };
        Ok(Self { log_lambda: lambdas.iter().map(|l| l.max(MIN_VARIANCE).ln()).collect() })
    }

    /// Dimension d.
    pub fn dim(&self) -> usize {
        self.log_lambda.len()
    }

    /// log λ_i.
    pub fn log_eigenvalues(&self) -> &[f64] {
        &self.log_lambda
    }

    /// Differential entropy h_G in nats.
    pub fn entropy(&self) -> f64 {
        let d = self.dim() as f64;
        0.5 * d * (2.0 * std::f64::consts::PI * std::f64::consts::E).ln() + 0.5 * self.log_lambda.iter().sum::<f64>()
    }

    /// mmse_G(α) = Σ_i σ(α + log λ_i).
    pub fn mmse(&self, log_snr: f64) -> f64 {
        self.log_lambda.iter().map(|l| sigmoid(log_snr + l)).sum()
    }

    /// The authors' (loc, scale) heuristic for the logistic proposal.
    pub fn logistic_heuristic(&self) -> (f64, f64) {
        let d = self.dim() as f64;
        let mean = self.log_lambda.iter().sum::<f64>() / d;
        let scale = if self.dim() > 2 {
            let var = self.log_lambda.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (d - 1.0);
            (1.0 + 3.0 / std::f64::consts::PI * var).sqrt()
        } else {
            3.0
        };
        (-mean, scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_dimensional_two_mode_data_gives_the_papers_loc() {
        // Var of 0.5·N(±5, 1) is 26, so loc = −ln 26 = −3.258 and scale = 3 (d ≤ 2).
        let base = GaussianBase::from_log_eigenvalues(vec![26f64.ln()]).unwrap();
        let (loc, scale) = base.logistic_heuristic();
        assert!((loc + 3.258).abs() < 1e-3 && scale == 3.0);
    }

    #[test]
    fn mmse_of_the_standard_normal_integrates_to_the_log_eigenvalue_shift() {
        // ∫ [σ(α + c) − σ(α)] dα = c
        let base = GaussianBase::from_log_eigenvalues(vec![1.7]).unwrap();
        let std = GaussianBase::standard(1);
        let h = 1e-3;
        let integral: f64 =
            (0..80_000).map(|i| -40.0 + (i as f64 + 0.5) * h).map(|a| base.mmse(a) - std.mmse(a)).sum::<f64>() * h;
        assert!((integral - 1.7).abs() < 1e-6);
        assert!((base.entropy() - std.entropy() - 0.85).abs() < 1e-12);
    }

    #[test]
    fn full_and_diagonal_bases_from_data() {
        // rows on the line y = x: diagonal sees two equal variances, full sees one near zero
        let x: Vec<f64> = (0..10).flat_map(|i| [i as f64, i as f64]).collect();
        let diag = GaussianBase::from_data(&x, 10, 2, BaseCovariance::Diagonal).unwrap();
        assert!((diag.log_eigenvalues()[0] - (55.0f64 / 6.0).ln()).abs() < 1e-12);
        let full = GaussianBase::from_data(&x, 10, 2, BaseCovariance::Full).unwrap();
        let mut l = full.log_eigenvalues().to_vec();
        l.sort_by(f64::total_cmp);
        assert!((l[0] - MIN_VARIANCE.ln()).abs() < 1e-6 && (l[1] - (110.0f64 / 6.0).ln()).abs() < 1e-9);
        assert!(matches!(
            GaussianBase::from_data(&x[..4], 2, 2, BaseCovariance::Full),
            Err(Error::InvalidArgument { field: "samples", .. })
        ));
        assert!(matches!(
            GaussianBase::from_data(&x, 3, 2, BaseCovariance::Diagonal),
            Err(Error::ShapeMismatch { .. })
        ));
    }
}
