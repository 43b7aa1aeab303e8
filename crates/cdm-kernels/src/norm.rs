//! Fused layer norm and group norm (+ SiLU), with fused backward passes.
//!
//! # Notation
//!
//! A *set* is what one mean and variance are taken over: a row of the last dimension (layer
//! norm), or the `C/G` channels × all spatial positions of one group of one sample (group
//! norm). For a set of `n` values `x_i`:
//!
//! ```text
//! μ = (1/n)·Σ x_i       σ² = (1/n)·Σ (x_i − μ)²   (biased, as in PyTorch)
//! r = 1/√(σ² + eps)     x̂_i = (x_i − μ)·r
//! ```
//!
//! # Forward
//!
//! ```text
//! layer norm:  y = x̂·w + b                          w, b: (D) over the last dimension
//! group norm:  z = x̂·w_c + b_c,  y = z or SiLU(z)   w, b: (C), c the channel of x_i
//! ```
//!
//! # Backward
//!
//! With `g_i = ∂L/∂z_i` (`= ∂L/∂y_i`, or `∂L/∂y_i·SiLU′(z_i)` with the fused SiLU,
//! `SiLU′(z) = σ(z)·(1 + z·(1 − σ(z)))`) and `h_i = g_i·w_{c(i)}`, per set:
//!
//! ```text
//! ∂L/∂x_i = r·(h_i − mean(h) − x̂_i·mean(h ⊙ x̂))
//! ∂L/∂w_c = Σ g_i·x̂_i     ∂L/∂b_c = Σ g_i            (over every i of channel / column c,
//!                                                       across all sets)
//! ```
//!
//! # Implementation
//!
//! Means and variances are two-pass (mean, then squared deviations), in 8 working-precision
//! lanes per 1024 values with the lane totals added in f64. The forward pass reads `x` twice
//! (the set is in cache the second time) and writes `y` once. The backward op recomputes μ and
//! r from `x` rather than storing them, writes `g` into the `∂L/∂x` buffer, reduces
//! `Σ g·w`, `Σ g·w·x̂` and finally rewrites it as `∂L/∂x`. Weight and bias gradients are summed
//! per block of rows / per set and the blocks added in f64 in a fixed order, so every result
//! is independent of the thread count. Sets run in parallel on rayon's threads once the
//! tensor has 32k elements. A group norm set runs as one `vectorized` kernel (AVX-512 or
//! AVX2 where the CPU has them), with the same arithmetic as the baseline build.

use candle_core::{CpuStorage, CustomOp3, D, Layout, Shape, Tensor, bail};

use crate::activation::{silu, silu_grad};
use crate::numerics::{ColumnSums, Real, sum, sum_and_dot_normalised, sum_sq_dev};
use crate::parallel::{add_in_order, for_each_chunk, rows_per_block};
use crate::simd::{Simd, WithSimd, vectorized};
use crate::storage::{SliceOp, run_slice_op};

/// `(μ, r)` of a set, computed in two passes.
#[inline(always)]
pub(crate) fn moments<T: Real>(xs: &[T], eps: f64) -> (T, T) {
    let n = xs.len().max(1) as f64;
    let mean = sum(xs) / n;
    let var = sum_sq_dev(xs, T::from_f64(mean)) / n;
    (T::from_f64(mean), T::from_f64(1.0 / (var + eps).sqrt()))
}

// ---------------------------------------------------------------------------------------------
// Layer norm
// ---------------------------------------------------------------------------------------------

const LN_NAME: &str = "layer_norm";
const LN_GRAD_NAME: &str = "layer_norm_grad";

