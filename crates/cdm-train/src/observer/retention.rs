//! Keeping the newest few checkpoints.
//!
//! Writing checkpoints belongs to the loop (resume depends on them being complete and on
//! `latest`); deleting old ones is a disk-space policy, so it is an observer a caller can drop
//! to keep every checkpoint.

use std::path::{Path, PathBuf};

use super::TrainObserver;
use crate::Result;
use crate::checkpoint::prune_checkpoints;

/// After each checkpoint, removes all but the newest `keep` checkpoints of a run directory.
#[derive(Clone, Debug)]
pub struct CheckpointRetention {
    run_dir: PathBuf,
    keep: usize,
}

impl CheckpointRetention {
    /// Keeps the newest `keep` (at least one) checkpoints under the trainer's `run_dir`.
    pub fn new(run_dir: impl Into<PathBuf>, keep: usize) -> Self {
        Self { run_dir: run_dir.into(), keep }
    }
}

impl TrainObserver for CheckpointRetention {
    fn on_checkpoint(&mut self, _step: u64, _dir: &Path) -> Result<()> {
        prune_checkpoints(&self.run_dir, self.keep)
    }
}
