//! `cdm sample --diffusers DIR` retraces diffusers' own pipelines.
//!
//! `fixtures/{ddim,ddpm}_pipeline/` were written by `scripts/make_diffusers_pipeline_fixture.py`
//! (diffusers 0.42.1, torch 2.15.0): `save_pretrained` directories of a tiny random UNet with a
//! default `DDIMScheduler`, and with a `DDPMScheduler` using `scaled_linear` β, `v_prediction`,
//! `fixed_large` variance and no clipping. Each `reference.safetensors` holds the pipeline's
//! noise (`init`, and DDPM's per-step `steps`) and its final sample `expected`; DDIM's also holds
//! `expected_f64`, the same loop with the UNet in float64.
//!
//! What is proved: from the same noise, our DDPM/DDIM step maps on the pipeline's own settings
//! give diffusers' samples up to f32 rounding — DDIM-10 with clipping amplifies rounding, and
//! diffusers' own f32 result lies 2.6e-4 from its f64 one, so there the bound is that we are no
//! farther from the f64 result than diffusers is — and ParaDiGMS with τ = 0 gives the sequential
//! sampler's result, to 1e-5 (DDPM) or within the same f32 rounding bound (DDIM).

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use common::{cdm, max_abs_diff, stderr};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Samples `pipeline` from its reference noise with `extra` options into `out`.
fn sample(pipeline: &str, out: &Path, extra: &[&str]) -> Tensor {
    let dir = fixture(pipeline);
    let noise = dir.join("reference.safetensors");
    let mut args = vec!["sample", "--diffusers", dir.to_str().unwrap(), "--noise", noise.to_str().unwrap()];
    args.extend_from_slice(&["--out", out.to_str().unwrap(), "--no-progress"]);
    args.extend_from_slice(extra);
    let o = cdm(&args);
    assert!(o.status.success(), "cdm {args:?}: {}", stderr(&o));
    assert!(out.join("samples.png").is_file() && out.join("stats.json").is_file());
    Tensor::read_npy(out.join("samples.npy")).unwrap().to_dtype(DType::F32).unwrap()
}

fn reference(pipeline: &str, name: &str) -> Tensor {
    let path = fixture(pipeline).join("reference.safetensors");
    candle_core::safetensors::load(path, &Device::Cpu).unwrap().remove(name).unwrap()
}

#[test]
fn ddim_pipeline_matches_diffusers_up_to_its_own_f32_rounding() {
    let tmp = tempfile::tempdir().unwrap();
    // the scheduler's family picks DDIM; its pipeline default is 50 steps, the fixture used 10
    let ours = sample("ddim_pipeline", &tmp.path().join("seq"), &["--steps", "10"]);
    let (expected, exact) = (reference("ddim_pipeline", "expected"), reference("ddim_pipeline", "expected_f64"));
    let exact = exact.to_dtype(DType::F32).unwrap();
    let (vs_diffusers, ours_vs_f64, diffusers_vs_f64) =
        (max_abs_diff(&ours, &expected), max_abs_diff(&ours, &exact), max_abs_diff(&expected, &exact));
    println!(
        "DDIM-10: max |ours − diffusers| = {vs_diffusers:e}, |ours − f64| = {ours_vs_f64:e}, \
         |diffusers − f64| = {diffusers_vs_f64:e}"
    );
    assert!(ours_vs_f64 <= diffusers_vs_f64, "{ours_vs_f64:e} > {diffusers_vs_f64:e}");
    assert!(vs_diffusers <= 2.0 * diffusers_vs_f64, "{vs_diffusers:e}");

    let parallel =
        sample("ddim_pipeline", &tmp.path().join("par"), &["--steps", "10", "--parallel", "--tolerance", "0"]);
    let gap = max_abs_diff(&parallel, &ours);
    println!("DDIM-10: max |ParaDiGMS τ=0 − sequential| = {gap:e}");
    // the telescoped sums of Picard round differently; this chain amplifies any f32 rounding
    assert!(gap <= diffusers_vs_f64, "ParaDiGMS with τ = 0 differs from sequential by {gap:e}");
}

#[test]
fn ddpm_pipeline_with_v_prediction_matches_diffusers_to_f32_rounding() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = sample("ddpm_pipeline", &tmp.path().join("seq"), &["--steps", "20"]);
    let expected = reference("ddpm_pipeline", "expected");
    let scale = expected.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let diff = max_abs_diff(&ours, &expected);
    println!("DDPM-20 (v-prediction, scaled_linear, fixed_large): max |ours − diffusers| = {diff:e} (max |x| {scale})");
    assert!(diff < 1e-5 * scale.max(1.0), "{diff:e}");

    let parallel =
        sample("ddpm_pipeline", &tmp.path().join("par"), &["--steps", "20", "--parallel", "--tolerance", "0"]);
    let gap = max_abs_diff(&parallel, &ours);
    println!("DDPM-20: max |ParaDiGMS τ=0 − sequential| = {gap:e}");
    assert!(gap < 1e-5 * scale.max(1.0), "ParaDiGMS with τ = 0 differs from sequential by {gap:e}");
}

#[test]
fn unsupported_scheduler_settings_name_the_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture("ddim_pipeline");
    for sub in ["scheduler", "unet"] {
        std::fs::create_dir_all(tmp.path().join(sub)).unwrap();
    }
    for file in ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors"] {
        std::fs::copy(src.join(file), tmp.path().join(file)).unwrap();
    }
    let config = std::fs::read_to_string(src.join("scheduler/scheduler_config.json")).unwrap();
    let config = config.replace("\"epsilon\"", "\"flow_prediction\"");
    std::fs::write(tmp.path().join("scheduler/scheduler_config.json"), config).unwrap();
    let o = cdm(&["sample", "--diffusers", tmp.path().to_str().unwrap(), "--n", "1", "--no-progress"]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("scheduler_config.json") && err.contains("prediction_type"), "{err}");
}
