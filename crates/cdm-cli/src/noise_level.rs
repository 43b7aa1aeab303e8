//! `cdm noise-level`: how noisy is each input? The posterior over candidate noise levels.
//!
//! With a uniform prior over the levels ζ_1 … ζ_L (log-SNRs of the noise already in the
//! input, `inf` = clean), `P(ζ_j | z) = softmax_j log p_{ζ_j}(z)`, each log-density estimated
//! by ITD from the same denoiser ([`cdm_core::NoiseLevelClassifier`]). Noise levels refer to
//! variance-preserving noising in the model's units, `z = √σ(ζ)·x + √σ(−ζ)·ε`. With
//! `--density` the exact posterior is printed next to the estimate.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cdm_core::{Chunked, Itd, NoiseLevelClassifier, NoiseSource};

use crate::data::POINT_ROWS_PER_CALL as ROWS_PER_CALL;
use crate::nll::{InputArgs, Target, TargetArgs, level_label, parse_levels, read_inputs};

/// `cdm noise-level` options.
#[derive(Clone, Debug, clap::Args)]
pub struct NoiseLevelArgs {
    /// The model.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The points.
    #[command(flatten)]
    pub input: InputArgs,
    /// Candidate noise levels as log-SNRs, comma-separated; `inf` is clean data.
    #[arg(long, default_value = "inf,6,3,1,-1", allow_hyphen_values = true)]
    pub levels: String,
    /// Integration points K per input.
    #[arg(long, default_value_t = 128)]
    pub points: usize,
    /// Clip c of the log-SNR window.
    #[arg(long, default_value_t = 3.0)]
    pub clip: f64,
    /// Seed of the estimator's random numbers (input i uses stream i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the posteriors as CSV (index, predicted, probability, `p_<level>`…[, exact_predicted, exact_probability]).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print at most this many rows (the CSV gets all).
    #[arg(long, default_value_t = 50)]
    pub show: usize,
}

/// The posteriors of every input.
pub struct LevelTable {
    /// The candidate levels.
    pub levels: Vec<f64>,
    /// `posterior[i][j]`.
    pub posterior: Vec<Vec<f64>>,
    /// The exact posterior, with `--density`.
    pub exact: Option<Vec<Vec<f64>>>,
}

fn argmax(p: &[f64]) -> usize {
    (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0)
}

/// Runs `cdm noise-level`.
pub fn run(args: &NoiseLevelArgs) -> Result<LevelTable> {
    let levels = parse_levels(&args.levels)?;
    if args.points < 2 {
        bail!("--points: need at least 2 integration points (got {})", args.points);
    }
    let target = Target::load(&args.target, args.input.device.as_deref())?;
    let points = read_inputs(&args.input.input, &target, args.input.standardized)?;
    let itd = Itd::from_base_heuristic(target.base().clone(), args.clip, args.points).context("--clip")?;
    let classifier = NoiseLevelClassifier::new(itd, levels.clone()).context("--levels")?;
    let x = points.to_tensor(target.dtype(), &target.device())?;
    let noise = NoiseSource::new(args.seed).fork("cdm-noise-level");
    let chunk = (ROWS_PER_CALL / args.points).max(1);
    let capped = Chunked::new(target.denoiser(), ROWS_PER_CALL)?;
    let mut posterior = Vec::with_capacity(points.len());
    for start in (0..points.len()).step_by(chunk) {
        let len = chunk.min(points.len() - start);
        let post = classifier.classify(&capped, &x.narrow(0, start, len)?, &noise.with_offset(start as u64))?;
        posterior.extend(post.posterior);
    }
    let exact = target.exact().map(|e| {
        points
            .iter_rows()
            .map(|z| {
                let logits: Vec<f64> = levels.iter().map(|&l| e.log_prob(z, l)).collect();
                let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let w: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
                let total: f64 = w.iter().sum();
                w.iter().map(|v| v / total).collect()
            })
            .collect::<Vec<Vec<f64>>>()
    });
    let table = LevelTable { levels, posterior, exact };
    println!("under the {}", target.describe());
    print_table(args, &table);
    if let Some(out) = &args.out {
        write_table(out, &table)?;
        println!("wrote {}", out.display());
    }
    Ok(table)
}

fn print_table(args: &NoiseLevelArgs, t: &LevelTable) {
    let labels: Vec<String> = t.levels.iter().map(|&l| level_label(l)).collect();
    println!(
        "noise level (log-SNR) of {} inputs, levels [{}], K = {}",
        t.posterior.len(),
        labels.join(", "),
        args.points
    );
    let exact_header = if t.exact.is_some() { format!(" {:>8} {:>8}", "exact", "P") } else { String::new() };
    let probs_header: String = labels.iter().map(|l| format!(" {:>8}", format!("P({l})"))).collect();
    println!("{:>6} {:>8} {:>8}{probs_header}{exact_header}", "index", "level", "P");
    for (i, p) in t.posterior.iter().enumerate().take(args.show) {
        let best = argmax(p);
        let probs: String = p.iter().map(|v| format!(" {v:>8.4}")).collect();
        let exact = match &t.exact {
            Some(e) => {
                let b = argmax(&e[i]);
                format!(" {:>8} {:>8.4}", labels[b], e[i][b])
            }
            None => String::new(),
        };
        println!("{i:>6} {:>8} {:>8.4}{probs}{exact}", labels[best], p[best]);
    }
    if t.posterior.len() > args.show {
        println!("  … {} more (use --out FILE.csv or --show N)", t.posterior.len() - args.show);
    }
    let mut counts = vec![0usize; t.levels.len()];
    t.posterior.iter().for_each(|p| counts[argmax(p)] += 1);
    let summary: Vec<String> = labels.iter().zip(&counts).map(|(l, c)| format!("{l}: {c}")).collect();
    print!("most probable level counts: {}", summary.join(", "));
    match &t.exact {
        Some(e) => {
            let agree = t.posterior.iter().zip(e).filter(|(p, q)| argmax(p) == argmax(q)).count();
            println!("; agrees with the exact posterior on {agree}/{}", e.len());
        }
        None => println!(),
    }
}

fn write_table(path: &Path, t: &LevelTable) -> Result<()> {
    let io = || format!("writing {}", path.display());
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).with_context(io)?);
    let labels: Vec<String> = t.levels.iter().map(|&l| level_label(l)).collect();
    let probs: String = labels.iter().map(|l| format!(",p_{l}")).collect();
    let exact = if t.exact.is_some() { ",exact_predicted,exact_probability" } else { "" };
    writeln!(out, "index,predicted,probability{probs}{exact}").with_context(io)?;
    for (i, p) in t.posterior.iter().enumerate() {
        let best = argmax(p);
        write!(out, "{i},{},{:?}", labels[best], p[best]).with_context(io)?;
        for v in p {
            write!(out, ",{v:?}").with_context(io)?;
        }
        if let Some(e) = &t.exact {
            let b = argmax(&e[i]);
            write!(out, ",{},{:?}", labels[b], e[i][b]).with_context(io)?;
        }
        writeln!(out).with_context(io)?;
    }
    out.flush().with_context(io)
}
