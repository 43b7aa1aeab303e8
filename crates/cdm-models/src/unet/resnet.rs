//! diffusers' `ResnetBlock2D` (pre-norm, time-conditioned).
//!
//! ```text
//! h = conv1(act(norm1(x)))                               3×3, in → out
//! "default":     h = act(norm2(h + time_emb_proj(act(temb))))
//! "scale_shift": [s, b] = time_emb_proj(act(temb)); h = act(norm2(h)·(1 + s) + b)
//! h = conv2(dropout(h))                                  3×3, out → out
//! y = (shortcut(x) + h) / output_scale_factor            shortcut = conv_shortcut (1×1) if in ≠ out
//! ```
//!
//! Keys: `norm1`, `conv1`, `time_emb_proj`, `norm2`, `conv2`, `conv_shortcut`.

use candle_core::{Module, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};
use cdm_kernels::resnet_block::{ResnetBlockSettings, ResnetBlockWeights, resnet_block};

use super::config::TimeConditioning;
use crate::Activation;
use crate::layers::{Conv2d, GroupNorm, Linear, conv2d, group_norm, linear};

/// Settings shared by every ResNet block of a UNet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResnetSettings {
    pub groups: usize,
    pub eps: f64,
    pub activation: Activation,
    pub dropout: f64,
    pub time_conditioning: TimeConditioning,
    pub temb_channels: usize,
}

/// One `ResnetBlock2D`.
#[derive(Clone, Debug)]
pub(crate) struct ResnetBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_emb_proj: Linear,
    norm2: GroupNorm,
    conv2: Conv2d,
    conv_shortcut: Option<Conv2d>,
    settings: ResnetSettings,
    output_scale_factor: f64,
}

impl ResnetBlock {
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        settings: ResnetSettings,
        output_scale_factor: f64,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let same = Conv2dConfig { padding: 1, ..Conv2dConfig::default() };
        let time_out = match settings.time_conditioning {
            TimeConditioning::Add => out_channels,
            TimeConditioning::ScaleShift => 2 * out_channels,
        };
        let conv_shortcut = if in_channels != out_channels {
            Some(conv2d(in_channels, out_channels, 1, Conv2dConfig::default(), vb.pp("conv_shortcut"))?)
        } else {
            None
        };
        Ok(Self {
            norm1: group_norm(settings.groups, in_channels, settings.eps, vb.pp("norm1"))?,
            conv1: conv2d(in_channels, out_channels, 3, same, vb.pp("conv1"))?,
            time_emb_proj: linear(settings.temb_channels, time_out, vb.pp("time_emb_proj"))?,
            norm2: group_norm(settings.groups, out_channels, settings.eps, vb.pp("norm2"))?,
            conv2: conv2d(out_channels, out_channels, 3, same, vb.pp("conv2"))?,
            conv_shortcut,
            settings,
            output_scale_factor,
        })
    }

    /// # Shapes
    /// `x`: (B, in, H, W); `temb`: (B, temb_channels), the time embedding after the block's
    /// activation, `act(temb)` (the UNet computes it once for all blocks). Returns
    /// (B, out, H, W).
    pub fn forward(&self, x: &Tensor, temb: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let act = self.settings.activation;
        let dropout = train && self.settings.dropout > 0.0;
        if act == Activation::Silu && self.settings.time_conditioning == TimeConditioning::Add && !dropout {
            return self.forward_fused(x, temb);
        }
        let h = self.conv1.forward(&self.norm1.forward_act(x, act)?)?;
        let time = self.time_emb_proj.forward(temb)?.unsqueeze(2)?.unsqueeze(3)?;
        let mut h = match self.settings.time_conditioning {
            TimeConditioning::Add => self.norm2.forward_act(&h.broadcast_add(&time)?, act)?,
            TimeConditioning::ScaleShift => {
                let chunks = time.chunk(2, 1)?;
                let scaled = self.norm2.forward(&h)?.broadcast_mul(&(&chunks[0] + 1.0)?)?;
                act.apply(&scaled.broadcast_add(&chunks[1])?)?
            }
        };
        if dropout {
            h = candle_nn::ops::dropout(&h, self.settings.dropout as f32)?;
        }
        let h = self.conv2.forward(&h)?;
        let shortcut = match &self.conv_shortcut {
            Some(conv) => conv.forward(x)?,
            None => x.clone(),
        };
        let y = (shortcut + h)?;
        if self.output_scale_factor == 1.0 { Ok(y) } else { y / self.output_scale_factor }
    }

    /// The block as one op, [`cdm_kernels::resnet_block::resnet_block`]: SiLU, additive time
    /// conditioning and no dropout, the common configuration.
    fn forward_fused(&self, x: &Tensor, temb: &Tensor) -> candle_core::Result<Tensor> {
        let time = self.time_emb_proj.forward(temb)?;
        let weights = ResnetBlockWeights {
            norm1: (self.norm1.weight(), self.norm1.bias()),
            conv1: affine(&self.conv1)?,
            norm2: (self.norm2.weight(), self.norm2.bias()),
            conv2: affine(&self.conv2)?,
            shortcut: self.conv_shortcut.as_ref().map(affine).transpose()?,
        };
        let settings = ResnetBlockSettings {
            groups: self.settings.groups,
            eps: self.settings.eps,
            output_scale_factor: self.output_scale_factor,
        };
        resnet_block(x, &time, &weights, settings)
    }
}

/// A convolution's weight and bias.
fn affine(conv: &Conv2d) -> candle_core::Result<(&Tensor, &Tensor)> {
    match conv.bias() {
        Some(bias) => Ok((conv.weight(), bias)),
        None => candle_core::bail!("resnet block: a convolution without a bias"),
    }
}
