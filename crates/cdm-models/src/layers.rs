//! Layers with PyTorch's default initialisation, running the fused CPU [`crate::kernels`].
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
//! [`Linear`] fuses its bias (and an optional following nonlinearity) into one pass after the
//! matrix product; [`LayerNorm`] is [`crate::kernels::norm::layer_norm`], which has a backward
//! (`candle_nn::LayerNorm` takes a fused path without one on contiguous input, so gradients
//! would silently stop there).
//! [`upsample_nearest_2x`] guards against candle's `upsample_nearest2d` backward, which
//! overwrites (instead of adding to) the gradient of an input that also feeds another op.

use candle_core::{Module, Tensor};
use candle_nn::{Conv2dConfig, Init, VarBuilder};

use crate::Activation;
use crate::kernels::activation::bias_act;
use crate::kernels::conv2d::Conv2d;
use crate::kernels::norm::{GroupNorm, layer_norm};

/// `U(±1/√fan_in)`, PyTorch's default for linear and convolution weights and biases.
fn torch_uniform(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform { lo: -bound, up: bound }
}

/// `y = x·Wᵀ + b`, `W` (out_dim, in_dim), PyTorch init.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> candle_core::Result<Linear> {
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", torch_uniform(in_dim))?;
    let bias = vb.get_with_hints(out_dim, "bias", torch_uniform(in_dim))?;
    Ok(Linear { weight, bias })
}

/// An affine layer `y = x·Wᵀ + b` whose bias add (and an optional nonlinearity after it) is
/// one fused pass over the product ([`bias_act`]).
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// `W`, (out_dim, in_dim).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `b`, (out_dim).
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// `act(x·Wᵀ + b)`, or `x·Wᵀ + b` without `act`.
    ///
    /// # Shapes
    /// `x`: (…, in_dim) → (…, out_dim).
    pub fn forward_act(&self, x: &Tensor, act: Option<Activation>) -> candle_core::Result<Tensor> {
        let (out_dim, in_dim) = self.weight.dims2()?;
        let mut out_shape = x.dims().to_vec();
        let Some(last) = out_shape.last_mut() else {
            candle_core::bail!("linear: a scalar input has no feature dimension (expected (…, {in_dim}))")
        };
        *last = out_dim;
        let rows = x.reshape(((), in_dim))?;
        bias_act(&rows.matmul(&self.weight.t()?)?, Some(&self.bias), act)?.reshape(out_shape)
    }
}

impl Module for Linear {
    /// # Shapes
    /// `x`: (…, in_dim) → (…, out_dim).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_act(x, None)
    }
}

/// A square `kernel`×`kernel` convolution with bias, PyTorch init, running the GEMM-based
/// [`crate::kernels::conv2d`] (dilation and groups must be 1).
pub fn conv2d(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    config: Conv2dConfig,
    vb: VarBuilder,
) -> candle_core::Result<Conv2d> {
    if config.dilation != 1 || config.groups != 1 {
        candle_core::bail!("conv2d: dilation {} and groups {} are not supported", config.dilation, config.groups);
    }
    let init = torch_uniform(in_channels * kernel * kernel);
    let weight = vb.get_with_hints((out_channels, in_channels, kernel, kernel), "weight", init)?;
    let bias = vb.get_with_hints(out_channels, "bias", init)?;
    Ok(Conv2d::new(weight, Some(bias), config.stride, config.padding))
}

/// A group norm with affine parameters (ones, zeros), running the fused
/// [`crate::kernels::norm::group_norm`].
pub fn group_norm(groups: usize, channels: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<GroupNorm> {
    let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
    let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
    GroupNorm::new(weight, bias, groups, eps)
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

    /// The scale (dim).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The shift (dim).
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// The variance offset.
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl Module for LayerNorm {
    /// # Shapes
    /// `x`: (…, dim) → (…, dim).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        layer_norm(x, &self.weight, &self.bias, self.eps)
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
