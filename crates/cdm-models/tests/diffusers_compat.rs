//! Our `Unet` reproduces diffusers' `UNet2DModel` on committed fixtures.
//!
//! `fixtures/diffusers_tiny/` and `fixtures/diffusers_variants/` were written by
//! `scripts/make_diffusers_fixture.py` (diffusers 0.42.1, torch 2.15.0): the unchanged
//! `config.json` + `diffusion_pytorch_model.safetensors` of random models (DDPM-style defaults,
//! and the less common options: scale-shift conditioning, gelu, sin-first embedding with a
//! frequency shift, unpadded downsampling, one head, a mid-block scale, centred inputs), and
//! `io.safetensors` with an input, fractional timesteps and PyTorch's output.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use cdm_core::{Denoiser, DiscreteSchedule, TimestepDenoiser, TimestepInverse, TimestepRounding};
use cdm_models::checkpoint::{self, CheckpointFiles};
use cdm_models::{SampleSize, UnetConfig};

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn fixture_io(name: &str) -> (Tensor, Tensor, Tensor) {
    let mut io = candle_core::safetensors::load(fixture_dir(name).join("io.safetensors"), &Device::Cpu).unwrap();
    let mut take = |name: &str| io.remove(name).unwrap();
    (take("sample"), take("timesteps"), take("expected"))
}

/// max |a − b| / max |b|.
fn relative_error(actual: &Tensor, expected: &Tensor) -> f64 {
    let scale = expected.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() as f64;
    let diff = (actual - expected).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() as f64;
    diff / scale
}

#[test]
fn config_json_is_read_as_written_by_diffusers() {
    let config: UnetConfig = checkpoint::load_config(&fixture_dir("diffusers_tiny").join("config.json")).unwrap();
    assert_eq!(config.sample_size, Some(SampleSize::Square(8)));
    assert_eq!(config.block_out_channels, vec![8, 16]);
    assert_eq!(config.down_block_types, vec!["DownBlock2D", "AttnDownBlock2D"]);
    assert_eq!(config.up_block_types, vec!["AttnUpBlock2D", "UpBlock2D"]);
    assert_eq!((config.layers_per_block, config.norm_num_groups, config.attention_head_dim), (2, 8, Some(8)));
    assert_eq!((config.dropout, config.freq_shift, config.flip_sin_to_cos), (0.1, 0.0, true));
    config.validate().unwrap();
}

#[test]
fn unet_reproduces_diffusers_output() {
    let files = CheckpointFiles::in_dir(fixture_dir("diffusers_tiny"));
    let loaded = checkpoint::load::<UnetConfig>(&files, DType::F32, &Device::Cpu).unwrap();
    let (sample, timesteps, expected) = fixture_io("diffusers_tiny");
    let output = loaded.model.forward(&sample, &timesteps, false).unwrap();
    let error = relative_error(&output, &expected);
    println!("max relative error vs diffusers: {error:e}");
    assert!(error < 1e-4, "relative error {error:e}");

    // the same network through the log-SNR adapter, at the log-SNRs of those timesteps
    let schedule = DiscreteSchedule::ddpm();
    let log_snrs: Vec<f64> =
        timesteps.to_vec1::<f32>().unwrap().iter().map(|&t| schedule.log_snr(f64::from(t))).collect();
    let denoiser = TimestepDenoiser::new(loaded.model, schedule, TimestepInverse::Exact, TimestepRounding::Continuous);
    let eps_hat = denoiser.eps_at(&sample, &log_snrs).unwrap();
    let error = relative_error(&eps_hat, &expected);
    assert!(error < 1e-4, "relative error through the adapter {error:e}");
}

#[test]
fn unet_reproduces_diffusers_output_with_uncommon_options() {
    let files = CheckpointFiles::in_dir(fixture_dir("diffusers_variants"));
    let loaded = checkpoint::load::<UnetConfig>(&files, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(loaded.config.resnet_time_scale_shift, "scale_shift");
    let (sample, timesteps, expected) = fixture_io("diffusers_variants");
    let output = loaded.model.forward(&sample, &timesteps, false).unwrap();
    let error = relative_error(&output, &expected);
    println!("max relative error vs diffusers (variants): {error:e}");
    assert!(error < 1e-4, "relative error {error:e}");
}

#[test]
fn unet_in_f64_matches_too() {
    for name in ["diffusers_tiny", "diffusers_variants"] {
        let files = CheckpointFiles::in_dir(fixture_dir(name));
        let loaded = checkpoint::load::<UnetConfig>(&files, DType::F64, &Device::Cpu).unwrap();
        let (sample, timesteps, expected) = fixture_io(name);
        let output = loaded.model.forward(&sample.to_dtype(DType::F64).unwrap(), &timesteps, false).unwrap();
        let error = relative_error(&output.to_dtype(DType::F32).unwrap(), &expected);
        assert!(error < 1e-4, "{name}: relative error {error:e}");
    }
}

#[test]
fn checkpoints_with_pre_0_14_attention_names_load_too() {
    let source = fixture_dir("diffusers_tiny");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cdm-models-legacy-attention");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(source.join("config.json"), dir.join("config.json")).unwrap();
    let tensors = candle_core::safetensors::load(source.join(checkpoint::WEIGHTS_FILE), &Device::Cpu).unwrap();
    let legacy: std::collections::HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(name, tensor)| {
            let name = [("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")]
                .iter()
                .fold(name, |name, (new, old)| name.replace(&format!(".{new}."), &format!(".{old}.")));
            (name, tensor)
        })
        .collect();
    assert!(legacy.contains_key("mid_block.attentions.0.proj_attn.weight"));
    candle_core::safetensors::save(&legacy, dir.join(checkpoint::WEIGHTS_FILE)).unwrap();

    let loaded = checkpoint::load::<UnetConfig>(&CheckpointFiles::in_dir(&dir), DType::F32, &Device::Cpu).unwrap();
    let (sample, timesteps, expected) = fixture_io("diffusers_tiny");
    let error = relative_error(&loaded.model.forward(&sample, &timesteps, false).unwrap(), &expected);
    assert!(error < 1e-4, "relative error {error:e}");
}
