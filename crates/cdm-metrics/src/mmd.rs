//! Maximum mean discrepancy, exactly as the paper's evaluation code computes it (`docs/math.md` §12.1).
//!
//! Kernel (b is a *variance*; the prefactor is the 1-D one whatever the dimension):
//!
//! ```text
//! k_b(u, v) = (2πb)^(−1/2) · exp(−‖u − v‖² / (2b))
//! ```
//!
//! Unbiased U-statistic for generated points x_1…x_n and reference points y_1…y_m:
//!
//! ```text
//! MMD² = 2/(m(m−1)) Σ_{j<j'} k(y_j, y_j') + 1/(n(n−1)) Σ_{i≠i'} k(x_i, x_i') − 2/(nm) Σ_{i,j} k(x_i, y_j)
//! ```
//!
//! It is zero in expectation when both samples come from one distribution, so it can be
//! slightly negative. Cost O((n + m)²·d), split over threads by rows; every row's sum is
//! accumulated in a fixed order, so the result does not depend on the number of threads.
//!
//! Bandwidths: the paper's Dino value b = 0.03 is the maximiser of MMD(data, N(0, I)) over
//! `linspace(0.001, 3, 100)` ([`paper_bandwidth`]); the sequential-sampler notebook uses the
//! median of the pairwise squared distances of the reference set instead
//! ([`median_heuristic`]). Both depend on the reference data alone, so every model compared
//! against one reference set is scored with the same kernel.

use std::sync::atomic::{AtomicUsize, Ordering};

use cdm_core::NoiseSource;

use crate::{Error, Result};

/// The seed of the standard-normal sample [`paper_bandwidth`] compares the data with.
pub const BANDWIDTH_SEED: u64 = 0x6d6d64;

/// Rows handed to a thread at a time.
const ROW_BLOCK: usize = 16;

/// The unbiased MMD² between `x` (n points) and `y` (m points) with kernel variance `bandwidth`.
///
/// Points are row-major with `dim` finite coordinates each; n, m ≥ 2.
pub fn mmd2(x: &[f64], y: &[f64], dim: usize, bandwidth: f64) -> Result<f64> {
    Ok(mmd2_bandwidths(x, y, dim, &[bandwidth])?[0])
}

/// MMD² at several bandwidths, sharing one pass over the pairs.
pub fn mmd2_bandwidths(x: &[f64], y: &[f64], dim: usize, bandwidths: &[f64]) -> Result<Vec<f64>> {
    let n = rows("x", x, dim)?;
    let m = rows("y", y, dim)?;
    if n < 2 || m < 2 {
        return Err(Error::invalid("points", format!("n = {n}, m = {m}"), "need at least two points in each sample"));
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return Err(Error::invalid("points", "a non-finite coordinate", "must be finite"));
    }
    if bandwidths.is_empty() {
        return Err(Error::invalid("bandwidths", "[]", "need at least one bandwidth"));
    }
    if let Some(b) = bandwidths.iter().find(|b| !(**b > 0.0 && b.is_finite())) {
        return Err(Error::invalid("bandwidth", b, "must be positive and finite"));
    }
    let coef: Vec<f64> = bandwidths.iter().map(|b| -0.5 / b).collect();
    let s_xx = pair_sums(x, x, dim, &coef, true);
    let s_yy = pair_sums(y, y, dim, &coef, true);
    let s_xy = pair_sums(x, y, dim, &coef, false);
    let (nf, mf) = (n as f64, m as f64);
    Ok(bandwidths
        .iter()
        .enumerate()
        .map(|(k, b)| {
            let within = 2.0 * s_yy[k] / (mf * (mf - 1.0)) + 2.0 * s_xx[k] / (nf * (nf - 1.0));
            (within - 2.0 * s_xy[k] / (nf * mf)) / (2.0 * std::f64::consts::PI * b).sqrt()
        })
        .collect())
}

