//! Faults a run must survive or refuse clearly: a training process killed at random moments
//! (also while it writes a checkpoint, and while it resumes) finishes with the same weights as
//! an uninterrupted run; a `model.json` edited between runs and a `--points` beyond the memory
//! limit are refused with a message naming them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{cdm, command, stderr, write};

/// A small, fast run: 240 steps of the residual MLP on 2000 Dino points, a checkpoint every 4.
const CONFIG: &str = "name = \"r\"
[data]
n_train = 2000
n_validation = 200
[model]
kind = \"mlp\"
d_model = 32
blocks = 1
input_frequencies = 4
[objective]
standard = \"mse\"
[objective.cdl]
instances = 8
points = 4
weight = 0.5
[train]
steps = 240
batch_size = 64
log_every = 4
validate_every = 8
checkpoint_every = 4
[sample]
n = 0
";

fn train(runs: &Path, config: &Path) -> Child {
    let args = ["train", "--runs-dir", runs.to_str().unwrap(), "--config", config.to_str().unwrap(), "--no-progress"];
    command(&args, "warn").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn resume(dir: &Path) -> Child {
    command(&["train", "--resume", dir.to_str().unwrap(), "--no-progress"], "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `done()` holds or `limit` passes; whether it held.
fn wait_for(limit: Duration, done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Whether a checkpoint is being written (its temporary directory exists).
fn writing_checkpoint(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("checkpoints"))
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with(".tmp-step-")))
        .unwrap_or(false)
}

/// SIGKILL, then reap; true if the process was still running when killed.
fn kill(child: &mut Child) -> bool {
    let running = child.try_wait().unwrap().is_none();
    child.kill().ok();
    child.wait().unwrap();
    running
}

fn weights(dir: &Path) -> [Vec<u8>; 2] {
    ["model.safetensors", "ema.safetensors"].map(|f| std::fs::read(dir.join(f)).unwrap())
}

#[test]
fn a_run_killed_at_random_moments_resumes_to_bit_identical_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write(tmp.path(), "run.toml", CONFIG);
    let (reference_runs, runs): (PathBuf, PathBuf) = (tmp.path().join("reference"), tmp.path().join("runs"));
    let out = train(&reference_runs, &config).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference = weights(&reference_runs.join("r"));

    let dir = runs.join("r");
    // delays in ms after each start, from a fixed seed so a failure reproduces
    let mut seed = 0x2545_f491_u64;
    let mut delay = || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        Duration::from_millis(100 + (seed >> 33) % 400)
    };
    let mut child = train(&runs, &config);
    assert!(wait_for(Duration::from_secs(20), || dir.join("config.json").exists()), "the run never started");
    // first kill: while a checkpoint is being written, if the poll catches one
    let caught = wait_for(Duration::from_secs(10), || writing_checkpoint(&dir));
    let mut kills = usize::from(kill(&mut child));
    // then kill each resume after a random delay, twice, and let the last one finish
    for _ in 0..2 {
        let mut child = resume(&dir);
        std::thread::sleep(delay());
        kills += usize::from(kill(&mut child));
    }
    let out = resume(&dir).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(kills >= 2, "fewer than two processes were killed while running (caught a checkpoint write: {caught})");
    assert!(weights(&dir) == reference, "resumed weights differ from the uninterrupted run's ({kills} kills)");
    eprintln!("{kills} kills; caught a checkpoint write: {caught}");
}

#[test]
fn resume_refuses_an_edited_model_json_and_names_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let short = CONFIG.replace("steps = 240", "steps = 4");
    let config = write(tmp.path(), "run.toml", &short);
    let runs = tmp.path().join("runs");
    assert!(train(&runs, &config).wait().unwrap().success());
    let dir = runs.join("r");
    let model = std::fs::read_to_string(dir.join("model.json")).unwrap();
    std::fs::write(dir.join("model.json"), model.replace("\"d_model\": 32", "\"d_model\": 64")).unwrap();
    let out = cdm(&["train", "--resume", dir.to_str().unwrap(), "--steps", "8", "--no-progress"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "resumed with a changed model.json");
    assert!(err.contains("model.json: d_model is 64") && err.contains("trained with 32"), "{err}");
}

#[test]
fn points_beyond_the_memory_limit_are_refused_before_the_estimate() {
    let tmp = tempfile::tempdir().unwrap();
    let density = write(tmp.path(), "d.json", r#"{"components": [{"mean": [0, 0], "variance": [1, 1]}]}"#);
    let input = write(tmp.path(), "x.csv", "0,0\n1,1\n");
    let args = ["nll", "--density", density.to_str().unwrap(), "--input", input.to_str().unwrap()];
    let out = cdm(&[&args[..], &["--points", "4000000000"]].concat());
    let err = stderr(&out);
    assert!(!out.status.success() && err.contains("--points 4000000000") && err.contains("CDM_MEMORY_LIMIT"), "{err}");
    let ok = cdm(&[&args[..], &["--points", "64"]].concat());
    assert!(ok.status.success(), "{}", stderr(&ok));
}
