//! The training loop.
//!
//! One optimizer step `s`:
//!
//! 1. `lr(s)` from [`WarmupCosine`];
//! 2. for each of the `grad_accumulation` micro-batches `k`: draw the batch, evaluate the
//!    objective with the step's noise `NoiseSource::new(seed).fork_index(s).fork_index(k)`,
//!    back-propagate `loss/accumulation` and add up the gradients;
//! 3. global-norm clipping (the pre-clip norm is logged), AdamW update, EMA update;
//! 4. on schedule: validation, a [`LogRecord`] of the window's means, and an atomic checkpoint.
//!
//! **Nothing is read back per step.** The step's loss, gradient norm and the objective's
//! metrics stay on the device as scalar tensors; the loop reads the steps since the last read in
//! one transfer when it logs or checkpoints. On a GPU a step therefore queues its kernels and
//! returns without waiting for them.
//!
//! **Non-finite guard.** That read checks every pending step: the first NaN/∞ loss or gradient
//! norm stops the run with [`Error::NonFinite`] naming that step. The check runs before every
//! checkpoint, so no checkpoint ever holds a step after a non-finite one and `--resume` starts
//! from good weights; the variables in memory may have taken up to `log_every` bad updates.
//!
//! The loop keeps only what resume correctness depends on. What the run shows and records
//! besides checkpoints (the progress bar, `metrics.jsonl`) and which old checkpoints it deletes
//! are [`TrainObserver`]s fed with these events: [`Trainer::run`] uses the
//! [`StandardObservers`], [`Trainer::run_observed`] takes any set.
//!
//! Every random number is keyed by `(seed, step)`, and the checkpoint holds the weights, the
//! EMA, the AdamW moments and the step, so a run stopped and resumed is bit-identical to an
//! uninterrupted one on CPU.
//!
//! **Data parallel** ([`Trainer::distributed`], docs/distributed.md). Over `N` ranks of a
//! [`Collective`], rank `r` takes rows `[r·B/N, (r+1)·B/N)` of each global micro-batch, with
//! the noise streams of those global rows, and the gradients are all-reduced (mean) before
//! clipping and AdamW:
//!
//! ```text
//! ∇L = (1/N)·Σ_r ∇L_r,   L_r = (1/(B/N))·Σ_{b ∈ shard r} ℓ_b   ⇒   ∇L = ∇((1/B)·Σ_b ℓ_b)
//! ```
//!
//! so the step equals the one-process step up to the order of the f32 sums. Every rank then
//! applies the same update to the same weights; rank 0's weights are broadcast at the start
//! (after any resume), and every checkpoint compares a hash of all ranks' weights. Only rank 0
//! writes checkpoints and runs the standard observers. The logged loss and gradient norm are
//! means over the ranks; each metric is `Σ value·count / Σ count` over the micro-batches and
//! ranks ([`cdm_objectives::Metric`]), so a shard without CDL instances does not dilute it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{DType, Tensor, Var, backprop::GradStore};
use cdm_core::{Denoiser, NoiseSource};
use cdm_dist::{Collective, Shard, SingleProcess};
use cdm_objectives::Objective;

use crate::adamw::{AdamW, AdamWConfig};
use crate::checkpoint::{
    Checkpoint, TrainState, checkpoint_dir, latest_checkpoint, load_checkpoint, save_checkpoint, save_tensors,
};
use crate::clip::{clip_grad_norm, grad_norm};
use crate::ema::Ema;
use crate::lr::WarmupCosine;
use crate::observer::{LogRecord, RunStart, StandardObservers, StepEnd, TrainObserver};
use crate::{Error, Result};

