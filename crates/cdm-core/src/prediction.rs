//! Networks that predict x₀ or v instead of ε, turned into ε̂ denoisers.
//!
//! With `z = √σ(α)·x + √σ(−α)·ε` (ᾱ = σ(α), 1 − ᾱ = σ(−α)) the three parameterisations of
//! diffusers' `prediction_type` carry the same information (Salimans & Ho 2022, *Progressive
//! Distillation for Fast Sampling of Diffusion Models*, arXiv:2202.00512, §4, for v):
//!
//! ```text
//! epsilon:       output = ε̂                       ε̂ = output
//! sample:        output = x̂₀                      ε̂ = (z − √σ(α)·x̂₀) / √σ(−α)
//! v_prediction:  output = v̂ = √ᾱ·ε̂ − √(1−ᾱ)·x̂₀    ε̂ = √σ(α)·v̂ + √σ(−α)·z
//! ```
//!
//! Every sampler here is written in ε̂, so a [`PredictionDenoiser`] lets them drive any of the
//! three. The conversions are exact in real arithmetic; in f32 the `sample` form divides by
//! √σ(−α), which is ≥ 0.01 on the DDPM schedules.
//!
//! | name here | symbol |
//! |---|---|
//! | `log_snr` | α |
//! | `signal`, `noise` | √σ(α) = √ᾱ, √σ(−α) = √(1 − ᾱ) |

use candle_core::{Device, Tensor};

use crate::Result;
use crate::denoiser::Denoiser;
use crate::log_snr::sigmoid;

/// What a network's output is (diffusers' `prediction_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prediction {
    /// The noise ε.
    #[default]
    Epsilon,
    /// The clean sample x₀.
    Sample,
    /// The velocity v = √ᾱ·ε − √(1−ᾱ)·x₀.
    #[serde(rename = "v_prediction")]
    Velocity,
}

/// Reads a wrapped network's output as `prediction` and returns ε̂.
#[derive(Clone, Debug)]
pub struct PredictionDenoiser<D> {
    network: D,
    prediction: Prediction,
}

impl<D> PredictionDenoiser<D> {
    /// Wraps `network`, whose [`Denoiser::eps`] returns a `prediction`-type output.
    pub fn new(network: D, prediction: Prediction) -> Self {
        Self { network, prediction }
    }
}

impl<D: Denoiser> Denoiser for PredictionDenoiser<D> {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> Result<Tensor> {
        let alpha = log_snr.to_dtype(candle_core::DType::F64)?.to_device(&Device::Cpu)?.to_vec1::<f64>()?;
        self.eps_at(z, &alpha)
    }

    fn eps_at(&self, z: &Tensor, log_snr: &[f64]) -> Result<Tensor> {
        let output = self.network.eps_at(z, log_snr)?;
        let per_row = |f: fn(f64) -> f64| -> Result<Tensor> {
            let values: Vec<f64> = log_snr.iter().map(|&a| f(a)).collect();
            let mut shape = vec![values.len()];
            shape.resize(z.rank(), 1);
            Ok(Tensor::from_slice(&values, shape, z.device())?.to_dtype(z.dtype())?)
        };
        let signal = || per_row(|a| sigmoid(a).sqrt());
        let noise = || per_row(|a| sigmoid(-a).sqrt());
        Ok(match self.prediction {
            Prediction::Epsilon => output,
            Prediction::Sample => z.sub(&output.broadcast_mul(&signal()?)?)?.broadcast_div(&noise()?)?,
            Prediction::Velocity => output.broadcast_mul(&signal()?)?.add(&z.broadcast_mul(&noise()?)?)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A network that returns the `prediction`-type target of fixed (x₀, ε), as a perfect model
    /// of a one-point data set would.
    struct Oracle {
        x0: Tensor,
        eps: Tensor,
        prediction: Prediction,
    }

    impl Denoiser for Oracle {
        fn eps(&self, _z: &Tensor, log_snr: &Tensor) -> Result<Tensor> {
            let a = log_snr.to_vec1::<f64>()?[0];
            let (s, n) = (sigmoid(a).sqrt(), sigmoid(-a).sqrt());
            Ok(match self.prediction {
                Prediction::Epsilon => self.eps.clone(),
                Prediction::Sample => self.x0.clone(),
                Prediction::Velocity => ((&self.eps * s)? - (&self.x0 * n)?)?,
            })
        }
    }

    #[test]
    fn every_parameterisation_gives_back_the_noise() {
        let dev = Device::Cpu;
        let x0 = Tensor::new(&[[0.3f64, -1.2, 2.0]], &dev).unwrap();
        let eps = Tensor::new(&[[-0.7f64, 0.1, 1.5]], &dev).unwrap();
        for a in [-9.0, -1.0, 0.0, 2.5, 9.0] {
            let z = ((&x0 * sigmoid(a).sqrt()).unwrap() + (&eps * sigmoid(-a).sqrt()).unwrap()).unwrap();
            for prediction in [Prediction::Epsilon, Prediction::Sample, Prediction::Velocity] {
                let oracle = Oracle { x0: x0.clone(), eps: eps.clone(), prediction };
                let got = PredictionDenoiser::new(oracle, prediction).eps_at(&z, &[a]).unwrap();
                let err = (got - &eps).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
                assert!(err < 1e-12, "{prediction:?} at α = {a}: error {err:e}");
            }
        }
        let names: Vec<String> = [Prediction::Epsilon, Prediction::Sample, Prediction::Velocity]
            .iter()
            .map(|p| serde_json::to_string(p).unwrap())
            .collect();
        assert_eq!(names, ["\"epsilon\"", "\"sample\"", "\"v_prediction\""]);
    }
}
