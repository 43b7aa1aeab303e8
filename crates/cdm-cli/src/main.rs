//! `cdm`: train, sample and evaluate diffusion models with the contrastive diffusion loss.
//!
//! Usually run through `cargo xtask <command>`, which builds this binary in release first.

mod admission;
mod config;
mod data;
mod dataset;
mod device;
mod eval;
mod eval_images;
mod exact_spec;
#[cfg(test)]
mod fuzz;
mod gmm1d_map;
mod image_metrics;
mod model;
mod nll;
mod noise_level;
mod objective;
mod pipeline;
mod progress;
mod report;
mod reproduce;
mod run_dir;
mod run_lock;
mod sample;
mod sampling;
mod train;
mod world;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// candle allocates a fresh buffer per op; glibc serves large ones with mmap/munmap and page
// faults (half the sampling time was system time). mimalloc reuses them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "cdm", version, about = "Contrastive diffusion models: train, sample, evaluate")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a denoiser (default: Dino, residual MLP, MSE + improved CDL, CPU; images: the UNet).
    Train(train::TrainArgs),
    /// Sample a trained run or a diffusers pipeline (DDPM, DDIM, EDM; sequential or ParaDiGMS).
    Sample(sample::SampleArgs),
    /// Evaluate a trained run: MMD, sliced W₂, held-out NLL, noise-level accuracy, plots → eval.json.
    Eval(eval::EvalArgs),
    /// Per-point −log p (nats, bits/dim, standard errors) under a run or an exact density.
    Nll(nll::NllArgs),
    /// The posterior over candidate noise levels of each input, under a run or an exact density.
    NoiseLevel(noise_level::NoiseLevelArgs),
    /// Reproduce the paper's MSE-vs-CDL comparison (Dino, 1-D mixture): report.md + plots.
    Reproduce(reproduce::ReproduceArgs),
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // colour codes only on a terminal: logs piped to a file stay plain text
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    cdm_kernels::tune_gemm_threading();
    let command = Cli::parse().command;
    let result = cdm_kernels::in_thread_pool(|| match command {
        Command::Train(args) => train::run(&args).map(|_| ()),
        Command::Sample(args) => sample::run(&args).map(|_| ()),
        Command::Reproduce(args) => reproduce::run(&args).map(|_| ()),
        Command::Eval(args) => eval::run(&args).map(|_| ()),
        Command::Nll(args) => nll::run(&args).map(|_| ()),
        Command::NoiseLevel(args) => noise_level::run(&args).map(|_| ()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            print_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Prints `e` and its causes to standard error.
fn print_error(e: &anyhow::Error) {
    eprintln!("error: {}", without_backtrace(&e.to_string()));
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {}", without_backtrace(&cause.to_string()));
    }
}

/// An error message without the backtrace candle appends when `RUST_BACKTRACE` is set.
fn without_backtrace(message: &str) -> String {
    let is_frame = |l: &str| {
        let t = l.trim_start();
        t.starts_with("stack backtrace")
            || t.split_once(':').is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    message.lines().take_while(|l| !is_frame(l)).collect::<Vec<_>>().join("\n  ").trim_end().to_string()
}
