//! The AdamW update (Loshchilov & Hutter 2019) as three in-place passes over CPU memory.
//!
//! Written with candle's ops, one update of a parameter is eleven elementwise ops, each of which
//! allocates its result; for a small network the optimizer then costs as much as the backward
//! pass. [`adamw_in_place`] overwrites each moment and the parameter in place (candle
//! `InplaceOpN`), with the gradient `g`, learning rate `lr`, weight decay `λ` and the bias
//! corrections `c₁ = 1 − β₁ᵗ`, `c₂ = 1 − β₂ᵗ` of step `t`:
//!
//! ```text
//! m ← β₁·m + (1 − β₁)·g                                   first moment
//! v ← β₂·v + (1 − β₂)·g²                                  second moment
//! θ ← θ·(1 − lr·λ) − lr · (m/c₁) / (√(v/c₂) + ε)          the parameter
//! ```
//!
//! Each pass is one vectorisable loop in the tensor's own precision (f32 or f64), on the
//! calling thread, so the result does not depend on the thread count; [`adamw_in_place_all`]
//! updates many parameters in parallel, one per task. [`adamw_composed`] computes
//! the same update from candle ops into new tensors: the path on other devices, where nothing
//! is overwritten in place, and the tests' reference. An optimizer step has no backward.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor, bail};
use rayon::prelude::*;

use crate::numerics::Real;
use crate::storage::{MutableBuffer, by_float_dtype, contiguous_slice, contiguous_slice_mut};

const NAME: &str = "adamw";

/// The coefficients of one AdamW update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWStep {
    /// β₁, the first moment's decay.
    pub beta1: f64,
    /// β₂, the second moment's decay.
    pub beta2: f64,
    /// ε, added to the denominator.
    pub eps: f64,
    /// The decoupled weight decay λ.
    pub weight_decay: f64,
    /// The learning rate.
    pub lr: f64,
    /// The first moment's bias correction `1 − β₁ᵗ` at step `t`.
    pub bias1: f64,
    /// The second moment's bias correction `1 − β₂ᵗ` at step `t`.
    pub bias2: f64,
}

/// A parameter and its moments after one update, from [`adamw_composed`].
#[derive(Clone, Debug)]
pub struct AdamWState {
    /// The parameter θ.
    pub theta: Tensor,
    /// The first moment m.
    pub m: Tensor,
    /// The second moment v.
    pub v: Tensor,
}

/// One AdamW update of `theta` with moments `m`, `v` and gradient `grad`, overwriting `m`, `v`
/// and `theta` (see the [module docs](self)).
///
/// # Errors
/// Tensors not on the CPU, not f32 or f64 of one dtype, `theta`, `m` or `v` not contiguous, or
/// a moment or gradient with a different number of elements than `theta`.
pub fn adamw_in_place(theta: &Tensor, m: &Tensor, v: &Tensor, grad: &Tensor, step: &AdamWStep) -> Result<()> {
    let grad = grad.contiguous()?;
    m.inplace_op2(&grad, &Blend { a: step.beta1, b: 1.0 - step.beta1, square: false })?;
    v.inplace_op2(&grad, &Blend { a: step.beta2, b: 1.0 - step.beta2, square: true })?;
    theta.inplace_op3(m, v, &Apply(*step))
}

/// [`adamw_in_place`] of every `(θ, m, v, g)` in `updates`, the parameters in parallel on
/// rayon's threads. Each update reads and writes its own tensors only, so the results are those
/// of one [`adamw_in_place`] after another, whatever the thread count. (A UNet's few hundred
/// parameters one after another kept the second thread idle for about 1 % of a training step.)
///
/// # Errors
/// As [`adamw_in_place`], for the first update that fails.
pub fn adamw_in_place_all(updates: &[[&Tensor; 4]], step: &AdamWStep) -> Result<()> {
    updates.par_iter().try_for_each(|&[theta, m, v, grad]| adamw_in_place(theta, m, v, grad, step))
}

