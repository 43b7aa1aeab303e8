//! Run directories: naming, `config.json` with the git revision, opening a saved run, and JSON
//! helpers. The layout of a run directory is in docs/architecture.md.

use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use candle_core::Device;
use serde::Serialize;

use crate::config::{ModelSpec, RunConfig};
use crate::device::parse_device;
use crate::model::Network;
use crate::run_lock::RunLock;

/// The `config.json` of a run.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SavedConfig {
    /// The resolved configuration.
    pub config: RunConfig,
    /// The git revision the `cdm` binary was built from.
    pub git_revision: String,
    /// The training seed.
    pub seed: u64,
    /// Weights the run started from, if fine-tuning.
    pub init: Option<PathBuf>,
    /// The cdm version.
    pub cdm_version: String,
}

impl SavedConfig {
    /// The record of a run starting now from `init`.
    pub fn new(config: RunConfig, init: Option<PathBuf>) -> Self {
        let seed = config.train.seed;
        Self { config, git_revision: git_revision(), seed, init, cdm_version: env!("CARGO_PKG_VERSION").into() }
    }
}

/// Which weights of a run to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    /// The exponential moving average (what sampling uses by default).
    Ema,
    /// The optimizer's final weights.
    Raw,
}

impl Weights {
    /// The file name inside the run directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Weights::Ema => "ema.safetensors",
            Weights::Raw => "model.safetensors",
        }
    }
}

/// A trained run read back from its directory: `config.json` and `model.json`.
pub struct SavedRun {
    /// The run directory.
    pub dir: PathBuf,
    /// Its `config.json`.
    pub saved: SavedConfig,
    /// Its `model.json`.
    pub spec: ModelSpec,
}

impl SavedRun {
    /// Reads `dir/config.json` and `dir/model.json`.
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            saved: read_json(&dir.join("config.json"))?,
            spec: read_json(&dir.join("model.json"))?,
        })
    }

    /// The resolved configuration.
    pub fn config(&self) -> &RunConfig {
        &self.saved.config
    }

    /// The run's device, or `override_device` if given.
    pub fn device(&self, override_device: Option<&str>) -> Result<Device> {
        parse_device(override_device.unwrap_or(&self.saved.config.device))
    }

    /// The network with the run's `weights`.
    pub fn network(&self, weights: Weights, device: &Device) -> Result<Network> {
        Network::load(&self.spec, &self.dir.join(weights.file_name()), device)
    }
}

/// `YYYYMMDD-HHMMSS` in UTC.
pub fn utc_stamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The git revision this binary was built from (`-dirty` if tracked files differed from it),
/// or `"unknown"` when built outside a repository.
pub fn git_revision() -> String {
    env!("CDM_GIT_REVISION").into()
}

/// Claims `runs_dir/name` for a new run: the name must stay inside `runs_dir` (plain path
/// components, no `..`, not absolute), the directory is created and locked ([`RunLock`]), and
/// it must not hold a run already.
pub fn claim(runs_dir: &Path, name: &str) -> Result<RunLock> {
    let inside = !name.is_empty() && Path::new(name).components().all(|c| matches!(c, Component::Normal(_)));
    if !inside {
        anyhow::bail!("--name {name:?}: a run name is a relative path inside --runs-dir (no `..`, not absolute)");
    }
    let dir = runs_dir.join(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = RunLock::acquire(&dir)?;
    if dir.join("config.json").exists() {
        anyhow::bail!("{} already holds a run: pick another --name, or --resume it", dir.display());
    }
    Ok(lock)
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    cdm_train::checkpoint::write_atomic(path, |f| std::io::Write::write_all(f, &bytes))?;
    Ok(())
}

/// Reads a JSON file into `T`, naming the file on error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// On `--resume`: `dir/model.json` must still describe `spec`, the network the checkpoints were
/// trained as (rebuilt from `config.json`), since sampling and evaluation build from
/// `model.json`. The first field that differs is named.
pub fn check_model_json(dir: &Path, spec: &ModelSpec) -> Result<()> {
    let path = dir.join("model.json");
    let stored: serde_json::Value = read_json(&path)?;
    if let Some((field, found, trained)) = first_difference(&stored, &serde_json::to_value(spec)?, "") {
        anyhow::bail!(
            "{}: {field} is {found}, but the run was trained with {trained} (config.json): restore it to resume, \
             or start a new run from these weights with --init",
            path.display()
        );
    }
    Ok(())
}

/// The dotted path of the first place where `a` and `b` differ, with both values.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<(String, String, String)> {
    use serde_json::Value;
    let show = |v: Option<&Value>| v.map_or_else(|| "absent".to_string(), Value::to_string);
    let at = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(u), Some(v)) => first_difference(u, v, &at(k)),
                (u, v) => Some((at(k), show(u), show(v))),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (u, v))| first_difference(u, v, &format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some((path.to_string(), a.to_string(), b.to_string())),
    }
}
