//! `cdm reproduce dino|gmm1d|all`: the paper's comparisons, with our code, on this machine,
//! with error bars.
//!
//! - **Dino** ([`dino`]): six recipes ([`plan::dino_recipes`]: the DDPM baseline, the ITD loss
//!   alone, the paper's ITD + faithful CDL, our ε-MSE + improved CDL from scratch and as a
//!   fine-tune of DDPM, and DDPM continued for the same steps), each trained on several seeds,
//!   each seed scored under sequential DDPM-1000 and ParaDiGMS (whole chain and p = 32,
//!   τ = 0.1) against fresh reference points.
//! - **Figure 1** ([`figure1`]): the score error of DDPM, ITD + CDL and ε-MSE + CDL on the 1-D
//!   two-mode mixture, near and away from the forward paths.
//!
//! `report.md` holds mean ± SD over seeds, each comparison's Welch 95 % interval with its
//! verdict, and the paper's numbers beside ours ([`report`]). Every run directory is cached
//! and resumable ([`runs`]): re-running skips finished training and scoring, and an
//! interrupted run resumes bit-exactly from its last checkpoint.

mod dino;
mod fashion;
mod fashion_report;
mod figure1;
mod plan;
mod report;
mod runs;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use cdm_data::Toy;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use plan::Budget;
use plan::{Plan, Recipe};
use report::RecipeRuns;

use crate::config::RunConfig;
use crate::data::load_points;
use crate::dataset::DatasetSpec;
use crate::run_dir::{SavedRun, Weights, git_revision, read_json, utc_stamp, write_json};
use crate::train::Init;

/// Seed of the fixed reference set the median-heuristic bandwidth is computed on.
const MEDIAN_SEED: u64 = 0xb4d_3d7;

/// Points of that reference set.
const MEDIAN_POINTS: usize = 4000;

/// Which experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Experiment {
    /// The 2-D Datasaurus dino (the paper's Dino table).
    Dino,
    /// Figure 1: the 1-D two-mode mixture 0.5·N(−5, 1) + 0.5·N(5, 1).
    Gmm1d,
    /// Dino and Figure 1.
    All,
    /// Fashion-MNIST 28×28: CDL fine-tuning against MSE continued, FID and KID under DDIM,
    /// ParaDiGMS and EDM Heun.
    FashionMnist,
}

