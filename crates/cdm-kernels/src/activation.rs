//! The pointwise nonlinearities ([`Activation`]) and the fused bias + activation,
//! `y = act(x + b)`.
//!
//! # Math
//!
//! For `x` (…, C), an optional per-column bias `b` (C) and `z = x + b` (broadcast over rows):
//!
//! ```text
//! forward:   y = act(z)
//! backward:  ∂L/∂x = ∂L/∂y ⊙ act′(z)          ∂L/∂b_c = Σ_rows (∂L/∂x)_{·,c}
//!
//! ReLU:  act(z) = max(z, 0)          act′(z) = 1 if z ≥ 0 else 0   (candle's convention at 0)
//! SiLU:  act(z) = z·σ(z)             act′(z) = σ(z)·(1 + z·(1 − σ(z))),   σ(z) = 1 / (1 + e^{−z})
//! GELU:  act(z) = z·Φ(z)             act′(z) = Φ(z) + z·φ(z)
//!        Φ(z) = ½·erfc(−z/√2)  (exact erf form),   φ(z) = e^{−z²/2} / √(2π)
//! ```
//!
//! One pass over memory forward (read x, write y) and one backward (read x, dy; write dx, with
//! the bias gradient summed per block of rows and the blocks added in f64 in a fixed order,
//! so results do not depend on the thread count).
//!
//! The scalar numerics (f32 `exp` and Φ) are in `numerics`.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor, bail};

use crate::numerics::{ColumnSums, Real};
use crate::parallel::{add_in_order, for_each_chunk, rows_per_block};
use crate::storage::{SliceOp, run_slice_op};

/// A nonlinearity, serialised in lower case (`"relu"`, `"silu"`, `"gelu"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`.
    #[default]
    Relu,
    /// `x·σ(x)` (swish).
    Silu,
    /// Exact GELU `x·Φ(x)` (erf form, PyTorch's `nn.GELU()` default).
    Gelu,
}

impl Activation {
    /// Applies the nonlinearity elementwise with candle's own ops.
    pub fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Relu => x.relu(),
            Self::Silu => x.silu(),
            Self::Gelu => x.gelu_erf(),
        }
    }
}

#[inline(always)]
fn relu<T: Real>(z: T) -> T {
    if z < T::zero() { T::zero() } else { z }
}

#[inline(always)]
fn relu_grad<T: Real>(z: T) -> T {
    if z < T::zero() { T::zero() } else { T::one() }
}

#[inline(always)]
pub(crate) fn silu<T: Real>(z: T) -> T {
    z / (T::one() + (-z).exp())
}

#[inline(always)]
pub(crate) fn silu_grad<T: Real>(z: T) -> T {
    let s = z.sigmoid();
    s * (T::one() + z * (T::one() - s))
}

#[inline(always)]
fn gelu<T: Real>(z: T) -> T {
    z * z.normal_cdf_pdf().0
}

#[inline(always)]
fn gelu_grad<T: Real>(z: T) -> T {
    let (cdf, pdf) = z.normal_cdf_pdf();
    cdf + z * pdf
}

/// `f(x + b)` row by row (`b` of the row width) or `f(x)` without a bias.
fn map_rows<T: Real, F: Fn(T) -> T + Sync + Send>(x: &[T], bias: Option<&[T]>, width: usize, f: F) -> Vec<T> {
    let mut y = vec![T::zero(); x.len()];
    let chunk = rows_per_block(width) * width;
    for_each_chunk(&mut y, chunk, |i, yb| {
        let xb = &x[i * chunk..][..yb.len()];
        match bias {
            Some(b) => {
                for (xr, yr) in xb.chunks_exact(width).zip(yb.chunks_exact_mut(width)) {
                    for ((y, &x), &b) in yr.iter_mut().zip(xr).zip(b) {
                        *y = f(x + b);
                    }
                }
            }
            None => {
                for (y, &x) in yb.iter_mut().zip(xb) {
                    *y = f(x);
                }
            }
        }
    });
    y
}

