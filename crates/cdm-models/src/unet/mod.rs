//! An image UNet with the architecture and parameter names of diffusers' `UNet2DModel` (the
//! DDPM UNet of Ho et al., 2020, arXiv:2006.11239, as ported by diffusers).
//!
//! ```text
//! temb = linear_2(silu(linear_1(PE(t))))              PE: sinusoidal, block_out_channels[0] wide
//! h    = conv_in(x)                                    3×3, in_channels → block_out_channels[0]
//! h    = down_blocks[0..L](h, temb)                    resolution halves between blocks; every
//!                                                      layer's output is kept as a skip
//! h    = mid_block(h, temb)                            resnet → attention → resnet
//! h    = up_blocks[0..L](h, skips, temb)               concatenates skips, doubles resolution
//! ε̂    = conv_out(silu(conv_norm_out(h)))              3×3 → out_channels
//! ```
//!
//! ResNet blocks are GroupNorm + activation + 3×3 conv twice, with the time embedding added
//! in between and dropout before the second conv; attention layers are GroupNorm + multi-head
//! self-attention over positions with a residual connection. Timesteps are DDPM training
//! timesteps (floats are fine). Every op has a backward: candle's own, or a fused kernel of
//! [`cdm_kernels`] (the ResNet blocks, attention, group norm, convolutions and
//! [`crate::layers::upsample_nearest_2x`]). Dropout masks come from candle's
//! RNG, which cannot be seeded on the CPU.
//!
//! # Parameter names (diffusers `UNet2DModel` state-dict keys)
//!
//! ```text
//! conv_in.{weight,bias}
//! time_embedding.linear_1, time_embedding.linear_2
//! down_blocks.{i}.resnets.{j}.{norm1,conv1,time_emb_proj,norm2,conv2,conv_shortcut}
//! down_blocks.{i}.attentions.{j}.{group_norm,to_q,to_k,to_v,to_out.0}   (AttnDownBlock2D)
//! down_blocks.{i}.downsamplers.0.conv                                     (all but the last)
//! mid_block.resnets.{0,1}, mid_block.attentions.0
//! up_blocks.{i}.resnets.{j} (j ≤ layers_per_block), up_blocks.{i}.attentions.{j}
//! up_blocks.{i}.upsamplers.0.conv                                         (all but the last)
//! conv_norm_out, conv_out
//! ```
//!
//! Each ends in `.weight` and `.bias`; `conv_shortcut` exists only where a ResNet block changes
//! the channel count. A diffusers `config.json` + `diffusion_pytorch_model.safetensors` pair
//! loads with [`crate::checkpoint::load`], which also accepts the attention names of older
//! diffusers checkpoints (`query`, `key`, `value`, `proj_attn`), and checkpoints saved by
//! [`crate::checkpoint::save`] load in diffusers. Wrap the [`Unet`] in a
//! [`cdm_core::TimestepDenoiser`] to use it as a [`cdm_core::Denoiser`].

mod attention;
mod blocks;
mod config;
mod resnet;

pub use config::{SampleSize, UnetConfig};

use candle_core::{Module, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};

use self::blocks::{AttentionSettings, DownBlock, MidBlock, UpBlock};
use self::config::TimeConditioning;
use self::resnet::ResnetSettings;
use crate::embedding::timestep_embedding;
use crate::layers::{Conv2d, GroupNorm, Linear, conv2d, group_norm, linear};
use crate::{Activation, ModelConfig, Result};

impl ModelConfig for UnetConfig {
    type Model = Unet;

    fn build(&self, vb: VarBuilder) -> Result<Unet> {
        Unet::new(self, vb)
    }

    /// Also maps the attention names of checkpoints saved before diffusers 0.14
    /// (`attentions.{j}.query`, `key`, `value`, `proj_attn`) to `to_q`, `to_k`, `to_v`,
    /// `to_out.0`, as diffusers does on load.
    fn parameter_name(&self, stored: &str) -> String {
        let parts: Vec<&str> = stored.split('.').collect();
        if let [prefix @ .., "attentions", index, old, leaf @ ("weight" | "bias")] = parts.as_slice() {
            let new = match *old {
                "query" => "to_q",
                "key" => "to_k",
                "value" => "to_v",
                "proj_attn" => "to_out.0",
                _ => return stored.to_string(),
            };
            let mut renamed: Vec<&str> = prefix.to_vec();
            renamed.extend(["attentions", index, new, leaf]);
            return renamed.join(".");
        }
        stored.to_string()
    }
}

/// diffusers' `UNet2DModel`; see the [module docs](self).
///
/// The model starts in evaluation mode (no dropout); [`Unet::set_training`] switches dropout on
/// for the [`cdm_core::TimestepModel`] path, and [`Unet::forward`] takes the flag explicitly.
#[derive(Clone, Debug)]
pub struct Unet {
    config: UnetConfig,
    conv_in: Conv2d,
    time_linear_1: Linear,
    time_linear_2: Linear,
    down_blocks: Vec<DownBlock>,
    mid_block: Option<MidBlock>,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    /// The ResNet blocks' activation, applied once to the time embedding they all take.
    activation: Activation,
    training: bool,
}