fn layer_norm_fwd<T: Real>(x: &[T], w: &[T], b: &[T], width: usize, eps: f64) -> Vec<T> {
    let mut y = vec![T::zero(); x.len()];
    let chunk = rows_per_block(width) * width;
    for_each_chunk(&mut y, chunk, |i, yb| {
        let xb = &x[i * chunk..][..yb.len()];
        for (xr, yr) in xb.chunks_exact(width).zip(yb.chunks_exact_mut(width)) {
            let (mean, rstd) = moments(xr, eps);
            for (((y, &x), &w), &b) in yr.iter_mut().zip(xr).zip(w).zip(b) {
                *y = (x - mean) * rstd * w + b;
            }
        }
    });
    y
}

/// `[∂L/∂x, ∂L/∂w, ∂L/∂b]` packed into one buffer of `n + 2·width`.
fn layer_norm_bwd<T: Real>(x: &[T], w: &[T], dy: &[T], width: usize, eps: f64) -> Vec<T> {
    let n = x.len();
    let mut out = vec![T::zero(); n + 2 * width];
    let (dx, params) = out.split_at_mut(n);
    let chunk = rows_per_block(width) * width;
    let inv_width = 1.0 / width.max(1) as f64;
    let partials = for_each_chunk(dx, chunk, |i, dxb| {
        let xb = &x[i * chunk..][..dxb.len()];
        let dyb = &dy[i * chunk..][..dxb.len()];
        let mut dw = ColumnSums::<T>::new(width);
        let mut db = ColumnSums::<T>::new(width);
        for ((xr, dyr), dxr) in xb.chunks_exact(width).zip(dyb.chunks_exact(width)).zip(dxb.chunks_exact_mut(width)) {
            let (mean, rstd) = moments(xr, eps);
            for ((a, &x), &dy) in dw.fast_mut().iter_mut().zip(xr).zip(dyr) {
                *a += dy * ((x - mean) * rstd);
            }
            dw.row_done();
            db.add_row(dyr);
            for ((h, &dy), &w) in dxr.iter_mut().zip(dyr).zip(w) {
                *h = dy * w;
            }
            let (sum_h, sum_hx) = sum_and_dot_normalised(dxr, xr, mean, rstd);
            let (mean_h, mean_hx) = (T::from_f64(sum_h * inv_width), T::from_f64(sum_hx * inv_width));
            for (dx, &x) in dxr.iter_mut().zip(xr) {
                *dx = rstd * (*dx - mean_h - (x - mean) * rstd * mean_hx);
            }
        }
        let mut part = dw.finish();
        part.extend(db.finish());
        part
    });
    for (p, t) in params.iter_mut().zip(add_in_order(&partials, 2 * width)) {
        *p = T::from_f64(t);
    }
    out
}

/// Layer norm forward; inputs x, w, b.
struct LayerNormOp {
    eps: f64,
    width: usize,
}

/// Layer norm backward; inputs x, w, dy; output `[dx, dw, db]` flat.
struct LayerNormGradOp {
    eps: f64,
    width: usize,
}

impl SliceOp<3> for LayerNormOp {
    const NAME: &'static str = LN_NAME;

    fn compute<T: Real>(&self, [x, w, b]: [&[T]; 3]) -> Vec<T> {
        layer_norm_fwd(x, w, b, self.width, self.eps)
    }
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        LN_NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = run_slice_op(self, [(s1, l1), (s2, l2), (s3, l3)])?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let packed = x.apply_op3_no_bwd(w, &dy, &LayerNormGradOp { eps: self.eps, width: self.width })?;
        let n = x.elem_count();
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let dw = packed.narrow(0, n, self.width)?;
        let db = packed.narrow(0, n + self.width, self.width)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

impl SliceOp<3> for LayerNormGradOp {
    const NAME: &'static str = LN_GRAD_NAME;

    fn compute<T: Real>(&self, [x, w, dy]: [&[T]; 3]) -> Vec<T> {
        layer_norm_bwd(x, w, dy, self.width, self.eps)
    }
}

impl CustomOp3 for LayerNormGradOp {
    fn name(&self) -> &'static str {
        LN_GRAD_NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = run_slice_op(self, [(s1, l1), (s2, l2), (s3, l3)])?;
        Ok((out, Shape::from(l1.shape().elem_count() + 2 * self.width)))
    }
}

