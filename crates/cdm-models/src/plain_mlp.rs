//! The small plain MLP of the paper's 1-D experiment (`docs/math.md` §13.1).
//!
//! ```text
//! e = PE(s·α)                                   sinusoidal log-SNR embedding, embedding_dim wide
//! h = act(W₀·[x, e] + b₀)                        (dim + embedding_dim) → hidden
//! h = act(Wᵢ·h + bᵢ)                             hidden → hidden, for i = 1 … linear_layers − 2
//! ε̂ = W_last·h + b_last                          hidden → dim
//! ```
//!
//! The authors' `MLP(in=1, hidden=64, n_layers=3, ReLU)` concatenates the raw timestep; this
//! variant concatenates sinusoidal features of the continuous log-SNR α instead (see
//! [`crate::embedding`]). Parameter names: `layers.{i}.{weight,bias}`.

use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::embedding::log_snr_embedding;
use crate::layers::{Linear, linear};
use crate::mlp::flatten_rows;
use crate::{Activation, Error, ModelConfig, Result};

/// Size of a [`PlainMlp`]. `Default` is the paper's 1-D network: 3 linear layers, 64 wide, ReLU.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlainMlpConfig {
    /// Data dimension d.
    pub dim: usize,
    /// Width of the hidden layers.
    pub hidden: usize,
    /// Number of linear layers, at least 2 (the paper's `n_layers`).
    pub linear_layers: usize,
    /// Nonlinearity after every linear layer but the last.
    pub activation: Activation,
    /// Width of the log-SNR embedding concatenated to the input (even).
    pub embedding_dim: usize,
    /// α is multiplied by this before the sinusoidal embedding.
    pub log_snr_scale: f64,
}

impl Default for PlainMlpConfig {
    fn default() -> Self {
        Self {
            dim: 1,
            hidden: 64,
            linear_layers: 3,
            activation: Activation::Relu,
            embedding_dim: 16,
            log_snr_scale: 50.0,
        }
    }
}

impl PlainMlpConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        if self.dim == 0 {
            return Err(Error::invalid("dim", self.dim, "must be at least 1"));
        }
        if self.hidden == 0 {
            return Err(Error::invalid("hidden", self.hidden, "must be at least 1"));
        }
        if self.linear_layers < 2 {
            return Err(Error::invalid("linear_layers", self.linear_layers, "must be at least 2"));
        }
        if self.embedding_dim < 2 || self.embedding_dim % 2 == 1 {
            return Err(Error::invalid("embedding_dim", self.embedding_dim, "must be even and at least 2"));
        }
        if !self.log_snr_scale.is_finite() {
            return Err(Error::invalid("log_snr_scale", self.log_snr_scale, "must be finite"));
        }
        Ok(())
    }
}

impl ModelConfig for PlainMlpConfig {
    type Model = PlainMlp;

    fn build(&self, vb: VarBuilder) -> Result<PlainMlp> {
        PlainMlp::new(self, vb)
    }
}

/// A plain MLP ε̂(z, α) on `[z, PE(α)]`; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct PlainMlp {
    config: PlainMlpConfig,
    layers: Vec<Linear>,
}

impl PlainMlp {
    /// Builds the network, taking its parameters from `vb`.
    pub fn new(config: &PlainMlpConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let n = config.linear_layers;
        let layers = (0..n)
            .map(|i| {
                let in_dim = if i == 0 { config.dim + config.embedding_dim } else { config.hidden };
                let out_dim = if i == n - 1 { config.dim } else { config.hidden };
                linear(in_dim, out_dim, vb.pp("layers").pp(i))
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { config: config.clone(), layers })
    }

    /// The config it was built from.
    pub fn config(&self) -> &PlainMlpConfig {
        &self.config
    }

    /// ε̂ for flat inputs.
    ///
    /// # Shapes
    /// `z`: (B, dim); `log_snr`: (B,) in `z`'s dtype. Returns (B, dim).
    pub fn forward(&self, z: &Tensor, log_snr: &Tensor) -> candle_core::Result<Tensor> {
        let embedding = log_snr_embedding(log_snr, self.config.embedding_dim, self.config.log_snr_scale)?;
        let mut h = Tensor::cat(&[z, &embedding], 1)?;
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward_act(&h, (i < last).then_some(self.config.activation))?;
        }
        Ok(h)
    }
}

impl cdm_core::Denoiser for PlainMlp {
    /// # Shapes
    /// `z`: (B, …) with `dim` elements per row; `log_snr`: (B,). Returns `z`'s shape.
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> cdm_core::Result<Tensor> {
        let flat = flatten_rows(z, self.config.dim, "PlainMlp::eps")?;
        Ok(self.forward(&flat, log_snr)?.reshape(z.shape())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn paper_sizes() {
        let (_, vars) = PlainMlpConfig::default().init(0, DType::F32, &Device::Cpu).unwrap();
        let count: usize = vars.all_vars().iter().map(|v| v.elem_count()).sum();
        assert_eq!(count, (17 * 64 + 64) + (64 * 64 + 64) + (64 + 1));
        let shallow = PlainMlpConfig { linear_layers: 1, ..PlainMlpConfig::default() };
        assert!(matches!(shallow.validate(), Err(Error::InvalidArgument { field, .. }) if field == "linear_layers"));
    }
}
