//! `cdm sample`: draw samples from a trained run, or from a diffusers pipeline directory, with
//! any sampler.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use cdm_core::NoiseSource;
use cdm_dist::Collective;
use cdm_samplers::{SamplerNoise, SamplerStats};

use crate::data::{self, IMAGE_ROWS_PER_CALL, write_grid, write_samples};
use crate::pipeline::Pipeline;
use crate::progress::SamplingProgress;
use crate::run_dir::{SavedRun, Weights, write_json};
use crate::sampling::{Chain, SamplerArgs};
use crate::world;

/// Pixels are drawn as `GRID_SCALE × GRID_SCALE` blocks in a pipeline's sample grid.
const GRID_SCALE: usize = 4;

/// `cdm sample` options.
#[derive(Clone, Debug, clap::Args)]
pub struct SampleArgs {
    /// The run directory written by `cdm train`.
    #[arg(long, required_unless_present = "diffusers")]
    pub run: Option<PathBuf>,
    /// A diffusers DDPM/DDIM pipeline directory (`model_index.json`, `unet/`, `scheduler/`),
    /// sampled with its own scheduler settings; `--sampler` defaults to its scheduler's.
    #[arg(long, conflicts_with_all = ["run", "no_ema"])]
    pub diffusers: Option<PathBuf>,
    /// Sampler options.
    #[command(flatten)]
    pub sampler: SamplerArgs,
    /// Number of samples (image runs: an 8×8 grid is 64).
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    /// Seed of the sampler's noise (sample i depends only on (seed, i)).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start from this noise instead of the seed's: a safetensors file with `init` (N, …) and,
    /// for stochastic samplers, `steps` (S, N, …) standard normals (e.g. another library's draws).
    #[arg(long, conflicts_with_all = ["n", "seed"])]
    pub noise: Option<PathBuf>,
    /// Sample the raw weights instead of the EMA.
    #[arg(long)]
    pub no_ema: bool,
    /// Output directory (default: `<run or pipeline>/samples-<sampler>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the run's device (a pipeline's default is the CPU).
    #[arg(long)]
    pub device: Option<String>,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Split every denoiser call over the ranks of `mpirun -np N cdm sample …` (a cdm built with
    /// the `mpi` feature, `nccl` on CUDA): ParaDiGMS's window, or the batch; rank 0 writes.
    #[arg(long)]
    pub distributed: bool,
}

/// What `stats.json` records.
#[derive(serde::Serialize)]
struct Stats<'a> {
    sampler: &'a SamplerArgs,
    label: String,
    n: usize,
    seed: Option<u64>,
    noise: Option<&'a Path>,
    weights: String,
    rounds: usize,
    nfe: usize,
    forward_calls: usize,
    finished_sequentially: usize,
    wall_seconds: f64,
    /// Processes that shared the denoiser calls (`--distributed`).
    ranks: usize,
    mmd: Option<f64>,
    mmd_bandwidth: Option<f64>,
}

/// Runs `cdm sample`.
pub fn run(args: &SampleArgs) -> Result<PathBuf> {
    match (&args.diffusers, &args.run) {
        (Some(dir), _) => sample_pipeline(args, dir),
        (None, Some(run)) => sample_run(args, run),
        (None, None) => bail!("give --run DIR or --diffusers DIR"),
    }
}

/// Samples a run written by `cdm train` and measures the samples against its held-out data.
fn sample_run(args: &SampleArgs, run_dir: &Path) -> Result<PathBuf> {
    let run = SavedRun::open(run_dir)?;
    let (world, device) = world::join(args.distributed, args.device.as_deref().unwrap_or(&run.config().device))?;
    let world = world.as_ref();
    world::or_abort(world, || {
        let weights = if args.no_ema { Weights::Raw } else { Weights::Ema };
        let net = run.network(weights, &device)?;
        let data = data::load(&run.config().data)?;
        let label = args.sampler.label();
        let out = output_dir(args, run_dir, &label, world)?;
        let noise = sampler_noise(args, &data.sample_shape(), &device)?;
        let (x, stats) = draw(args, &net, &Chain::default(), &noise, &label, data.rows_per_call(), world)?;
        if !world.is_root() {
            return Ok(out);
        }
        let m = data.measure(&out, &x, &run.config().sample, &label)?;
        let mmd = (m.mmd, Some(m.bandwidth));
        let record = stats_record(args, &label, weights.file_name().into(), &stats, mmd, &noise, world);
        write_json(&out.join("stats.json"), &record)?;
        report(&label, &out, &stats, noise.batch());
        println!("  {}", m.describe(noise.batch()));
        if let Some(plot) = &m.plot {
            println!("  plot: {}", plot.display());
        }
        Ok(out)
    })
}

