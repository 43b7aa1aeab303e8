//! The contrastive diffusion loss (Wu et al., NeurIPS 2024, arXiv:2407.08946).
//!
//! The denoiser implies the log-ratio `f_ζ(z) = log p(z) − log p_ζ(z)` between the data and the
//! data noised at ζ ([`cdm_core::itd`]); it is the logit of a clean-vs-noised classifier. For
//! each contrastive instance `x_i` with a label `y_i = ±1` and a level `ζ_i ~ π`:
//!
//! ```text
//! z_i = x_i                                   if y_i = +1 (positive: clean)
//! z_i = √σ(ζ_i)·x_i + √σ(−ζ_i)·ε′_i           if y_i = −1 (negative: noised once at ζ_i)
//! ℓ_i = softplus(−y_i·f_{ζ_i}(z_i))           (binary cross-entropy on the logit)
//! L_cdl = (1/B) Σ_{i ∈ instances} ℓ_i
//! ```
//!
//! Gradients flow through both log-densities. Two modes (`docs/math.md` §9.2):
//!
//! | | [`CdlMode::Faithful`] (the authors' code) | [`CdlMode::Improved`] |
//! |---|---|---|
//! | instances | the first 2 of the batch | every instance (or a configured number) |
//! | random numbers | independent for log p and log p_ζ | common (α_k, ε_k): far lower variance |
//! | K | the batch size | configurable |
//!
//! The `1/B` factor is the authors' weighting: with 2 instances the CDL term weighs `2/B` of
//! the mean instance loss; with every instance it is the mean. Both log-densities of all
//! instances go through one denoiser call of `2·n·K` rows (split only if the denoiser is a
//! [`Chunked`](cdm_core::Chunked) one).
//!
//! | name | symbol |
//! |---|---|
//! | `zeta` | ζ_i |
//! | `labels` | y_i |
//! | `logits` | f_{ζ_i}(z_i) |

use candle_core::Tensor;
use cdm_core::log_snr::{noise_coef, signal_coef};
use cdm_core::{Denoiser, Itd, NoiseSource, RandomNumbers};

use crate::mse::row_scale;
use crate::objective::{LossOutput, Metric, Objective};
use crate::zeta::ZetaDistribution;
use crate::{Error, Result};

/// Faithful to the authors' code, or the batched common-random-numbers variant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdlMode {
    /// Two instances per batch, independent random numbers (set K = batch size in the `Itd`).
    Faithful,
    /// Every instance, common random numbers.
    #[default]
    Improved,
}

/// The contrastive diffusion loss.
#[derive(Clone, Debug)]
pub struct Cdl {
    itd: Itd,
    zeta: ZetaDistribution,
    mode: CdlMode,
    instances: Option<usize>,
}

/// The logits of one CDL evaluation.
#[derive(Debug)]
pub struct CdlLogits {
    /// `f_ζ(z_i)` per instance, (n,), attached to the graph.
    pub logits: Tensor,
    /// `y_i ∈ {+1, −1}`.
    pub labels: Vec<f64>,
    /// `ζ_i`.
    pub zeta: Vec<f64>,
    /// The classified inputs `z_i` (positives clean, negatives noised), (n, …).
    pub inputs: Tensor,
}

impl Cdl {
    /// A CDL using `itd` (its K, proposal and Gaussian base) for both log-densities.
    ///
    /// `instances`: how many rows of each batch get a contrastive term (`None`: the mode's
    /// default, 2 for faithful, all for improved).
    pub fn new(itd: Itd, zeta: ZetaDistribution, mode: CdlMode, instances: Option<usize>) -> Result<Self> {
        zeta.validate()?;
        if instances == Some(0) {
            return Err(Error::invalid("instances", 0, "must be at least 1"));
        }
        Ok(Self { itd, zeta, mode, instances })
    }

    /// The instances among the `batch` rows of `x`: the first `k` rows of the global batch,
    /// whose row 0 is global row `noise.offset()` (a data-parallel shard), so every rank
    /// takes the instances that one process would.
    fn instances_here(&self, batch: usize, noise: &NoiseSource) -> usize {
        let k = match (self.instances, self.mode) {
            (Some(k), _) => k,
            (None, CdlMode::Faithful) => 2,
            (None, CdlMode::Improved) => usize::MAX,
        };
        let first = usize::try_from(noise.offset()).unwrap_or(usize::MAX);
        k.min(first.saturating_add(batch)).saturating_sub(first)
    }

