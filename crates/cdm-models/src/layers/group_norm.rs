//! The group norm layer, optionally fused with a following SiLU.

use candle_core::{Module, Tensor, bail};
use candle_nn::{Init, VarBuilder};
use cdm_kernels::norm::group_norm as group_norm_kernel;

use crate::Activation;

/// A group norm with affine parameters (ones, zeros), running the fused
/// [`cdm_kernels::norm::group_norm`].
pub fn group_norm(groups: usize, channels: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<GroupNorm> {
    let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
    let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
    GroupNorm::new(weight, bias, groups, eps)
}

/// A group norm layer's parameters, applied with the fused [`cdm_kernels::norm::group_norm`]:
/// a drop-in for `candle_nn::GroupNorm` (whose fields are private) that can also fuse a
/// following SiLU.
#[derive(Clone, Debug)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
}

impl GroupNorm {
    /// A layer over `weight.dims()[0]` channels in `groups` groups.
    ///
    /// # Errors
    /// `weight` and `bias` not (C) vectors of one dtype, or `groups` not dividing C.
    pub fn new(weight: Tensor, bias: Tensor, groups: usize, eps: f64) -> candle_core::Result<Self> {
        let channels = weight.dims1()?;
        if bias.dims() != [channels] || bias.dtype() != weight.dtype() {
            bail!("GroupNorm: bias {:?} {:?} does not match weight ({channels},)", bias.dims(), bias.dtype());
        }
        if groups == 0 || !channels.is_multiple_of(groups) {
            bail!("GroupNorm: {groups} groups do not divide {channels} channels");
        }
        Ok(Self { weight, bias, groups, eps })
    }

    /// The per-channel scale (C).
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The per-channel shift (C).
    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// `act(group_norm(x))`, fused into one kernel for [`Activation::Silu`].
    ///
    /// # Shapes
    /// `x`: (B, C, …) → the same.
    pub fn forward_act(&self, x: &Tensor, act: Activation) -> candle_core::Result<Tensor> {
        match act {
            Activation::Silu => self.normalise(x, true),
            other => other.apply(&self.normalise(x, false)?),
        }
    }

    /// The normalised `x`, followed by SiLU in the same pass when `silu`.
    fn normalise(&self, x: &Tensor, silu: bool) -> candle_core::Result<Tensor> {
        group_norm_kernel(x, self.groups, &self.weight, &self.bias, self.eps, silu)
    }
}

impl Module for GroupNorm {
    /// # Shapes
    /// `x`: (B, C, …) → the same.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.normalise(x, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use cdm_kernels::testing::{randn, rel_err};

    #[test]
    fn group_norm_layer_matches_candle_nn() {
        let x = randn(&[2, 8, 4, 4], DType::F32, 500);
        // Affine parameters around (1, 0) so that they matter but do not vanish.
        let w = randn(&[8], DType::F32, 501).affine(0.3, 1.0).unwrap();
        let b = randn(&[8], DType::F32, 502).affine(0.3, 0.0).unwrap();
        let ours = GroupNorm::new(w.clone(), b.clone(), 4, 1e-5).unwrap();
        let theirs = candle_nn::GroupNorm::new(w, b, 8, 4, 1e-5).unwrap();
        let reference = theirs.forward(&x).unwrap();
        assert!(rel_err(&ours.forward(&x).unwrap(), &reference) < 1e-6);
        let fused = ours.forward_act(&x, Activation::Silu).unwrap();
        assert!(rel_err(&fused, &reference.silu().unwrap()) < 1e-6);
        let gelu = ours.forward_act(&x, Activation::Gelu).unwrap();
        assert!(rel_err(&gelu, &reference.gelu_erf().unwrap()) < 1e-6);
    }
}
