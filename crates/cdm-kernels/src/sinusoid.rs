//! Interleaved cosine/sine features of a scalar per row, in one pass, with backward.
//!
//! For `x` (B) and frequencies `f_k`, k = 0 … K−1:
//!
//! ```text
//! y[b, 2k] = cos(x_b·f_k)      y[b, 2k+1] = sin(x_b·f_k)
//! ∂L/∂x_b = Σ_k f_k·(−sin(x_b·f_k)·g[b, 2k] + cos(x_b·f_k)·g[b, 2k+1]),   g = ∂L/∂y
//! ```
//!
//! The argument `x_b·f_k` is rounded to the working precision first, as in the composed
//! `broadcast_mul`, then `sin` and `cos` of it are evaluated together: in f64 by the standard
//! library, in f32 by a branch-free evaluation that vectorises (absolute error below 2e-7 for
//! |t| ≤ 10⁴, described in `numerics`). A row with an argument beyond 1.2·10⁴ is computed with
//! the standard library instead.
//!
//! Rows run on rayon's threads, the loops `vectorized`. On other devices (and as the tests'
//! reference) [`cos_sin_composed`] builds the same tensor from candle ops.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, D, Layout, Shape, Tensor, bail};

use crate::numerics::Real;
use crate::parallel::{for_each_chunk, rows_per_block};
use crate::simd::{Simd, WithSimd, vectorized};
use crate::storage::{SliceOp, run_slice_op};

const NAME: &str = "cos_sin";
const GRAD_NAME: &str = "cos_sin_grad";

/// Rows with an argument beyond this use the standard library (f32).
const F32_FAST_LIMIT: f64 = 1.2e4;

/// `(sin, cos)` of `x·f`, vectorisable unless `|x|·max f` exceeds [`F32_FAST_LIMIT`].
#[inline(always)]
fn row_sin_cos<T: Real>(x: T, f: T, fast: bool) -> (T, T) {
    if fast { (x * f).fast_sin_cos() } else { (x * f).std_sin_cos() }
}

/// Whether every argument `x·f_k` of the row is within [`F32_FAST_LIMIT`].
#[inline(always)]
fn fast_row<T: Real>(x: T, max_freq: f64) -> bool {
    x.to_f64().abs() * max_freq <= F32_FAST_LIMIT
}

/// `[cos(x·f₀), sin(x·f₀), cos(x·f₁), …]` per row (see the [module docs](self)).
///
/// # Shapes
/// `x`: (B) → (B, 2·freqs.len()).
///
/// # Errors
/// `x` not one-dimensional; on the CPU, a dtype other than f32/f64.
pub fn cos_sin(x: &Tensor, freqs: &[f64]) -> candle_core::Result<Tensor> {
    if x.rank() != 1 {
        bail!("{NAME}: expects a vector, got shape {:?}", x.dims());
    }
    if !x.device().is_cpu() {
        return cos_sin_composed(x, freqs);
    }
    x.contiguous()?.apply_op1(CosSinOp { freqs: freqs.to_vec() })
}

/// The same features from candle ops: the tests' reference and the path on other devices.
pub fn cos_sin_composed(x: &Tensor, freqs: &[f64]) -> candle_core::Result<Tensor> {
    let freqs = Tensor::from_slice(freqs, (1, freqs.len()), x.device())?.to_dtype(x.dtype())?;
    let args = x.unsqueeze(1)?.broadcast_mul(&freqs)?;
    Tensor::stack(&[args.cos()?, args.sin()?], D::Minus1)?.flatten_from(1)
}

/// The forward of a block of rows, as a [`vectorized`] kernel.
struct Rows<'a, T> {
    x: &'a [T],
    freqs: &'a [T],
    max_freq: f64,
    y: &'a mut [T],
}

impl<T: Real> WithSimd for Rows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let Rows { x, freqs, max_freq, y } = self;
        for (&x, row) in x.iter().zip(y.chunks_exact_mut(2 * freqs.len())) {
            let fast = fast_row(x, max_freq);
            for (pair, &f) in row.chunks_exact_mut(2).zip(freqs) {
                let (sin, cos) = row_sin_cos(x, f, fast);
                pair[0] = cos;
                pair[1] = sin;
            }
        }
    }
}

/// The backward of a block of rows: `dx` from `g`, as a [`vectorized`] kernel.
struct GradRows<'a, T> {
    x: &'a [T],
    freqs: &'a [T],
    max_freq: f64,
    g: &'a [T],
    dx: &'a mut [T],
}

impl<T: Real> WithSimd for GradRows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let GradRows { x, freqs, max_freq, g, dx } = self;
        for ((&x, g_row), dx) in x.iter().zip(g.chunks_exact(2 * freqs.len())).zip(dx.iter_mut()) {
            let fast = fast_row(x, max_freq);
            let mut total = T::zero();
            for (pair, &f) in g_row.chunks_exact(2).zip(freqs) {
                let (sin, cos) = row_sin_cos(x, f, fast);
                total += f * (cos * pair[1] - sin * pair[0]);
            }
            *dx = total;
        }
    }
}

