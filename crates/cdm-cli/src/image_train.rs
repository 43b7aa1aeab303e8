//! `cdm train` on images: the UNet, MSE or MSE + CDL, fine-tuning from a run or a diffusers
//! `UNet2DModel` directory, then a DDPM sample grid (PNG) from the EMA weights and its MMD.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use candle_core::{DType, Device, Tensor};
use cdm_core::{Chunked, GaussianBase};
use cdm_objectives::{WeightedSum, ZetaDistribution};
use cdm_train::Trainer;

use crate::config::{ModelSpec, ObjectiveConfig, RunConfig};
use crate::images::{ImageData, load_images, write_grid};
use crate::progress::SamplingProgress;
use crate::report::{SampleSummary, write_samples};
use crate::run_dir::{read_json, write_json};
use crate::sampling::SamplerArgs;
use crate::train::{SavedConfig, assemble_objective};
use crate::{device::parse_device, model, report, run_dir};

/// Rows per denoiser call of the training objective (UNet activations are large).
const MAX_ROWS: usize = 256;
/// Images the Gaussian base is fitted to.
const BASE_IMAGES: usize = 1024;
/// Smallest per-pixel variance of the base: constant pixels (padding, borders) would otherwise
/// give log λ ≈ −28 and drag the log-SNR proposal far into the noise-free end.
const MIN_PIXEL_VARIANCE: f64 = 1e-2;
/// Held-out images of the validation loss.
const VALIDATION_IMAGES: usize = 64;
/// Pixels are drawn as `GRID_SCALE × GRID_SCALE` blocks in the sample grid.
pub const GRID_SCALE: usize = 4;

/// Adapts the model spec to the data: a UNet gets the data's channels and sample size.
fn fit_spec(spec: ModelSpec, data: &ImageData, from_diffusers: bool) -> Result<ModelSpec> {
    let [c, h, w] = data.shape();
    let ModelSpec::Unet(mut u) = spec else {
        bail!("image data sets need the UNet (`--model unet` or [model] kind = \"unet\")");
    };
    if u.in_channels != c || u.out_channels != c {
        if from_diffusers {
            bail!("the diffusers UNet has {} input channels, the images {c}", u.in_channels);
        }
        u.in_channels = c;
        u.out_channels = c;
    }
    let factor = 1usize << u.block_out_channels.len().saturating_sub(1);
    if !h.is_multiple_of(factor) || !w.is_multiple_of(factor) {
        bail!("{h}×{w} images: the UNet needs sides divisible by {factor} (set data.pad_to or data.upsample)");
    }
    if u.sample_size.is_none() {
        u.sample_size =
            Some(if h == w { cdm_models::SampleSize::Square(h) } else { cdm_models::SampleSize::Rectangular([h, w]) });
    }
    Ok(ModelSpec::Unet(u))
}

/// The diagonal Gaussian base of the pixels of (up to) [`BASE_IMAGES`] training images, with
/// variances clamped below at [`MIN_PIXEL_VARIANCE`].
fn pixel_base(data: &ImageData, seed: u64) -> Result<GaussianBase> {
    let n = data.train.len().min(BASE_IMAGES);
    let x = data.train.batch(0, n, seed, false, DType::F64, &Device::Cpu)?;
    let mean = x.mean_keepdim(0)?;
    let var = (x.broadcast_sub(&mean)?.sqr()?.sum(0)? / (n - 1) as f64)?;
    let log_lambda: Vec<f64> =
        var.flatten_all()?.to_vec1::<f64>()?.into_iter().map(|v| v.max(MIN_PIXEL_VARIANCE).ln()).collect();
    Ok(GaussianBase::from_log_eigenvalues(log_lambda)?)
}

/// `w_std·L_std + w_cdl·L_cdl` for images: ζ ~ logistic(10.5, 1.5) clipped at 3 (ζ ∈ [6, 15],
/// the authors' image setting) unless configured, the log-SNR proposal from the pixel base.
pub fn build_image_objective(
    cfg: &ObjectiveConfig,
    data: &ImageData,
    seed: u64,
    batch_size: usize,
) -> Result<WeightedSum> {
    assemble_objective(cfg, pixel_base(data, seed)?, batch_size, |_| ZetaDistribution::images())
}

