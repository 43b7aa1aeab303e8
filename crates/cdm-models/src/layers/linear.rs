//! The affine layer, with its bias and an optional nonlinearity fused after the product.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use cdm_kernels::activation::bias_act;
use cdm_kernels::linear::linear_product;

use super::torch_uniform;
use crate::Activation;

/// `y = x·Wᵀ + b`, `W` (out_dim, in_dim), PyTorch init.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> candle_core::Result<Linear> {
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", torch_uniform(in_dim))?;
    let bias = vb.get_with_hints(out_dim, "bias", torch_uniform(in_dim))?;
    Ok(Linear { weight, bias })
}

/// An affine layer `y = x·Wᵀ + b`: the product one op ([`linear_product`]), the bias add (and
/// an optional nonlinearity after it) one fused pass over it ([`bias_act`]).
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
        bias_act(&linear_product(&rows, &self.weight)?, Some(&self.bias), act)?.reshape(out_shape)
    }
}

impl Module for Linear {
    /// # Shapes
    /// `x`: (…, in_dim) → (…, out_dim).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_act(x, None)
    }
}
