//! Order statistics of timed repetitions, computed the same way as `benches/peer/bench_torch.py`.

/// Median, extremes and quartiles of a set of timings, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Median.
    pub median: f64,
    /// Fastest repetition.
    pub min: f64,
    /// First quartile.
    pub q1: f64,
    /// Third quartile.
    pub q3: f64,
}

impl Summary {
    /// The summary of `samples` (at least one), quantiles by linear interpolation between order
    /// statistics (numpy's default).
    pub fn of(samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            median: quantile(&sorted, 0.5),
            min: sorted[0],
            q1: quantile(&sorted, 0.25),
            q3: quantile(&sorted, 0.75),
        }
    }
}

/// The `q`-quantile of ascending `sorted` values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(s, Summary { median: 2.5, min: 1.0, q1: 1.75, q3: 3.25 });
        assert_eq!(Summary::of(&[7.0]).q3, 7.0);
    }
}
