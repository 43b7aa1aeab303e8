//! `cdm eval`: the metrics of a trained run, written to `<run>/eval.json` with plots.
//!
//! On the run's EMA weights and its held-out data (model units):
//!
//! - samples (sequential DDPM-1000 by default) against held-out data: MMD² with the run's
//!   bandwidth and with the median heuristic of the held-out points alone (the same kernel for
//!   every model), and the sliced W₂;
//! - the held-out NLL through ITD (Gaussian base fitted to the training data, clip 3, K points),
//!   in nats and bits/dim with standard errors, also in the data's original units;
//! - the accuracy of the implicit noise-level classifier on held-out data noised at each level;
//! - the model's ε-MSE at 40 log-SNRs (`mse_vs_log_snr.png`), next to the Gaussian base's
//!   MMSE and, for `gmm1d`, the exact denoiser's;
//! - for `gmm1d`: the score-error map against the exact two-mode mixture (Figure 1 of the
//!   paper) with a few ParaDiGMS trajectories (`ood_map.png`), in model units.
//!
//! Image runs are evaluated by [`crate::eval_images`] (FID, KID and pixel MMD²).
//!
//! Every random draw is seeded, so the same `--seed` gives the same `eval.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use cdm_core::log_snr::{noise_coef, signal_coef};
use cdm_core::{
    Chunked, Denoiser, DiscreteSchedule, GaussianBase, GaussianMixture, Itd, NoiseLevelClassifier, NoiseSource,
    bits_per_dim,
};
use cdm_data::{Standardizer, Toy};
use cdm_metrics::{NllReport, RegionMeans};
use cdm_samplers::TrajectoryRecorder;

use crate::admission;
use crate::data::{POINT_ROWS_PER_CALL as ROWS_PER_CALL, PointData, load_points};
use crate::dataset::DataKind;
use crate::gmm1d_map;
use crate::nll::{level_label, parse_levels};
use crate::progress::SamplingProgress;
use crate::run_dir::{SavedRun, Weights, write_json};
use crate::sampling::{SamplerArgs, SamplerKind};

/// Clip of the ITD log-SNR window (the authors').
const CLIP: f64 = 3.0;
/// Log-SNRs of the MSE curve.
const MSE_LOG_SNRS: usize = 40;
/// Random directions of the sliced W₂.
const SW_DIRECTIONS: usize = 128;

