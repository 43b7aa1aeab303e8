//! What a run leaves for a person to look at: samples, MMD, loss curve and scatter plots.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;

use crate::config::RunConfig;
use crate::data::RunData;
use crate::progress::SamplingProgress;
use crate::run_dir::{SavedRun, Weights, write_json};
use crate::sampling::SamplerArgs;

/// Plots `metrics.jsonl`'s training and validation loss as `loss.png`.
pub fn loss_curve(dir: &Path) -> Result<()> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("parsing {}", path.display()))?;
        let step = v["step"].as_f64().unwrap_or(f64::NAN);
        if let Some(l) = v["loss"].as_f64() {
            train.push((step, l));
        }
        if let Some(l) = v["val_loss"].as_f64() {
            val.push((step, l));
        }
    }
    let log_y = train.iter().chain(&val).all(|p| p.1 > 0.0);
    cdm_metrics::line_chart(
        dir.join("loss.png"),
        &[("train", train), ("validation", val)],
        "step",
        "loss",
        "training loss",
        log_y,
    )?;
    Ok(())
}

/// Summary numbers of a sampled run (`summary.json`).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SampleSummary {
    /// The sampler label, e.g. `ddpm-1000`.
    pub sampler: String,
    /// Samples drawn.
    pub n: usize,
    /// MMD² to held-out data (`null` where undefined).
    pub mmd: Option<f64>,
    /// Its bandwidth b.
    pub mmd_bandwidth: f64,
    /// MMD² against fresh reference draws (toy data): mean ± SD over draws.
    #[serde(default)]
    pub mmd_fresh: Option<cdm_metrics::Spread>,
    /// Sequential rounds of denoiser calls.
    pub rounds: usize,
    /// Denoiser evaluations per sample.
    pub nfe: usize,
    /// Sampling wall time in seconds.
    pub sample_seconds: f64,
    /// Training wall time in seconds (this invocation).
    pub train_seconds: f64,
}

/// Samples the run's EMA weights with DDPM (`cfg.sample`), writes the samples, the plot and
/// `summary.json`, and prints the MMD to held-out data.
pub fn sample_after_training(
    dir: &Path,
    cfg: &RunConfig,
    data: &dyn RunData,
    device: &Device,
    train_seconds: f64,
) -> Result<()> {
    let net = SavedRun::open(dir)?.network(Weights::Ema, device)?;
    let sampler = SamplerArgs { steps: Some(cfg.sample.steps), ..Default::default() };
    let mut progress = SamplingProgress::new(cfg.sample.steps, "sampling", cfg.train.progress);
    let shape = data.sample_shape();
    let (x, stats) =
        sampler.run(&net, cfg.sample.n, &shape, cfg.sample.seed, device, &mut progress, data.rows_per_call())?;
    progress.finish();
    let title = format!("{} — {}", cfg.data.dataset, cfg.objective.label());
    let m = data.measure(dir, &x, &cfg.sample, &title)?;
    let summary = SampleSummary {
        sampler: sampler.label(),
        n: cfg.sample.n,
        mmd: m.mmd,
        mmd_bandwidth: m.bandwidth,
        mmd_fresh: m.fresh,
        rounds: stats.rounds,
        nfe: stats.nfe,
        sample_seconds: stats.wall.as_secs_f64(),
        train_seconds,
    };
    write_json(&dir.join("summary.json"), &summary)?;
    tracing::info!(mmd = m.mmd, bandwidth = m.bandwidth, n = cfg.sample.n, "samples written");
    println!(
        "run {}\n  {}\n  sampler {}: {} rounds, {} NFE, {:.1} s",
        dir.display(),
        m.describe(cfg.sample.n),
        summary.sampler,
        stats.rounds,
        stats.nfe,
        summary.sample_seconds
    );
    if let Some(plot) = &m.plot {
        println!("  plot: {}", plot.display());
    }
    Ok(())
}
