//! Choosing the ParaDiGMS window for a batch from the denoiser's cost per call
//! (`docs/samplers.md` §8.8).
//!
//! A call on `r` rows costs `c(r)` seconds. On a CPU `c` is flat while per-call overhead
//! dominates and grows linearly once the rows fill the cores, so ParaDiGMS wins on latency at
//! small batches and loses at large ones. With `S` steps, `e` evaluations per step and a batch
//! of `n` rows, the expected wall times are
//!
//! ```text
//! sequential:  T_seq = S · e · c(n)
//! window p:    T(p)  = R(p) · e · c(n·p),      R(p) = min(S, ⌈a·S/p + S/s∞⌉)
//! ```
//!
//! `R(p)` is a fit of ParaDiGMS' rounds: a window advances by about `p/a` positions per round
//! while it is short, and by at most `s∞` — how far one round's Picard sweep stays within the
//! tolerance — however long it is. On trained Dino MLPs with DDPM-1000 and τ = 0.1 the rounds
//! were 226–241, 78–91, 33–43 and 25–35 for p = 8, 32, 128, 1000 (`docs/benchmarks.md`), which
//! `a = 1.8`, `s∞ = 38` reproduce within 25 %. The choice is the `p` among 2, 4, 8, …, S that
//! minimises `T(p)`, or sequential sampling unless a window is predicted to be at least
//! [`MIN_GAIN`] times faster. `T(p)` falls while calls are overhead-bound and rises once they
//! are row-bound, so the search stops once two windows in a row predict no gain over the best
//! so far *and* a call costs [`ROW_BOUND`] times the batch's own — real cost curves have steps
//! (a thread pool joining at a few rows) that a rule on `T` alone would stop at. The cost curve
//! is thus measured only a little past the best window; for a row-bound denoiser, at `2n` and
//! `4n` rows only.

use crate::Result;

/// `a`: positions a short window needs per accepted position.
pub const STRIDE_OVERHEAD: f64 = 1.8;
/// `s∞`: the most positions one round accepts, whatever the window.
pub const MAX_STRIDE: f64 = 38.0;
/// The predicted speed-up a window must reach to be chosen over sequential sampling.
pub const MIN_GAIN: f64 = 1.2;
/// How many times the batch's own call a call must cost before the search may stop.
pub const ROW_BOUND: f64 = 4.0;

/// Predicted rounds `R(p)` of ParaDiGMS with window `p` on `steps` steps.
pub fn predicted_rounds(steps: usize, window: usize) -> f64 {
    let s = steps as f64;
    (STRIDE_OVERHEAD * s / window as f64 + s / MAX_STRIDE).ceil().min(s)
}

/// The window with the least predicted wall time for `batch` rows, or `None` for sequential
/// sampling; `cost(rows)` measures the seconds of one denoiser call on `rows` rows.
pub fn choose_window<E>(
    steps: usize,
    batch: usize,
    mut cost: impl FnMut(usize) -> Result<f64, E>,
) -> Result<Option<usize>, E> {
    let own = cost(batch)?;
    let (mut best, mut choice, mut worse) = (steps as f64 * own / MIN_GAIN, None, 0);
    let candidates = std::iter::successors(Some(2usize), |p| (*p < steps).then(|| (2 * p).min(steps)));
    for p in candidates {
        let per_call = cost(batch * p)?;
        let time = predicted_rounds(steps, p) * per_call;
        if time < best {
            (best, choice, worse) = (time, Some(p), 0);
        } else {
            worse += 1;
            if worse >= 2 && per_call >= ROW_BOUND * own {
                break;
            }
        }
    }
    Ok(choice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_fit_the_measured_dino_rounds() {
        for (p, measured) in [(8, 226.0), (32, 78.0), (128, 33.0), (1000, 25.0)] {
            let r = predicted_rounds(1000, p);
            assert!((r / measured - 1.0).abs() < 0.3, "p = {p}: predicted {r}, measured {measured}");
        }
        assert_eq!(predicted_rounds(10, 1), 10.0, "never more rounds than steps");
    }

    /// `c(r) = overhead + r·per_row`: flat, then linear.
    fn affine(overhead: f64, per_row: f64) -> impl FnMut(usize) -> Result<f64> {
        move |rows| Ok(overhead + rows as f64 * per_row)
    }

    #[test]
    fn overhead_bound_calls_take_a_window_and_row_bound_calls_do_not() {
        // overhead 1 ms, 1 µs per row: one row is all overhead, 1000 rows cost 2 ms
        let window = choose_window(1000, 1, affine(1e-3, 1e-6)).unwrap();
        let p = window.expect("a window at n = 1");
        // T(p) = R(p)·(1 ms + p µs): minimal near p = 64–256, 10–14× faster than sequential
        assert!((64..=256).contains(&p), "chose p = {p}");
        assert_eq!(choose_window(1000, 1024, affine(1e-3, 1e-6)).unwrap(), None, "rows dominate: sequential");
        // no overhead at all: every window costs more evaluations for nothing
        assert_eq!(choose_window(1000, 1, affine(0.0, 1e-6)).unwrap(), None);
    }

    #[test]
    fn a_step_in_the_cost_curve_does_not_end_the_search() {
        // the Dino MLP at n = 1 (µs): a second thread joins at 4 rows, then the curve is flat
        let measured = [(1, 25.0), (2, 27.0), (4, 55.0), (8, 58.0), (16, 65.0), (32, 90.0), (64, 150.0)];
        let cost = |rows: usize| {
            let us = measured.iter().find(|(r, _)| *r == rows).map_or(rows as f64 * 2.5, |(_, us)| *us);
            Ok::<_, crate::Error>(us * 1e-6)
        };
        let p = choose_window(1000, 1, cost).unwrap().expect("a window");
        assert!((16..=64).contains(&p), "chose p = {p}");
    }

    #[test]
    fn the_cost_curve_is_measured_only_as_far_as_a_window_can_still_win() {
        let mut probed = Vec::new();
        let cost = |rows: usize| {
            probed.push(rows);
            Ok::<_, crate::Error>(1e-6 * rows as f64)
        };
        assert_eq!(choose_window(1000, 64, cost).unwrap(), None);
        // row-bound: p = 2 (927 rounds · 128 µs) and p = 4 (476 · 256 µs) both lose to 64 ms / 1.2
        assert_eq!(probed, [64, 128, 256]);
        assert_eq!(probed[0], 64);
    }
}
