//! What a run leaves for a person to look at: samples, MMD, loss curve and scatter plots.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use cdm_data::PointCloud;

use crate::config::{ModelSpec, RunConfig};
use crate::points::PointData;
use crate::progress::SamplingProgress;
use crate::run_dir::{read_json, write_json};
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
    /// MMD² to held-out data with the paper's kernel.
    pub mmd: f64,
    /// Its bandwidth b.
    pub mmd_bandwidth: f64,
    /// Sequential rounds of denoiser calls.
    pub rounds: usize,
    /// Denoiser evaluations per sample.
    pub nfe: usize,
    /// Sampling wall time in seconds.
    pub sample_seconds: f64,
    /// Training wall time in seconds (this invocation).
    pub train_seconds: f64,
}

/// Loads the run's EMA model, samples it, writes samples, MMD and plots.
pub fn sample_and_measure(
    dir: &Path,
    cfg: &RunConfig,
    data: &PointData,
    device: &Device,
    train_seconds: f64,
) -> Result<()> {
    let spec: ModelSpec = read_json(&dir.join("model.json"))?;
    let net = crate::model::load(&spec, &dir.join("ema.safetensors"), device)?;
    let sampler = SamplerArgs { steps: Some(cfg.sample.steps), ..Default::default() };
    let dim = data.train.dim();
    let progress = SamplingProgress::new(cfg.sample.steps, "sampling", cfg.train.progress);
    let mut observer = progress;
    let (x, stats) = sampler.run(&net, cfg.sample.n, &[dim], cfg.sample.seed, device, &mut observer)?;
    observer.finish();
    let samples = write_samples(dir, "samples", &x)?;
    let mmd = cdm_metrics::mmd2(samples.data(), data.validation.data(), dim, cfg.sample.mmd_bandwidth)?;
    if dim == 2 {
        let title = format!("{} — {} (MMD {:.5})", cfg.data.dataset, cfg.objective.label(), mmd);
        cdm_metrics::scatter_vs_data(dir.join("samples.png"), samples.data(), data.validation.data(), &title)?;
    }
    let summary = SampleSummary {
        sampler: sampler.label(),
        n: cfg.sample.n,
        mmd,
        mmd_bandwidth: cfg.sample.mmd_bandwidth,
        rounds: stats.rounds,
        nfe: stats.nfe,
        sample_seconds: stats.wall.as_secs_f64(),
        train_seconds,
    };
    write_json(&dir.join("summary.json"), &summary)?;
    tracing::info!(mmd, bandwidth = cfg.sample.mmd_bandwidth, n = cfg.sample.n, "samples written");
    println!(
        "run {}\n  MMD (b = {}) of {} samples to held-out data: {:.5}\n  sampler {}: {} rounds, {} NFE, {:.1} s",
        dir.display(),
        cfg.sample.mmd_bandwidth,
        cfg.sample.n,
        mmd,
        summary.sampler,
        stats.rounds,
        stats.nfe,
        summary.sample_seconds
    );
    Ok(())
}

/// Writes `prefix.npy` (and `prefix.csv` for points) and returns the samples as a point cloud.
pub fn write_samples(dir: &Path, prefix: &str, x: &Tensor) -> Result<PointCloud> {
    let x64 = x.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
    let npy = dir.join(format!("{prefix}.npy"));
    x64.write_npy(&npy).with_context(|| format!("writing {}", npy.display()))?;
    let rows = x64.dim(0)?;
    let cloud = PointCloud::new(x64.flatten_all()?.to_vec1::<f64>()?, x64.elem_count() / rows.max(1))?;
    if x.rank() == 2 {
        cdm_data::write_csv(&dir.join(format!("{prefix}.csv")), &cloud, None)?;
    }
    Ok(cloud)
}
