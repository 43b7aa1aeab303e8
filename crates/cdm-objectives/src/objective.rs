//! The `Objective` trait and weighted sums of objectives.
//!
//! An objective returns its loss and its metrics as tensors on the batch's device. Nothing in a
//! step reads a value back to the host, so on a GPU a training step queues its work without
//! waiting for it; the trainer reads the numbers when it logs them.

use candle_core::Tensor;
use cdm_core::{Denoiser, NoiseSource};

use crate::Result;

/// A loss attached to the denoiser's graph, plus detached metrics.
#[derive(Debug)]
pub struct LossOutput {
    /// Scalar loss; call `backward` on it.
    pub loss: Tensor,
    /// Named diagnostics.
    pub metrics: Vec<Metric>,
}

/// A diagnostic: the mean of some quantity over `count` items (the batch's rows, the CDL's
/// instances). Means over several micro-batches or data-parallel shards weight each part by its
/// count, so they equal the mean over all the items.
#[derive(Clone, Debug)]
pub struct Metric {
    /// Its name in the logs, e.g. `cdl_accuracy`.
    pub name: String,
    /// The mean: a detached scalar tensor on the loss's device (any value when `count` is 0).
    pub value: Tensor,
    /// The items the mean is over; 0 when this part of the batch has none.
    pub count: usize,
}

impl Metric {
    /// The mean `value` of `count` items.
    pub fn new(name: impl Into<String>, value: Tensor, count: usize) -> Self {
        Self { name: name.into(), value, count }
    }
}

impl LossOutput {
    /// The metric `name` read back to the host, if the objective reports it.
    pub fn metric(&self, name: &str) -> Result<Option<f64>> {
        let Some(m) = self.metrics.iter().find(|m| m.name == name) else { return Ok(None) };
        Ok(Some(m.value.to_device(&candle_core::Device::Cpu)?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?))
    }
}

/// A training objective for a log-SNR [`Denoiser`].
///
/// `noise` is the randomness of this step: objectives fork it by their own name, and row `b`
/// of the batch draws from stream `b`, so a step is reproducible from `(seed, step)` alone.
pub trait Objective {
    /// A short name used for metrics, e.g. `"mse"`.
    fn name(&self) -> &'static str;

    /// The loss on a batch `x` (B, …) of clean data.
    fn loss(&self, d: &dyn Denoiser, x: &Tensor, noise: &NoiseSource) -> Result<LossOutput>;
}

/// `Σ_i w_i·L_i`: e.g. `w_std·L_std + w_cdl·L_cdl`.
pub struct WeightedSum {
    parts: Vec<(f64, Box<dyn Objective + Send + Sync>)>,
}

impl WeightedSum {
    /// A sum of `(weight, objective)` parts; parts with weight 0 are skipped entirely.
    pub fn new(parts: Vec<(f64, Box<dyn Objective + Send + Sync>)>) -> Self {
        Self { parts: parts.into_iter().filter(|(w, _)| *w != 0.0).collect() }
    }
}

impl Objective for WeightedSum {
    fn name(&self) -> &'static str {
        "weighted_sum"
    }

    fn loss(&self, d: &dyn Denoiser, x: &Tensor, noise: &NoiseSource) -> Result<LossOutput> {
        let mut total: Option<Tensor> = None;
        let mut metrics = Vec::new();
        for (weight, part) in &self.parts {
            let out = part.loss(d, x, noise)?;
            metrics.push(Metric::new(format!("loss_{}", part.name()), out.loss.detach(), x.dim(0)?));
            metrics.extend(out.metrics);
            let weighted = (out.loss * *weight)?;
            total = Some(match total {
                None => weighted,
                Some(t) => (t + weighted)?,
            });
        }
        let loss = match total {
            Some(t) => t,
            None => Tensor::zeros((), x.dtype(), x.device())?,
        };
        Ok(LossOutput { loss, metrics })
    }
}
