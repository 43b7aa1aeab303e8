//! Exact denoisers of Gaussian and Gaussian-mixture data: the oracles of every test.
//!
//! For data `x ~ p` noised as `z = a·x + s·ε` with `a = √σ(α)`, `s = √σ(−α)`, the MMSE noise
//! prediction is Tweedie's formula
//!
//! ```text
//! ε̂*(z, α) = E[ε | z] = −s · ∇_z log p_α(z)
//! ```
//!
//! and for Gaussian components `N(μ, Σ)` the noised law is again Gaussian,
//! `N(a·μ, a²Σ + s²I)`, so both ε̂* and `log p_α(z)` are closed forms. `α = +∞` is the clean
//! density itself. The oracles compute in f64 on the host and implement [`crate::Denoiser`]
//! for any input dtype and device.

mod gaussian;
mod mixture;

pub use gaussian::Gaussian;
pub use mixture::{GaussianMixture, MixtureComponent};

use candle_core::{DType, Device, Tensor};
use rand::Rng;

use crate::{Error, Result};

/// A density with closed-form noised log-density and optimal denoiser.
pub trait ExactDensity {
    /// Dimension `d` of one sample.
    fn dim(&self) -> usize;

    /// log p_α(z) of one point `z` (length `d`); `log_snr = +∞` gives log p(z).
    fn log_prob(&self, z: &[f64], log_snr: f64) -> f64;

    /// ε̂*(z, α) of one point, written into `out` (length `d`).
    fn eps_into(&self, z: &[f64], log_snr: f64, out: &mut [f64]);

    /// One exact draw from the clean density.
    fn sample(&self, rng: &mut dyn rand::RngCore) -> Vec<f64>;
}

/// ε̂* for a batch tensor (B, …) with per-row log-SNRs, computed on the host in f64.
pub(crate) fn eps_tensor(density: &dyn ExactDensity, z: &Tensor, log_snr: &Tensor) -> Result<Tensor> {
    let rows = z.dim(0)?;
    let d = density.dim();
    if z.elem_count() != rows * d {
        return Err(Error::shape("exact denoiser", format!("(B, {d})"), z.dims()));
    }
    if log_snr.dims() != [rows] {
        return Err(Error::shape("exact denoiser log_snr", [rows], log_snr.dims()));
    }
    let zs = z.to_dtype(DType::F64)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f64>()?;
    let alphas = log_snr.to_dtype(DType::F64)?.to_device(&Device::Cpu)?.to_vec1::<f64>()?;
    let mut out = vec![0.0; zs.len()];
    for (i, &alpha) in alphas.iter().enumerate() {
        density.eps_into(&zs[i * d..(i + 1) * d], alpha, &mut out[i * d..(i + 1) * d]);
    }
    Ok(Tensor::from_vec(out, z.shape(), z.device())?.to_dtype(z.dtype())?)
}

/// `n` exact draws as an (n, d) f64 matrix, sample `i` from stream `i` of `noise`.
pub fn sample_rows(density: &dyn ExactDensity, noise: &crate::NoiseSource, n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n * density.dim());
    for i in 0..n {
        out.extend(density.sample(&mut noise.stream(i as u64)));
    }
    out
}

/// Noises rows of `x` (n, d) at log-SNR `log_snr` with standard normals from `rng`.
pub fn noise_rows(x: &[f64], log_snr: f64, rng: &mut impl Rng) -> Vec<f64> {
    let (a, s) = (crate::log_snr::signal_coef(log_snr), crate::log_snr::noise_coef(log_snr));
    x.iter().map(|&v| a * v + s * rng.sample::<f64, _>(rand_distr::StandardNormal)).collect()
}

/// ½·log(2π).
pub(crate) const HALF_LN_2PI: f64 = 0.918_938_533_204_672_7;
