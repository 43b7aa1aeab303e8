//! # cdm-core
//!
//! The math of *Your Diffusion Model is Secretly a Noise Classifier and Benefits from
//! Contrastive Training* (Wu et al., NeurIPS 2024, arXiv:2407.08946), on top of candle-core:
//!
//! - [`log_snr`]: stable scalar functions of the log-SNR α, the rescaled α′ and κ;
//! - [`schedule`], [`spacing`], [`karras`]: DDPM (linear, cosine) and EDM noise levels as views
//!   of α, and the timestep grids samplers visit;
//! - [`Denoiser`]: ε̂(z, α), plus [`TimestepDenoiser`] for networks conditioned on timesteps
//!   [`Chunked`], which caps the rows per call of any denoiser, and [`Detached`] for inference;
//!   [`PredictionDenoiser`] reads x₀- and v-predicting networks as ε̂;
//! - [`NoiseSource`]: seeded host-side noise, one stream per sample;
//! - [`exact`]: Gaussian and Gaussian-mixture densities with closed-form ε̂ and log p_α — the
//!   oracles every estimator and sampler is tested against;
//! - [`itd`]: the ITD estimator of −log p(x), −log p_ζ(z) and the log-ratio
//!   f_ζ = log p − log p_ζ (faithful or with common random numbers), on any denoiser, with all
//!   B·K points in one call; [`gaussian_base`] and [`logistic`] are its parts;
//! - [`noise_level`]: the noise-level classifier every denoiser implies.
//!
//! Everything speaks variance-preserving log-SNR: `z = √σ(α)·x + √σ(−α)·ε`.
#![doc = include_str!("../README.md")]

pub mod chunked;
pub mod denoiser;
pub mod detached;
mod error;
pub mod exact;
pub mod gaussian_base;
pub mod itd;
pub mod karras;
pub mod log_snr;
pub mod logistic;
pub mod noise;
pub mod noise_level;
pub mod prediction;
pub mod schedule;
pub mod spacing;

pub use chunked::Chunked;
pub use denoiser::{Denoiser, TimestepDenoiser, TimestepModel, TimestepRounding, host_tensor};
pub use detached::Detached;
pub use error::{Error, Result};
pub use exact::{ExactDensity, Gaussian, GaussianMixture, MixtureComponent};
pub use gaussian_base::{BaseCovariance, GaussianBase};
pub use itd::{Estimate, Itd, ItdConfig, PointwiseEstimate, RandomNumbers, bits_per_dim};
pub use karras::KarrasSigmas;
pub use logistic::TruncatedLogistic;
pub use noise::{NoiseSource, Streams};
pub use noise_level::{NoiseLevelClassifier, NoiseLevelPosterior};
pub use prediction::{Prediction, PredictionDenoiser};
pub use schedule::{BetaSchedule, DiscreteSchedule, TimestepInverse};
pub use spacing::{TimestepSpacing, predecessors};

/// The workspace README's library example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExample;
