//! The Fréchet distance between Gaussians fitted to two feature sets (FID when the features
//! are the Inception pool features).
//!
//! Fit: `μ = (1/n) Σ f_i` and the unbiased covariance `Σ = (1/(n−1)) Σ (f_i − μ)(f_i − μ)ᵀ`.
//! Distance between N(μ₁, Σ₁) and N(μ₂, Σ₂):
//!
//! ```text
//! d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}
//! ```
//!
//! `(Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}` has the same trace as the `(Σ₁Σ₂)^{1/2}` of the usual
//! statement (the two products are similar), but it is symmetric positive semi-definite: the
//! trace of its root is `Σ_k √λ_k` over the eigenvalues of `M = Σ₁^{1/2} Σ₂ Σ₁^{1/2}`, from a
//! symmetric eigendecomposition. Any factor `Σ₁ = F Fᵀ` gives the same eigenvalues through
//! `M = Fᵀ Σ₂ F` (`F Fᵀ Σ₂` and `Fᵀ Σ₂ F` share them), so when Σ₁ is positive definite its
//! Cholesky factor is used — one eigenvalue-only decomposition in all, skipping the
//! eigenvectors that `Σ₁^{1/2}` would need (at d = 2048, nalgebra's decomposition with vectors
//! takes minutes on one core). When Cholesky fails (Σ₁
//! singular, as with fewer samples than dimensions) `F = Σ₁^{1/2} = Q Λ^{1/2} Qᵀ` from
//! `Σ₁ = Q Λ Qᵀ`. Eigenvalues that round to slightly below zero are taken as zero. Everything
//! is f64 (nalgebra).
//!
//! With n samples the plug-in estimate is biased upwards by roughly `c/n` (the trace term of
//! noisy covariances), so FIDs are only comparable at equal n; [`super::kid`] has no such bias.

use nalgebra::{DMatrix, DVector};

use crate::{Error, Result};

/// Mean and covariance of a feature set.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureStats {
    /// Number of feature vectors they were fitted to.
    pub n: usize,
    /// Mean, length d.
    pub mean: Vec<f64>,
    /// Unbiased covariance, d×d row-major.
    pub cov: Vec<f64>,
}

impl FeatureStats {
    /// Fits the mean and unbiased covariance of `features` (n rows of `dim` values, n ≥ 2).
    pub fn fit(features: &[f64], dim: usize) -> Result<Self> {
        let n = crate::mmd::rows("features", features, dim)?;
        if n < 2 {
            return Err(Error::invalid(
                "features",
                format!("{n} vectors"),
                "a covariance needs at least two feature vectors",
            ));
        }
        if features.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid("features", "a non-finite value", "must be finite"));
        }
        let x = DMatrix::from_row_slice(n, dim, features);
        let mean = x.row_mean();
        let centred = DMatrix::from_fn(n, dim, |i, j| x[(i, j)] - mean[j]);
        let cov = centred.tr_mul(&centred) / (n as f64 - 1.0);
        Ok(Self { n, mean: mean.iter().copied().collect(), cov: cov.transpose().as_slice().to_vec() })
    }

    /// Statistics given directly (e.g. of a known Gaussian); `cov` is d×d row-major, symmetric.
    pub fn new(mean: Vec<f64>, cov: Vec<f64>, n: usize) -> Result<Self> {
        let d = mean.len();
        if d == 0 {
            return Err(Error::invalid("mean", "[]", "needs at least one dimension"));
        }
        if cov.len() != d * d {
            return Err(Error::shape("cov", format!("{d}×{d} = {} values", d * d), cov.len()));
        }
        if mean.iter().chain(&cov).any(|v| !v.is_finite()) {
            return Err(Error::invalid("stats", "a non-finite value", "must be finite"));
        }
        let asym = (0..d)
            .flat_map(|i| (0..d).map(move |j| (i, j)))
            .map(|(i, j)| (cov[i * d + j] - cov[j * d + i]).abs())
            .fold(0.0, f64::max);
        let scale = cov.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
        if asym > 1e-9 * scale {
            return Err(Error::invalid("cov", format!("max |Σ_ij − Σ_ji| = {asym:e}"), "must be symmetric"));
        }
        Ok(Self { n, mean, cov })
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }
}

/// The Fréchet distance d² between the Gaussians of `a` and `b` (module doc).
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Result<f64> {
    let d = a.dim();
    if b.dim() != d {
        return Err(Error::shape("frechet distance", format!("feature dimension {d}"), b.dim()));
    }
    let s1 = DMatrix::from_row_slice(d, d, &a.cov);
    let factor = match s1.clone().cholesky() {
        Some(chol) => chol.l(),
        None => {
            let eig = s1.symmetric_eigen();
            let roots = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
            let q = &eig.eigenvectors;
            q * DMatrix::from_diagonal(&roots) * q.transpose()
        }
    };
    Ok(distance_with_factor(a, b, &factor))
}

/// d² given any `F` with `Σ₁ = F Fᵀ` (d×k).
fn distance_with_factor(a: &FeatureStats, b: &FeatureStats, f: &DMatrix<f64>) -> f64 {
    let d = a.dim();
    let mu = DVector::from_column_slice(&a.mean) - DVector::from_column_slice(&b.mean);
    let s2 = DMatrix::from_row_slice(d, d, &b.cov);
    let m = f.tr_mul(&s2) * f;
    let m = (&m + m.transpose()) * 0.5; // symmetric up to rounding; make it exact
    let tr_root: f64 = m.symmetric_eigenvalues().iter().map(|l| l.max(0.0).sqrt()).sum();
    let trace = |c: &[f64]| (0..d).map(|i| c[i * d + i]).sum::<f64>();
    mu.norm_squared() + trace(&a.cov) + trace(&b.cov) - 2.0 * tr_root
}

/// FID between two feature sets (n₁ and n₂ rows of `dim` values, each ≥ 2).
///
/// With fewer rows than dimensions in `x` (n₁ − 1 < d), the centred rows themselves are the
/// factor, `F = (X − 1μ₁ᵀ)ᵀ/√(n₁ − 1)`, and `M = Fᵀ Σ₂ F` is only n₁×n₁.
pub fn fid_from_features(x: &[f64], y: &[f64], dim: usize) -> Result<f64> {
    let (a, b) = (FeatureStats::fit(x, dim)?, FeatureStats::fit(y, dim)?);
    if b.dim() != a.dim() {
        return Err(Error::shape("frechet distance", format!("feature dimension {dim}"), b.dim()));
    }
    if a.n > dim {
        return frechet_distance(&a, &b);
    }
    let scale = 1.0 / (a.n as f64 - 1.0).sqrt();
    let f = DMatrix::from_fn(dim, a.n, |j, i| (x[i * dim + j] - a.mean[j]) * scale);
    Ok(distance_with_factor(&a, &b, &f))
}
