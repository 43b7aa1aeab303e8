//! Building and loading the point denoisers of a run.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use cdm_core::Denoiser;
use cdm_models::{Mlp, ModelConfig, PlainMlp};

use crate::config::ModelSpec;

/// A point denoiser of any supported kind.
pub enum PointModel {
    /// The residual MLP.
    Mlp(Mlp),
    /// The plain MLP.
    PlainMlp(PlainMlp),
}

impl Denoiser for PointModel {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> cdm_core::Result<Tensor> {
        match self {
            PointModel::Mlp(m) => m.eps(z, log_snr),
            PointModel::PlainMlp(m) => m.eps(z, log_snr),
        }
    }
}

/// A model with seeded fresh weights, and the map of its variables.
pub fn build(spec: &ModelSpec, seed: u64, device: &Device) -> Result<(PointModel, VarMap)> {
    Ok(match spec {
        ModelSpec::Mlp(c) => {
            let (m, v) = c.init(seed, DType::F32, device)?;
            (PointModel::Mlp(m), v)
        }
        ModelSpec::PlainMlp(c) => {
            let (m, v) = c.init(seed, DType::F32, device)?;
            (PointModel::PlainMlp(m), v)
        }
    })
}

/// A model whose weights come from a safetensors file (strict: names and shapes must match).
pub fn load(spec: &ModelSpec, weights: &Path, device: &Device) -> Result<PointModel> {
    let (model, vars) = build(spec, 0, device)?;
    cdm_models::checkpoint::load_weights(weights, &vars).with_context(|| format!("loading {}", weights.display()))?;
    Ok(model)
}

/// The variables of a map, sorted by name.
pub fn named_vars(vars: &VarMap) -> Vec<(String, Var)> {
    let data = vars.data().lock().expect("VarMap lock");
    let mut out: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
