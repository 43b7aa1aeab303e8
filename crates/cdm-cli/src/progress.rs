//! Progress bars for sampling.

use candle_core::Tensor;
use cdm_samplers::{Observer, Round};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows sequential steps, or the accepted prefix of a ParaDiGMS chain per round.
pub struct SamplingProgress {
    bar: ProgressBar,
}

impl SamplingProgress {
    /// A bar over `steps` positions, hidden when `show` is false.
    pub fn new(steps: usize, label: &str, show: bool) -> Self {
        let bar = if show { ProgressBar::new(steps as u64) } else { ProgressBar::hidden() };
        let style = ProgressStyle::with_template("{spinner} {msg} {bar:30} {pos}/{len} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(label.to_string());
        Self { bar }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for SamplingProgress {
    fn on_step(&mut self, step: usize, _x: &Tensor) {
        self.bar.set_position(step as u64 + 1);
    }

    fn on_round(&mut self, round: &Round<'_>) {
        self.bar.set_position(round.next_lo as u64);
    }
}
