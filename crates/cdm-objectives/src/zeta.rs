//! Distributions of the noise level ζ at which contrastive negatives are noised.
//!
//! The authors use a truncated logistic: for 1-D/2-D data the integration's own
//! `(m, s, c = 3)`, for CIFAR-10 `(10.5, 1.5, 3)`, i.e. ζ ∈ [6, 15]; `U(6, 15)` is an option
//! (`docs/math.md` §9.3).

use cdm_core::TruncatedLogistic;

use crate::{Error, Result};

/// How ζ is drawn for each contrastive instance.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ZetaDistribution {
    /// A truncated logistic over log-SNR.
    Logistic(TruncatedLogistic),
    /// Uniform on `[low, high]`.
    Uniform {
        /// Smallest ζ.
        low: f64,
        /// Largest ζ.
        high: f64,
    },
}

impl ZetaDistribution {
    /// The authors' image setting: logistic (10.5, 1.5) clipped at 3, i.e. ζ ∈ [6, 15].
    pub fn images() -> Self {
        ZetaDistribution::Logistic(TruncatedLogistic { loc: 10.5, scale: 1.5, clip: 3.0 })
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        match self {
            ZetaDistribution::Logistic(l) => Ok(l.validate()?),
            ZetaDistribution::Uniform { low, high } if low.is_finite() && high.is_finite() && low <= high => Ok(()),
            ZetaDistribution::Uniform { low, .. } => Err(Error::invalid("zeta.low", low, "need finite low <= high")),
        }
    }

    /// ζ at uniform quantile `u ∈ [0, 1)`.
    pub fn at_quantile(&self, u: f64) -> f64 {
        match self {
            ZetaDistribution::Logistic(l) => l.log_snr(u),
            ZetaDistribution::Uniform { low, high } => low + u * (high - low),
        }
    }
}
