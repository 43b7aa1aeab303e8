//! The fused CPU kernels of `cdm_kernels` other than the bare convolution (`kernels_conv`)
//! against the composed candle ops they replace, at the shapes of the UNet and the residual MLP
//! (f32):
//!
//! - `group_norm_silu/16x128x16x16`, `group_norm_silu/16x64x32x32`: GroupNorm(32) + SiLU, as
//!   in every UNet ResNet block (the composed reference is `candle_nn::GroupNorm`'s ops + `silu`);
//! - `group_norm/16x128x16x16`: GroupNorm(32) alone, as before attention;
//! - `softmax/16x256x256`: attention weights over 16×16 positions (`candle_nn::ops::softmax`);
//! - `layer_norm/32768x128`: the MLP's layer norm (the composed `layers::LayerNorm`);
//! - `bias_gelu/32768x128`: `gelu_erf(x + b)` after the MLP's first linear layer;
//! - `attention/16x64x196`, `attention/16x128x256`: one head of 64 and 128 channels over 14×14
//!   and 16×16 positions (the attention layers of the 28×28 and 32×32 UNets; reference
//!   `attention_composed`);
//! - `linear/3136x64x64`: the product of a 64 → 64 attention projection over 16×14×14 tokens
//!   (reference `x.matmul(&w.t())`);
//! - `resnet_block/16x32x28x28`, `resnet_block/16x96x28x28`: a ResNet block to 32 channels,
//!   without and with its 1×1 shortcut (the 28×28 UNet's top level); the reference is the same
//!   kernels (group norm + SiLU, convolution) composed through candle's autograd, as the UNet
//!   ran them before the block was one op, so the difference is the fusion alone.
//!
//! Each is timed forward only (`fwd`) and forward + backward (`fwd_bwd`: the gradients of the
//! input and of the parameters for the loss `Σ y`). candle's autograd adds the same overhead to
//! both sides (the `sum_all`, a zero tensor plus an `add` for every gradient it stores);
//! `loss_only/fwd_bwd` times that overhead alone, with `y = x`, so `fwd_bwd − loss_only`
//! estimates the cost of the op's own forward and backward.
//! Run with `cargo bench -p cdm-benches --bench kernels_norm`;
//! the workspace `.cargo/config.toml` sets `RAYON_NUM_THREADS` and `CANDLE_NUM_THREADS`.

use std::time::Duration;

// linked for its global allocator, mimalloc, as in the `cdm` binary
use cdm_benches as _;

use candle_core::{DType, Device, Result, Tensor, Var};
use cdm_kernels::Activation;
use cdm_kernels::activation::{bias_act, bias_act_composed};
use cdm_kernels::attention::{attention, attention_composed};
use cdm_kernels::conv2d::conv2d;
use cdm_kernels::linear::{linear_product, linear_product_composed};
use cdm_kernels::norm::{group_norm, group_norm_composed, layer_norm, layer_norm_composed};
use cdm_kernels::resnet_block::{ResnetBlockSettings, ResnetBlockWeights, resnet_block};
use cdm_kernels::softmax::{softmax_last_dim, softmax_last_dim_composed};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// A deterministic tensor of `shape` with values `scale·u + shift`, u in [−1, 1].
fn input(shape: &[usize], salt: usize, scale: f32, shift: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|i| (((i + salt) * 7919 % 2001) as f32 / 1000.0 - 1.0) * scale + shift).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// A kernel or its reference, applied to a case's inputs.
type Kernel = Box<dyn Fn(&[Tensor]) -> Result<Tensor>>;

/// One kernel with its inputs: `inputs[0]` is the activation, the rest are parameters.
struct Case {
    group: &'static str,
    id: String,
    inputs: Vec<Tensor>,
    fused: Kernel,
    composed: Kernel,
}

