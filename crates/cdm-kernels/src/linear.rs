//! The product of a linear layer, `y = x·Wᵀ`, as one op with a fused backward.
//!
//! # Notation and math
//!
//! `x` (R × I): R rows of I input features; `W` (O × I): the layer's weight; `g = ∂L/∂y`
//! (R × O).
//!
//! ```text
//! forward:   y = x·Wᵀ                 (R × O)
//! backward:  ∂L/∂x = g·W              (R × I)
//!            ∂L/∂W = gᵀ·x = Σ_k g_kᵀ·x_k   over blocks k of ROWS_PER_BLOCK rows
//! ```
//!
//! # Implementation
//!
//! The products run on [`crate::matmul`] (gemm into uninitialised outputs). The weight
//! gradient's sum over the rows is split into blocks of a fixed number of rows whose partial
//! products run in parallel and are added in block order, so it uses both threads where one
//! gemm with an O × I output could not, and its result does not depend on the thread count.
//!
//! Composed from candle ops (`x.matmul(&w.t())`), the backward also zero-fills every product's
//! output and adds the weight gradient to candle's store through a transposed, strided view.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, WithDType, bail};
use rayon::prelude::*;

use crate::matmul::{Mat, matmul};
use crate::storage::{by_float_dtype, cpu_storage};

const NAME: &str = "linear";

/// Rows of `x` per partial weight gradient.
const ROWS_PER_BLOCK: usize = 512;

/// The forward op; inputs `x` (R, I), `w` (O, I).
struct LinearOp;

