//! `peer`: times the workloads of the peer benchmark and prints one JSON object per workload.
//!
//! The PyTorch side is `benches/peer/bench_torch.py`, with the same flags and output;
//! `cargo xtask bench --peer` runs both and prints the ratio table. Each workload is built
//! (seeded weights, inputs, optimiser), run `--warmup` times untimed, then `--reps` times (the
//! UNet workloads `--unet-reps` times) with a wall clock around each iteration. The losses of
//! the first iteration (the initial weights) are reported for the cross-check with PyTorch.
//!
//! Threads: candle reads `RAYON_NUM_THREADS` (and `CANDLE_NUM_THREADS`) on every op; the
//! workspace's `.cargo/config.toml` sets them for `cargo run`, and xtask for its children.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cdm_benches::stats::Summary;
use cdm_benches::workloads::{Losses, PEER_WORKLOADS, peer_workload};
use clap::Parser;
use serde_json::{Map, Value, json};

#[derive(Parser)]
#[command(name = "peer", about = "Time cdm's peer-benchmark workloads; one JSON object per line")]
struct Args {
    /// Comma-separated workload names (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Timed iterations per workload.
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Timed iterations of the UNet workloads.
    #[arg(long, default_value_t = 3)]
    unet_reps: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Print the workload names and exit.
    #[arg(long)]
    list: bool,
}

/// The thread count candle will use, as it reads it.
fn threads() -> Result<usize> {
    match std::env::var("RAYON_NUM_THREADS") {
        Ok(v) => v.parse().with_context(|| format!("RAYON_NUM_THREADS={v:?} is not a thread count")),
        Err(_) => bail!(
            "RAYON_NUM_THREADS is not set: candle would re-read /proc/cpuinfo on every op; set it \
             (and CANDLE_NUM_THREADS=1 on small machines) or run `cargo xtask bench --peer`"
        ),
    }
}

fn losses_json(losses: Option<Losses>) -> Value {
    match losses {
        Some(l) if !l.is_empty() => Value::Object(l.into_iter().map(|(k, v)| (k, json!(v))).collect::<Map<_, _>>()),
        _ => Value::Null,
    }
}

/// Builds, warms up and times workload `name`; returns its JSON record.
fn measure(name: &str, reps: usize, warmup: usize, threads: usize) -> Result<Value> {
    let mut workload = peer_workload(name)?;
    let mut loss_at_init = None;
    for _ in 0..warmup {
        let losses = workload.run()?;
        loss_at_init.get_or_insert(losses);
    }
    let mut millis = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        let losses = workload.run()?;
        millis.push(start.elapsed().as_secs_f64() * 1e3);
        loss_at_init.get_or_insert(losses);
    }
    let s = Summary::of(&millis);
    Ok(json!({
        "name": name,
        "impl": "cdm",
        "median_ms": s.median,
        "min_ms": s.min,
        "q1_ms": s.q1,
        "q3_ms": s.q3,
        "reps": reps,
        "warmup": warmup,
        "threads": threads,
        "parameters": workload.parameters,
        "rows": workload.rows,
        "loss_at_init": losses_json(loss_at_init),
        "version": concat!("cdm ", env!("CARGO_PKG_VERSION")),
    }))
}

fn run(args: Args) -> Result<()> {
    if args.list {
        println!("{}", PEER_WORKLOADS.join("\n"));
        return Ok(());
    }
    if args.reps == 0 || args.unet_reps == 0 {
        bail!("--reps and --unet-reps must be at least 1");
    }
    let names: Vec<String> =
        if args.only.is_empty() { PEER_WORKLOADS.iter().map(|s| s.to_string()).collect() } else { args.only };
    if let Some(unknown) = names.iter().find(|n| !PEER_WORKLOADS.contains(&n.as_str())) {
        bail!("unknown workload {unknown:?}; known: {}", PEER_WORKLOADS.join(", "));
    }
    let threads = threads()?;
    for name in &names {
        let reps = if name.starts_with("unet") { args.unet_reps } else { args.reps };
        eprintln!("cdm: {name} ({} warm-up + {reps} reps)", args.warmup);
        println!("{}", measure(name, reps, args.warmup, threads)?);
    }
    Ok(())
}

fn main() -> ExitCode {
    cdm_kernels::tune_gemm_threading();
    let args = Args::parse();
    match cdm_kernels::in_thread_pool(|| run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer: {e:#}");
            ExitCode::FAILURE
        }
    }
}