/// Checks that `param` is a (len) vector of `x`'s dtype.
fn check_param(op: &str, what: &str, param: &Tensor, len: usize, x: &Tensor) -> candle_core::Result<()> {
    if param.dims() != [len] {
        bail!("{op}: {what} has shape {:?}, expected ({len},) for x of shape {:?}", param.dims(), x.dims());
    }
    if param.dtype() != x.dtype() {
        bail!("{op}: {what} dtype {:?} differs from x dtype {:?}", param.dtype(), x.dtype());
    }
    Ok(())
}

/// Layer normalisation over the last dimension with an affine map,
/// `y = (x − μ)/√(σ² + eps)·weight + bias` (biased variance, as PyTorch's `nn.LayerNorm`),
/// fused, with a fused backward for `x`, `weight` and `bias`.
///
/// # Shapes
/// `x`: (…, D); `weight`, `bias`: (D). Returns `x`'s shape.
///
/// # Errors
/// Shape or dtype mismatches; on the CPU, a dtype other than F32/F64. Other devices fall back
/// to [`layer_norm_composed`].
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let width = match x.dims().last() {
        Some(&d) => d,
        None => bail!("layer_norm: x must have at least one dimension"),
    };
    check_param(LN_NAME, "weight", weight, width, x)?;
    check_param(LN_NAME, "bias", bias, width, x)?;
    if !x.device().is_cpu() {
        return layer_norm_composed(x, weight, bias, eps);
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNormOp { eps, width })
}

/// [`layer_norm`] out of candle's own ops: the reference for the tests and the fallback on
/// devices other than the CPU.
///
/// # Shapes
/// `x`: (…, D); `weight`, `bias`: (D). Returns `x`'s shape.
pub fn layer_norm_composed(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
    let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let normed = centred.broadcast_div(&(variance + eps)?.sqrt()?)?;
    normed.broadcast_mul(weight)?.broadcast_add(bias)
}

// ---------------------------------------------------------------------------------------------
// Group norm
// ---------------------------------------------------------------------------------------------

const GN_NAME: &str = "group_norm";
const GN_GRAD_NAME: &str = "group_norm_grad";

/// The layout of a group norm input: `x` (B, C, S…) seen as (B, G, C/G, S).
#[derive(Clone, Copy, Debug)]
struct GroupDims {
    groups: usize,
    channels_per_group: usize,
    spatial: usize,
}

impl GroupDims {
    /// Elements of one set (one group of one sample), contiguous in memory.
    fn set_len(self) -> usize {
        self.channels_per_group * self.spatial
    }

    fn channels(self) -> usize {
        self.groups * self.channels_per_group
    }
}

fn group_norm_fwd<T: Real>(x: &[T], w: &[T], b: &[T], dims: GroupDims, eps: f64, fuse_silu: bool) -> Vec<T> {
    let mut y = vec![T::zero(); x.len()];
    let (set_len, cpg) = (dims.set_len(), dims.channels_per_group);
    for_each_chunk(&mut y, set_len, |i, ys| {
        let first_channel = (i % dims.groups) * cpg;
        vectorized(ForwardSet {
            xs: &x[i * set_len..][..set_len],
            ys,
            w: &w[first_channel..][..cpg],
            b: &b[first_channel..][..cpg],
            spatial: dims.spatial,
            eps,
            fuse_silu,
        });
    });
    y
}

/// The forward pass of one set, as a [`vectorized`] kernel.
struct ForwardSet<'a, T> {
    xs: &'a [T],
    ys: &'a mut [T],
    /// The set's channels' weights and biases.
    w: &'a [T],
    b: &'a [T],
    spatial: usize,
    eps: f64,
    fuse_silu: bool,
}