/// Options of a training run.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub steps: u64,
    /// Rows per micro-batch.
    pub batch_size: usize,
    /// Micro-batches whose gradients are summed per step.
    pub grad_accumulation: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warmup steps.
    pub warmup_steps: u64,
    /// Final learning rate of the cosine, as a fraction of `lr`.
    pub min_lr_ratio: f64,
    /// AdamW hyper-parameters.
    pub adamw: AdamWConfig,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// EMA decay.
    pub ema_decay: f64,
    /// Use the EMA warm-up `min(decay, (1+n)/(10+n))`.
    pub ema_warmup: bool,
    /// Seed of every random number in the run.
    pub seed: u64,
    /// Log metrics every this many steps.
    pub log_every: u64,
    /// Validate every this many steps (0: never).
    pub validate_every: u64,
    /// Checkpoint every this many steps (and at the end).
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk (by the standard [`CheckpointRetention`](crate::CheckpointRetention)).
    pub keep_checkpoints: usize,
    /// Show a progress bar (the standard [`TrainProgress`](crate::TrainProgress)).
    pub progress: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch_size: 128,
            grad_accumulation: 1,
            lr: 1e-3,
            warmup_steps: 100,
            min_lr_ratio: 0.1,
            adamw: AdamWConfig { weight_decay: 0.0, ..Default::default() },
            grad_clip: Some(1.0),
            ema_decay: 0.999,
            ema_warmup: true,
            seed: 0,
            log_every: 10,
            validate_every: 250,
            checkpoint_every: 500,
            keep_checkpoints: 2,
            progress: true,
        }
    }
}

impl TrainConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("steps", self.steps as f64),
            ("batch_size", self.batch_size as f64),
            ("grad_accumulation", self.grad_accumulation as f64),
            ("log_every", self.log_every as f64),
            ("checkpoint_every", self.checkpoint_every as f64),
            ("keep_checkpoints", self.keep_checkpoints as f64),
        ];
        for (field, v) in positive {
            if v < 1.0 {
                return Err(Error::invalid(field, v, "must be at least 1"));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::invalid("lr", self.lr, "must be positive and finite"));
        }
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return Err(Error::invalid("min_lr_ratio", self.min_lr_ratio, "must lie in [0, 1]"));
        }
        if let Some(c) = self.grad_clip.filter(|c| !(*c > 0.0 && c.is_finite())) {
            return Err(Error::invalid("grad_clip", c, "must be positive and finite"));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(Error::invalid("ema_decay", self.ema_decay, "must lie in [0, 1)"));
        }
        let a = self.adamw;
        if !((0.0..1.0).contains(&a.beta1) && (0.0..1.0).contains(&a.beta2) && a.eps > 0.0 && a.weight_decay >= 0.0) {
            return Err(Error::invalid("adamw", format!("{a:?}"), "need betas in [0, 1), eps > 0, weight_decay >= 0"));
        }
        Ok(())
    }

    fn schedule(&self) -> WarmupCosine {
        WarmupCosine {
            lr: self.lr,
            warmup_steps: self.warmup_steps,
            total_steps: self.steps,
            min_ratio: self.min_lr_ratio,
        }
    }
}

/// Where training batches come from.
pub trait BatchSource {
    /// The clean batch for optimizer step `step`, micro-batch `micro` (reproducible from both).
    fn batch(&mut self, step: u64, micro: usize) -> Result<Tensor>;
}

impl<F: FnMut(u64, usize) -> Result<Tensor>> BatchSource for F {
    fn batch(&mut self, step: u64, micro: usize) -> Result<Tensor> {
        self(step, micro)
    }
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// Steps completed in total (including those before a resume).
    pub steps: u64,
    /// Step at which this invocation started (non-zero after a resume).
    pub resumed_from: u64,
    /// Mean loss of the last logging window.
    pub final_loss: f64,
    /// Wall time of this invocation.
    pub wall: Duration,
    /// The last checkpoint written.
    pub last_checkpoint: PathBuf,
}

/// Trains the variables behind a denoiser on an objective, writing into a run directory.
pub struct Trainer<'a> {
    config: TrainConfig,
    params: Vec<(String, Var)>,
    denoiser: &'a dyn Denoiser,
    objective: &'a dyn Objective,
    run_dir: PathBuf,
    world: &'a dyn Collective,
}

impl<'a> Trainer<'a> {
    /// A trainer for `params` (name, var) — the variables `denoiser` computes with.
    pub fn new(
        config: TrainConfig,
        mut params: Vec<(String, Var)>,
        denoiser: &'a dyn Denoiser,
        objective: &'a dyn Objective,
        run_dir: impl Into<PathBuf>,
    ) -> Result<Self> {
        config.validate()?;
        if params.is_empty() {
            return Err(Error::invalid("params", 0, "nothing to train"));
        }
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let run_dir = run_dir.into();
        fs::create_dir_all(&run_dir).map_err(Error::io(&run_dir))?;
        Ok(Self { config, params, denoiser, objective, run_dir, world: &SingleProcess })
    }

