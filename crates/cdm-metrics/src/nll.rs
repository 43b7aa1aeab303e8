//! Dataset log-likelihood through the ITD estimator, in nats and bits per dimension.
//!
//! Each input x_b gets an ITD estimate `−log p̂(x_b)` with Monte-Carlo standard error se_b
//! ([`cdm_core::Itd::nll`]). Over N inputs of dimension d:
//!
//! ```text
//! NLL          = (1/N) Σ_b −log p̂(x_b)                         (nats per input)
//! std_err      = sd_b(−log p̂(x_b)) / √N                        (data + Monte-Carlo spread)
//! mc_std_err   = √(Σ_b se_b²) / N                               (Monte-Carlo only)
//! bits/dim     = NLL / (d·ln 2)
//! ```
//!
//! `std_err` is the uncertainty about the population NLL; `mc_std_err` is the uncertainty about
//! the exact mean −log p of *these* inputs. The data go through the estimator in chunks; chunk
//! `c` starting at row `s` uses `noise.with_offset(s)`, so input b always draws stream b and the
//! result does not depend on the chunk size (for a model whose rows do not depend on the batch).
//! Bits/dim are those of the continuous density; no dequantisation offset is added.

use candle_core::Tensor;
use cdm_core::{Denoiser, Itd, NoiseSource, bits_per_dim};

use crate::{Error, Result};

/// The mean negative log-likelihood of a dataset.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NllReport {
    /// Number of inputs N.
    pub count: usize,
    /// Values per input d.
    pub dim: usize,
    /// Mean −log p in nats per input.
    pub nats: f64,
    /// Standard error of `nats` over the inputs (equals `mc_std_err` for N = 1).
    pub std_err: f64,
    /// Monte-Carlo standard error of `nats` for these inputs.
    pub mc_std_err: f64,
    /// `nats` in bits per dimension.
    pub bits_per_dim: f64,
    /// `std_err` in bits per dimension.
    pub bits_per_dim_std_err: f64,
}

/// Mean −log p of the inputs `data` (N, …) under `model`, `chunk` inputs per estimator call.
pub fn dataset_nll(
    itd: &Itd,
    model: &dyn Denoiser,
    data: &Tensor,
    chunk: usize,
    noise: &NoiseSource,
) -> Result<NllReport> {
    if chunk == 0 {
        return Err(Error::invalid("chunk", 0, "must be at least 1"));
    }
    let count = data.dims().first().copied().unwrap_or(0);
    if data.rank() < 2 || count == 0 {
        return Err(Error::shape("dataset_nll data", "(N ≥ 1, …)", data.dims()));
    }
    let dim = data.elem_count() / count;
    let (mut values, mut variances) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for start in (0..count).step_by(chunk) {
        let len = chunk.min(count - start);
        let est = itd.nll(model, &data.narrow(0, start, len)?, None, &noise.with_offset(start as u64))?.summary()?;
        values.extend(est.value);
        variances.extend(est.std_err.iter().map(|s| s * s));
        tracing::debug!(done = start + len, count, "dataset NLL");
    }
    let n = count as f64;
    let nats = values.iter().sum::<f64>() / n;
    let mc_std_err = variances.iter().sum::<f64>().sqrt() / n;
    let std_err = match count {
        1 => mc_std_err,
        _ => (values.iter().map(|v| (v - nats).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt(),
    };
    Ok(NllReport {
        count,
        dim,
        nats,
        std_err,
        mc_std_err,
        bits_per_dim: bits_per_dim(nats, dim),
        bits_per_dim_std_err: bits_per_dim(std_err, dim),
    })
}
