//! Sliced 2-Wasserstein distance between point clouds.
//!
//! For empirical measures μ (n points) and ν (m points) in ℝ^d and unit directions θ_1…θ_L
//! drawn uniformly on the sphere,
//!
//! ```text
//! SW₂(μ, ν) = ( (1/L) Σ_l W₂²(θ_l·μ, θ_l·ν) )^(1/2)
//! W₂²(a, b) = ∫₀¹ (F_a⁻¹(u) − F_b⁻¹(u))² du
//! ```
//!
//! The 1-D W₂ is exact: both quantile functions are step functions with breakpoints at i/n and
//! j/m, so after sorting the integral is a finite sum over the merged breakpoints (n ≠ m
//! needs no interpolation). The breakpoints are compared in integer units of 1/(nm), so the
//! distance is exactly symmetric. Directions come from a [`NoiseSource`]: direction l is
//! drawn from stream l of the source's `"sliced-wasserstein"` fork.

use cdm_core::NoiseSource;

use crate::mmd::rows;
use crate::{Error, Result};

/// The exact W₂ between two 1-D empirical distributions (any sizes ≥ 1).
pub fn wasserstein_1d(a: &[f64], b: &[f64]) -> Result<f64> {
    if a.is_empty() || b.is_empty() {
        return Err(Error::invalid("points", format!("{} and {}", a.len(), b.len()), "need at least one point each"));
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
    Ok(w2_sq_sorted(&a, &b).sqrt())
}

/// The sliced W₂ between `x` (n points) and `y` (m points), row-major with `dim` coordinates,
/// averaged over `directions` random directions.
pub fn sliced_wasserstein(x: &[f64], y: &[f64], dim: usize, directions: usize, noise: &NoiseSource) -> Result<f64> {
    let n = rows("x", x, dim)?;
    let m = rows("y", y, dim)?;
    if n == 0 || m == 0 {
        return Err(Error::invalid("points", format!("n = {n}, m = {m}"), "need at least one point each"));
    }
    if directions == 0 {
        return Err(Error::invalid("directions", 0, "must be at least 1"));
    }
    let source = noise.fork("sliced-wasserstein");
    let mut total = 0.0;
    for l in 0..directions {
        let theta = direction(&source, l as u64, dim);
        let project = |p: &[f64]| {
            let mut v: Vec<f64> = p.chunks_exact(dim).map(|r| r.iter().zip(&theta).map(|(a, t)| a * t).sum()).collect();
            v.sort_unstable_by(f64::total_cmp);
            v
        };
        total += w2_sq_sorted(&project(x), &project(y));
    }
    Ok((total / directions as f64).sqrt())
}

/// A uniform unit vector from stream `index` (redrawn in the measure-zero case of a zero draw).
fn direction(source: &NoiseSource, index: u64, dim: usize) -> Vec<f64> {
    let mut streams = source.streams(index, 1);
    loop {
        let g = streams.normal_f64(dim);
        let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            return g.into_iter().map(|v| v / norm).collect();
        }
    }
}

/// ∫₀¹ (F_a⁻¹ − F_b⁻¹)² for sorted, non-empty `a` and `b`.
fn w2_sq_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len() as u64, b.len() as u64);
    let (mut i, mut j, mut prev, mut acc) = (0u64, 0u64, 0u64, 0.0);
    while i < n && j < m {
        // the next breakpoints (i+1)/n and (j+1)/m, in units of 1/(nm)
        let (next_a, next_b) = ((i + 1) * m, (j + 1) * n);
        let next = next_a.min(next_b);
        let d = a[i as usize] - b[j as usize];
        acc += (next - prev) as f64 * d * d;
        prev = next;
        i += u64::from(next_a == next);
        j += u64::from(next_b == next);
    }
    acc / (n * m) as f64
}
