//! Layers with PyTorch's default initialisation, running the fused CPU kernels of
//! [`cdm_kernels`].
//!
//! | layer | parameters | init (as hints to the [`VarBuilder`](candle_nn::VarBuilder)) |
//! |---|---|---|
//! | [`linear`] | `weight` (out, in), `bias` (out) | both `U(±1/√in)` |
//! | [`conv2d`] | `weight` (out, in, k, k), `bias` (out) | both `U(±1/√(in·k²))` |
//! | [`group_norm`], [`LayerNorm`] | `weight`, `bias` (channels) | ones, zeros |
//!
//! candle's own constructors use Kaiming-normal weights (2.45× PyTorch's std) and conv biases
//! 3× wider than PyTorch's; these match `torch.nn` so PyTorch hyper-parameters carry over.
//!
//! [`Linear`] fuses its bias (and an optional following nonlinearity) into one pass after the
//! matrix product; [`LayerNorm`] is [`cdm_kernels::norm::layer_norm`], which has a backward
//! (`candle_nn::LayerNorm` takes a fused path without one on contiguous input, so gradients
//! would silently stop there); [`GroupNorm`] can fuse a following SiLU; [`Conv2d`] runs the
//! GEMM-based [`cdm_kernels::conv2d`].
//! [`upsample_nearest_2x`] is [`cdm_kernels::upsample::upsample_nearest_2x`]: its gradient is
//! exact however the input is used elsewhere (candle's `upsample_nearest2d` backward
//! overwrites, instead of adding to, the gradient of an input that also feeds another op).

mod conv2d;
mod group_norm;
mod layer_norm;
mod linear;

use candle_nn::Init;

pub use cdm_kernels::upsample::upsample_nearest_2x;
pub use conv2d::{Conv2d, conv2d};
pub use group_norm::{GroupNorm, group_norm};
pub use layer_norm::LayerNorm;
pub use linear::{Linear, linear};

/// `U(±1/√fan_in)`, PyTorch's default for linear and convolution weights and biases.
fn torch_uniform(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform { lo: -bound, up: bound }
}