impl<T: Real> WithSimd for ForwardSet<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) {
        let ForwardSet { xs, ys, w, b, spatial, eps, fuse_silu } = self;
        let (mean, rstd) = moments(xs, eps);
        for ((xc, yc), (&wc, &bc)) in xs.chunks_exact(spatial).zip(ys.chunks_exact_mut(spatial)).zip(w.iter().zip(b)) {
            let scale = rstd * wc;
            if fuse_silu {
                for (y, &x) in yc.iter_mut().zip(xc) {
                    *y = silu((x - mean) * scale + bc);
                }
            } else {
                for (y, &x) in yc.iter_mut().zip(xc) {
                    *y = (x - mean) * scale + bc;
                }
            }
        }
    }
}

/// `[∂L/∂x, ∂L/∂w, ∂L/∂b]` packed into one buffer of `n + 2·C`; `wb` is `[w, b]`.
fn group_norm_bwd<T: Real>(x: &[T], wb: &[T], dy: &[T], dims: GroupDims, eps: f64, fuse_silu: bool) -> Vec<T> {
    let n = x.len();
    let channels = dims.channels();
    let (w, b) = wb.split_at(channels);
    let mut out = vec![T::zero(); n + 2 * channels];
    let (dx, params) = out.split_at_mut(n);
    let (set_len, cpg) = (dims.set_len(), dims.channels_per_group);
    // Per set: Σ g and Σ g·x̂ of each of its channels.
    let partials = for_each_chunk(dx, set_len, |i, dxs| {
        let first_channel = (i % dims.groups) * cpg;
        vectorized(BackwardSet {
            xs: &x[i * set_len..][..set_len],
            dys: &dy[i * set_len..][..set_len],
            dxs,
            w: &w[first_channel..][..cpg],
            b: &b[first_channel..][..cpg],
            spatial: dims.spatial,
            eps,
            fuse_silu,
        })
    });
    let mut dw = vec![0.0; channels];
    let mut db = vec![0.0; channels];
    for (i, sums) in partials.iter().enumerate() {
        let first_channel = (i % dims.groups) * cpg;
        for c in 0..cpg {
            db[first_channel + c] += sums[c];
            dw[first_channel + c] += sums[cpg + c];
        }
    }
    let (pw, pb) = params.split_at_mut(channels);
    for (p, t) in pw.iter_mut().zip(dw).chain(pb.iter_mut().zip(db)) {
        *p = T::from_f64(t);
    }
    out
}

/// The backward pass of one set, as a [`vectorized`] kernel: writes `∂L/∂x` into `dxs` and
/// returns the set's `[Σ g per channel, Σ g·x̂ per channel]`.
struct BackwardSet<'a, T> {
    xs: &'a [T],
    dys: &'a [T],
    dxs: &'a mut [T],
    w: &'a [T],
    b: &'a [T],
    spatial: usize,
    eps: f64,
    fuse_silu: bool,
}

impl<T: Real> WithSimd for BackwardSet<'_, T> {
    type Output = Vec<f64>;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> Vec<f64> {
        let BackwardSet { xs, dys, dxs, w, b, spatial, eps, fuse_silu } = self;
        let cpg = w.len();
        let (mean, rstd) = moments(xs, eps);
        let mut sums = vec![0.0; 2 * cpg];
        let (mut sum_h, mut sum_hx) = (0.0, 0.0);
        for (c, ((xc, dyc), gc)) in
            xs.chunks_exact(spatial).zip(dys.chunks_exact(spatial)).zip(dxs.chunks_exact_mut(spatial)).enumerate()
        {
            if fuse_silu {
                let (scale, bc) = (rstd * w[c], b[c]);
                for ((g, &x), &dy) in gc.iter_mut().zip(xc).zip(dyc) {
                    *g = dy * silu_grad((x - mean) * scale + bc);
                }
            } else {
                gc.copy_from_slice(dyc);
            }
            let (sg, sgx) = sum_and_dot_normalised(gc, xc, mean, rstd);
            sums[c] = sg;
            sums[cpg + c] = sgx;
            sum_h += w[c].to_f64() * sg;
            sum_hx += w[c].to_f64() * sgx;
        }
        let inv_len = 1.0 / xs.len().max(1) as f64;
        let (mean_h, mean_hx) = (T::from_f64(sum_h * inv_len), T::from_f64(sum_hx * inv_len));
        for ((xc, dxc), &wc) in xs.chunks_exact(spatial).zip(dxs.chunks_exact_mut(spatial)).zip(w) {
            for (dx, &x) in dxc.iter_mut().zip(xc) {
                *dx = rstd * (*dx * wc - mean_h - (x - mean) * rstd * mean_hx);
            }
        }
        sums
    }
}

