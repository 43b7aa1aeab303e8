//! Scalar numerics and blocked reductions shared by the CPU kernels (the crate-private `Real`
//! trait).
//!
//! The kernels are generic over f32 and f64. f64 uses the standard library's `exp` and libm's
//! `erfc` (via `candle_core::cpu::erf`): it is the accurate path the finite-difference tests run
//! on. f32 uses branch-free code that LLVM vectorises:
//!
//! - `eˣ`: Cody–Waite reduction `x = n·ln2 + r`, |r| ≤ ln2/2, a degree-7 polynomial (Cephes
//!   `expf`) and `2ⁿ` built from the exponent bits; ≤ 1e-7 relative error (measured 8e-8),
//!   0 below −87.34, saturating at e^88.37 ≈ 2.4e38 above.
//! - `Φ(z)`: `Φ(−|z|) = ½·erfc(u)`, `u = |z|/√2`, with the Chebyshev fit
//!   `erfc(u) = t·exp(−u² + P(t))`, `t = 1/(1 + u/2)` (Numerical Recipes' `erfcc`, 1.2e-7
//!   relative everywhere), evaluated as `t·e^{−z²/2}·e^{P(t)}` so that `e^{−z²/2}` is rounded
//!   once and doubles as `√(2π)·φ(z)`; `Φ(|z|) = 1 − Φ(−|z|)`. Being an erfc, it keeps its
//!   relative accuracy in the negative tail (no `1 + erf` cancellation): measured against libm
//!   at the same f32 input, ≤ 4.5e-7 relative for |z| < 2, ≤ 6e-7 for |z| < 4 and ≤ 1.2e-6 for
//!   |z| ≤ 6 (where Φ's own condition number, about z² + 1, already turns half an ulp of input
//!   into 1e-6).
//! - `(sin t, cos t)` together: `n = round(t·2/π)` and `r = t − n·π/2` with π/2 split in three
//!   parts (Cody–Waite; the first two have 8 and 11 significant bits, so their products with n
//!   are exact for |n| < 2¹³), then Cephes' minimax polynomials for `sin r` and `cos r` on
//!   |r| ≤ π/4, and the quadrant `n mod 4` swaps and negates them. Measured against f64 at the
//!   same f32 argument the absolute error is below 2e-7 for |t| ≤ 10⁴; callers use the
//!   standard library's beyond that.

use candle_core::WithDType;

/// Accumulator lanes of the vectorised reductions.
const LANES: usize = 8;

/// Elements summed in working precision before a lane total is added into an f64.
const SUM_BLOCK: usize = 1024;

/// Rows a [`ColumnSums`] adds in working precision before flushing into f64.
const COLUMN_FLUSH_ROWS: usize = 16;

/// f32 or f64, with the elementwise functions the kernels need.
pub(crate) trait Real: WithDType + std::ops::Neg<Output = Self> {
    /// `eˣ` (see the module docs for the f32 accuracy).
    fn exp(self) -> Self;

    /// `(Φ(z), φ(z))`: the standard normal CDF and density.
    fn normal_cdf_pdf(self) -> (Self, Self);

    /// `√x`.
    fn sqrt(self) -> Self;

    /// `(sin t, cos t)`, vectorisable (see the module docs for the f32 range).
    fn fast_sin_cos(self) -> (Self, Self);

    /// `(sin t, cos t)` from the standard library.
    fn std_sin_cos(self) -> (Self, Self);

    /// `σ(z) = 1 / (1 + e^{−z})`.
    #[inline(always)]
    fn sigmoid(self) -> Self {
        Self::one() / (Self::one() + (-self).exp())
    }

    /// The larger of the two; NaN in `self` propagates.
    #[inline(always)]
    fn max_nan(self, other: Self) -> Self {
        if self < other { other } else { self }
    }
}

/// `1/√(2π)`.
const FRAC_1_SQRT_2PI: f64 = 0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2;

