//! One training step on the CPU: objective forward, backward and an AdamW update (lr 1e-4).
//!
//! `train_step_dino_mlp_b128`: the paper's Dino MLP (d_model 128, 2 blocks) at batch 128 with
//!
//! - `mse`: the DDPM ε-loss (128 denoiser rows; the peer workload `mlp_train_b128`);
//! - `itd+cdl_faithful_k128`: the authors' step — ITD loss + CDL on 2 instances with K = 128 and
//!   independent random numbers (128 + 2·2·128 = 640 rows);
//! - `mse+cdl_improved_k8_i32`: the `cargo xtask train` default — 32 instances, K = 8, common
//!   random numbers (128 + 32·2·8 = 640 rows);
//! - `mse+cdl_improved_k128_i128`: every instance with K = 128 (128 + 128·2·128 rows; the peer
//!   workload `cdl_improved_b128_k128`).
//!
//! `train_step_dino_mlp_b1024/mse` is the peer workload `mlp_train_b1024`, and
//! `train_step_unet_b16/mnist28` is `unet28_train_b16`: the ε-MSE step of the MNIST-sized UNet
//! (28×28×1, channels 32/64/64) at batch 16. The workloads are built in
//! `cdm_benches::workloads`, shared with the peer benchmark (`cargo xtask bench --peer`).
//!
//! The printed per-instance ratio divides the CDL part's extra time by its instances and
//! compares it with the MSE step's time per sample. Run with
//! `cargo bench -p cdm-benches --bench train_step`.

use std::time::{Duration, Instant};

use cdm_benches::workloads::{Workload, mlp, unet};
use cdm_core::{BaseCovariance, GaussianBase, Itd};
use cdm_objectives::{CdlMode, ItdLoss, WeightedSum};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

const BATCH: usize = 128;

/// The authors' step: the ITD loss (base fitted to the batch, K = 1 per element) + faithful CDL.
fn itd_plus_faithful_cdl() -> WeightedSum {
    let x = mlp::data_batch(BATCH).unwrap().to_dtype(candle_core::DType::F64).unwrap();
    let data: Vec<f64> = x.flatten_all().unwrap().to_vec1().unwrap();
    let base = GaussianBase::from_data(&data, BATCH, 2, BaseCovariance::Diagonal).unwrap();
    let itd = ItdLoss::new(Itd::from_base_heuristic(base, 3.0, 1).unwrap());
    WeightedSum::new(vec![(1.0, Box::new(itd)), (1.0, mlp::cdl(CdlMode::Faithful, 128, 2).unwrap())])
}

/// Mean seconds of `n` iterations.
fn mean_seconds(workload: &mut Workload, n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        workload.run().unwrap();
    }
    start.elapsed().as_secs_f64() / n as f64
}

fn dino_mlp(c: &mut Criterion) {
    cdm_kernels::tune_gemm_threading(); // as the `cdm` binary does
    let improved = |k, i| mlp::mse_plus_improved_cdl(k, i).unwrap();
    let cases: Vec<(&str, WeightedSum, usize)> = vec![
        ("mse", mlp::mse_only(), 0),
        ("itd+cdl_faithful_k128", itd_plus_faithful_cdl(), 2),
        ("mse+cdl_improved_k8_i32", improved(8, 32), 32),
        ("mse+cdl_improved_k128_i128", improved(128, 128), 128),
    ];
    let mut g = c.benchmark_group("train_step_dino_mlp_b128");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut means = Vec::new();
    for (name, objective, instances) in cases {
        // rows are only reported by the peer benchmark
        let mut workload = mlp::train(BATCH, objective, 0).unwrap();
        means.push((name, mean_seconds(&mut workload, 5), instances));
        g.bench_function(name, |b| b.iter(|| workload.run().unwrap()));
    }
    g.finish();
    let mse_per_sample = means[0].1 / BATCH as f64;
    for (name, seconds, instances) in &means[1..] {
        let cdl_extra = (seconds - means[0].1).max(0.0) / *instances as f64;
        println!(
            "{name}: {:.2} ms per step ({:.1}× the MSE step); CDL cost per instance / MSE cost per sample ≈ {:.0}",
            seconds * 1e3,
            seconds / means[0].1,
            cdl_extra / mse_per_sample
        );
    }

    let mut g = c.benchmark_group("train_step_dino_mlp_b1024");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    let mut workload = mlp::train(1024, mlp::mse_only(), 0).unwrap();
    g.bench_function("mse", |b| b.iter(|| workload.run().unwrap()));
    g.finish();
}

fn unet_b16(c: &mut Criterion) {
    cdm_kernels::tune_gemm_threading(); // as the `cdm` binary does
    let mut g = c.benchmark_group("train_step_unet_b16");
    // Seconds per step on two cores, and criterion takes at least 10 samples: only the MNIST-sized
    // UNet here; the CIFAR-sized step is `peer --only unet32_train_b16` (same constructor).
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    let mut workload = unet::train(&unet::mnist28(), 16).unwrap();
    g.bench_function("mnist28", |b| b.iter(|| workload.run().unwrap()));
    g.finish();
}

criterion_group!(benches, dino_mlp, unet_b16);
criterion_main!(benches);