/// Group norm forward; inputs x, w, b.
struct GroupNormOp {
    dims: GroupDims,
    eps: f64,
    silu: bool,
}

/// Group norm backward; inputs x, `[w, b]`, dy; output `[dx, dw, db]` flat.
struct GroupNormGradOp {
    dims: GroupDims,
    eps: f64,
    silu: bool,
}

impl SliceOp<3> for GroupNormOp {
    const NAME: &'static str = GN_NAME;

    fn compute<T: Real>(&self, [x, w, b]: [&[T]; 3]) -> Vec<T> {
        group_norm_fwd(x, w, b, self.dims, self.eps, self.silu)
    }
}

impl CustomOp3 for GroupNormOp {
    fn name(&self) -> &'static str {
        GN_NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = run_slice_op(self, [(s1, l1), (s2, l2), (s3, l3)])?;
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let [dx, dw, db] = group_norm_gradients(x, self.dims, w, b, dy, self.eps, self.silu)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// `(dx, dw, db)` of the group norm (+ SiLU) of `x` with `w`, `b` for the output gradient `dy`.
fn group_norm_gradients(
    x: &Tensor,
    dims: GroupDims,
    w: &Tensor,
    b: &Tensor,
    dy: &Tensor,
    eps: f64,
    silu: bool,
) -> candle_core::Result<[Tensor; 3]> {
    let dy = dy.contiguous()?;
    let wb = Tensor::cat(&[w, b], 0)?;
    let packed = x.apply_op3_no_bwd(&wb, &dy, &GroupNormGradOp { dims, eps, silu })?;
    let (n, c) = (x.elem_count(), dims.channels());
    Ok([packed.narrow(0, 0, n)?.reshape(x.shape())?, packed.narrow(0, n, c)?, packed.narrow(0, n + c, c)?])
}

/// A group norm (+ SiLU) of contiguous CPU tensors outside candle's autograd, and its
/// gradients: for a fused op that runs it inside its own forward and backward passes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UntrackedGroupNorm {
    dims: GroupDims,
    eps: f64,
    silu: bool,
}

impl UntrackedGroupNorm {
    /// The norm of `groups` groups over the channels of `x`'s shape.
    pub(crate) fn new(x: &Tensor, groups: usize, eps: f64, silu: bool) -> candle_core::Result<Self> {
        Ok(Self { dims: group_dims(x, groups)?, eps, silu })
    }

    pub(crate) fn forward(&self, x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
        x.apply_op3_no_bwd(w, b, &GroupNormOp { dims: self.dims, eps: self.eps, silu: self.silu })
    }

    /// `(dx, dw, db)` for the output gradient `dy`.
    pub(crate) fn gradients(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<[Tensor; 3]> {
        group_norm_gradients(x, self.dims, w, b, dy, self.eps, self.silu)
    }
}

impl SliceOp<3> for GroupNormGradOp {
    const NAME: &'static str = GN_GRAD_NAME;