/// Numerical Recipes' `erfcc` coefficients, highest power of `t` first, constant term last.
const ERFC_T: [f32; 10] = [
    0.170_872_77,
    -0.822_152_23,
    1.488_515_9,
    -1.135_204,
    0.278_868_07,
    -0.186_288_06,
    0.096_784_18,
    0.374_091_96,
    1.000_023_7,
    -1.265_512_2,
];

/// Branch-free `eˣ` in f32 (see the module docs).
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LO: f32 = -87.336_54;
    const HI: f32 = 88.37;
    const SHIFT: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer in the low bits
    const LN2_HI: f32 = 0.693_359_4; // 355/512, exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    let clamped = if x > HI { HI } else { x };
    let clamped = if clamped < LO { LO } else { clamped };
    let shifted = clamped * std::f32::consts::LOG2_E + SHIFT;
    let n = shifted - SHIFT;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let poly = p * r * r + r + 1.0;
    // The low bits of `shifted` hold n (−126 ≤ n ≤ 127); (n + 127) << 23 is 2ⁿ.
    let scale = f32::from_bits(shifted.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23);
    if x < LO { 0.0 } else { poly * scale }
}

impl Real for f32 {
    #[inline(always)]
    fn exp(self) -> Self {
        exp_f32(self)
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }

    #[inline(always)]
    fn fast_sin_cos(self) -> (f32, f32) {
        // π/2 = P1 + P2 + P3 + O(10⁻¹⁵); P1 and P2 have 8 and 11 significant bits, so n·P1 and
        // n·P2 are exact for |n| < 2¹³.
        const P1: f32 = 1.570_312_5;
        const P2: f32 = 4.837_513e-4;
        const P3: f32 = 7.549_79e-8;
        const SHIFT: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer in the low bits
        let shifted = self * std::f32::consts::FRAC_2_PI + SHIFT;
        let n = shifted - SHIFT;
        let quadrant = shifted.to_bits() & 3;
        let r = ((self - n * P1) - n * P2) - n * P3;
        let r2 = r * r;
        let sin_r = r + r * r2 * (-1.666_665_5e-1 + r2 * (8.332_161e-3 + r2 * -1.951_529_6e-4));
        let cos_r = 1.0 - 0.5 * r2 + r2 * r2 * (4.166_664_6e-2 + r2 * (-1.388_731_6e-3 + r2 * 2.443_315_7e-5));
        let (sin, cos) = if quadrant & 1 == 0 { (sin_r, cos_r) } else { (cos_r, -sin_r) };
        if quadrant & 2 == 0 { (sin, cos) } else { (-sin, -cos) }
    }

    fn std_sin_cos(self) -> (f32, f32) {
        self.sin_cos()
    }

    #[inline(always)]
    fn normal_cdf_pdf(self) -> (Self, Self) {
        let u = self.abs() * std::f32::consts::FRAC_1_SQRT_2;
        let gauss = exp_f32(-0.5 * self * self); // e^{−z²/2}
        let t = 1.0 / (1.0 + 0.5 * u);
        let mut p = ERFC_T[0];
        for c in &ERFC_T[1..] {
            p = p * t + c;
        }
        let lower = 0.5 * t * gauss * exp_f32(p); // Φ(−|z|)
        let cdf = if self < 0.0 { lower } else { 1.0 - lower };
        (cdf, gauss * FRAC_1_SQRT_2PI as f32)
    }
}

impl Real for f64 {
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }

    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }

    #[inline(always)]
    fn fast_sin_cos(self) -> (f64, f64) {
        self.sin_cos()
    }

    fn std_sin_cos(self) -> (f64, f64) {
        self.sin_cos()
    }

    #[inline(always)]
    fn normal_cdf_pdf(self) -> (Self, Self) {
        let cdf = 0.5 * candle_core::cpu::erf::erfc_f64(-self * std::f64::consts::FRAC_1_SQRT_2);
        (cdf, f64::exp(-0.5 * self * self) * FRAC_1_SQRT_2PI)
    }
}

