//! The paper's residual MLP denoiser for vectors (the 2-D Dino network, `docs/math.md` §13.2).
//!
//! ```text
//! e  = PE(s·α)                                  sinusoidal log-SNR embedding, d_model wide
//! h  = W_in·[x, φ(x)] + b_in                     φ: optional Fourier features of x (below)
//! h ← LayerNorm(h + W₂·GELU(W₁·(h + e) + b₁) + b₂)   once per block (paper: 2 blocks)
//! ε̂  = W_out·h + b_out                          d_model → dim
//! ```
//!
//! GELU is the exact erf form and LayerNorm has affine parameters and eps 1e-5, as in the
//! authors' `BasicDiscreteTimeModel(d_model=128, n_layers=2)`. On the CPU the network, from its
//! input features to ε̂, runs as one fused op with its own backward ([`cdm_kernels::residual_mlp`]). The authors embed an integer
//! DDPM timestep from a table; this network takes the continuous log-SNR α instead (see
//! [`crate::embedding`] for the scale `s`), so it can be evaluated at any noise level.
//!
//! **Input Fourier features** (off by default, i.e. the paper's network): with
//! `input_frequencies = F > 0`, each coordinate x_i adds `sin(c·x_i·g_k)`, `cos(c·x_i·g_k)` for
//! `g_k = 10^{−4k/F}`, k = 0…F−1, c = `input_scale` (as tiny-diffusion's 2-D models do). Raw
//! coordinates make an MLP learn thin 2-D structure slowly (spectral bias); these features let
//! the Dino appear in minutes on a CPU rather than hours.
//!
//! Parameter names: `input.{weight,bias}`, `blocks.{i}.linear1`, `blocks.{i}.linear2`,
//! `blocks.{i}.norm`, `output`.
//!
//! | symbol | name |
//! |---|---|
//! | α | `log_snr` |
//! | s | [`MlpConfig::log_snr_scale`] |
//! | d_model | [`MlpConfig::d_model`] |
//! | F, c | [`MlpConfig::input_frequencies`], [`MlpConfig::input_scale`] |

use candle_core::Tensor;
use candle_nn::VarBuilder;
use cdm_kernels::residual_block::BlockParams;
use cdm_kernels::residual_mlp::{MlpParams, residual_mlp};

use crate::embedding::log_snr_embedding;
use crate::layers::{LayerNorm, Linear, linear};
use crate::{Error, ModelConfig, Result};

/// The blocks' layer-norm variance offset.
const LAYER_NORM_EPS: f64 = 1e-5;

/// Size of an [`Mlp`]. `Default` is the paper's 2-D network (d_model 128, 2 blocks).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpConfig {
    /// Data dimension d (inputs are (B, d), or (B, …) with d elements per row).
    pub dim: usize,
    /// Hidden width, also the embedding width (even).
    pub d_model: usize,
    /// Number of residual blocks.
    pub blocks: usize,
    /// α is multiplied by this before the sinusoidal embedding.
    pub log_snr_scale: f64,
    /// Fourier features per input coordinate (0: the paper's plain linear input).
    pub input_frequencies: usize,
    /// Scale c of the input Fourier features.
    pub input_scale: f64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self { dim: 2, d_model: 128, blocks: 2, log_snr_scale: 50.0, input_frequencies: 0, input_scale: 25.0 }
    }
}

impl MlpConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if self.dim == 0 {
            return Err(Error::invalid("dim", self.dim, "must be at least 1"));
        }
        if self.d_model < 2 || self.d_model % 2 == 1 {
            return Err(Error::invalid("d_model", self.d_model, "must be even and at least 2"));
        }
        if !self.input_scale.is_finite() {
            return Err(Error::invalid("input_scale", self.input_scale, "must be finite"));
        }
        if !self.log_snr_scale.is_finite() {
            return Err(Error::invalid("log_snr_scale", self.log_snr_scale, "must be finite"));
        }
        Ok(())
    }
}

impl ModelConfig for MlpConfig {
    type Model = Mlp;

    fn build(&self, vb: VarBuilder) -> Result<Mlp> {
        Mlp::new(self, vb)
    }
}

/// One residual block: `h ← LayerNorm(h + W₂·GELU(W₁·(h + e) + b₁) + b₂)`.
#[derive(Clone, Debug)]
struct ResidualBlock {
    linear1: Linear,
    linear2: Linear,
    norm: LayerNorm,
}

