//! diffusers' `ResnetBlock2D` (additive time conditioning, no dropout) as one op, with a fused
//! backward.
//!
//! # Notation
//!
//! | symbol | meaning |
//! |---|---|
//! | `x` | the block's input, (B, C, H, W) |
//! | `t` | its time embedding, already projected: (B, O), added per sample and channel |
//! | `GNᵢ` | group norm `i` with its weight `γᵢ` and bias `δᵢ`, followed by SiLU |
//! | `convᵢ` | 3×3 convolution `i` (padding 1) with weight `Wᵢ` and bias `βᵢ` |
//! | `S` | the shortcut: a 1×1 convolution (`W_s`, `β_s`) when C ≠ O, else the identity |
//! | `r` | the output scale factor |
//!
//! # Forward
//!
//! ```text
//! a₁ = GN₁(x)        h₁ = conv₁(a₁)        u = h₁ + t[b, o]
//! a₂ = GN₂(u)        h₂ = conv₂(a₂)        y = (S(x) + h₂) / r
//! ```
//!
//! # Backward, with `g = (∂L/∂y) / r`
//!
//! ```text
//! (∂a₂, ∂W₂, ∂β₂) = conv₂ᵀ(g)          (∂u, ∂γ₂, ∂δ₂) = GN₂ᵀ(∂a₂)        ∂t[b, o] = Σ_hw ∂u
//! (∂a₁, ∂W₁, ∂β₁) = conv₁ᵀ(∂u)         (∂x, ∂γ₁, ∂δ₁) = GN₁ᵀ(∂a₁)        ∂x += Sᵀ(g)
//! ```
//!
//! where `convᵀ` and `GNᵀ` are the backward passes of [`crate::conv2d`] and [`crate::norm`].
//!
//! # Implementation
//!
//! The forward runs the group norm and convolution kernels outside candle's autograd and keeps
//! `a₁`, `u`, `a₂` for the backward; candle sees one op from `(x, t, θ)` to `y`, where `θ` is
//! the block's parameters flattened into one vector (a candle op takes at most three inputs).
//! The op's `cpu_fwd` runs `conv₂` into the output buffer and adds the shortcut in place.
//! Composed from candle ops, the block is about ten autograd nodes, and candle's backward
//! gives every activation-sized gradient a zeroed buffer and an addition of its own; here the
//! only activation-sized passes are the kernels' own, plus the residual sum. Results are those
//! of the kernels, so as independent of the thread count as they are.
//!
//! Reference: Ho et al., *Denoising Diffusion Probabilistic Models*, NeurIPS 2020 (the block);
//! diffusers' `ResnetBlock2D` (its layout and parameter names).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, bail};

use crate::conv2d::{conv2d_cpu, conv2d_gradients, conv2d_untracked};
use crate::norm::{UntrackedGroupNorm, group_norm_composed};
use crate::numerics::Real;
use crate::parallel::{ROW_BLOCK_ELEMS, for_each_chunk};
use crate::storage::{by_float_dtype, contiguous_slice, cpu_storage, unsupported_dtype};

const NAME: &str = "resnet_block";

/// A weight and its bias (or a norm's scale and shift).
pub type Affine<'a> = (&'a Tensor, &'a Tensor);

/// The parameters of one block, as diffusers names them.
#[derive(Clone, Copy, Debug)]
pub struct ResnetBlockWeights<'a> {
    /// `norm1`: (C), (C).
    pub norm1: Affine<'a>,
    /// `conv1`: (O, C, 3, 3), (O).
    pub conv1: Affine<'a>,
    /// `norm2`: (O), (O).
    pub norm2: Affine<'a>,
    /// `conv2`: (O, O, 3, 3), (O).
    pub conv2: Affine<'a>,
    /// `conv_shortcut`: (O, C, 1, 1), (O), when C ≠ O.
    pub shortcut: Option<Affine<'a>>,
}