/// Trains an image run in `dir`; see [`crate::train::train_in`].
pub fn train_images(
    cfg: RunConfig,
    dir: PathBuf,
    init: Option<PathBuf>,
    from_diffusers: bool,
    resume: bool,
) -> Result<PathBuf> {
    let device = parse_device(&cfg.device)?;
    let data = load_images(&cfg.data)?;
    let spec = fit_spec(cfg.model.clone(), &data, from_diffusers)?;
    let cfg = RunConfig { model: spec.clone(), ..cfg };
    if !resume {
        let saved = SavedConfig {
            config: cfg.clone(),
            git_revision: run_dir::git_revision(),
            seed: cfg.train.seed,
            init: init.clone(),
            cdm_version: env!("CARGO_PKG_VERSION").into(),
        };
        write_json(&dir.join("config.json"), &saved)?;
        write_json(&dir.join("model.json"), &spec)?;
    }
    let [c, h, w] = data.shape();
    tracing::info!(
        run = %dir.display(), dataset = %cfg.data.dataset, images = data.train.len(), held_out = data.validation.len(),
        shape = %format!("{c}×{h}×{w}"), objective = %cfg.objective.label(), steps = cfg.train.steps, "training"
    );
    let (net, vars) = model::build_for(&spec, cfg.train.seed, &device, true)?;
    if let (Some(init), false) = (&init, resume) {
        let file = if init.is_dir() { init.join("ema.safetensors") } else { init.clone() };
        model::load_into(&spec, &file, &vars)?;
        tracing::info!(from = %file.display(), "initialised from checkpoint");
    }
    let objective = build_image_objective(&cfg.objective, &data, cfg.data.seed, cfg.train.batch_size)?;
    let validation = data.validation_tensor(VALIDATION_IMAGES, &device)?;
    let (batch_size, accumulation, seed, flip) =
        (cfg.train.batch_size, cfg.train.grad_accumulation as u64, cfg.train.seed, data.random_flip);
    let train = &data.train;
    let mut batches = |step: u64, micro: usize| -> cdm_train::Result<Tensor> {
        train
            .batch(step * accumulation + micro as u64, batch_size, seed, flip, DType::F32, &device)
            .map_err(|e| candle_core::Error::Msg(format!("image batch {step}: {e}")).into())
    };
    let capped = Chunked::new(&net, MAX_ROWS)?;
    let trainer = Trainer::new(cfg.train.clone(), model::named_vars(&vars), &capped, &objective, &dir)?;
    let summary = trainer.run(&mut batches, Some(&validation), resume)?;
    let seconds = summary.wall.as_secs_f64();
    let done = (summary.steps - summary.resumed_from).max(1);
    tracing::info!(
        steps = summary.steps,
        loss = summary.final_loss,
        seconds,
        seconds_per_step = seconds / done as f64,
        "training finished"
    );
    drop(net);
    report::loss_curve(&dir)?;
    if cfg.sample.n > 0 {
        sample_after_training(&dir, &cfg, &data, &device, seconds)?;
    }
    Ok(dir)
}

/// Samples the run's EMA weights with DDPM and writes the grid, samples and MMD.
fn sample_after_training(
    dir: &Path,
    cfg: &RunConfig,
    data: &ImageData,
    device: &Device,
    train_seconds: f64,
) -> Result<()> {
    let spec: ModelSpec = read_json(&dir.join("model.json"))?;
    let net = model::load(&spec, &dir.join("ema.safetensors"), device)?;
    let sampler = SamplerArgs { steps: Some(cfg.sample.steps), ..Default::default() };
    let mut progress = SamplingProgress::new(cfg.sample.steps, "sampling", cfg.train.progress);
    let (x, stats) = sampler.run(&net, cfg.sample.n, &data.shape(), cfg.sample.seed, device, &mut progress)?;
    progress.finish();
    let m = measure_images(dir, &x, data, cfg.sample.mmd_reference)?;
    let summary = SampleSummary {
        sampler: sampler.label(),
        n: cfg.sample.n,
        mmd: m.mmd,
        mmd_bandwidth: m.bandwidth,
        rounds: stats.rounds,
        nfe: stats.nfe,
        sample_seconds: stats.wall.as_secs_f64(),
        train_seconds,
    };
    write_json(&dir.join("summary.json"), &summary)?;
    println!(
        "run {}\n  MMD (pixels, median-heuristic b = {:.3}) of {} samples to {} held-out images: {:.5}\n  sampler {}: {} rounds, {} NFE, {:.1} s\n  grid: {}",
        dir.display(),
        m.bandwidth,
        cfg.sample.n,
        m.reference,
        m.mmd,
        summary.sampler,
        stats.rounds,
        stats.nfe,
        summary.sample_seconds,
        dir.join("samples.png").display()
    );
    Ok(())
}

/// The MMD of samples to held-out images.
pub struct ImageMmd {
    /// MMD² in pixel space.
    pub mmd: f64,
    /// Its bandwidth b (a variance): the median squared distance between held-out images.
    pub bandwidth: f64,
    /// Held-out images compared with.
    pub reference: usize,
}

/// Writes `samples.npy`, `samples.png` (a grid, pixels ×[`GRID_SCALE`]) and `data.png` (as many
/// held-out images) into `out`, and returns the pixel-space MMD² of the samples to
/// `reference` held-out images (0: all), with the median heuristic on the held-out images alone
/// (so every run on one data set uses the same kernel).
pub fn measure_images(out: &Path, x: &Tensor, data: &ImageData, reference: usize) -> Result<ImageMmd> {
    let samples = write_samples(out, "samples", x)?;
    let n = x.dim(0)?;
    let columns = (n as f64).sqrt().ceil() as usize;
    write_grid(&out.join("samples.png"), x, columns, GRID_SCALE)?;
    let shown = data.validation_tensor(n, &Device::Cpu)?;
    write_grid(&out.join("data.png"), &shown, columns, GRID_SCALE)?;
    let held = data.validation_tensor(reference, &Device::Cpu)?;
    let dim = samples.dim();
    let y = held.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let bandwidth = cdm_metrics::median_heuristic(&y, &[], dim)?;
    let mmd = if n >= 2 { cdm_metrics::mmd2(samples.data(), &y, dim, bandwidth)? } else { f64::NAN };
    Ok(ImageMmd { mmd, bandwidth, reference: held.dim(0)? })
}