impl Unet {
    /// Validates `config` and builds the network, taking its parameters from `vb`.
    pub fn new(config: &UnetConfig, vb: VarBuilder) -> Result<Self> {
        let arch = config.architecture()?;
        let channels = &config.block_out_channels;
        let levels = channels.len();
        let resnet = ResnetSettings {
            groups: config.norm_num_groups,
            eps: config.norm_eps,
            activation: arch.activation,
            dropout: config.dropout,
            time_conditioning: arch.time_conditioning,
            temb_channels: arch.time_embed_dim,
        };
        let attention = AttentionSettings {
            head_dim: config.attention_head_dim,
            groups: Some(config.norm_num_groups),
            eps: config.norm_eps,
        };
        let same = Conv2dConfig { padding: 1, ..Conv2dConfig::default() };

        let mut down_blocks = Vec::with_capacity(levels);
        for (i, &with_attention) in arch.down_attention.iter().enumerate() {
            let in_channels = if i == 0 { channels[0] } else { channels[i - 1] };
            let padding = (i + 1 < levels).then_some(config.downsample_padding);
            let vb = vb.pp("down_blocks").pp(i);
            let block = DownBlock::new(
                in_channels,
                channels[i],
                config.layers_per_block,
                with_attention,
                padding,
                resnet,
                attention,
                vb,
            )?;
            down_blocks.push(block);
        }

        let mid_block = if arch.mid_block {
            let groups = config.attn_norm_num_groups.or(match arch.time_conditioning {
                TimeConditioning::Add => Some(config.norm_num_groups),
                TimeConditioning::ScaleShift => None,
            });
            let mid_attention = AttentionSettings { groups, ..attention };
            let (last, scale) = (channels[levels - 1], config.mid_block_scale_factor);
            Some(MidBlock::new(last, config.add_attention, scale, resnet, mid_attention, vb.pp("mid_block"))?)
        } else {
            None
        };

        let reversed: Vec<usize> = channels.iter().rev().copied().collect();
        let mut up_blocks = Vec::with_capacity(levels);
        for (i, &with_attention) in arch.up_attention.iter().enumerate() {
            let prev_channels = if i == 0 { reversed[0] } else { reversed[i - 1] };
            let skip_in_channels = reversed[(i + 1).min(levels - 1)];
            let block = UpBlock::new(
                prev_channels,
                reversed[i],
                skip_in_channels,
                config.layers_per_block + 1,
                with_attention,
                i + 1 < levels,
                resnet,
                attention,
                vb.pp("up_blocks").pp(i),
            )?;
            up_blocks.push(block);
        }

        let time = vb.pp("time_embedding");
        Ok(Self {
            config: config.clone(),
            conv_in: conv2d(config.in_channels, channels[0], 3, same, vb.pp("conv_in"))?,
            time_linear_1: linear(channels[0], arch.time_embed_dim, time.pp("linear_1"))?,
            time_linear_2: linear(arch.time_embed_dim, arch.time_embed_dim, time.pp("linear_2"))?,
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: group_norm(config.norm_num_groups, channels[0], config.norm_eps, vb.pp("conv_norm_out"))?,
            conv_out: conv2d(channels[0], config.out_channels, 3, same, vb.pp("conv_out"))?,
            activation: arch.activation,
            training: false,
        })
    }

    /// The config it was built from.
    pub fn config(&self) -> &UnetConfig {
        &self.config
    }

    /// Switches dropout on (`true`) or off for [`cdm_core::TimestepModel::eps_at_timestep`].
    pub fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    /// Whether dropout is on for [`cdm_core::TimestepModel::eps_at_timestep`].
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// ε̂ at DDPM timesteps `timesteps`, with dropout only when `train`.
    ///
    /// The network runs on a thread of rayon's pool (the caller waits), so that the parallel
    /// loops of its many kernels fork from inside the pool instead of each waking the pool from
    /// outside and blocking the caller.
    ///
    /// # Shapes
    /// `x`: (B, in_channels, H, W) with H and W divisible by `2^(levels − 1)`; `timesteps`: (B,),
    /// (1,) or a scalar, any float dtype. Returns (B, out_channels, H, W).
    pub fn forward(&self, x: &Tensor, timesteps: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        rayon::scope(|_| self.forward_in_pool(x, timesteps, train))
    }

    /// [`Unet::forward`] on the current thread.
    fn forward_in_pool(&self, x: &Tensor, timesteps: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let batch = x.dim(0)?;
        let timesteps = timesteps.to_dtype(x.dtype())?.flatten_all()?;
        let timesteps = if timesteps.dim(0)? == 1 { timesteps.broadcast_as(batch)? } else { timesteps };
        let embedding = timestep_embedding(
            &timesteps,
            self.config.block_out_channels[0],
            self.config.flip_sin_to_cos,
            self.config.freq_shift,
        )?;
        let hidden = self.time_linear_1.forward_act(&embedding, Some(Activation::Silu))?;
        // Every ResNet block takes act(temb); computed once, fused into linear_2's bias pass.
        let temb = self.time_linear_2.forward_act(&hidden, Some(self.activation))?;

        let x = if self.config.center_input_sample { x.affine(2.0, -1.0)? } else { x.clone() };
        let mut h = self.conv_in.forward(&x)?;
        let mut skips = vec![h.clone()];
        for block in &self.down_blocks {
            h = block.forward(&h, &temb, train, &mut skips)?;
        }
        if let Some(mid) = &self.mid_block {
            h = mid.forward(&h, &temb, train)?;
        }
        for block in &self.up_blocks {
            h = block.forward(&h, &temb, train, &mut skips)?;
        }
        self.conv_out.forward(&self.conv_norm_out.forward_act(&h, Activation::Silu)?)
    }
}

impl cdm_core::TimestepModel for Unet {
    /// [`Unet::forward`] with dropout as set by [`Unet::set_training`].
    fn eps_at_timestep(&self, z: &Tensor, t: &Tensor) -> cdm_core::Result<Tensor> {
        Ok(self.forward(z, t, self.training)?)
    }
}
