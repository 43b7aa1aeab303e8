//! `cdm train`: resolve the run config, train a denoiser on points or images, then sample,
//! measure and plot it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::Device;
use cdm_core::Chunked;
use cdm_dist::Collective;
use cdm_objectives::CdlMode;
use cdm_train::Trainer;

use crate::config::{ModelSpec, RunConfig};
use crate::dataset::{DataKind, DatasetSpec};
use crate::model::{Network, load_weights, named_vars};
use crate::objective::parse_objective;
use crate::run_dir::{self, SavedConfig, SavedRun, Weights, write_json};
use crate::run_lock::RunLock;
use crate::sampling::SamplerArgs;
use crate::{admission, data, report, world};

/// `cdm train` options; flags override the TOML config, which overrides the defaults.
#[derive(Clone, Debug, clap::Args)]
pub struct TrainArgs {
    /// TOML file with any fields of the run config (see configs/).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run name (directory under --runs-dir).
    #[arg(long)]
    pub name: Option<String>,
    /// Where run directories go.
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Toy name (dino, moons, circles, rings, swiss-roll, 8gaussians, pinwheel, two-spirals, checkerboard, gmm1d), csv:PATH,
    /// or images: digits, mnist:DIR, fashion-mnist:DIR, cifar10:DIR, folder:DIR, and with the `hub`
    /// feature hub:mnist, hub:fashion-mnist, hub:cifar10, hub:OWNER/NAME[/CONFIG].
    #[arg(long)]
    pub dataset: Option<DatasetSpec>,
    /// Model: mlp (the paper's residual MLP), plain-mlp, or unet (images; default for image data sets).
    #[arg(long)]
    pub model: Option<String>,
    /// Objective: mse, itd, cdl, mse+cdl, itd+cdl, mse+cdl-faithful, itd+cdl-faithful.
    #[arg(long)]
    pub objective: Option<String>,
    /// CDL integration points K per log-density (0: the batch size).
    #[arg(long)]
    pub cdl_points: Option<usize>,
    /// CDL instances per batch.
    #[arg(long)]
    pub cdl_instances: Option<usize>,
    /// CDL weight, relative to the standard loss summed over dimensions (1: the paper's).
    #[arg(long, allow_negative_numbers = true)]
    pub cdl_weight: Option<f64>,
    /// Optimizer steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Seed of the initialisation and of every training random number.
    #[arg(long)]
    pub seed: Option<u64>,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long)]
    pub device: Option<String>,
    /// Samples drawn after training (0: skip).
    #[arg(long)]
    pub samples: Option<usize>,
    /// Start from these weights (a run directory's EMA, or a .safetensors file): fine-tuning.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Fine-tune a diffusers `UNet2DModel` directory (config.json + diffusion_pytorch_model.safetensors);
    /// its config defines the model.
    #[arg(long, conflicts_with = "init")]
    pub init_diffusers: Option<PathBuf>,
    /// Continue an interrupted run in this directory from its latest checkpoint.
    #[arg(long, conflicts_with_all = ["config", "name", "init", "init_diffusers"])]
    pub resume: Option<PathBuf>,
    /// Hide progress bars.
    #[arg(long)]
    pub no_progress: bool,
    /// Data-parallel over the ranks of `mpirun -np N cdm train …` (a cdm built with the `mpi`
    /// feature, `nccl` on CUDA): each rank takes 1/N of every batch; rank 0 writes the run.
    #[arg(long)]
    pub distributed: bool,
}

/// Where the first weights of a fine-tuning run come from.
#[derive(Clone, Debug)]
pub enum Init {
    /// `--init`: a run directory (its EMA weights) or a safetensors file.
    Weights(PathBuf),
    /// `--init-diffusers`: a diffusers `UNet2DModel` directory, whose config defines the model.
    Diffusers(PathBuf),
}

impl Init {
    /// The safetensors file to load.
    pub fn weights_file(&self) -> PathBuf {
        match self {
            Init::Weights(p) if p.is_dir() => p.join(Weights::Ema.file_name()),
            Init::Weights(p) => p.clone(),
            Init::Diffusers(dir) => cdm_models::CheckpointFiles::in_dir(dir).weights,
        }
    }