/// The median of all pairwise squared distances of the reference points, the zero diagonal
/// included (N² entries for N points, as the authors' notebook computes it on its reference
/// set). Never pool the samples being scored into it: each model would get its own kernel and
/// their MMDs would not be comparable.
///
/// Needs 4·N² bytes of scratch; subsample large sets first.
pub fn median_heuristic(reference: &[f64], dim: usize) -> Result<f64> {
    let n = rows("reference", reference, dim)?;
    if n == 0 {
        return Err(Error::invalid("points", 0, "need at least one point"));
    }
    let points: Vec<&[f64]> = reference.chunks_exact(dim).collect();
    let mut pairs = Vec::with_capacity(n * (n - 1) / 2);
    for (i, u) in points.iter().enumerate() {
        pairs.extend(points[i + 1..].iter().map(|v| sq_dist(u, v)));
    }
    // Sorted entries: n zeros, then every off-diagonal distance twice.
    let total = n * n;
    let mut entry = |r: usize| match r < n {
        true => 0.0,
        false => *pairs.select_nth_unstable_by((r - n) / 2, f64::total_cmp).1,
    };
    Ok(match total % 2 {
        1 => entry(total / 2),
        _ => 0.5 * (entry(total / 2 - 1) + entry(total / 2)),
    })
}

/// `linspace(0.001, 3, 100)`, the grid the paper searched for its Dino bandwidth.
pub fn paper_bandwidth_grid() -> Vec<f64> {
    let (lo, hi, n) = (0.001, 3.0, 100);
    (0..n).map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64).collect()
}

/// The bandwidth in `grid` maximising MMD(data, N(0, I)), the paper's rule (`docs/math.md` §12.1).
///
/// The normal sample has as many points as `data` and is drawn from [`BANDWIDTH_SEED`], so the
/// choice is reproducible. Ties go to the smallest bandwidth.
pub fn paper_bandwidth(data: &[f64], dim: usize, grid: &[f64]) -> Result<f64> {
    let n = rows("data", data, dim)?;
    let normal = NoiseSource::new(BANDWIDTH_SEED).fork("paper-bandwidth").streams(0, n).normal_f64(dim);
    let curve = mmd2_bandwidths(data, &normal, dim, grid)?;
    let best = (0..curve.len()).rev().max_by(|&a, &b| curve[a].total_cmp(&curve[b])).unwrap_or(0);
    tracing::debug!(bandwidth = grid[best], mmd2 = curve[best], "paper bandwidth");
    Ok(grid[best])
}

/// Number of `dim`-dimensional rows in `points`.
pub(crate) fn rows(what: &'static str, points: &[f64], dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(Error::invalid("dim", 0, "must be at least 1"));
    }
    if !points.len().is_multiple_of(dim) {
        return Err(Error::shape(what, format!("a multiple of dim = {dim} values"), points.len()));
    }
    Ok(points.len() / dim)
}

#[inline]
fn sq_dist(u: &[f64], v: &[f64]) -> f64 {
    u.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum()
}

/// `Σ_i Σ_j exp(coef_k·‖a_i − b_j‖²)` for every k, over all (i, j), or over j > i when
/// `upper` (then `a` and `b` are the same sample).
fn pair_sums(a: &[f64], b: &[f64], dim: usize, coef: &[f64], upper: bool) -> Vec<f64> {
    let n = a.len() / dim;
    let k = coef.len();
    let blocks = n.div_ceil(ROW_BLOCK);
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(blocks).max(1);
    let work = || {
        let mut done = Vec::new();
        loop {
            let block = next.fetch_add(1, Ordering::Relaxed);
            if block >= blocks {
                return done;
            }
            let rows = block * ROW_BLOCK..((block + 1) * ROW_BLOCK).min(n);
            let mut sums = vec![0.0; rows.len() * k];
            for (i, out) in rows.clone().zip(sums.chunks_exact_mut(k)) {
                let others = if upper { &b[(i + 1) * dim..] } else { b };
                row_sum(&a[i * dim..(i + 1) * dim], others, dim, coef, out);
            }
            done.push((block, sums));
        }
    };
    let mut row_sums = vec![0.0; n * k];
    let finished: Vec<(usize, Vec<f64>)> = if threads == 1 {
        work()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
            handles.into_iter().flat_map(|h| h.join().expect("MMD worker panicked")).collect()
        })
    };
    for (block, sums) in finished {
        row_sums[block * ROW_BLOCK * k..][..sums.len()].copy_from_slice(&sums);
    }
    let mut total = vec![0.0; k];
    for row in row_sums.chunks_exact(k) {
        for (t, r) in total.iter_mut().zip(row) {
            *t += r;
        }
    }
    total
}

