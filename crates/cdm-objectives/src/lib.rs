//! # cdm-objectives
//!
//! Training objectives for log-SNR denoisers ([`cdm_core::Denoiser`]):
//!
//! - [`Mse`]: the DDPM ε-prediction loss with uniform timesteps (the paper's baseline);
//! - [`ItdLoss`]: the importance-weighted log-SNR loss (the authors' CDL models' standard loss);
//! - [`Cdl`]: the contrastive diffusion loss of Wu et al. (NeurIPS 2024), faithful to the
//!   authors' code or improved (common random numbers, every instance, one batched call);
//! - [`WeightedSum`]: `w_std·L_std + w_cdl·L_cdl`.
//!
//! Objectives never see a model type, only the [`cdm_core::Denoiser`] trait, so they are tested
//! against exact denoisers.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use cdm_core::{DiscreteSchedule, GaussianMixture, NoiseSource};
//! use cdm_objectives::{Mse, Objective};
//!
//! let exact = GaussianMixture::two_mode_1d();
//! let x = Tensor::new(&[[-5.0f64], [5.0], [4.0], [-6.0]], &Device::Cpu)?;
//! let out = Mse::new(DiscreteSchedule::ddpm()).loss(&exact, &x, &NoiseSource::new(0))?;
//! assert!(out.loss.to_scalar::<f64>()? < 2.0);
//! # Ok::<(), cdm_objectives::Error>(())
//! ```

mod cdl;
mod error;
mod itd_loss;
mod mse;
mod objective;
mod zeta;

pub use cdl::{Cdl, CdlLogits, CdlMode};
pub use error::{Error, Result};
pub use itd_loss::ItdLoss;
pub use mse::Mse;
pub use objective::{LossOutput, Metric, Objective, WeightedSum};
pub use zeta::ZetaDistribution;