    fn compute<T: Real>(&self, [x, wb, dy]: [&[T]; 3]) -> Vec<T> {
        group_norm_bwd(x, wb, dy, self.dims, self.eps, self.silu)
    }
}

impl CustomOp3 for GroupNormGradOp {
    fn name(&self) -> &'static str {
        GN_GRAD_NAME
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = run_slice_op(self, [(s1, l1), (s2, l2), (s3, l3)])?;
        Ok((out, Shape::from(l1.shape().elem_count() + 2 * self.dims.channels())))
    }
}

/// The (B, C, S…) layout of a group norm input, checked.
fn group_dims(x: &Tensor, groups: usize) -> candle_core::Result<GroupDims> {
    let dims = x.dims();
    if dims.len() < 2 {
        bail!("group_norm: x must be (B, C, …), got shape {dims:?}");
    }
    let channels = dims[1];
    if groups == 0 || !channels.is_multiple_of(groups) {
        bail!("group_norm: {groups} groups do not divide {channels} channels");
    }
    Ok(GroupDims { groups, channels_per_group: channels / groups, spatial: dims[2..].iter().product() })
}

/// Group normalisation with a per-channel affine map, optionally followed by SiLU in the same
/// pass: `z = (x − μ_g)/√(σ_g² + eps)·weight_c + bias_c`, `y = silu ? z·σ(z) : z`, with μ_g, σ_g²
/// over each sample's `C/groups` channels × all positions (biased variance, as PyTorch's
/// `nn.GroupNorm`). Its backward (for `x`, `weight` and `bias`) is fused too.
///
/// # Shapes
/// `x`: (B, C, …) (any number of spatial dimensions, including none); `weight`, `bias`: (C).
/// Returns `x`'s shape.
///
/// # Errors
/// `groups` not dividing C, shape or dtype mismatches; on the CPU, a dtype other than F32/F64.
/// Other devices fall back to [`group_norm_composed`].
pub fn group_norm(
    x: &Tensor,
    groups: usize,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    silu: bool,
) -> candle_core::Result<Tensor> {
    let dims = group_dims(x, groups)?;
    check_param(GN_NAME, "weight", weight, dims.channels(), x)?;
    check_param(GN_NAME, "bias", bias, dims.channels(), x)?;
    if !x.device().is_cpu() {
        return group_norm_composed(x, groups, weight, bias, eps, silu);
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, GroupNormOp { dims, eps, silu })
}

