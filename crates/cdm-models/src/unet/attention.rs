//! diffusers' spatial self-attention (`Attention` built with `_from_deprecated_attn_block`).
//!
//! ```text
//! h = group_norm(x) as (B, H·W, C)                  (no norm in a "scale_shift" mid block)
//! q, k, v = to_q(h), to_k(h), to_v(h)               C → heads·head_dim, split into heads
//! a = softmax(q·kᵀ / √head_dim) · v                 per head, over the H·W positions
//! y = (to_out.0(a) as (B, C, H, W) + x) / rescale_output_factor
//! ```
//!
//! `heads = C / attention_head_dim` (integer division), or one head of `C` channels when
//! `attention_head_dim` is `None`. Keys: `group_norm`, `to_q`, `to_k`, `to_v`, `to_out.0`.
//! The map is never transposed to tokens: the projections are 1×1 convolutions (a linear
//! layer at every position; `to_q`, `to_k`, `to_v` stacked into one) and the heads'
//! `softmax(q·kᵀ/√head_dim)·v` is one op on channel-major features,
//! [`cdm_kernels::attention::self_attention`], with a fused backward.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use cdm_kernels::attention::self_attention;
use cdm_kernels::conv2d::conv2d;

use crate::layers::{GroupNorm, Linear, group_norm, linear};

/// One self-attention layer over the spatial positions of a feature map.
#[derive(Clone, Debug)]
pub(crate) struct AttentionBlock {
    group_norm: Option<GroupNorm>,
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
    head_dim: usize,
    rescale_output_factor: f64,
}

impl AttentionBlock {
    /// `norm_groups: None` builds the layer without its input GroupNorm.
    pub fn new(
        channels: usize,
        attention_head_dim: Option<usize>,
        norm_groups: Option<usize>,
        eps: f64,
        rescale_output_factor: f64,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let head_dim = attention_head_dim.unwrap_or(channels);
        let heads = channels / head_dim;
        let inner = heads * head_dim;
        let group_norm = match norm_groups {
            Some(groups) => Some(group_norm(groups, channels, eps, vb.pp("group_norm"))?),
            None => None,
        };
        Ok(Self {
            group_norm,
            to_q: linear(channels, inner, vb.pp("to_q"))?,
            to_k: linear(channels, inner, vb.pp("to_k"))?,
            to_v: linear(channels, inner, vb.pp("to_v"))?,
            to_out: linear(inner, channels, vb.pp("to_out").pp(0))?,
            heads,
            head_dim,
            rescale_output_factor,
        })
    }

    /// # Shapes
    /// `x`: (B, C, H, W) → (B, C, H, W).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let normed = match &self.group_norm {
            Some(norm) => norm.forward(x)?,
            None => x.clone(),
        };
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let projections = [&self.to_q, &self.to_k, &self.to_v];
        let weight = Tensor::cat(&projections.map(Linear::weight), 0)?;
        let bias = Tensor::cat(&projections.map(Linear::bias), 0)?;
        let attended = self_attention(&pointwise(&normed, &weight, &bias)?, self.heads, scale)?;
        let y = (pointwise(&attended, self.to_out.weight(), self.to_out.bias())? + x)?;
        if self.rescale_output_factor == 1.0 { Ok(y) } else { y / self.rescale_output_factor }
    }
}

/// A linear layer (weight (O, C), bias (O)) applied at every position of a (B, C, H, W) map: a
/// 1×1 convolution with the weight viewed as (O, C, 1, 1), so the map is never transposed to
/// tokens.
fn pointwise(x: &Tensor, weight: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let (out_dim, in_dim) = weight.dims2()?;
    conv2d(x, &weight.reshape((out_dim, in_dim, 1, 1))?, Some(bias), 1, 0)
}
