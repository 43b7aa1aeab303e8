//! The layer norm layer, running the fused kernel (which has a backward).

use candle_core::{Module, Tensor};
use candle_nn::{Init, VarBuilder};
use cdm_kernels::norm::layer_norm;

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
}
