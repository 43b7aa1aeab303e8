//! The down, middle and up blocks of diffusers' `UNet2DModel`.
//!
//! ```text
//! DownBlock2D / AttnDownBlock2D   n × (resnet [→ attention]), each output pushed as a skip;
//!                                 then, except at the lowest resolution, a stride-2 3×3 conv
//!                                 (`downsamplers.0.conv`) whose output is pushed as a skip too
//! UNetMidBlock2D                  resnet → [attention] → resnet
//! UpBlock2D / AttnUpBlock2D       (n + 1) × (cat[h, pop skip] on channels → resnet [→ attention]);
//!                                 then, except at the highest resolution, nearest ×2 and a
//!                                 3×3 conv (`upsamplers.0.conv`)
//! ```
//!
//! Skips are popped last-in first-out, so up block `i` consumes, in order, the outputs of the
//! mirrored down block's layers from last to first and then the tensor that entered it.

use candle_core::{Module, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};

use super::attention::AttentionBlock;
use super::resnet::{ResnetBlock, ResnetSettings};
use crate::layers::{Conv2d, conv2d, upsample_nearest_2x};

/// Attention settings shared by the attention layers of a UNet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttentionSettings {
    pub head_dim: Option<usize>,
    pub groups: Option<usize>,
    pub eps: f64,
}

fn attention_layers(
    present: bool,
    count: usize,
    channels: usize,
    attention: AttentionSettings,
    vb: VarBuilder,
) -> candle_core::Result<Vec<AttentionBlock>> {
    if !present {
        return Ok(Vec::new());
    }
    (0..count)
        .map(|j| AttentionBlock::new(channels, attention.head_dim, attention.groups, attention.eps, 1.0, vb.pp(j)))
        .collect()
}

/// `h` after `resnets[j]` and, if there are attention layers, `attentions[j]`.
fn resnet_then_attention(
    resnets: &[ResnetBlock],
    attentions: &[AttentionBlock],
    j: usize,
    h: &Tensor,
    temb: &Tensor,
    train: bool,
) -> candle_core::Result<Tensor> {
    let h = resnets[j].forward(h, temb, train)?;
    match attentions.get(j) {
        Some(attention) => attention.forward(&h),
        None => Ok(h),
    }
}

/// `DownBlock2D` or `AttnDownBlock2D`.
#[derive(Clone, Debug)]
pub(crate) struct DownBlock {
    resnets: Vec<ResnetBlock>,
    attentions: Vec<AttentionBlock>,
    downsampler: Option<Conv2d>,
    pad_before_downsample: bool,
}

impl DownBlock {
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        layers: usize,
        with_attention: bool,
        downsample_padding: Option<usize>,
        resnet: ResnetSettings,
        attention: AttentionSettings,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let resnets = (0..layers)
            .map(|j| {
                let in_ch = if j == 0 { in_channels } else { out_channels };
                ResnetBlock::new(in_ch, out_channels, resnet, 1.0, vb.pp("resnets").pp(j))
            })
            .collect::<candle_core::Result<_>>()?;
        let attentions = attention_layers(with_attention, layers, out_channels, attention, vb.pp("attentions"))?;
        let downsampler = match downsample_padding {
            Some(padding) => {
                let config = Conv2dConfig { padding, stride: 2, ..Conv2dConfig::default() };
                Some(conv2d(out_channels, out_channels, 3, config, vb.pp("downsamplers").pp(0).pp("conv"))?)
            }
            None => None,
        };
        Ok(Self { resnets, attentions, downsampler, pad_before_downsample: downsample_padding == Some(0) })
    }

    /// Runs the block, pushing every layer's output onto `skips`.
    pub fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        train: bool,
        skips: &mut Vec<Tensor>,
    ) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for j in 0..self.resnets.len() {
            h = resnet_then_attention(&self.resnets, &self.attentions, j, &h, temb, train)?;
            skips.push(h.clone());
        }
        if let Some(conv) = &self.downsampler {
            if self.pad_before_downsample {
                h = h.pad_with_zeros(2, 0, 1)?.pad_with_zeros(3, 0, 1)?;
            }
            h = conv.forward(&h)?;
            skips.push(h.clone());
        }
        Ok(h)
    }
}

/// `UNetMidBlock2D` with one attention layer (or none).
#[derive(Clone, Debug)]
pub(crate) struct MidBlock {
    first: ResnetBlock,
    attention: Option<AttentionBlock>,
    second: ResnetBlock,
}

impl MidBlock {
    pub fn new(
        channels: usize,
        with_attention: bool,
        output_scale_factor: f64,
        resnet: ResnetSettings,
        attention: AttentionSettings,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let resnets = vb.pp("resnets");
        let attention = if with_attention {
            let vb = vb.pp("attentions").pp(0);
            let (head_dim, groups, eps) = (attention.head_dim, attention.groups, attention.eps);
            Some(AttentionBlock::new(channels, head_dim, groups, eps, output_scale_factor, vb)?)
        } else {
            None
        };
        Ok(Self {
            first: ResnetBlock::new(channels, channels, resnet, output_scale_factor, resnets.pp(0))?,
            attention,
            second: ResnetBlock::new(channels, channels, resnet, output_scale_factor, resnets.pp(1))?,
        })
    }

    pub fn forward(&self, x: &Tensor, temb: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut h = self.first.forward(x, temb, train)?;
        if let Some(attention) = &self.attention {
            h = attention.forward(&h)?;
        }
        self.second.forward(&h, temb, train)
    }
}

/// `UpBlock2D` or `AttnUpBlock2D`.
#[derive(Clone, Debug)]
pub(crate) struct UpBlock {
    resnets: Vec<ResnetBlock>,
    attentions: Vec<AttentionBlock>,
    upsampler: Option<Conv2d>,
}

impl UpBlock {
    /// `prev_channels` enter from below, `out_channels` leave; the last layer's skip has
    /// `skip_in_channels` (the channels that entered the mirrored down block).
    pub fn new(
        prev_channels: usize,
        out_channels: usize,
        skip_in_channels: usize,
        layers: usize,
        with_attention: bool,
        upsample: bool,
        resnet: ResnetSettings,
        attention: AttentionSettings,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let resnets = (0..layers)
            .map(|j| {
                let skip = if j == layers - 1 { skip_in_channels } else { out_channels };
                let below = if j == 0 { prev_channels } else { out_channels };
                ResnetBlock::new(below + skip, out_channels, resnet, 1.0, vb.pp("resnets").pp(j))
            })
            .collect::<candle_core::Result<_>>()?;
        let attentions = attention_layers(with_attention, layers, out_channels, attention, vb.pp("attentions"))?;
        let upsampler = if upsample {
            let config = Conv2dConfig { padding: 1, ..Conv2dConfig::default() };
            Some(conv2d(out_channels, out_channels, 3, config, vb.pp("upsamplers").pp(0).pp("conv"))?)
        } else {
            None
        };
        Ok(Self { resnets, attentions, upsampler })
    }

    /// Runs the block, popping one skip per layer from `skips`.
    pub fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        train: bool,
        skips: &mut Vec<Tensor>,
    ) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for j in 0..self.resnets.len() {
            let skip = skips.pop().ok_or_else(|| candle_core::Error::Msg("UNet ran out of skip connections".into()))?;
            h = Tensor::cat(&[&h, &skip], 1)?;
            h = resnet_then_attention(&self.resnets, &self.attentions, j, &h, temb, train)?;
        }
        if let Some(conv) = &self.upsampler {
            h = conv.forward(&upsample_nearest_2x(&h)?)?;
        }
        Ok(h)
    }
}