impl<'a> ResnetBlockWeights<'a> {
    /// The weights from `[γ₁, δ₁, W₁, β₁, γ₂, δ₂, W₂, β₂]`, followed by `[W_s, β_s]` when the
    /// block has a 1×1 shortcut (the order of `θ`).
    ///
    /// # Errors
    /// Other than 8 or 10 tensors.
    pub fn from_params(params: &'a [Tensor]) -> Result<Self> {
        let shortcut = match params.len() {
            8 => None,
            10 => Some((&params[8], &params[9])),
            n => bail!("{NAME}: expected 8 parameters, or 10 with a shortcut, got {n}"),
        };
        Ok(Self {
            norm1: (&params[0], &params[1]),
            conv1: (&params[2], &params[3]),
            norm2: (&params[4], &params[5]),
            conv2: (&params[6], &params[7]),
            shortcut,
        })
    }

    /// The parameters in the order they are packed into `θ`.
    fn list(&self) -> Vec<&'a Tensor> {
        let mut list = Vec::with_capacity(10);
        for (w, b) in [self.norm1, self.conv1, self.norm2, self.conv2].into_iter().chain(self.shortcut) {
            list.extend([w, b]);
        }
        list
    }
}

/// The settings shared by a UNet's blocks.
#[derive(Clone, Copy, Debug)]
pub struct ResnetBlockSettings {
    /// Groups of both group norms.
    pub groups: usize,
    /// The group norms' epsilon.
    pub eps: f64,
    /// `r`: the output is divided by it.
    pub output_scale_factor: f64,
}

/// The activations the backward needs, and the block's layout.
struct ResnetBlockOp {
    /// `a₁`, `u`, `a₂`.
    a1: Tensor,
    u: Tensor,
    a2: Tensor,
    /// `S(x)` of a 1×1 shortcut (`None` for the identity, which `cpu_fwd` reads from `x`).
    shortcut: Option<Tensor>,
    norm1: UntrackedGroupNorm,
    norm2: UntrackedGroupNorm,
    /// Shapes of the parameters packed into `θ`.
    shapes: Vec<Shape>,
    inv_scale: f64,
}

impl ResnetBlockOp {
    /// The layout of parameter `i` inside `θ`.
    fn packed_layout(&self, i: usize) -> Layout {
        let offset = self.shapes[..i].iter().map(Shape::elem_count).sum();
        Layout::contiguous_with_offset(self.shapes[i].clone(), offset)
    }

    /// The parameters as views into `θ`, in [`ResnetBlockWeights::list`] order.
    fn unpack(&self, theta: &Tensor) -> Result<Vec<Tensor>> {
        (0..self.shapes.len())
            .map(|i| {
                let layout = self.packed_layout(i);
                theta.narrow(0, layout.start_offset(), layout.shape().elem_count())?.reshape(layout.shape())
            })
            .collect()
    }
}

