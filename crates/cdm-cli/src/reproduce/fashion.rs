//! `cdm reproduce fashion-mnist`: CDL fine-tuning against MSE continued on Fashion-MNIST
//! 28×28, scored with FID and KID under a sequential, a parallel and a deterministic sampler.
//!
//! | recipe | what |
//! |---|---|
//! | `mse` | the UNet trained from scratch with the DDPM ε-MSE (training seed 0) |
//! | `mse+cdl-ft` | `mse` fine-tuned with ε-MSE + CDL at weight 1 (losses summed over pixels, the paper's ratio) |
//! | `mse-cont` | `mse` continued with the ε-MSE alone for the same steps: the control at equal steps |
//!
//! Both fine-tunes start from `mse`'s EMA weights at a quarter of its learning rate, one run
//! per fine-tune seed. Each is scored on `draws` draws of `samples` images per sampler:
//!
//! | sampler | what it measures |
//! |---|---|
//! | DDIM-50, η = 0 | the sequential baseline |
//! | ParaDiGMS over that DDIM-50 chain, whole window, τ = 0.1, in groups of `group` samples | the parallel sampler, which evaluates the denoiser off the converged path |
//! | EDM Heun, 18 steps (35 NFE) | the paper's deterministic sampler |
//!
//! Draw `r` of fine-tune seed `s` takes its sampler noise from [`draw_seed`]`(s, r)`: the
//! recipes share it (a paired design) and no two draws do. FID and KID are taken against the
//! first `references` test images ([`crate::image_metrics`]); the data's own floor is the same
//! scores for `samples` training images per draw.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use cdm_core::Denoiser;
use cdm_data::ImageDataset;
use serde::{Deserialize, Serialize};

use super::dino::draw_seed;
use super::fashion_report::FashionRuns;
use super::plan::{Budget, Recipe};
use super::report::RecipeRuns;
use super::{Reproduction, runs};
use crate::config::{CdlConfig, ModelSpec, ObjectiveConfig, RunConfig, StandardLoss};
use crate::data::{IMAGE_ROWS_PER_CALL, load_images, write_grid};
use crate::dataset::{DatasetSpec, IdxFamily};
use crate::image_metrics::{FidScorer, ImageScore};
use crate::progress::SamplingProgress;
use crate::run_dir::{Weights, read_json, write_json};
use crate::sampling::{SamplerArgs, SamplerKind};
use crate::train::Init;

/// Where `apt-get install dataset-fashion-mnist` puts the IDX files.
pub const DEFAULT_DATA_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The ParaDiGMS tolerance (the paper's).
const TOLERANCE: f64 = 0.1;

/// Seed of the floor's first draw of training images (draw r: `FLOOR_SEED + r`).
const FLOOR_SEED: u64 = 0xf1_0025;

/// Images in each recipe's sample grid.
const GRID_IMAGES: usize = 64;

/// The settings of one budget.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FashionPlan {
    /// The UNet.
    pub model: ModelSpec,
    /// Images per training step.
    pub batch_size: usize,
    /// Steps of the `mse` run.
    pub steps: u64,
    /// Steps of each fine-tune and of its control.
    pub finetune_steps: u64,
    /// Fine-tune seeds per recipe.
    pub seeds: u64,
    /// Images per draw and sampler.
    pub samples: usize,
    /// Draws per fine-tune seed.
    pub draws: usize,
    /// Test images of the reference (0: all 10 000).
    pub references: usize,
    /// Steps of the DDIM chain (sequential and under ParaDiGMS).
    pub ddim_steps: usize,
    /// Steps of EDM Heun (2·steps − 1 evaluations).
    pub edm_steps: usize,
    /// Samples per ParaDiGMS batch (its convergence test is batch-global).
    pub group: usize,
}

