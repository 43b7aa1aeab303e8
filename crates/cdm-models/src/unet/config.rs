//! [`UnetConfig`]: diffusers' `UNet2DModel` `config.json`, field for field.
//!
//! Keys and defaults are those of `UNet2DModel.__init__` (diffusers 0.42), so a `config.json`
//! written by `save_pretrained` deserialises unchanged; keys this crate does not know (such as
//! `_diffusers_version`) are ignored. Every value is checked by [`UnetConfig::validate`], which
//! names the field of any variant this crate does not implement.
//!
//! Implemented: `time_embedding_type` `"positional"`; down blocks `DownBlock2D`,
//! `AttnDownBlock2D`; up blocks `UpBlock2D`, `AttnUpBlock2D`; mid block `UNetMidBlock2D` or
//! `null`; `downsample_type`/`upsample_type` `"conv"`; `resnet_time_scale_shift` `"default"` or
//! `"scale_shift"`; `act_fn` `silu`/`swish`, `relu`, `gelu`; no class conditioning.

use crate::{Activation, Error, Result};

/// diffusers' `sample_size`: one side or `[height, width]`. Informational: the network is
/// fully convolutional and accepts any size divisible by `2^(levels − 1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum SampleSize {
    /// A square image of this side.
    Square(usize),
    /// `[height, width]`.
    Rectangular([usize; 2]),
}

/// The hyper-parameters of a [`super::Unet`], in diffusers' `UNet2DModel` `config.json` layout.
///
/// `Default` is diffusers' default `UNet2DModel()`. For a small model, override the sizes:
///
/// ```
/// use cdm_models::UnetConfig;
/// let config = UnetConfig {
///     in_channels: 1,
///     out_channels: 1,
///     block_out_channels: vec![16, 32],
///     down_block_types: vec!["DownBlock2D".into(), "AttnDownBlock2D".into()],
///     up_block_types: vec!["AttnUpBlock2D".into(), "UpBlock2D".into()],
///     norm_num_groups: 8,
///     ..UnetConfig::default()
/// };
/// config.validate().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct UnetConfig {
    /// Must be `"UNet2DModel"`.
    #[serde(rename = "_class_name")]
    pub class_name: String,
    /// Training resolution (informational).
    pub sample_size: Option<SampleSize>,
    /// Channels of the input image.
    pub in_channels: usize,
    /// Channels of the predicted noise.
    pub out_channels: usize,
    /// Map inputs from [0, 1] to [−1, 1] (`2x − 1`) before the first convolution.
    pub center_input_sample: bool,
    /// Only `"positional"` (sinusoidal) is implemented.
    pub time_embedding_type: String,
    /// Width of the time-embedding MLP; `None` means `4·block_out_channels[0]`.
    pub time_embedding_dim: Option<usize>,
    /// `downscale_freq_shift` of the sinusoidal embedding.
    pub freq_shift: f64,
    /// Put the cosines before the sines in the sinusoidal embedding.
    pub flip_sin_to_cos: bool,
    /// One entry per resolution, highest first: `"DownBlock2D"` or `"AttnDownBlock2D"`.
    pub down_block_types: Vec<String>,
    /// `"UNetMidBlock2D"` or `None` for no middle block.
    pub mid_block_type: Option<String>,
    /// One entry per resolution, lowest first: `"UpBlock2D"` or `"AttnUpBlock2D"`.
    pub up_block_types: Vec<String>,
    /// Channels at each resolution, highest first.
    pub block_out_channels: Vec<usize>,
    /// ResNet blocks per down block (up blocks have one more).
    pub layers_per_block: usize,
    /// Output scale of the middle block's ResNet and attention layers.
    pub mid_block_scale_factor: f64,
    /// Padding of the stride-2 downsampling convolution (0 pads right and bottom by one first).
    pub downsample_padding: usize,
    /// Downsampler of `AttnDownBlock2D`; only `"conv"`.
    pub downsample_type: String,
    /// Upsampler of `AttnUpBlock2D`; only `"conv"`.
    pub upsample_type: String,
    /// Dropout probability inside ResNet blocks (active only in training).
    pub dropout: f64,
    /// Nonlinearity of the ResNet blocks.
    pub act_fn: String,
    /// Channels per attention head; `None` means one head.
    pub attention_head_dim: Option<usize>,
    /// GroupNorm groups everywhere.
    pub norm_num_groups: usize,
    /// GroupNorm groups of the middle attention; `None` follows `norm_num_groups`
    /// (or no norm with `"scale_shift"`).
    pub attn_norm_num_groups: Option<usize>,
    /// Epsilon of every GroupNorm.
    pub norm_eps: f64,
    /// How ResNet blocks take the time embedding: `"default"` (add) or `"scale_shift"`.
    pub resnet_time_scale_shift: String,
    /// Self-attention in the middle block.
    pub add_attention: bool,
    /// Class conditioning is not implemented: must be `None`.
    pub class_embed_type: Option<String>,
    /// Class conditioning is not implemented: must be `None`.
    pub num_class_embeds: Option<usize>,
    /// Only used by `"learned"` time embeddings (informational).
    pub num_train_timesteps: Option<usize>,
}

