//! `cdm reproduce dino|gmm1d|all`: the paper's comparison of MSE and CDL training under
//! sequential and parallel (ParaDiGMS) DDPM sampling, with our code, on this machine.
//!
//! For each dataset it trains (or reuses, when the run's config is unchanged) three models —
//! the MSE baseline, MSE + CDL from scratch, and a CDL fine-tune of the MSE model — samples each
//! with sequential DDPM-1000 and ParaDiGMS (no window and p = 32, τ = 0.1), measures MMD (the
//! paper's kernel), rounds, NFE, wall time, MMD per Picard round and held-out NLL, and writes
//! `report.md` with the authors' logged Dino numbers beside ours, plus plots.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device};
use cdm_core::{Chunked, Itd, NoiseSource};
use cdm_samplers::{Observer, Round};
use serde::{Deserialize, Serialize};

use crate::config::{ModelSpec, ObjectiveConfig, RunConfig, StandardLoss};
use crate::data::{POINT_ROWS_PER_CALL as ROWS_PER_CALL, load_points, write_samples};
use crate::dataset::DatasetSpec;
use crate::run_dir::{SavedConfig, SavedRun, Weights, read_json, write_json};
use crate::run_lock::{LOCK_FILE, RunLock};
use crate::sampling::{SamplerArgs, SamplerKind};
use crate::train::{Init, train_run};

/// ITD integration points per held-out point of the NLL column.
const NLL_POINTS: usize = 128;

/// How much compute to spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Fits in about half an hour on 2 CPU cores.
    Quick,
    /// The paper's budgets (782 000 steps, 2 000 samples): GPU-sized.
    Paper,
}

/// Which experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Experiment {
    /// The 2-D Datasaurus dino (the paper's Dino table).
    Dino,
    /// The 1-D two-mode mixture 0.5·N(−5, 1) + 0.5·N(5, 1).
    Gmm1d,
    /// Both.
    All,
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
    /// Where the runs and the report go.
    #[arg(long, default_value = "runs/reproduce")]
    pub out: PathBuf,
    /// cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Hide progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

/// The settings of one experiment at one budget.
struct Plan {
    model: ModelSpec,
    steps: u64,
    finetune_steps: u64,
    samples: usize,
    nll_points: usize,
}

fn plan(dataset: &'static str, budget: Budget) -> Plan {
    // quick: the main job's MLP (with input Fourier features); paper: the paper's network
    let model = match (dataset, budget) {
        ("gmm1d", _) => ModelSpec::PlainMlp(Default::default()),
        (_, Budget::Quick) => RunConfig::default().model,
        (_, Budget::Paper) => ModelSpec::Mlp(Default::default()),
    };
    match budget {
        Budget::Quick => Plan { model, steps: 20_000, finetune_steps: 5_000, samples: 500, nll_points: 500 },
        Budget::Paper => Plan { model, steps: 782_000, finetune_steps: 78_200, samples: 2000, nll_points: 2000 },
    }
}

/// One trained model of the comparison.
struct Variant {
    key: &'static str,
    label: &'static str,
    objective: ObjectiveConfig,
    init: Option<&'static str>,
}

fn variants() -> Vec<Variant> {
    let cdl = ObjectiveConfig::default();
    let mse = ObjectiveConfig { standard: StandardLoss::Mse, standard_weight: 1.0, cdl: None };
    vec![
        Variant { key: "mse", label: "MSE (DDPM loss)", objective: mse, init: None },
        Variant { key: "cdl", label: "MSE + CDL, from scratch", objective: cdl.clone(), init: None },
        Variant { key: "cdl-finetune", label: "MSE + CDL, fine-tuned from MSE", objective: cdl, init: Some("mse") },
    ]
}

/// Trains a variant unless its run directory already holds the same finished run; the
/// directory is locked first, so a concurrent `reproduce` cannot clear it under another.
fn ensure_trained(dir: &Path, cfg: &RunConfig, init: Option<Init>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = RunLock::acquire(dir)?;
    let done = dir.join("ema.safetensors").exists() && dir.join("config.json").exists();
    if done {
        let saved: SavedConfig = read_json(&dir.join("config.json"))?;
        let strip = |c: &RunConfig| {
            let mut v = serde_json::to_value(c).unwrap_or_default();
            v["train"]["progress"] = serde_json::Value::Null;
            v["model"] = serde_json::Value::Null; // the saved model spec has its dimension filled in
            v
        };
        if strip(&saved.config) == strip(cfg) && saved.init == init.as_ref().map(Init::weights_file) {
            tracing::info!(run = %dir.display(), "cached: training skipped");
            return Ok(());
        }
        tracing::info!(run = %dir.display(), "config changed: retraining");
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == LOCK_FILE) {
            continue;
        }
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.with_context(|| format!("clearing {}", path.display()))?;
    }
    train_run(cfg.clone(), &lock, init, false)?;
    Ok(())
}