/// `x` and `w` as matrices: `(x, w, R, I, O)`.
fn operands<'a>(
    (x, xl): (&'a CpuStorage, &Layout),
    (w, wl): (&'a CpuStorage, &Layout),
) -> Result<(Mat<'a>, Mat<'a>, usize, usize, usize)> {
    let ((rows, inputs), (outputs, _)) = (xl.shape().dims2()?, wl.shape().dims2()?);
    if !xl.is_contiguous() || !wl.is_contiguous() {
        bail!("{NAME}: expects contiguous inputs (the public wrapper makes them so)");
    }
    let x = Mat::new(x, xl.start_offset(), (rows, inputs));
    let w = Mat::new(w, wl.start_offset(), (outputs, inputs));
    Ok((x, w, rows, inputs, outputs))
}

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, w: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        fn run<T: WithDType>(x: Mat, w: Mat) -> Result<CpuStorage> {
            Ok(T::to_cpu_storage_owned(matmul::<T>(1, x, w.t())?))
        }
        let (xm, wm, rows, _, outputs) = operands((x, xl), (w, wl))?;
        Ok((by_float_dtype!(x.dtype(), NAME, run(xm, wm)), Shape::from((rows, outputs))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        fn run<T: WithDType>(x: Mat, w: Mat, g: &CpuStorage, gl: &Layout, shapes: [&Shape; 2]) -> Result<[Tensor; 2]> {
            let (rows, outputs) = gl.shape().dims2()?;
            let g = Mat::new(g, gl.start_offset(), (rows, outputs));
            let d_x = matmul::<T>(1, g, w)?;
            let inputs = w.cols();
            let partials = (0..rows.div_ceil(ROWS_PER_BLOCK))
                .into_par_iter()
                .map(|block| {
                    let start = block * ROWS_PER_BLOCK;
                    let count = ROWS_PER_BLOCK.min(rows - start);
                    matmul::<T>(1, g.rows(start, count).t(), x.rows(start, count))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut d_w = vec![T::from_f64(0.0); outputs * inputs];
            for partial in partials {
                d_w.iter_mut().zip(partial).for_each(|(d, p)| *d += p);
            }
            let cpu = &candle_core::Device::Cpu;
            Ok([Tensor::from_vec(d_x, shapes[0], cpu)?, Tensor::from_vec(d_w, shapes[1], cpu)?])
        }
        let g = g.contiguous()?;
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (gs, gl) = g.storage_and_layout();
        let (xm, wm, ..) = operands((cpu_storage(&xs, NAME)?, xl), (cpu_storage(&ws, NAME)?, wl))?;
        let gs = cpu_storage(&gs, NAME)?;
        let [d_x, d_w] = by_float_dtype!(x.dtype(), NAME, run(xm, wm, gs, gl, [x.shape(), w.shape()]));
        Ok((Some(d_x), Some(d_w)))
    }
}

/// `x·Wᵀ` for a linear layer's rows `x` (R, I) and weight `W` (O, I), as one op with a fused
/// backward (see the module doc).
///
/// # Shapes
/// `x`: (R, I); `weight`: (O, I) → (R, O).
///
/// # Errors
/// Shapes that do not chain, or differing dtypes; on the CPU, a dtype other than F32/F64. Other
/// devices run [`linear_product_composed`].
pub fn linear_product(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let ((_, inputs), (_, w_inputs)) = (x.dims2()?, weight.dims2()?);
    if inputs != w_inputs {
        bail!("{NAME}: x {:?} and weight {:?} do not chain (weight is (out, in))", x.dims(), weight.dims());
    }
    if x.dtype() != weight.dtype() {
        bail!("{NAME}: weight has dtype {:?} but x has {:?}", weight.dtype(), x.dtype());
    }
    if !x.device().is_cpu() {
        return linear_product_composed(x, weight);
    }
    x.contiguous()?.apply_op2(&weight.contiguous()?, LinearOp)
}

/// [`linear_product`] out of candle's own ops (`x.matmul(&weight.t())`): the reference for the tests
/// and the fallback on devices other than the CPU.
///
/// # Shapes
/// As [`linear_product`].
pub fn linear_product_composed(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    x.matmul(&weight.t()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_independent_of_thread_count, compare, finite_difference_errors, randn};
    use candle_core::DType;

    #[test]
    fn matches_composed_f32() {
        // One partial block, several with a short last one (1100 = 2·512 + 76), one row.
        for (case, &(rows, inputs, outputs)) in [(7, 5, 3), (1100, 16, 24), (1, 8, 8)].iter().enumerate() {
            let x = randn(&[rows, inputs], DType::F32, 10 * case as u64);
            let w = randn(&[outputs, inputs], DType::F32, 10 * case as u64 + 1);
            let (fwd, grads) =
                compare(&[x, w], |v| linear_product(&v[0], &v[1]), |v| linear_product_composed(&v[0], &v[1]), 7);
            assert!(fwd < 1e-5 && grads.iter().all(|&e| e < 1e-5), "case {case}: {fwd:e} {grads:?}");
        }
    }

    #[test]
    fn finite_differences_f64() {
        let x = randn(&[9, 4], DType::F64, 20);
        let w = randn(&[3, 4], DType::F64, 21);
        let errs = finite_difference_errors(&[x, w], |v| linear_product(&v[0], &v[1]), 22);
        assert!(errs.iter().all(|&e| e < 1e-6), "{errs:?}");
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let x = randn(&[1300, 6], DType::F32, 30);
        let w = randn(&[5, 6], DType::F32, 31);
        assert_independent_of_thread_count(&[x, w], |v| linear_product(&v[0], &v[1]), 32);
    }

    #[test]
    fn rejects_bad_input() {
        let x = randn(&[4, 3], DType::F32, 40);
        let err = linear_product(&x, &randn(&[2, 5], DType::F32, 41)).unwrap_err().to_string();
        assert!(err.contains("do not chain"), "{err}");
        let err = linear_product(&x, &randn(&[2, 3], DType::F64, 42)).unwrap_err().to_string();
        assert!(err.contains("dtype F64"), "{err}");
        let bf = x.to_dtype(DType::BF16).unwrap();
        assert!(
            linear_product(&bf, &bf.narrow(0, 0, 2).unwrap())
                .unwrap_err()
                .to_string()
                .contains("unsupported dtype BF16")
        );
    }
}