impl FashionPlan {
    /// The plan of `budget`; `seeds` overrides its number of fine-tune seeds.
    pub fn new(budget: Budget, seeds: Option<u64>) -> Self {
        let plan = match budget {
            Budget::Quick => FashionPlan {
                model: unet(&[32, 64, 64], 8),
                batch_size: 32,
                steps: 600,
                finetune_steps: 150,
                seeds: 1,
                samples: 50,
                draws: 3,
                references: 1000,
                ddim_steps: 50,
                edm_steps: 18,
                group: 50,
            },
            Budget::Standard => FashionPlan {
                model: unet(&[32, 64, 64], 8),
                batch_size: 32,
                steps: 1500,
                finetune_steps: 300,
                seeds: 1,
                samples: 64,
                draws: 3,
                references: 0,
                ddim_steps: 50,
                edm_steps: 18,
                group: 64,
            },
            Budget::Paper => FashionPlan {
                model: unet(&[64, 128, 128], 32),
                batch_size: 64,
                steps: 100_000,
                finetune_steps: 10_000,
                seeds: 3,
                samples: 10_000,
                draws: 3,
                references: 0,
                ddim_steps: 50,
                edm_steps: 18,
                group: 64,
            },
            Budget::Smoke => FashionPlan {
                model: unet(&[8, 16], 4),
                batch_size: 4,
                steps: 3,
                finetune_steps: 2,
                seeds: 1,
                samples: 4,
                draws: 2,
                references: 6,
                ddim_steps: 4,
                edm_steps: 3,
                group: 2,
            },
        };
        FashionPlan { seeds: seeds.unwrap_or(plan.seeds), ..plan }
    }

    /// What a cached draw must have been measured with.
    fn sizes(&self) -> [usize; 5] {
        [self.samples, self.references, self.ddim_steps, self.edm_steps, self.group]
    }

    /// The three samplers, labelled: DDIM, ParaDiGMS over the same DDIM chain, EDM Heun.
    pub fn samplers(&self) -> [(&'static str, SamplerArgs); 3] {
        let ddim = SamplerArgs { sampler: Some(SamplerKind::Ddim), steps: Some(self.ddim_steps), ..Default::default() };
        let paradigms = SamplerArgs { parallel: true, window: None, tolerance: TOLERANCE, ..ddim.clone() };
        let edm = SamplerArgs { sampler: Some(SamplerKind::Edm), steps: Some(self.edm_steps), ..Default::default() };
        [("ddim", ddim), ("paradigms", paradigms), ("edm", edm)]
    }
}

/// A UNet for 28×28: `channels` per level (attention at the lowest), one ResNet block each.
fn unet(channels: &[usize], groups: usize) -> ModelSpec {
    let ModelSpec::Unet(tiny) = ModelSpec::tiny_unet(1) else { unreachable!("tiny_unet is a UNet") };
    let levels = channels.len();
    let down = (0..levels).map(|i| if i + 1 == levels { "AttnDownBlock2D" } else { "DownBlock2D" });
    let up = (0..levels).map(|i| if i == 0 { "AttnUpBlock2D" } else { "UpBlock2D" });
    ModelSpec::Unet(cdm_models::UnetConfig {
        down_block_types: down.map(String::from).collect(),
        up_block_types: up.map(String::from).collect(),
        block_out_channels: channels.to_vec(),
        norm_num_groups: groups,
        ..tiny
    })
}

/// The file of `key`'s sample grid under sampler `label`, in the reproduction's directory.
pub fn grid_file(key: &str, label: &str) -> String {
    format!("fashion-{}-{label}.png", key.replace('+', "-"))
}

/// The recipes, in training order.
pub fn recipes() -> Vec<Recipe> {
    let mse = ObjectiveConfig { standard: StandardLoss::Mse, standard_weight: 1.0, cdl: None };
    // improved CDL (common random numbers) with 4 instances × 8 points: 64 extra rows a step;
    // ζ ~ logistic(10.5, 1.5) clipped at 3 (the paper's image range), proposal from the pixel base
    let cdl = CdlConfig { points: 8, instances: Some(4), ..CdlConfig::default() };
    vec![
        Recipe { key: "mse", label: "DDPM ε-MSE from scratch", objective: mse.clone(), init: None },
        Recipe {
            key: "mse+cdl-ft",
            label: "fine-tuned with ε-MSE + CDL (improved, weight 1)",
            objective: ObjectiveConfig { cdl: Some(cdl), ..mse.clone() },
            init: Some("mse"),
        },
        Recipe {
            key: "mse-cont",
            label: "ε-MSE continued (control of the fine-tune)",
            objective: mse,
            init: Some("mse"),
        },
    ]
}

/// One sampler's result on one draw.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SamplerRun {
    /// FID and KID of the draw.
    pub score: ImageScore,
    /// Sequential depth (Picard rounds for ParaDiGMS), mean over its groups.
    pub rounds: f64,
    /// Denoiser evaluations per sample, mean over its groups.
    pub nfe: f64,
    /// Wall seconds of sampling the draw.
    pub seconds: f64,
}

