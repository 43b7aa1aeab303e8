//! Noise-classification accuracy: can the denoiser tell how noisy its input is?
//!
//! Every clean input x_i is noised at every candidate level ζ_j of a
//! [`NoiseLevelClassifier`] (`z = √σ(ζ_j)·x_i + √σ(−ζ_j)·ε`, `ζ = +∞` leaves x_i clean) and
//! classified by the denoiser's implicit posterior `P(ζ | z)` (`docs/math.md` §8, §12.2). With
//! N inputs and L levels,
//!
//! ```text
//! confusion[j][k] = #{inputs noised at ζ_j predicted as ζ_k},   accuracy = Σ_j confusion[j][j] / (N·L)
//! ```
//!
//! The noise of level j, input i is stream i of the `"noise-accuracy-inputs"` fork indexed by j;
//! the classifier's own draws come from the `"noise-accuracy-classifier"` fork.

use candle_core::Tensor;
use cdm_core::log_snr::{noise_coef, signal_coef};
use cdm_core::{Denoiser, NoiseLevelClassifier, NoiseSource};

use crate::{Error, Result};

/// Accuracy and confusion matrix of the implicit noise-level classifier.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NoiseAccuracy {
    /// The candidate levels (log-SNR; `+∞` = clean).
    pub levels: Vec<f64>,
    /// Fraction of noised inputs whose level was recovered.
    pub accuracy: f64,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl NoiseAccuracy {
    /// The accuracy for inputs of each true level.
    pub fn per_level(&self) -> Vec<f64> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(j, row)| row[j] as f64 / row.iter().sum::<usize>().max(1) as f64)
            .collect()
    }
}

/// Noises every clean input in `clean` (N, …) at every level of `classifier` and classifies it
/// with `model`.
pub fn noise_level_accuracy(
    classifier: &NoiseLevelClassifier,
    model: &dyn Denoiser,
    clean: &Tensor,
    noise: &NoiseSource,
) -> Result<NoiseAccuracy> {
    let n = clean.dims().first().copied().unwrap_or(0);
    if clean.rank() < 2 || n == 0 {
        return Err(Error::shape("noise_level_accuracy inputs", "(N ≥ 1, …)", clean.dims()));
    }
    let levels = classifier.levels();
    let inputs = noise.fork("noise-accuracy-inputs");
    let noised = levels
        .iter()
        .enumerate()
        .map(|(j, &zeta)| {
            let eps =
                inputs.fork_index(j as u64).streams(0, n).normal(&clean.dims()[1..], clean.dtype(), clean.device())?;
            Ok(clean.affine(signal_coef(zeta), 0.0)?.add(&eps.affine(noise_coef(zeta), 0.0)?)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let z = Tensor::cat(&noised, 0)?;
    let posterior = classifier.classify(model, &z, &noise.fork("noise-accuracy-classifier"))?;
    let mut confusion = vec![vec![0usize; levels.len()]; levels.len()];
    for (row, &predicted) in posterior.predicted.iter().enumerate() {
        confusion[row / n][predicted] += 1;
    }
    let correct: usize = (0..levels.len()).map(|j| confusion[j][j]).sum();
    Ok(NoiseAccuracy { levels: levels.to_vec(), accuracy: correct as f64 / (n * levels.len()) as f64, confusion })
}
