//! `cargo xtask bench --peer`: cdm against PyTorch on the same workloads, one after the other.
//!
//! 1. checks that `$CDM_PYTHON` (default `python3`) can `import torch`;
//! 2. builds the `peer` binary of `cdm-benches` in release;
//! 3. for each workload in turn, runs it in cdm (`peer --only NAME`), then in PyTorch
//!    (`benches/peer/bench_torch.py --only NAME`), never concurrently; interleaving keeps the two
//!    timings of a workload close in time on a machine whose load changes;
//! 4. prints `| workload | cdm (ms) | PyTorch (ms) | ratio |` (medians, ratio = cdm / PyTorch)
//!    and the details (quartiles, parameter and row counts, losses at init, the CPU share other
//!    processes took meanwhile), and writes them with both sides' raw JSON to
//!    `peer-bench/<UTC time>/{report.md, cdm.json, torch.json}` in cargo's target directory
//!    (`target/`, or where `CARGO_TARGET_DIR` says).
//!
//! Both children get the same thread count: `RAYON_NUM_THREADS` (candle, and read by the Python
//! script), `OMP_NUM_THREADS` and `MKL_NUM_THREADS` (PyTorch's pools), plus
//! `CANDLE_NUM_THREADS=1` for candle unless already set.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cpu_load::CpuTicks;
use crate::release::{release_binary, target_dir};
use crate::{cargo, project_root};

/// What to run, shared by both sides.
#[derive(clap::Args, Debug)]
pub struct PeerArgs {
    /// Peer: comma-separated workloads (default: all).
    #[arg(long, requires = "peer")]
    only: Option<String>,
    /// Peer: timed iterations per workload.
    #[arg(long, requires = "peer", default_value_t = 10)]
    reps: usize,
    /// Peer: timed iterations of the UNet workloads.
    #[arg(long, requires = "peer", default_value_t = 3)]
    unet_reps: usize,
    /// Peer: untimed iterations first.
    #[arg(long, requires = "peer", default_value_t = 2)]
    warmup: usize,
    /// Peer: threads for both sides (default: $RAYON_NUM_THREADS, else 2).
    #[arg(long, requires = "peer")]
    threads: Option<usize>,
}

impl PeerArgs {
    /// The flags both sides take, for workload `name`.
    fn flags(&self, name: &str) -> Vec<String> {
        [
            ("--only", name.to_string()),
            ("--reps", self.reps.to_string()),
            ("--unet-reps", self.unet_reps.to_string()),
            ("--warmup", self.warmup.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect()
    }
}

fn python() -> String {
    std::env::var("CDM_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn check_torch(python: &str) -> Result<()> {
    let probe = Command::new(python).args(["-c", "import torch"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    match probe {
        Ok(status) if status.success() => Ok(()),
        _ => bail!(
            "the peer benchmark needs PyTorch, and `{python} -c 'import torch'` failed.\n  \
             Install it with `{python} -m pip install torch` (CPU use only; a large download; not needed \
             to build or test cdm), or set CDM_PYTHON to an interpreter that has it. See benches/peer/README.md."
        ),
    }
}

/// Runs `cmd` with its stderr shown and returns its stdout, one JSON record per line, each with
/// the CPU share other processes took meanwhile (`others_cpu_share`, where `/proc` exists).
fn json_lines(mut cmd: Command) -> Result<Vec<Value>> {
    let before = CpuTicks::now();
    let out = cmd.stderr(Stdio::inherit()).output().with_context(|| format!("failed to start {cmd:?}"))?;
    let others = before.zip(CpuTicks::now()).map(|(b, a)| a.others_share_since(&b));
    if !out.status.success() {
        bail!("{cmd:?} failed with {}", out.status);
    }
    String::from_utf8(out.stdout)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut record: Value = serde_json::from_str(l).with_context(|| format!("not a JSON record: {l}"))?;
            record["others_cpu_share"] = json!(others);
            Ok(record)
        })
        .collect()
}

/// The workloads to run: `--only`, or all the `peer` binary knows.
fn workload_names(args: &PeerArgs, exe: &Path) -> Result<Vec<String>> {
    if let Some(only) = &args.only {
        return Ok(only.split(',').map(str::to_string).collect());
    }
    let out = Command::new(exe).arg("--list").output().with_context(|| format!("failed to start {exe:?}"))?;
    if !out.status.success() {
        bail!("{exe:?} --list failed with {}", out.status);
    }
    Ok(String::from_utf8(out.stdout)?.lines().map(str::to_string).collect())
}

/// The benchmark: build, then each workload in cdm and in PyTorch, then the report.
pub fn bench(args: &PeerArgs) -> Result<()> {
    let python = python();
    check_torch(&python)?;
    let threads = match args.threads {
        Some(t) => t,
        None => std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2),
    }
    .to_string();

    let mut build = cargo();
    build.args(["build", "-p", "cdm-benches"]);
    let exe = release_binary(build, "peer")?;
    // asked before the runs, so that a failure here costs no benchmark time
    let reports = target_dir()?.join("peer-bench");

    let (mut cdm, mut torch) = (Vec::new(), Vec::new());
    for name in workload_names(args, &exe)? {
        let mut ours = Command::new(&exe);
        ours.current_dir(project_root()).args(args.flags(&name)).env("RAYON_NUM_THREADS", &threads);
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            ours.env("CANDLE_NUM_THREADS", "1");
        }
        cdm.extend(json_lines(ours)?);

        let mut theirs = Command::new(&python);
        theirs.current_dir(project_root()).arg("benches/peer/bench_torch.py").args(args.flags(&name));
        for var in ["RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
            theirs.env(var, &threads);
        }
        torch.extend(json_lines(theirs)?);
    }

    let table = ratio_table(&cdm, &torch);
    println!("\n{table}");
    let details = details(&cdm, &torch);
    println!("{details}");
    let dir = reports.join(utc_timestamp());
    write_outputs(&dir, &table, &details, &cdm, &torch, &threads)?;
    println!("written to {}", dir.display());
    Ok(())
}

fn record<'a>(records: &'a [Value], name: &str) -> Option<&'a Value> {
    records.iter().find(|r| r["name"] == name)
}

