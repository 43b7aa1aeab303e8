//! One training step of the paper's Dino MLP (d_model 128, 2 blocks) at batch 128, on the CPU:
//! objective forward, backward and an AdamW update.
//!
//! - `mse`: the DDPM ε-loss (128 denoiser rows);
//! - `itd+cdl_faithful_k128`: the authors' step — ITD loss + CDL on 2 instances with K = 128 and
//!   independent random numbers (128 + 2·2·128 = 640 rows);
//! - `mse+cdl_improved_k8_i32`: the `cargo xtask train` default — 32 instances, K = 8, common
//!   random numbers (128 + 32·2·8 = 640 rows);
//! - `mse+cdl_improved_k128_i128`: every instance with K = 128 (128 + 128·2·128 rows).
//!
//! The printed per-instance ratio divides the CDL part's extra time by its instances and
//! compares it with the MSE step's time per sample. Run with
//! `cargo bench -p cdm-benches --bench train_step`.

use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use cdm_core::{BaseCovariance, DiscreteSchedule, GaussianBase, Itd, NoiseSource};
use cdm_models::{MlpConfig, ModelConfig};
use cdm_objectives::{Cdl, CdlMode, ItdLoss, Mse, Objective, WeightedSum, ZetaDistribution};
use cdm_train::{AdamW, AdamWConfig};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

const BATCH: usize = 128;

fn batch() -> Tensor {
    let x = NoiseSource::new(3).streams(0, BATCH).normal_f64(2);
    Tensor::from_vec(x, (BATCH, 2), &Device::Cpu).unwrap().to_dtype(DType::F32).unwrap()
}

fn cdl(mode: CdlMode, points: usize, instances: usize) -> Box<dyn Objective + Send + Sync> {
    let itd = Itd::from_base_heuristic(GaussianBase::standard(2), 3.0, points, 1 << 16).unwrap();
    let zeta = ZetaDistribution::Logistic(itd.config().proposal);
    Box::new(Cdl::new(itd, zeta, mode, Some(instances)).unwrap())
}

fn named(vars: &VarMap) -> Vec<(String, candle_core::Var)> {
    let mut v: Vec<_> = vars.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn train_step(c: &mut Criterion) {
    let x = batch();
    let data: Vec<f64> = x.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let base = GaussianBase::from_data(&data, BATCH, 2, BaseCovariance::Diagonal).unwrap();
    let mse = || Box::new(Mse::new(DiscreteSchedule::ddpm())) as Box<dyn Objective + Send + Sync>;
    let itd = || Box::new(ItdLoss::new(Itd::from_base_heuristic(base.clone(), 3.0, 1, 1 << 16).unwrap())) as Box<_>;
    let cases: Vec<(&str, WeightedSum, usize)> = vec![
        ("mse", WeightedSum::new(vec![(1.0, mse())]), 0),
        ("itd+cdl_faithful_k128", WeightedSum::new(vec![(1.0, itd()), (1.0, cdl(CdlMode::Faithful, 128, 2))]), 2),
        ("mse+cdl_improved_k8_i32", WeightedSum::new(vec![(1.0, mse()), (1.0, cdl(CdlMode::Improved, 8, 32))]), 32),
        (
            "mse+cdl_improved_k128_i128",
            WeightedSum::new(vec![(1.0, mse()), (1.0, cdl(CdlMode::Improved, 128, 128))]),
            128,
        ),
    ];
    let mut g = c.benchmark_group("train_step_dino_mlp_b128");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let mut medians = Vec::new();
    for (name, objective, instances) in &cases {
        let (mlp, vars) = MlpConfig::default().init(0, DType::F32, &Device::Cpu).unwrap();
        let mut opt = AdamW::new(named(&vars), AdamWConfig::default()).unwrap();
        let mut step = 0u64;
        let mut run = || {
            let out = objective.loss(&mlp, &x, &NoiseSource::new(0).fork_index(step)).unwrap();
            let grads = out.loss.backward().unwrap();
            opt.step(&grads, 1e-3).unwrap();
            step += 1;
        };
        let t0 = std::time::Instant::now();
        for _ in 0..5 {
            run();
        }
        medians.push((name, t0.elapsed().as_secs_f64() / 5.0, *instances));
        g.bench_function(*name, |b| b.iter(&mut run));
    }
    g.finish();
    let mse_per_sample = medians[0].1 / BATCH as f64;
    for (name, seconds, instances) in &medians[1..] {
        let cdl_extra = (seconds - medians[0].1).max(0.0) / *instances as f64;
        println!(
            "{name}: {:.2} ms per step ({:.1}× the MSE step); CDL cost per instance / MSE cost per sample ≈ {:.0}",
            seconds * 1e3,
            seconds / medians[0].1,
            cdl_extra / mse_per_sample
        );
    }
}

criterion_group!(benches, train_step);
criterion_main!(benches);