/// `cdm eval` options.
#[derive(Clone, Debug, clap::Args)]
pub struct EvalArgs {
    /// The run directory written by `cdm train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Sampler options (default: sequential DDPM, 1000 steps).
    #[command(flatten)]
    pub sampler: SamplerArgs,
    /// Samples drawn for MMD and sliced W₂ (images: for FID, KID and MMD).
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    /// Image runs: the FID Inception weights (default: where `cargo xtask fetch-fid` writes
    /// them; without them FID and KID are skipped with a note).
    #[arg(long)]
    pub fid_weights: Option<PathBuf>,
    /// Seed of every random draw of the evaluation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// ITD integration points K per held-out point (NLL and noise classification).
    #[arg(long, default_value_t = 64)]
    pub points: usize,
    /// Candidate noise levels (log-SNR; inf = clean) of the noise-classification accuracy.
    #[arg(long, default_value = "inf,6,3,1,-1", allow_hyphen_values = true)]
    pub levels: String,
    /// Held-out points noised at every level for the classification accuracy.
    #[arg(long, default_value_t = 500)]
    pub noise_inputs: usize,
    /// Held-out points per log-SNR of the MSE curve.
    #[arg(long, default_value_t = 1000)]
    pub mse_inputs: usize,
    /// ParaDiGMS trajectories drawn on the 1-D error map.
    #[arg(long, default_value_t = 4)]
    pub trajectories: usize,
    /// Override the run's device.
    #[arg(long)]
    pub device: Option<String>,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// An MMD² and its bandwidth.
#[derive(serde::Serialize)]
struct Mmd {
    bandwidth: f64,
    value: f64,
}

/// The held-out NLL.
#[derive(serde::Serialize)]
struct NllSection {
    points: usize,
    clip: f64,
    /// In model units.
    #[serde(flatten)]
    report: NllReport,
    /// In the data's original units (runs with a standardiser).
    data_units: Option<DataUnits>,
}

#[derive(serde::Serialize)]
struct DataUnits {
    nats: f64,
    bits_per_dim: f64,
    log_jacobian: f64,
}

#[derive(serde::Serialize)]
struct NoiseSection {
    levels: Vec<String>,
    inputs: usize,
    points: usize,
    accuracy: f64,
    per_level: Vec<f64>,
    confusion: Vec<Vec<usize>>,
}

#[derive(serde::Serialize)]
struct MsePoint {
    log_snr: f64,
    /// Mean ‖ε − ε̂‖²/d of the model.
    model: f64,
    /// The exact denoiser's (gmm1d).
    exact: Option<f64>,
    /// mmse_G(α)/d of the Gaussian base.
    gaussian_base: f64,
}

#[derive(serde::Serialize)]
struct OodSection {
    units: &'static str,
    timestep_range: (usize, usize),
    timestep_stride: usize,
    values: usize,
    value_range: (f64, f64),
    min_density: f64,
    regions: Option<RegionMeans>,
    away_over_near: Option<f64>,
    max_error: f64,
    trajectories: usize,
    paradigms_rounds: usize,
}

/// What `eval.json` records.
#[derive(serde::Serialize)]
struct EvalReport {
    run: String,
    dataset: String,
    objective: String,
    seed: u64,
    sampler: String,
    samples: usize,
    heldout: usize,
    dim: usize,
    mmd: Mmd,
    mmd_median_heuristic: Mmd,
    sliced_w2: f64,
    sliced_w2_directions: usize,
    nll: NllSection,
    noise_level: NoiseSection,
    mse_vs_log_snr: Vec<MsePoint>,
    ood_map: Option<OodSection>,
    plots: Vec<String>,
    notes: Vec<String>,
}

/// Runs `cdm eval`; returns the path of `eval.json`.
pub fn run(args: &EvalArgs) -> Result<PathBuf> {
    let start = Instant::now();
    let dir = &args.run;
    if args.n < 2 {
        bail!("--n: need at least 2 samples (got {})", args.n);
    }
    if args.points < 2 {
        bail!("--points: need at least 2 integration points (got {})", args.points);
    }
    let levels = parse_levels(&args.levels)?;
    let run = SavedRun::open(dir)?;
    let cfg = run.config();
    let device = run.device(args.device.as_deref())?;
    if cfg.data.dataset.kind() == DataKind::Images {
        return crate::eval_images::run(args, &run, &device);
    }
    let net = run.network(Weights::Ema, &device)?;
    let data = load_points(&cfg.data)?;
    let dim = data.train.dim();
    let (nll_inputs, noise_inputs) = ((ROWS_PER_CALL / args.points).max(1), args.noise_inputs.max(1) * levels.len());
    let itd_bytes = admission::itd(nll_inputs, args.points, dim, 1).max(admission::itd(
        noise_inputs,
        args.points,
        dim,
        levels.len(),
    ));
    admission::admit(&format!("--points {}", args.points), itd_bytes)?;
    let heldout = data.validation.to_tensor(DType::F32, &device)?;
    let root = NoiseSource::new(args.seed).fork("cdm-eval");
    let mut notes = Vec::new();
    let mut plots = Vec::new();

    // samples
    let label = args.sampler.label();
    let mut progress = SamplingProgress::new(args.sampler.steps.unwrap_or(1000), &label, !args.no_progress);
    let (x, stats) = args.sampler.run(&net, args.n, &[dim], args.seed, &device, &mut progress, ROWS_PER_CALL)?;
    progress.finish();
    let samples = x.to_dtype(DType::F64)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f64>()?;
    let val = data.validation.data();
    let mmd = Mmd {
        bandwidth: cfg.sample.mmd_bandwidth,
        value: cdm_metrics::mmd2(&samples, val, dim, cfg.sample.mmd_bandwidth)?,
    };
    let median = cdm_metrics::median_heuristic(val, dim)?;
    let mmd_median = Mmd { bandwidth: median, value: cdm_metrics::mmd2(&samples, val, dim, median)? };
    let sliced_w2 = cdm_metrics::sliced_wasserstein(&samples, val, dim, SW_DIRECTIONS, &root.fork("sliced-w2"))?;
    if dim == 2 {
        let title = format!("{label} (MMD {:.5})", mmd.value);
        cdm_metrics::scatter_vs_data(dir.join("eval_samples.png"), &samples, val, &title)?;
        plots.push("eval_samples.png".into());
    }

    // held-out NLL
    let base = data.base(None)?;
    let itd = Itd::from_base_heuristic(base.clone(), CLIP, args.points)?;
    let chunk = (ROWS_PER_CALL / args.points).max(1);
    let capped = Chunked::new(&net, ROWS_PER_CALL)?;
    let report = cdm_metrics::dataset_nll(&itd, &capped, &heldout, chunk, &root.fork("nll"))?;
    let data_units = data.standardizer.as_ref().map(|s| {
        let log_jacobian: f64 = s.std.iter().map(|v| v.ln()).sum();
        let nats = report.nats + log_jacobian;
        DataUnits { nats, bits_per_dim: bits_per_dim(nats, dim), log_jacobian }
    });
    let nll = NllSection { points: args.points, clip: CLIP, report, data_units };

    // noise-level classification
    let m = args.noise_inputs.clamp(1, data.validation.len());
    let classifier = NoiseLevelClassifier::new(itd.clone(), levels.clone()).context("--levels")?;
    let acc = cdm_metrics::noise_level_accuracy(&classifier, &capped, &heldout.narrow(0, 0, m)?, &root.fork("noise"))?;
    let noise_level = NoiseSection {
        levels: levels.iter().map(|&l| level_label(l)).collect(),
        inputs: m,
        points: args.points,
        accuracy: acc.accuracy,
        per_level: acc.per_level(),
        confusion: acc.confusion.clone(),
    };

    // the exact density of gmm1d in model units
    let exact = gmm1d_map::exact_gmm1d(&cfg.data.dataset, data.standardizer.as_ref());
    if cfg.data.dataset.toy() == Some(Toy::TwoModes1d) && exact.is_none() {
        notes.push("gmm1d without a usable standardizer.json: no exact density, no error map".into());
    }

    // MSE vs log-SNR
    let mse = mse_curve(&net, exact.as_ref(), &base, &data, args.mse_inputs, &device, &root.fork("mse"))?;
    let mut series = vec![("model", mse.iter().map(|p| (p.log_snr, p.model)).collect::<Vec<_>>())];
    if exact.is_some() {
        series.push(("exact denoiser", mse.iter().filter_map(|p| p.exact.map(|e| (p.log_snr, e))).collect()));
    }
    series.push(("Gaussian base", mse.iter().map(|p| (p.log_snr, p.gaussian_base)).collect()));
    let log_y = mse.iter().all(|p| p.model > 0.0 && p.exact.is_none_or(|e| e > 0.0));
    let title = format!("{} — {}: ε-MSE per dimension", cfg.data.dataset, cfg.objective.label());
    cdm_metrics::line_chart(dir.join("mse_vs_log_snr.png"), &series, "log-SNR α", "E‖ε − ε̂‖²/d", &title, log_y)?;
    plots.push("mse_vs_log_snr.png".into());

    // the 1-D error map with ParaDiGMS trajectories
    let ood_map = match &exact {
        Some(gmm) => {
            let (section, path) = ood_map(args, &net, gmm, data.standardizer.as_ref(), &device, &mut notes)?;
            plots.push(path);
            Some(section)
        }
        None => None,
    };

    let eval = EvalReport {
        run: dir.display().to_string(),
        dataset: cfg.data.dataset.to_string(),
        objective: cfg.objective.label(),
        seed: args.seed,
        sampler: label.clone(),
        samples: args.n,
        heldout: data.validation.len(),
        dim,
        mmd,
        mmd_median_heuristic: mmd_median,
        sliced_w2,
        sliced_w2_directions: SW_DIRECTIONS,
        nll,
        noise_level,
        mse_vs_log_snr: mse,
        ood_map,
        plots,
        notes,
    };
    let path = dir.join("eval.json");
    write_json(&path, &eval)?;
    print_summary(&eval, &path, stats.wall.as_secs_f64(), start.elapsed().as_secs_f64());
    Ok(path)
}

/// The model's (and the exact denoiser's) ε-MSE per dimension at log-SNRs −10 … 10.
fn mse_curve(
    net: &dyn Denoiser,
    exact: Option<&GaussianMixture>,
    base: &GaussianBase,
    data: &PointData,
    inputs: usize,
    device: &Device,
    noise: &NoiseSource,
) -> Result<Vec<MsePoint>> {
    let m = inputs.clamp(1, data.validation.len());
    let dim = data.validation.dim();
    let x = data.validation.to_tensor(DType::F32, device)?.narrow(0, 0, m)?;
    let log_snrs: Vec<f64> = (0..MSE_LOG_SNRS).map(|i| -10.0 + 20.0 * i as f64 / (MSE_LOG_SNRS - 1) as f64).collect();
    let (mut z, mut eps, mut alphas) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &a) in log_snrs.iter().enumerate() {
        let e = noise.fork_index(i as u64).streams(0, m).normal(&[dim], DType::F32, device)?;
        z.push(x.affine(signal_coef(a), 0.0)?.add(&e.affine(noise_coef(a), 0.0)?)?);
        eps.push(e);
        alphas.extend(std::iter::repeat_n(a, m));
    }
    let (z, eps) = (Tensor::cat(&z, 0)?, Tensor::cat(&eps, 0)?);
    let per_alpha = |eps_hat: &Tensor, eps: &Tensor| -> Result<Vec<f64>> {
        let sq = eps.sub(eps_hat)?.sqr()?.sum(1)?.to_dtype(DType::F64)?.to_device(&Device::Cpu)?.to_vec1::<f64>()?;
        Ok(sq.chunks_exact(m).map(|c| c.iter().sum::<f64>() / (m * dim) as f64).collect())
    };
    let model = per_alpha(&Chunked::new(net, ROWS_PER_CALL)?.eps_at(&z, &alphas)?, &eps)?;
    let exact = match exact {
        Some(gmm) => {
            let (z64, eps64) =
                (z.to_dtype(DType::F64)?.to_device(&Device::Cpu)?, eps.to_dtype(DType::F64)?.to_device(&Device::Cpu)?);
            Some(per_alpha(&Chunked::new(gmm, ROWS_PER_CALL)?.eps_at(&z64, &alphas)?, &eps64)?)
        }
        None => None,
    };
    Ok(log_snrs
        .iter()
        .enumerate()
        .map(|(i, &a)| MsePoint {
            log_snr: a,
            model: model[i],
            exact: exact.as_ref().map(|e| e[i]),
            gaussian_base: base.mmse(a) / dim as f64,
        })
        .collect())
}