/// The frequencies in the working precision, and the largest |f|.
fn freqs_as<T: Real>(freqs: &[f64]) -> (Vec<T>, f64) {
    (freqs.iter().map(|&f| T::from_f64(f)).collect(), freqs.iter().fold(0.0, |m, f| f.abs().max(m)))
}

struct CosSinOp {
    freqs: Vec<f64>,
}

/// `dx` of [`CosSinOp`]: inputs x, g.
struct CosSinGradOp {
    freqs: Vec<f64>,
}

impl SliceOp<1> for CosSinOp {
    const NAME: &'static str = NAME;

    fn compute<T: Real>(&self, [x]: [&[T]; 1]) -> Vec<T> {
        let (freqs, max_freq) = freqs_as::<T>(&self.freqs);
        let width = 2 * freqs.len();
        let mut y = vec![T::zero(); x.len() * width];
        let rows = rows_per_block(width);
        for_each_chunk(&mut y, rows * width, |i, y| {
            let x = &x[i * rows..][..y.len() / width.max(1)];
            vectorized(Rows { x, freqs: &freqs, max_freq, y });
        });
        y
    }
}

impl CustomOp1 for CosSinOp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((run_slice_op(self, [(s, l)])?, Shape::from((l.dims()[0], 2 * self.freqs.len()))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dx = x.apply_op2_no_bwd(&g.contiguous()?, &CosSinGradOp { freqs: self.freqs.clone() })?;
        Ok(Some(dx))
    }
}

impl SliceOp<2> for CosSinGradOp {
    const NAME: &'static str = GRAD_NAME;

    fn compute<T: Real>(&self, [x, g]: [&[T]; 2]) -> Vec<T> {
        let (freqs, max_freq) = freqs_as::<T>(&self.freqs);
        let mut dx = vec![T::zero(); x.len()];
        let rows = rows_per_block(2 * freqs.len());
        for_each_chunk(&mut dx, rows, |i, dx| {
            let (x, g) = (&x[i * rows..][..dx.len()], &g[i * rows * 2 * freqs.len()..][..dx.len() * 2 * freqs.len()]);
            vectorized(GradRows { x, freqs: &freqs, max_freq, g, dx });
        });
        dx
    }
}

impl CustomOp2 for CosSinGradOp {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_independent_of_thread_count, compare, finite_difference_errors, randn};
    use candle_core::DType;

    #[test]
    fn rows_with_large_arguments_use_the_standard_library() {
        let x = Tensor::new(&[2.0e5f32, 0.5], &candle_core::Device::Cpu).unwrap();
        let y = cos_sin(&x, &[1.0]).unwrap().to_vec2::<f32>().unwrap();
        let (sin, cos) = 2.0e5f32.sin_cos();
        assert_eq!(y[0], vec![cos, sin]);
        assert!((y[1][1] - 0.5f32.sin()).abs() < 1e-7);
    }

    /// The MLP's frequencies: scale 50, dim 16.
    fn freqs() -> Vec<f64> {
        (0..8).map(|k| 50.0 * 1e-4f64.powf(2.0 * k as f64 / 16.0)).collect()
    }

    #[test]
    fn fused_matches_composed_f32() {
        // Log-SNRs over ±12, arguments up to ±600; several parallel blocks of rows.
        let x = randn(&[3000], DType::F32, 1).affine(4.0, 0.0).unwrap();
        let freqs = freqs();
        let (fwd, grads) = compare(&[x], |a| cos_sin(&a[0], &freqs), |a| cos_sin_composed(&a[0], &freqs), 2);
        assert!(fwd < 1e-5 && grads[0] < 1e-5, "{fwd:e} {grads:?}");
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // 3000 rows of 16 features: 48 000 elements in 3 blocks of rows.
        let x = randn(&[3000], DType::F32, 5).affine(4.0, 0.0).unwrap();
        let freqs = freqs();
        assert_independent_of_thread_count(&[x], |a| cos_sin(&a[0], &freqs), 6);
    }

    #[test]
    fn gradient_matches_finite_differences_f64() {
        let x = randn(&[5], DType::F64, 3);
        let freqs = [0.3, 1.7, 4.0];
        let errors = finite_difference_errors(&[x], |a| cos_sin(&a[0], &freqs), 4);
        assert!(errors[0] < 1e-7, "{errors:?}");
    }

    #[test]
    fn rejects_a_matrix() {
        let x = randn(&[2, 3], DType::F32, 0);
        assert!(cos_sin(&x, &[1.0]).unwrap_err().to_string().contains("expects a vector"));
    }
}
