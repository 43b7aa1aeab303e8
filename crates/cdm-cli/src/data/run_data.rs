//! What the run pipeline needs of its data, for points and images alike.
//!
//! `cdm train` parses the data set once ([`crate::dataset::DatasetSpec`]) and from then on
//! talks to a [`RunData`]: it fits the model spec to the data, builds the objective over the
//! data's Gaussian base, draws training batches, and measures samples against held-out data.
//! `PointData` (points.rs) and `ImageData` (images.rs) implement it.

use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::{Device, Tensor};
use cdm_objectives::WeightedSum;
use cdm_train::BatchSource;

use crate::config::{ModelSpec, ObjectiveConfig, SampleConfig};

/// Training data and held-out data of a run, in the model's units.
pub trait RunData {
    /// The shape of one sample: `[d]` for points, `[C, H, W]` for images.
    fn sample_shape(&self) -> Vec<usize>;

    /// Most rows per denoiser call inside the estimators and samplers (the activations of a
    /// call scale with it).
    fn rows_per_call(&self) -> usize;

    /// One line for the log: sizes and shapes.
    fn describe(&self) -> String;

    /// `spec` adapted to the data (input dimension or channels and sample size); a model that
    /// cannot take this data is an error. `from_diffusers`: the spec comes from a checkpoint
    /// and must not be changed.
    fn fit_model(&self, spec: ModelSpec, from_diffusers: bool) -> Result<ModelSpec>;

    /// `w_std·L_std + w_cdl·L_cdl` over the data's Gaussian base; `seed` picks the images the
    /// base is fitted to.
    fn objective(&self, cfg: &ObjectiveConfig, batch_size: usize, seed: u64) -> Result<WeightedSum>;

    /// Training micro-batches of `batch_size` rows, keyed by `(seed, step, micro-batch)` so a
    /// resumed run draws the same ones.
    fn batches<'a>(
        &'a self,
        batch_size: usize,
        grad_accumulation: usize,
        seed: u64,
        device: &'a Device,
    ) -> Result<Box<dyn BatchSource + 'a>>;

    /// The held-out rows of the validation loss.
    fn validation(&self, device: &Device) -> Result<Tensor>;

    /// Writes what a run directory needs besides the config to use this data again
    /// (`standardizer.json` for standardised points).
    fn save(&self, dir: &Path) -> Result<()>;

    /// Writes `samples.npy` (and a CSV of points), a plot, and measures the samples `x`
    /// against held-out data into `out`; `title` heads the plot.
    fn measure(&self, out: &Path, x: &Tensor, cfg: &SampleConfig, title: &str) -> Result<Measurement>;
}

/// Samples measured against held-out data.
pub struct Measurement {
    /// MMD² between samples and held-out data; `None` when it is undefined (fewer than 2
    /// samples).
    pub mmd: Option<f64>,
    /// The kernel bandwidth b (a variance).
    pub bandwidth: f64,
    /// How b was chosen, for the log line.
    pub bandwidth_rule: &'static str,
    /// Held-out rows compared with.
    pub reference: usize,
    /// MMD² against fresh reference draws of the same size (toy data only): mean ± SD over
    /// draws.
    pub fresh: Option<cdm_metrics::Spread>,
    /// The plot written (scatter or image grid), if any.
    pub plot: Option<PathBuf>,
}

impl Measurement {
    /// `MMD (b = 0.0300, fixed) of 2000 samples to 2000 held-out rows: 0.00055`, and for toy
    /// data `; to 8 fresh draws of 2000: 0.00061 ± 0.00009`.
    pub fn describe(&self, n: usize) -> String {
        let mut s = format!(
            "MMD (b = {:.4}, {}) of {n} samples to {} held-out rows: {}",
            self.bandwidth,
            self.bandwidth_rule,
            self.reference,
            format_metric(self.mmd, 5)
        );
        if let Some(f) = &self.fresh {
            s.push_str(&format!("; to {} fresh draws of {}: {:.5} ± {:.5}", f.n, self.reference, f.mean, f.sd));
        }
        s
    }
}

/// A metric with `digits` decimals, or `n/a` where it is undefined.
pub fn format_metric(value: Option<f64>, digits: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "n/a".into(),
    }
}
