//! Layers with PyTorch's default initialisation, and a layer norm that has a gradient.
//!
//! | layer | parameters | init (as hints to the [`VarBuilder`]) |
//! |---|---|---|
//! | [`linear`] | `weight` (out, in), `bias` (out) | both `U(±1/√in)` |
//! | [`conv2d`] | `weight` (out, in, k, k), `bias` (out) | both `U(±1/√(in·k²))` |
//! | [`group_norm`], [`LayerNorm`] | `weight`, `bias` (channels) | ones, zeros |
//!
//! candle's own constructors use Kaiming-normal weights (2.45× PyTorch's std) and conv biases
//! 3× wider than PyTorch's; these match `torch.nn` so PyTorch hyper-parameters carry over.
//!
//! [`LayerNorm`] is written out of primitive ops: `candle_nn::LayerNorm` takes a fused path
//! without backward on contiguous input, so gradients would silently stop there.
//! [`upsample_nearest_2x`] guards against candle's `upsample_nearest2d` backward, which
//! overwrites (instead of adding to) the gradient of an input that also feeds another op.

use candle_core::{D, Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, GroupNorm, Init, Linear, VarBuilder};

/// `U(±1/√fan_in)`, PyTorch's default for linear and convolution weights and biases.
fn torch_uniform(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform { lo: -bound, up: bound }
}

/// `y = x·Wᵀ + b`, `W` (out_dim, in_dim), PyTorch init.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> candle_core::Result<Linear> {
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", torch_uniform(in_dim))?;
    let bias = vb.get_with_hints(out_dim, "bias", torch_uniform(in_dim))?;
    Ok(Linear::new(weight, Some(bias)))
}

/// A square `kernel`×`kernel` convolution with bias, PyTorch init.
pub fn conv2d(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    config: Conv2dConfig,
    vb: VarBuilder,
) -> candle_core::Result<Conv2d> {
    let init = torch_uniform(in_channels * kernel * kernel);
    let weight = vb.get_with_hints((out_channels, in_channels, kernel, kernel), "weight", init)?;
    let bias = vb.get_with_hints(out_channels, "bias", init)?;
    Ok(Conv2d::new(weight, Some(bias), config))
}

/// `candle_nn::GroupNorm` (built from primitive ops, so differentiable) with affine parameters.
pub fn group_norm(groups: usize, channels: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<GroupNorm> {
    let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
    let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
    GroupNorm::new(weight, bias, channels, groups, eps)
}

/// Layer normalisation over the last dimension with an affine map:
/// `y = (x − mean(x)) / √(var(x) + eps) · weight + bias`, biased variance as in PyTorch.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// A layer norm over `dim` features with `weight` (ones) and `bias` (zeros).
    pub fn new(dim: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(dim, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias, eps })
    }
}

impl Module for LayerNorm {
    /// # Shapes
    /// `x`: (…, dim) → (…, dim).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

/// Nearest-neighbour ×2 upsampling whose gradient is correct however `x` is used elsewhere.
///
/// # Shapes
/// `x`: (B, C, H, W) → (B, C, 2H, 2W).
pub fn upsample_nearest_2x(x: &Tensor) -> candle_core::Result<Tensor> {
    let (_, _, height, width) = x.dims4()?;
    // The copy is the upsample's only input, so its overwritten gradient is the whole gradient.
    x.affine(1.0, 0.0)?.upsample_nearest2d(2 * height, 2 * width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::seeded_var_builder;
    use candle_core::{DType, Device, Var};

    #[test]
    fn layer_norm_matches_candles_reference_and_has_gradients() {
        let (vars, vb) = seeded_var_builder(0, DType::F64, &Device::Cpu);
        let norm = LayerNorm::new(4, 1e-5, vb.pp("norm")).unwrap();
        let x =
            Var::from_tensor(&Tensor::new(&[[1.0f64, -2.0, 3.0, 0.5], [0.0, 0.1, 0.2, 0.3]], &Device::Cpu).unwrap())
                .unwrap();
        let y = norm.forward(&x).unwrap();
        let reference = candle_nn::ops::layer_norm_slow(&x, &norm.weight, &norm.bias, 1e-5).unwrap();
        let diff = (&y - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
        assert!(diff < 1e-9, "{diff}");
        let grads = (y.sqr().unwrap() * 3.0).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_some());
        for var in vars.all_vars() {
            assert!(grads.get(&var).is_some());
        }
    }

    #[test]
    fn init_bounds_follow_pytorch() {
        let (_, vb) = seeded_var_builder(3, DType::F32, &Device::Cpu);
        let conv = conv2d(4, 2, 3, Conv2dConfig::default(), vb.pp("conv")).unwrap();
        let bound = 1.0 / 36f32.sqrt();
        let w = conv.weight().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(w.iter().all(|v| v.abs() <= bound));
        assert!(w.iter().any(|v| v.abs() > 0.8 * bound));
    }
}
