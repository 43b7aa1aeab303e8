//! # cdm-samplers
//!
//! Diffusion samplers over any log-SNR [`Denoiser`] ε̂(z, α) of `cdm-core`, written as step maps
//! `x_{j+1} = F_j(x_j) + n_j` ([`StepMap`]) so that one driver runs them all:
//!
//! | step map | algorithm | NFE |
//! |---|---|---|
//! | [`Ddpm`] | DDPM ancestral, `fixed_small` / `fixed_large` variance | S |
//! | [`Ddim`] | DDIM with η (η = 0 deterministic) | S |
//! | [`EdmHeun`] | EDM Algorithm 1, deterministic Heun | 2N − 1 |
//! | [`EdmStochastic`] | EDM Algorithm 2, Heun with churn (S_churn, S_min, S_max, S_noise) | 2N − 1 |
//!
//! | driver | what it does |
//! |---|---|
//! | [`Sequential`] | the chain, one step after the other |
//! | [`Paradigms`] | sliding-window Picard iteration (ParaDiGMS), whole window in one batched call |
//!
//! Noise comes from a [`SamplerNoise`]: sample `i`'s initial and per-step noise depend only on
//! `(seed, i)`, and both drivers consume identical numbers, so ParaDiGMS with `p = 1` or `τ = 0`
//! reproduces the sequential samples. Runs return [`SamplerStats`] (`rounds`, `nfe`, `wall`, …)
//! and report to an [`Observer`] (progress, [`TrajectoryRecorder`], per-round residuals).
//!
//! [`diffusers::SchedulerConfig`] reads a diffusers DDPM/DDIM `scheduler_config.json` into these
//! maps, so a diffusers pipeline samples with its own settings, sequentially or with ParaDiGMS.
//!
//! DDPM/DDIM steps at training timestep `t` call the denoiser at α_t = logit(ᾱ_t); EDM steps at
//! noise level σ call it at α = −2·ln σ on `x/√(1+σ²)`.
//!
//! ```
//! use candle_core::{DType, Device};
//! use cdm_core::{DiscreteSchedule, Gaussian, NoiseSource};
//! use cdm_samplers::{DdimConfig, Paradigms, ParadigmsConfig, Sampler, SamplerNoise, Sequential};
//!
//! // Data N(μ, Σ) with its exact denoiser; 500 samples of deterministic 50-step DDIM.
//! let data = Gaussian::new(vec![1.0, -1.0], vec![1.0, 0.5, 0.5, 1.0])?;
//! let ddim = DdimConfig { steps: 50, ..Default::default() }.build(&DiscreteSchedule::ddpm())?;
//! let noise = SamplerNoise::seeded(&NoiseSource::new(0), 0, 500, &[2], DType::F64, &Device::Cpu)?;
//! let seq = Sequential.sample(&data, &ddim, &noise, &mut ())?;
//! let mean = seq.x.mean(0)?.to_vec1::<f64>()?;
//! assert!((mean[0] - 1.0).abs() < 0.2 && (mean[1] + 1.0).abs() < 0.2);
//! assert_eq!((seq.stats.rounds, seq.stats.nfe), (50, 50));
//!
//! // The same chain in parallel: far fewer rounds, samples within the tolerance.
//! let picard = Paradigms::new(ParadigmsConfig { window: 50, tolerance: 1e-3, ..Default::default() })?;
//! let par = picard.sample(&data, &ddim, &noise, &mut ())?;
//! assert!(par.stats.rounds < 50);
//! let err = (par.x - &seq.x)?.abs()?.max_all()?.to_scalar::<f64>()?;
//! assert!(err < 1e-2);
//! # Ok::<(), cdm_samplers::Error>(())
//! ```
#![doc = include_str!("../README.md")]

mod ddim;
mod ddpm;
pub mod diffusers;
mod edm_heun;
mod edm_stochastic;
mod error;
mod noise;
mod observer;
mod paradigms;
mod sampler;
mod step_map;
pub mod window_choice;

pub use cdm_core::Denoiser;
pub use ddim::{Ddim, DdimConfig};
pub use ddpm::{Ddpm, DdpmConfig, DdpmVariance};
pub use edm_heun::{EdmHeun, EdmHeunConfig};
pub use edm_stochastic::{EdmStochastic, EdmStochasticConfig};
pub use error::{Error, Result};
pub use noise::SamplerNoise;
pub use observer::{Observer, Round, RoundRecord, TrajectoryRecorder};
pub use paradigms::{Paradigms, ParadigmsConfig};
pub use sampler::{Sample, Sampler, SamplerStats, Sequential};
pub use step_map::StepMap;