impl CustomOp3 for ResnetBlockOp {
    fn name(&self) -> &'static str {
        NAME
    }

    /// The last steps of the forward, `y = (S(x) + conv₂(a₂)) / r` (the rest ran in
    /// [`resnet_block`]).
    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        _t: &CpuStorage,
        _tl: &Layout,
        theta: &CpuStorage,
        _thetal: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(op: &ResnetBlockOp, y: CpuStorage, x: &CpuStorage, xl: &Layout) -> Result<CpuStorage> {
            let mut y = T::cpu_storage_data(y)?;
            let inv = T::from_f64(op.inv_scale);
            let add = |y: &mut [T], s: &[T]| {
                for_each_chunk(y, ROW_BLOCK_ELEMS, |i, y| {
                    y.iter_mut().zip(&s[i * ROW_BLOCK_ELEMS..]).for_each(|(y, &s)| *y = (*y + s) * inv)
                });
            };
            match &op.shortcut {
                Some(shortcut) => {
                    let (s, sl) = shortcut.storage_and_layout();
                    add(&mut y, contiguous_slice::<T>(cpu_storage(&s, NAME)?, sl, NAME)?);
                }
                None => add(&mut y, contiguous_slice::<T>(x, xl, NAME)?),
            }
            Ok(T::to_cpu_storage_owned(y))
        }
        let (a2, a2l) = self.a2.storage_and_layout();
        let [weight, bias] = [6, 7].map(|i| self.packed_layout(i));
        let (y, shape) = conv2d_cpu((cpu_storage(&a2, NAME)?, a2l), (theta, &weight), (theta, &bias), 1, 1)?;
        use candle_core::backend::BackendStorage;
        Ok((by_float_dtype!(x.dtype(), NAME, run(self, y, x, xl)), shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _t: &Tensor,
        theta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let x = x.detach();
        let params = self.unpack(&theta.detach())?;
        let w = ResnetBlockWeights::from_params(&params)?;
        let g = if self.inv_scale == 1.0 { dy.contiguous()? } else { (dy * self.inv_scale)?.contiguous()? };
        let [d_a2, d_w2, d_b2] = conv2d_gradients(&self.a2, w.conv2.0, w.conv2.1, &g, 1, 1)?;
        let [d_u, d_g2, d_d2] = self.norm2.gradients(&self.u, w.norm2.0, w.norm2.1, &d_a2)?;
        let d_t = d_u.sum((2, 3))?;
        let [d_a1, d_w1, d_b1] = conv2d_gradients(&self.a1, w.conv1.0, w.conv1.1, &d_u, 1, 1)?;
        let [d_x, d_g1, d_d1] = self.norm1.gradients(&x, w.norm1.0, w.norm1.1, &d_a1)?;
        let mut d_theta = vec![d_g1, d_d1, d_w1, d_b1, d_g2, d_d2, d_w2, d_b2];
        let d_x = match w.shortcut {
            Some((weight, bias)) => {
                let [d_xs, d_ws, d_bs] = conv2d_gradients(&x, weight, bias, &g, 1, 0)?;
                d_theta.extend([d_ws, d_bs]);
                (d_x + d_xs)?
            }
            None => (d_x + g)?,
        };
        let d_theta = d_theta.iter().map(Tensor::flatten_all).collect::<Result<Vec<_>>>()?;
        Ok((Some(d_x), Some(d_t), Some(Tensor::cat(&d_theta, 0)?)))
    }
}

/// Checks the shapes of a call; returns `(B, C, O)`.
fn check(x: &Tensor, time: &Tensor, weights: &ResnetBlockWeights) -> Result<(usize, usize, usize)> {
    let (batch, c, _, _) = x.dims4()?;
    let o = weights.conv1.0.dim(0)?;
    let mut expected = vec![
        ("norm1.weight", weights.norm1.0, vec![c]),
        ("norm1.bias", weights.norm1.1, vec![c]),
        ("conv1.weight", weights.conv1.0, vec![o, c, 3, 3]),
        ("conv1.bias", weights.conv1.1, vec![o]),
        ("norm2.weight", weights.norm2.0, vec![o]),
        ("norm2.bias", weights.norm2.1, vec![o]),
        ("conv2.weight", weights.conv2.0, vec![o, o, 3, 3]),
        ("conv2.bias", weights.conv2.1, vec![o]),
        ("time", time, vec![batch, o]),
    ];
    match weights.shortcut {
        Some((w, b)) => {
            expected.extend([("conv_shortcut.weight", w, vec![o, c, 1, 1]), ("conv_shortcut.bias", b, vec![o])])
        }
        None if c != o => bail!("{NAME}: {c} input and {o} output channels need a conv_shortcut"),
        None => {}
    }
    for (name, tensor, dims) in expected {
        if tensor.dims() != dims {
            bail!("{NAME}: {name} has shape {:?}, expected {dims:?} for x {:?}", tensor.dims(), x.dims());
        }
        if tensor.dtype() != x.dtype() {
            bail!("{NAME}: {name} has dtype {:?} but x has {:?}", tensor.dtype(), x.dtype());
        }
    }
    Ok((batch, c, o))
}

