//! A diffusers DDPM/DDIM pipeline directory, opened for sampling (`cdm sample --diffusers DIR`).
//!
//! ```text
//! DIR/model_index.json                      "unet": ["diffusers", "UNet2DModel"], "scheduler": […]
//! DIR/scheduler/scheduler_config.json       DDPMScheduler, DDIMScheduler or their Parallel twins
//! DIR/unet/config.json                      UNet2DModel's config
//! DIR/unet/diffusion_pytorch_model.safetensors
//! ```
//!
//! The UNet becomes a log-SNR denoiser through the scheduler's own β schedule
//! ([`cdm_core::TimestepDenoiser`]) and its `prediction_type` ([`cdm_core::PredictionDenoiser`]);
//! the scheduler's spacing, clipping, variance and final ᾱ go into the step maps
//! ([`cdm_samplers::diffusers`]), so sequential DDPM/DDIM retrace the pipeline's own loop and
//! ParaDiGMS or EDM run on the same network.

use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device};
use cdm_core::{PredictionDenoiser, TimestepDenoiser, TimestepInverse, TimestepRounding};
use cdm_models::checkpoint::{self, CheckpointFiles};
use cdm_models::{SampleSize, Unet, UnetConfig};
use cdm_samplers::diffusers::{SchedulerConfig, SchedulerFamily};

use crate::sampling::{Chain, SamplerKind};

/// The UNet of a pipeline as an ε̂ denoiser.
pub type PipelineDenoiser = PredictionDenoiser<TimestepDenoiser<Unet>>;

/// A loaded pipeline: its network, its scheduler's settings and its image shape.
pub struct Pipeline {
    /// The UNet, reading its output as the scheduler's `prediction_type`.
    pub denoiser: PipelineDenoiser,
    /// The scheduler's schedule and step-map settings.
    pub chain: Chain,
    /// The scheduler's family: the sampler used when `--sampler` is not given.
    pub family: SchedulerFamily,
    /// `[C, H, W]` of a sample, from the UNet's `in_channels` and `sample_size`.
    pub sample_shape: [usize; 3],
}

/// What `model_index.json` must say about the two components.
#[derive(serde::Deserialize)]
struct ModelIndex {
    unet: Option<(String, String)>,
    scheduler: Option<(String, String)>,
}

impl Pipeline {
    /// Reads the pipeline in `dir` onto `device` in f32.
    pub fn open(dir: &Path, device: &Device) -> Result<Self> {
        let index_path = dir.join("model_index.json");
        let index: ModelIndex = read_json(&index_path)?;
        match &index.unet {
            Some((_, class)) if class == "UNet2DModel" => {}
            Some((_, class)) => bail!("{}: \"unet\" is a {class}; only UNet2DModel is supported", index_path.display()),
            None => bail!("{}: no \"unet\" component", index_path.display()),
        }
        if index.scheduler.is_none() {
            bail!("{}: no \"scheduler\" component", index_path.display());
        }
        let scheduler_path = dir.join("scheduler/scheduler_config.json");
        let scheduler: SchedulerConfig = read_json(&scheduler_path)?;
        let settings = scheduler.chain().with_context(|| format!("{}", scheduler_path.display()))?;
        let files = CheckpointFiles::in_dir(dir.join("unet"));
        let unet = checkpoint::load::<UnetConfig>(&files, DType::F32, device)
            .with_context(|| format!("loading the UNet in {}", dir.join("unet").display()))?;
        let sample_shape = match unet.config.sample_size {
            Some(SampleSize::Square(side)) => [unet.config.in_channels, side, side],
            Some(SampleSize::Rectangular([h, w])) => [unet.config.in_channels, h, w],
            None => bail!("{}: no sample_size, so the image size is unknown", files.config.display()),
        };
        let network = TimestepDenoiser::new(
            unet.model,
            settings.schedule.clone(),
            TimestepInverse::Exact,
            TimestepRounding::Continuous,
        );
        Ok(Self {
            denoiser: PredictionDenoiser::new(network, settings.prediction),
            chain: Chain { schedule: settings.schedule, ddpm: settings.ddpm, ddim: settings.ddim },
            family: settings.family,
            sample_shape,
        })
    }

    /// The sampler of the pipeline's own scheduler.
    pub fn default_sampler(&self) -> SamplerKind {
        match self.family {
            SchedulerFamily::Ddpm => SamplerKind::Ddpm,
            SchedulerFamily::Ddim => SamplerKind::Ddim,
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}
