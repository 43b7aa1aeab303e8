//! The observers [`Trainer::run`](crate::Trainer::run) uses: the progress bar, `metrics.jsonl`
//! and checkpoint retention, as the config asks.

use std::path::Path;

use super::compose::forward_events;
use super::{CheckpointRetention, LogRecord, MetricsJsonl, RunStart, StepEnd, TrainObserver, TrainProgress};
use crate::{Result, TrainConfig, TrainSummary};

/// A progress bar per [`TrainConfig::progress`], `metrics.jsonl` in the run directory, and
/// retention of [`TrainConfig::keep_checkpoints`] checkpoints, called in that order.
///
/// The fields are public so a caller can take the set apart; to add an observer, pair it with
/// the set, e.g. `(StandardObservers::new(&config, dir), recorder)`.
#[derive(Debug)]
pub struct StandardObservers {
    /// The progress bar.
    pub progress: TrainProgress,
    /// The `metrics.jsonl` writer.
    pub metrics: MetricsJsonl,
    /// The pruning of old checkpoints.
    pub retention: CheckpointRetention,
}

impl StandardObservers {
    /// The standard set for a run of `config` in `run_dir`.
    pub fn new(config: &TrainConfig, run_dir: &Path) -> Self {
        Self {
            progress: TrainProgress::new(config.progress),
            metrics: MetricsJsonl::new(run_dir.join("metrics.jsonl")),
            retention: CheckpointRetention::new(run_dir, config.keep_checkpoints),
        }
    }
}

impl TrainObserver for StandardObservers {
    forward_events!(self => [
        &mut self.progress as &mut dyn TrainObserver,
        &mut self.metrics,
        &mut self.retention,
    ]);
}
