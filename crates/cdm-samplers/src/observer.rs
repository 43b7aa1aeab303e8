//! Hooks into a running sampler: progress bars, trajectory capture, per-round residuals.
//!
//! Call sequence (k-diffusion's `callback`, split by driver):
//!
//! ```text
//! on_start(x_0)
//! Sequential:  on_step(j, x_{j+1})                        for j = 0 … S−1
//! ParaDiGMS:   on_round(round)                            once per Picard round
//!              on_step(j, x_{j+1})                        for the steps finished sequentially
//!                                                         after `max_rounds`
//! ```
//!
//! Every method has a no-op default, and `()` is the observer that ignores everything.

use std::ops::Range;

use candle_core::Tensor;

/// What one ParaDiGMS round did.
#[derive(Clone, Debug)]
pub struct Round<'a> {
    /// Round number, from 0.
    pub round: usize,
    /// The positions `lo..hi` whose step maps were evaluated (their outputs are `lo+1 ..= hi`).
    pub window: Range<usize>,
    /// The anchor of the next window, `lo + stride` (at most S); positions `0 ..= next_lo` are final.
    pub next_lo: usize,
    /// For each output position `lo + 1 + m`, the largest normalised error over the batch,
    /// `max_b ‖new − old‖²/(D·σ²)` (compared against τ²; the last position's 0·∞ is reported as 0).
    pub residuals: &'a [f64],
    /// The trajectory buffer, positions `0 ..= S`, after write-back and re-initialisation.
    pub trajectory: &'a [Tensor],
}

/// Receives a sampler's progress; every method defaults to doing nothing.
pub trait Observer {
    /// The initial state x_0 (B, …).
    fn on_start(&mut self, _x_init: &Tensor) {}

    /// Step `step` produced the state at position `step + 1`.
    fn on_step(&mut self, _step: usize, _x: &Tensor) {}

    /// A ParaDiGMS round finished.
    fn on_round(&mut self, _round: &Round<'_>) {}
}

impl Observer for () {}

/// The residuals of one recorded ParaDiGMS round.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundRecord {
    /// The evaluated positions `lo..hi`.
    pub window: Range<usize>,
    /// The next anchor `lo + stride`.
    pub next_lo: usize,
    /// Largest normalised error per output position (see [`Round::residuals`]).
    pub residuals: Vec<f64>,
}

/// Captures the trajectory x_0 … x_S (and, for ParaDiGMS, every round's residuals).
///
/// For ParaDiGMS the trajectory is the final content of the Picard buffer; tensors are shared,
/// not copied, so capturing costs one `Vec` of handles per round.
#[derive(Clone, Debug, Default)]
pub struct TrajectoryRecorder {
    /// States at positions 0 ..= S (filled as they become known).
    pub states: Vec<Tensor>,
    /// One record per ParaDiGMS round (empty for the sequential sampler).
    pub rounds: Vec<RoundRecord>,
}

impl Observer for TrajectoryRecorder {
    fn on_start(&mut self, x_init: &Tensor) {
        self.states.clear();
        self.rounds.clear();
        self.states.push(x_init.clone());
    }

    fn on_step(&mut self, step: usize, x: &Tensor) {
        self.states.truncate(step + 1);
        self.states.push(x.clone());
    }

    fn on_round(&mut self, round: &Round<'_>) {
        self.states = round.trajectory.to_vec();
        self.rounds.push(RoundRecord {
            window: round.window.clone(),
            next_lo: round.next_lo,
            residuals: round.residuals.to_vec(),
        });
    }
}