/// [`group_norm`] out of candle's own ops (as `candle_nn::GroupNorm`, then `silu`): the
/// reference for the tests and the fallback on devices other than the CPU.
///
/// # Shapes
/// `x`: (B, C, …); `weight`, `bias`: (C). Returns `x`'s shape.
pub fn group_norm_composed(
    x: &Tensor,
    groups: usize,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
    silu: bool,
) -> candle_core::Result<Tensor> {
    let dims = group_dims(x, groups)?;
    let batch = x.dim(0)?;
    let grouped = x.reshape((batch, groups, dims.set_len()))?;
    let centred = grouped.broadcast_sub(&grouped.mean_keepdim(2)?)?;
    let variance = centred.sqr()?.mean_keepdim(2)?;
    let normed = centred.broadcast_div(&(variance + eps)?.sqrt()?)?.reshape(x.shape())?;
    let mut param_shape = vec![1; x.rank()];
    param_shape[1] = dims.channels();
    let z = normed.broadcast_mul(&weight.reshape(param_shape.as_slice())?)?;
    let z = z.broadcast_add(&bias.reshape(param_shape.as_slice())?)?;
    if silu { z.silu() } else { Ok(z) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_independent_of_thread_count, compare, finite_difference_errors, randn, rel_err};
    use candle_core::{DType, Device};

    /// Affine parameters around (1, 0) so that they matter but do not vanish.
    fn params(channels: usize, dtype: DType, seed: u64) -> (Tensor, Tensor) {
        let w = randn(&[channels], dtype, seed).affine(0.3, 1.0).unwrap();
        let b = randn(&[channels], dtype, seed + 1).affine(0.3, 0.0).unwrap();
        (w, b)
    }

    fn assert_close(what: &str, fwd: f64, grads: &[f64]) {
        assert!(fwd < 1e-5, "{what}: forward rel err {fwd:e}");
        assert!(grads.iter().all(|&e| e < 1e-5), "{what}: gradient rel errs {grads:?}");
    }

    #[test]
    fn layer_norm_matches_composed_f32() {
        // (5, 7) and (2, 3, 33) single-threaded, (300, 128) over the parallel threshold.
        for (k, shape) in [vec![5usize, 7], vec![2, 3, 33], vec![300, 128]].into_iter().enumerate() {
            let seed = 10 * k as u64;
            let x = randn(&shape, DType::F32, seed).affine(2.0, 0.5).unwrap();
            let (w, b) = params(*shape.last().unwrap(), DType::F32, seed + 1);
            let (fwd, grads) = compare(
                &[x, w, b],
                |v| layer_norm(&v[0], &v[1], &v[2], 1e-5),
                |v| layer_norm_composed(&v[0], &v[1], &v[2], 1e-5),
                seed + 3,
            );
            assert_close(&format!("layer_norm {shape:?}"), fwd, &grads);
        }
    }

    #[test]
    fn layer_norm_non_contiguous_input() {
        // x is the transpose of a (11, 6) tensor: rows of 11 with stride 6.
        let x = randn(&[11, 6], DType::F32, 40);
        let (w, b) = params(11, DType::F32, 41);
        let (fwd, grads) = compare(
            &[x, w, b],
            |v| layer_norm(&v[0].t()?, &v[1], &v[2], 1e-5),
            |v| layer_norm_composed(&v[0].t()?, &v[1], &v[2], 1e-5),
            42,
        );
        assert_close("layer_norm transposed", fwd, &grads);
    }

    #[test]
    fn layer_norm_finite_differences_f64() {
        let x = randn(&[3, 7], DType::F64, 50);
        let (w, b) = params(7, DType::F64, 51);
        let errs = finite_difference_errors(&[x, w, b], |v| layer_norm(&v[0], &v[1], &v[2], 1e-5), 52);
        assert!(errs.iter().all(|&e| e < 1e-6), "{errs:?}");
    }

    #[test]
    fn group_norm_matches_composed_f32() {
        // (batch, channels, spatial…), groups: odd sizes, no spatial dims, and
        // (4, 64, 12, 12) = 36 864 elements over the parallel threshold.
        let cases: [(&[usize], usize); 5] =
            [(&[2, 6, 5, 3], 3), (&[3, 12], 4), (&[1, 12, 7], 1), (&[2, 10, 3, 3, 2], 10), (&[4, 64, 12, 12], 32)];
        for (k, (shape, groups)) in cases.into_iter().enumerate() {
            for silu in [false, true] {
                let seed = 100 + 10 * k as u64;
                let x = randn(shape, DType::F32, seed).affine(1.5, -0.3).unwrap();
                let (w, b) = params(shape[1], DType::F32, seed + 1);
                let (fwd, grads) = compare(
                    &[x, w, b],
                    |v| group_norm(&v[0], groups, &v[1], &v[2], 1e-5, silu),
                    |v| group_norm_composed(&v[0], groups, &v[1], &v[2], 1e-5, silu),
                    seed + 3,
                );
                assert_close(&format!("group_norm {shape:?} groups {groups} silu {silu}"), fwd, &grads);
            }
        }
    }

    #[test]
    fn group_norm_non_contiguous_input() {
        // x (2, 6, 5, 4) built as a permutation of a (2, 5, 4, 6) tensor (channels last).
        for silu in [false, true] {
            let x = randn(&[2, 5, 4, 6], DType::F32, 200);
            let (w, b) = params(6, DType::F32, 201);
            let (fwd, grads) = compare(
                &[x, w, b],
                |v| group_norm(&v[0].permute((0, 3, 1, 2))?, 2, &v[1], &v[2], 1e-5, silu),
                |v| group_norm_composed(&v[0].permute((0, 3, 1, 2))?, 2, &v[1], &v[2], 1e-5, silu),
                202,
            );
            assert_close(&format!("group_norm permuted silu {silu}"), fwd, &grads);
        }
    }

    #[test]
    fn group_norm_finite_differences_f64() {
        for silu in [false, true] {
            let x = randn(&[2, 4, 3, 2], DType::F64, 300);
            let (w, b) = params(4, DType::F64, 301);
            let errs = finite_difference_errors(&[x, w, b], |v| group_norm(&v[0], 2, &v[1], &v[2], 1e-5, silu), 302);
            assert!(errs.iter().all(|&e| e < 1e-6), "silu {silu}: {errs:?}");
        }
    }

    #[test]
    fn large_mean_is_handled_in_f32() {
        // A mean 100× the spread: a one-pass E[x²] − E[x]² would lose most digits here.
        let x = randn(&[4, 8, 6, 6], DType::F32, 400).affine(1.0, 100.0).unwrap();
        let (w, b) = params(8, DType::F32, 401);
        let exact = group_norm_composed(
            &x.to_dtype(DType::F64).unwrap(),
            4,
            &w.to_dtype(DType::F64).unwrap(),
            &b.to_dtype(DType::F64).unwrap(),
            1e-5,
            true,
        )
        .unwrap();
        let fused = group_norm(&x, 4, &w, &b, 1e-5, true).unwrap();
        assert!(rel_err(&fused, &exact) < 1e-5);
        let rows = x.reshape((16, 72)).unwrap();
        let (w, b) = params(72, DType::F32, 402);
        let exact = layer_norm_composed(
            &rows.to_dtype(DType::F64).unwrap(),
            &w.to_dtype(DType::F64).unwrap(),
            &b.to_dtype(DType::F64).unwrap(),
            1e-5,
        )
        .unwrap();
        assert!(rel_err(&layer_norm(&rows, &w, &b, 1e-5).unwrap(), &exact) < 1e-5);
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // Both over the parallel threshold: (4, 64, 12, 12) in 128 sets, (300, 128) in 3 blocks
        // of rows.
        let x = randn(&[4, 64, 12, 12], DType::F32, 600);
        let (w, b) = params(64, DType::F32, 601);
        assert_independent_of_thread_count(&[x, w, b], |v| group_norm(&v[0], 32, &v[1], &v[2], 1e-5, true), 602);
        let x = randn(&[300, 128], DType::F32, 603);
        let (w, b) = params(128, DType::F32, 604);
        assert_independent_of_thread_count(&[x, w, b], |v| layer_norm(&v[0], &v[1], &v[2], 1e-5), 605);
    }

    #[test]
    fn rejects_bad_inputs() {
        let x = Tensor::zeros((2, 6, 3), DType::F32, &Device::Cpu).unwrap();
        let (w, b) = params(6, DType::F32, 0);
        assert!(group_norm(&x, 4, &w, &b, 1e-5, false).is_err());
        assert!(group_norm(&x, 0, &w, &b, 1e-5, false).is_err());
        assert!(group_norm(&x.flatten_all().unwrap(), 1, &w, &b, 1e-5, false).is_err());
        assert!(layer_norm(&x, &w, &b, 1e-5).is_err());
        let (w64, b64) = params(3, DType::F64, 0);
        assert!(layer_norm(&x, &w64, &b64, 1e-5).is_err());
        let (wh, bh) = params(3, DType::F16, 0);
        let err = layer_norm(&x.to_dtype(DType::F16).unwrap(), &wh, &bh, 1e-5).unwrap_err().to_string();
        assert!(err.contains("unsupported dtype F16"), "{err}");
    }
}
