//! Fused CPU kernels with their own backward passes.
//!
//! candle builds layer norm, group norm, softmax and the convolution gradients out of many
//! elementwise passes (or gives fused versions without a backward). These kernels compute the
//! same functions in one or two passes over memory, as candle `CustomOp`s whose `bwd` is the
//! exact analytic gradient. On other devices (CUDA, Metal) every entry point falls back to the
//! composed candle ops, so results agree everywhere and only the speed differs.
//!
//! Each kernel is tested against the composed reference: forward and backward within a
//! relative 1e-5 in f32, and against central finite differences in f64.

pub mod activation;
pub mod conv2d;
pub mod norm;
mod numerics;
pub mod softmax;
#[cfg(test)]
mod testing;