/// `cdm reproduce` options.
#[derive(Clone, Debug, clap::Args)]
pub struct ReproduceArgs {
    /// The experiment.
    #[arg(value_enum)]
    pub experiment: Experiment,
    /// Compute budget.
    #[arg(long, value_enum, default_value = "quick")]
    pub budget: Budget,
    /// Training seeds per recipe (default: the budget's).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Where the runs and the report go.
    #[arg(long, default_value = "runs/reproduce")]
    pub out: PathBuf,
    /// Fashion-MNIST's IDX directory (`apt-get install dataset-fashion-mnist` puts it at the
    /// default).
    #[arg(long, default_value = fashion::DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// The FID Inception weights (default: where `cargo xtask fetch-fid` writes them).
    #[arg(long)]
    pub fid_weights: Option<PathBuf>,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Hide progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs `cdm reproduce`; returns the path of `report.md`.
pub fn run(args: &ReproduceArgs) -> Result<PathBuf> {
    let started = Instant::now();
    let plan = Plan::new(args.budget, args.seeds);
    let device = crate::device::parse_device(&args.device)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let budget = format!("{:?}", args.budget).to_lowercase();
    let reproduction = Reproduction { args, plan: &plan, device: &device };
    if matches!(args.experiment, Experiment::Dino | Experiment::All) {
        let recipes = plan::dino_recipes();
        let runs = reproduction.dino(&recipes)?;
        let bands = report::per_round_bands(&runs);
        let chart = args.out.join("dino-mmd-per-round.png");
        let title = "Dino, ParaDiGMS p = S, τ = 0.1: mean ± SD over seeds";
        cdm_metrics::band_chart(&chart, &bands, "Picard round", "MMD² (b = 0.03)", title, true)?;
        write_part(&args.out, "dino", &report::dino_section(&plan, &budget, &runs))?;
    }
    if matches!(args.experiment, Experiment::Gmm1d | Experiment::All) {
        let recipes = plan::gmm1d_recipes();
        let runs = reproduction.figure1(&recipes)?;
        write_part(&args.out, "gmm1d", &report::figure1_section(&plan, &budget, &runs))?;
    }
    if args.experiment == Experiment::FashionMnist {
        let plan = fashion::FashionPlan::new(args.budget, args.seeds);
        let recipes = fashion::recipes();
        let section = reproduction.fashion(&plan, &recipes)?;
        write_part(&args.out, "fashion-mnist", &fashion_report::section(&plan, &budget, &section))?;
    }
    // report.md gathers every experiment reproduced into this directory so far
    let mut text = format!(
        "# Reproduction: contrastive diffusion loss against the DDPM loss\n\n\
         - command: `{}`\n- git revision: {}\n- finished: {} UTC, this invocation {:.0} s \
         (cached runs are not re-timed)\n- threads: RAYON_NUM_THREADS = {}\n\n",
        std::env::args().collect::<Vec<_>>().join(" "),
        git_revision(),
        utc_stamp(),
        started.elapsed().as_secs_f64(),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
    );
    for part in ["dino", "gmm1d", "fashion-mnist"] {
        if let Ok(section) = std::fs::read_to_string(args.out.join(format!("{part}-report.md"))) {
            text.push_str(&section);
        }
    }
    let path = args.out.join("report.md");
    std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    println!("{text}\nreport written to {}", path.display());
    Ok(path)
}

fn write_part(out: &Path, part: &str, text: &str) -> Result<()> {
    let path = out.join(format!("{part}-report.md"));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// One invocation's settings: what every run of it shares.
struct Reproduction<'a> {
    args: &'a ReproduceArgs,
    plan: &'a Plan,
    device: &'a Device,
}

impl Reproduction<'_> {
    /// The run directory of recipe `key` at `seed` on data set `data`.
    fn dir(&self, data: &str, key: &str, seed: u64) -> PathBuf {
        self.args.out.join(data).join(key).join(format!("seed{seed}"))
    }

    /// The configuration of `recipe` at `seed` on `toy`.
    fn run_config(&self, recipe: &Recipe, toy: Toy, seed: u64) -> RunConfig {
        let plan = self.plan;
        let mut cfg =
            RunConfig { device: self.args.device.clone(), objective: recipe.objective.clone(), ..Default::default() };
        cfg.data.dataset = DatasetSpec::Toy(toy);
        let (model, steps) = match toy {
            Toy::TwoModes1d => (crate::config::ModelSpec::PlainMlp(Default::default()), plan.gmm1d_steps),
            _ => (plan.model.clone(), plan.steps),
        };
        cfg.model = model;
        cfg.name = Some(format!("{toy}-{}-seed{seed}", recipe.key));
        cfg.train.steps = if recipe.init.is_some() { plan.finetune_steps } else { steps };
        cfg.train.seed = seed;
        cfg.train.progress = !self.args.no_progress;
        if recipe.init.is_some() {
            cfg.train.lr /= 4.0;
        }
        cfg.sample.n = 0; // scored here instead
        cfg
    }

    /// Trains (or reuses) `recipe` at `seed` on a toy and measures it (see [`Self::measured`]).
    fn trained_and_measured<T: Serialize + DeserializeOwned>(
        &self,
        (recipe, toy, seed): (&Recipe, Toy, u64),
        file: &str,
        fresh: impl Fn(&T) -> bool,
        measure: impl FnOnce(&Path, &SavedRun) -> Result<T>,
    ) -> Result<(runs::Trained, T)> {
        let dir = self.dir(toy.name(), recipe.key, seed);
        let init = recipe.init.map(|from| Init::Weights(self.dir(toy.name(), from, seed)));
        self.measured(&dir, &self.run_config(recipe, toy, seed), init, file, fresh, measure)
    }