/// One draw of one fine-tune seed (`eval-fashion-draw<r>.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FashionDraw {
    /// The plan's sizes it was measured with.
    pub sizes: [usize; 5],
    /// DDIM, ParaDiGMS over DDIM, EDM Heun (the order of [`FashionPlan::samplers`]).
    pub samplers: Vec<SamplerRun>,
}

/// The data's floor: training images against the same reference (`floor.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Floor {
    /// The plan's sizes it was measured with.
    pub sizes: [usize; 5],
    /// One score per draw.
    pub draws: Vec<ImageScore>,
}

/// The data set spec of `dir`, refused with the install command when its files are missing.
pub fn dataset(dir: &Path) -> Result<DatasetSpec> {
    if !dir.join("train-images-idx3-ubyte.gz").is_file() && !dir.join("train-images-idx3-ubyte").is_file() {
        bail!(
            "no Fashion-MNIST in {}: install it with `apt-get install dataset-fashion-mnist` (files in {DEFAULT_DATA_DIR}) \
             or pass --data DIR holding train-images-idx3-ubyte[.gz] and the t10k files",
            dir.display()
        );
    }
    Ok(DatasetSpec::Idx(IdxFamily::FashionMnist, dir.to_path_buf()))
}

/// The run configuration of `recipe` at `seed`.
pub fn run_config(plan: &FashionPlan, recipe: &Recipe, data: &DatasetSpec, seed: u64, device: &str) -> RunConfig {
    let mut cfg = RunConfig::image_defaults();
    cfg.device = device.to_string();
    cfg.name = Some(format!("fashion-mnist-{}-seed{seed}", recipe.key));
    cfg.data.dataset = data.clone();
    cfg.data.n_validation = 0;
    cfg.model = plan.model.clone();
    cfg.objective = recipe.objective.clone();
    let t = &mut cfg.train;
    t.batch_size = plan.batch_size;
    t.seed = seed;
    if recipe.init.is_some() {
        (t.steps, t.lr, t.warmup_steps, t.ema_decay) = (plan.finetune_steps, t.lr / 4.0, 0, 0.995);
    } else {
        (t.steps, t.warmup_steps) = (plan.steps, (plan.steps / 20).min(t.warmup_steps));
    }
    (t.validate_every, t.checkpoint_every) = (t.steps.div_ceil(10).max(1), t.steps.div_ceil(20).max(1));
    cfg.sample.n = 0; // scored here instead
    cfg
}

/// Samples and scores one trained model.
pub struct Scorer<'a> {
    /// The plan.
    pub plan: &'a FashionPlan,
    /// FID network and reference features.
    pub fid: &'a FidScorer,
    /// `[C, H, W]`.
    pub shape: [usize; 3],
    /// Where the model computes.
    pub device: &'a Device,
    /// Show progress bars.
    pub progress: bool,
}

impl Scorer<'_> {
    /// Draw `draw` of fine-tune seed `seed` under every sampler; with `grids`, writes the first
    /// images of each sampler to `grids(label)`.
    pub fn draw(
        &self,
        net: &dyn Denoiser,
        seed: u64,
        draw: usize,
        grids: Option<&dyn Fn(&str) -> PathBuf>,
    ) -> Result<FashionDraw> {
        let noise = draw_seed(seed, draw);
        let mut samplers = Vec::new();
        for (label, args) in self.plan.samplers() {
            let started = Instant::now();
            let group = if args.parallel { self.plan.group } else { self.plan.samples };
            let (mut parts, mut rounds, mut nfe) = (Vec::new(), 0.0, 0.0);
            let groups = self.plan.samples.div_ceil(group);
            for g in 0..groups {
                let rows = g * group..((g + 1) * group).min(self.plan.samples);
                let what = format!("{label} {}/{groups}", g + 1);
                let mut bar = SamplingProgress::new(args.step_count(), &what, self.progress);
                let (x, stats) =
                    args.run_rows(net, rows, &self.shape, noise, self.device, &mut bar, IMAGE_ROWS_PER_CALL)?;
                bar.finish();
                parts.push(x);
                rounds += stats.rounds as f64 / groups as f64;
                nfe += stats.nfe as f64 / groups as f64;
            }
            let seconds = started.elapsed().as_secs_f64();
            let x = Tensor::cat(&parts, 0)?;
            if let Some(path) = grids.map(|g| g(label)) {
                let n = GRID_IMAGES.min(x.dim(0)?);
                write_grid(&path, &x.narrow(0, 0, n)?, (n as f64).sqrt().ceil() as usize, 2)?;
            }
            let score = self.fid.score_images(&x, &format!("features {label}"), noise)?;
            tracing::info!(seed, draw, sampler = label, fid = score.fid, kid = score.kid, nfe, "scored");
            samplers.push(SamplerRun { score, rounds, nfe, seconds });
        }
        Ok(FashionDraw { sizes: self.plan.sizes(), samplers })
    }
}

