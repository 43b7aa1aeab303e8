//! `cdm sample`: draw samples from a trained run with any sampler.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::data;
use crate::progress::SamplingProgress;
use crate::run_dir::{SavedRun, Weights, write_json};
use crate::sampling::SamplerArgs;

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
    mmd_bandwidth: f64,
}

/// Runs `cdm sample`.
pub fn run(args: &SampleArgs) -> Result<PathBuf> {
    let run = SavedRun::open(&args.run)?;
    let device = run.device(args.device.as_deref())?;
    let weights = if args.no_ema { Weights::Raw } else { Weights::Ema };
    let net = run.network(weights, &device)?;
    let data = data::load(&run.config().data)?;
    let label = args.sampler.label();
    let out = args.out.clone().unwrap_or_else(|| args.run.join(format!("samples-{label}")));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut progress = SamplingProgress::new(args.sampler.steps.unwrap_or(1000), &label, !args.no_progress);
    let shape = data.sample_shape();
    let (x, stats) = args.sampler.run(&net, args.n, &shape, args.seed, &device, &mut progress, data.rows_per_call())?;
    progress.finish();
    let m = data.measure(&out, &x, &run.config().sample, &label)?;
    let record = Stats {
        sampler: &args.sampler,
        label: label.clone(),
        n: args.n,
        seed: args.seed,
        weights: weights.file_name(),
        rounds: stats.rounds,
        nfe: stats.nfe,
        forward_calls: stats.forward_calls,
        finished_sequentially: stats.finished_sequentially,
        wall_seconds: stats.wall.as_secs_f64(),
        mmd: m.mmd,
        mmd_bandwidth: m.bandwidth,
    };
    write_json(&out.join("stats.json"), &record)?;
    println!(
        "{label}: {} samples → {}\n  {} rounds, {} NFE per sample, {:.2} s\n  {}",
        args.n,
        out.display(),
        stats.rounds,
        stats.nfe,
        stats.wall.as_secs_f64(),
        m.describe(args.n)
    );
    if let Some(plot) = &m.plot {
        println!("  plot: {}", plot.display());
    }
    Ok(out)
}