fn ms(record: Option<&Value>, key: &str) -> Option<f64> {
    record.and_then(|r| r[key].as_f64())
}

/// `| workload | cdm (ms) | PyTorch (ms) | ratio |`, medians, in cdm's order.
fn ratio_table(cdm: &[Value], torch: &[Value]) -> String {
    let mut out = String::from("| workload | cdm (ms) | PyTorch (ms) | ratio |\n|---|---:|---:|---:|\n");
    for ours in cdm {
        let name = ours["name"].as_str().unwrap_or("?");
        let (a, b) = (ms(Some(ours), "median_ms"), ms(record(torch, name), "median_ms"));
        let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
        let ratio = match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "–".into(),
        };
        let _ = writeln!(out, "| `{name}` | {} | {} | {ratio} |", fmt(a), fmt(b));
    }
    out
}

/// Quartiles, parameter and row counts, and the losses at the initial weights, side by side;
/// a warning line for every parameter or row count that differs.
fn details(cdm: &[Value], torch: &[Value]) -> String {
    let mut out = String::from(
        "| workload | side | min (ms) | q1–q3 (ms) | reps | others' CPU | parameters | rows | losses at init |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut warnings = String::new();
    for ours in cdm {
        let name = ours["name"].as_str().unwrap_or("?");
        let theirs = record(torch, name);
        for (side, r) in [("cdm", Some(ours)), ("PyTorch", theirs)] {
            let Some(r) = r else { continue };
            let losses = match r["loss_at_init"].as_object() {
                Some(map) => map
                    .iter()
                    .filter(|(k, _)| k.starts_with("loss") || k.as_str() == "cdl_accuracy")
                    .map(|(k, v)| format!("{k} {:.4}", v.as_f64().unwrap_or(f64::NAN)))
                    .collect::<Vec<_>>()
                    .join(", "),
                None => "–".into(),
            };
            let others = r["others_cpu_share"].as_f64().map_or("–".into(), |s| format!("{:.0} %", 100.0 * s));
            let _ = writeln!(
                out,
                "| `{name}` | {side} | {:.1} | {:.1}–{:.1} | {} | {others} | {} | {} | {losses} |",
                ms(Some(r), "min_ms").unwrap_or(f64::NAN),
                ms(Some(r), "q1_ms").unwrap_or(f64::NAN),
                ms(Some(r), "q3_ms").unwrap_or(f64::NAN),
                r["reps"],
                r["parameters"],
                r["rows"]
            );
        }
        for key in ["parameters", "rows"] {
            if let Some(theirs) = theirs.filter(|t| t[key] != ours[key]) {
                let _ =
                    writeln!(warnings, "WARNING: `{name}`: {key} differ (cdm {}, PyTorch {})", ours[key], theirs[key]);
            }
        }
    }
    out + &warnings
}

fn write_outputs(dir: &Path, table: &str, details: &str, cdm: &[Value], torch: &[Value], threads: &str) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let version = |records: &[Value]| records.first().and_then(|r| r["version"].as_str()).unwrap_or("?").to_string();
    let mut report = format!(
        "# Peer benchmark: cdm ({}) vs PyTorch ({})\n\nf32, CPU, {threads} threads, medians; ratio = cdm / PyTorch. \
         \"others' CPU\": the share of the machine's CPU time other processes used during that run.\n",
        version(cdm),
        version(torch)
    );
    let _ = write!(report, "\n{table}\n{details}");
    std::fs::write(dir.join("report.md"), report)?;
    std::fs::write(dir.join("cdm.json"), serde_json::to_string_pretty(cdm)?)?;
    std::fs::write(dir.join("torch.json"), serde_json::to_string_pretty(torch)?)?;
    Ok(())
}

/// The current UTC time as `YYYYMMDD-HHMMSS` (civil-from-days, proleptic Gregorian).
pub fn utc_timestamp() -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    PathBuf::from(format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60))
}