/// Records the MMD of the chain's final position after every Picard round.
struct MmdPerRound<'a> {
    reference: &'a [f64],
    dim: usize,
    bandwidth: f64,
    mmd: Vec<f64>,
}

impl Observer for MmdPerRound<'_> {
    fn on_round(&mut self, round: &Round<'_>) {
        let last =
            round.trajectory.last().and_then(|x| x.to_dtype(DType::F64).ok()?.flatten_all().ok()?.to_vec1().ok());
        let value = last.and_then(|x: Vec<f64>| cdm_metrics::mmd2(&x, self.reference, self.dim, self.bandwidth).ok());
        self.mmd.push(value.unwrap_or(f64::NAN));
    }
}

/// One sampler's measurements.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SamplerResult {
    sampler: String,
    mmd: f64,
    rounds: usize,
    nfe: usize,
    seconds: f64,
    mmd_per_round: Vec<f64>,
}

/// A variant's measurements (`eval-reproduce.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct VariantResult {
    key: String,
    label: String,
    train_seconds: f64,
    nll_nats: f64,
    nll_std_err: f64,
    samplers: Vec<SamplerResult>,
}

fn samplers() -> Vec<(String, SamplerArgs)> {
    let ddpm = SamplerArgs { sampler: SamplerKind::Ddpm, steps: Some(1000), ..Default::default() };
    vec![
        ("sequential DDPM-1000".into(), ddpm.clone()),
        (
            "ParaDiGMS p = S, τ = 0.1".into(),
            SamplerArgs { parallel: true, window: None, tolerance: 0.1, ..ddpm.clone() },
        ),
        ("ParaDiGMS p = 32, τ = 0.1".into(), SamplerArgs { parallel: true, window: Some(32), tolerance: 0.1, ..ddpm }),
    ]
}

fn evaluate(dir: &Path, v: &Variant, plan: &Plan, cfg: &RunConfig, device: &Device) -> Result<VariantResult> {
    let data = load_points(&cfg.data)?;
    let dim = data.train.dim();
    let net = SavedRun::open(dir)?.network(Weights::Ema, device)?;
    let reference = data.validation.data();
    let mut results = Vec::new();
    for (name, args) in samplers() {
        let started = Instant::now();
        let mut observer = MmdPerRound { reference, dim, bandwidth: cfg.sample.mmd_bandwidth, mmd: Vec::new() };
        let (x, stats) = args.run(&net, plan.samples, &[dim], cfg.sample.seed, device, &mut observer, ROWS_PER_CALL)?;
        let samples = write_samples(dir, &format!("reproduce-{}", args.label()), &x)?;
        let mmd = cdm_metrics::mmd2(samples.data(), reference, dim, cfg.sample.mmd_bandwidth)?;
        if dim == 2 {
            let path = dir.join(format!("reproduce-{}.png", args.label()));
            cdm_metrics::scatter_vs_data(
                &path,
                samples.data(),
                reference,
                &format!("{} — {name} (MMD {mmd:.5})", v.label),
            )?;
        }
        tracing::info!(model = v.key, sampler = %name, mmd, rounds = stats.rounds, nfe = stats.nfe, "sampled");
        results.push(SamplerResult {
            sampler: name,
            mmd,
            rounds: stats.rounds,
            nfe: stats.nfe,
            seconds: started.elapsed().as_secs_f64(),
            mmd_per_round: observer.mmd,
        });
    }
    let itd = Itd::from_base_heuristic(data.base(None)?, 3.0, NLL_POINTS)?;
    let n = plan.nll_points.min(data.validation.len());
    let held_out = data.validation.rows(&(0..n).collect::<Vec<_>>()).to_tensor(DType::F32, device)?;
    let inputs_per_call = ROWS_PER_CALL / NLL_POINTS;
    let nll = cdm_metrics::dataset_nll(
        &itd,
        &Chunked::new(&net, ROWS_PER_CALL)?,
        &held_out,
        inputs_per_call,
        &NoiseSource::new(7),
    )?;
    let summary: crate::report::SampleSummary = read_json(&dir.join("summary.json"))?;
    Ok(VariantResult {
        key: v.key.into(),
        label: v.label.into(),
        train_seconds: summary.train_seconds,
        nll_nats: nll.nats,
        nll_std_err: nll.std_err,
        samplers: results,
    })
}