/// The data floor, cached in `path`: `samples` training images per draw (seeded) against the
/// reference.
pub fn floor(plan: &FashionPlan, fid: &FidScorer, train: &ImageDataset, path: &Path) -> Result<Floor> {
    if let Ok(cached) = read_json::<Floor>(path)
        && cached.sizes == plan.sizes()
    {
        return Ok(cached);
    }
    let draws = (0..plan.draws)
        .map(|r| {
            let seed = FLOOR_SEED + r as u64;
            let idx: Vec<usize> = train.shuffled_indices(seed, 0).into_iter().take(plan.samples).collect();
            let x = train.to_tensor(&idx, &[], candle_core::DType::F32, &Device::Cpu)?;
            fid.score_images(&x, &format!("features of training images, draw {r}"), seed)
        })
        .collect::<Result<Vec<_>>>()?;
    let floor = Floor { sizes: plan.sizes(), draws };
    write_json(path, &floor)?;
    Ok(floor)
}

/// The reference: the first `plan.references` test images (all if 0), with their features
/// cached under `dir`.
pub fn fid_scorer(
    plan: &FashionPlan,
    data: &DatasetSpec,
    weights: Option<&Path>,
    dir: &Path,
    device: &Device,
    progress: bool,
) -> Result<(FidScorer, ImageDataset)> {
    let cfg = crate::config::DataConfig { dataset: data.clone(), n_validation: plan.references, ..Default::default() };
    let images = load_images(&cfg).context("Fashion-MNIST")?;
    let n = images.validation.len();
    let cache = dir.join(format!("reference-features-{n}.safetensors"));
    let fid = FidScorer::new(weights, || images.validation_tensor(0, &Device::Cpu), &cache, device, progress)?;
    Ok((fid, images.train))
}

impl Reproduction<'_> {
    /// Trains the base run and every fine-tune seed of `recipes[1..]` from it, and scores
    /// every draw (each draw cached in its own file, so an interrupted run loses at most one).
    pub(super) fn fashion<'r>(&self, plan: &FashionPlan, recipes: &'r [Recipe]) -> Result<FashionRuns<'r>> {
        let data = dataset(&self.args.data)?;
        let root = self.args.out.join("fashion-mnist");
        let progress = !self.args.no_progress;
        let (fid, train) = fid_scorer(plan, &data, self.args.fid_weights.as_deref(), &root, self.device, progress)?;
        let floor = floor(plan, &fid, &train, &root.join("floor.json"))?;
        let scorer = Scorer { plan, fid: &fid, shape: train.shape(), device: self.device, progress };
        let base_dir = self.dir("fashion-mnist", recipes[0].key, 0);
        let base = runs::ensure_trained(&base_dir, &run_config(plan, &recipes[0], &data, 0, &self.args.device), None)?;
        let mut runs: Vec<_> = recipes[1..].iter().map(|recipe| RecipeRuns { recipe, seeds: Vec::new() }).collect();
        for seed in 0..plan.seeds {
            for r in runs.iter_mut() {
                let dir = self.dir("fashion-mnist", r.recipe.key, seed);
                let cfg = run_config(plan, r.recipe, &data, seed, &self.args.device);
                let grids = |label: &str| self.args.out.join(grid_file(r.recipe.key, label));
                for draw in 0..plan.draws {
                    let grid = (seed == 0 && draw == 0).then_some(&grids as &dyn Fn(&str) -> PathBuf);
                    let measured = self.measured(
                        &dir,
                        &cfg,
                        Some(Init::Weights(base_dir.clone())),
                        &format!("eval-fashion-draw{draw}.json"),
                        |d: &FashionDraw| d.sizes == plan.sizes(),
                        |_, run| scorer.draw(&run.network(Weights::Ema, self.device)?, seed, draw, grid),
                    )?;
                    r.seeds.push(measured);
                }
            }
        }
        Ok(FashionRuns { runs, floor, base })
    }
}
