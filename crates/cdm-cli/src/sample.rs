//! `cdm sample`: draw samples from a trained run with any sampler.

use std::path::PathBuf;

use anyhow::Result;
use cdm_samplers::SamplerStats;

use crate::config::ModelSpec;
use crate::points::load_points;
use crate::progress::SamplingProgress;
use crate::report::write_samples;
use crate::run_dir::{read_json, write_json};
use crate::sampling::SamplerArgs;
use crate::train::{SavedConfig, run_device};

/// `cdm sample` options.
#[derive(Clone, Debug, clap::Args)]
pub struct SampleArgs {
    /// The run directory written by `cdm train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Sampler options.
    #[command(flatten)]
    pub sampler: SamplerArgs,
    /// Number of samples (image runs: an 8×8 grid is 64).
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    /// Seed of the sampler's noise (sample i depends only on (seed, i)).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sample the raw weights instead of the EMA.
    #[arg(long)]
    pub no_ema: bool,
    /// Output directory (default: `<run>/samples-<sampler>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the run's device.
    #[arg(long)]
    pub device: Option<String>,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// What `stats.json` records.
#[derive(serde::Serialize)]
struct Stats<'a> {
    sampler: &'a SamplerArgs,
    label: String,
    n: usize,
    seed: u64,
    weights: &'a str,
    rounds: usize,
    nfe: usize,
    forward_calls: usize,
    finished_sequentially: usize,
    wall_seconds: f64,
    mmd: Option<f64>,
    mmd_bandwidth: Option<f64>,
}

impl<'a> Stats<'a> {
    fn new(args: &'a SampleArgs, weights: &'a str, stats: &SamplerStats, mmd: Option<f64>, bandwidth: f64) -> Self {
        Self {
            sampler: &args.sampler,
            label: args.sampler.label(),
            n: args.n,
            seed: args.seed,
            weights,
            rounds: stats.rounds,
            nfe: stats.nfe,
            forward_calls: stats.forward_calls,
            finished_sequentially: stats.finished_sequentially,
            wall_seconds: stats.wall.as_secs_f64(),
            mmd,
            mmd_bandwidth: Some(bandwidth),
        }
    }
}

/// Runs `cdm sample`.
pub fn run(args: &SampleArgs) -> Result<PathBuf> {
    let saved: SavedConfig = read_json(&args.run.join("config.json"))?;
    let spec: ModelSpec = read_json(&args.run.join("model.json"))?;
    let device = run_device(&saved.config, args.device.as_deref())?;
    let weights = if args.no_ema { "model.safetensors" } else { "ema.safetensors" };
    let net = crate::model::load(&spec, &args.run.join(weights), &device)?;
    let label = args.sampler.label();
    let out = args.out.clone().unwrap_or_else(|| args.run.join(format!("samples-{label}")));
    std::fs::create_dir_all(&out)?;
    let mut progress = SamplingProgress::new(args.sampler.steps.unwrap_or(1000), &label, !args.no_progress);
    let images = if crate::images::is_image_dataset(&saved.config.data.dataset) {
        Some(crate::images::load_images(&saved.config.data)?)
    } else {
        None
    };
    if let Some(data) = &images {
        let (x, stats) = args.sampler.run(&net, args.n, &data.shape(), args.seed, &device, &mut progress)?;
        progress.finish();
        let m = crate::image_train::measure_images(&out, &x, data, saved.config.sample.mmd_reference)?;
        let mmd = Some(m.mmd).filter(|v| v.is_finite());
        let record = Stats::new(args, weights, &stats, mmd, m.bandwidth);
        write_json(&out.join("stats.json"), &record)?;
        println!(
            "{label}: {} samples → {}\n  {} rounds, {} NFE per sample, {:.2} s, MMD (pixels, b = {:.3}, {} held-out images) {:.5}\n  grid: {}",
            args.n,
            out.display(),
            stats.rounds,
            stats.nfe,
            stats.wall.as_secs_f64(),
            m.bandwidth,
            m.reference,
            m.mmd,
            out.join("samples.png").display()
        );
        return Ok(out);
    }
    let data = load_points(&saved.config.data)?;
    let dim = data.train.dim();
    let (x, stats) = args.sampler.run(&net, args.n, &[dim], args.seed, &device, &mut progress)?;
    progress.finish();
    let samples = write_samples(&out, "samples", &x)?;
    let mmd = cdm_metrics::mmd2(samples.data(), data.validation.data(), dim, saved.config.sample.mmd_bandwidth).ok();
    if dim == 2 {
        let title = format!("{label} (MMD {:.5})", mmd.unwrap_or(f64::NAN));
        cdm_metrics::scatter_vs_data(out.join("samples.png"), samples.data(), data.validation.data(), &title)?;
    }
    let record = Stats::new(args, weights, &stats, mmd, saved.config.sample.mmd_bandwidth);
    write_json(&out.join("stats.json"), &record)?;
    println!(
        "{label}: {} samples → {}\n  {} rounds, {} NFE per sample, {:.2} s, MMD {:.5}",
        args.n,
        out.display(),
        stats.rounds,
        stats.nfe,
        stats.wall.as_secs_f64(),
        mmd.unwrap_or(f64::NAN)
    );
    Ok(out)
}