/// Runs `cdm reproduce`.
pub fn run(args: &ReproduceArgs) -> Result<PathBuf> {
    let datasets: &[&'static str] = match args.experiment {
        Experiment::Dino => &["dino"],
        Experiment::Gmm1d => &["gmm1d"],
        Experiment::All => &["dino", "gmm1d"],
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let device = crate::device::parse_device(&args.device)?;
    let mut report = String::new();
    for &dataset in datasets {
        let plan = plan(dataset, args.budget);
        let mut results = Vec::new();
        for v in variants() {
            let dir = args.out.join(format!("{dataset}-{}", v.key));
            let mut cfg = RunConfig {
                device: args.device.clone(),
                model: plan.model.clone(),
                objective: v.objective.clone(),
                ..Default::default()
            };
            cfg.name = Some(format!("{dataset}-{}", v.key));
            cfg.data.dataset = DatasetSpec::Toy(dataset.parse()?);
            cfg.train.steps = if v.init.is_some() { plan.finetune_steps } else { plan.steps };
            cfg.train.progress = !args.no_progress;
            if v.init.is_some() {
                cfg.train.lr /= 4.0;
            }
            cfg.sample.n = plan.samples;
            let init = v.init.map(|k| Init::Weights(args.out.join(format!("{dataset}-{k}"))));
            ensure_trained(&dir, &cfg, init)?;
            let eval_path = dir.join("eval-reproduce.json");
            let result = match read_json::<VariantResult>(&eval_path) {
                Ok(r) if r.samplers.len() == samplers().len() => r,
                _ => {
                    let r = evaluate(&dir, &v, &plan, &cfg, &device)?;
                    write_json(&eval_path, &r)?;
                    r
                }
            };
            results.push(result);
        }
        if results.is_empty() {
            bail!("no results for {dataset}");
        }
        let chart: Vec<(String, Vec<(f64, f64)>)> = results
            .iter()
            .map(|r| {
                let per_round = &r.samplers[1].mmd_per_round;
                (r.label.clone(), per_round.iter().enumerate().map(|(i, m)| ((i + 1) as f64, *m)).collect())
            })
            .collect();
        let chart_path = args.out.join(format!("{dataset}-mmd-per-round.png"));
        cdm_metrics::line_chart(
            &chart_path,
            &chart,
            "Picard round",
            "MMD to held-out data",
            &format!("{dataset}: ParaDiGMS (p = S, τ = 0.1)"),
            true,
        )?;
        let text = section(dataset, &plan, args.budget, &results);
        let part = args.out.join(format!("{dataset}-report.md"));
        std::fs::write(&part, &text).with_context(|| format!("writing {}", part.display()))?;
        println!("{text}");
    }
    // report.md gathers every dataset reproduced into this directory so far, so
    // `reproduce gmm1d` after `reproduce dino` keeps the Dino table.
    for dataset in ["dino", "gmm1d"] {
        if let Ok(text) = std::fs::read_to_string(args.out.join(format!("{dataset}-report.md"))) {
            report.push_str(&text);
        }
    }
    let path = args.out.join("report.md");
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    println!("report written to {}", path.display());
    Ok(path)
}

fn section(dataset: &str, plan: &Plan, budget: Budget, results: &[VariantResult]) -> String {
    let mut s = format!(
        "## {dataset} ({budget:?} budget: {} steps from scratch, {} fine-tune steps, {} samples, MMD b = 0.03)\n\n",
        plan.steps, plan.finetune_steps, plan.samples
    );
    s.push_str("| model | MMD sequential | MMD ParaDiGMS p=S | rounds | NFE/sample | time (s) | MMD p=32 | rounds p=32 | NFE p=32 | held-out NLL (nats) |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for r in results {
        let (seq, full, p32) = (&r.samplers[0], &r.samplers[1], &r.samplers[2]);
        s.push_str(&format!(
            "| {} | {:.5} | {:.5} | {} | {} | {:.1} | {:.5} | {} | {} | {:.3} ± {:.3} |\n",
            r.label,
            seq.mmd,
            full.mmd,
            full.rounds,
            full.nfe,
            full.seconds,
            p32.mmd,
            p32.rounds,
            p32.nfe,
            r.nll_nats,
            r.nll_std_err
        ));
    }
    if dataset == "dino" {
        s.push_str("| *paper, CDL (authors' notebook, 2000 samples)* | – | *0.00123* | *36* | *13 983* | *1.37 (GPU)* | – | – | – | – |\n");
        s.push_str("| *paper, MSE / DDPM loss* | – | *0.00311* | *37* | *14 397* | *1.87 (GPU)* | – | – | – | – |\n");
    }
    s.push_str(&format!("\n![MMD per Picard round]({dataset}-mmd-per-round.png)\n\n"));
    s
}