    /// Trains data-parallel over the ranks of `world` (see the module doc); every rank builds
    /// the same trainer and calls [`run`](Self::run) or [`run_observed`](Self::run_observed).
    ///
    /// # Errors
    /// `batch_size` not a multiple of the world size.
    pub fn distributed(mut self, world: &'a dyn Collective) -> Result<Self> {
        Shard::of(self.config.batch_size, world)?;
        self.world = world;
        Ok(self)
    }

    /// Runs to `config.steps`, resuming from the run directory's latest checkpoint if `resume`,
    /// with the [`StandardObservers`] (progress bar, `metrics.jsonl`, checkpoint retention) on
    /// rank 0 and none on the other ranks.
    pub fn run(
        &self,
        batches: &mut dyn BatchSource,
        validation: Option<&Tensor>,
        resume: bool,
    ) -> Result<TrainSummary> {
        if !self.world.is_root() {
            return self.run_observed(batches, validation, resume, &mut ());
        }
        let mut observers = StandardObservers::new(&self.config, &self.run_dir);
        self.run_observed(batches, validation, resume, &mut observers)
    }

    /// [`run`](Self::run) reporting to `observer` instead of the standard set; an observer's
    /// error stops the run with that error.
    pub fn run_observed(
        &self,
        batches: &mut dyn BatchSource,
        validation: Option<&Tensor>,
        resume: bool,
        observer: &mut dyn TrainObserver,
    ) -> Result<TrainSummary> {
        let cfg = &self.config;
        self.broadcast_weights()?;
        let mut opt = AdamW::new(self.params.clone(), cfg.adamw)?;
        let mut ema = Ema::new(&self.params, cfg.ema_decay, cfg.ema_warmup)?;
        let mut start = 0;
        let mut last_checkpoint = None;
        if resume && let Some(dir) = latest_checkpoint(&self.run_dir)? {
            let device = self.params[0].1.device().clone();
            let ckpt = load_checkpoint(&dir, &device)?;
            self.restore_weights(&ckpt.model, &dir)?;
            opt.load_state(&ckpt.optimizer, ckpt.state.step, &dir)?;
            ema.load(&ckpt.ema, ckpt.state.ema_updates, &dir)?;
            start = ckpt.state.step;
            tracing::info!(step = start, checkpoint = %dir.display(), "resumed");
            last_checkpoint = Some(dir);
        }
        observer.on_start(&RunStart {
            step: start,
            total_steps: cfg.steps,
            resumed_from: last_checkpoint.as_deref(),
        })?;
        let root_noise = NoiseSource::new(cfg.seed);
        let schedule = cfg.schedule();
        let began = Instant::now();
        let mut window = Window::default();
        let mut final_loss = f64::NAN;
        for step in start..cfg.steps {
            let lr = schedule.at(step);
            let StepOutcome { loss, mut grads, metrics } = self.accumulate(batches, &root_noise, step)?;
            let grad_norm = match cfg.grad_clip {
                Some(max_norm) => clip_grad_norm(&mut grads, &self.params, max_norm)?,
                None => grad_norm(&grads, &self.params)?,
            };
            opt.step(&grads, lr)?;
            ema.update(&self.params)?;
            let done = step + 1;
            observer.on_step(&StepEnd { step: done, lr })?;
            window.push(PendingStep { step, loss, grad_norm, metrics });
            let log_now = done % cfg.log_every == 0 || done == cfg.steps;
            let checkpoint_now = done % cfg.checkpoint_every == 0 || done == cfg.steps;
            if log_now || checkpoint_now {
                window.settle(self.world, &last_checkpoint)?;
            }
            if log_now {
                let it_per_s = (done - start) as f64 / began.elapsed().as_secs_f64().max(1e-9);
                let validate_now = cfg.validate_every > 0 && (done % cfg.validate_every == 0 || done == cfg.steps);
                let val_loss = validation.filter(|_| validate_now).map(|v| self.validation_loss(v)).transpose()?;
                if let Some(v) = val_loss {
                    if !v.is_finite() {
                        // training goes on (its own loss is finite), but the log must say so
                        tracing::warn!(step = done, val_loss = v, "validation loss is not finite");
                    }
                    observer.on_validation(done, v)?;
                }
                let record = window.drain(done, lr, it_per_s, val_loss);
                final_loss = record.loss;
                observer.on_log(&record)?;
            }
            if checkpoint_now {
                let dir = self.write_checkpoint(&opt, &ema, done)?;
                last_checkpoint = Some(dir.clone());
                observer.on_checkpoint(done, &dir)?;
            }
        }
        let last_checkpoint =
            last_checkpoint.ok_or_else(|| Error::checkpoint(&self.run_dir, "no checkpoint: nothing left to train"))?;
        let summary =
            TrainSummary { steps: cfg.steps, resumed_from: start, final_loss, wall: began.elapsed(), last_checkpoint };
        observer.on_finish(&summary)?;
        Ok(summary)
    }

