//! `cdm eval` on an image run, written to `<run>/eval.json` with `eval_samples.png`:
//!
//! - `--n` samples (DDPM-1000 by default; any `--sampler`) from the EMA weights;
//! - FID and KID against every held-out image ([`crate::image_metrics`]; the held-out
//!   features are cached in the run directory), when the FID weights are present
//!   (`cargo xtask fetch-fid`); without them a note says so and the rest is still measured;
//! - the pixel-space MMD² with the median heuristic of the held-out images alone (the same
//!   kernel for every run on one data set).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use candle_core::{DType, Device};

use crate::data::{IMAGE_ROWS_PER_CALL, load_images, write_grid};
use crate::eval::EvalArgs;
use crate::image_metrics::{FidScorer, ImageScore};
use crate::progress::SamplingProgress;
use crate::run_dir::{SavedRun, Weights, write_json};

/// Images in `eval_samples.png`.
const GRID_IMAGES: usize = 64;

/// What `eval.json` records for an image run.
#[derive(serde::Serialize)]
struct ImageEval {
    run: String,
    dataset: String,
    objective: String,
    seed: u64,
    sampler: String,
    samples: usize,
    heldout: usize,
    shape: [usize; 3],
    rounds: usize,
    nfe: usize,
    sample_seconds: f64,
    fid: Option<ImageScore>,
    mmd_pixels: f64,
    mmd_pixels_bandwidth: f64,
    plots: Vec<String>,
    notes: Vec<String>,
}

/// Evaluates the image run `run` on `device`; returns the path of `eval.json`.
pub fn run(args: &EvalArgs, run: &SavedRun, device: &Device) -> Result<PathBuf> {
    let start = Instant::now();
    let dir = &args.run;
    let cfg = run.config();
    let data = load_images(&cfg.data)?;
    let shape = data.shape();
    let net = run.network(Weights::Ema, device)?;
    let label = args.sampler.label();
    let mut progress = SamplingProgress::new(args.sampler.step_count(), &label, !args.no_progress);
    let (x, stats) = args.sampler.run(&net, args.n, &shape, args.seed, device, &mut progress, IMAGE_ROWS_PER_CALL)?;
    progress.finish();
    let x = x.to_device(&Device::Cpu)?;
    let grid = x.narrow(0, 0, GRID_IMAGES.min(args.n))?;
    write_grid(&dir.join("eval_samples.png"), &grid, (grid.dim(0)? as f64).sqrt().ceil() as usize, 4)?;

    let held = data.validation_tensor(0, &Device::Cpu)?;
    let flat = |t: &candle_core::Tensor| -> Result<Vec<f64>> { Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?) };
    let (samples, reference) = (flat(&x)?, flat(&held)?);
    let dim = shape.iter().product();
    let bandwidth = cdm_metrics::median_heuristic(&reference, dim)?;
    let mmd_pixels = cdm_metrics::mmd2(&samples, &reference, dim, bandwidth)?;

    let mut notes = Vec::new();
    let weights = args.fid_weights.clone().or_else(cdm_metrics::fid::default_weights_path);
    let fid = match weights {
        Some(w) if w.is_file() => {
            if !matches!(shape[0], 1 | 3) {
                bail!("FID needs images of 1 or 3 channels, this run's are {shape:?}");
            }
            let cache = dir.join(format!("fid-reference-{}.safetensors", held.dim(0)?));
            let scorer = FidScorer::new(Some(&w), || Ok(held.clone()), &cache, device, !args.no_progress)?;
            Some(scorer.score_images(&x, "features of the samples", args.seed)?)
        }
        Some(w) if args.fid_weights.is_some() => bail!("--fid-weights {}: no such file", w.display()),
        _ => {
            notes.push("FID and KID skipped: no FID weights (run `cargo xtask fetch-fid` once)".into());
            None
        }
    };

    let eval = ImageEval {
        run: dir.display().to_string(),
        dataset: cfg.data.dataset.to_string(),
        objective: cfg.objective.label(),
        seed: args.seed,
        sampler: label,
        samples: args.n,
        heldout: held.dim(0)?,
        shape,
        rounds: stats.rounds,
        nfe: stats.nfe,
        sample_seconds: stats.wall.as_secs_f64(),
        fid,
        mmd_pixels,
        mmd_pixels_bandwidth: bandwidth,
        plots: vec!["eval_samples.png".into()],
        notes,
    };
    let path = dir.join("eval.json");
    write_json(&path, &eval)?;
    println!("eval of {} ({}, {}) → {}", eval.run, eval.dataset, eval.objective, path.display());
    println!(
        "  {} samples, {} ({:.1} s, {} NFE per sample), vs {} held-out images",
        eval.samples, eval.sampler, eval.sample_seconds, eval.nfe, eval.heldout
    );
    if let Some(s) = &eval.fid {
        println!(
            "  FID {:.2}, KID {:.5} ± {:.5} (SD over subsets), {} vs {} images",
            s.fid, s.kid, s.kid_subset_sd, s.n, s.reference
        );
    }
    println!("  pixel MMD² (median heuristic of the held-out images, b = {bandwidth:.2}): {mmd_pixels:.5}");
    for n in &eval.notes {
        println!("  note: {n}");
    }
    println!("  plots: eval_samples.png ({:.1} s in all)", start.elapsed().as_secs_f64());
    Ok(path)
}
