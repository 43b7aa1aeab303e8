//! # cdm-train
//!
//! A training loop for candle diffusion models that users can trust:
//!
//! - [`AdamW`] with saveable moments (candle's keeps them private), [`WarmupCosine`] learning
//!   rate, global-norm [`clip_grad_norm`] (the pre-clip norm is logged), gradient accumulation;
//! - [`Ema`] weights for sampling;
//! - no host read-back per step: losses, gradient norms and metrics stay on the device until
//!   they are logged;
//! - a non-finite guard: a NaN/∞ loss or gradient stops the run with a typed error naming the
//!   step, checked before every checkpoint so the last checkpoint is always good;
//! - atomic checkpoints ([`checkpoint`]) and bit-identical resume;
//! - `metrics.jsonl`, an indicatif progress bar and `tracing` logs.
//!
//! The loop sees only a [`cdm_core::Denoiser`], its named variables and a
//! [`cdm_objectives::Objective`]. What it shows and writes besides checkpoints — the progress
//! bar ([`TrainProgress`]), `metrics.jsonl` ([`MetricsJsonl`]), deleting old checkpoints
//! ([`CheckpointRetention`]) — are [`TrainObserver`]s of its events: [`Trainer::run`] uses the
//! [`StandardObservers`], [`Trainer::run_observed`] any set (tuples and `Vec`s compose).
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use cdm_core::Denoiser;
//! use cdm_objectives::Mse;
//! use cdm_train::{TrainConfig, Trainer};
//!
//! // ε̂(z, α) = w·z: the best w for N(0, 4) data averaged over timesteps is learnt in a few steps.
//! struct Scale(Var);
//! impl Denoiser for Scale {
//!     fn eps(&self, z: &Tensor, _log_snr: &Tensor) -> cdm_core::Result<Tensor> {
//!         Ok(z.broadcast_mul(self.0.as_tensor())?)
//!     }
//! }
//! let w = Var::new(&[0.0f32], &Device::Cpu)?;
//! let model = Scale(w.clone());
//! let objective = Mse::new(cdm_core::DiscreteSchedule::ddpm());
//! let config = TrainConfig { steps: 20, batch_size: 64, lr: 0.05, warmup_steps: 0, progress: false, ..Default::default() };
//! let run = std::env::temp_dir().join(format!("cdm-train-doc-{}", std::process::id()));
//! let trainer = Trainer::new(config, vec![("w".into(), w.clone())], &model, &objective, &run)?;
//! let data = cdm_core::NoiseSource::new(1);
//! let mut batches = |step: u64, _micro: usize| {
//!     let x = data.fork_index(step).streams(0, 64).normal(&[1], candle_core::DType::F32, &Device::Cpu)?;
//!     Ok((x * 2.0)?)
//! };
//! let summary = trainer.run(&mut batches, None, false)?;
//! assert_eq!(summary.steps, 20);
//! assert!(w.as_tensor().to_vec1::<f32>()?[0] > 0.1);
//! # std::fs::remove_dir_all(&run).ok();
//! # Ok::<(), cdm_train::Error>(())
//! ```

mod adamw;
pub mod checkpoint;
mod clip;
mod ema;
mod error;
mod lr;
mod observer;
mod trainer;

pub use adamw::{AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, grad_norm};
pub use ema::Ema;
pub use error::{Error, Result};
pub use lr::WarmupCosine;
pub use observer::{
    CheckpointRetention, LogRecord, MetricsJsonl, RunStart, StandardObservers, StepEnd, TrainObserver, TrainProgress,
};
pub use trainer::{BatchSource, TrainConfig, TrainSummary, Trainer};