/// `out_k = Σ_j exp(coef_k·‖u − v_j‖²)` over the rows `v_j` of `others`.
#[inline]
fn row_sum(u: &[f64], others: &[f64], dim: usize, coef: &[f64], out: &mut [f64]) {
    match (dim, coef) {
        (1, &[c]) => out[0] = lanes(others, 1, |v| exp_neg(c * (u[0] - v[0]) * (u[0] - v[0]))),
        (2, &[c]) => {
            let (u0, u1) = (u[0], u[1]);
            out[0] = lanes(others, 2, |v| {
                let (d0, d1) = (u0 - v[0], u1 - v[1]);
                exp_neg(c * (d0 * d0 + d1 * d1))
            });
        }
        (_, &[c]) => out[0] = lanes(others, dim, |v| exp_neg(c * sq_dist(u, v))),
        _ => {
            for v in others.chunks_exact(dim) {
                let d2 = sq_dist(u, v);
                for (o, c) in out.iter_mut().zip(coef) {
                    *o += exp_neg(c * d2);
                }
            }
        }
    }
}

/// Independent partial sums, so the loop vectorises while the order stays fixed.
const LANES: usize = 4;

/// `Σ_j term(v_j)` over the `dim`-rows of `others`, in [`LANES`] interleaved partial sums.
#[inline(always)]
fn lanes(others: &[f64], dim: usize, term: impl Fn(&[f64]) -> f64) -> f64 {
    let mut acc = [0.0; LANES];
    let mut blocks = others.chunks_exact(dim * LANES);
    for block in &mut blocks {
        for l in 0..LANES {
            acc[l] += term(&block[l * dim..(l + 1) * dim]);
        }
    }
    let tail: f64 = blocks.remainder().chunks_exact(dim).map(term).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// 1/i! for i = 0…13.
#[rustfmt::skip]
const INV_FACTORIALS: [f64; 14] = [1.0, 1.0, 0.5, 0.16666666666666666, 0.041666666666666664, 0.008333333333333333, 0.001388888888888889, 0.0001984126984126984, 2.48015873015873e-05, 2.7557319223985893e-06, 2.755731922398589e-07, 2.505210838544172e-08, 2.08767569878681e-09, 1.6059043836821613e-10];

/// `exp(x)` for `x ≤ 0`, branch-free so that it vectorises; within 2 ulp of `f64::exp`, and
/// 0 below −708 (where `exp` turns subnormal). `x` must not be NaN.
///
/// `x = k·ln 2 + r` with `|r| ≤ ln 2 / 2` (Cody–Waite), `exp(r)` by its degree-13 Taylor
/// polynomial (truncation < 2·10⁻¹⁶, Estrin's scheme), and `2^k` assembled in the exponent bits.
#[inline(always)]
fn exp_neg(x: f64) -> f64 {
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5·2⁵²: adding it rounds to an integer
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let c = &INV_FACTORIALS;
    let xc = x.max(-708.0);
    let shifted = xc * std::f64::consts::LOG2_E + SHIFT;
    let k = shifted - SHIFT;
    let r = (xc - k * LN2_HI) - k * LN2_LO;
    let r2 = r * r;
    let r4 = r2 * r2;
    let q0 = (c[0] + c[1] * r) + (c[2] + c[3] * r) * r2;
    let q1 = (c[4] + c[5] * r) + (c[6] + c[7] * r) * r2;
    let q2 = (c[8] + c[9] * r) + (c[10] + c[11] * r) * r2;
    let q3 = c[12] + c[13] * r;
    let p = (q0 + q1 * r4) + (q2 + q3 * r4) * (r4 * r4);
    let k_bits = shifted.to_bits().wrapping_sub(SHIFT.to_bits());
    let scale = f64::from_bits(k_bits.wrapping_add(1023) << 52);
    let keep = u64::from(x >= -708.0).wrapping_neg();
    f64::from_bits((p * scale).to_bits() & keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_matches_std_within_two_ulp() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -708.0 * i as f64 / 200_000.0;
            let (fast, exact) = (exp_neg(x), x.exp());
            worst = worst.max((fast - exact).abs() / (exact * f64::EPSILON));
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!((exp_neg(0.0), exp_neg(-709.0), exp_neg(f64::NEG_INFINITY)), (1.0, 0.0, 0.0));
    }
}
