//! Fused softmax over the last dimension, with a fused backward.
//!
//! # Math
//!
//! For each row `x` of the last dimension:
//!
//! ```text
//! forward:   m = max_j x_j        e_j = exp(x_j − m)        y_j = e_j / Σ_k e_k
//! backward:  ∂L/∂x_j = y_j·(∂L/∂y_j − Σ_k ∂L/∂y_k·y_k)
//! ```
//!
//! Subtracting the row maximum makes every exponent ≤ 0, so nothing overflows; a row with a
//! NaN gives NaNs, as in PyTorch. The backward needs only `y` (the op's output) and `∂L/∂y`.
//!
//! # Implementation
//!
//! Forward: one vectorised pass for the maximum, one that writes `e` and sums it (8 lanes,
//! lane totals in f64), one that scales by `1/Σe`; the row stays in cache in between. The f32
//! exponential is the branch-free polynomial of `numerics` (≤ 1e-7 relative),
//! f64 uses the standard library. Backward: a dot product and one elementwise pass per row.
//! Rows run in parallel on rayon's threads once the tensor has 32k elements.
//!
//! This replaces `candle_nn::ops::softmax` (five elementwise/reduction passes) and
//! `candle_nn::ops::softmax_last_dim` (fused, but with no backward: gradients silently stop).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, D, Layout, Shape, Tensor, bail};

use crate::numerics::{Real, dot, sum};
use crate::parallel::{for_each_chunk, rows_per_block};
use crate::storage::{SliceOp, run_slice_op};

const NAME: &str = "softmax_last_dim";
const GRAD_NAME: &str = "softmax_last_dim_grad";

/// The row maximum, in 8 lanes (NaNs are skipped here and surface through `exp`).
#[inline]
fn row_max<T: Real>(xs: &[T]) -> T {
    let mut acc = [T::from_f64(f64::NEG_INFINITY); 8];
    let mut it = xs.chunks_exact(8);
    for c in &mut it {
        for i in 0..8 {
            acc[i] = acc[i].max_nan(c[i]);
        }
    }
    acc.iter().chain(it.remainder()).fold(T::from_f64(f64::NEG_INFINITY), |m, &v| m.max_nan(v))
}

/// `row ← softmax(scale·row)`, in place (`scale` > 0, so the maximum of `row` is still the one
/// to subtract).
#[inline]
pub(crate) fn softmax_row_in_place<T: Real>(row: &mut [T], scale: T) {
    let max = row_max(row);
    for x in row.iter_mut() {
        *x = ((*x - max) * scale).exp();
    }
    let inv = T::from_f64(1.0 / sum(row));
    row.iter_mut().for_each(|x| *x *= inv);
}

/// `g ← scale·y ⊙ (g − Σ g⊙y)`, in place: the gradient of the row's input from that of its
/// softmax `y` (times `scale`, for a softmax of `scale·x`).
#[inline]
pub(crate) fn softmax_row_grad_in_place<T: Real>(g: &mut [T], y: &[T], scale: T) {
    let centre = T::from_f64(dot(g, y));
    for (g, &y) in g.iter_mut().zip(y) {
        *g = scale * y * (*g - centre);
    }
}

fn softmax_fwd<T: Real>(x: &[T], width: usize) -> Vec<T> {
    let mut y = x.to_vec();
    let chunk = rows_per_block(width) * width;
    for_each_chunk(&mut y, chunk, |_, yb| {
        yb.chunks_exact_mut(width).for_each(|row| softmax_row_in_place(row, T::one()))
    });
    y
}

fn softmax_bwd<T: Real>(y: &[T], dy: &[T], width: usize) -> Vec<T> {
    let mut dx = dy.to_vec();
    let chunk = rows_per_block(width) * width;
    for_each_chunk(&mut dx, chunk, |i, dxb| {
        let yb = &y[i * chunk..][..dxb.len()];
        for (g, yr) in dxb.chunks_exact_mut(width).zip(yb.chunks_exact(width)) {
            softmax_row_grad_in_place(g, yr, T::one());
        }
    });
    dx
}

/// Softmax forward; input x.
struct SoftmaxOp {
    width: usize,
}

/// Softmax backward; inputs y, dy.
struct SoftmaxGradOp {
    width: usize,
}

impl SliceOp<1> for SoftmaxOp {
    const NAME: &'static str = NAME;

    fn compute<T: Real>(&self, [x]: [&[T]; 1]) -> Vec<T> {
        softmax_fwd(x, self.width)
    }
}

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((run_slice_op(self, [(s, l)])?, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dy = dy.contiguous()?;
        Ok(Some(y.apply_op2_no_bwd(&dy, &SoftmaxGradOp { width: self.width })?))
    }
}