fn shape_id(shape: &[usize]) -> String {
    shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (shape, silu) in [([16, 128, 16, 16], true), ([16, 64, 32, 32], true), ([16, 128, 16, 16], false)] {
        let channels = shape[1];
        cases.push(Case {
            group: if silu { "group_norm_silu" } else { "group_norm" },
            id: shape_id(&shape),
            inputs: vec![input(&shape, 0, 2.0, 0.1), input(&[channels], 1, 0.2, 1.0), input(&[channels], 2, 0.2, 0.0)],
            fused: Box::new(move |v| group_norm(&v[0], 32, &v[1], &v[2], 1e-5, silu)),
            composed: Box::new(move |v| group_norm_composed(&v[0], 32, &v[1], &v[2], 1e-5, silu)),
        });
    }
    let scores = [16, 256, 256];
    cases.push(Case {
        group: "softmax",
        id: shape_id(&scores),
        inputs: vec![input(&scores, 3, 4.0, 0.0)],
        fused: Box::new(|v| softmax_last_dim(&v[0])),
        composed: Box::new(|v| softmax_last_dim_composed(&v[0])),
    });
    let rows = [32768, 128];
    cases.push(Case {
        group: "layer_norm",
        id: shape_id(&rows),
        inputs: vec![input(&rows, 4, 2.0, 0.3), input(&[128], 5, 0.2, 1.0), input(&[128], 6, 0.2, 0.0)],
        fused: Box::new(|v| layer_norm(&v[0], &v[1], &v[2], 1e-5)),
        composed: Box::new(|v| layer_norm_composed(&v[0], &v[1], &v[2], 1e-5)),
    });
    cases.push(Case {
        group: "bias_gelu",
        id: shape_id(&rows),
        inputs: vec![input(&rows, 7, 3.0, 0.0), input(&[128], 8, 0.5, 0.0)],
        fused: Box::new(|v| bias_act(&v[0], Some(&v[1]), Some(Activation::Gelu))),
        composed: Box::new(|v| bias_act_composed(&v[0], Some(&v[1]), Some(Activation::Gelu))),
    });
    for (batch, positions, channels) in [(16, 196, 64), (16, 256, 128)] {
        let shape = [batch, channels, positions];
        let scale = 1.0 / (channels as f64).sqrt();
        cases.push(Case {
            group: "attention",
            id: shape_id(&shape),
            inputs: (0..3).map(|k| input(&shape, 9 + k, 1.0, 0.0)).collect(),
            fused: Box::new(move |v| attention(&v[0], &v[1], &v[2], 1, scale)),
            composed: Box::new(move |v| attention_composed(&v[0], &v[1], &v[2], 1, scale)),
        });
    }
    cases.push(Case {
        group: "linear",
        id: "3136x64x64".into(),
        inputs: vec![input(&[3136, 64], 12, 1.0, 0.0), input(&[64, 64], 13, 0.1, 0.0)],
        fused: Box::new(|v| linear_product(&v[0], &v[1])),
        composed: Box::new(|v| linear_product_composed(&v[0], &v[1])),
    });
    for c in [32, 96] {
        let o = 32;
        let mut inputs = vec![
            input(&[16, c, 28, 28], 14, 1.0, 0.0),
            input(&[16, o], 15, 1.0, 0.0),
            input(&[c], 16, 0.2, 1.0),
            input(&[c], 17, 0.2, 0.0),
            input(&[o, c, 3, 3], 18, 0.05, 0.0),
            input(&[o], 19, 0.1, 0.0),
            input(&[o], 20, 0.2, 1.0),
            input(&[o], 21, 0.2, 0.0),
            input(&[o, o, 3, 3], 22, 0.05, 0.0),
            input(&[o], 23, 0.1, 0.0),
        ];
        if c != o {
            inputs.extend([input(&[o, c, 1, 1], 24, 0.1, 0.0), input(&[o], 25, 0.1, 0.0)]);
        }
        cases.push(Case {
            group: "resnet_block",
            id: shape_id(&[16, c, 28, 28]),
            inputs,
            fused: Box::new(|v| resnet_block(&v[0], &v[1], &block_weights(v), BLOCK_SETTINGS)),
            composed: Box::new(resnet_block_unfused),
        });
    }
    cases
}

/// GroupNorm(32) with SiLU, as in the UNets.
const BLOCK_SETTINGS: ResnetBlockSettings = ResnetBlockSettings { groups: 32, eps: 1e-5, output_scale_factor: 1.0 };

/// The weights of `[x, t, γ₁, δ₁, W₁, β₁, γ₂, δ₂, W₂, β₂, (W_s, β_s)]`.
fn block_weights(v: &[Tensor]) -> ResnetBlockWeights<'_> {
    ResnetBlockWeights::from_params(&v[2..]).unwrap()
}

/// The block out of the separate kernels, through candle's autograd (the UNet before the
/// block was one op).
fn resnet_block_unfused(v: &[Tensor]) -> Result<Tensor> {
    let (groups, eps) = (BLOCK_SETTINGS.groups, BLOCK_SETTINGS.eps);
    let h = conv2d(&group_norm(&v[0], groups, &v[2], &v[3], eps, true)?, &v[4], Some(&v[5]), 1, 1)?;
    let u = h.broadcast_add(&v[1].unsqueeze(2)?.unsqueeze(3)?)?;
    let h = conv2d(&group_norm(&u, groups, &v[6], &v[7], eps, true)?, &v[8], Some(&v[9]), 1, 1)?;
    let shortcut = if v.len() == 12 { conv2d(&v[0], &v[10], Some(&v[11]), 1, 0)? } else { v[0].clone() };
    shortcut + h
}

/// Forward + backward: the gradients of every input for `Σ f(inputs)`.
fn forward_backward(f: &dyn Fn(&[Tensor]) -> Result<Tensor>, vars: &[Tensor]) -> usize {
    let y = f(vars).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    vars.iter().filter(|v| grads.get(v).is_some()).count()
}

fn kernels(c: &mut Criterion) {
    for case in cases() {
        let mut group = c.benchmark_group(format!("{}/{}", case.group, case.id));
        group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
        group.throughput(Throughput::Elements(case.inputs[0].elem_count() as u64));
        let vars: Vec<Tensor> = case.inputs.iter().map(|t| Var::from_tensor(t).unwrap().as_tensor().clone()).collect();
        assert_eq!(vars[0].dtype(), DType::F32);
        // What the loss `Σ y ⊙ r` and candle's gradient bookkeeping cost on their own: `y = x`.
        let identity: Kernel = Box::new(|v| v[0].affine(1.0, 0.0));
        group.bench_function(BenchmarkId::new("loss_only", "fwd_bwd"), |b| {
            b.iter(|| forward_backward(identity.as_ref(), &vars[..1]))
        });
        for (name, f) in [("fused", &case.fused), ("composed", &case.composed)] {
            group.bench_function(BenchmarkId::new(name, "fwd"), |b| b.iter(|| f(&case.inputs).unwrap()));
            group.bench_function(BenchmarkId::new(name, "fwd_bwd"), |b| {
                b.iter(|| assert_eq!(forward_backward(f.as_ref(), &vars), vars.len()))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
