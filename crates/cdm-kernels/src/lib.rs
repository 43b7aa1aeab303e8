//! # cdm-kernels
//!
//! Fused CPU operations with exact backward passes, for candle: the ops that cdm's models run
//! on, and the in-place AdamW update of its optimizer.
//!
//! A *kernel* here is one candle op computed by our own loops on the CPU:
//!
//! - **fused**: candle builds layer norm, group norm, softmax and the convolution gradients out
//!   of many elementwise passes (or offers fused versions without a backward), and records every
//!   op of a network in its autograd graph. A kernel computes the same function in one or two
//!   passes over memory — the residual MLP ([`residual_mlp`]) as a single op from its input
//!   features to ε̂ — as a candle `CustomOp` whose `bwd` is the exact analytic gradient, itself
//!   fused. Elementwise loops run compiled for the CPU's widest SIMD, matrix products through
//!   candle's gemm on views into the kernel's own buffers.
//! - **with a composed twin**: each entry point has a twin built from candle's own ops
//!   (`layer_norm` and `layer_norm_composed`, `conv2d` and `conv2d_candle`, …) that computes
//!   the same function. On other devices (CUDA, Metal) the entry point runs its twin, so results
//!   agree everywhere and only the speed differs (the in-place AdamW update leaves that choice to
//!   its caller, since only CPU buffers are overwritten); and the twin is the reference of the
//!   kernel's tests: forward and backward within a relative 1e-5 in f32, and the backward
//!   against central finite differences in f64.
//! - **blocked independently of the thread count**: work is split across rayon's threads in
//!   blocks whose boundaries depend on the shapes only, and the blocks' partial sums are added
//!   in f64 in a fixed order, so every result is bit-identical on any number of threads (each
//!   kernel that splits its work has a test that runs it on pools of different sizes).
//!
//! | module | kernels |
//! |---|---|
//! | [`activation`] | bias + ReLU / SiLU / GELU ([`Activation`]) |
//! | [`linear`] | a linear layer's product `x·Wᵀ` |
//! | [`norm`] | layer norm; group norm, optionally followed by SiLU |
//! | [`softmax`] | softmax over the last dimension |
//! | [`attention`] | multi-head scaled dot-product attention, on the projections as they are |
//! | [`upsample`] | nearest-neighbour ×2 upsampling |
//! | [`sinusoid`] | interleaved cosine/sine features of a scalar per row |
//! | [`conv2d`] | 2-D convolution as matrix products (Winograd F(2×2, 3×3) for 3×3 at stride 1, im2col otherwise) |
//! | [`residual_block`], [`residual_mlp`] | the paper's residual MLP, whole, as one op |
//! | [`resnet_block`] | diffusers' `ResnetBlock2D` (group norms, convolutions, time embedding, shortcut) as one op |
//! | [`adamw`] | the AdamW update in place (an optimizer step, so no backward) |
//!
//! Binaries set the process up once: [`tune_gemm_threading`] and [`in_thread_pool`].
//!
//! The kernels take f32 and f64; other dtypes are an error on the CPU. Errors are candle's
//! (`candle_core::Error`), as for any candle op, since they pass through candle's op interface.
#![doc = include_str!("../README.md")]

pub mod activation;
pub mod adamw;
pub mod attention;
pub mod conv2d;
pub mod linear;
mod matmul;
pub mod norm;
mod numerics;
mod parallel;
pub mod residual_block;
pub mod residual_mlp;
pub mod resnet_block;
mod simd;
pub mod sinusoid;
pub mod softmax;
mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod threads;
pub mod upsample;

pub use activation::Activation;
pub use threads::{GEMM_THREADING_THRESHOLD, in_thread_pool, tune_gemm_threading, without_subnormals};
