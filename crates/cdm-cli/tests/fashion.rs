//! The image path end to end on a generated 28×28 IDX data set: `cdm reproduce fashion-mnist`
//! at the smoke budget (FID and KID with the tiny random-weight Inception fixture) and `cdm eval`
//! on an image run, with and without FID weights.

mod common;

use std::path::{Path, PathBuf};

use common::{cdm, command, json, stderr};

/// The tiny random-weight FID network of cdm-metrics' fixtures (1/16 of the channels).
fn tiny_fid_weights() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cdm-metrics/tests/fixtures/fid_tiny_weights.safetensors")
}

/// Writes raw IDX files of `n` 28×28 images (a bright rectangle of varying size and
/// brightness on black, like a garment) and their labels under `prefix`.
fn write_idx(dir: &Path, prefix: &str, n: usize) {
    let mut images = vec![0, 0, 8, 3];
    for d in [n as u32, 28, 28] {
        images.extend(d.to_be_bytes());
    }
    for k in 0..n {
        let (w, h, level) = (6 + k % 12, 8 + (3 * k) % 14, 120 + (37 * k % 136) as u8);
        for y in 0..28 {
            for x in 0..28 {
                let inside = (14 - w / 2..14 + w / 2).contains(&x) && (14 - h / 2..14 + h / 2).contains(&y);
                images.push(if inside { level } else { 0 });
            }
        }
    }
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
    let mut labels = vec![0, 0, 8, 1];
    labels.extend((n as u32).to_be_bytes());
    labels.extend((0..n).map(|k| (k % 10) as u8));
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
}

fn fashion_dir(root: &Path) -> PathBuf {
    let dir = root.join("fashion");
    std::fs::create_dir_all(&dir).unwrap();
    write_idx(&dir, "train", 24);
    write_idx(&dir, "t10k", 10);
    dir
}

#[test]
fn fashion_reproduction_scores_every_sampler_with_intervals_and_caches() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fashion_dir(tmp.path());
    let out = tmp.path().join("reproduce");
    let weights = tiny_fid_weights();
    let args = [
        "reproduce",
        "fashion-mnist",
        "--budget",
        "smoke",
        "--data",
        data.to_str().unwrap(),
        "--fid-weights",
        weights.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ];
    let first = cdm(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for row in ["| training images (the data's floor) |", "| mse+cdl-ft | DDIM-4 |", "| mse-cont | EDM Heun, 3 steps |"]
    {
        assert!(report.contains(row), "no {row}:\n{report}");
    }
    // two draws per recipe: each claim has a paired and a Welch interval, each with its verdict
    let verdicts = report
        .lines()
        .filter(|l| l.contains("Δ = ") && l.contains("paired [") && l.contains("Welch [") && l.contains("resolved"))
        .count();
    assert_eq!(verdicts, 6, "{report}");
    for key in ["mse-cdl-ft", "mse-cont"] {
        for sampler in ["ddim", "paradigms", "edm"] {
            assert!(out.join(format!("fashion-{key}-{sampler}.png")).is_file(), "{key} {sampler}");
        }
    }
    // the draws of one seed: scores are finite, ParaDiGMS reports its rounds
    let draw = json(&out.join("fashion-mnist/mse+cdl-ft/seed0/eval-fashion-draw1.json"));
    let samplers = draw["samplers"].as_array().unwrap();
    assert_eq!(samplers.len(), 3);
    for s in samplers {
        assert!(s["score"]["fid"].as_f64().unwrap().is_finite(), "{s}");
        assert_eq!(s["score"]["n"], 4);
        assert_eq!(s["score"]["reference"], 6);
    }
    assert_eq!(samplers[0]["nfe"], 4.0); // DDIM-4
    assert_eq!(samplers[2]["nfe"], 5.0); // Heun: 2·3 − 1
    assert!(samplers[1]["rounds"].as_f64().unwrap() <= 4.0, "{}", samplers[1]);
    // the fine-tunes start from the base run's EMA weights
    let config = json(&out.join("fashion-mnist/mse-cont/seed0/config.json"));
    assert!(config["init"].as_str().unwrap().ends_with("mse/seed0/ema.safetensors"), "{config}");

    // a second invocation retrains and rescores nothing
    let stamp = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let files = [
        out.join("fashion-mnist/mse+cdl-ft/seed0/ema.safetensors"),
        out.join("fashion-mnist/mse+cdl-ft/seed0/eval-fashion-draw0.json"),
        out.join("fashion-mnist/reference-features-6.safetensors"),
        out.join("fashion-mnist/floor.json"),
    ];
    let before: Vec<_> = files.iter().map(|f| stamp(f)).collect();
    let second = cdm(&args);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(files.iter().map(|f| stamp(f)).collect::<Vec<_>>(), before);
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).unwrap().lines().filter(|l| l.starts_with("| ")).count(),
        report.lines().filter(|l| l.starts_with("| ")).count()
    );
}

#[test]
fn a_missing_data_set_names_the_install_command() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cdm(&["reproduce", "fashion-mnist", "--budget", "smoke", "--data", tmp.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("apt-get install dataset-fashion-mnist"), "{}", stderr(&out));
}

#[test]
fn eval_scores_an_image_run_with_fid_and_notes_missing_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let data = fashion_dir(tmp.path());
    let runs = tmp.path().join("runs");
    let config = common::write(
        tmp.path(),
        "tiny.toml",
        r#"
[model]
kind = "unet"
down_block_types = ["DownBlock2D", "AttnDownBlock2D"]
up_block_types = ["AttnUpBlock2D", "UpBlock2D"]
block_out_channels = [8, 16]
layers_per_block = 1
norm_num_groups = 4
[objective]
standard = "mse"
[train]
steps = 2
batch_size = 4
warmup_steps = 1
[sample]
n = 0
"#,
    );
    let dataset = format!("fashion-mnist:{}", data.display());
    let train = cdm(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--dataset",
        &dataset,
        "--runs-dir",
        runs.to_str().unwrap(),
        "--name",
        "tiny",
        "--no-progress",
    ]);
    assert!(train.status.success(), "{}", stderr(&train));
    let run = runs.join("tiny");
    let eval = |fid: Option<&Path>| {
        let mut args = vec!["eval", "--run", run.to_str().unwrap(), "--n", "5", "--sampler", "ddim", "--steps", "3"];
        args.push("--no-progress");
        if let Some(w) = fid {
            args.extend(["--fid-weights", w.to_str().unwrap()]);
        }
        // no weights in the default place either
        let out = command(&args, "warn").env("CDM_FID_WEIGHTS", tmp.path().join("absent")).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        json(&run.join("eval.json"))
    };
    let with = eval(Some(&tiny_fid_weights()));
    assert_eq!((with["samples"].as_u64(), with["heldout"].as_u64()), (Some(5), Some(10)));
    assert!(with["fid"]["fid"].as_f64().unwrap().is_finite() && with["fid"]["kid"].as_f64().is_some(), "{with}");
    assert!(with["mmd_pixels"].as_f64().unwrap().is_finite());
    assert!(run.join("eval_samples.png").is_file() && run.join("fid-reference-10.safetensors").is_file());
    let without = eval(None);
    assert!(without["fid"].is_null());
    assert!(without["notes"][0].as_str().unwrap().contains("cargo xtask fetch-fid"), "{without}");
    // the same seed draws the same samples: the pixel MMD² is identical
    assert_eq!(without["mmd_pixels"], with["mmd_pixels"]);
}