/// Samples a diffusers pipeline with its scheduler's settings; writes the samples and a grid.
fn sample_pipeline(args: &SampleArgs, dir: &Path) -> Result<PathBuf> {
    let (world, device) = world::join(args.distributed, args.device.as_deref().unwrap_or("cpu"))?;
    let world = world.as_ref();
    world::or_abort(world, || {
        let pipeline = Pipeline::open(dir, &device)?;
        let sampler = SamplerArgs {
            sampler: Some(args.sampler.sampler.unwrap_or(pipeline.default_sampler())),
            ..args.sampler.clone()
        };
        let args = &SampleArgs { sampler, ..args.clone() };
        let label = args.sampler.label();
        let out = output_dir(args, dir, &label, world)?;
        let noise = sampler_noise(args, &pipeline.sample_shape, &device)?;
        let (x, stats) = draw(args, &pipeline.denoiser, &pipeline.chain, &noise, &label, IMAGE_ROWS_PER_CALL, world)?;
        if !world.is_root() {
            return Ok(out);
        }
        write_samples(&out, "samples", &x)?;
        let grid = out.join("samples.png");
        write_grid(&grid, &x, (noise.batch() as f64).sqrt().ceil() as usize, GRID_SCALE)?;
        let weights = dir.join("unet").join(cdm_models::checkpoint::WEIGHTS_FILE).display().to_string();
        let record = stats_record(args, &label, weights, &stats, (None, None), &noise, world);
        write_json(&out.join("stats.json"), &record)?;
        report(&label, &out, &stats, noise.batch());
        println!("  grid: {}", grid.display());
        Ok(out)
    })
}

/// `--out`, else `<dir>/samples-<label>`, created by rank 0.
fn output_dir(args: &SampleArgs, dir: &Path, label: &str, world: &dyn Collective) -> Result<PathBuf> {
    let out = args.out.clone().unwrap_or_else(|| dir.join(format!("samples-{label}")));
    if world.is_root() {
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    }
    Ok(out)
}

/// The noise of `--noise FILE`, or `--n` samples of `--seed`'s.
fn sampler_noise(args: &SampleArgs, sample_shape: &[usize], device: &Device) -> Result<SamplerNoise> {
    let Some(path) = &args.noise else {
        // refused before the noise itself is drawn
        args.sampler.admit(args.n, sample_shape.iter().product())?;
        let source = NoiseSource::new(args.seed);
        return Ok(SamplerNoise::seeded(&source, 0, args.n, sample_shape, DType::F32, device)?);
    };
    let mut tensors = candle_core::safetensors::load(path, device)
        .with_context(|| format!("reading the noise file {}", path.display()))?;
    let mut take = |name: &str| -> Result<Option<Tensor>> {
        tensors.remove(name).map(|t| t.to_dtype(DType::F32)).transpose().map_err(Into::into)
    };
    let Some(init) = take("init")? else {
        bail!("{}: no tensor \"init\" (the initial noise, shape (N, {sample_shape:?}))", path.display());
    };
    if init.rank() != sample_shape.len() + 1 || init.dims()[1..] != *sample_shape {
        bail!("{}: \"init\" has shape {:?}, expected (N, {sample_shape:?})", path.display(), init.dims());
    }
    let steps = take("steps")?;
    SamplerNoise::explicit(init, steps).with_context(|| format!("{}", path.display()))
}

/// Runs the sampler over the ranks of `world`, with a progress bar on rank 0.
fn draw(
    args: &SampleArgs,
    d: &dyn cdm_core::Denoiser,
    chain: &Chain,
    noise: &SamplerNoise,
    label: &str,
    rows_per_call: usize,
    world: &dyn Collective,
) -> Result<(Tensor, SamplerStats)> {
    let show = !args.no_progress && world.is_root();
    let mut progress = SamplingProgress::new(args.sampler.step_count(), label, show);
    let out = args.sampler.sample(d, chain, noise, &mut progress, rows_per_call, world)?;
    progress.finish();
    Ok(out)
}

fn stats_record<'a>(
    args: &'a SampleArgs,
    label: &str,
    weights: String,
    stats: &SamplerStats,
    (mmd, mmd_bandwidth): (Option<f64>, Option<f64>),
    noise: &SamplerNoise,
    world: &dyn Collective,
) -> Stats<'a> {
    Stats {
        ranks: world.world_size(),
        sampler: &args.sampler,
        label: label.to_string(),
        n: noise.batch(),
        seed: args.noise.is_none().then_some(args.seed),
        noise: args.noise.as_deref(),
        weights,
        rounds: stats.rounds,
        nfe: stats.nfe,
        forward_calls: stats.forward_calls,
        finished_sequentially: stats.finished_sequentially,
        wall_seconds: stats.wall.as_secs_f64(),
        mmd,
        mmd_bandwidth,
    }
}

fn report(label: &str, out: &Path, stats: &SamplerStats, n: usize) {
    println!(
        "{label}: {n} samples → {}\n  {} rounds, {} NFE per sample, {:.2} s",
        out.display(),
        stats.rounds,
        stats.nfe,
        stats.wall.as_secs_f64()
    );
}
