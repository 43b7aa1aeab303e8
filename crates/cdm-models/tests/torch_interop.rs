//! PyTorch reads cdm's checkpoints: `scripts/torch_reader.py` against our own outputs.
//!
//! With a Python that can import torch and safetensors (`$CDM_PYTHON`, default `python3`), these
//! tests prove:
//!
//! - every point-model kind (`Mlp` with and without input Fourier features, `PlainMlp` with
//!   each activation), given seeded random weights (layer-norm scales and biases included) and
//!   saved by `cdm_models::checkpoint::save`, loads in the script by our parameter names with
//!   strict state-dict loading, and its ε̂(z, α) for log-SNRs from −10 to 10 equals ours to
//!   1e-5 of ε̂'s scale in f32;
//! - a run directory laid out as cdm writes it (`model.json`, `ema.safetensors`,
//!   `checkpoints/step-N/` from `cdm_train::checkpoint::save_checkpoint`) after three steps of
//!   `cdm_train::AdamW` and `cdm_train::Ema` loads too: the EMA weights give our EMA model's
//!   ε̂, torch autograd's parameter gradients equal our backward's, and `torch.optim.AdamW`
//!   restored from our moments and step count takes the same fourth step as ours (decoupled
//!   weight decay, bias corrections of step 4);
//! - with diffusers installed as well, a UNet saved by `checkpoint::save` loads in
//!   `UNet2DModel.from_pretrained` and gives our output.
//!
//! Without those modules a test prints one `skipped: …` line to stderr and passes (CI has no
//! torch). docs/interop.md describes the files and how to run this with a Python that has torch.

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use cdm_core::Denoiser;
use cdm_models::checkpoint::{self, CheckpointFiles};
use cdm_models::{Activation, MlpConfig, ModelConfig, PlainMlpConfig};
use cdm_train::checkpoint::{Checkpoint, TrainState, save_checkpoint, save_tensors};
use cdm_train::{AdamW, AdamWConfig, Ema};
use common::{named_vars, randn, tiny_unet};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/torch_reader.py");

/// Rows of the fixed inputs; their log-SNRs are spread evenly over [−10, 10].
const ROWS: usize = 9;

/// `$CDM_PYTHON` (default `python3`) if it can import every one of `modules`; otherwise prints
/// why the test is skipped.
fn python_with(modules: &str) -> Option<String> {
    let python = std::env::var("CDM_PYTHON").unwrap_or_else(|_| "python3".into());
    let imports = Command::new(&python).args(["-c", &format!("import {modules}")]).output();
    if imports.is_ok_and(|out| out.status.success()) {
        return Some(python);
    }
    eprintln!("skipped: `{python}` cannot `import {modules}`; set CDM_PYTHON to a Python that can (docs/interop.md)");
    None
}

/// Runs the reader with `args` and returns the tensors it wrote to `out`.
fn run_reader(python: &str, args: &[&dyn AsRef<OsStr>], out: &Path) -> HashMap<String, Tensor> {
    let output = Command::new(python).arg(SCRIPT).args(args).arg("--out").arg(out).output().unwrap();
    assert!(output.status.success(), "torch_reader.py failed:\n{}", String::from_utf8_lossy(&output.stderr));
    candle_core::safetensors::load(out, &Device::Cpu).unwrap()
}

/// Moves every parameter by N(0, 0.2²) from its seeded init, so that layer-norm scales and
/// biases (ones and zeros at init) matter too.
fn perturb(vars: &VarMap, seed: u64) {
    for (i, (_, var)) in named_vars(vars).into_iter().enumerate() {
        let noise = (randn(seed * 1000 + i as u64, var.dims(), DType::F32) * 0.2).unwrap();
        var.set(&(var.as_tensor() + noise).unwrap()).unwrap();
    }
}

/// `z` (ROWS, dim) and `log_snr` (ROWS,) from −10 to 10.
fn fixed_inputs(dim: usize, seed: u64) -> (Tensor, Tensor) {
    let z = (randn(seed, &[ROWS, dim], DType::F32) * 1.5).unwrap();
    let log_snr: Vec<f32> = (0..ROWS).map(|i| -10.0 + 20.0 * i as f32 / (ROWS - 1) as f32).collect();
    (z, Tensor::new(log_snr, &Device::Cpu).unwrap())
}

