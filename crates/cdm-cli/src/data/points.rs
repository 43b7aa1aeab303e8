//! Point data of a run: a toy or a CSV file, split and standardised, as a [`RunData`].

use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use cdm_core::{BaseCovariance, GaussianBase, NoiseSource};
use cdm_data::{PointCloud, Standardizer, Toy};
use cdm_metrics::Spread;
use cdm_objectives::{CdlMode, WeightedSum, ZetaDistribution};
use cdm_train::BatchSource;

use super::run_data::{Measurement, RunData};
use super::sample_files::write_samples;
use crate::config::{DataConfig, ModelSpec, ObjectiveConfig, SampleConfig};
use crate::dataset::DatasetSpec;
use crate::objective::assemble_objective;
use crate::run_dir::write_json;

/// Most rows per denoiser call for the point MLPs (65 536 rows of a 128-wide MLP are a few
/// hundred MB of activations).
pub const ROWS_PER_CALL: usize = 1 << 16;

/// Training and held-out points, in the model's units.
pub struct PointData {
    /// Training points.
    pub train: PointCloud,
    /// Held-out points (validation loss, MMD).
    pub validation: PointCloud,
    /// The column standardisation applied to both, if any.
    pub standardizer: Option<Standardizer>,
    /// The toy the points were drawn from (`None` for a CSV file): fresh reference draws exist.
    pub toy: Option<Toy>,
}

/// Fresh reference draws a toy run's samples are also scored against after training.
const FRESH_DRAWS: usize = 8;

/// Seed of the first fresh reference draw (training data use `data.seed`, held-out points
/// `data.seed + 1`).
const FRESH_SEED: u64 = 0xf7e5_0000;

/// Loads a point data set: a toy, or `csv:PATH` split into training and held-out rows.
pub fn load_points(cfg: &DataConfig) -> Result<PointData> {
    let toy = cfg.dataset.toy();
    let (train, validation) = match &cfg.dataset {
        DatasetSpec::Csv(path) => {
            let all = cdm_data::read_csv(path)?;
            let fraction = (cfg.n_validation as f64 / all.len() as f64).min(0.5);
            all.split(fraction, cfg.seed).with_context(|| format!("splitting {}", path.display()))?
        }
        DatasetSpec::Toy(toy) => {
            (toy.sample(cfg.n_train, cfg.seed), toy.sample(cfg.n_validation, cfg.seed.wrapping_add(1)))
        }
        images => bail!("{images} is an image data set: this command takes point runs"),
    };
    if train.len() < 2 || validation.is_empty() {
        bail!("dataset {}: need at least 2 training and 1 held-out points", cfg.dataset);
    }
    if !cfg.standardize {
        return Ok(PointData { train, validation, standardizer: None, toy });
    }
    let s = Standardizer::fit(&train)?;
    Ok(PointData { train: s.apply(&train)?, validation: s.apply(&validation)?, standardizer: Some(s), toy })
}

impl PointData {
    /// The diagonal Gaussian fitted to the first `rows` training points (all if `None`).
    pub fn base(&self, rows: Option<usize>) -> Result<GaussianBase> {
        let (n, dim) = (rows.unwrap_or(usize::MAX).min(self.train.len()), self.train.dim());
        Ok(GaussianBase::from_data(&self.train.data()[..n * dim], n, dim, BaseCovariance::Diagonal)?)
    }

    /// `n` fresh points of the run's toy from `seed`, in the model's units (`None` for a CSV
    /// file, which has no generator).
    pub fn fresh_references(&self, n: usize, seed: u64) -> Result<Option<PointCloud>> {
        let Some(toy) = self.toy else { return Ok(None) };
        let points = toy.sample(n, seed);
        Ok(Some(match &self.standardizer {
            Some(s) => s.apply(&points)?,
            None => points,
        }))
    }

    /// MMD² of `samples` against [`FRESH_DRAWS`] fresh reference draws of the held-out size:
    /// the spread over draws says how much of the held-out MMD² is the reference draw.
    fn fresh_mmd(&self, samples: &[f64], bandwidth: f64) -> Result<Option<Spread>> {
        let mut values = Vec::with_capacity(FRESH_DRAWS);
        for i in 0..FRESH_DRAWS {
            match self.fresh_references(self.validation.len(), FRESH_SEED + i as u64)? {
                Some(r) => values.push(cdm_metrics::mmd2(samples, r.data(), r.dim(), bandwidth)?),
                None => return Ok(None),
            }
        }
        Ok(Some(Spread::of(&values)?))
    }
}

