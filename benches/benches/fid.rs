//! Images per second of the FID feature extractor (`cdm_metrics::fid`): 16 grayscale 28×28
//! images in [0, 1], resized to 299×299, through the Inception network with the published
//! channel counts. The weights are random (the time does not depend on their values), so the
//! bench needs no download.
//!
//! Run with `cargo bench -p cdm-benches --bench fid -- --sample-size 10`; criterion reports the
//! time per batch of 16.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

// linked for its global allocator, mimalloc, as in the `cdm` binary
use cdm_benches as _;

use candle_core::{DType, Device, Tensor};
use cdm_core::NoiseSource;
use cdm_metrics::fid::{self, InceptionV3, inception::published_shapes};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 16;

fn random_network() -> InceptionV3 {
    let noise = NoiseSource::new(0).fork("fid-bench");
    let mut tensors = HashMap::new();
    for (k, (spec, shape)) in published_shapes().into_iter().enumerate() {
        let fan_in = (shape[1] * shape[2] * shape[3]) as f64;
        let w = noise.streams(k as u64, 1).normal_f64(shape.iter().product());
        let w: Vec<f32> = w.iter().map(|v| (v * (2.0 / fan_in).sqrt()) as f32).collect();
        let o = shape[0];
        tensors.insert(format!("{}.weight", spec.name), Tensor::from_vec(w, shape.to_vec(), &Device::Cpu).unwrap());
        tensors.insert(format!("{}.beta", spec.name), Tensor::zeros(o, DType::F32, &Device::Cpu).unwrap());
        tensors.insert(format!("{}.mean", spec.name), Tensor::zeros(o, DType::F32, &Device::Cpu).unwrap());
        tensors.insert(format!("{}.var", spec.name), Tensor::ones(o, DType::F32, &Device::Cpu).unwrap());
    }
    InceptionV3::from_tensors(&tensors, "random").unwrap()
}

fn bench(c: &mut Criterion) {
    let net = random_network();
    assert_eq!(net.feature_dim(), 2048);
    let pixels = NoiseSource::new(1).streams(0, BATCH).uniform_f64(28 * 28);
    let images = Tensor::from_vec(pixels, (BATCH, 1, 28, 28), &Device::Cpu).unwrap().to_dtype(DType::F32).unwrap();
    let mut group = c.benchmark_group("fid_features");
    group.throughput(Throughput::Elements(BATCH as u64)).measurement_time(Duration::from_secs(60));
    group.bench_function("gray28_to_299_batch16", |b| {
        b.iter(|| black_box(fid::features(&net, &images, BATCH).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