    /// Makes every rank start from rank 0's weights.
    fn broadcast_weights(&self) -> Result<()> {
        if self.world.world_size() > 1 {
            for (_, var) in &self.params {
                var.set(&self.world.broadcast(var.as_tensor(), 0)?)?;
            }
        }
        Ok(())
    }

    /// Stops with [`Error::Diverged`] unless every rank holds the same weights.
    fn check_replicas(&self, step: u64) -> Result<()> {
        if self.world.world_size() == 1 {
            return Ok(());
        }
        let mine = Tensor::new(&weights_hash(&self.params)?, &candle_core::Device::Cpu)?.unsqueeze(0)?;
        let all = self.world.all_gather(&mine)?.to_device(&candle_core::Device::Cpu)?.to_vec2::<f64>()?;
        match all.iter().position(|h| *h != all[0]) {
            Some(rank) => Err(Error::Diverged { step, rank }),
            None => Ok(()),
        }
    }

    /// Writes the checkpoint of `step` steps (and, at the last step, the run's final weights)
    /// on rank 0; every rank returns its directory.
    fn write_checkpoint(&self, opt: &AdamW, ema: &Ema, step: u64) -> Result<PathBuf> {
        self.check_replicas(step)?;
        if !self.world.is_root() {
            return Ok(checkpoint_dir(&self.run_dir, step));
        }
        let cfg = &self.config;
        let ckpt = Checkpoint {
            model: self.params.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect(),
            ema: ema.tensors(),
            optimizer: opt.state_tensors()?,
            state: TrainState { step, ema_updates: ema.updates(), seed: cfg.seed },
        };
        let dir = save_checkpoint(&self.run_dir, &ckpt)?;
        tracing::debug!(step, checkpoint = %dir.display(), "checkpoint written");
        if step == cfg.steps {
            save_tensors(&self.run_dir.join("model.safetensors"), &ckpt.model)?;
            save_tensors(&self.run_dir.join("ema.safetensors"), &ckpt.ema)?;
        }
        Ok(dir)
    }