    fn flag(&self) -> &'static str {
        match self {
            Init::Weights(_) => "--init",
            Init::Diffusers(_) => "--init-diffusers",
        }
    }
}

/// The config of a new run: the defaults of its data kind, then `--config`, then the flags.
fn resolve(args: &TrainArgs) -> Result<RunConfig> {
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            RunConfig::from_toml(&text, args.dataset.as_ref()).with_context(|| format!("parsing {}", path.display()))?
        }
        None => RunConfig::defaults_for(args.dataset.as_ref().map_or(DataKind::Points, DatasetSpec::kind)),
    };
    if let Some(v) = &args.name {
        cfg.name = Some(v.clone());
    }
    if let Some(v) = &args.dataset {
        cfg.data.dataset = v.clone();
    }
    if let Some(m) = &args.model {
        cfg.model = match m.as_str() {
            "mlp" => ModelSpec::Mlp(Default::default()),
            "plain-mlp" => ModelSpec::PlainMlp(Default::default()),
            "unet" => ModelSpec::tiny_unet(1),
            other => bail!("unknown model {other:?}: expected mlp, plain-mlp or unet"),
        };
    }
    if let Some(dir) = &args.init_diffusers {
        let files = cdm_models::CheckpointFiles::in_dir(dir);
        let unet: cdm_models::UnetConfig = cdm_models::checkpoint::load_config(&files.config)
            .with_context(|| format!("--init-diffusers {}", dir.display()))?;
        cfg.model = ModelSpec::Unet(unet);
    }
    if let Some(v) = &args.objective {
        cfg.objective = parse_objective(v, &cfg.objective)?;
    }
    if let Some(c) = cfg.objective.cdl.as_mut() {
        c.points = args.cdl_points.unwrap_or(c.points);
        c.instances = args.cdl_instances.or(c.instances);
        c.weight = args.cdl_weight.unwrap_or(c.weight);
    }
    cfg.train.steps = args.steps.unwrap_or(cfg.train.steps);
    cfg.train.batch_size = args.batch_size.unwrap_or(cfg.train.batch_size);
    cfg.train.lr = args.lr.unwrap_or(cfg.train.lr);
    cfg.train.seed = args.seed.unwrap_or(cfg.train.seed);
    cfg.train.progress = !args.no_progress;
    cfg.device = args.device.clone().unwrap_or(cfg.device);
    cfg.sample.n = args.samples.unwrap_or(cfg.sample.n);
    cfg.train.validate()?;
    cfg.objective.validate()?;
    Ok(cfg)
}

/// Runs `cdm train`.
pub fn run(args: &TrainArgs) -> Result<PathBuf> {
    if let Some(dir) = &args.resume {
        let mut cfg = SavedRun::open(dir)?.saved.config;
        cfg.train.progress = !args.no_progress;
        cfg.train.steps = args.steps.unwrap_or(cfg.train.steps);
        let (world, device) = world::join(args.distributed, &cfg.device)?;
        return world::or_abort(world.as_ref(), || {
            let _lock = world.is_root().then(|| RunLock::acquire(dir)).transpose()?;
            train_run(cfg, dir, world.as_ref(), &device, None, true)
        });
    }
    let cfg = resolve(args)?;
    let (world, device) = world::join(args.distributed, &cfg.device)?;
    world::or_abort(world.as_ref(), || {
        let name = cfg.name.clone().unwrap_or_else(|| {
            let dataset = cfg.data.dataset.to_string().replace([':', '/'], "_");
            format!("{dataset}-{}-{}", cfg.objective.label(), run_dir::utc_stamp())
        });
        let name = world::root_text(world.as_ref(), name)?;
        let _lock = world.is_root().then(|| run_dir::claim(&args.runs_dir, &name)).transpose()?;
        let init = match (&args.init, &args.init_diffusers) {
            (_, Some(d)) => Some(Init::Diffusers(d.clone())),
            (Some(w), None) => Some(Init::Weights(w.clone())),
            (None, None) => None,
        };
        train_run(cfg, &args.runs_dir.join(&name), world.as_ref(), &device, init, false)
    })
}

