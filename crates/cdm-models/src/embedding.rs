//! Sinusoidal embeddings of the noise level.
//!
//! Two layouts are used:
//!
//! - [`log_snr_embedding`] (the MLPs): the paper's 2-D network embeds the integer timestep with
//!   the transformer table `PE[t, k] = cos(t·f_k)` for even `k` and `sin(t·f_k)` for odd `k`,
//!   `f_k = (10⁻⁴)^(2⌊k/2⌋/dim)`. Our MLPs are conditioned on the continuous log-SNR α, so `t` is
//!   replaced by `scale·α`. With the default scale 50 the DDPM range α ∈ [−10.1, 9.2] spans about
//!   1000 units, the span of the paper's timesteps.
//! - [`timestep_embedding`] (the UNet): diffusers' `get_timestep_embedding` with `max_period`
//!   10 000: `f_k = exp(−ln(10⁴)·k / (half − freq_shift))` for `k < half = dim/2`, the embedding is
//!   `[sin(t·f), cos(t·f)]`, or `[cos(t·f), sin(t·f)]` with `flip_sin_to_cos`, and odd `dim` gets a
//!   zero last column.
//!
//! Both are differentiable in their input; the frequencies are computed on the host in f64.

use candle_core::Tensor;
use cdm_kernels::sinusoid::cos_sin;

/// `(B, dim)` interleaved cos/sin features of `scale·log_snr`.
///
/// # Shapes
/// `log_snr`: (B,) → (B, dim). `dim` must be even.
pub fn log_snr_embedding(log_snr: &Tensor, dim: usize, scale: f64) -> candle_core::Result<Tensor> {
    let half = dim / 2;
    let freqs: Vec<f64> = (0..half).map(|k| scale * 1e-4f64.powf(2.0 * k as f64 / dim as f64)).collect();
    // [cos f₀, sin f₀, cos f₁, sin f₁, …], one fused pass on the CPU
    cos_sin(log_snr, &freqs)
}

/// diffusers' `get_timestep_embedding(t, dim, flip_sin_to_cos, freq_shift)`.
///
/// # Shapes
/// `timesteps`: (B,) → (B, dim).
pub fn timestep_embedding(
    timesteps: &Tensor,
    dim: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
) -> candle_core::Result<Tensor> {
    let half = dim / 2;
    let freqs: Vec<f64> =
        (0..half).map(|k| (-(10_000f64.ln()) * k as f64 / (half as f64 - freq_shift)).exp()).collect();
    let args = outer(timesteps, &freqs)?;
    let (sin, cos) = (args.sin()?, args.cos()?);
    let emb = if flip_sin_to_cos { Tensor::cat(&[cos, sin], 1)? } else { Tensor::cat(&[sin, cos], 1)? };
    if dim % 2 == 1 { emb.pad_with_zeros(1, 0, 1) } else { Ok(emb) }
}

/// `x[:, None] · freqs[None, :]` in `x`'s dtype and device.
fn outer(x: &Tensor, freqs: &[f64]) -> candle_core::Result<Tensor> {
    let freqs = Tensor::from_slice(freqs, (1, freqs.len()), x.device())?.to_dtype(x.dtype())?;
    x.unsqueeze(1)?.broadcast_mul(&freqs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn log_snr_embedding_interleaves_cos_and_sin() {
        let alpha = Tensor::new(&[0.0f64, 0.3], &Device::Cpu).unwrap();
        let emb = log_snr_embedding(&alpha, 4, 10.0).unwrap().to_vec2::<f64>().unwrap();
        assert_eq!(emb[0], vec![1.0, 0.0, 1.0, 0.0]);
        let f1 = 10.0 * 1e-4f64.powf(0.5);
        let want = [3f64.cos(), 3f64.sin(), (0.3 * f1).cos(), (0.3 * f1).sin()];
        for (got, want) in emb[1].iter().zip(want) {
            assert!((got - want).abs() < 1e-12);
        }
    }

    #[test]
    fn timestep_embedding_matches_the_diffusers_formula() {
        let t = Tensor::new(&[7.5f64], &Device::Cpu).unwrap();
        for (flip, shift) in [(true, 0.0), (false, 1.0)] {
            let emb = timestep_embedding(&t, 5, flip, shift).unwrap().to_vec2::<f64>().unwrap();
            let f = |k: usize| (-(10_000f64.ln()) * k as f64 / (2.0 - shift)).exp();
            let (sin, cos) = ([(7.5 * f(0)).sin(), (7.5 * f(1)).sin()], [(7.5 * f(0)).cos(), (7.5 * f(1)).cos()]);
            let want = if flip { [cos[0], cos[1], sin[0], sin[1], 0.0] } else { [sin[0], sin[1], cos[0], cos[1], 0.0] };
            for (got, want) in emb[0].iter().zip(want) {
                assert!((got - want).abs() < 1e-12, "{emb:?}");
            }
        }
    }
}