/// `Σ xs`, in 8 working-precision lanes per 1024 elements, the lane totals added in f64.
#[inline(always)]
pub(crate) fn sum<T: WithDType>(xs: &[T]) -> f64 {
    let mut total = 0.0;
    for block in xs.chunks(SUM_BLOCK) {
        let mut acc = [T::from_f64(0.0); LANES];
        let mut it = block.chunks_exact(LANES);
        for c in &mut it {
            for i in 0..LANES {
                acc[i] += c[i];
            }
        }
        total += acc.iter().chain(it.remainder()).map(|v| v.to_f64()).sum::<f64>();
    }
    total
}

/// `Σ (xs − mean)²`, blocked like [`sum`].
#[inline(always)]
pub(crate) fn sum_sq_dev<T: Real>(xs: &[T], mean: T) -> f64 {
    let mut total = 0.0;
    for block in xs.chunks(SUM_BLOCK) {
        let mut acc = [T::zero(); LANES];
        let mut it = block.chunks_exact(LANES);
        for c in &mut it {
            for i in 0..LANES {
                let d = c[i] - mean;
                acc[i] += d * d;
            }
        }
        let tail: f64 = it.remainder().iter().map(|&v| (v - mean).to_f64().powi(2)).sum();
        total += acc.iter().map(|v| v.to_f64()).sum::<f64>() + tail;
    }
    total
}

/// `Σ a·b`, blocked like [`sum`].
#[inline(always)]
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut total = 0.0;
    for (ba, bb) in a.chunks(SUM_BLOCK).zip(b.chunks(SUM_BLOCK)) {
        let mut acc = [T::zero(); LANES];
        let mut ia = ba.chunks_exact(LANES);
        let mut ib = bb.chunks_exact(LANES);
        for (ca, cb) in (&mut ia).zip(&mut ib) {
            for i in 0..LANES {
                acc[i] += ca[i] * cb[i];
            }
        }
        let tail: f64 = ia.remainder().iter().zip(ib.remainder()).map(|(&x, &y)| (x * y).to_f64()).sum();
        total += acc.iter().map(|v| v.to_f64()).sum::<f64>() + tail;
    }
    total
}

/// `(Σ g, Σ g·(x − mean)·rstd)`, blocked like [`sum`].
#[inline(always)]
pub(crate) fn sum_and_dot_normalised<T: Real>(g: &[T], x: &[T], mean: T, rstd: T) -> (f64, f64) {
    let n = g.len().min(x.len());
    let (g, x) = (&g[..n], &x[..n]);
    let (mut total_g, mut total_gx) = (0.0, 0.0);
    for (bg, bx) in g.chunks(SUM_BLOCK).zip(x.chunks(SUM_BLOCK)) {
        let mut acc_g = [T::zero(); LANES];
        let mut acc_gx = [T::zero(); LANES];
        let mut ig = bg.chunks_exact(LANES);
        let mut ix = bx.chunks_exact(LANES);
        for (cg, cx) in (&mut ig).zip(&mut ix) {
            for i in 0..LANES {
                acc_g[i] += cg[i];
                acc_gx[i] += cg[i] * ((cx[i] - mean) * rstd);
            }
        }
        for (&gv, &xv) in ig.remainder().iter().zip(ix.remainder()) {
            total_g += gv.to_f64();
            total_gx += (gv * ((xv - mean) * rstd)).to_f64();
        }
        total_g += acc_g.iter().map(|v| v.to_f64()).sum::<f64>();
        total_gx += acc_gx.iter().map(|v| v.to_f64()).sum::<f64>();
    }
    (total_g, total_gx)
}

/// Column sums of a stream of rows: added in working precision for up to 16 rows at a time
/// (vectorised), then flushed into f64 totals.
pub(crate) struct ColumnSums<T> {
    /// The working-precision partial sums; add a row with `add_row`.
    fast: Vec<T>,
    total: Vec<f64>,
    pending: usize,
}

