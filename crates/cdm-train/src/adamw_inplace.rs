//! The AdamW update as three in-place passes over CPU memory.
//!
//! Written with candle's ops, one update of a parameter is eleven elementwise ops, each of which
//! allocates its result; for a small network the optimizer then costs as much as the backward
//! pass. Here each moment and the parameter are overwritten in place (candle `InplaceOpN`):
//!
//! ```text
//! m ← β₁·m + (1 − β₁)·g                                   FirstMoment
//! v ← β₂·v + (1 − β₂)·g²                                  SecondMoment
//! θ ← θ·(1 − lr·λ) − lr · (m/c₁) / (√(v/c₂) + ε)          Apply, c₁ = 1 − β₁ᵗ, c₂ = 1 − β₂ᵗ
//! ```
//!
//! Each pass is one vectorisable loop in the tensor's own precision (f32 or f64).

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Tensor, bail};

/// The element types the update is written for, computed in their own precision so the loops
/// vectorise.
trait Real: Copy + std::ops::Add<Output = Self> + std::ops::Sub<Output = Self> + std::ops::Mul<Output = Self> {
    fn from_f64(x: f64) -> Self;
    fn sqrt(self) -> Self;
    fn div(self, other: Self) -> Self;
}

impl Real for f32 {
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn div(self, other: Self) -> Self {
        self / other
    }
}

impl Real for f64 {
    fn from_f64(x: f64) -> Self {
        x
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn div(self, other: Self) -> Self {
        self / other
    }
}

/// `dst ← a·dst + b·f(src)` elementwise, `f` the identity or the square.
struct Blend {
    a: f64,
    b: f64,
    square: bool,
}

impl Blend {
    fn apply<T: Real>(&self, dst: &mut [T], src: &[T]) -> candle_core::Result<()> {
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

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dst_l: &Layout,
        src: &CpuStorage,
        src_l: &Layout,
    ) -> candle_core::Result<()> {
        match (dst, src) {
            (CpuStorage::F32(d), CpuStorage::F32(s)) => self.apply(contiguous_mut(d, dst_l)?, contiguous(s, src_l)?),
            (CpuStorage::F64(d), CpuStorage::F64(s)) => self.apply(contiguous_mut(d, dst_l)?, contiguous(s, src_l)?),
            _ => bail!("adamw: moments and gradients must be f32 or f64 of one dtype"),
        }
    }
}

/// `θ ← θ·decay − lr · (m/c₁) / (√(v/c₂) + ε)`, written as `θ·decay − (m·step) / (√(v·inv_c₂) + ε)`.
struct Apply {
    decay: f64,
    lr: f64,
    bias1: f64,
    bias2: f64,
    eps: f64,
}

impl Apply {
    fn apply<T: Real>(&self, theta: &mut [T], m: &[T], v: &[T]) -> candle_core::Result<()> {
        check_len(theta.len(), m.len())?;
        check_len(theta.len(), v.len())?;
        let decay = T::from_f64(self.decay);
        let step = T::from_f64(self.lr / self.bias1);
        let inv_bias2 = T::from_f64(1.0 / self.bias2);
        let eps = T::from_f64(self.eps);
        for ((t, &m), &v) in theta.iter_mut().zip(m).zip(v) {
            *t = *t * decay - (m * step).div((v * inv_bias2).sqrt() + eps);
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
    ) -> candle_core::Result<()> {
        match (dst, m, v) {
            (CpuStorage::F32(d), CpuStorage::F32(m), CpuStorage::F32(v)) => {
                self.apply(contiguous_mut(d, dst_l)?, contiguous(m, m_l)?, contiguous(v, v_l)?)
            }
            (CpuStorage::F64(d), CpuStorage::F64(m), CpuStorage::F64(v)) => {
                self.apply(contiguous_mut(d, dst_l)?, contiguous(m, m_l)?, contiguous(v, v_l)?)
            }
            _ => bail!("adamw: parameters and moments must be f32 or f64 of one dtype"),
        }
    }
}

fn check_len(dst: usize, src: usize) -> candle_core::Result<()> {
    if dst != src {
        bail!("adamw: a parameter has {dst} elements but its state has {src}");
    }
    Ok(())
}

fn contiguous<'a, T>(data: &'a [T], layout: &Layout) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("adamw: state tensors must be contiguous"),
    }
}

fn contiguous_mut<'a, T>(data: &'a mut [T], layout: &Layout) -> candle_core::Result<&'a mut [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut data[start..end]),
        None => bail!("adamw: parameters must be contiguous"),
    }
}

/// One AdamW update of `theta` (with moments `m`, `v` and gradient `grad`), all on the CPU,
/// overwriting `m`, `v` and `theta`.
pub(crate) fn step(
    theta: &Tensor,
    m: &Tensor,
    v: &Tensor,
    grad: &Tensor,
    config: &crate::AdamWConfig,
    lr: f64,
    bias1: f64,
    bias2: f64,
) -> candle_core::Result<()> {
    let grad = grad.contiguous()?;
    m.inplace_op2(&grad, &Blend { a: config.beta1, b: 1.0 - config.beta1, square: false })?;
    v.inplace_op2(&grad, &Blend { a: config.beta2, b: 1.0 - config.beta2, square: true })?;
    let apply = Apply { decay: 1.0 - lr * config.weight_decay, lr, bias1, bias2, eps: config.eps };
    theta.inplace_op3(m, v, &apply)
}