impl Default for UnetConfig {
    fn default() -> Self {
        let strings = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
        Self {
            class_name: "UNet2DModel".into(),
            sample_size: None,
            in_channels: 3,
            out_channels: 3,
            center_input_sample: false,
            time_embedding_type: "positional".into(),
            time_embedding_dim: None,
            freq_shift: 0.0,
            flip_sin_to_cos: true,
            down_block_types: strings(&["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"]),
            mid_block_type: Some("UNetMidBlock2D".into()),
            up_block_types: strings(&["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"]),
            block_out_channels: vec![224, 448, 672, 896],
            layers_per_block: 2,
            mid_block_scale_factor: 1.0,
            downsample_padding: 1,
            downsample_type: "conv".into(),
            upsample_type: "conv".into(),
            dropout: 0.0,
            act_fn: "silu".into(),
            attention_head_dim: Some(8),
            norm_num_groups: 32,
            attn_norm_num_groups: None,
            norm_eps: 1e-5,
            resnet_time_scale_shift: "default".into(),
            add_attention: true,
            class_embed_type: None,
            num_class_embeds: None,
            num_train_timesteps: None,
        }
    }
}

/// How a ResNet block takes the time embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeConditioning {
    /// `"default"`: `h ← norm2(h + proj(temb))`.
    Add,
    /// `"scale_shift"`: `h ← norm2(h)·(1 + scale) + shift`, `[scale, shift] = proj(temb)`.
    ScaleShift,
}

/// The validated, typed form of a [`UnetConfig`].
#[derive(Clone, Debug)]
pub(crate) struct Architecture {
    /// Whether each down block has attention, highest resolution first.
    pub down_attention: Vec<bool>,
    /// Whether each up block has attention, lowest resolution first.
    pub up_attention: Vec<bool>,
    pub mid_block: bool,
    pub activation: Activation,
    pub time_conditioning: TimeConditioning,
    pub time_embed_dim: usize,
}