impl RunData for PointData {
    fn sample_shape(&self) -> Vec<usize> {
        vec![self.train.dim()]
    }

    fn rows_per_call(&self) -> usize {
        ROWS_PER_CALL
    }

    fn describe(&self) -> String {
        format!(
            "{} training and {} held-out points of dimension {}",
            self.train.len(),
            self.validation.len(),
            self.train.dim()
        )
    }

    fn fit_model(&self, spec: ModelSpec, from_diffusers: bool) -> Result<ModelSpec> {
        let dim = self.train.dim();
        Ok(match spec {
            _ if from_diffusers => bail!("--init-diffusers needs an image data set"),
            ModelSpec::Mlp(c) => ModelSpec::Mlp(cdm_models::MlpConfig { dim, ..c }),
            ModelSpec::PlainMlp(c) => ModelSpec::PlainMlp(cdm_models::PlainMlpConfig { dim, ..c }),
            ModelSpec::Unet(_) => bail!("point data sets need an MLP (`--model mlp` or `--model plain-mlp`)"),
        })
    }

    fn objective(&self, cfg: &ObjectiveConfig, batch_size: usize, _seed: u64) -> Result<WeightedSum> {
        // The authors fit the base to one batch; the improved path uses the whole training set.
        let faithful = cfg.cdl.as_ref().is_some_and(|c| c.mode == CdlMode::Faithful);
        let base = self.base(faithful.then_some(batch_size))?;
        // 1-D/2-D: ζ follows the integration's own logistic, as the authors' toy code does
        assemble_objective(cfg, base, batch_size, |itd| ZetaDistribution::Logistic(itd.config().proposal))
    }

    fn batches<'a>(
        &'a self,
        batch_size: usize,
        _grad_accumulation: usize,
        seed: u64,
        device: &'a Device,
    ) -> Result<Box<dyn BatchSource + 'a>> {
        let train = self.train.to_tensor(DType::F32, device)?;
        let n = self.train.len();
        let noise = NoiseSource::new(seed).fork("batches");
        Ok(Box::new(move |step: u64, micro: usize| -> cdm_train::Result<Tensor> {
            let mut rng = noise.fork_index(step).fork_index(micro as u64).streams(0, 1);
            let idx: Vec<u32> =
                rng.uniform_f64(batch_size).iter().map(|u| ((u * n as f64) as usize).min(n - 1) as u32).collect();
            Ok(train.index_select(&Tensor::from_vec(idx, batch_size, device)?, 0)?)
        }))
    }

    fn validation(&self, device: &Device) -> Result<Tensor> {
        Ok(self.validation.to_tensor(DType::F32, device)?)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        match &self.standardizer {
            Some(s) => write_json(&dir.join("standardizer.json"), s),
            None => Ok(()),
        }
    }

    fn measure(&self, out: &Path, x: &Tensor, cfg: &SampleConfig, title: &str) -> Result<Measurement> {
        let samples = write_samples(out, "samples", x)?;
        let (reference, dim) = (self.validation.data(), self.train.dim());
        let (mmd, fresh) = if samples.len() >= 2 {
            let held_out = cdm_metrics::mmd2(samples.data(), reference, dim, cfg.mmd_bandwidth)?;
            (Some(held_out), self.fresh_mmd(samples.data(), cfg.mmd_bandwidth)?)
        } else {
            (None, None)
        };
        let plot = if dim == 2 {
            let path = out.join("samples.png");
            let title = format!("{title} (MMD {})", super::run_data::format_metric(mmd, 5));
            cdm_metrics::scatter_vs_data(&path, samples.data(), reference, &title)?;
            Some(path)
        } else {
            None
        };
        Ok(Measurement {
            mmd,
            bandwidth: cfg.mmd_bandwidth,
            bandwidth_rule: "fixed",
            reference: self.validation.len(),
            fresh,
            plot,
        })
    }
}