/// `[dx, db]` packed: `dx = dy ⊙ f′(x + b)` and, with a bias, `db = Σ_rows dx`.
fn map_rows_grad<T: Real, F: Fn(T) -> T + Sync + Send>(
    x: &[T],
    bias: Option<&[T]>,
    dy: &[T],
    width: usize,
    df: F,
) -> Vec<T> {
    let n = x.len();
    let mut out = vec![T::zero(); n + bias.map_or(0, |_| width)];
    let (dx, db) = out.split_at_mut(n);
    let chunk = rows_per_block(width) * width;
    let partials = for_each_chunk(dx, chunk, |i, dxb| {
        let xb = &x[i * chunk..][..dxb.len()];
        let dyb = &dy[i * chunk..][..dxb.len()];
        match bias {
            Some(b) => {
                let mut sums = ColumnSums::new(width);
                for ((xr, dyr), dxr) in
                    xb.chunks_exact(width).zip(dyb.chunks_exact(width)).zip(dxb.chunks_exact_mut(width))
                {
                    for (((dx, &x), &dy), &b) in dxr.iter_mut().zip(xr).zip(dyr).zip(b) {
                        *dx = dy * df(x + b);
                    }
                    sums.add_row(dxr);
                }
                sums.finish()
            }
            None => {
                for ((dx, &x), &dy) in dxb.iter_mut().zip(xb).zip(dyb) {
                    *dx = dy * df(x);
                }
                Vec::new()
            }
        }
    });
    if bias.is_some() {
        for (d, t) in db.iter_mut().zip(add_in_order(&partials, width)) {
            *d = T::from_f64(t);
        }
    }
    out
}

fn forward_kernel<T: Real>(act: Option<Activation>, x: &[T], bias: Option<&[T]>, width: usize) -> Vec<T> {
    match act {
        None => map_rows(x, bias, width, |z| z),
        Some(Activation::Relu) => map_rows(x, bias, width, relu),
        Some(Activation::Silu) => map_rows(x, bias, width, silu),
        Some(Activation::Gelu) => map_rows(x, bias, width, gelu),
    }
}

fn backward_kernel<T: Real>(act: Option<Activation>, x: &[T], bias: Option<&[T]>, dy: &[T], width: usize) -> Vec<T> {
    match act {
        None => map_rows_grad(x, bias, dy, width, |_| T::one()),
        Some(Activation::Relu) => map_rows_grad(x, bias, dy, width, relu_grad),
        Some(Activation::Silu) => map_rows_grad(x, bias, dy, width, silu_grad),
        Some(Activation::Gelu) => map_rows_grad(x, bias, dy, width, gelu_grad),
    }
}

const NAME: &str = "bias_act";
const GRAD_NAME: &str = "bias_act_grad";

/// `act(x)` without a bias (x's last dimension is the row width; any width works).
struct ActOp {
    act: Option<Activation>,
    width: usize,
}

/// `act(x + b)`.
struct BiasActOp {
    act: Option<Activation>,
    width: usize,
}

/// `dx` of [`ActOp`]: inputs x, dy.
struct ActGradOp {
    act: Option<Activation>,
    width: usize,
}

/// `[dx, db]` of [`BiasActOp`]: inputs x, b, dy.
struct BiasActGradOp {
    act: Option<Activation>,
    width: usize,
}

impl SliceOp<1> for ActOp {
    const NAME: &'static str = NAME;

    fn compute<T: Real>(&self, [x]: [&[T]; 1]) -> Vec<T> {
        forward_kernel(self.act, x, None, self.width)
    }
}

impl CustomOp1 for ActOp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((run_slice_op(self, [(s, l)])?, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dy = dy.contiguous()?;
        let dx = x.apply_op2_no_bwd(&dy, &ActGradOp { act: self.act, width: self.width })?;
        Ok(Some(dx))
    }
}

impl SliceOp<2> for ActGradOp {
    const NAME: &'static str = GRAD_NAME;

