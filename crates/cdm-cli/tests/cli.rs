//! The `cdm` binary end to end: a tiny train → sample round trip, and bad input.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{cdm, cdm_with_log, command, stderr, write};

#[test]
fn train_then_sample_writes_a_complete_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let cfg = write(
        tmp.path(),
        "tiny.toml",
        "[train]\nsteps = 12\nbatch_size = 32\nlog_every = 4\ncheckpoint_every = 6\nvalidate_every = 6\n\n[sample]\nn = 64\nsteps = 40\n\n[data]\nn_train = 500\nn_validation = 100\n",
    );
    let out = cdm(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--name",
        "tiny",
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = runs.join("tiny");
    for f in [
        "config.json",
        "model.json",
        "model.safetensors",
        "ema.safetensors",
        "metrics.jsonl",
        "loss.png",
        "samples.png",
        "samples.csv",
        "samples.npy",
        "summary.json",
    ] {
        assert!(run.join(f).exists(), "missing {f}");
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["config"]["train"]["steps"], 12);
    assert!(saved["git_revision"].is_string());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert!(summary["mmd"].as_f64().unwrap().is_finite());

    let out = cdm(&[
        "sample",
        "--run",
        run.to_str().unwrap(),
        "--sampler",
        "paradigms",
        "--steps",
        "40",
        "--window",
        "8",
        "--n",
        "16",
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = run.join("samples-ddpm-40-paradigms-p8-tol0.1");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();
    let (rounds, nfe) = (stats["rounds"].as_u64().unwrap(), stats["nfe"].as_u64().unwrap());
    assert!(rounds <= 40 && nfe <= 8 * rounds, "rounds {rounds}, nfe {nfe}");
    assert_eq!(std::fs::read_to_string(dir.join("samples.csv")).unwrap().lines().count(), 16);

    // a request beyond the memory limit is refused before anything is allocated
    let huge = cdm(&["sample", "--run", run.to_str().unwrap(), "--n", "1000000000", "--no-progress"]);
    assert!(!huge.status.success() && stderr(&huge).contains("sampling 1000000000 samples"), "{}", stderr(&huge));

    // one sample has no MMD: the report says so instead of printing NaN
    let one = cdm(&["sample", "--run", run.to_str().unwrap(), "--steps", "5", "--n", "1", "--no-progress"]);
    assert!(one.status.success(), "{}", stderr(&one));
    let printed = String::from_utf8_lossy(&one.stdout);
    assert!(printed.contains("n/a") && !printed.contains("NaN"), "{printed}");

    // resuming a finished run is a no-op that still succeeds; a second run of the same name is refused
    let again = cdm(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--name",
        "tiny",
        "--no-progress",
    ]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already holds a run"), "{}", stderr(&again));
}

#[test]
fn an_image_data_set_without_a_config_trains_with_image_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let out = cdm_with_log(
        &["train", "--dataset", "digits", "--steps", "2", "--samples", "0", "--runs-dir", runs.to_str().unwrap()],
        "info",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // logs into a pipe carry no colour codes
    assert!(stderr(&out).contains("training") && !stderr(&out).contains('\x1b'), "{}", stderr(&out));
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let cfg = &saved["config"];
    assert_eq!(cfg["data"]["dataset"], "digits");
    assert_eq!(cfg["model"]["kind"], "unet");
    assert_eq!(cfg["objective"]["standard"], "mse");
    assert!(cfg["objective"]["cdl"].is_null(), "{cfg}");
    assert_eq!(cfg["train"]["batch_size"], 64);
    assert_eq!(cfg["model"]["sample_size"], 8);
}

#[test]
fn bad_input_fails_with_a_message_naming_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let runs = runs.to_str().unwrap();
    let bad_csv = write(tmp.path(), "bad.csv", "x,y\n1.0,2.0\n3.0,oops\n");
    let ragged = write(tmp.path(), "ragged.csv", "1,2\n3,4,5\n");
    let empty = write(tmp.path(), "empty.csv", "");
    let bad_toml = write(tmp.path(), "bad.toml", "[train]\nsteps = \"many\"\n");
    let unknown_field = write(tmp.path(), "unknown.toml", "[train]\nlearning_rate = 0.1\n");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--dataset".into(), "dinosaur".into()], "unknown"),
        (vec!["--dataset".into(), "imagenet:/x".into()], "unknown prefix"),
        (vec!["--dataset".into(), "digits".into(), "--model".into(), "mlp".into()], "need the UNet"),
        (vec!["--model".into(), "unet".into()], "need an MLP"),
        (vec!["--dataset".into(), format!("csv:{}", bad_csv.display())], "bad.csv:3"),
        (vec!["--dataset".into(), format!("csv:{}", ragged.display())], "ragged.csv:2"),
        (vec!["--dataset".into(), format!("csv:{}", empty.display())], "empty.csv"),
        (vec!["--config".into(), bad_toml.display().to_string()], "bad.toml"),
        (vec!["--config".into(), unknown_field.display().to_string()], "learning_rate"),
        (vec!["--lr=-1".into()], "lr"),
        (vec!["--lr".into(), "-1".into()], "invalid lr"),
        (vec!["--cdl-weight".into(), "NaN".into()], "--cdl-weight"),
        (vec!["--cdl-weight".into(), "-0.5".into()], "--cdl-weight"),
        (vec!["--batch-size".into(), "0".into()], "batch_size"),
        (vec!["--objective".into(), "mse+magic".into()], "unknown objective"),
        (vec!["--device".into(), "tpu".into()], "unknown device"),
        (vec!["--batch-size".into(), "1000000000".into()], "CDM_MEMORY_LIMIT"),
        (vec!["--init".into(), "/nonexistent/weights.safetensors".into()], "/nonexistent/weights.safetensors"),
    ];
    #[cfg(not(feature = "mpi"))]
    let cases = [cases, vec![(vec!["--distributed".into()], "--features mpi")]].concat();
    for (i, (extra, needle)) in cases.into_iter().enumerate() {
        let name = format!("bad{i}");
        let mut args =
            vec!["train", "--runs-dir", runs, "--name", &name, "--steps", "2", "--samples", "0", "--no-progress"];
        args.extend(extra.iter().map(String::as_str));
        let out = cdm(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{extra:?} succeeded");
        assert!(err.contains(needle), "{extra:?}: stderr lacks {needle:?}:\n{err}");
        assert!(!err.contains("panicked"), "{extra:?} panicked:\n{err}");
    }
}

#[test]
fn a_run_directory_has_one_writer_and_stays_inside_the_runs_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let runs = runs.to_str().unwrap();
    let args = ["train", "--runs-dir", runs, "--name", "same", "--steps", "60", "--samples", "0", "--no-progress"];
    // two writers started together: exactly one trains, the other is refused at once
    let piped = || command(&args, "warn").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let children: Vec<_> = (0..2).map(|_| piped()).collect();
    let outs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    assert_eq!(outs.iter().filter(|o| o.status.success()).count(), 1, "{}\n{}", stderr(&outs[0]), stderr(&outs[1]));
    let refused = outs.iter().find(|o| !o.status.success()).unwrap();
    let err = stderr(refused);
    assert!(err.contains("is being written by process") || err.contains("already holds a run"), "{err}");
    let dir = Path::new(runs).join("same");
    let steps: Vec<u64> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap())
        .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]) && steps.last() == Some(&60), "{steps:?}");
    assert!(!dir.join("run.lock").exists(), "the finished run released its lock");

    // the run, finished and unlocked, resumes (a stale lock's takeover is tested in run_lock.rs)
    let resumed = cdm(&["train", "--resume", dir.to_str().unwrap(), "--steps", "70", "--no-progress"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));

    for name in ["../escape", "/abs", "a/../../b", ""] {
        let out = cdm(&["train", "--runs-dir", runs, "--name", name, "--steps", "1", "--no-progress"]);
        assert!(!out.status.success() && stderr(&out).contains("inside --runs-dir"), "{name:?}: {}", stderr(&out));
    }
    assert!(!tmp.path().join("escape").exists());
}
