//! The 2-D convolution layer, running the GEMM-based kernel.

use candle_core::{Module, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};

use super::torch_uniform;

/// A square `kernel`×`kernel` convolution with bias, PyTorch init, running the GEMM-based
/// [`cdm_kernels::conv2d`] (dilation and groups must be 1).
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

/// A convolution layer (weight, optional bias, stride, padding) that runs
/// [`cdm_kernels::conv2d::conv2d`]; built with PyTorch's initialisation by [`conv2d`].
#[derive(Clone, Debug)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    /// A layer from its weight (Cout, Cin, kh, kw) and bias (Cout).
    pub fn new(weight: Tensor, bias: Option<Tensor>, stride: usize, padding: usize) -> Self {
        Self { weight, bias, stride, padding }
    }

    /// The weight, (Cout, Cin, kh, kw).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, (Cout).
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The stride (both directions).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The zero padding (all four sides).
    pub fn padding(&self) -> usize {
        self.padding
    }
}

impl Module for Conv2d {
    /// # Shapes
    /// `x` (B, Cin, H, W) → (B, Cout, Ho, Wo).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        cdm_kernels::conv2d::conv2d(x, &self.weight, self.bias.as_ref(), self.stride, self.padding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::seeded_var_builder;
    use candle_core::{DType, Device, Var};
    use cdm_kernels::testing::{randn, rel_err};

    #[test]
    fn init_bounds_follow_pytorch() {
        let (_, vb) = seeded_var_builder(3, DType::F32, &Device::Cpu);
        let conv = conv2d(4, 2, 3, Conv2dConfig::default(), vb.pp("conv")).unwrap();
        let bound = 1.0 / 36f32.sqrt();
        let w = conv.weight().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(w.iter().all(|v| v.abs() <= bound));
        assert!(w.iter().any(|v| v.abs() > 0.8 * bound));
    }

    #[test]
    fn the_layer_matches_candles_layer() {
        let x = randn(&[2, 3, 6, 6], DType::F32, 70);
        let candle_conv = candle_nn::Conv2d::new(
            randn(&[4, 3, 3, 3], DType::F32, 71),
            Some(randn(&[4], DType::F32, 72)),
            Conv2dConfig { padding: 1, stride: 2, ..Default::default() },
        );
        let conv = Conv2d::new(candle_conv.weight().clone(), candle_conv.bias().cloned(), 2, 1);
        assert!(rel_err(&conv.forward(&x).unwrap(), &candle_conv.forward(&x).unwrap()) < 1e-5);
        let weight = Var::from_tensor(conv.weight()).unwrap();
        let conv = Conv2d::new(weight.as_tensor().clone(), conv.bias().cloned(), 2, 1);
        let grads = conv.forward(&x).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        assert_eq!(grads.get(&weight).unwrap().dims(), &[4, 3, 3, 3]);
        // Σ y = Σ_o Σ_pixels …: the weight gradient is the im2col row sums, never zero here.
        let dw = grads.get(&weight).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(dw > 0.0);
    }
}