    fn compute<T: Real>(&self, [x, dy]: [&[T]; 2]) -> Vec<T> {
        backward_kernel(self.act, x, None, dy, self.width)
    }
}

impl CustomOp2 for ActGradOp {
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

impl SliceOp<2> for BiasActOp {
    const NAME: &'static str = NAME;

    fn compute<T: Real>(&self, [x, b]: [&[T]; 2]) -> Vec<T> {
        forward_kernel(self.act, x, Some(b), self.width)
    }
}

impl CustomOp2 for BiasActOp {
    fn name(&self) -> &'static str {
        NAME
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

    fn bwd(
        &self,
        x: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let packed = x.apply_op3_no_bwd(b, &dy, &BiasActGradOp { act: self.act, width: self.width })?;
        let n = x.elem_count();
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let db = packed.narrow(0, n, self.width)?;
        Ok((Some(dx), Some(db)))
    }
}

impl SliceOp<3> for BiasActGradOp {
    const NAME: &'static str = GRAD_NAME;

    fn compute<T: Real>(&self, [x, b, dy]: [&[T]; 3]) -> Vec<T> {
        backward_kernel(self.act, x, Some(b), dy, self.width)
    }
}

impl CustomOp3 for BiasActGradOp {
    fn name(&self) -> &'static str {
        GRAD_NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = run_slice_op(self, [(s1, l1), (s2, l2), (s3, l3)])?;
        Ok((out, Shape::from(l1.shape().elem_count() + self.width)))
    }
}

/// `act(x + bias)` (`act = None`: the identity, a bias add), fused in one pass, with its
/// backward (for `x` and `bias`) fused too.
///
/// `bias` is added along the last dimension (a linear layer's output, before its
/// nonlinearity). [`Activation::Gelu`] is the exact erf form.
///
/// # Shapes
/// `x`: (…, C); `bias`: (C). Returns `x`'s shape.
///
/// # Errors
/// A shape or dtype mismatch between `x` and `bias`; on the CPU, a dtype other than F32/F64.
/// Other devices fall back to [`bias_act_composed`].
pub fn bias_act(x: &Tensor, bias: Option<&Tensor>, act: Option<Activation>) -> candle_core::Result<Tensor> {
    let width = x.dims().last().copied().unwrap_or(1);
    if let Some(b) = bias {
        if b.dims() != [width] {
            bail!("bias_act: bias shape {:?} does not match the last dimension of x {:?}", b.dims(), x.dims());
        }
        if b.dtype() != x.dtype() {
            bail!("bias_act: bias dtype {:?} differs from x dtype {:?}", b.dtype(), x.dtype());
        }
    }
    if !x.device().is_cpu() {
        return bias_act_composed(x, bias, act);
    }
    let x = x.contiguous()?;
    match bias {
        Some(b) => x.apply_op2(&b.contiguous()?, BiasActOp { act, width }),
        None => x.apply_op1(ActOp { act, width }),
    }
}