/// One `ResnetBlock2D` as a single op with a fused backward (see the module doc).
///
/// # Shapes
/// `x`: (B, C, H, W); `time`: (B, O), the projected time embedding; weights as in
/// [`ResnetBlockWeights`]. Returns (B, O, H, W).
///
/// # Errors
/// Shapes or dtypes that do not match, a missing shortcut when C ≠ O, groups not dividing the
/// channels; on the CPU, a dtype other than F32/F64. Other devices run
/// [`resnet_block_composed`].
pub fn resnet_block(
    x: &Tensor,
    time: &Tensor,
    weights: &ResnetBlockWeights,
    settings: ResnetBlockSettings,
) -> Result<Tensor> {
    let (batch, _, o) = check(x, time, weights)?;
    if !x.device().is_cpu() {
        return resnet_block_composed(x, time, weights, settings);
    }
    if !matches!(x.dtype(), candle_core::DType::F32 | candle_core::DType::F64) {
        return unsupported_dtype(NAME, x.dtype());
    }
    let list = weights.list();
    let theta = Tensor::cat(&list.iter().map(|t| t.flatten_all()).collect::<Result<Vec<_>>>()?, 0)?;
    let params = list.iter().map(|t| t.detach().contiguous()).collect::<Result<Vec<_>>>()?;
    let w = ResnetBlockWeights::from_params(&params)?;
    let x_in = x.detach().contiguous()?;
    let norm1 = UntrackedGroupNorm::new(&x_in, settings.groups, settings.eps, true)?;
    let a1 = norm1.forward(&x_in, w.norm1.0, w.norm1.1)?;
    let h1 = conv2d_untracked(&a1, w.conv1.0, w.conv1.1, 1, 1)?;
    let u = h1.broadcast_add(&time.detach().reshape((batch, o, 1, 1))?)?;
    let norm2 = UntrackedGroupNorm::new(&u, settings.groups, settings.eps, true)?;
    let a2 = norm2.forward(&u, w.norm2.0, w.norm2.1)?;
    let shortcut = w.shortcut.map(|(weight, bias)| conv2d_untracked(&x_in, weight, bias, 1, 0)).transpose()?;
    let op = ResnetBlockOp {
        a1,
        u,
        a2,
        shortcut,
        norm1,
        norm2,
        shapes: list.iter().map(|t| t.shape().clone()).collect(),
        inv_scale: 1.0 / settings.output_scale_factor,
    };
    x.contiguous()?.apply_op3(&time.contiguous()?, &theta, op)
}

