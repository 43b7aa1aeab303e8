//! Image training end to end: the UNet on digits, and fine-tuning a diffusers checkpoint.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use candle_core::{Device, Tensor};
mod common;

use common::{cdm, json, max_abs_diff, write};

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn tensors(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

#[test]
fn digits_unet_trains_with_cdl_and_writes_a_sample_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    // a very small UNet: 8 and 16 channels, 4 groups
    let cfg = write(
        tmp.path(),
        "digits.toml",
        r#"
[data]
dataset = "digits"
n_validation = 40
[model]
kind = "unet"
down_block_types = ["DownBlock2D", "AttnDownBlock2D"]
up_block_types = ["AttnUpBlock2D", "UpBlock2D"]
block_out_channels = [8, 16]
layers_per_block = 1
norm_num_groups = 4
[objective]
standard = "mse"
[objective.cdl]
points = 2
instances = 2
[train]
steps = 3
batch_size = 8
warmup_steps = 1
log_every = 1
validate_every = 3
checkpoint_every = 3
[sample]
n = 4
steps = 10
"#,
    );
    let out = cdm(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--name",
        "d",
        "--no-progress",
    ]);
    ok(&out);
    let run = runs.join("d");
    for f in
        ["config.json", "model.json", "ema.safetensors", "model.safetensors", "loss.png", "samples.npy", "summary.json"]
    {
        assert!(run.join(f).exists(), "missing {f}");
    }
    // 4 samples of 8×8 in a 2×2 grid, pixels ×4 with 1-pixel gutters
    let grid = image::open(run.join("samples.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (2 * 9 * 4 + 4, 2 * 9 * 4 + 4));
    let spec = json(&run.join("model.json"));
    assert_eq!(spec["kind"], "unet");
    assert_eq!(spec["in_channels"], 1);
    let summary = json(&run.join("summary.json"));
    assert!(summary["mmd"].as_f64().unwrap().is_finite());
    assert!(summary["mmd_bandwidth"].as_f64().unwrap() > 0.0);
    let saved = json(&run.join("config.json"));
    assert_eq!(saved["config"]["objective"]["cdl"]["points"], 2);

    // `cdm sample` on an image run: a grid of the run's image size
    let out = cdm(&["sample", "--run", run.to_str().unwrap(), "--n", "3", "--steps", "8", "--no-progress"]);
    ok(&out);
    let dir = run.join("samples-ddpm-8");
    let grid = image::open(dir.join("samples.png")).unwrap();
    assert_eq!((grid.width(), grid.height()), (2 * 9 * 4 + 4, 2 * 9 * 4 + 4));
    assert_eq!(json(&dir.join("stats.json"))["n"], 3);
}

#[test]
fn init_diffusers_fine_tunes_the_checkpoint_and_samples_its_ema() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cdm-models/tests/fixtures/diffusers_tiny");
    let tmp = tempfile::tempdir().unwrap();
    // a folder of 8×8 RGB PNGs (the fixture's sample size and channels)
    let pngs = tmp.path().join("pngs");
    std::fs::create_dir_all(&pngs).unwrap();
    for k in 0..12u32 {
        let img =
            image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([(x * 30 + k * 7) as u8, (y * 30) as u8, (k * 20) as u8]));
        img.save(pngs.join(format!("{k:02}.png"))).unwrap();
    }
    let runs = tmp.path().join("runs");
    let cfg = write(
        tmp.path(),
        "ft.toml",
        "[data]\nimage_size = 8\nn_validation = 4\n\n[train]\nsteps = 2\nbatch_size = 4\nlr = 1e-3\nwarmup_steps = 0\nlog_every = 1\nvalidate_every = 0\ncheckpoint_every = 2\nema_decay = 0.9999\n\n[sample]\nn = 2\nsteps = 5\n",
    );
    let out = cdm(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--dataset",
        &format!("folder:{}", pngs.display()),
        "--objective",
        "mse+cdl",
        "--cdl-points",
        "2",
        "--cdl-instances",
        "2",
        "--init-diffusers",
        fixture.to_str().unwrap(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--name",
        "ft",
        "--no-progress",
    ]);
    ok(&out);
    let run = runs.join("ft");
    // the diffusers config defines the model
    let spec = json(&run.join("model.json"));
    assert_eq!(spec["block_out_channels"], serde_json::json!([8, 16]));
    assert_eq!(spec["layers_per_block"], 2);
    let original = tensors(&fixture.join("diffusion_pytorch_model.safetensors"));
    let trained = tensors(&run.join("model.safetensors"));
    let ema = tensors(&run.join("ema.safetensors"));
    assert_eq!(trained.len(), original.len());
    let name = "conv_in.weight";
    assert!(max_abs_diff(&trained[name], &original[name]) > 1e-5, "training left {name} unchanged");
    assert!(max_abs_diff(&ema[name], &trained[name]) > 0.0, "EMA equals the raw weights");
    assert!(run.join("samples.png").exists());

    // sampling uses the EMA by default: other samples than the raw weights, same noise
    let ema_dir = tmp.path().join("ema");
    let raw_dir = tmp.path().join("raw");
    let base = ["sample", "--run", run.to_str().unwrap(), "--n", "2", "--steps", "5", "--no-progress", "--out"];
    ok(&cdm(&[&base[..], &[ema_dir.to_str().unwrap()]].concat()));
    ok(&cdm(&[&base[..], &[raw_dir.to_str().unwrap(), "--no-ema"]].concat()));
    assert_eq!(json(&ema_dir.join("stats.json"))["weights"], "ema.safetensors");
    let xa = Tensor::read_npy(ema_dir.join("samples.npy")).unwrap();
    let xb = Tensor::read_npy(raw_dir.join("samples.npy")).unwrap();
    assert_eq!(xa.dims(), &[2, 3, 8, 8]);
    assert!(
        max_abs_diff(&xa.to_dtype(candle_core::DType::F32).unwrap(), &xb.to_dtype(candle_core::DType::F32).unwrap())
            > 0.0
    );
}
