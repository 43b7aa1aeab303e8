//! Benchmark workloads: a seeded model on the CPU in f32, its inputs and one iteration to time.
//!
//! The peer benchmark runs the workloads named in [`PEER_WORKLOADS`] (see [`peer_workload`]);
//! `benches/peer/bench_torch.py` builds each of them in PyTorch under the same name:
//!
//! | name | what one iteration does |
//! |---|---|
//! | `mlp_forward_b10000` | the paper's residual MLP ([`cdm_models::Mlp`], defaults), forward on 10 000 rows |
//! | `mlp_train_b128`, `mlp_train_b1024` | one MSE training step: loss, backward, AdamW |
//! | `cdl_improved_b128_k128` | one `MSE + CDL(improved, K = 128, 128 instances)` step (32 896 rows) |
//! | `unet32_forward_b16` | the CIFAR-sized UNet ([`unet::cifar32`]), forward at batch 16 |
//! | `unet32_train_b16` | one MSE training step of that UNet at batch 16 |
//! | `unet28_train_b16` | one MSE training step of the MNIST-sized UNet ([`unet::mnist28`]) |
//!
//! A training step is what [`cdm_train::Trainer`] does at its core, without clipping, EMA or
//! logging: the objective's loss with the step's [`NoiseSource`] (host-side ChaCha8 random
//! numbers, drawn inside the step), `backward`, and an [`AdamW`] update with lr
//! [`LEARNING_RATE`] and PyTorch's defaults.

pub mod mlp;
pub mod unet;

use anyhow::{Result, bail};
use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use cdm_core::{Denoiser, NoiseSource};
use cdm_objectives::Objective;
use cdm_train::{AdamW, AdamWConfig};

/// The AdamW learning rate of every training workload.
pub const LEARNING_RATE: f64 = 1e-4;

/// The workloads of the peer benchmark, in the order they are run.
pub const PEER_WORKLOADS: [&str; 7] = [
    "mlp_forward_b10000",
    "mlp_train_b128",
    "mlp_train_b1024",
    "cdl_improved_b128_k128",
    "unet32_forward_b16",
    "unet32_train_b16",
    "unet28_train_b16",
];

/// Named loss values of one iteration (empty for forward passes).
pub type Losses = Vec<(String, f64)>;

/// A model with its inputs, and a closure that runs one iteration.
pub struct Workload {
    /// Trainable scalars of the model.
    pub parameters: usize,
    /// Rows passed through the network per iteration.
    pub rows: usize,
    iteration: Box<dyn FnMut() -> Result<Losses>>,
}

impl Workload {
    /// A workload whose iteration is `iteration`.
    pub fn new(parameters: usize, rows: usize, iteration: impl FnMut() -> Result<Losses> + 'static) -> Self {
        Self { parameters, rows, iteration: Box::new(iteration) }
    }

    /// Runs one iteration; training steps return their losses.
    pub fn run(&mut self) -> Result<Losses> {
        (self.iteration)()
    }
}

/// Builds the peer workload `name` (one of [`PEER_WORKLOADS`]).
pub fn peer_workload(name: &str) -> Result<Workload> {
    match name {
        "mlp_forward_b10000" => mlp::forward(10_000),
        "mlp_train_b128" => mlp::train(128, mlp::mse_only(), 0),
        "mlp_train_b1024" => mlp::train(1024, mlp::mse_only(), 0),
        "cdl_improved_b128_k128" => mlp::train(128, mlp::mse_plus_improved_cdl(128, 128)?, 2 * 128 * 128),
        "unet32_forward_b16" => unet::forward(&unet::cifar32(), 16),
        "unet32_train_b16" => unet::train(&unet::cifar32(), 16),
        "unet28_train_b16" => unet::train(&unet::mnist28(), 16),
        _ => bail!("unknown workload {name:?}; known: {}", PEER_WORKLOADS.join(", ")),
    }
}

/// Number of trainable scalars in `vars`.
pub fn parameter_count(vars: &VarMap) -> usize {
    vars.all_vars().iter().map(|v| v.elem_count()).sum()
}

/// The variables of `vars` with their names, sorted by name (the optimiser's order).
pub fn named_vars(vars: &VarMap) -> Vec<(String, Var)> {
    let data = vars.data().lock().expect("VarMap lock poisoned");
    let mut named: Vec<_> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// A deterministic f32 input of `shape`: element `i` is `(i·7919 mod 2001)/1000 − 1`, in [−1, 1].
pub fn deterministic_input(shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| ((i * 7919 % 2001) as f32 / 1000.0) - 1.0).collect();
    Ok(Tensor::from_vec(values, shape, &Device::Cpu)?)
}

/// One training step per call on the fixed batch `x`: `objective`'s loss with the noise of the
/// step, backward, AdamW. Returns the total loss and the objective's metrics.
fn training_step(
    denoiser: impl Denoiser + 'static,
    vars: &VarMap,
    objective: impl Objective + 'static,
    x: Tensor,
) -> Result<impl FnMut() -> Result<Losses> + 'static> {
    let mut optimizer = AdamW::new(named_vars(vars), AdamWConfig::default())?;
    let mut step = 0u64;
    Ok(move || {
        let out = objective.loss(&denoiser, &x, &NoiseSource::new(0).fork_index(step))?;
        let grads = out.loss.backward()?;
        optimizer.step(&grads, LEARNING_RATE)?;
        step += 1;
        let mut losses = vec![("loss".to_string(), out.loss.to_scalar::<f32>()? as f64)];
        for m in out.metrics {
            losses.push((m.name, m.value.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?));
        }
        Ok(losses)
    })
}