    /// Trains (or reuses) `cfg` in `dir` and measures it with `measure`, unless `file` in `dir`
    /// holds a measurement that `fresh` accepts.
    fn measured<T: Serialize + DeserializeOwned>(
        &self,
        dir: &Path,
        cfg: &RunConfig,
        init: Option<Init>,
        file: &str,
        fresh: impl Fn(&T) -> bool,
        measure: impl FnOnce(&Path, &SavedRun) -> Result<T>,
    ) -> Result<(runs::Trained, T)> {
        let trained = runs::ensure_trained(dir, cfg, init)?;
        let path = dir.join(file);
        if let Ok(cached) = read_json::<T>(&path)
            && fresh(&cached)
        {
            return Ok((trained, cached));
        }
        let measured = measure(dir, &SavedRun::open(dir)?)?;
        write_json(&path, &measured)?;
        Ok((trained, measured))
    }

    /// Every Dino recipe at every seed, trained and scored (seed by seed, so an interrupted
    /// reproduction has whole seeds done).
    fn dino<'r>(&self, recipes: &'r [Recipe]) -> Result<Vec<RecipeRuns<'r, dino::DinoEval>>> {
        let data = load_points(&self.run_config(&recipes[0], Toy::Dino, 0).data)?;
        let median = data.fresh_references(MEDIAN_POINTS, MEDIAN_SEED)?.context("Dino is a toy")?;
        let scorer = dino::Scorer {
            plan: self.plan,
            data: &data,
            bandwidth_median: cdm_metrics::median_heuristic(median.data(), median.dim())?,
            device: self.device,
        };
        let fresh = |e: &dino::DinoEval| {
            e.sizes == dino::DinoEval::sizes(self.plan) && e.bandwidth_median == scorer.bandwidth_median
        };
        let mut runs: Vec<_> = recipes.iter().map(|recipe| RecipeRuns { recipe, seeds: Vec::new() }).collect();
        for seed in 0..self.plan.seeds {
            for r in runs.iter_mut() {
                let measured = self.trained_and_measured(
                    (r.recipe, Toy::Dino, seed),
                    "eval-reproduce.json",
                    fresh,
                    |dir, run| {
                        let net = run.network(Weights::Ema, self.device)?;
                        let plot = (seed == 0).then(|| dir.join("samples.png"));
                        scorer.score(&net, seed, plot.as_deref(), r.recipe.label)
                    },
                )?;
                r.seeds.push(measured);
            }
        }
        Ok(runs)
    }

    /// The recipes of Figure 1 at every seed, trained and measured.
    fn figure1<'r>(&self, recipes: &'r [Recipe]) -> Result<Vec<RecipeRuns<'r, figure1::OffPathError>>> {
        let mut runs: Vec<_> = recipes.iter().map(|recipe| RecipeRuns { recipe, seeds: Vec::new() }).collect();
        for seed in 0..self.plan.seeds {
            for r in runs.iter_mut() {
                let key = r.recipe.key;
                let heatmap = self.args.out.join(format!("gmm1d-{}-map.png", key.replace('+', "-")));
                let title = format!("{key}, seed 0: score error");
                let measured = self.trained_and_measured(
                    (r.recipe, Toy::TwoModes1d, seed),
                    "eval-figure1.json",
                    |_| true,
                    |_, run| {
                        let data = load_points(&run.saved.config.data)?;
                        let net = run.network(Weights::Ema, self.device)?;
                        let heatmap = (seed == 0).then_some((heatmap.as_path(), title.as_str()));
                        figure1::off_path_error(&net, &data, self.device, heatmap)
                    },
                )?;
                r.seeds.push(measured);
            }
        }
        Ok(runs)
    }
}
