//! Shared helpers of the integration tests.
#![allow(dead_code)] // each test binary uses a subset

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use cdm_core::{GaussianMixture, MixtureComponent, NoiseSource};
use cdm_samplers::SamplerNoise;

/// The committed fixture directory.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/paradigms")
}

/// An f64 array of the fixture.
pub fn npy(name: &str) -> Tensor {
    Tensor::read_npy(fixture_dir().join(name)).unwrap()
}

/// The reference's 4-component isotropic mixture in D = 8 (means ~ N(0, 4I), variance 0.05).
pub fn reference_mixture() -> GaussianMixture {
    let means = npy("mixture_means.npy").to_vec2::<f64>().unwrap();
    let variances = npy("mixture_variances.npy").to_vec1::<f64>().unwrap();
    let weights = npy("mixture_weights.npy").to_vec1::<f64>().unwrap();
    let components = means
        .into_iter()
        .zip(variances.iter().zip(&weights))
        .map(|(mean, (&v, &weight))| MixtureComponent { weight, variance: vec![v; mean.len()], mean })
        .collect();
    GaussianMixture::new(components).unwrap()
}

/// Seeded noise for `count` samples of dimension `dim`.
pub fn seeded(seed: u64, count: usize, dim: usize, dtype: DType) -> SamplerNoise {
    SamplerNoise::seeded(&NoiseSource::new(seed), 0, count, &[dim], dtype, &Device::Cpu).unwrap()
}

/// Rows of a (B, D) tensor as f64.
pub fn rows(x: &Tensor) -> Vec<Vec<f64>> {
    x.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap()
}

/// max_b ‖a_b − b_b‖ / ‖b_b‖.
pub fn max_rel_err(a: &Tensor, b: &Tensor) -> f64 {
    rows(a)
        .iter()
        .zip(rows(b))
        .map(|(x, y)| {
            let num: f64 = x.iter().zip(&y).map(|(p, q)| (p - q).powi(2)).sum();
            let den: f64 = y.iter().map(|q| q * q).sum();
            (num / den).sqrt()
        })
        .fold(0.0, f64::max)
}

/// max |a − b| over all entries.
pub fn max_abs_err(a: &Tensor, b: &Tensor) -> f64 {
    rows(a).iter().flatten().zip(rows(b).iter().flatten()).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max)
}
