//! The importance-weighted ITD loss: the standard loss of the authors' CDL models.
//!
//! ```text
//! L_itd = h_G + (1/B) Σ_b ½·w(α_b)·(‖ε_b − ε̂(z_b, α_b)‖² − mmse_G(α_b)),   α_b ~ truncated logistic
//! ```
//!
//! an unbiased estimate (nats per sample) of the clipped expected negative log-likelihood
//! (`docs/math.md` §6.3); its gradient weights log-SNRs uniformly over the clip window. See
//! [`cdm_core::itd`].

use candle_core::Tensor;
use cdm_core::{Denoiser, Itd, NoiseSource};

use crate::Result;
use crate::objective::{LossOutput, Objective};

/// The ITD batch loss of a configured estimator.
#[derive(Clone, Debug)]
pub struct ItdLoss {
    itd: Itd,
}

impl ItdLoss {
    /// The loss of `itd` (its K is ignored: one point per batch element).
    pub fn new(itd: Itd) -> Self {
        Self { itd }
    }
}

impl Objective for ItdLoss {
    fn name(&self) -> &'static str {
        "itd"
    }

    fn loss(&self, d: &dyn Denoiser, x: &Tensor, noise: &NoiseSource) -> Result<LossOutput> {
        let loss = self.itd.batch_loss(d, x, &noise.fork("itd-loss"))?;
        Ok(LossOutput { loss, metrics: Vec::new() })
    }
}