/// Asserts max |actual − expected| ≤ `tolerance`·max(1, max |expected|) and prints it.
fn assert_close(what: &str, actual: &Tensor, expected: &Tensor, tolerance: f64) {
    assert_eq!(actual.dims(), expected.dims(), "{what}: shapes");
    let max = |t: Tensor| t.abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
    let diff = max((actual - expected).unwrap());
    let scale = max(expected.clone()).max(1.0);
    println!("{what}: largest |difference| {diff:.2e} (scale {scale:.2})");
    assert!(diff <= tolerance * scale, "{what}: largest difference {diff:e} exceeds {tolerance:e} × {scale}");
}

/// Saves `config` with seeded random weights by cdm's checkpoint writer, and checks the
/// reader's ε̂ on the fixed inputs against ours.
fn check_point_model<C: ModelConfig>(python: &str, name: &str, config: &C, dim: usize, seed: u64)
where
    C::Model: Denoiser,
{
    let dir = tempfile::tempdir().unwrap();
    let (model, vars) = config.init(seed, DType::F32, &Device::Cpu).unwrap();
    perturb(&vars, seed);
    let files = CheckpointFiles::in_dir(dir.path());
    checkpoint::save(&files, config, &vars).unwrap();
    let (z, log_snr) = fixed_inputs(dim, seed + 1);
    let ours = model.eps(&z, &log_snr).unwrap();
    let inputs = dir.path().join("io.safetensors");
    candle_core::safetensors::save(&HashMap::from([("z", z), ("log_snr", log_snr)]), &inputs).unwrap();
    let args: [&dyn AsRef<OsStr>; 5] = [&"--checkpoint", &files.config, &files.weights, &"--inputs", &inputs];
    let theirs = run_reader(python, &args, &dir.path().join("out.safetensors"));
    assert_close(&format!("{name} ε̂"), &theirs["eps"], &ours, 1e-5);
}

#[test]
fn every_point_model_kind_gives_our_eps_in_torch() {
    let Some(python) = python_with("torch, safetensors") else { return };
    let paper = MlpConfig { d_model: 16, ..MlpConfig::default() };
    check_point_model(&python, "Mlp (paper layout)", &paper, 2, 1);
    let fourier =
        MlpConfig { dim: 3, d_model: 12, blocks: 3, log_snr_scale: 7.5, input_frequencies: 4, input_scale: 5.0 };
    check_point_model(&python, "Mlp (Fourier features)", &fourier, 3, 2);
    check_point_model(&python, "PlainMlp (paper, ReLU)", &PlainMlpConfig::default(), 1, 3);
    let silu = PlainMlpConfig {
        dim: 3,
        hidden: 10,
        linear_layers: 4,
        activation: Activation::Silu,
        embedding_dim: 6,
        log_snr_scale: 20.0,
    };
    check_point_model(&python, "PlainMlp (SiLU)", &silu, 3, 4);
    let gelu = PlainMlpConfig { dim: 2, hidden: 8, linear_layers: 2, activation: Activation::Gelu, ..silu };
    check_point_model(&python, "PlainMlp (GELU)", &gelu, 2, 5);
}

