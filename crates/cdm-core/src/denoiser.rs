//! The `Denoiser` trait: ε̂ at a log-SNR, and adapters for timestep-conditioned networks.
//!
//! A denoiser predicts the noise of `z = √σ(α)·x + √σ(−α)·ε`. Its MMSE optimum is
//! `ε̂*(z, α) = E[ε | z_α = z] = −√σ(−α)·∇_z log p_α(z)` (Tweedie), which is what the exact
//! oracles in [`crate::exact`] compute and what every estimator in this crate assumes.
//!
//! Networks trained on integer DDPM timesteps (e.g. diffusers' `UNet2DModel`) implement
//! [`TimestepModel`] and are wrapped in a [`TimestepDenoiser`], which maps α to a timestep
//! through a [`DiscreteSchedule`].

use candle_core::{Device, Tensor};

use crate::Result;
use crate::schedule::{DiscreteSchedule, TimestepInverse};

/// A noise predictor conditioned on the log-SNR.
pub trait Denoiser {
    /// ε̂(z, α).
    ///
    /// # Shapes
    /// `z`: (B, …); `log_snr`: (B,) with `z`'s dtype and device. Returns (B, …) like `z`.
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> Result<Tensor>;

    /// ε̂(z, α) with the per-row log-SNRs given on the host.
    fn eps_at(&self, z: &Tensor, log_snr: &[f64]) -> Result<Tensor> {
        let alpha = host_tensor(log_snr, z)?;
        self.eps(z, &alpha)
    }
}

impl<D: Denoiser + ?Sized> Denoiser for &D {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> Result<Tensor> {
        (**self).eps(z, log_snr)
    }
}

impl<D: Denoiser + ?Sized> Denoiser for Box<D> {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> Result<Tensor> {
        (**self).eps(z, log_snr)
    }
}

impl<D: Denoiser + ?Sized> Denoiser for std::sync::Arc<D> {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> Result<Tensor> {
        (**self).eps(z, log_snr)
    }
}

/// A (B,) tensor of host values with `like`'s dtype and device.
pub fn host_tensor(values: &[f64], like: &Tensor) -> Result<Tensor> {
    Ok(Tensor::from_slice(values, values.len(), like.device())?.to_dtype(like.dtype())?)
}

/// A network that predicts ε from a (B,) tensor of continuous training timesteps.
pub trait TimestepModel {
    /// ε̂ at timesteps `t` (B,), same dtype and device as `z`.
    fn eps_at_timestep(&self, z: &Tensor, t: &Tensor) -> Result<Tensor>;
}

/// How a continuous timestep is passed to a [`TimestepModel`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestepRounding {
    /// Pass the float timestep (sinusoidal embeddings accept it).
    #[default]
    Continuous,
    /// Truncate towards zero, as the authors' 2-D code does before an embedding table.
    Truncate,
    /// Round to the nearest integer.
    Round,
}

/// Wraps a timestep-conditioned network as a log-SNR [`Denoiser`].
#[derive(Clone, Debug)]
pub struct TimestepDenoiser<M> {
    model: M,
    schedule: DiscreteSchedule,
    inverse: TimestepInverse,
    rounding: TimestepRounding,
}

impl<M> TimestepDenoiser<M> {
    /// Wraps `model`, mapping α to a timestep of `schedule` with `inverse`, then `rounding`.
    pub fn new(model: M, schedule: DiscreteSchedule, inverse: TimestepInverse, rounding: TimestepRounding) -> Self {
        Self { model, schedule, inverse, rounding }
    }

    /// The wrapped network.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The schedule the network was trained on.
    pub fn schedule(&self) -> &DiscreteSchedule {
        &self.schedule
    }

    /// The timestep this adapter passes for a log-SNR.
    pub fn timestep(&self, log_snr: f64) -> f64 {
        let t = self.schedule.timestep(log_snr, self.inverse);
        match self.rounding {
            TimestepRounding::Continuous => t,
            TimestepRounding::Truncate => t.trunc(),
            TimestepRounding::Round => t.round(),
        }
    }
}

impl<M: TimestepModel> Denoiser for TimestepDenoiser<M> {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> Result<Tensor> {
        let alpha = log_snr.to_dtype(candle_core::DType::F64)?.to_device(&Device::Cpu)?.to_vec1::<f64>()?;
        self.eps_at(z, &alpha)
    }

    fn eps_at(&self, z: &Tensor, log_snr: &[f64]) -> Result<Tensor> {
        let t: Vec<f64> = log_snr.iter().map(|&a| self.timestep(a)).collect();
        self.model.eps_at_timestep(z, &host_tensor(&t, z)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    /// Returns its timestep input broadcast over the row, to observe what the adapter passes.
    struct EchoTimestep;
    impl TimestepModel for EchoTimestep {
        fn eps_at_timestep(&self, z: &Tensor, t: &Tensor) -> Result<Tensor> {
            Ok(t.unsqueeze(1)?.broadcast_as(z.shape())?.contiguous()?)
        }
    }

    #[test]
    fn adapter_maps_log_snr_to_the_schedules_timestep() {
        let schedule = DiscreteSchedule::ddpm();
        let alphas = [schedule.log_snrs()[0], schedule.log_snrs()[10], schedule.log_snr(500.4)];
        let z = Tensor::zeros((3, 2), DType::F64, &Device::Cpu).unwrap();
        let exact =
            TimestepDenoiser::new(EchoTimestep, schedule.clone(), TimestepInverse::Exact, TimestepRounding::Continuous);
        let out = exact.eps_at(&z, &alphas).unwrap().to_vec2::<f64>().unwrap();
        for (row, want) in out.iter().zip([0.0, 10.0, 500.4]) {
            assert!((row[0] - want).abs() < 1e-9 && row[0] == row[1], "{row:?} vs {want}");
        }
        let truncating =
            TimestepDenoiser::new(EchoTimestep, schedule, TimestepInverse::Official, TimestepRounding::Truncate);
        let out = truncating.eps_at(&z, &alphas).unwrap().to_vec2::<f64>().unwrap();
        assert_eq!([out[0][0], out[1][0]], [0.0, 10.0]); // official 0.8 → 0, 10.6 → 10
    }
}
