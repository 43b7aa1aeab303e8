//! Which training timesteps an `S`-step sampler visits.
//!
//! With `T` training steps and `S` sampling steps (diffusers `set_timesteps`; `docs/samplers.md` §1.2):
//!
//! ```text
//! leading:   τ_i = (S − 1 − i)·⌊T/S⌋                        e.g. S = 50:  980, 960, …, 20, 0
//! trailing:  τ_i = round(T − i·T/S) − 1                      e.g. S = 13:  999, 922, 845, …, 76
//! linspace:  τ = reverse(round(linspace(0, T − 1, S)))       e.g. S = 50:  999, 979, 958, …, 20, 0
//! ```
//!
//! Rounding is NumPy's round-half-to-even (`f64::round_ties_even`): for T = 1000, S = 16 the
//! trailing grid rounds 812.5 to 812 (so lists 811), where round-half-away would give 813 (812).
//! A sampler must take each step's predecessor from the list ([`predecessors`]), never as
//! `t − T/S`, which is wrong for `linspace` and for non-divisible `trailing` grids.

use crate::{Error, Result};

/// A rule for choosing `S` of the `T` training timesteps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestepSpacing {
    /// `(S − 1 − i)·⌊T/S⌋`: diffusers' default and DDIM's `skip` spacing; ends at 0.
    Leading,
    /// `round(T − i·T/S) − 1`: starts at `T − 1`; what ParaDiGMS uses.
    #[default]
    Trailing,
    /// `round(linspace(0, T − 1, S))`, reversed: starts at `T − 1` and ends at 0.
    Linspace,
}

impl TimestepSpacing {
    /// The `steps` timesteps out of `num_train` training timesteps, strictly decreasing.
    pub fn timesteps(self, num_train: usize, steps: usize) -> Result<Vec<usize>> {
        if steps == 0 {
            return Err(Error::invalid("steps", steps, "must be at least 1"));
        }
        if steps > num_train {
            return Err(Error::invalid("steps", steps, "must not exceed the number of training timesteps"));
        }
        let (t, s) = (num_train as f64, steps as f64);
        let out: Vec<usize> = match self {
            TimestepSpacing::Leading => {
                let ratio = num_train / steps;
                (0..steps).map(|i| (steps - 1 - i) * ratio).collect()
            }
            TimestepSpacing::Trailing => {
                (0..steps).map(|i| (t - i as f64 * t / s).round_ties_even() as usize - 1).collect()
            }
            TimestepSpacing::Linspace => (0..steps)
                .rev()
                .map(|i| {
                    let v = if steps == 1 { 0.0 } else { i as f64 * (t - 1.0) / (s - 1.0) };
                    v.round_ties_even() as usize
                })
                .collect(),
        };
        debug_assert!(out.windows(2).all(|w| w[0] > w[1]));
        Ok(out)
    }
}

/// Each step's predecessor timestep: `τ_{i+1}` from the list, and −1 (the clean end) last.
pub fn predecessors(timesteps: &[usize]) -> Vec<i64> {
    timesteps.iter().skip(1).map(|&t| t as i64).chain(std::iter::once(-1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_thirteen_steps_takes_predecessors_from_the_list() {
        let ts = TimestepSpacing::Trailing.timesteps(1000, 13).unwrap();
        assert_eq!(&ts[..3], &[999, 922, 845]);
        assert_eq!(*ts.last().unwrap(), 76);
        let prev = predecessors(&ts);
        assert_eq!(prev[0], 922, "not the shortcut 999 − 1000/13 = 923");
        assert_eq!(*prev.last().unwrap(), -1);
    }

    #[test]
    fn trailing_sixteen_rounds_half_to_even() {
        let ts = TimestepSpacing::Trailing.timesteps(1000, 16).unwrap();
        // 1000 − 3·62.5 = 812.5 → 812 (half-to-even) → 811; half-away would give 813 → 812
        assert_eq!(ts[3], 811);
        assert!(!ts.contains(&812));
        assert_eq!(ts[13], 187); // 187.5 → 188 either way
    }

    #[test]
    fn leading_and_linspace_end_at_zero() {
        let lead = TimestepSpacing::Leading.timesteps(1000, 50).unwrap();
        assert_eq!(&lead[..2], &[980, 960]);
        assert_eq!(&lead[47..], &[40, 20, 0]);
        let lin = TimestepSpacing::Linspace.timesteps(1000, 50).unwrap();
        assert_eq!(&lin[..3], &[999, 979, 958]);
        assert_eq!(&lin[48..], &[20, 0]);
        let lead200 = TimestepSpacing::Leading.timesteps(1000, 200).unwrap();
        assert_eq!((lead200[0], lead200[199]), (995, 0));
    }

    #[test]
    fn full_chain_is_every_timestep_for_every_spacing() {
        let all: Vec<usize> = (0..1000).rev().collect();
        for sp in [TimestepSpacing::Leading, TimestepSpacing::Trailing, TimestepSpacing::Linspace] {
            assert_eq!(sp.timesteps(1000, 1000).unwrap(), all, "{sp:?}");
        }
    }

    #[test]
    fn bad_step_counts_are_typed_errors() {
        for sp in [TimestepSpacing::Leading, TimestepSpacing::Trailing, TimestepSpacing::Linspace] {
            assert!(matches!(sp.timesteps(1000, 0), Err(Error::InvalidArgument { field: "steps", .. })));
            assert!(matches!(sp.timesteps(1000, 1001), Err(Error::InvalidArgument { field: "steps", .. })));
        }
    }
}
