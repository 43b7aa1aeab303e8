//! Workloads of the image UNet (diffusers' `UNet2DModel` layout, [`cdm_models::Unet`]).
//!
//! Both configurations have 2 ResNet blocks per level, `DownBlock2D`/`AttnDownBlock2D`/
//! `DownBlock2D` down and `UpBlock2D`/`AttnUpBlock2D`/`UpBlock2D` up, one attention head, and
//! otherwise [`UnetConfig::default`] (GroupNorm 32, SiLU, additive time embedding, no dropout):
//!
//! - [`cifar32`]: 32×32×3, block_out_channels (64, 128, 128), attention at 16×16 and in the
//!   middle block (8×8);
//! - [`mnist28`]: 28×28×1, block_out_channels (32, 64, 64), attention at 14×14 and at 7×7.
//!
//! Inputs are [`deterministic_input`] images. The forward pass takes timesteps `61·i`; a training
//! step is the image recipe of `cdm train`: the UNet behind a [`TimestepDenoiser`] (DDPM linear
//! schedule, exact inverse, continuous timesteps), the DDPM ε-MSE, backward and AdamW.

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use cdm_core::{DiscreteSchedule, TimestepDenoiser, TimestepInverse, TimestepRounding};
use cdm_models::{ModelConfig, SampleSize, Unet, UnetConfig};
use cdm_objectives::Mse;

use super::{Losses, Workload, deterministic_input, parameter_count, training_step};

/// A three-level UNet of `side`×`side`×`channels` images with attention at the middle level.
fn three_level(side: usize, channels: usize, block_out_channels: [usize; 3]) -> UnetConfig {
    let names = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    UnetConfig {
        sample_size: Some(SampleSize::Square(side)),
        in_channels: channels,
        out_channels: channels,
        block_out_channels: block_out_channels.to_vec(),
        down_block_types: names(&["DownBlock2D", "AttnDownBlock2D", "DownBlock2D"]),
        up_block_types: names(&["UpBlock2D", "AttnUpBlock2D", "UpBlock2D"]),
        attention_head_dim: None,
        ..UnetConfig::default()
    }
}

/// The CIFAR-sized UNet: 32×32×3, block_out_channels (64, 128, 128).
pub fn cifar32() -> UnetConfig {
    three_level(32, 3, [64, 128, 128])
}

/// The MNIST-sized UNet: 28×28×1, block_out_channels (32, 64, 64).
pub fn mnist28() -> UnetConfig {
    three_level(28, 1, [32, 64, 64])
}

/// The seeded network of `config` with a batch of `batch` input images.
pub fn build(config: &UnetConfig, batch: usize) -> Result<(Unet, VarMap, Tensor)> {
    let (unet, vars) = config.init(0, DType::F32, &Device::Cpu)?;
    let [height, width] = match config.sample_size {
        Some(SampleSize::Square(side)) => [side, side],
        Some(SampleSize::Rectangular(hw)) => hw,
        None => anyhow::bail!("the benchmark UNet needs a sample_size"),
    };
    let x = deterministic_input(&[batch, config.in_channels, height, width])?;
    Ok((unet, vars, x))
}

/// The timesteps `61·i` of a forward batch (spread over the DDPM range).
pub fn timesteps(batch: usize) -> Result<Tensor> {
    Ok(Tensor::from_vec((0..batch).map(|i| (i * 61) as f32).collect::<Vec<_>>(), batch, &Device::Cpu)?)
}

/// The forward pass at batch `batch` (no dropout).
pub fn forward(config: &UnetConfig, batch: usize) -> Result<Workload> {
    let (unet, vars, x) = build(config, batch)?;
    let t = timesteps(batch)?;
    Ok(Workload::new(parameter_count(&vars), batch, move || -> Result<Losses> {
        unet.forward(&x, &t, false)?;
        Ok(Vec::new())
    }))
}

/// One ε-MSE training step at batch `batch`.
pub fn train(config: &UnetConfig, batch: usize) -> Result<Workload> {
    let (mut unet, vars, x) = build(config, batch)?;
    unet.set_training(true);
    let schedule = DiscreteSchedule::ddpm();
    let denoiser = TimestepDenoiser::new(unet, schedule.clone(), TimestepInverse::Exact, TimestepRounding::Continuous);
    let step = training_step(denoiser, &vars, Mse::new(schedule), x)?;
    Ok(Workload::new(parameter_count(&vars), batch, step))
}