/// The score-error map of a 1-D run against `gmm` with ParaDiGMS trajectories overlaid.
fn ood_map(
    args: &EvalArgs,
    net: &dyn Denoiser,
    gmm: &GaussianMixture,
    standardizer: Option<&Standardizer>,
    device: &Device,
    notes: &mut Vec<String>,
) -> Result<(OodSection, String)> {
    let schedule = DiscreteSchedule::ddpm();
    let map = gmm1d_map::error_map(net, gmm, standardizer, device)?;
    let regions = match map.region_means(gmm, gmm1d_map::MIN_DENSITY) {
        Ok(r) => Some(r),
        Err(e) => {
            notes.push(format!("error-map regions: {e}"));
            None
        }
    };
    // a few ParaDiGMS trajectories of the same DDPM chain
    let steps = match args.sampler.kind() {
        SamplerKind::Ddpm | SamplerKind::Paradigms => args.sampler.steps.unwrap_or(1000),
        _ => 1000,
    };
    let mut trajectories = Vec::new();
    let mut rounds = 0;
    if args.trajectories > 0 {
        let paradigms = SamplerArgs {
            sampler: Some(SamplerKind::Paradigms),
            steps: Some(steps),
            tolerance: args.sampler.tolerance,
            max_rounds: Some(args.sampler.max_rounds.unwrap_or(200)),
            ..Default::default()
        };
        let mut recorder = TrajectoryRecorder::default();
        let seed = args.seed.wrapping_add(1);
        let (_, stats) = paradigms.run(net, args.trajectories, &[1], seed, device, &mut recorder, ROWS_PER_CALL)?;
        rounds = stats.rounds;
        let states: Vec<Vec<f64>> = recorder
            .states
            .iter()
            .map(|t| Ok(t.to_dtype(DType::F64)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f64>()?))
            .collect::<Result<_>>()?;
        let last = (schedule.num_timesteps() - 1) as f64;
        for b in 0..args.trajectories {
            trajectories.push(
                states
                    .iter()
                    .enumerate()
                    .map(|(j, row)| (last * (steps.saturating_sub(j)) as f64 / steps as f64, row[b]))
                    .collect::<Vec<_>>(),
            );
        }
    }
    let units = if standardizer.is_some() { "model (standardised) units" } else { "data units" };
    let title = format!("score error vs exact 0.5·N(±5, 1), {units}");
    let file = "ood_map.png";
    cdm_metrics::heatmap_with_trajectories(args.run.join(file), &map, &trajectories, &title)?;
    let section = OodSection {
        units,
        timestep_range: (map.timesteps[0], *map.timesteps.last().unwrap_or(&0)),
        timestep_stride: gmm1d_map::TIMESTEP_STRIDE,
        values: map.values.len(),
        value_range: (map.values[0], map.values[map.values.len() - 1]),
        min_density: gmm1d_map::MIN_DENSITY,
        away_over_near: regions.map(|r| r.ratio()),
        regions,
        max_error: map.max_error(),
        trajectories: trajectories.len(),
        paradigms_rounds: rounds,
    };
    Ok((section, file.into()))
}

