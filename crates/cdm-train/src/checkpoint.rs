//! Checkpoints that survive a kill at any moment.
//!
//! Layout inside a run directory:
//!
//! ```text
//! checkpoints/step-00000100/{model,ema,optimizer}.safetensors + state.json
//! checkpoints/latest                      (the name of the newest complete checkpoint)
//! ```
//!
//! A checkpoint is written into `checkpoints/.tmp-step-…-<pid>`, each file synced, then the directory
//! is renamed into place and only then `latest` is replaced (temp file + rename). A crash at
//! any point leaves `latest` naming a complete checkpoint; leftover temp directories are
//! removed on the next save. Old checkpoints are removed only by [`prune_checkpoints`] (the
//! trainer's [`CheckpointRetention`](crate::CheckpointRetention) observer calls it).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// Training position saved with a checkpoint.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// Optimizer steps completed.
    pub step: u64,
    /// EMA updates completed.
    pub ema_updates: u64,
    /// The run's seed (all randomness is keyed by `(seed, step)`).
    pub seed: u64,
}

/// The tensors and state of one checkpoint.
pub struct Checkpoint {
    /// Model weights by name.
    pub model: HashMap<String, Tensor>,
    /// EMA weights by name.
    pub ema: HashMap<String, Tensor>,
    /// Optimizer moments by name.
    pub optimizer: HashMap<String, Tensor>,
    /// Position in training.
    pub state: TrainState,
}

/// Writes `bytes` to `path` atomically: a temp file in the same directory, synced, then renamed.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut fs::File) -> std::io::Result<()>) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".tmp-{}-{name}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        write(&mut f)?;
        f.flush()?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(Error::io(path))
}

/// Saves named tensors as safetensors, atomically.
pub fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let cpu: Vec<(&str, Tensor)> =
        tensors.iter().map(|(k, t)| Ok((k.as_str(), t.to_device(&Device::Cpu)?))).collect::<Result<_>>()?;
    // candle's `Tensor` implements safetensors' `View`: serialise in memory, then write atomically.
    let bytes = safetensors::serialize(cpu.iter().map(|(k, t)| (*k, t)), None)
        .map_err(|e| Error::checkpoint(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, |f| f.write_all(&bytes))
}

/// Loads named tensors from a safetensors file onto `device`, with a typed error naming the file
/// (also for a NaN or infinite value, which only damage can put there).
pub fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::checkpoint(path, "file not found"));
    }
    let tensors = candle_core::safetensors::load(path, device)
        .map_err(|e| Error::checkpoint(path, first_line(&e.to_string())))?;
    // the trainer never saves a non-finite value (its guard stops the run first), so one here is damage
    for (name, tensor) in &tensors {
        if tensor.dtype().is_float() {
            let values = tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::checkpoint(path, format!("{name}: value {i} is {v}")));
            }
        }
    }
    Ok(tensors)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// The checkpoint directory of a run.
