//! Learning-rate schedule: linear warmup, then cosine decay.
//!
//! ```text
//! lr(s) = lr_max·(s + 1)/W                                         for s < W
//! lr(s) = lr_min + ½(lr_max − lr_min)·(1 + cos(π·(s − W)/(S − W)))  for W ≤ s < S
//! ```
//!
//! with `W` warmup steps, `S` total steps and `lr_min = lr_max·min_ratio`.

/// Warmup + cosine learning-rate schedule.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WarmupCosine {
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warmup steps.
    pub warmup_steps: u64,
    /// Total steps (the cosine ends here).
    pub total_steps: u64,
    /// Final learning rate as a fraction of the peak.
    pub min_ratio: f64,
}

impl WarmupCosine {
    /// The learning rate at optimizer step `step` (0-based).
    pub fn at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
        let min = self.lr * self.min_ratio;
        min + 0.5 * (self.lr - min) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_to_the_floor() {
        let s = WarmupCosine { lr: 1e-3, warmup_steps: 10, total_steps: 110, min_ratio: 0.1 };
        assert!((s.at(0) - 1e-4).abs() < 1e-15);
        assert!((s.at(9) - 1e-3).abs() < 1e-15);
        assert!((s.at(10) - 1e-3).abs() < 1e-15);
        assert!((s.at(60) - 0.55e-3).abs() < 1e-12);
        assert!((s.at(110) - 1e-4).abs() < 1e-15);
        assert!((1..110).all(|i| s.at(i + 10) <= s.at(i + 9) + 1e-18));
    }
}