    /// Loss, summed gradients and named metrics of one optimizer step, on the device.
    fn accumulate(&self, batches: &mut dyn BatchSource, root: &NoiseSource, step: u64) -> Result<StepOutcome> {
        let n = self.config.grad_accumulation;
        let mut total: Option<GradStore> = None;
        let mut loss_sum: Option<Tensor> = None;
        let mut named: Vec<StepMetric> = Vec::new();
        for micro in 0..n {
            let x = batches.batch(step, micro)?;
            let shard = Shard::of(x.dim(0)?, self.world)?;
            let x = x.narrow(0, shard.start, shard.len)?;
            let noise = root.fork_index(step).fork_index(micro as u64).with_offset(shard.start as u64);
            let out = self.objective.loss(self.denoiser, &x, &noise)?;
            let grads = (&out.loss / n as f64)?.backward()?;
            loss_sum = Some(add_into(loss_sum, out.loss.detach())?);
            for m in out.metrics {
                // a part with no items adds nothing, whatever its value (0·NaN would be NaN)
                let weighted = match m.count {
                    0 => m.value.zeros_like()?,
                    count => (m.value * count as f64)?,
                };
                match named.iter_mut().find(|acc| acc.name == m.name) {
                    Some(acc) => {
                        acc.weighted = (&acc.weighted + weighted)?;
                        acc.count += m.count;
                    }
                    None => named.push(StepMetric { name: m.name, weighted, count: m.count }),
                }
            }
            total = Some(match total {
                None => grads,
                Some(mut acc) => {
                    for (_, var) in &self.params {
                        if let Some(g) = grads.get(var.as_tensor()) {
                            let sum = match acc.remove(var.as_tensor()) {
                                Some(prev) => (prev + g)?,
                                None => g.clone(),
                            };
                            acc.insert(var.as_tensor(), sum);
                        }
                    }
                    acc
                }
            });
        }
        let mean = |t: Tensor| t.affine(1.0 / n as f64, 0.0);
        let mut grads = total.expect("at least one micro-batch");
        self.all_reduce_gradients(&mut grads)?;
        Ok(StepOutcome { loss: mean(loss_sum.expect("at least one micro-batch"))?, grads, metrics: named })
    }

    /// Replaces every rank's gradients with their mean over the ranks, in one collective call
    /// on the flattened gradients.
    fn all_reduce_gradients(&self, grads: &mut GradStore) -> Result<()> {
        if self.world.world_size() == 1 {
            return Ok(());
        }
        let present: Vec<&Var> =
            self.params.iter().map(|(_, v)| v).filter(|v| grads.get(v.as_tensor()).is_some()).collect();
        let flat = present
            .iter()
            .map(|v| grads.get(v.as_tensor()).expect("present").flatten_all())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mean = self.world.all_reduce_mean(&Tensor::cat(&flat, 0)?)?;
        let mut at = 0;
        for v in present {
            let len = v.elem_count();
            grads.insert(v.as_tensor(), mean.narrow(0, at, len)?.reshape(v.shape())?);
            at += len;
        }
        Ok(())
    }

    /// The objective on the validation set with fixed noise (comparable across steps).
    fn validation_loss(&self, x: &Tensor) -> Result<f64> {
        let noise = NoiseSource::new(self.config.seed).fork("validation");
        let out = self.objective.loss(self.denoiser, x, &noise)?;
        Ok(out.loss.to_dtype(DType::F64)?.to_scalar::<f64>()?)
    }

    fn restore_weights(&self, tensors: &std::collections::HashMap<String, Tensor>, path: &Path) -> Result<()> {
        for (name, var) in &self.params {
            let t = tensors.get(name).ok_or_else(|| Error::checkpoint(path, format!("missing tensor {name}")))?;
            if t.dims() != var.dims() {
                return Err(Error::checkpoint(
                    path,
                    format!("{name}: expected {:?}, found {:?}", var.dims(), t.dims()),
                ));
            }
            var.set(&t.to_dtype(var.dtype())?)?;
        }
        Ok(())
    }
}

/// Mean loss, summed gradients and the metrics of one optimizer step.
struct StepOutcome {
    loss: Tensor,
    grads: GradStore,
    metrics: Vec<StepMetric>,
}

/// A metric of one step on this rank: `Σ value·count` over the micro-batches (on the device)
/// and `Σ count`; the logged mean is the ratio of their sums over the ranks.
struct StepMetric {
    name: String,
    weighted: Tensor,
    count: usize,
}

/// `acc + t`, or `t` for the first term.
fn add_into(acc: Option<Tensor>, t: Tensor) -> candle_core::Result<Tensor> {
    match acc {
        None => Ok(t),
        Some(acc) => acc + t,
    }
}

/// One applied step whose numbers are still on the device.
struct PendingStep {
    /// The step's index (0-based, as in [`Error::NonFinite`]).
    step: u64,
    loss: Tensor,
    grad_norm: Tensor,
    metrics: Vec<StepMetric>,
}

