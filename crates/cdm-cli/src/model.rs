//! The networks of a run (point MLPs and the image UNet) as one denoiser type, and the one place
//! that fills their weights from a safetensors file.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use cdm_core::{Denoiser, DiscreteSchedule, TimestepDenoiser, TimestepInverse, TimestepRounding};
use cdm_models::{Mlp, ModelConfig, PlainMlp, Unet};

use crate::admission;
use crate::config::ModelSpec;

/// A run's network, whatever its kind, as a log-SNR denoiser.
pub enum Network {
    /// The residual MLP.
    Mlp(Mlp),
    /// The plain MLP.
    PlainMlp(PlainMlp),
    /// The image UNet, a DDPM-timestep network behind the log-SNR adapter (DDPM linear
    /// schedule, exact inverse, continuous timesteps).
    Unet(Box<TimestepDenoiser<Unet>>),
}

impl Denoiser for Network {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> cdm_core::Result<Tensor> {
        match self {
            Network::Mlp(m) => m.eps(z, log_snr),
            Network::PlainMlp(m) => m.eps(z, log_snr),
            Network::Unet(m) => m.eps(z, log_snr),
        }
    }

    fn eps_at(&self, z: &Tensor, log_snr: &[f64]) -> cdm_core::Result<Tensor> {
        match self {
            Network::Mlp(m) => m.eps_at(z, log_snr),
            Network::PlainMlp(m) => m.eps_at(z, log_snr),
            Network::Unet(m) => m.eps_at(z, log_snr),
        }
    }
}

impl Network {
    /// A network with seeded fresh weights and the map of its variables; `training` turns the
    /// UNet's dropout on. A model whose parameters would exceed the memory limit is refused
    /// before any is made.
    pub fn build(spec: &ModelSpec, seed: u64, device: &Device, training: bool) -> Result<(Self, VarMap)> {
        let parameters = admission::parameters(spec);
        admission::admit(&format!("a model of about {parameters} parameters"), admission::model_bytes(parameters))?;
        Ok(match spec {
            ModelSpec::Mlp(c) => {
                let (m, v) = c.init(seed, DType::F32, device)?;
                (Network::Mlp(m), v)
            }
            ModelSpec::PlainMlp(c) => {
                let (m, v) = c.init(seed, DType::F32, device)?;
                (Network::PlainMlp(m), v)
            }
            ModelSpec::Unet(c) => {
                let (mut m, v) = c.init(seed, DType::F32, device)?;
                m.set_training(training);
                let adapter = TimestepDenoiser::new(
                    m,
                    DiscreteSchedule::ddpm(),
                    TimestepInverse::Exact,
                    TimestepRounding::Continuous,
                );
                (Network::Unet(Box::new(adapter)), v)
            }
        })
    }

    /// A network (dropout off) whose weights come from a safetensors file.
    pub fn load(spec: &ModelSpec, weights: &Path, device: &Device) -> Result<Self> {
        let (net, vars) = Self::build(spec, 0, device, false)?;
        load_weights(spec, weights, &vars)?;
        Ok(net)
    }
}

/// Fills `vars` from a safetensors file: strict names and shapes; a UNet also accepts the
/// attention names of older diffusers checkpoints.
pub fn load_weights(spec: &ModelSpec, weights: &Path, vars: &VarMap) -> Result<()> {
    match spec {
        ModelSpec::Unet(c) => cdm_models::checkpoint::load_renamed_weights(weights, vars, &|s| c.parameter_name(s)),
        _ => cdm_models::checkpoint::load_weights(weights, vars),
    }
    .with_context(|| format!("loading {}", weights.display()))
}

/// The variables of a map, sorted by name.
pub fn named_vars(vars: &VarMap) -> Vec<(String, Var)> {
    let data = vars.data().lock().expect("VarMap lock");
    let mut out: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
