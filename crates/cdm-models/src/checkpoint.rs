//! Checkpoints: safetensors weights with a JSON config beside them.
//!
//! The default layout is diffusers': `config.json` and `diffusion_pytorch_model.safetensors` in
//! one directory ([`CheckpointFiles::in_dir`]), so a diffusers `UNet2DModel` directory loads
//! unchanged and ours loads in diffusers. Tensor names are the model's parameter names.
//!
//! - Writes are atomic: each file goes to a temporary file in the same directory, is flushed
//!   to disk and renamed over the target, so a crash leaves the old file or the new one.
//! - Loads are strict: every parameter of the model must be in the file with its shape, and the
//!   file may hold nothing else. All discrepancies are reported at once, by name, in
//!   [`Error::CheckpointMismatch`]. Tensors are converted to the model's dtype and device.
//! - A truncated or corrupt file, or one holding a NaN or infinite weight, gives
//!   [`Error::CorruptCheckpoint`], never a panic.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

use crate::error::TensorShapeMismatch;
use crate::{Error, ModelConfig, Result};

/// The config file name of the diffusers layout.
pub const CONFIG_FILE: &str = "config.json";
/// The weights file name of the diffusers layout.
pub const WEIGHTS_FILE: &str = "diffusion_pytorch_model.safetensors";

/// Where a checkpoint's config and weights live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointFiles {
    /// The JSON config.
    pub config: PathBuf,
    /// The safetensors weights.
    pub weights: PathBuf,
}

impl CheckpointFiles {
    /// The diffusers layout: `dir/config.json` and `dir/diffusion_pytorch_model.safetensors`.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        Self { config: dir.join(CONFIG_FILE), weights: dir.join(WEIGHTS_FILE) }
    }
}

/// A model loaded from a checkpoint, with its config and trainable parameters.
pub struct Loaded<C: ModelConfig> {
    /// The config read from the JSON file.
    pub config: C,
    /// The model, whose parameters are the variables in `vars`.
    pub model: C::Model,
    /// The trainable parameters, filled from the weights file.
    pub vars: VarMap,
}

/// Writes `vars` and `config` atomically (weights first, then config).
pub fn save<C: ModelConfig>(files: &CheckpointFiles, config: &C, vars: &VarMap) -> Result<()> {
    save_weights(&files.weights, vars)?;
    save_config(&files.config, config)
}

/// Reads the config, builds its model in `dtype` on `device` and fills it from the weights
/// (tensor names mapped by [`ModelConfig::parameter_name`]).
pub fn load<C: ModelConfig>(files: &CheckpointFiles, dtype: DType, device: &Device) -> Result<Loaded<C>> {
    let config: C = load_config(&files.config)?;
    let (model, vars) = config.init(0, dtype, device)?;
    load_renamed_weights(&files.weights, &vars, &|stored| config.parameter_name(stored))?;
    Ok(Loaded { config, model, vars })
}

/// Writes every variable of `vars` to a safetensors file, atomically, names sorted.
pub fn save_weights(path: &Path, vars: &VarMap) -> Result<()> {
    let tensors: BTreeMap<String, Tensor> = {
        let data = vars.data().lock().map_err(|_| candle_core::Error::Msg("poisoned VarMap lock".into()))?;
        data.iter()
            .map(|(name, var)| Ok((name.clone(), var.as_tensor().to_device(&Device::Cpu)?.contiguous()?)))
            .collect::<candle_core::Result<_>>()?
    };
    let bytes = safetensors::tensor::serialize(&tensors, None)
        .map_err(|e| Error::Io { path: path.to_path_buf(), source: std::io::Error::other(e) })?;
    write_atomically(path, &bytes)
}

/// Fills every variable of `vars` from a safetensors file, converting dtype and device.
///
/// Nothing is changed unless the file holds exactly the variables' names and shapes.
pub fn load_weights(path: &Path, vars: &VarMap) -> Result<()> {
    load_renamed_weights(path, vars, &|stored| stored.to_string())
}

/// [`load_weights`], with each stored tensor filling the variable `parameter_name(stored name)`.
///
/// Two stored tensors that map to one variable make the second unexpected.
pub fn load_renamed_weights(path: &Path, vars: &VarMap, parameter_name: &dyn Fn(&str) -> String) -> Result<()> {
    let bytes = fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let corrupt = |reason: String| Error::CorruptCheckpoint { path: path.to_path_buf(), reason };
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let mut stored = BTreeMap::new();
    let mut unexpected = Vec::new();
    for (stored_name, view) in file.tensors() {
        match stored.entry(parameter_name(&stored_name)) {
            Entry::Occupied(_) => unexpected.push(stored_name),
            Entry::Vacant(slot) => {
                slot.insert((stored_name, view));
            }
        }
    }

    let data = vars.data().lock().map_err(|_| candle_core::Error::Msg("poisoned VarMap lock".into()))?;
    let expected: BTreeMap<&String, _> = data.iter().collect();
    let (mut missing, mut mismatched, mut matched) = (Vec::new(), Vec::new(), Vec::new());
    for (name, var) in expected {
        match stored.remove(name) {
            None => missing.push(name.clone()),
            Some((_, view)) if view.shape() != var.dims() => mismatched.push(TensorShapeMismatch {
                name: name.clone(),
                expected: var.dims().to_vec(),
                found: view.shape().to_vec(),
            }),
            Some((_, view)) => matched.push((name, var, view)),
        }
    }
    unexpected.extend(stored.into_values().map(|(stored_name, _)| stored_name));
    unexpected.sort();
    if !(missing.is_empty() && unexpected.is_empty() && mismatched.is_empty()) {
        return Err(Error::CheckpointMismatch { path: path.to_path_buf(), missing, unexpected, mismatched });
    }
    let tensors = matched
        .iter()
        .map(|(name, var, view)| {
            let tensor = view.load(&Device::Cpu).map_err(|e| corrupt(format!("{name}: {e}")))?;
            // training never saves a non-finite weight, so one in a file is damage
            let values = tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(corrupt(format!("{name}: value {i} is {v}")));
            }
            Ok(tensor.to_dtype(var.dtype())?.to_device(var.device())?)
        })
        .collect::<Result<Vec<_>>>()?;
    for ((_, var, _), tensor) in matched.iter().zip(tensors) {
        var.set(&tensor)?;
    }
    Ok(())
}

/// Writes `config` as pretty JSON, atomically.
pub fn save_config<C: serde::Serialize>(path: &Path, config: &C) -> Result<()> {
    let mut json =
        serde_json::to_vec_pretty(config).map_err(|source| Error::Json { path: path.to_path_buf(), source })?;
    json.push(b'\n');
    write_atomically(path, &json)
}

/// Reads a JSON config.
pub fn load_config<C: serde::de::DeserializeOwned>(path: &Path) -> Result<C> {
    let bytes = fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json { path: path.to_path_buf(), source })
}

/// Writes `bytes` to a temporary file next to `path`, syncs it and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let file_name = path.file_name().ok_or_else(|| io(std::io::Error::other("path has no file name")))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{}.{}-{unique}.tmp", file_name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(io(source));
    }
    // Persist the rename itself; not every platform can open a directory, so this is best effort.
    if let Ok(dir) = fs::File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}