/// [`resnet_block`] out of candle's own ops (candle's group norm, `conv2d`, `silu`): the
/// reference for the tests and the fallback on devices other than the CPU.
///
/// # Shapes
/// As [`resnet_block`].
pub fn resnet_block_composed(
    x: &Tensor,
    time: &Tensor,
    weights: &ResnetBlockWeights,
    settings: ResnetBlockSettings,
) -> Result<Tensor> {
    let (batch, _, o) = check(x, time, weights)?;
    let conv = |x: &Tensor, (w, b): Affine, padding| crate::conv2d::conv2d_candle(x, w, Some(b), 1, padding);
    let norm = |x: &Tensor, (w, b): Affine| group_norm_composed(x, settings.groups, w, b, settings.eps, true);
    let h1 = conv(&norm(x, weights.norm1)?, weights.conv1, 1)?;
    let u = h1.broadcast_add(&time.reshape((batch, o, 1, 1))?)?;
    let h2 = conv(&norm(&u, weights.norm2)?, weights.conv2, 1)?;
    let shortcut = match weights.shortcut {
        Some(affine) => conv(x, affine, 0)?,
        None => x.clone(),
    };
    (shortcut + h2)? / settings.output_scale_factor
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_independent_of_thread_count, compare, finite_difference_errors, randn};
    use candle_core::DType;

    /// `[x, time, γ₁, δ₁, W₁, β₁, γ₂, δ₂, W₂, β₂, (W_s, β_s)]` for a block C → O.
    fn inputs(b: usize, c: usize, o: usize, side: usize, dtype: DType, seed: u64) -> Vec<Tensor> {
        let r = |shape: &[usize], k: u64, s: f64| randn(shape, dtype, seed + k).affine(s, 0.0).unwrap();
        let mut v = vec![
            r(&[b, c, side, side], 0, 1.0),
            r(&[b, o], 1, 1.0),
            r(&[c], 2, 0.3).affine(1.0, 1.0).unwrap(),
            r(&[c], 3, 0.3),
            r(&[o, c, 3, 3], 4, 0.2),
            r(&[o], 5, 0.1),
            r(&[o], 6, 0.3).affine(1.0, 1.0).unwrap(),
            r(&[o], 7, 0.3),
            r(&[o, o, 3, 3], 8, 0.2),
            r(&[o], 9, 0.1),
        ];
        if c != o {
            v.extend([r(&[o, c, 1, 1], 10, 0.5), r(&[o], 11, 0.1)]);
        }
        v
    }

    fn weights(v: &[Tensor]) -> ResnetBlockWeights<'_> {
        ResnetBlockWeights::from_params(&v[2..]).unwrap()
    }

    fn settings(groups: usize, output_scale_factor: f64) -> ResnetBlockSettings {
        ResnetBlockSettings { groups, eps: 1e-5, output_scale_factor }
    }

    #[test]
    fn matches_composed_f32() {
        // Identity shortcut; a 1×1 shortcut; a scale factor; a 16×16 map on the Winograd path.
        for (case, &(b, c, o, side, groups, scale)) in
            [(2, 4, 4, 5, 2, 1.0), (3, 4, 6, 6, 2, 1.0), (2, 6, 6, 4, 3, 2.0), (2, 8, 8, 16, 4, 1.0)].iter().enumerate()
        {
            let v = inputs(b, c, o, side, DType::F32, 100 * case as u64);
            let s = settings(groups, scale);
            let (fwd, grads) = compare(
                &v,
                |t| resnet_block(&t[0], &t[1], &weights(t), s),
                |t| resnet_block_composed(&t[0], &t[1], &weights(t), s),
                7,
            );
            assert!(fwd < 1e-5 && grads.iter().all(|&e| e < 1e-4), "case {case}: {fwd:e} {grads:?}");
        }
    }

    #[test]
    fn finite_differences_f64() {
        // One group: with one channel per group, GN₂ would cancel t and β₁ (zero gradients,
        // which a relative error cannot check).
        for (c, o) in [(2, 2), (2, 4)] {
            let v = inputs(2, c, o, 4, DType::F64, 200 + c as u64 + o as u64);
            let errs = finite_difference_errors(&v, |t| resnet_block(&t[0], &t[1], &weights(t), settings(1, 1.5)), 51);
            assert!(errs.iter().all(|&e| e < 1e-6), "{c} → {o}: {errs:?}");
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let v = inputs(5, 4, 8, 16, DType::F32, 300);
        assert_independent_of_thread_count(&v, |t| resnet_block(&t[0], &t[1], &weights(t), settings(2, 1.0)), 71);
    }

    #[test]
    fn rejects_bad_input() {
        let v = inputs(2, 4, 6, 5, DType::F32, 400);
        let err = |w: ResnetBlockWeights| resnet_block(&v[0], &v[1], &w, settings(2, 1.0)).unwrap_err().to_string();
        assert!(err(ResnetBlockWeights { shortcut: None, ..weights(&v) }).contains("need a conv_shortcut"));
        assert!(
            err(ResnetBlockWeights { norm2: (&v[2], &v[7]), ..weights(&v) }).contains("norm2.weight has shape [4]")
        );
        assert!(ResnetBlockWeights::from_params(&v[2..9]).unwrap_err().to_string().contains("got 7"));
        let time = v[1].narrow(0, 0, 1).unwrap();
        let e = resnet_block(&v[0], &time, &weights(&v), settings(2, 1.0)).unwrap_err().to_string();
        assert!(e.contains("time has shape [1, 6], expected [2, 6]"), "{e}");
        let e = resnet_block(&v[0], &v[1], &weights(&v), settings(4, 1.0)).unwrap_err().to_string();
        assert!(e.contains("groups do not divide"), "{e}");
    }
}
