//! Hooks into the training loop: the progress bar, `metrics.jsonl`, checkpoint retention.
//!
//! The loop owns what resume correctness depends on — the update, the schedule, writing
//! checkpoints atomically — and reports everything else as events to a [`TrainObserver`], so a
//! caller adds or drops a progress bar, a log writer or a pruning policy without touching the
//! loop (the sampler/observer split of `cdm-samplers`, and burn-train's learner/callback split).
//!
//! Aggregating per-step numbers into a [`LogRecord`] stays in the loop: every log consumer
//! wants the same window means, and the loop already knows when a window ends.

mod compose;
mod metrics_jsonl;
mod progress;
mod retention;
mod standard;

use std::path::Path;

pub use metrics_jsonl::MetricsJsonl;
pub use progress::TrainProgress;
pub use retention::CheckpointRetention;
pub use standard::StandardObservers;

use crate::{Result, TrainSummary};

/// Where a run begins.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunStart<'a> {
    /// Optimizer steps already done (the resumed checkpoint's step, else 0).
    pub step: u64,
    /// Optimizer steps of the whole run.
    pub total_steps: u64,
    /// The checkpoint the run resumed from, if any.
    pub resumed_from: Option<&'a Path>,
}

/// One optimizer step, as queued.
///
/// The step's loss and metrics are not here: they stay on the device until the loop reads a
/// whole window of them for its [`LogRecord`] (docs: the trainer's module), so that reporting a
/// step never waits for the device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepEnd {
    /// Optimizer steps completed, counting this one.
    pub step: u64,
    /// Learning rate the update used.
    pub lr: f64,
}

/// Means over the steps since the previous record: one line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord {
    /// Optimizer steps completed.
    pub step: u64,
    /// Mean loss of the window.
    pub loss: f64,
    /// Learning rate of the window's last step.
    pub lr: f64,
    /// Mean pre-clip gradient norm of the window.
    pub grad_norm: f64,
    /// Optimizer steps per second since this invocation started.
    pub it_per_s: f64,
    /// The objective's named metrics, window means, in first-seen order.
    pub metrics: Vec<(String, f64)>,
    /// Validation loss, when validation ran at this step.
    pub val_loss: Option<f64>,
}

/// Receives the training loop's events; every method defaults to doing nothing.
///
/// Call sequence of one run, `step` counting completed optimizer steps:
///
/// ```text
/// on_start(start)            once, after any resume
/// on_step(step)              after every optimizer step
/// on_validation(step, loss)  with a validation set, on log steps that are multiples of
///                            `validate_every`, and on the last step
/// on_log(record)             every `log_every` steps and on the last step
/// on_checkpoint(step, dir)   every `checkpoint_every` steps and on the last step
/// on_finish(summary)         once, after the last step
/// ```
///
/// Every method returns [`Result`]: an observer that fails (a
/// full disk under `metrics.jsonl`) stops the run at once with its error; checkpoints already
/// written stay valid for a resume. Observers compose: `()` ignores everything, and tuples,
/// `Vec`s, `Box`es and `&mut` references forward each event to their parts in order.
pub trait TrainObserver {
    /// The run starts at `start.step` (after restoring any checkpoint).
    fn on_start(&mut self, _start: &RunStart<'_>) -> Result<()> {
        Ok(())
    }

    /// An optimizer step was applied.
    fn on_step(&mut self, _step: &StepEnd) -> Result<()> {
        Ok(())
    }

    /// The validation loss (fixed noise, comparable across steps) after `step` steps.
    fn on_validation(&mut self, _step: u64, _loss: f64) -> Result<()> {
        Ok(())
    }

    /// A logging window closed.
    fn on_log(&mut self, _record: &LogRecord) -> Result<()> {
        Ok(())
    }

    /// A complete checkpoint of `step` steps was written to `dir`, and `latest` names it.
    fn on_checkpoint(&mut self, _step: u64, _dir: &Path) -> Result<()> {
        Ok(())
    }

    /// The run finished.
    fn on_finish(&mut self, _summary: &TrainSummary) -> Result<()> {
        Ok(())
    }
}
