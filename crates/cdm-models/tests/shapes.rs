//! Output shape equals input shape for every model and size the crate targets.

mod common;

use candle_core::{DType, Device, Tensor};
use cdm_core::{Denoiser, DiscreteSchedule, TimestepDenoiser, TimestepInverse, TimestepRounding};
use cdm_models::{MlpConfig, ModelConfig, PlainMlpConfig};
use common::{randn, tiny_unet};

#[test]
fn mlp_keeps_the_shape_of_1d_2d_and_64d_data() {
    for dim in [1, 2, 64] {
        let (mlp, _) = MlpConfig { dim, ..MlpConfig::default() }.init(0, DType::F32, &Device::Cpu).unwrap();
        let z = randn(1, &[5, dim], DType::F32);
        let log_snr = Tensor::new(&[-8.0f32, -1.0, 0.0, 3.0, 9.0], &Device::Cpu).unwrap();
        assert_eq!(mlp.eps(&z, &log_snr).unwrap().dims(), &[5, dim]);
    }
    // rows with more axes are flattened: 64 = 1 × 8 × 8
    let (mlp, _) =
        MlpConfig { dim: 64, d_model: 32, ..MlpConfig::default() }.init(0, DType::F32, &Device::Cpu).unwrap();
    let z = randn(2, &[3, 1, 8, 8], DType::F32);
    assert_eq!(mlp.eps_at(&z, &[0.0, 1.0, 2.0]).unwrap().dims(), &[3, 1, 8, 8]);
}

#[test]
fn plain_mlp_keeps_the_shape() {
    for dim in [1, 2, 64] {
        let (mlp, _) = PlainMlpConfig { dim, ..PlainMlpConfig::default() }.init(0, DType::F32, &Device::Cpu).unwrap();
        let z = randn(1, &[4, dim], DType::F32);
        assert_eq!(mlp.eps_at(&z, &[-5.0, 0.0, 5.0, 10.0]).unwrap().dims(), &[4, dim]);
    }
}

#[test]
fn unet_keeps_the_shape_of_small_and_large_images() {
    let cases = [
        (1, 8, tiny_unet(1, [8, 16], 4)),
        (1, 16, tiny_unet(1, [8, 16], 4)),
        (1, 28, tiny_unet(1, [4, 8], 2)),
        (3, 32, tiny_unet(3, [4, 8], 2)),
    ];
    for (channels, side, config) in cases {
        let (unet, _) = config.init(0, DType::F32, &Device::Cpu).unwrap();
        let denoiser =
            TimestepDenoiser::new(unet, DiscreteSchedule::ddpm(), TimestepInverse::Exact, TimestepRounding::Continuous);
        let z = randn(3, &[2, channels, side, side], DType::F32);
        let eps_hat = denoiser.eps_at(&z, &[-2.0, 4.0]).unwrap();
        assert_eq!(eps_hat.dims(), z.dims(), "{channels}×{side}×{side}");
        let t = Tensor::new(&[3.0f32, 700.5], &Device::Cpu).unwrap();
        assert_eq!(denoiser.model().forward(&z, &t, true).unwrap().dims(), z.dims());
    }
}

#[test]
fn unet_with_three_levels_scale_shift_and_no_mid_block_keeps_the_shape() {
    let mut config = tiny_unet(1, [4, 8], 2);
    config.block_out_channels = vec![4, 8, 8];
    config.down_block_types = vec!["DownBlock2D".into(), "AttnDownBlock2D".into(), "DownBlock2D".into()];
    config.up_block_types = vec!["UpBlock2D".into(), "AttnUpBlock2D".into(), "UpBlock2D".into()];
    config.resnet_time_scale_shift = "scale_shift".into();
    config.downsample_padding = 0;
    config.center_input_sample = true;
    let (unet, _) = config.init(0, DType::F32, &Device::Cpu).unwrap();
    let z = randn(4, &[2, 1, 16, 16], DType::F32);
    let t = Tensor::new(&[10f32], &Device::Cpu).unwrap(); // one timestep for the batch
    assert_eq!(unet.forward(&z, &t, false).unwrap().dims(), z.dims());
    config.mid_block_type = None;
    let (unet, _) = config.init(0, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(unet.forward(&z, &t, false).unwrap().dims(), z.dims());
}