impl ResidualBlock {
    fn new(d_model: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Self {
            linear1: linear(d_model, d_model, vb.pp("linear1"))?,
            linear2: linear(d_model, d_model, vb.pp("linear2"))?,
            norm: LayerNorm::new(d_model, LAYER_NORM_EPS, vb.pp("norm"))?,
        })
    }

    fn params(&self) -> BlockParams<'_> {
        BlockParams {
            w1: self.linear1.weight(),
            b1: self.linear1.bias(),
            w2: self.linear2.weight(),
            b2: self.linear2.bias(),
            gamma: self.norm.weight(),
            beta: self.norm.bias(),
        }
    }
}

/// The paper's residual MLP ε̂(z, α) for vectors; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Mlp {
    config: MlpConfig,
    input: Linear,
    blocks: Vec<ResidualBlock>,
    output: Linear,
}

impl Mlp {
    /// Builds the network, taking its parameters from `vb`.
    pub fn new(config: &MlpConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let d_model = config.d_model;
        let blocks = (0..config.blocks)
            .map(|i| ResidualBlock::new(d_model, vb.pp("blocks").pp(i)))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            config: config.clone(),
            input: linear(config.dim * (1 + 2 * config.input_frequencies), d_model, vb.pp("input"))?,
            blocks,
            output: linear(d_model, config.dim, vb.pp("output"))?,
        })
    }

    /// `[x, sin(c·x·g), cos(c·x·g)]`, or `x` without Fourier features.
    fn input_features(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        let f = self.config.input_frequencies;
        if f == 0 {
            return Ok(z.clone());
        }
        let g: Vec<f64> = (0..f).map(|k| self.config.input_scale * 1e-4f64.powf(k as f64 / f as f64)).collect();
        let g = Tensor::from_vec(g, (1, 1, f), z.device())?.to_dtype(z.dtype())?;
        let args = z.unsqueeze(2)?.broadcast_mul(&g)?.flatten_from(1)?;
        Tensor::cat(&[z, &args.sin()?, &args.cos()?], 1)
    }

    /// The config it was built from.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// ε̂ for flat inputs.
    ///
    /// # Shapes
    /// `z`: (B, dim); `log_snr`: (B,) in `z`'s dtype. Returns (B, dim).
    pub fn forward(&self, z: &Tensor, log_snr: &Tensor) -> candle_core::Result<Tensor> {
        let embedding = log_snr_embedding(log_snr, self.config.d_model, self.config.log_snr_scale)?;
        let params = MlpParams {
            input_weight: self.input.weight(),
            input_bias: self.input.bias(),
            blocks: self.blocks.iter().map(ResidualBlock::params).collect(),
            output_weight: self.output.weight(),
            output_bias: self.output.bias(),
        };
        residual_mlp(&self.input_features(z)?, &embedding, &params, LAYER_NORM_EPS)
    }
}

impl cdm_core::Denoiser for Mlp {
    /// # Shapes
    /// `z`: (B, …) with `dim` elements per row; `log_snr`: (B,). Returns `z`'s shape.
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> cdm_core::Result<Tensor> {
        let flat = flatten_rows(z, self.config.dim, "Mlp::eps")?;
        Ok(self.forward(&flat, log_snr)?.reshape(z.shape())?)
    }
}

/// `z` as (B, dim), or a shape error naming `op`.
pub(crate) fn flatten_rows(z: &Tensor, dim: usize, op: &'static str) -> cdm_core::Result<Tensor> {
    let flat = z.flatten_from(1).map_err(|_| cdm_core::Error::shape(op, ("B", dim), z.dims()))?;
    if flat.dim(1)? != dim {
        return Err(cdm_core::Error::shape(op, ("B", dim), z.dims()));
    }
    Ok(flat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use cdm_core::Denoiser;

    #[test]
    fn paper_defaults_and_parameter_count() {
        let config = MlpConfig::default();
        let (_, vars) = config.init(0, DType::F32, &Device::Cpu).unwrap();
        let count: usize = vars.all_vars().iter().map(|v| v.elem_count()).sum();
        // input 2·128+128, 2 × (2 linears 128·128+128, norm 2·128), output 128·2+2
        assert_eq!(count, 384 + 2 * (2 * 16_512 + 256) + 258);
    }

    #[test]
    fn rejects_bad_configs_and_shapes() {
        let odd = MlpConfig { d_model: 7, ..MlpConfig::default() };
        let built = odd.init(0, DType::F32, &Device::Cpu);
        assert!(matches!(built, Err(Error::InvalidArgument { field, .. }) if field == "d_model"));
        let (mlp, _) = MlpConfig::default().init(0, DType::F32, &Device::Cpu).unwrap();
        let z = Tensor::zeros((4, 3), DType::F32, &Device::Cpu).unwrap();
        let alpha = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(mlp.eps(&z, &alpha), Err(cdm_core::Error::ShapeMismatch { .. })));
    }
}
