//! Helpers shared by the integration tests: tiny configs, gradient-flow and finite-difference
//! checks.
#![allow(dead_code)] // each test binary uses a subset

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use cdm_models::UnetConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A UNet2DModel config with two resolutions and attention at the lower one and in the middle.
pub fn tiny_unet(in_channels: usize, block_out_channels: [usize; 2], groups: usize) -> UnetConfig {
    UnetConfig {
        in_channels,
        out_channels: in_channels,
        block_out_channels: block_out_channels.to_vec(),
        down_block_types: vec!["DownBlock2D".into(), "AttnDownBlock2D".into()],
        up_block_types: vec!["AttnUpBlock2D".into(), "UpBlock2D".into()],
        layers_per_block: 1,
        norm_num_groups: groups,
        attention_head_dim: Some(block_out_channels[1] / 2),
        ..UnetConfig::default()
    }
}

/// A tensor of standard normals from `seed`.
pub fn randn(seed: u64, shape: &[usize], dtype: DType) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f64> = (0..n).map(|_| rng.sample(rand_distr::StandardNormal)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

/// Variables sorted by name (VarMap iterates in hash order).
pub fn named_vars(vars: &VarMap) -> Vec<(String, Var)> {
    let data = vars.data().lock().unwrap();
    let mut named: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// Parameters whose exact gradient is zero by construction: softmax is invariant to adding
/// `q·b` to every score of a query, so the key bias never changes the attention output.
/// Autograd must still reach them (a finite gradient, usually round-off sized).
pub const STRUCTURALLY_ZERO_GRADIENT: &[&str] = &[".to_k.bias"];

/// Asserts that after one backward of `loss` every variable has a finite gradient, non-zero
/// except for [`STRUCTURALLY_ZERO_GRADIENT`] parameters.
pub fn assert_every_gradient_flows(vars: &VarMap, loss: &Tensor) {
    let grads = loss.backward().unwrap();
    let mut bad = Vec::new();
    for (name, var) in named_vars(vars) {
        match grads.get(&var) {
            None => bad.push(format!("{name}: no gradient")),
            Some(g) => {
                let g = g.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
                let may_be_zero = STRUCTURALLY_ZERO_GRADIENT.iter().any(|suffix| name.ends_with(suffix));
                if g.iter().any(|v| !v.is_finite()) {
                    bad.push(format!("{name}: non-finite gradient"));
                } else if !may_be_zero && g.iter().all(|v| *v == 0.0) {
                    bad.push(format!("{name}: zero gradient"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "gradient problems:\n{}", bad.join("\n"));
}

/// Central finite differences (step 1e-6, f64) against autograd on `per_tensor` elements of
/// every parameter tensor: the element with the largest gradient plus seeded random ones.
///
/// Returns the worst relative error `|fd − ad| / max(|fd|, |ad|, 1e-4)` and where it occurred.
/// The floor makes exact zeros (see [`STRUCTURALLY_ZERO_GRADIENT`]) and gradients below 1e-4
/// compare at an absolute 1e-8, above finite-difference round-off (about 1e-9 here).
pub fn worst_finite_difference_error(vars: &VarMap, loss: impl Fn() -> Tensor, per_tensor: usize) -> (f64, String) {
    let h = 1e-6;
    let grads = loss().backward().unwrap();
    let scalar = |t: Tensor| t.to_scalar::<f64>().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut worst = (0.0, String::new());
    for (name, var) in named_vars(vars) {
        let analytic = grads.get(&var).expect(&name).flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let original = var.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let largest = (0..analytic.len()).max_by(|&a, &b| analytic[a].abs().total_cmp(&analytic[b].abs())).unwrap();
        let mut picks = vec![largest];
        picks.extend((1..per_tensor).map(|_| rng.random_range(0..analytic.len())));
        for i in picks {
            let at = |delta: f64| {
                let mut values = original.clone();
                values[i] += delta;
                var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap()).unwrap();
                scalar(loss())
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            let error = (numeric - analytic[i]).abs() / numeric.abs().max(analytic[i].abs()).max(1e-4);
            if error > worst.0 {
                worst = (error, format!("{name}[{i}]: fd {numeric:e}, autograd {:e}", analytic[i]));
            }
        }
        var.set(&Tensor::from_vec(original, var.shape(), &Device::Cpu).unwrap()).unwrap();
    }
    worst
}
