//! `cdm train`: train a point denoiser, then sample, measure and plot it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use cdm_core::{BaseCovariance, Chunked, GaussianBase, Itd, NoiseSource};
use cdm_objectives::{Cdl, CdlMode, ItdLoss, Mse, Objective, WeightedSum, ZetaDistribution};
use cdm_train::Trainer;

use crate::config::{CdlConfig, ModelSpec, ObjectiveConfig, RunConfig, StandardLoss};
use crate::points::{PointData, load_points};
use crate::run_dir::{self, read_json, write_json};
use crate::{device::parse_device, model, report};

/// Rows per denoiser call of the training objective.
const MAX_ROWS: usize = 1 << 16;

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
    /// or images: digits, mnist:DIR, fashion-mnist:DIR, cifar10:DIR, folder:DIR.
    #[arg(long)]
    pub dataset: Option<String>,
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
    /// CDL weight.
    #[arg(long)]
    pub cdl_weight: Option<f64>,
    /// Optimizer steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate.
    #[arg(long)]
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
}

/// The `config.json` of a run.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SavedConfig {
    /// The resolved configuration.
    pub config: RunConfig,
    /// `git rev-parse HEAD` when the run started.
    pub git_revision: String,
    /// The training seed.
    pub seed: u64,
    /// Weights the run started from, if fine-tuning.
    pub init: Option<PathBuf>,
    /// The cdm version.
    pub cdm_version: String,
}

/// Parses an `--objective` value.
pub fn parse_objective(label: &str, base: &ObjectiveConfig) -> Result<ObjectiveConfig> {
    let cdl = |mode| match mode {
        // the authors' setting: K = batch size, 2 instances
        CdlMode::Faithful => {
            Some(CdlConfig { mode, points: 0, instances: None, ..base.cdl.clone().unwrap_or_default() })
        }
        CdlMode::Improved => Some(CdlConfig { mode, ..base.cdl.clone().unwrap_or_default() }),
    };
    let (standard, cdl) = match label {
        "mse" => (StandardLoss::Mse, None),
        "itd" => (StandardLoss::Itd, None),
        "cdl" => (StandardLoss::None, cdl(CdlMode::Improved)),
        "mse+cdl" => (StandardLoss::Mse, cdl(CdlMode::Improved)),
        "itd+cdl" => (StandardLoss::Itd, cdl(CdlMode::Improved)),
        "mse+cdl-faithful" => (StandardLoss::Mse, cdl(CdlMode::Faithful)),
        "itd+cdl-faithful" => (StandardLoss::Itd, cdl(CdlMode::Faithful)),
        other => bail!(
            "unknown objective {other:?}: expected mse, itd, cdl, mse+cdl, itd+cdl, mse+cdl-faithful or itd+cdl-faithful"
        ),
    };
    Ok(ObjectiveConfig { standard, cdl, ..base.clone() })
}

