//! Building and loading the denoisers of a run (point MLPs and the image UNet).

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use cdm_core::{Denoiser, DiscreteSchedule, TimestepDenoiser, TimestepInverse, TimestepRounding};
use cdm_models::{Mlp, ModelConfig, PlainMlp, Unet};

use crate::config::ModelSpec;

/// A denoiser of any supported kind.
pub enum PointModel {
    /// The residual MLP.
    Mlp(Mlp),
    /// The plain MLP.
    PlainMlp(PlainMlp),
    /// The image UNet, a DDPM-timestep network behind the log-SNR adapter.
    Unet(Box<TimestepDenoiser<Unet>>),
}

/// The UNet as a log-SNR denoiser: DDPM linear schedule, exact inverse, continuous timesteps.
pub fn unet_denoiser(unet: Unet) -> PointModel {
    PointModel::Unet(Box::new(TimestepDenoiser::new(
        unet,
        DiscreteSchedule::ddpm(),
        TimestepInverse::Exact,
        TimestepRounding::Continuous,
    )))
}

impl Denoiser for PointModel {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> cdm_core::Result<Tensor> {
        match self {
            PointModel::Mlp(m) => m.eps(z, log_snr),
            PointModel::PlainMlp(m) => m.eps(z, log_snr),
            PointModel::Unet(m) => m.eps(z, log_snr),
        }
    }

    fn eps_at(&self, z: &Tensor, log_snr: &[f64]) -> cdm_core::Result<Tensor> {
        match self {
            PointModel::Mlp(m) => m.eps_at(z, log_snr),
            PointModel::PlainMlp(m) => m.eps_at(z, log_snr),
            PointModel::Unet(m) => m.eps_at(z, log_snr),
        }
    }
}

/// A model with seeded fresh weights, and the map of its variables (UNet dropout off).
pub fn build(spec: &ModelSpec, seed: u64, device: &Device) -> Result<(PointModel, VarMap)> {
    build_for(spec, seed, device, false)
}

/// [`build`], with the UNet's dropout on when `training`.
pub fn build_for(spec: &ModelSpec, seed: u64, device: &Device, training: bool) -> Result<(PointModel, VarMap)> {
    Ok(match spec {
        ModelSpec::Mlp(c) => {
            let (m, v) = c.init(seed, DType::F32, device)?;
            (PointModel::Mlp(m), v)
        }
        ModelSpec::PlainMlp(c) => {
            let (m, v) = c.init(seed, DType::F32, device)?;
            (PointModel::PlainMlp(m), v)
        }
        ModelSpec::Unet(c) => {
            let (mut m, v) = c.init(seed, DType::F32, device)?;
            m.set_training(training);
            (unet_denoiser(m), v)
        }
    })
}

/// Fills `vars` from a safetensors file: strict names and shapes; a UNet also accepts the
/// attention names of older diffusers checkpoints.
pub fn load_into(spec: &ModelSpec, weights: &Path, vars: &VarMap) -> Result<()> {
    match spec {
        ModelSpec::Unet(c) => cdm_models::checkpoint::load_renamed_weights(weights, vars, &|s| c.parameter_name(s)),
        _ => cdm_models::checkpoint::load_weights(weights, vars),
    }
    .with_context(|| format!("loading {}", weights.display()))
}

/// A model whose weights come from a safetensors file (strict: names and shapes must match).
pub fn load(spec: &ModelSpec, weights: &Path, device: &Device) -> Result<PointModel> {
    let (model, vars) = build(spec, 0, device)?;
    load_into(spec, weights, &vars)?;
    Ok(model)
}

/// The variables of a map, sorted by name.
pub fn named_vars(vars: &VarMap) -> Vec<(String, Var)> {
    let data = vars.data().lock().expect("VarMap lock");
    let mut out: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
