//! Samplers on the exact denoiser of a non-diagonal Gaussian reproduce its mean and covariance.
//!
//! Data `N(μ, Σ)`, μ = (1, −2), Σ = [[2, 0.8], [0.8, 1]], n = 2000 samples in f64, the same
//! seeded noise for every sampler. The error of a sample moment splits into a statistical part
//! and the sampler's discretisation bias, and the tests bound each with a stated tolerance:
//!
//! * **Statistical**: every entry within 4 standard errors (false-alarm rate ≈ 6e-5 per entry),
//!   `se(mean_i) = √(C_ii/n)` and `se(cov_ij) = √((C_ii·C_jj + C_ij²)/n)` for the covariance C
//!   the sampler targets (≈ 0.03–0.06 here).
//! * **Discretisation**: with exact ε̂ the deterministic samplers (DDIM η = 0, EDM Heun) are
//!   *affine* maps of the initial noise for Gaussian data, `x_S = A·ξ + b`, so their exact
//!   output law `N(b, A·Aᵀ)` is computed from three noise vectors (0, e_1, e_2). Both have a
//!   real bias on this data (Σ's largest eigenvalue ≈ 2.44 puts the ODE's curved region around
//!   σ ≈ 1.5): the relative error (max of the mean's and the covariance's, Frobenius) must be
//!   * DDIM-50, first order: below 10 % (measured 6.3 %; trailing, leading and linspace agree)
//!     and shrink at least 1.7× when S doubles (first order: 2×);
//!   * EDM Heun N = 18, second order: below 15 % (measured 8.1 %; the ρ = 7 grid is coarse
//!     around σ ≈ 1.5) and shrink at least 3× when N doubles (second order: 4×; measured 4.6×).
//! * DDPM-1000 is stochastic; its sample moments must match (μ, Σ) within 4 standard errors
//!   directly (no allowance).

mod common;

use candle_core::{DType, Device, Tensor};
use cdm_core::{DiscreteSchedule, Gaussian, NoiseSource};
use cdm_samplers::{DdimConfig, DdpmConfig, EdmHeunConfig, Sampler, SamplerNoise, Sequential, StepMap};

const N: usize = 2000;
const MEAN: [f64; 2] = [1.0, -2.0];
const COV: [f64; 4] = [2.0, 0.8, 0.8, 1.0];
const SE_MULTIPLE: f64 = 4.0;

fn data() -> Gaussian {
    Gaussian::new(MEAN.to_vec(), COV.to_vec()).unwrap()
}

fn moments(x: &Tensor) -> ([f64; 2], [f64; 4]) {
    let rows = x.to_vec2::<f64>().unwrap();
    let n = rows.len() as f64;
    let mean = [0, 1].map(|i| rows.iter().map(|r| r[i]).sum::<f64>() / n);
    let cov = [(0, 0), (0, 1), (1, 0), (1, 1)]
        .map(|(i, j)| rows.iter().map(|r| (r[i] - mean[i]) * (r[j] - mean[j])).sum::<f64>() / (n - 1.0));
    (mean, cov)
}

/// Sample moments of `map` within 4 standard errors of the target (mean, cov).
fn check_sampled(name: &str, map: &dyn StepMap, target: ([f64; 2], [f64; 4])) {
    let noise = SamplerNoise::seeded(&NoiseSource::new(2024), 0, N, &[2], DType::F64, &Device::Cpu).unwrap();
    let out = Sequential.sample(&data(), map, &noise, &mut ()).unwrap();
    let (mean, cov) = moments(&out.x);
    let ((tm, tc), n) = (target, N as f64);
    for i in 0..2 {
        let z = (mean[i] - tm[i]) / (tc[3 * i] / n).sqrt();
        println!("{name}: mean[{i}] = {:.4} (target {:.4}), {z:+.2} se", mean[i], tm[i]);
        assert!(z.abs() < SE_MULTIPLE, "{name}: mean[{i}] off by {z:.2} se");
    }
    for (i, j) in [(0usize, 0usize), (0, 1), (1, 1)] {
        let se = ((tc[3 * i] * tc[3 * j] + tc[2 * i + j].powi(2)) / n).sqrt();
        let z = (cov[2 * i + j] - tc[2 * i + j]) / se;
        println!("{name}: cov[{i}{j}] = {:.4} (target {:.4}), {z:+.2} se", cov[2 * i + j], tc[2 * i + j]);
        assert!(z.abs() < SE_MULTIPLE, "{name}: cov[{i}{j}] off by {z:.2} se");
    }
}

/// The exact output law N(b, A·Aᵀ) of a deterministic sampler that is affine in ξ.
fn affine_law(map: &dyn StepMap) -> ([f64; 2], [f64; 4]) {
    let basis = Tensor::new(&[[0.0f64, 0.0], [1.0, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
    let noise = SamplerNoise::explicit(basis, None).unwrap();
    let out = Sequential.sample(&data(), map, &noise, &mut ()).unwrap().x.to_vec2::<f64>().unwrap();
    let b = [out[0][0], out[0][1]];
    let a = [[out[1][0] - b[0], out[2][0] - b[0]], [out[1][1] - b[1], out[2][1] - b[1]]];
    let cov = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(i, j)| a[i][0] * a[j][0] + a[i][1] * a[j][1]);
    (b, cov)
}

/// Relative discretisation bias of an exact law: max of ‖b − μ‖/‖μ‖ and ‖C − Σ‖_F/‖Σ‖_F.
fn bias(law: ([f64; 2], [f64; 4])) -> f64 {
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let dm: Vec<f64> = law.0.iter().zip(MEAN).map(|(a, b)| a - b).collect();
    let dc: Vec<f64> = law.1.iter().zip(COV).map(|(a, b)| a - b).collect();
    (norm(&dm) / norm(&MEAN)).max(norm(&dc) / norm(&COV))
}

#[test]
fn ddpm_1000_reproduces_mean_and_covariance() {
    let ddpm = DdpmConfig::default().build(&DiscreteSchedule::ddpm()).unwrap();
    check_sampled("ddpm-1000", &ddpm, (MEAN, COV));
}

#[test]
fn ddim_50_reproduces_mean_and_covariance() {
    let ddim = |steps| DdimConfig { steps, ..Default::default() }.build(&DiscreteSchedule::ddpm()).unwrap();
    let law = affine_law(&ddim(50));
    let (b50, b100) = (bias(law), bias(affine_law(&ddim(100))));
    println!("ddim-50 exact law {law:?}, bias {b50:.2e}; S = 100 bias {b100:.2e} (ratio {:.2})", b50 / b100);
    assert!(b50 < 0.10, "ddim-50 bias {b50}");
    assert!(b50 / b100 > 1.7, "first order: bias {b50} at S = 50, {b100} at S = 100");
    check_sampled("ddim-50", &ddim(50), law);
}

#[test]
fn edm_heun_18_reproduces_mean_and_covariance() {
    let heun = |steps| EdmHeunConfig { steps, ..Default::default() }.build().unwrap();
    let law = affine_law(&heun(18));
    let (b18, b36) = (bias(law), bias(affine_law(&heun(36))));
    println!("edm-heun-18 exact law {law:?}, bias {b18:.2e}; N = 36 bias {b36:.2e} (ratio {:.2})", b18 / b36);
    assert!(b18 < 0.15, "edm-heun-18 bias {b18}");
    assert!(b18 / b36 > 3.0, "second order: bias {b18} at N = 18, {b36} at N = 36");
    check_sampled("edm-heun-18", &heun(18), law);
}
