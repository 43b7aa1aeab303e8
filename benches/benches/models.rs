//! Forward and backward passes of the `cdm-models` denoisers on the CPU.
//!
//! - `mlp_forward/b10000`: the paper's 2-D residual MLP (d_model 128, 2 blocks), batch 10 000
//!   (the peer workload `mlp_forward_b10000`);
//! - `unet_forward/b16` and `unet_forward_backward/b16`: a CIFAR-sized diffusers UNet
//!   (32×32×3, block_out_channels (64, 128, 128), 2 ResNet blocks per level, attention at
//!   16×16 and in the middle), batch 16; the forward is the peer workload `unet32_forward_b16`,
//!   the backward is of the mean squared output.
//!
//! The workloads are built in `cdm_benches::workloads`, shared with the peer benchmark against
//! PyTorch (`cargo xtask bench --peer`). Run with `cargo bench -p cdm-benches --bench models`;
//! set `RAYON_NUM_THREADS` (the workspace `.cargo/config.toml` does) or candle re-reads
//! `/proc/cpuinfo` on every op.

use std::time::Duration;

use cdm_benches::workloads::{mlp, unet};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn mlp(c: &mut Criterion) {
    cdm_kernels::tune_gemm_threading(); // as the `cdm` binary does
    let batch = 10_000;
    let mut forward = mlp::forward(batch).unwrap();
    println!("mlp: {} parameters", forward.parameters);
    let mut group = c.benchmark_group("mlp_forward");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("b10000", |b| b.iter(|| forward.run().unwrap()));
    group.finish();
}

fn unet(c: &mut Criterion) {
    cdm_kernels::tune_gemm_threading(); // as the `cdm` binary does
    let batch = 16;
    let mut forward = unet::forward(&unet::cifar32(), batch).unwrap();
    println!("unet: {} parameters", forward.parameters);
    let mut group = c.benchmark_group("unet_forward");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("b16", |b| b.iter(|| forward.run().unwrap()));
    group.finish();

    let (net, _vars, x) = unet::build(&unet::cifar32(), batch).unwrap();
    let t = unet::timesteps(batch).unwrap();
    let mut group = c.benchmark_group("unet_forward_backward");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("b16", |b| {
        b.iter(|| net.forward(&x, &t, false).unwrap().sqr().unwrap().mean_all().unwrap().backward().unwrap())
    });
    group.finish();
}

criterion_group!(benches, mlp, unet);
criterion_main!(benches);
