//! `cargo xtask latency --run DIR`: wall time of sequential DDPM against ParaDiGMS per batch size.
//!
//! For each batch size n and each configuration — the sequential chain, then ParaDiGMS with each
//! window p — it runs `cdm sample --run DIR --n n --sampler ddpm --steps S …` `--repeats` times
//! (each a fresh process, its own output directory) and reads the sampler's own wall time and
//! rounds from `stats.json`, so loading the model is not counted. The table holds medians;
//! the fastest configuration of each row is in bold. It is printed and written with the raw
//! records to `latency/<UTC time>/{report.md, records.json}` in cargo's target directory.
//!
//! Why it matters: on a CPU one denoiser call on a few rows costs about as much as a call on
//! one, so at small n ParaDiGMS' few rounds of whole windows beat S sequential calls, while at
//! large n its extra evaluations cost real time (`docs/benchmarks.md`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cpu_load::CpuTicks;
use crate::release::{release_binary, target_dir};
use crate::{cargo, project_root};

/// What to time.
#[derive(clap::Args, Debug)]
pub struct LatencyArgs {
    /// The run directory to sample (written by `cdm train` or `cdm reproduce`).
    #[arg(long)]
    run: PathBuf,
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64,256")]
    sizes: Vec<usize>,
    /// ParaDiGMS windows (capped at the step count); `auto` lets `cdm` choose per batch.
    #[arg(long, value_delimiter = ',', default_value = "8,32,128,1000,auto")]
    windows: Vec<String>,
    /// DDPM steps S.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// ParaDiGMS tolerance τ.
    #[arg(long, default_value_t = 0.1)]
    tolerance: f64,
    /// Processes per configuration (the table shows the median).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

/// One configuration: sequential (`None`) or a `--window` value.
type Window = Option<String>;

pub fn latency(args: &LatencyArgs) -> Result<()> {
    if args.repeats == 0 || args.sizes.is_empty() {
        bail!("--repeats and --sizes must not be empty or 0");
    }
    let mut build = cargo();
    build.args(["build", "-p", "cdm-cli"]);
    let cdm = release_binary(build, "cdm")?;
    let dir = target_dir()?.join("latency").join(crate::peer::utc_timestamp());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut windows: Vec<Window> = vec![None];
    for w in &args.windows {
        let w = match w.parse::<usize>() {
            Ok(p) => p.min(args.steps).to_string(),
            Err(_) if w == "auto" => w.clone(),
            Err(_) => bail!("--windows: {w:?} is neither a number of steps nor `auto`"),
        };
        if !windows.contains(&Some(w.clone())) {
            windows.push(Some(w));
        }
    }
    let before = CpuTicks::now();
    let mut records = Vec::new();
    for &n in &args.sizes {
        for window in &windows {
            let runs = (0..args.repeats)
                .map(|k| sample(&cdm, args, n, window, &dir.join(format!("n{n}-{}-{k}", name(window)))))
                .collect::<Result<Vec<_>>>()?;
            let wall = median(runs.iter().map(|(w, _)| *w).collect());
            let rounds = runs[0].1;
            eprintln!("n = {n:>4}  {:<14} {wall:>9.3} s  {rounds:>5} rounds", name(window));
            records.push(json!({"n": n, "window": window, "wall_s": wall, "rounds": rounds,
                                "all_wall_s": runs.iter().map(|r| r.0).collect::<Vec<_>>()}));
        }
    }
    let others = before.zip(CpuTicks::now()).map(|(b, a)| a.others_share_since(&b));
    let report = table(args, &windows, &records, others);
    println!("{report}");
    std::fs::write(dir.join("report.md"), &report)?;
    std::fs::write(dir.join("records.json"), serde_json::to_string_pretty(&records)?)?;
    eprintln!("written to {}", dir.display());
    Ok(())
}

fn name(window: &Window) -> String {
    window.as_ref().map_or_else(|| "sequential".into(), |p| format!("paradigms-p{p}"))
}

/// Runs one `cdm sample` and returns its (wall seconds, rounds).
fn sample(cdm: &Path, args: &LatencyArgs, n: usize, window: &Window, out: &Path) -> Result<(f64, u64)> {
    let mut cmd = Command::new(cdm);
    cmd.current_dir(project_root()).arg("sample").arg("--run").arg(&args.run);
    cmd.args(["--n", &n.to_string(), "--sampler", "ddpm", "--steps", &args.steps.to_string(), "--no-progress"]);
    if let Some(p) = window {
        cmd.args(["--parallel", "--window", p, "--tolerance", &args.tolerance.to_string()]);
    }
    cmd.arg("--out").arg(out).stdout(std::process::Stdio::null());
    crate::run(cmd)?;
    let path = out.join("stats.json");
    let stats: Value = serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("{}", path.display()))?)?;
    let field = |k: &str| stats[k].as_f64().with_context(|| format!("{}: no number {k}", path.display()));
    Ok((field("wall_seconds")?, field("rounds")? as u64))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { 0.5 * (v[m - 1] + v[m]) }
}

/// `| n | sequential | p = … | … |` with seconds and rounds, the fastest in bold.
fn table(args: &LatencyArgs, windows: &[Window], records: &[Value], others: Option<f64>) -> String {
    let mut out = format!(
        "Sampler wall time (median of {} processes) for DDPM-{} on `{}`, ParaDiGMS τ = {}; \
         seconds (rounds). Other processes used {} of the CPU meanwhile.\n\n| n |",
        args.repeats,
        args.steps,
        args.run.display(),
        args.tolerance,
        others.map_or_else(|| "an unknown share".into(), |s| format!("{:.0} %", 100.0 * s))
    );
    for w in windows {
        let _ = write!(out, " {} |", w.as_ref().map_or_else(|| "sequential".into(), |p| format!("p = {p}")));
    }
    out.push_str(" best vs sequential |\n|---|");
    out.push_str(&"---|".repeat(windows.len() + 1));
    out.push('\n');
    for &n in &args.sizes {
        let row: Vec<&Value> = records.iter().filter(|r| r["n"] == n).collect();
        let walls: Vec<f64> = row.iter().map(|r| r["wall_s"].as_f64().unwrap_or(f64::NAN)).collect();
        let best = walls.iter().copied().fold(f64::INFINITY, f64::min);
        let _ = write!(out, "| {n} |");
        for (r, &w) in row.iter().zip(&walls) {
            let cell = format!("{w:.3} ({})", r["rounds"]);
            let _ = write!(out, " {} |", if w == best { format!("**{cell}**") } else { cell });
        }
        let _ = writeln!(out, " {:.2}× |", walls[0] / best);
    }
    out
}
