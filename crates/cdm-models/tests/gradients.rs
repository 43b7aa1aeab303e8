//! Gradients reach every parameter and agree with f64 central finite differences.
//!
//! These guard against candle's silent no-backward ops (`softmax_last_dim`, fused layer norm,
//! `sdpa`) and its `upsample_nearest2d` backward, which overwrites the gradient of an input
//! that feeds another op.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use cdm_core::Denoiser;
use cdm_models::layers::upsample_nearest_2x;
use cdm_models::{MlpConfig, ModelConfig, PlainMlpConfig};
use common::{assert_every_gradient_flows, randn, tiny_unet, worst_finite_difference_error};

fn log_snrs(values: &[f64], dtype: DType) -> Tensor {
    Tensor::new(values, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

#[test]
fn every_mlp_parameter_gets_a_gradient() {
    let (mlp, vars) = MlpConfig::default().init(1, DType::F32, &Device::Cpu).unwrap();
    let z = randn(2, &[8, 2], DType::F32);
    let eps = randn(3, &[8, 2], DType::F32);
    let alpha = log_snrs(&[-9.0, -5.0, -2.0, 0.0, 1.0, 3.0, 6.0, 9.0], DType::F32);
    let loss = (mlp.eps(&z, &alpha).unwrap() - eps).unwrap().sqr().unwrap().mean_all().unwrap();
    assert_every_gradient_flows(&vars, &loss);

    let (plain, vars) = PlainMlpConfig::default().init(1, DType::F32, &Device::Cpu).unwrap();
    let z = randn(2, &[8, 1], DType::F32);
    let loss = plain.eps(&z, &alpha).unwrap().sqr().unwrap().mean_all().unwrap();
    assert_every_gradient_flows(&vars, &loss);
}

#[test]
fn every_unet_parameter_gets_a_gradient_including_attention_and_norms() {
    let mut config = tiny_unet(1, [8, 16], 4);
    config.dropout = 0.1;
    let (unet, vars) = config.init(1, DType::F32, &Device::Cpu).unwrap();
    assert!(common::named_vars(&vars).iter().any(|(name, _)| name == "mid_block.attentions.0.to_q.weight"));
    let z = randn(2, &[2, 1, 8, 8], DType::F32);
    let eps = randn(3, &[2, 1, 8, 8], DType::F32);
    let t = Tensor::new(&[20f32, 600.0], &Device::Cpu).unwrap();
    let loss = (unet.forward(&z, &t, true).unwrap() - eps).unwrap().sqr().unwrap().mean_all().unwrap();
    assert_every_gradient_flows(&vars, &loss);
}

#[test]
fn mlp_gradients_match_finite_differences() {
    let config = MlpConfig { dim: 3, d_model: 8, blocks: 2, ..MlpConfig::default() };
    let (mlp, vars) = config.init(5, DType::F64, &Device::Cpu).unwrap();
    let z = randn(6, &[4, 3], DType::F64);
    let weights = randn(7, &[4, 3], DType::F64);
    let alpha = log_snrs(&[-4.0, -0.5, 1.0, 6.0], DType::F64);
    let loss = || (mlp.eps(&z, &alpha).unwrap() * &weights).unwrap().sum_all().unwrap();
    let (worst, at) = worst_finite_difference_error(&vars, loss, 4);
    println!("mlp: worst relative error {worst:e} at {at}");
    assert!(worst < 1e-4, "worst relative error {worst:e} at {at}");

    let config = PlainMlpConfig { dim: 2, hidden: 8, embedding_dim: 4, ..PlainMlpConfig::default() };
    let (plain, vars) = config.init(5, DType::F64, &Device::Cpu).unwrap();
    let z = randn(6, &[4, 2], DType::F64);
    let weights = randn(7, &[4, 2], DType::F64);
    let loss = || (plain.eps(&z, &alpha).unwrap() * &weights).unwrap().sum_all().unwrap();
    let (worst, at) = worst_finite_difference_error(&vars, loss, 4);
    assert!(worst < 1e-4, "worst relative error {worst:e} at {at}");
}

#[test]
fn unet_gradients_match_finite_differences() {
    let mut config = tiny_unet(2, [4, 8], 2);
    config.time_embedding_dim = Some(8);
    let (unet, vars) = config.init(5, DType::F64, &Device::Cpu).unwrap();
    let z = randn(6, &[2, 2, 4, 4], DType::F64);
    let weights = randn(7, &[2, 2, 4, 4], DType::F64);
    let t = Tensor::new(&[30f64, 450.0], &Device::Cpu).unwrap();
    let loss = || (unet.forward(&z, &t, false).unwrap() * &weights).unwrap().sum_all().unwrap();
    let (worst, at) = worst_finite_difference_error(&vars, loss, 3);
    println!("unet: worst relative error {worst:e} at {at}");
    assert!(worst < 1e-4, "worst relative error {worst:e} at {at}");
}

#[test]
fn upsample_gradient_is_complete_when_its_input_feeds_another_op() {
    let x = Var::from_tensor(&randn(8, &[1, 2, 3, 3], DType::F64)).unwrap();
    let up_weights = randn(9, &[1, 2, 6, 6], DType::F64);
    let loss = |x: &Tensor| {
        let upsampled = (upsample_nearest_2x(x).unwrap() * &up_weights).unwrap().sum_all().unwrap();
        let other = (x.sqr().unwrap() * 0.5).unwrap().sum_all().unwrap(); // x's second consumer
        (upsampled + other).unwrap()
    };
    let analytic = loss(x.as_tensor()).backward().unwrap().get(&x).unwrap().flatten_all().unwrap();
    let analytic = analytic.to_vec1::<f64>().unwrap();
    let values = x.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    for i in 0..values.len() {
        let at = |delta: f64| {
            let mut shifted = values.clone();
            shifted[i] += delta;
            let t = Tensor::from_vec(shifted, (1, 2, 3, 3), &Device::Cpu).unwrap();
            loss(&t).to_scalar::<f64>().unwrap()
        };
        let numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
        let error = (numeric - analytic[i]).abs() / numeric.abs().max(1e-6);
        assert!(error < 1e-6, "element {i}: fd {numeric}, autograd {}", analytic[i]);
    }
}
