//! "How noisy is this input?" — the noise-level classifier every denoiser implies.
//!
//! Given candidate levels `ζ_1 … ζ_L` (log-SNRs of the noise already in the input, `+∞` for
//! clean data) and a uniform prior over them, the posterior of the level of `z` is
//!
//! ```text
//! P(ζ_j | z) = p_{ζ_j}(z) / Σ_i p_{ζ_i}(z) = softmax_j (log p_{ζ_j}(z) − log p(z))
//! ```
//!
//! where each `log p_{ζ_j}(z) − log p(z) = −f_{ζ_j}(z)` is the ITD log-ratio of
//! [`crate::itd`], estimated with common random numbers shared by all levels (so the posterior
//! is sharp). Neighbouring levels are compared by their log-ratios
//! `log p_{ζ_{j+1}}(z) − log p_{ζ_j}(z)`. No parameter is added to the denoiser
//! (Wu et al. 2024, "your diffusion model is secretly a noise classifier").

use candle_core::Tensor;

use crate::itd::{Estimate, Itd, PointwiseEstimate};
use crate::{Denoiser, Error, NoiseSource, Result};

/// A classifier over a grid of candidate noise levels.
#[derive(Clone, Debug)]
pub struct NoiseLevelClassifier {
    itd: Itd,
    levels: Vec<f64>,
}

/// The classifier's verdict for a batch.
#[derive(Clone, Debug)]
pub struct NoiseLevelPosterior {
    /// The candidate levels (log-SNR; `+∞` = clean).
    pub levels: Vec<f64>,
    /// Estimated `log p_{ζ_j}(z) − log p(z)` per input and level, with standard errors.
    pub log_density: Vec<Estimate>,
    /// Posterior probabilities, `posterior[b][j]`.
    pub posterior: Vec<Vec<f64>>,
    /// The most probable level index per input.
    pub predicted: Vec<usize>,
}

impl NoiseLevelPosterior {
    /// `log p_{ζ_{j+1}}(z_b) − log p_{ζ_j}(z_b)` for consecutive levels of input `b`.
    pub fn neighbour_log_ratios(&self, b: usize) -> Vec<f64> {
        self.log_density.windows(2).map(|w| w[1].value[b] - w[0].value[b]).collect()
    }
}

impl NoiseLevelClassifier {
    /// A classifier over `levels` (at least two, no NaN), using `itd`'s estimator.
    pub fn new(itd: Itd, levels: Vec<f64>) -> Result<Self> {
        if levels.len() < 2 {
            return Err(Error::invalid("levels", levels.len(), "need at least two candidate levels"));
        }
        if let Some(l) = levels.iter().find(|l| l.is_nan()) {
            return Err(Error::invalid("levels", l, "must not be NaN"));
        }
        Ok(Self { itd, levels })
    }

    /// The candidate levels.
    pub fn levels(&self) -> &[f64] {
        &self.levels
    }

    /// The posterior over levels of each input in `z` (B, …).
    pub fn classify(&self, d: &dyn Denoiser, z: &Tensor, noise: &NoiseSource) -> Result<NoiseLevelPosterior> {
        let terms = self.itd.level_log_densities(d, z, &self.levels, noise)?;
        let log_density = terms
            .into_iter()
            .map(|t| PointwiseEstimate { terms: t, offset: 0.0 }.summary())
            .collect::<Result<Vec<_>>>()?;
        let b = z.dim(0)?;
        let mut posterior = Vec::with_capacity(b);
        let mut predicted = Vec::with_capacity(b);
        for i in 0..b {
            let logits: Vec<f64> = log_density.iter().map(|e| e.value[i]).collect();
            let norm = crate::log_snr::log_sum_exp(&logits);
            let probs: Vec<f64> = logits.iter().map(|l| (l - norm).exp()).collect();
            let best = (0..probs.len()).max_by(|&x, &y| probs[x].total_cmp(&probs[y])).unwrap_or(0);
            posterior.push(probs);
            predicted.push(best);
        }
        Ok(NoiseLevelPosterior { levels: self.levels.clone(), log_density, posterior, predicted })
    }
}