impl SliceOp<2> for SoftmaxGradOp {
    const NAME: &'static str = GRAD_NAME;

    fn compute<T: Real>(&self, [y, dy]: [&[T]; 2]) -> Vec<T> {
        softmax_bwd(y, dy, self.width)
    }
}

impl CustomOp2 for SoftmaxGradOp {
    fn name(&self) -> &'static str {
        GRAD_NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((run_slice_op(self, [(s1, l1), (s2, l2)])?, l1.shape().clone()))
    }
}

/// Softmax over the last dimension, fused, with a fused backward (unlike
/// `candle_nn::ops::softmax_last_dim`, whose gradient is silently dropped).
///
/// # Shapes
/// `x`: (…, N) → the same.
///
/// # Errors
/// A scalar `x`; on the CPU, a dtype other than F32/F64. Other devices fall back to
/// [`softmax_last_dim_composed`].
pub fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let width = match x.dims().last() {
        Some(&d) => d,
        None => bail!("softmax_last_dim: x must have at least one dimension"),
    };
    if !x.device().is_cpu() {
        return softmax_last_dim_composed(x);
    }
    x.contiguous()?.apply_op1(SoftmaxOp { width })
}

/// [`softmax_last_dim`] out of candle's own ops (`candle_nn::ops::softmax`): the reference for
/// the tests and the fallback on devices other than the CPU.
///
/// # Shapes
/// `x`: (…, N) → the same.
pub fn softmax_last_dim_composed(x: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::softmax(x, D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_independent_of_thread_count, compare, finite_difference_errors, randn, rel_err};
    use candle_core::{DType, Device};

    #[test]
    fn matches_composed_f32() {
        // Attention-like scores (scaled up so rows are peaked), odd widths, and
        // (2, 150, 131) = 39 300 elements over the parallel threshold.
        for (k, shape) in [vec![3usize, 5], vec![2, 4, 17], vec![2, 150, 131], vec![1, 1]].into_iter().enumerate() {
            let x = randn(&shape, DType::F32, k as u64).affine(3.0, 0.0).unwrap();
            let (fwd, grads) = compare(&[x], |v| softmax_last_dim(&v[0]), |v| softmax_last_dim_composed(&v[0]), 7);
            assert!(fwd < 1e-5 && grads[0] < 1e-5, "{shape:?}: {fwd:e} {grads:?}");
        }
    }

    #[test]
    fn non_contiguous_input() {
        // Softmax over the first dimension of a (13, 6) tensor, via a transpose.
        let x = randn(&[13, 6], DType::F32, 20);
        let (fwd, grads) =
            compare(&[x], |v| softmax_last_dim(&v[0].t()?), |v| softmax_last_dim_composed(&v[0].t()?), 21);
        assert!(fwd < 1e-5 && grads[0] < 1e-5, "{fwd:e} {grads:?}");
    }

    #[test]
    fn finite_differences_f64() {
        let x = randn(&[3, 2, 5], DType::F64, 30);
        let errs = finite_difference_errors(&[x], |v| softmax_last_dim(&v[0]), 31);
        assert!(errs[0] < 1e-6, "{errs:?}");
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // (2, 150, 131): 39 300 elements in 3 blocks of rows.
        let x = randn(&[2, 150, 131], DType::F32, 40).affine(3.0, 0.0).unwrap();
        assert_independent_of_thread_count(&[x], |v| softmax_last_dim(&v[0]), 41);
    }

    #[test]
    fn extreme_rows() {
        // Large logits (no overflow), a masked entry, and rows summing to one.
        let x = Tensor::new(&[[1000f32, 999.0, -1000.0], [0.0, f32::NEG_INFINITY, 0.0]], &Device::Cpu).unwrap();
        let y = softmax_last_dim(&x).unwrap();
        let reference = softmax_last_dim_composed(&x).unwrap();
        assert!(rel_err(&y, &reference) < 1e-6);
        let rows = y.sum(1).unwrap().to_vec1::<f32>().unwrap();
        assert!(rows.iter().all(|s| (s - 1.0).abs() < 1e-6), "{rows:?}");
        assert_eq!(y.to_vec2::<f32>().unwrap()[1][1], 0.0);
    }

    #[test]
    fn rejects_unsupported_dtypes() {
        let x = Tensor::zeros((2, 3), DType::BF16, &Device::Cpu).unwrap();
        let err = softmax_last_dim(&x).unwrap_err().to_string();
        assert!(err.contains("unsupported dtype BF16"), "{err}");
        assert!(softmax_last_dim(&Tensor::new(1f32, &Device::Cpu).unwrap()).is_err());
    }
}