/// Refuses a run whose batches (the CDL adds 2·K rows per instance) or post-training samples
/// would exceed the memory limit, before any training.
fn admit(cfg: &RunConfig, per_row: usize) -> Result<()> {
    let batch = cfg.train.batch_size;
    let rows = match &cfg.objective.cdl {
        Some(c) => {
            let points = if c.points == 0 { batch } else { c.points };
            let default_instances = if c.mode == CdlMode::Faithful { 2 } else { batch };
            let instances = c.instances.unwrap_or(default_instances).min(batch);
            batch.saturating_add(instances.saturating_mul(points).saturating_mul(2))
        }
        None => batch,
    };
    admission::admit(&format!("--batch-size {batch}"), admission::states(rows, per_row, 4))?;
    let sampler = SamplerArgs { steps: Some(cfg.sample.steps), ..Default::default() };
    match cfg.sample.n {
        0 => Ok(()),
        n => sampler.admit(n, per_row),
    }
}

/// Trains `cfg` in the run directory `dir` (locked by rank 0) on `device`, data-parallel over
/// `world`, from `init` weights if given, continuing from the latest checkpoint if `resume`;
/// then rank 0 plots the loss and samples the EMA weights. Returns the directory.
///
/// The one pipeline for every data kind: load the data ([`data::load`]), fit the model
/// spec to it, record `config.json` and `model.json`, build the network and the objective,
/// train, plot, sample and measure. Only rank 0 writes.
pub fn train_run(
    cfg: RunConfig,
    dir: &Path,
    world: &dyn Collective,
    device: &Device,
    init: Option<Init>,
    resume: bool,
) -> Result<PathBuf> {
    let dir = dir.to_path_buf();
    let data = data::load(&cfg.data)?;
    let spec = data.fit_model(cfg.model.clone(), matches!(init, Some(Init::Diffusers(_))))?;
    let cfg = RunConfig { model: spec.clone(), ..cfg };
    admit(&cfg, data.sample_shape().iter().product())?;
    if resume {
        run_dir::check_model_json(&dir, &spec)?;
    } else if world.is_root() {
        // config.json last: a run that has it has everything `--resume` reads
        write_json(&dir.join("model.json"), &spec)?;
        data.save(&dir)?;
        write_json(&dir.join("config.json"), &SavedConfig::new(cfg.clone(), init.as_ref().map(Init::weights_file)))?;
    }
    tracing::info!(
        run = %dir.display(), dataset = %cfg.data.dataset, data = %data.describe(), objective = %cfg.objective.label(),
        steps = cfg.train.steps, "training"
    );
    let (net, vars) = Network::build(&spec, cfg.train.seed, device, true)?;
    if let (Some(init), false) = (&init, resume) {
        let file = init.weights_file();
        load_weights(&spec, &file, &vars).context(init.flag())?;
        tracing::info!(from = %file.display(), "initialised from checkpoint");
    }
    let objective = data.objective(&cfg.objective, cfg.train.batch_size, cfg.data.seed)?;
    let validation = data.validation(device)?;
    let train = &cfg.train;
    let mut batches = data.batches(train.batch_size, train.grad_accumulation, train.seed, device)?;
    let capped = Chunked::new(&net, data.rows_per_call())?;
    let trainer = Trainer::new(train.clone(), named_vars(&vars), &capped, &objective, &dir)?.distributed(world)?;
    let summary = trainer.run(batches.as_mut(), Some(&validation), resume)?;
    let seconds = summary.wall.as_secs_f64();
    let done = (summary.steps - summary.resumed_from).max(1);
    tracing::info!(
        steps = summary.steps,
        loss = summary.final_loss,
        seconds,
        seconds_per_step = seconds / done as f64,
        "training finished"
    );
    drop(trainer);
    drop(net);
    if !world.is_root() {
        return Ok(dir);
    }
    report::loss_curve(&dir)?;
    if cfg.sample.n > 0 {
        report::sample_after_training(&dir, &cfg, data.as_ref(), device, seconds)?;
    }
    Ok(dir)
}
