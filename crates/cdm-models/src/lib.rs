//! # cdm-models
//!
//! Trainable candle denoisers for *Your Diffusion Model is Secretly a Noise Classifier and
//! Benefits from Contrastive Training* (Wu et al., NeurIPS 2024, arXiv:2407.08946):
//!
//! - [`Mlp`]: the paper's residual MLP for vectors, a [`cdm_core::Denoiser`] conditioned on the
//!   continuous log-SNR; [`PlainMlp`]: the small MLP of the 1-D experiment;
//! - [`Unet`]: diffusers' `UNet2DModel` for images, with its config format and parameter names,
//!   a [`cdm_core::TimestepModel`] to wrap in a [`cdm_core::TimestepDenoiser`];
//! - [`init`]: seeded, reproducible PyTorch-style initialisation (candle cannot seed its CPU RNG);
//! - [`checkpoint`]: safetensors + JSON config, atomic writes, strict loads;
//! - [`layers`]: linear, convolution, group and layer norm layers with PyTorch's initialisation.
//!
//! The models run on the fused CPU ops of [`cdm_kernels`] (the whole residual MLP, layer norm,
//! group norm + SiLU, softmax, bias + activation, cos/sin embeddings, a GEMM-based convolution),
//! which have exact backward passes and fall back to composed candle ops on other devices.
//!
//! Every op has a backward pass (none of candle's backward-less fused ops such as
//! `softmax_last_dim`, the fused layer norm or `sdpa`), so gradients reach every parameter. The
//! device is chosen at run time by the caller; the `cuda`, `cudnn`, `metal`, `mkl` and
//! `accelerate` features enable candle's backends.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use cdm_core::Denoiser;
//! use cdm_models::{MlpConfig, ModelConfig};
//!
//! # fn main() -> anyhow::Result<()> {
//! // The paper's 2-D network with seeded weights.
//! let (mlp, vars) = MlpConfig::default().init(42, DType::F32, &Device::Cpu)?;
//! let z = Tensor::new(&[[0.5f32, -1.0], [2.0, 0.0], [0.0, 0.1]], &Device::Cpu)?;
//! let log_snr = Tensor::new(&[-3.0f32, 0.0, 4.5], &Device::Cpu)?;
//! let eps_hat = mlp.eps(&z, &log_snr)?;
//! assert_eq!(eps_hat.dims(), &[3, 2]);
//!
//! // One gradient step's worth of gradients reaches every parameter.
//! let grads = eps_hat.sqr()?.sum_all()?.backward()?;
//! assert!(vars.all_vars().iter().all(|v| grads.get(v).is_some()));
//! # Ok(())
//! # }
//! ```
#![doc = include_str!("../README.md")]

pub mod checkpoint;
pub mod embedding;
mod error;
pub mod init;
pub mod layers;
pub mod mlp;
mod model_config;
pub mod plain_mlp;
pub mod unet;

pub use cdm_kernels::Activation;
pub use checkpoint::{CheckpointFiles, Loaded};
pub use error::{Error, Result, TensorShapeMismatch};
pub use init::{SeededInit, seeded_var_builder};
pub use mlp::{Mlp, MlpConfig};
pub use model_config::ModelConfig;
pub use plain_mlp::{PlainMlp, PlainMlpConfig};
pub use unet::{SampleSize, Unet, UnetConfig};