pub fn checkpoint_root(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// The directory of the checkpoint after `step` steps.
pub fn checkpoint_dir(run_dir: &Path, step: u64) -> PathBuf {
    checkpoint_root(run_dir).join(format!("step-{step:08}"))
}

/// Writes a complete checkpoint and points `latest` at it; returns its directory.
///
/// Older checkpoints stay: removing them is [`prune_checkpoints`]'s job.
pub fn save_checkpoint(run_dir: &Path, ckpt: &Checkpoint) -> Result<PathBuf> {
    let root = checkpoint_root(run_dir);
    fs::create_dir_all(&root).map_err(Error::io(&root))?;
    let dest = checkpoint_dir(run_dir, ckpt.state.step);
    let name = dest.file_name().expect("a step directory").to_string_lossy().into_owned();
    let tmp = root.join(format!(".tmp-{name}-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(Error::io(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(Error::io(&tmp))?;
    save_tensors(&tmp.join("model.safetensors"), &ckpt.model)?;
    save_tensors(&tmp.join("ema.safetensors"), &ckpt.ema)?;
    save_tensors(&tmp.join("optimizer.safetensors"), &ckpt.optimizer)?;
    let state = serde_json::to_vec_pretty(&ckpt.state).map_err(|e| Error::checkpoint(&tmp, e))?;
    write_atomic(&tmp.join("state.json"), |f| f.write_all(&state))?;
    if dest.exists() {
        fs::remove_dir_all(&dest).map_err(Error::io(&dest))?;
    }
    fs::rename(&tmp, &dest).map_err(Error::io(&dest))?;
    write_atomic(&root.join("latest"), |f| f.write_all(name.as_bytes()))?;
    remove_leftovers(&root)?;
    Ok(dest)
}

/// Removes the temp directories of checkpoint writes that a crash interrupted.
fn remove_leftovers(root: &Path) -> Result<()> {
    for entry in fs::read_dir(root).map_err(Error::io(root))? {
        let entry = entry.map_err(Error::io(root))?;
        if entry.file_name().to_string_lossy().starts_with(".tmp-step-") {
            fs::remove_dir_all(entry.path()).map_err(Error::io(entry.path()))?;
        }
    }
    Ok(())
}

/// Removes all but the newest `keep` (at least one) checkpoints of a run directory, and never
/// the one `latest` names (a directory may hold later steps of an earlier, abandoned run).
pub fn prune_checkpoints(run_dir: &Path, keep: usize) -> Result<()> {
    let root = checkpoint_root(run_dir);
    let latest = latest_checkpoint(run_dir)?;
    let mut steps = Vec::new();
    for entry in fs::read_dir(&root).map_err(Error::io(&root))? {
        let entry = entry.map_err(Error::io(&root))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("step-") && entry.path().is_dir() {
            steps.push(name);
        }
    }
    steps.sort();
    let excess = steps.len().saturating_sub(keep.max(1));
    for name in &steps[..excess] {
        let p = root.join(name);
        if latest.as_deref() == Some(p.as_path()) {
            continue;
        }
        fs::remove_dir_all(&p).map_err(Error::io(&p))?;
    }
    Ok(())
}

/// The directory `latest` points to, if a complete checkpoint exists.
pub fn latest_checkpoint(run_dir: &Path) -> Result<Option<PathBuf>> {
    let pointer = checkpoint_root(run_dir).join("latest");
    if !pointer.exists() {
        return Ok(None);
    }
    let name = fs::read_to_string(&pointer).map_err(Error::io(&pointer))?;
    let dir = checkpoint_root(run_dir).join(name.trim());
    if !dir.join("state.json").exists() {
        return Err(Error::checkpoint(&dir, "`latest` names a checkpoint without state.json"));
    }
    Ok(Some(dir))
}

/// Loads a checkpoint directory written by [`save_checkpoint`].
pub fn load_checkpoint(dir: &Path, device: &Device) -> Result<Checkpoint> {
    let state_path = dir.join("state.json");
    let bytes = fs::read(&state_path).map_err(Error::io(&state_path))?;
    let state: TrainState = serde_json::from_slice(&bytes).map_err(|e| Error::checkpoint(&state_path, e))?;
    Ok(Checkpoint {
        model: load_tensors(&dir.join("model.safetensors"), device)?,
        ema: load_tensors(&dir.join("ema.safetensors"), device)?,
        optimizer: load_tensors(&dir.join("optimizer.safetensors"), device)?,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(dir: &Path, step: u64) -> PathBuf {
        let state = TrainState { step, ema_updates: step, seed: 0 };
        let empty = HashMap::new;
        save_checkpoint(dir, &Checkpoint { model: empty(), ema: empty(), optimizer: empty(), state }).unwrap()
    }

    #[test]
    fn pruning_keeps_the_newest_and_the_one_latest_names() {
        let tmp = tempfile::tempdir().unwrap();
        // an abandoned run left steps 20 and 30; a new run in the same directory writes step 4
        for step in [20, 30, 4] {
            save(tmp.path(), step);
        }
        prune_checkpoints(tmp.path(), 1).unwrap();
        let latest = latest_checkpoint(tmp.path()).unwrap().unwrap();
        assert!(latest.ends_with("step-00000004"), "{}", latest.display());
        let mut left: Vec<String> = fs::read_dir(checkpoint_root(tmp.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("step-"))
            .collect();
        left.sort();
        assert_eq!(left, ["step-00000004", "step-00000030"]);
    }
}