impl UnetConfig {
    /// Checks every field; unsupported variants give [`Error::UnsupportedConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        self.architecture().map(|_| ())
    }

    /// Number of resolutions (down blocks).
    pub fn levels(&self) -> usize {
        self.block_out_channels.len()
    }

    pub(crate) fn architecture(&self) -> Result<Architecture> {
        let unsupported = |field: String, value: &str, supported: &'static str| Error::UnsupportedConfig {
            field,
            value: value.to_string(),
            supported,
        };
        if self.class_name != "UNet2DModel" {
            return Err(unsupported("_class_name".into(), &self.class_name, "UNet2DModel"));
        }
        if self.time_embedding_type != "positional" {
            return Err(unsupported("time_embedding_type".into(), &self.time_embedding_type, "positional"));
        }
        if let Some(kind) = &self.class_embed_type {
            return Err(unsupported("class_embed_type".into(), kind, "null"));
        }
        if let Some(n) = self.num_class_embeds {
            return Err(unsupported("num_class_embeds".into(), &n.to_string(), "null"));
        }
        let levels = self.levels();
        if levels == 0 {
            return Err(Error::invalid("block_out_channels", &self.block_out_channels, "must not be empty"));
        }
        for (field, len) in
            [("down_block_types", self.down_block_types.len()), ("up_block_types", self.up_block_types.len())]
        {
            if len != levels {
                return Err(Error::invalid(field, len, format!("needs one entry per block_out_channels ({levels})")));
            }
        }
        let mut down_attention = Vec::with_capacity(levels);
        for (i, kind) in self.down_block_types.iter().enumerate() {
            let attention = match kind.as_str() {
                "DownBlock2D" => false,
                "AttnDownBlock2D" => true,
                _ => return Err(unsupported(format!("down_block_types[{i}]"), kind, "DownBlock2D, AttnDownBlock2D")),
            };
            if attention && i + 1 < levels && self.downsample_type != "conv" {
                return Err(unsupported("downsample_type".into(), &self.downsample_type, "conv"));
            }
            down_attention.push(attention);
        }
        let mut up_attention = Vec::with_capacity(levels);
        for (i, kind) in self.up_block_types.iter().enumerate() {
            let attention = match kind.as_str() {
                "UpBlock2D" => false,
                "AttnUpBlock2D" => true,
                _ => return Err(unsupported(format!("up_block_types[{i}]"), kind, "UpBlock2D, AttnUpBlock2D")),
            };
            if attention && i + 1 < levels && self.upsample_type != "conv" {
                return Err(unsupported("upsample_type".into(), &self.upsample_type, "conv"));
            }
            up_attention.push(attention);
        }
        let mid_block = match self.mid_block_type.as_deref() {
            None => false,
            Some("UNetMidBlock2D") => true,
            Some(kind) => return Err(unsupported("mid_block_type".into(), kind, "UNetMidBlock2D, null")),
        };
        let activation = match self.act_fn.as_str() {
            "silu" | "swish" => Activation::Silu,
            "relu" => Activation::Relu,
            "gelu" => Activation::Gelu,
            other => return Err(unsupported("act_fn".into(), other, "silu, swish, relu, gelu")),
        };
        let time_conditioning = match self.resnet_time_scale_shift.as_str() {
            "default" => TimeConditioning::Add,
            "scale_shift" => TimeConditioning::ScaleShift,
            other => return Err(unsupported("resnet_time_scale_shift".into(), other, "default, scale_shift")),
        };
        self.check_sizes()?;
        let time_embed_dim = self.time_embedding_dim.unwrap_or(4 * self.block_out_channels[0]);
        Ok(Architecture { down_attention, up_attention, mid_block, activation, time_conditioning, time_embed_dim })
    }

    fn check_sizes(&self) -> Result<()> {
        if self.in_channels == 0 || self.out_channels == 0 {
            let field = if self.in_channels == 0 { "in_channels" } else { "out_channels" };
            return Err(Error::invalid(field, 0, "must be at least 1"));
        }
        if self.layers_per_block == 0 {
            return Err(Error::invalid("layers_per_block", 0, "must be at least 1"));
        }
        let groups = self.norm_num_groups;
        if groups == 0 || self.block_out_channels.iter().any(|c| *c == 0 || !c.is_multiple_of(groups)) {
            return Err(Error::invalid(
                "norm_num_groups",
                groups,
                format!("must divide every block_out_channels {:?}", self.block_out_channels),
            ));
        }
        let last = *self.block_out_channels.last().unwrap_or(&0);
        if let Some(groups) = self.attn_norm_num_groups
            && (groups == 0 || !last.is_multiple_of(groups))
        {
            return Err(Error::invalid("attn_norm_num_groups", groups, format!("must divide {last}")));
        }
        if let Some(head_dim) = self.attention_head_dim {
            let narrowest = self.block_out_channels.iter().copied().min().unwrap_or(0);
            if head_dim == 0 || head_dim > narrowest {
                return Err(Error::invalid(
                    "attention_head_dim",
                    head_dim,
                    format!("must be between 1 and the narrowest block ({narrowest})"),
                ));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::invalid("dropout", self.dropout, "must be in [0, 1)"));
        }
        if !self.norm_eps.is_finite() || self.norm_eps <= 0.0 {
            return Err(Error::invalid("norm_eps", self.norm_eps, "must be positive"));
        }
        if !self.mid_block_scale_factor.is_finite() || self.mid_block_scale_factor <= 0.0 {
            return Err(Error::invalid("mid_block_scale_factor", self.mid_block_scale_factor, "must be positive"));
        }
        Ok(())
    }
}