fn print_summary(e: &EvalReport, path: &Path, sample_seconds: f64, seconds: f64) {
    println!("eval of {} ({}, {}) → {}", e.run, e.dataset, e.objective, path.display());
    println!("  {} samples, {} ({sample_seconds:.1} s), vs {} held-out points", e.samples, e.sampler, e.heldout);
    println!(
        "  MMD² (b = {}): {:.5}; median heuristic (b = {:.4}): {:.5}",
        e.mmd.bandwidth, e.mmd.value, e.mmd_median_heuristic.bandwidth, e.mmd_median_heuristic.value
    );
    println!("  sliced W₂ ({} directions): {:.5}", e.sliced_w2_directions, e.sliced_w2);
    let r = &e.nll.report;
    print!(
        "  held-out NLL (K = {}, clip {}): {:.4} ± {:.4} nats = {:.4} ± {:.4} bits/dim (model units)",
        e.nll.points, e.nll.clip, r.nats, r.std_err, r.bits_per_dim, r.bits_per_dim_std_err
    );
    match &e.nll.data_units {
        Some(d) => println!("; {:.4} nats = {:.4} bits/dim in data units", d.nats, d.bits_per_dim),
        None => println!(),
    }
    let per: Vec<String> =
        e.noise_level.levels.iter().zip(&e.noise_level.per_level).map(|(l, a)| format!("{l}: {a:.2}")).collect();
    println!("  noise-level accuracy: {:.3} ({})", e.noise_level.accuracy, per.join(", "));
    if let Some(o) = &e.ood_map {
        match &o.regions {
            Some(r) => println!(
                "  score error: near the forward paths {:.3}, away {:.3} (×{:.1}); {} trajectories, {} ParaDiGMS rounds",
                r.near,
                r.away,
                r.ratio(),
                o.trajectories,
                o.paradigms_rounds
            ),
            None => println!("  score error map: max {:.3}", o.max_error),
        }
    }
    for n in &e.notes {
        println!("  note: {n}");
    }
    println!("  plots: {} ({seconds:.1} s in all)", e.plots.join(", "));
}
