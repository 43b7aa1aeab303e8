//! Helpers shared by the binary's integration tests.
#![allow(dead_code)] // each test binary uses a subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{DType, Tensor};

/// Runs the `cdm` binary with quiet logs and the 2-core thread settings.
pub fn cdm(args: &[&str]) -> Output {
    cdm_with_log(args, "warn")
}

/// Runs the `cdm` binary with `RUST_LOG=log` and the 2-core thread settings.
pub fn cdm_with_log(args: &[&str], log: &str) -> Output {
    command(args, log).output().expect("cdm runs")
}

/// The `cdm` command with `RUST_LOG=log` and the 2-core thread settings, not yet started.
pub fn command(args: &[&str], log: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cdm"));
    c.args(args).env("RUST_LOG", log).env("RAYON_NUM_THREADS", "2").env("CANDLE_NUM_THREADS", "1");
    c
}

/// The process's standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The JSON file at `path`.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Largest |a − b| over all elements, in f32.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    (f32(a) - f32(b)).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}
