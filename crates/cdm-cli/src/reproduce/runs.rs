//! The training runs of a reproduction, cached and resumable: a run directory holding the same
//! finished run is reused, an unfinished one of the same configuration resumes bit-exactly from
//! its latest checkpoint, and anything else is cleared and trained anew.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::run_dir::{SavedConfig, read_json, write_json};
use crate::run_lock::{LOCK_FILE, RunLock};
use crate::train::{Init, train_run};

/// Written when a run has finished training.
const TRAINED_FILE: &str = "trained.json";

/// How long a run trained.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Trained {
    /// Wall seconds of the invocation that finished the run.
    pub seconds: f64,
    /// Whether that invocation resumed from a checkpoint (then `seconds` covers only its part).
    pub resumed: bool,
}

/// Trains `cfg` into `dir` (locked first, so a concurrent `reproduce` cannot clear it under
/// another) unless it is there already.
pub fn ensure_trained(dir: &Path, cfg: &RunConfig, init: Option<Init>) -> Result<Trained> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = RunLock::acquire(dir)?;
    let same = match read_json::<SavedConfig>(&dir.join("config.json")) {
        Ok(saved) => {
            comparable(&saved.config) == comparable(cfg) && saved.init == init.as_ref().map(Init::weights_file)
        }
        Err(_) => false,
    };
    if same && let Ok(trained) = read_json::<Trained>(&dir.join(TRAINED_FILE)) {
        tracing::info!(run = %dir.display(), "cached: training skipped");
        return Ok(trained);
    }
    let resumed = same && dir.join("checkpoints").is_dir();
    if resumed {
        tracing::info!(run = %dir.display(), "unfinished: resuming from the latest checkpoint");
    } else {
        clear(dir)?;
    }
    let started = Instant::now();
    let device = crate::device::parse_device(&cfg.device)?;
    train_run(cfg.clone(), lock.dir(), &cdm_dist::SingleProcess, &device, init, resumed)?;
    let trained = Trained { seconds: started.elapsed().as_secs_f64(), resumed };
    write_json(&dir.join(TRAINED_FILE), &trained)?;
    Ok(trained)
}

/// The parts of a configuration that decide the trained weights.
fn comparable(cfg: &RunConfig) -> serde_json::Value {
    let mut v = serde_json::to_value(cfg).unwrap_or_default();
    v["train"]["progress"] = serde_json::Value::Null;
    if let Some(model) = v["model"].as_object_mut() {
        // filled in from the data when the run starts: the MLP's input width, the UNet's size
        model.remove("dim");
        model.remove("sample_size");
    }
    v
}

/// Removes everything in `dir` but its lock.
fn clear(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == LOCK_FILE) {
            continue;
        }
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.with_context(|| format!("clearing {}", path.display()))?;
    }
    Ok(())
}
