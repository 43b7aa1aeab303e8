//! The GEMM-based CPU convolution (`cdm_kernels::conv2d`) against candle's `conv2d`.
//!
//! Batch 16, f32, every argument a `Var` (as inside a UNet, so the input gradient is computed
//! too), bias included:
//!
//! - `c128_16x16_k3`: 128 → 128 channels, 16×16, 3×3, padding 1 (a ResNet conv at 16×16);
//! - `c64_32x32_k3`: 64 → 64 channels, 32×32, 3×3, padding 1;
//! - `c128_32x32_k3_s2`: 128 → 128 channels, 32×32 → 16×16, 3×3, stride 2, padding 1 (a downsampler);
//! - `c128to64_32x32_k1`: 128 → 64 channels, 32×32, 1×1 (a ResNet shortcut);
//! - `c32_28x28_k3`, `c64_14x14_k3`: the ResNet convs of the 28×28 UNet's first two levels.
//!
//! `conv_forward/{ours,candle}/CASE` times the forward; `conv_forward_backward/…` the forward
//! and `y.sqr().sum_all().backward()`.
//!
//! Run with `cargo bench -p cdm-benches --bench kernels_conv`; set `RAYON_NUM_THREADS` (the
//! workspace `.cargo/config.toml` does) or candle re-reads `/proc/cpuinfo` on every op.

use std::hint::black_box;
use std::time::Duration;

// linked for its global allocator, mimalloc, as in the `cdm` binary
use cdm_benches as _;

use candle_core::{Device, Result, Tensor, Var};
use cdm_kernels::conv2d::{conv2d, conv2d_candle};
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime};

/// A convolution to time: input (B, Cin, H, W), output channels, kernel, stride, padding.
struct Case {
    name: &'static str,
    input: [usize; 4],
    out_channels: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
}

const CASES: [Case; 6] = [
    Case { name: "c128_16x16_k3", input: [16, 128, 16, 16], out_channels: 128, kernel: 3, stride: 1, padding: 1 },
    Case { name: "c64_32x32_k3", input: [16, 64, 32, 32], out_channels: 64, kernel: 3, stride: 1, padding: 1 },
    Case { name: "c128_32x32_k3_s2", input: [16, 128, 32, 32], out_channels: 128, kernel: 3, stride: 2, padding: 1 },
    Case { name: "c128to64_32x32_k1", input: [16, 128, 32, 32], out_channels: 64, kernel: 1, stride: 1, padding: 0 },
    Case { name: "c32_28x28_k3", input: [16, 32, 28, 28], out_channels: 32, kernel: 3, stride: 1, padding: 1 },
    Case { name: "c64_14x14_k3", input: [16, 64, 14, 14], out_channels: 64, kernel: 3, stride: 1, padding: 1 },
];

/// The two implementations, with the same signature.
type ConvFn = fn(&Tensor, &Tensor, Option<&Tensor>, usize, usize) -> Result<Tensor>;
const IMPLEMENTATIONS: [(&str, ConvFn); 2] = [("ours", conv2d), ("candle", conv2d_candle)];

/// Deterministic values in [−scale, scale] as a `Var`.
fn var(shape: &[usize], scale: f32) -> Var {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| scale * (((i * 7919 % 2001) as f32 / 1000.0) - 1.0)).collect();
    Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu).unwrap()).unwrap()
}

/// The case's (x, weight, bias), PyTorch-sized weights.
fn arguments(case: &Case) -> (Var, Var, Var) {
    let [_, cin, _, _] = case.input;
    let bound = 1.0 / ((cin * case.kernel * case.kernel) as f32).sqrt();
    let x = var(&case.input, 1.0);
    let weight = var(&[case.out_channels, cin, case.kernel, case.kernel], bound);
    let bias = var(&[case.out_channels], bound);
    (x, weight, bias)
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
}

fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_forward");
    configure(&mut group);
    for case in &CASES {
        let (x, weight, bias) = arguments(case);
        for (name, conv) in IMPLEMENTATIONS {
            group.bench_function(format!("{name}/{}", case.name), |b| {
                b.iter(|| conv(black_box(&x), &weight, Some(&bias), case.stride, case.padding).unwrap())
            });
        }
    }
    group.finish();
}

fn forward_backward(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv_forward_backward");
    configure(&mut group);
    for case in &CASES {
        let (x, weight, bias) = arguments(case);
        for (name, conv) in IMPLEMENTATIONS {
            group.bench_function(format!("{name}/{}", case.name), |b| {
                b.iter(|| {
                    let y = conv(black_box(&x), &weight, Some(&bias), case.stride, case.padding).unwrap();
                    y.sqr().unwrap().sum_all().unwrap().backward().unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, forward, forward_backward);
criterion_main!(benches);
