//! Truncated-logistic importance sampling over the log-SNR.
//!
//! The ITD integral runs over all α; it is estimated by drawing α from a logistic distribution
//! truncated to `[m − c·s, m + c·s]` (ITD, Kong et al. 2023; `docs/math.md` §5):
//!
//! ```text
//! u ~ U(σ(−c), σ(c)),   α = m + s·logit(u),   v = (α − m)/s
//! q(α) = σ(v)·σ(−v) / (s·tanh(c/2))
//! w(α) = 1/q(α) = s·tanh(c/2)·(2 + eᵛ + e⁻ᵛ)        (bounded: ≈ 80 for c = 3, s = 4)
//! ```
//!
//! so `(1/K) Σ_k w(α_k)·f(α_k)` is unbiased for `∫_{m−cs}^{m+cs} f(α) dα`. The tails outside
//! the clip window are dropped: a bias that shrinks like `e^{−c}`.
//!
//! | name | symbol |
//! |---|---|
//! | `loc` | m |
//! | `scale` | s |
//! | `clip` | c |

use crate::log_snr::{logit, sigmoid};
use crate::{Error, Result};

/// A logistic distribution of log-SNRs truncated to `loc ± clip·scale`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TruncatedLogistic {
    /// Location m.
    pub loc: f64,
    /// Scale s > 0.
    pub scale: f64,
    /// Half-width of the window in units of `scale`, c > 0.
    pub clip: f64,
}

impl TruncatedLogistic {
    /// A validated truncated logistic.
    pub fn new(loc: f64, scale: f64, clip: f64) -> Result<Self> {
        let this = Self { loc, scale, clip };
        this.validate()?;
        Ok(this)
    }

    /// Checks `loc` finite, `scale > 0`, `0 < clip ≤ 30`.
    pub fn validate(&self) -> Result<()> {
        if !self.loc.is_finite() {
            return Err(Error::invalid("loc", self.loc, "must be finite"));
        }
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return Err(Error::invalid("scale", self.scale, "must be positive and finite"));
        }
        if !(self.clip > 0.0 && self.clip <= 30.0) {
            return Err(Error::invalid("clip", self.clip, "must lie in (0, 30]"));
        }
        Ok(())
    }

    /// The support `[loc − clip·scale, loc + clip·scale]`.
    pub fn window(&self) -> (f64, f64) {
        (self.loc - self.clip * self.scale, self.loc + self.clip * self.scale)
    }

    /// The log-SNR at uniform quantile `u ∈ [0, 1)`, mapped onto `[σ(−c), σ(c))`.
    pub fn log_snr(&self, u: f64) -> f64 {
        let (lo, hi) = (sigmoid(-self.clip), sigmoid(self.clip));
        self.loc + self.scale * logit(lo + u * (hi - lo))
    }

    /// The importance weight `w(α) = 1/q(α)`.
    pub fn weight(&self, log_snr: f64) -> f64 {
        let v = (log_snr - self.loc) / self.scale;
        self.scale * (0.5 * self.clip).tanh() * (2.0 + v.exp() + (-v).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_match_the_paper_table() {
        // docs/math.md §5: (m, s, c) → w at centre, w at edge
        for (m, s, w_mid, w_edge) in [(4.0, 4.0, 14.48, 80.14), (0.0, 3.0, 10.86, 60.11), (10.5, 1.5, 5.43, 30.05)] {
            let q = TruncatedLogistic::new(m, s, 3.0).unwrap();
            assert!((q.weight(m) - w_mid).abs() < 0.01);
            assert!((q.weight(q.window().1) - w_edge).abs() < 0.01);
        }
    }

    #[test]
    fn importance_sampling_integrates_a_polynomial_exactly_in_expectation() {
        // ∫_{−9}^{9} (1 + α²) dα = 18 + 2·9³/3 = 504, by a fine midpoint rule over u
        let q = TruncatedLogistic::new(0.0, 3.0, 3.0).unwrap();
        let n = 200_000;
        let est: f64 = (0..n)
            .map(|i| {
                let a = q.log_snr((i as f64 + 0.5) / n as f64);
                q.weight(a) * (1.0 + a * a)
            })
            .sum::<f64>()
            / n as f64;
        assert!((est - 504.0).abs() < 0.05, "{est}");
        assert!((q.log_snr(0.0) + 9.0).abs() < 1e-12);
    }

    #[test]
    fn invalid_parameters_are_typed_errors() {
        assert!(matches!(TruncatedLogistic::new(0.0, 3.0, 0.0), Err(Error::InvalidArgument { field: "clip", .. })));
        assert!(matches!(TruncatedLogistic::new(0.0, 3.0, -1.0), Err(Error::InvalidArgument { field: "clip", .. })));
        assert!(matches!(TruncatedLogistic::new(0.0, 0.0, 3.0), Err(Error::InvalidArgument { field: "scale", .. })));
        assert!(matches!(TruncatedLogistic::new(f64::NAN, 1.0, 3.0), Err(Error::InvalidArgument { field: "loc", .. })));
    }
}