/// The update of [`adamw_in_place`] from candle's own ops, into new tensors: the reference for
/// the tests and the path on devices other than the CPU. Nothing of it keeps a graph.
pub fn adamw_composed(theta: &Tensor, m: &Tensor, v: &Tensor, grad: &Tensor, step: &AdamWStep) -> Result<AdamWState> {
    // Gradients are built from the parameters' graph: detach, or every step's moments would
    // keep the previous step's graph alive (an unbounded leak).
    let g = grad.detach();
    let m = ((m * step.beta1)? + (&g * (1.0 - step.beta1))?)?;
    let v = ((v * step.beta2)? + (g.sqr()? * (1.0 - step.beta2))?)?;
    let update = ((&m / step.bias1)? / ((&v / step.bias2)?.sqrt()? + step.eps)?)?;
    let decayed = (theta.detach() * (1.0 - step.lr * step.weight_decay))?;
    Ok(AdamWState { theta: (decayed - (update * step.lr)?)?, m, v })
}

/// `dst ← a·dst + b·f(src)` elementwise, `f` the identity or the square.
struct Blend {
    a: f64,
    b: f64,
    square: bool,
}

impl Blend {
    fn apply<T: Real>(&self, dst: &mut [T], src: &[T]) -> Result<()> {
        check_len(dst.len(), src.len())?;
        let (a, b) = (T::from_f64(self.a), T::from_f64(self.b));
        if self.square {
            dst.iter_mut().zip(src).for_each(|(d, &g)| *d = a * *d + b * (g * g));
        } else {
            dst.iter_mut().zip(src).for_each(|(d, &g)| *d = a * *d + b * g);
        }
        Ok(())
    }
}

impl InplaceOp2 for Blend {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(&self, dst: &mut CpuStorage, dst_l: &Layout, src: &CpuStorage, src_l: &Layout) -> Result<()> {
        fn run<T: Real + MutableBuffer>(
            op: &Blend,
            (dst, dst_l): (&mut CpuStorage, &Layout),
            (src, src_l): (&CpuStorage, &Layout),
        ) -> Result<()> {
            op.apply(contiguous_slice_mut::<T>(dst, dst_l, NAME)?, contiguous_slice(src, src_l, NAME)?)
        }
        by_float_dtype!(dst.dtype(), NAME, run(self, (dst, dst_l), (src, src_l)));
        Ok(())
    }
}

/// `θ ← θ·(1 − lr·λ) − (m·lr/c₁) / (√(v/c₂) + ε)`.
struct Apply(AdamWStep);

impl Apply {
    fn apply<T: Real>(&self, theta: &mut [T], m: &[T], v: &[T]) -> Result<()> {
        check_len(theta.len(), m.len())?;
        check_len(theta.len(), v.len())?;
        let step = &self.0;
        let decay = T::from_f64(1.0 - step.lr * step.weight_decay);
        let rate = T::from_f64(step.lr / step.bias1);
        let inv_bias2 = T::from_f64(1.0 / step.bias2);
        let eps = T::from_f64(step.eps);
        for ((t, &m), &v) in theta.iter_mut().zip(m).zip(v) {
            *t = *t * decay - (m * rate) / ((v * inv_bias2).sqrt() + eps);
        }
        Ok(())
    }
}

impl InplaceOp3 for Apply {
    fn name(&self) -> &'static str {
        "adamw-apply"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        m: &CpuStorage,
        m_l: &Layout,
        v: &CpuStorage,
        v_l: &Layout,
    ) -> Result<()> {
        fn run<T: Real + MutableBuffer>(
            op: &Apply,
            (dst, dst_l): (&mut CpuStorage, &Layout),
            [(m, m_l), (v, v_l)]: [(&CpuStorage, &Layout); 2],
        ) -> Result<()> {
            let theta = contiguous_slice_mut::<T>(dst, dst_l, NAME)?;
            op.apply(theta, contiguous_slice(m, m_l, NAME)?, contiguous_slice(v, v_l, NAME)?)
        }
        by_float_dtype!(dst.dtype(), NAME, run(self, (dst, dst_l), [(m, m_l), (v, v_l)]));
        Ok(())
    }
}