impl<T: Real> ColumnSums<T> {
    /// Zero sums of `width` columns.
    pub(crate) fn new(width: usize) -> Self {
        Self { fast: vec![T::zero(); width], total: vec![0.0; width], pending: 0 }
    }

    /// Adds `row` into the working sums and counts it.
    #[inline]
    pub(crate) fn add_row(&mut self, row: &[T]) {
        for (a, &v) in self.fast.iter_mut().zip(row) {
            *a += v;
        }
        self.row_done();
    }

    /// The working sums, for a caller that adds a computed row itself; call
    /// [`Self::row_done`] afterwards.
    #[inline]
    pub(crate) fn fast_mut(&mut self) -> &mut [T] {
        &mut self.fast
    }

    /// Counts one added row, flushing into f64 every 16 rows.
    #[inline]
    pub(crate) fn row_done(&mut self) {
        self.pending += 1;
        if self.pending == COLUMN_FLUSH_ROWS {
            self.flush();
        }
    }

    fn flush(&mut self) {
        for (t, f) in self.total.iter_mut().zip(self.fast.iter_mut()) {
            *t += f.to_f64();
            *f = T::zero();
        }
        self.pending = 0;
    }

    /// The f64 totals.
    pub(crate) fn finish(mut self) -> Vec<f64> {
        self.flush();
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_accurate() {
        let mut worst = 0f64;
        for i in -200_000..=200_000 {
            let x = i as f32 * 4.36e-4; // ±87.2
            let exact = (x as f64).exp();
            worst = worst.max((exp_f32(x) as f64 - exact).abs() / exact);
        }
        println!("exp_f32 max relative error {worst:.2e}");
        assert!(worst < 1.5e-7, "{worst:e}");
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(100.0).is_finite() && exp_f32(100.0) > 1e38);
    }

    #[test]
    fn normal_cdf_f32_is_accurate_including_the_tail() {
        // Relative error against libm at the same f32 input, by |z| band.
        let mut worst = [0f64; 3];
        for i in -60_000..=60_000 {
            let z = i as f32 * 1e-4; // ±6
            let exact = 0.5 * candle_core::cpu::erf::erfc_f64(-(z as f64) * std::f64::consts::FRAC_1_SQRT_2);
            let (cdf, pdf) = z.normal_cdf_pdf();
            let band = ((z.abs() / 2.0) as usize).min(2);
            worst[band] = worst[band].max((cdf as f64 - exact).abs() / exact);
            let exact_pdf = (-0.5 * (z as f64).powi(2)).exp() * FRAC_1_SQRT_2PI;
            // e^{−z²/2} inherits the rounding of z²/2: about 1e-7·z² relative.
            let tolerance = (3e-7 + 1e-7 * (z as f64).powi(2)) * exact_pdf;
            assert!((pdf as f64 - exact_pdf).abs() <= tolerance, "pdf at {z}");
        }
        println!("normal_cdf f32 max relative error for |z| in [0,2), [2,4), [4,6]: {}", crate::testing::sci(&worst));
        assert!(worst[0] < 6e-7 && worst[1] < 1e-6 && worst[2] < 2.5e-6, "{worst:?}");
    }

    #[test]
    fn f32_sin_cos_is_accurate() {
        let mut worst = 0f64;
        for i in -200_000..=200_000 {
            let t = i as f32 * 0.05; // ±10⁴
            let (sin, cos) = t.fast_sin_cos();
            let (sin_exact, cos_exact) = (t as f64).sin_cos();
            worst = worst.max((sin as f64 - sin_exact).abs()).max((cos as f64 - cos_exact).abs());
        }
        println!("f32 sin_cos max absolute error {worst:.1e}");
        assert!(worst < 2e-7, "{worst:e}");
    }
}
