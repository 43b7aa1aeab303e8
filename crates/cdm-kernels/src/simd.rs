//! Runs a kernel's loops compiled for the widest SIMD instructions the CPU has.
//!
//! The crate is built for the baseline x86-64 target (SSE2), so LLVM vectorises the kernels'
//! scalar loops four f32 lanes wide. [`vectorized`] hands a kernel to `pulp`, which runs it
//! from a copy compiled with AVX-512 (x86-64-v4) or AVX2 (v3) enabled, picked per call from
//! what the CPU reports (cached); there its loops are vectorised 16 or 8 lanes wide. The
//! arithmetic is unchanged: Rust never contracts a multiply and an add into an FMA, so the
//! results are those of the baseline build.
//!
//! Only code inlined into that copy benefits. A kernel is therefore a struct of its arguments
//! implementing [`pulp::WithSimd`] with an `#[inline(always)]` `with_simd` that calls an
//! `#[inline(always)]` function (closures and `fn` items called through `FnOnce` are not
//! force-inlined, and would run at the baseline width); the scalar helpers it uses
//! (`Real::exp`, `normal_cdf_pdf`, the reductions) are `#[inline(always)]` or small.

pub(crate) use pulp::{Simd, WithSimd};

/// Runs `kernel` compiled for the best instruction set this CPU supports.
#[inline(always)]
pub(crate) fn vectorized<K: WithSimd>(kernel: K) -> K::Output {
    pulp::Arch::new().dispatch(kernel)
}