/// `act(x + bias)` out of candle's own ops: the reference for the tests and the fallback on
/// devices other than the CPU.
///
/// # Shapes
/// `x`: (…, C); `bias`: (C). Returns `x`'s shape.
pub fn bias_act_composed(x: &Tensor, bias: Option<&Tensor>, act: Option<Activation>) -> candle_core::Result<Tensor> {
    let z = match bias {
        Some(b) => x.broadcast_add(b)?,
        None => x.clone(),
    };
    match act {
        Some(act) => act.apply(&z),
        None => Ok(z),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_independent_of_thread_count, compare, finite_difference_errors, randn, rel_err};
    use candle_core::{DType, Device};

    const ACTS: [Option<Activation>; 4] =
        [None, Some(Activation::Relu), Some(Activation::Silu), Some(Activation::Gelu)];

    #[test]
    fn fused_matches_composed_f32() {
        // x (300, 130): 39 000 elements, over the parallel threshold; (7, 5) single-threaded;
        // a transposed (odd-sized) x; and no bias.
        for (k, act) in ACTS.into_iter().enumerate() {
            let seed = 10 * k as u64;
            for shape in [[7usize, 5], [300, 130]] {
                let x = randn(&shape, DType::F32, seed);
                let b = randn(&shape[1..], DType::F32, seed + 1);
                let (fwd, grads) = compare(
                    &[x, b],
                    |v| bias_act(&v[0], Some(&v[1]), act),
                    |v| bias_act_composed(&v[0], Some(&v[1]), act),
                    seed + 2,
                );
                assert!(fwd < 1e-6, "{act:?} {shape:?} fwd {fwd:e}");
                assert!(grads.iter().all(|&e| e < 1e-5), "{act:?} {shape:?} grads {grads:?}");
            }
            let xt = randn(&[9, 13], DType::F32, seed + 3);
            let b = randn(&[9], DType::F32, seed + 4);
            let (fwd, grads) = compare(
                &[xt, b],
                |v| bias_act(&v[0].t()?, Some(&v[1]), act),
                |v| bias_act_composed(&v[0].t()?, Some(&v[1]), act),
                seed + 5,
            );
            assert!(fwd < 1e-6 && grads.iter().all(|&e| e < 1e-5), "{act:?} transposed {fwd:e} {grads:?}");
            let x = randn(&[3, 4, 11], DType::F32, seed + 6);
            let (fwd, grads) =
                compare(&[x], |v| bias_act(&v[0], None, act), |v| bias_act_composed(&v[0], None, act), seed + 7);
            assert!(fwd < 1e-6 && grads[0] < 1e-5, "{act:?} no bias {fwd:e} {grads:?}");
        }
    }

    #[test]
    fn gradients_match_finite_differences_f64() {
        for (k, act) in ACTS.into_iter().enumerate() {
            let seed = 100 + 10 * k as u64;
            let x = randn(&[4, 5], DType::F64, seed);
            let b = randn(&[5], DType::F64, seed + 1);
            let errs = finite_difference_errors(&[x.clone(), b], |v| bias_act(&v[0], Some(&v[1]), act), seed + 2);
            assert!(errs.iter().all(|&e| e < 1e-6), "{act:?} {errs:?}");
            let errs = finite_difference_errors(&[x], |v| bias_act(&v[0], None, act), seed + 3);
            assert!(errs[0] < 1e-6, "{act:?} no bias {errs:?}");
        }
    }

    #[test]
    fn f64_forward_matches_composed_closely() {
        for act in ACTS {
            let x = randn(&[6, 7], DType::F64, 5);
            let b = randn(&[7], DType::F64, 6);
            let err = rel_err(&bias_act(&x, Some(&b), act).unwrap(), &bias_act_composed(&x, Some(&b), act).unwrap());
            assert!(err < 1e-14, "{act:?} {err:e}");
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // 39 000 elements in 3 blocks of rows, with and without a bias.
        for (k, act) in ACTS.into_iter().enumerate() {
            let seed = 200 + 10 * k as u64;
            let x = randn(&[300, 130], DType::F32, seed);
            let b = randn(&[130], DType::F32, seed + 1);
            assert_independent_of_thread_count(&[x.clone(), b], |v| bias_act(&v[0], Some(&v[1]), act), seed + 2);
            assert_independent_of_thread_count(&[x], |v| bias_act(&v[0], None, act), seed + 3);
        }
    }

    #[test]
    fn rejects_bad_inputs() {
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let b4 = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        assert!(bias_act(&x, Some(&b4), Some(Activation::Gelu)).is_err());
        let b64 = Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap();
        assert!(bias_act(&x, Some(&b64), Some(Activation::Gelu)).is_err());
        let half = x.to_dtype(DType::F16).unwrap();
        let err = bias_act(&half, None, Some(Activation::Silu)).unwrap_err().to_string();
        assert!(err.contains("unsupported dtype F16"), "{err}");
    }
}