fn check_len(dst: usize, src: usize) -> Result<()> {
    if dst != src {
        bail!("{NAME}: a parameter has {dst} elements but its state has {src}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{randn, rel_err};
    use candle_core::DType;

    /// PyTorch's defaults at step 3, with a learning rate of 0.05.
    fn step() -> AdamWStep {
        let (beta1, beta2) = (0.9f64, 0.999f64);
        AdamWStep {
            beta1,
            beta2,
            eps: 1e-8,
            weight_decay: 0.01,
            lr: 0.05,
            bias1: 1.0 - beta1.powi(3),
            bias2: 1.0 - beta2.powi(3),
        }
    }

    #[test]
    fn in_place_matches_composed() {
        for (dtype, tolerance) in [(DType::F32, 1e-6), (DType::F64, 1e-14)] {
            let theta = randn(&[7, 5], dtype, 1);
            let m = randn(&[7, 5], dtype, 2).affine(0.1, 0.0).unwrap();
            let v = randn(&[7, 5], dtype, 3).sqr().unwrap().affine(0.01, 0.0).unwrap();
            let grad = randn(&[7, 5], dtype, 4);
            let expected = adamw_composed(&theta, &m, &v, &grad, &step()).unwrap();
            // Copies own their storage, which the update overwrites.
            let (theta, m, v) = (theta.copy().unwrap(), m.copy().unwrap(), v.copy().unwrap());
            adamw_in_place(&theta, &m, &v, &grad, &step()).unwrap();
            for (name, got, want) in
                [("theta", &theta, &expected.theta), ("m", &m, &expected.m), ("v", &v, &expected.v)]
            {
                let err = rel_err(got, want);
                assert!(err < tolerance, "{dtype:?} {name}: {err:e}");
            }
        }
    }

    #[test]
    fn many_in_parallel_match_one_after_another() {
        // Parameters of several sizes (up to a UNet weight's), each with its own state.
        let state = |n: usize, seed: u64| {
            let [theta, m, v, g] = [0, 1, 2, 3].map(|k| randn(&[n], DType::F32, seed + k));
            [theta, m.affine(0.1, 0.0).unwrap(), v.sqr().unwrap().affine(0.01, 0.0).unwrap(), g]
        };
        let sizes = [1, 64, 1000, 36_864, 7];
        let one_by_one: Vec<_> = sizes.iter().zip(0..).map(|(&n, i)| state(n, 10 * i)).collect();
        let together: Vec<_> = sizes.iter().zip(0..).map(|(&n, i)| state(n, 10 * i)).collect();
        for [theta, m, v, g] in &one_by_one {
            adamw_in_place(theta, m, v, g, &step()).unwrap();
        }
        let updates: Vec<[&Tensor; 4]> = together.iter().map(|[a, b, c, d]| [a, b, c, d]).collect();
        adamw_in_place_all(&updates, &step()).unwrap();
        for (a, b) in one_by_one.iter().zip(&together) {
            for (x, y) in a.iter().zip(b).take(3) {
                assert_eq!(x.to_vec1::<f32>().unwrap(), y.to_vec1::<f32>().unwrap());
            }
        }
        let bad = randn(&[3], DType::F32, 99);
        let err = adamw_in_place_all(&[updates[0], [&bad, &bad, &bad, updates[1][3]]], &step()).unwrap_err();
        assert!(err.to_string().contains("elements"), "{err}");
    }

    #[test]
    fn rejects_mismatched_state() {
        // Distinct tensors: the update must not alias its inputs.
        let theta = randn(&[4], DType::F32, 0);
        let [m, v, g] = [1, 2, 3].map(|seed| randn(&[3], DType::F32, seed));
        let err = adamw_in_place(&theta, &m, &v, &g, &step()).unwrap_err().to_string();
        assert!(err.contains("4 elements but its state has 3"), "{err}");
        let [m, v, g] = [1, 2, 3].map(|seed| randn(&[4], DType::F64, seed));
        assert!(adamw_in_place(&theta, &m, &v, &g, &step()).is_err());
        let [theta, m, v, g] = [0, 1, 2, 3].map(|seed| randn(&[4], DType::F16, seed));
        let err = adamw_in_place(&theta, &m, &v, &g, &step()).unwrap_err().to_string();
        assert!(err.contains("unsupported dtype F16"), "{err}");
    }
}