fn resolve(args: &TrainArgs) -> Result<RunConfig> {
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<RunConfig>(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => RunConfig::default(),
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
    let images = crate::images::is_image_dataset(&cfg.data.dataset);
    if let Some(dir) = &args.init_diffusers {
        let files = cdm_models::CheckpointFiles::in_dir(dir);
        let unet: cdm_models::UnetConfig = cdm_models::checkpoint::load_config(&files.config)
            .with_context(|| format!("--init-diffusers {}", dir.display()))?;
        cfg.model = ModelSpec::Unet(unet);
    } else if images && !matches!(cfg.model, ModelSpec::Unet(_)) {
        // the point MLPs do not take images: the tiny UNet of the digits recipe
        cfg.model = ModelSpec::tiny_unet(1);
    }
    if images && args.samples.is_none() && cfg.sample.n == crate::config::SampleConfig::default().n {
        // 2000 DDPM samples of a UNet take long on a CPU: an 8×8 grid
        cfg.sample.n = 64;
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
    Ok(cfg)
}

/// Builds `w_std·L_std + w_cdl·L_cdl` with the Gaussian base fitted to the training data.
pub fn build_objective(cfg: &ObjectiveConfig, data: &PointData, batch_size: usize) -> Result<WeightedSum> {
    let dim = data.train.dim();
    let faithful = cfg.cdl.as_ref().is_some_and(|c| c.mode == CdlMode::Faithful);
    // The authors fit the base to one batch; the improved path uses the whole training set.
    let rows = if faithful { batch_size.min(data.train.len()) } else { data.train.len() };
    let base = GaussianBase::from_data(&data.train.data()[..rows * dim], rows, dim, BaseCovariance::Diagonal)?;
    // 1-D/2-D: ζ follows the integration's own logistic, as the authors' toy code does
    assemble_objective(cfg, base, batch_size, |itd| ZetaDistribution::Logistic(itd.config().proposal))
}

/// `w_std·L_std + w_cdl·L_cdl` over a Gaussian `base`; `default_zeta` picks ζ's distribution
/// when the config leaves it unset. Callers cap the rows per denoiser call by training a
/// [`Chunked`] net.
pub fn assemble_objective(
    cfg: &ObjectiveConfig,
    base: GaussianBase,
    batch_size: usize,
    default_zeta: fn(&Itd) -> ZetaDistribution,
) -> Result<WeightedSum> {
    let mut parts: Vec<(f64, Box<dyn Objective + Send + Sync>)> = Vec::new();
    match cfg.standard {
        StandardLoss::Mse => parts.push((cfg.standard_weight, Box::new(Mse::new(cdm_core::DiscreteSchedule::ddpm())))),
        StandardLoss::Itd => {
            let itd = Itd::from_base_heuristic(base.clone(), 3.0, 1)?;
            parts.push((cfg.standard_weight, Box::new(ItdLoss::new(itd))));
        }
        StandardLoss::None => {}
    }
    if let Some(c) = &cfg.cdl {
        let points = if c.points == 0 { batch_size } else { c.points };
        let itd = c.itd(base, points)?;
        let p = itd.config().proposal;
        tracing::info!(loc = p.loc, scale = p.scale, clip = p.clip, points, "CDL log-SNR proposal");
        let zeta = c.zeta.unwrap_or_else(|| default_zeta(&itd));
        parts.push((c.weight, Box::new(Cdl::new(itd, zeta, c.mode, c.instances)?)));
    }
    if parts.is_empty() {
        bail!("the objective has no part: choose a standard loss or a CDL");
    }
    Ok(WeightedSum::new(parts))
}

/// Fills `vars` from `--init`: a run directory (its EMA weights) or a safetensors file.
fn load_init(init: &Path, vars: &candle_nn::VarMap) -> Result<()> {
    let file = if init.is_dir() { init.join("ema.safetensors") } else { init.to_path_buf() };
    cdm_models::checkpoint::load_weights(&file, vars).with_context(|| format!("--init {}", file.display()))?;
    tracing::info!(from = %file.display(), "initialised from checkpoint");
    Ok(())
}

/// Runs `cdm train`.
pub fn run(args: &TrainArgs) -> Result<PathBuf> {
    match &args.resume {
        Some(dir) => {
            let saved: SavedConfig = read_json(&dir.join("config.json"))?;
            let mut cfg = saved.config;
            cfg.train.progress = !args.no_progress;
            cfg.train.steps = args.steps.unwrap_or(cfg.train.steps);
            if crate::images::is_image_dataset(&cfg.data.dataset) {
                return crate::image_train::train_images(cfg, dir.clone(), saved.init, false, true);
            }
            train_in(cfg, dir.clone(), saved.init, true)
        }
        None => {
            let cfg = resolve(args)?;
            let name = cfg.name.clone().unwrap_or_else(|| {
                format!(
                    "{}-{}-{}",
                    cfg.data.dataset.replace([':', '/'], "_"),
                    cfg.objective.label(),
                    run_dir::utc_stamp()
                )
            });
            let dir = run_dir::create(&args.runs_dir, &name)?;
            if crate::images::is_image_dataset(&cfg.data.dataset) {
                let diffusers = args.init_diffusers.as_ref().map(|d| cdm_models::CheckpointFiles::in_dir(d).weights);
                let from_diffusers = diffusers.is_some();
                let init = diffusers.or_else(|| args.init.clone());
                return crate::image_train::train_images(cfg, dir, init, from_diffusers, false);
            }
            if args.init_diffusers.is_some() {
                bail!("--init-diffusers needs an image data set");
            }
            train_in(cfg, dir, args.init.clone(), false)
        }
    }
}

/// Trains `cfg` in `dir` (created), from `init` weights if given, resuming if `resume`;
/// then plots the loss and samples the EMA model. Returns `dir`.
pub fn train_in(cfg: RunConfig, dir: PathBuf, init: Option<PathBuf>, resume: bool) -> Result<PathBuf> {
    let device = parse_device(&cfg.device)?;
    let data = load_points(&cfg.data)?;
    let spec = cfg.model.clone().with_dim(data.train.dim());
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
        if let Some(s) = &data.standardizer {
            write_json(&dir.join("standardizer.json"), s)?;
        }
    }
    tracing::info!(run = %dir.display(), dataset = %cfg.data.dataset, objective = %cfg.objective.label(), steps = cfg.train.steps, "training");

    let (net, vars) = model::build(&spec, cfg.train.seed, &device)?;
    if let (Some(init), false) = (&init, resume) {
        load_init(init, &vars)?;
    }
    let objective = build_objective(&cfg.objective, &data, cfg.train.batch_size)?;
    let train_x = data.train.to_tensor(DType::F32, &device)?;
    let validation = data.validation.to_tensor(DType::F32, &device)?;
    let batch_size = cfg.train.batch_size;
    let n = data.train.len();
    let batch_noise = NoiseSource::new(cfg.train.seed).fork("batches");
    let mut batches = |step: u64, micro: usize| -> cdm_train::Result<Tensor> {
        let mut rng = batch_noise.fork_index(step).fork_index(micro as u64).streams(0, 1);
        let idx: Vec<u32> =
            rng.uniform_f64(batch_size).iter().map(|u| ((u * n as f64) as usize).min(n - 1) as u32).collect();
        let idx = Tensor::from_vec(idx, batch_size, &device)?;
        Ok(train_x.index_select(&idx, 0)?)
    };
    let capped = Chunked::new(&net, MAX_ROWS)?;
    let trainer = Trainer::new(cfg.train.clone(), model::named_vars(&vars), &capped, &objective, &dir)?;
    let summary = trainer.run(&mut batches, Some(&validation), resume)?;
    tracing::info!(
        steps = summary.steps,
        loss = summary.final_loss,
        seconds = summary.wall.as_secs_f64(),
        "training finished"
    );
    report::loss_curve(&dir)?;
    if cfg.sample.n > 0 {
        report::sample_and_measure(&dir, &cfg, &data, &device, summary.wall.as_secs_f64())?;
    }
    Ok(dir)
}

/// The device a saved run trains on (for `cdm sample` and `cdm eval`).
pub fn run_device(cfg: &RunConfig, override_device: Option<&str>) -> Result<Device> {
    parse_device(override_device.unwrap_or(&cfg.device))
}