#[test]
fn a_run_directory_gives_our_ema_gradients_and_next_adamw_step_in_torch() {
    let Some(python) = python_with("torch, safetensors") else { return };
    let run = tempfile::tempdir().unwrap();
    let config = MlpConfig { dim: 2, d_model: 16, blocks: 2, input_frequencies: 3, ..MlpConfig::default() };
    let (model, vars) = config.init(7, DType::F32, &Device::Cpu).unwrap();
    perturb(&vars, 7);
    let params = named_vars(&vars);
    let (z, log_snr) = fixed_inputs(2, 8);
    let cotangent = randn(9, &[ROWS, 2], DType::F32);
    // the loss Σ ε̂ ⊙ c: its parameter gradients are the backward of ε̂ with cotangent c
    let gradients = || (model.eps(&z, &log_snr).unwrap() * &cotangent).unwrap().sum_all().unwrap().backward().unwrap();

    // three steps as the trainer takes them, then a checkpoint and the run's final files
    let adamw = AdamWConfig { weight_decay: 0.01, ..AdamWConfig::default() };
    let mut optimizer = AdamW::new(params.clone(), adamw).unwrap();
    let mut ema = Ema::new(&params, 0.9, true).unwrap();
    for lr in [0.01, 0.02, 0.03] {
        optimizer.step(&gradients(), lr).unwrap();
        ema.update(&params).unwrap();
    }
    let weights: HashMap<String, Tensor> =
        params.iter().map(|(n, v)| (n.clone(), v.as_tensor().copy().unwrap())).collect();
    let state = TrainState { step: 3, ema_updates: 3, seed: 0 };
    let ckpt = Checkpoint { model: weights, ema: ema.tensors(), optimizer: optimizer.state_tensors().unwrap(), state };
    let step_dir = save_checkpoint(run.path(), &ckpt).unwrap();
    save_tensors(&run.path().join("ema.safetensors"), &ckpt.ema).unwrap();
    // model.json as `cdm train` writes it: the config tagged with its kind
    let mut model_json = serde_json::to_value(&config).unwrap();
    model_json["kind"] = "mlp".into();
    std::fs::write(run.path().join("model.json"), serde_json::to_vec_pretty(&model_json).unwrap()).unwrap();

    // the EMA model's ε̂ from the run directory
    let (ema_model, ema_vars) = config.init(0, DType::F32, &Device::Cpu).unwrap();
    checkpoint::load_weights(&run.path().join("ema.safetensors"), &ema_vars).unwrap();
    let io = run.path().join("io.safetensors");
    candle_core::safetensors::save(&HashMap::from([("z", z.clone()), ("log_snr", log_snr.clone())]), &io).unwrap();
    let out = run.path().join("out.safetensors");
    let theirs = run_reader(&python, &[&"--checkpoint", &run.path(), &"--inputs", &io], &out);
    assert_close("EMA ε̂ from the run directory", &theirs["eps"], &ema_model.eps(&z, &log_snr).unwrap(), 1e-5);

    // step 4: our gradients, then our update; torch gets the same gradients and the step-3 state
    let eps = model.eps(&z, &log_snr).unwrap();
    let grads = gradients();
    let mut inputs =
        HashMap::from([("z".to_string(), z), ("log_snr".into(), log_snr), ("cotangent".into(), cotangent)]);
    for (name, var) in &params {
        inputs.insert(format!("grad.{name}"), grads.get(var).unwrap().clone());
    }
    candle_core::safetensors::save(&inputs, &io).unwrap();
    let lr = 0.01;
    optimizer.step(&grads, lr).unwrap();
    let hyper = [
        ("--lr", lr),
        ("--beta1", adamw.beta1),
        ("--beta2", adamw.beta2),
        ("--eps", adamw.eps),
        ("--weight-decay", adamw.weight_decay),
    ]
    .map(|(flag, value)| [flag.to_string(), value.to_string()]);
    let (model_json, step_weights) = (run.path().join("model.json"), step_dir.join("model.safetensors"));
    let mut args: Vec<&dyn AsRef<OsStr>> =
        vec![&"--checkpoint", &model_json, &step_weights, &"--inputs", &io, &"--optimizer", &step_dir];
    args.extend(hyper.iter().flatten().map(|s| s as &dyn AsRef<OsStr>));
    let theirs = run_reader(&python, &args, &out);
    assert_close("raw ε̂ at step 3", &theirs["eps"], &eps, 1e-5);
    for (name, var) in &params {
        assert_close(&format!("gradient of {name}"), &theirs[&format!("grad.{name}")], grads.get(var).unwrap(), 1e-5);
        assert_close(&format!("{name} after AdamW step 4"), &theirs[&format!("param.{name}")], var.as_tensor(), 1e-6);
    }
}

#[test]
fn a_saved_unet_loads_in_diffusers() {
    let Some(python) = python_with("torch, safetensors, diffusers") else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_unet(2, [8, 16], 4);
    let (unet, vars) = config.init(11, DType::F32, &Device::Cpu).unwrap();
    perturb(&vars, 11);
    checkpoint::save(&CheckpointFiles::in_dir(dir.path()), &config, &vars).unwrap();
    let sample = randn(12, &[2, 2, 8, 8], DType::F32);
    let timesteps = Tensor::new(&[3.5f32, 740.0], &Device::Cpu).unwrap();
    let ours = unet.forward(&sample, &timesteps, false).unwrap();
    let io = dir.path().join("io.safetensors");
    candle_core::safetensors::save(&HashMap::from([("sample", sample), ("timesteps", timesteps)]), &io).unwrap();
    let theirs =
        run_reader(&python, &[&"--diffusers", &dir.path(), &"--inputs", &io], &dir.path().join("out.safetensors"));
    assert_close("UNet2DModel.from_pretrained output", &theirs["sample"], &ours, 1e-4);
}
