//! The terminal progress bar of a training run (indicatif).

use indicatif::{ProgressBar, ProgressStyle};

use super::{LogRecord, RunStart, StepEnd, TrainObserver};
use crate::{Result, TrainSummary};

/// Steps done out of the run's total, the last logged loss, rate and ETA; cleared at the end.
///
/// indicatif draws nothing when stderr is not a terminal.
#[derive(Debug)]
pub struct TrainProgress {
    bar: ProgressBar,
}

impl TrainProgress {
    /// A bar sized when the run starts, hidden when `show` is false.
    pub fn new(show: bool) -> Self {
        let bar = if show { ProgressBar::no_length() } else { ProgressBar::hidden() };
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Self { bar }
    }
}

impl TrainObserver for TrainProgress {
    fn on_start(&mut self, start: &RunStart<'_>) -> Result<()> {
        self.bar.set_length(start.total_steps);
        self.bar.set_position(start.step);
        Ok(())
    }

    fn on_step(&mut self, step: &StepEnd) -> Result<()> {
        self.bar.set_position(step.step);
        Ok(())
    }

    fn on_log(&mut self, record: &LogRecord) -> Result<()> {
        self.bar.set_message(format!("loss {:.4}", record.loss));
        Ok(())
    }

    fn on_finish(&mut self, _summary: &TrainSummary) -> Result<()> {
        self.bar.finish_and_clear();
        Ok(())
    }
}