    /// Draws labels, levels and negatives for the first instances of `x` and estimates their logits.
    pub fn logits(&self, d: &dyn Denoiser, x: &Tensor, noise: &NoiseSource) -> Result<CdlLogits> {
        let batch = x.dim(0)?;
        let need = match self.mode {
            CdlMode::Faithful => 2,
            CdlMode::Improved => 1,
        };
        if batch < need {
            return Err(Error::BatchTooSmall { objective: "cdl", need, got: batch });
        }
        let n = self.instances_here(batch, noise);
        let x = x.narrow(0, 0, n)?;
        let mut streams = noise.fork("cdl").streams(0, n);
        let draws = streams.uniform_f64(2);
        let labels: Vec<f64> = draws.chunks(2).map(|u| if u[0] < 0.5 { -1.0 } else { 1.0 }).collect();
        let zeta: Vec<f64> = draws.chunks(2).map(|u| self.zeta.at_quantile(u[1])).collect();
        let eps = streams.normal(&x.dims()[1..], x.dtype(), x.device())?;
        // positives keep x (signal 1, noise 0); negatives are noised once at their ζ
        let signal = labels.iter().zip(&zeta).map(|(&y, &zt)| if y > 0.0 { 1.0 } else { signal_coef(zt) });
        let noise_scale = labels.iter().zip(&zeta).map(|(&y, &zt)| if y > 0.0 { 0.0 } else { noise_coef(zt) });
        let z = (row_scale(&x, signal)? + row_scale(&eps, noise_scale)?)?;
        let random_numbers = match self.mode {
            CdlMode::Faithful => RandomNumbers::Independent,
            CdlMode::Improved => RandomNumbers::Common,
        };
        let estimate = self.itd.log_ratio(d, &z, &zeta, &noise.fork("cdl-itd"), random_numbers)?;
        Ok(CdlLogits { logits: estimate.value()?, labels, zeta, inputs: z })
    }
}

/// The CDL's diagnostics, means over its instances: the classifier's accuracy, its mean |logit|
/// and the fraction of |logits| above 10.
const METRICS: [&str; 3] = ["cdl_accuracy", "cdl_abs_logit", "cdl_saturated"];

/// softplus(v) = max(v, 0) + log(1 + e^{−|v|}), differentiable everywhere.
fn softplus(v: &Tensor) -> Result<Tensor> {
    Ok((v.relu()? + (v.abs()?.neg()?.exp()? + 1.0)?.log()?)?)
}

impl Objective for Cdl {
    fn name(&self) -> &'static str {
        "cdl"
    }

    fn loss(&self, d: &dyn Denoiser, x: &Tensor, noise: &NoiseSource) -> Result<LossOutput> {
        let batch = x.dim(0)?;
        if batch > 0 && self.instances_here(batch, noise) == 0 {
            // a data-parallel shard past the instances: nothing to add, and no instance to measure
            let zero = Tensor::zeros((), x.dtype(), x.device())?;
            let metrics = METRICS.map(|k| Metric::new(k, zero.clone(), 0));
            return Ok(LossOutput { loss: zero, metrics: metrics.into() });
        }
        let out = self.logits(d, x, noise)?;
        let y = cdm_core::host_tensor(&out.labels, &out.logits)?;
        let per_instance = softplus(&(out.logits.mul(&y)?.neg()?))?;
        let loss = (per_instance.sum_all()? / batch as f64)?;
        let f = out.logits.detach();
        let margin = f.mul(&y)?;
        let abs = f.abs()?;
        let fraction = |hits: Tensor| -> Result<Tensor> { Ok(hits.to_dtype(f.dtype())?.mean_all()?) };
        let n = out.labels.len();
        let values = [fraction(margin.gt(0.0)?)?, abs.mean_all()?, fraction(abs.gt(10.0)?)?];
        let metrics = METRICS.into_iter().zip(values).map(|(k, v)| Metric::new(k, v, n)).collect();
        Ok(LossOutput { loss, metrics })
    }
}
