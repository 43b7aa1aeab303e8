//! Full-covariance Gaussian `N(μ, Σ)`.
//!
//! With the eigendecomposition `Σ = U·diag(λ)·Uᵀ` (computed once), the noised covariance is
//! `U·diag(a²λ + s²)·Uᵀ`, so with `y = Uᵀ(z − a·μ)` and `v_i = a²λ_i + s²`:
//!
//! ```text
//! log p_α(z) = −½ Σ_i (y_i²/v_i + ln v_i + ln 2π)
//! ε̂*(z, α)  = s · U·(y / v)
//! ```

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand_distr::{Distribution, StandardNormal};

use super::{ExactDensity, HALF_LN_2PI, eps_tensor};
use crate::log_snr::{noise_coef, signal_coef};
use crate::{Denoiser, Error, Result};

/// A Gaussian with mean μ and symmetric positive-definite covariance Σ.
#[derive(Clone, Debug)]
pub struct Gaussian {
    mean: DVector<f64>,
    eigvecs: DMatrix<f64>,
    eigvals: DVector<f64>,
}

impl Gaussian {
    /// `N(mean, cov)` with `cov` given row-major (d·d values).
    pub fn new(mean: Vec<f64>, cov: Vec<f64>) -> Result<Self> {
        let d = mean.len();
        if d == 0 {
            return Err(Error::invalid("mean", "[]", "must have at least one dimension"));
        }
        if cov.len() != d * d {
            return Err(Error::shape("Gaussian covariance", [d, d], [cov.len()]));
        }
        let cov = DMatrix::from_row_slice(d, d, &cov);
        let asym = (&cov - cov.transpose()).abs().max();
        if !cov.iter().all(|v| v.is_finite()) || asym > 1e-10 * cov.abs().max().max(1.0) {
            return Err(Error::NotPositiveDefinite { what: "covariance" });
        }
        let eig = SymmetricEigen::new(cov);
        if eig.eigenvalues.iter().any(|&l| l <= 0.0) {
            return Err(Error::NotPositiveDefinite { what: "covariance" });
        }
        Ok(Self { mean: DVector::from_vec(mean), eigvecs: eig.eigenvectors, eigvals: eig.eigenvalues })
    }

    /// The isotropic `N(mean, var·I)`.
    pub fn isotropic(mean: Vec<f64>, var: f64) -> Result<Self> {
        let d = mean.len();
        let mut cov = vec![0.0; d * d];
        for i in 0..d {
            cov[i * d + i] = var;
        }
        Self::new(mean, cov)
    }

    /// The mean μ.
    pub fn mean(&self) -> &[f64] {
        self.mean.as_slice()
    }

    /// The eigenvalues of Σ.
    pub fn eigenvalues(&self) -> &[f64] {
        self.eigvals.as_slice()
    }

    /// The covariance Σ, row-major.
    pub fn covariance(&self) -> Vec<f64> {
        let cov = &self.eigvecs * DMatrix::from_diagonal(&self.eigvals) * self.eigvecs.transpose();
        cov.transpose().as_slice().to_vec()
    }

    fn project(&self, z: &[f64], a: f64) -> DVector<f64> {
        self.eigvecs.tr_mul(&(DVector::from_column_slice(z) - a * &self.mean))
    }
}

impl ExactDensity for Gaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn log_prob(&self, z: &[f64], log_snr: f64) -> f64 {
        let (a, s) = (signal_coef(log_snr), noise_coef(log_snr));
        let y = self.project(z, a);
        y.iter()
            .zip(self.eigvals.iter())
            .map(|(yi, l)| {
                let v = a * a * l + s * s;
                -0.5 * yi * yi / v - 0.5 * v.ln() - HALF_LN_2PI
            })
            .sum()
    }

    fn eps_into(&self, z: &[f64], log_snr: f64, out: &mut [f64]) {
        let (a, s) = (signal_coef(log_snr), noise_coef(log_snr));
        let mut y = self.project(z, a);
        for (yi, l) in y.iter_mut().zip(self.eigvals.iter()) {
            *yi *= s / (a * a * l + s * s);
        }
        out.copy_from_slice((&self.eigvecs * y).as_slice());
    }

    fn sample(&self, rng: &mut dyn rand::RngCore) -> Vec<f64> {
        let g = DVector::from_iterator(
            self.dim(),
            self.eigvals.iter().map(|l| l.sqrt() * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, rng)),
        );
        (&self.mean + &self.eigvecs * g).as_slice().to_vec()
    }
}

impl Denoiser for Gaussian {
    fn eps(&self, z: &candle_core::Tensor, log_snr: &candle_core::Tensor) -> Result<candle_core::Tensor> {
        eps_tensor(self, z, log_snr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Gaussian {
        Gaussian::new(vec![1.0, -2.0], vec![2.0, 0.8, 0.8, 1.0]).unwrap()
    }

    #[test]
    fn clean_log_density_matches_the_textbook_formula() {
        let g = example();
        let (x, y) = (0.3 - 1.0, 0.7 + 2.0);
        let det: f64 = 2.0 * 1.0 - 0.64;
        // Σ⁻¹ = [[1, −0.8], [−0.8, 2]] / det
        let quad = (x * x - 1.6 * x * y + 2.0 * y * y) / det;
        let want = -0.5 * quad - 0.5 * det.ln() - 2.0 * HALF_LN_2PI;
        assert!((g.log_prob(&[0.3, 0.7], f64::INFINITY) - want).abs() < 1e-12);
        let cov = g.covariance();
        assert!((cov[1] - 0.8).abs() < 1e-12 && (cov[2] - 0.8).abs() < 1e-12);
    }

    #[test]
    fn eps_is_the_scaled_score_by_finite_differences() {
        let g = example();
        let (z, alpha, h) = ([0.4, -1.1], 0.7, 1e-5);
        let mut eps = [0.0; 2];
        g.eps_into(&z, alpha, &mut eps);
        for i in 0..2 {
            let (mut zp, mut zm) = (z, z);
            zp[i] += h;
            zm[i] -= h;
            let score = (g.log_prob(&zp, alpha) - g.log_prob(&zm, alpha)) / (2.0 * h);
            assert!((eps[i] + noise_coef(alpha) * score).abs() < 1e-7);
        }
    }

    #[test]
    fn invalid_covariances_are_typed_errors() {
        assert!(matches!(
            Gaussian::new(vec![0.0, 0.0], vec![1.0, 2.0, 2.0, 1.0]),
            Err(Error::NotPositiveDefinite { .. })
        ));
        assert!(matches!(
            Gaussian::new(vec![0.0, 0.0], vec![1.0, 0.5, 0.0, 1.0]),
            Err(Error::NotPositiveDefinite { .. })
        ));
        assert!(matches!(Gaussian::new(vec![0.0, 0.0], vec![1.0; 3]), Err(Error::ShapeMismatch { .. })));
        assert!(Gaussian::new(vec![], vec![]).is_err());
    }
}
