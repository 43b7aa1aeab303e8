//! A small UNet memorises a fixed batch of four noised images.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use cdm_core::DiscreteSchedule;
use cdm_models::ModelConfig;
use common::{randn, tiny_unet};

/// Four 8×8 images: a bright square, a vertical bar, a diagonal and a checkerboard, in [−1, 1].
fn four_images() -> Tensor {
    let mut pixels = Vec::with_capacity(4 * 64);
    for image in 0..4 {
        for row in 0..8usize {
            for col in 0..8usize {
                let on = match image {
                    0 => (2..6).contains(&row) && (2..6).contains(&col),
                    1 => (3..5).contains(&col),
                    2 => row == col,
                    _ => (row + col) % 2 == 0,
                };
                pixels.push(if on { 1f32 } else { -1.0 });
            }
        }
    }
    Tensor::from_vec(pixels, (4, 1, 8, 8), &Device::Cpu).unwrap()
}

#[test]
fn small_unet_memorises_four_images() {
    let (unet, vars) = tiny_unet(1, [16, 32], 8).init(0, DType::F32, &Device::Cpu).unwrap();
    let schedule = DiscreteSchedule::ddpm();
    let timesteps = [50i64, 200, 400, 700];
    let (signal, noise): (Vec<f32>, Vec<f32>) = timesteps
        .iter()
        .map(|&t| {
            let alpha_bar = schedule.alpha_bar_at(t);
            (alpha_bar.sqrt() as f32, (1.0 - alpha_bar).sqrt() as f32)
        })
        .unzip();
    let column = |v: Vec<f32>| Tensor::from_vec(v, (4, 1, 1, 1), &Device::Cpu).unwrap();
    let eps = randn(1, &[4, 1, 8, 8], DType::F32);
    let z =
        (four_images().broadcast_mul(&column(signal)).unwrap() + eps.broadcast_mul(&column(noise)).unwrap()).unwrap();
    let t = Tensor::new(&timesteps.map(|t| t as f32), &Device::Cpu).unwrap();

    let mut optimizer =
        AdamW::new(vars.all_vars(), ParamsAdamW { lr: 3e-3, weight_decay: 0.0, ..Default::default() }).unwrap();
    let loss_at = || (unet.forward(&z, &t, false).unwrap() - &eps).unwrap().sqr().unwrap().mean_all().unwrap();
    let initial = loss_at().to_scalar::<f32>().unwrap();
    // up to 300 AdamW steps, stopping once the loss is 20× lower (checked every 25 steps)
    let mut steps = 0;
    while steps < 300 {
        optimizer.backward_step(&loss_at()).unwrap();
        steps += 1;
        if steps % 25 == 0 && loss_at().to_scalar::<f32>().unwrap() * 20.0 < initial {
            break;
        }
    }
    let last = loss_at().to_scalar::<f32>().unwrap();
    println!("loss {initial} → {last} after {steps} steps");
    assert!(last * 10.0 <= initial, "loss only fell from {initial} to {last}");
}
