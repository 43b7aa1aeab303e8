//! Forward and backward passes of the `cdm-models` denoisers on the CPU.
//!
//! - `mlp_forward/b10000`: the paper's 2-D residual MLP (d_model 128, 2 blocks), batch 10 000;
//! - `unet_forward/b16` and `unet_forward_backward/b16`: a CIFAR-sized diffusers UNet
//!   (32×32×3, block_out_channels (64, 128, 128), 2 ResNet blocks per level, attention at
//!   16×16 and in the middle), batch 16; the backward is of the mean squared output.
//!
//! Run with `cargo bench -p cdm-benches --bench models`; set `RAYON_NUM_THREADS` (the workspace
//! `.cargo/config.toml` does) or candle re-reads `/proc/cpuinfo` on every op.

use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use cdm_core::Denoiser;
use cdm_models::{MlpConfig, ModelConfig, UnetConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Number of trainable scalars in `vars`.
fn parameter_count(vars: &candle_nn::VarMap) -> usize {
    vars.all_vars().iter().map(|v| v.elem_count()).sum()
}

/// A deterministic (B, …) input in [−1, 1].
fn input(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| ((i * 7919 % 2001) as f32 / 1000.0) - 1.0).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

fn mlp(c: &mut Criterion) {
    let batch = 10_000;
    let (mlp, vars) = MlpConfig::default().init(0, DType::F32, &Device::Cpu).unwrap();
    println!("mlp: {} parameters", parameter_count(&vars));
    let z = input(&[batch, 2]);
    let log_snr = input(&[batch]).affine(10.0, 0.0).unwrap();
    let mut group = c.benchmark_group("mlp_forward");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("b10000", |b| b.iter(|| mlp.eps(&z, &log_snr).unwrap()));
    group.finish();
}

fn unet(c: &mut Criterion) {
    let batch = 16;
    let names = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    let config = UnetConfig {
        sample_size: Some(cdm_models::SampleSize::Square(32)),
        block_out_channels: vec![64, 128, 128],
        down_block_types: names(&["DownBlock2D", "AttnDownBlock2D", "DownBlock2D"]),
        up_block_types: names(&["UpBlock2D", "AttnUpBlock2D", "UpBlock2D"]),
        attention_head_dim: None,
        ..UnetConfig::default()
    };
    let (unet, vars) = config.init(0, DType::F32, &Device::Cpu).unwrap();
    println!("unet: {} parameters", parameter_count(&vars));
    let x = input(&[batch, 3, 32, 32]);
    let t = Tensor::from_vec((0..batch).map(|i| (i * 61) as f32).collect::<Vec<_>>(), batch, &Device::Cpu).unwrap();

    let mut group = c.benchmark_group("unet_forward");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("b16", |b| b.iter(|| unet.forward(&x, &t, false).unwrap()));
    group.finish();

    let mut group = c.benchmark_group("unet_forward_backward");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("b16", |b| {
        b.iter(|| unet.forward(&x, &t, false).unwrap().sqr().unwrap().mean_all().unwrap().backward().unwrap())
    });
    group.finish();
}

criterion_group!(benches, mlp, unet);
criterion_main!(benches);