/// The steps between two log lines: pending on the device, then running sums on the host.
#[derive(Default)]
struct Window {
    pending: Vec<PendingStep>,
    steps: u64,
    loss: f64,
    grad_norm: f64,
    /// Per metric: the sum of its step means and the number of steps that measured it.
    named: Vec<(String, f64, u64)>,
}

impl Window {
    fn push(&mut self, step: PendingStep) {
        self.pending.push(step);
    }

    /// Reads the pending steps (loss and gradient norm as means over the ranks, metrics as
    /// count-weighted means) in one transfer and adds them to the sums; the first step with a
    /// non-finite loss or gradient norm is an [`Error::NonFinite`].
    fn settle(&mut self, world: &dyn Collective, last_checkpoint: &Option<PathBuf>) -> Result<()> {
        let Some(first) = self.pending.first() else { return Ok(()) };
        let (dtype, device) = (first.loss.dtype(), first.loss.device().clone());
        let scalars = self
            .pending
            .iter()
            .flat_map(|p| [&p.loss, &p.grad_norm].into_iter().chain(p.metrics.iter().map(|m| &m.weighted)))
            .map(|t| t.to_dtype(dtype))
            .collect::<candle_core::Result<Vec<_>>>()?;
        // item counts as f32 (exact up to 2²⁴; Metal has no f64)
        let counts: Vec<f32> = self.pending.iter().flat_map(|p| p.metrics.iter().map(|m| m.count as f32)).collect();
        let counts = Tensor::new(counts.as_slice(), &device)?;
        let sums = world.all_reduce_sum(&Tensor::cat(&[Tensor::stack(&scalars, 0)?, counts.to_dtype(dtype)?], 0)?)?;
        let host = sums.to_device(&candle_core::Device::Cpu)?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let (scalars, counts) = host.split_at(scalars.len());
        let (mut values, mut counts) = (scalars.iter().copied(), counts.iter().copied());
        let ranks = world.world_size() as f64;
        for p in std::mem::take(&mut self.pending) {
            let (loss, grad_norm) =
                (values.next().unwrap_or(f64::NAN) / ranks, values.next().unwrap_or(f64::NAN) / ranks);
            let guard = |what| Error::NonFinite { step: p.step, what, last_checkpoint: last_checkpoint.clone() };
            if !loss.is_finite() {
                return Err(guard("loss"));
            }
            if !grad_norm.is_finite() {
                return Err(guard("gradient"));
            }
            self.steps += 1;
            self.loss += loss;
            self.grad_norm += grad_norm;
            for m in &p.metrics {
                let (weighted, count) = (values.next().unwrap_or(f64::NAN), counts.next().unwrap_or(0.0));
                let (sum, measured) = if count > 0.0 { (weighted / count, 1) } else { (0.0, 0) };
                match self.named.iter_mut().find(|(name, ..)| *name == m.name) {
                    Some((_, acc, n)) => {
                        *acc += sum;
                        *n += measured;
                    }
                    None => self.named.push((m.name.clone(), sum, measured)),
                }
            }
        }
        Ok(())
    }

    /// The window's record at `step`, which starts the next window; call after [`settle`](Self::settle).
    fn drain(&mut self, step: u64, lr: f64, it_per_s: f64, val_loss: Option<f64>) -> LogRecord {
        let n = self.steps.max(1) as f64;
        let record = LogRecord {
            step,
            loss: self.loss / n,
            lr,
            grad_norm: self.grad_norm / n,
            it_per_s,
            metrics: self.named.iter().filter(|(.., n)| *n > 0).map(|(k, v, n)| (k.clone(), v / *n as f64)).collect(),
            val_loss,
        };
        *self = Window::default();
        record
    }
}

/// FNV-1a over the bits of every weight, in name order, as four exact 16-bit pieces.
fn weights_hash(params: &[(String, Var)]) -> Result<[f64; 4]> {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (_, var) in params {
        let values = var.as_tensor().flatten_all()?.to_dtype(DType::F64)?.to_device(&candle_core::Device::Cpu)?;
        for v in values.to_vec1::<f64>()? {
            h = (h ^ v.to_bits()).wrapping_mul(0x0100_0000_01b3);
        }
    }
    Ok([0, 16, 32, 48].map(|shift| ((h >> shift) & 0xffff) as f64))
}
