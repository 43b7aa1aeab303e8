//! Kernel Inception Distance: the unbiased MMD² of feature sets under a cubic polynomial
//! kernel, averaged over random subsets (Bińkowski et al., 2018; torch-fidelity's defaults).
//!
//! Kernel on d-dimensional features: `k(x, y) = (x·y/d + 1)³`. For subsets X = {x_i} and
//! Y = {y_j} of equal size m:
//!
//! ```text
//! MMD²_u = 1/(m(m−1)) Σ_{i≠i'} k(x_i, x_i') + 1/(m(m−1)) Σ_{j≠j'} k(y_j, y_j') − 2/m² Σ_{i,j} k(x_i, y_j)
//! ```
//!
//! Its expectation is the population MMD², zero when both sets come from one distribution, at
//! every m — unlike FID, KID has no small-sample bias, which is why it is reported beside it.
//! The estimate is repeated on `subsets` pairs of subsets, each drawn without replacement from
//! either set; KID is their mean, and the spread is their standard deviation (population form,
//! as torch-fidelity reports it). The subset size is capped at the smaller set, so with few
//! images every subset is the whole set and the spread is 0.

use nalgebra::DMatrix;
use rand::seq::index::sample;

use cdm_core::NoiseSource;

use crate::{Error, Result};

/// How KID draws its subsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KidOptions {
    /// Number of subset pairs (torch-fidelity: 100).
    pub subsets: usize,
    /// Points per subset before capping at the smaller set (torch-fidelity: 1000).
    pub subset_size: usize,
    /// Seed of the subset draws.
    pub seed: u64,
}

impl Default for KidOptions {
    fn default() -> Self {
        Self { subsets: 100, subset_size: 1000, seed: 0 }
    }
}

/// KID with its spread over subsets.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Kid {
    /// Mean of the subsets' MMD².
    pub mean: f64,
    /// Standard deviation of the subsets' MMD² (divisor = number of subsets).
    pub std: f64,
    /// Subset pairs used.
    pub subsets: usize,
    /// Points per subset actually used.
    pub subset_size: usize,
}

/// KID between feature sets `x` (n rows) and `y` (m rows) of `dim` values; n, m ≥ 2.
pub fn kid(x: &[f64], y: &[f64], dim: usize, options: &KidOptions) -> Result<Kid> {
    let n = crate::mmd::rows("x", x, dim)?;
    let m = crate::mmd::rows("y", y, dim)?;
    if n < 2 || m < 2 {
        return Err(Error::invalid(
            "features",
            format!("n = {n}, m = {m}"),
            "KID needs at least two feature vectors in each set",
        ));
    }
    if options.subsets == 0 {
        return Err(Error::invalid("subsets", 0, "need at least one subset"));
    }
    if options.subset_size < 2 {
        return Err(Error::invalid("subset_size", options.subset_size, "must be at least 2"));
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return Err(Error::invalid("features", "a non-finite value", "must be finite"));
    }
    let size = options.subset_size.min(n).min(m);
    let noise = NoiseSource::new(options.seed).fork("kid-subsets");
    let mut values = Vec::with_capacity(options.subsets);
    let mut xs = vec![0.0; size * dim];
    let mut ys = vec![0.0; size * dim];
    for s in 0..options.subsets {
        let mut rng = noise.stream(s as u64);
        gather(x, dim, &sample(&mut rng, n, size).into_vec(), &mut xs);
        gather(y, dim, &sample(&mut rng, m, size).into_vec(), &mut ys);
        values.push(polynomial_mmd2(&xs, &ys, dim));
    }
    let k = values.len() as f64;
    let mean = values.iter().sum::<f64>() / k;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / k).sqrt();
    Ok(Kid { mean, std, subsets: options.subsets, subset_size: size })
}

fn gather(points: &[f64], dim: usize, rows: &[usize], out: &mut [f64]) {
    for (dst, &r) in out.chunks_exact_mut(dim).zip(rows) {
        dst.copy_from_slice(&points[r * dim..(r + 1) * dim]);
    }
}

/// The unbiased MMD² of equal-size sets `x` and `y` under `(u·v/d + 1)³` (module doc); the
/// Gram matrices are matrix products.
pub fn polynomial_mmd2(x: &[f64], y: &[f64], dim: usize) -> f64 {
    let m = x.len() / dim;
    let (xm, ym) = (DMatrix::from_row_slice(m, dim, x), DMatrix::from_row_slice(m, dim, y));
    let kernel = |a: &DMatrix<f64>, b: &DMatrix<f64>| (a * b.transpose()).map(|g| (g / dim as f64 + 1.0).powi(3));
    let off_diagonal = |k: DMatrix<f64>| k.sum() - k.trace();
    let mf = m as f64;
    (off_diagonal(kernel(&xm, &xm)) + off_diagonal(kernel(&ym, &ym))) / (mf * (mf - 1.0))
        - 2.0 * kernel(&xm, &ym).sum() / (mf * mf)
}
