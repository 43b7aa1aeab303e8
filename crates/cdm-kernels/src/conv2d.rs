//! A GEMM-based 2-D convolution for the CPU, forward and backward.
//!
//! candle's CPU `conv2d` runs its forward as a tiled im2col + gemm, but its backward computes the
//! input gradient with `conv_transpose2d` (a direct loop without gemm) and the weight gradient
//! with another convolution; through autograd a 3×3 conv costs about 5.6× PyTorch's. Here all
//! three products of a convolution are large matrix products (candle's `gemm`-crate matmul),
//! and the layout work around them is a few passes over contiguous rows.
//!
//! 3×3 convolutions at stride 1 — nearly every convolution of a UNet — run as Winograd
//! F(2×2, 3×3) products instead (the `winograd` submodule: 2.25× fewer multiplications in the
//! forward and in both gradients) once the batch has 256 output tiles of 2×2
//! (`WINOGRAD_MIN_TILES`). Everything below describes the im2col formulation, which serves the
//! rest (strided, 1×1, other kernel sizes, and small 3×3 batches).
//!
//! # Notation
//!
//! `x` (B, C, H, W), weight `w` (O, C, kh, kw), bias `β` (O), stride `s`, zero padding `p`
//! (dilation 1, one group), output `y` (B, O, Ho, Wo) with `Ho = ⌊(H + 2p − kh)/s⌋ + 1` and
//! `Wo = ⌊(W + 2p − kw)/s⌋ + 1`. Write `K = C·kh·kw` (the reduction length), `N = Ho·Wo` (pixels
//! of one output image) and `P = B·N` (all output pixels). PyTorch semantics (cross-correlation):
//!
//! ```text
//! y[b, o, u, v] = β[o] + Σ_{c,i,j} w[o, c, i, j] · x[b, c, u·s + i − p, v·s + j − p]   (x = 0 outside)
//! ```
//!
//! # im2col formulation
//!
//! The column matrix `X̃` (K × P), rows `r = (c, i, j)` and columns `q = (b, u, v)`, both
//! row-major, holds `X̃[(c,i,j), (b,u,v)] = x[b, c, u·s + i − p, v·s + j − p]` (0 in the
//! padding). With `W̃ = w` viewed as (O × K) and `Ỹ[o, (b,u,v)] = y[b, o, u, v] − β[o]` (O × P):
//!
//! ```text
//! forward   Ỹ  = W̃ · X̃                  (O×K)(K×P)   then  y[b, o, ·] = Ỹ[o, b·N ..] + β[o]
//! backward  dW̃ = dỸ · X̃ᵀ                (O×P)(P×K)   dỸ[o, (b,n)] = dy[b, o, n]
//!           dX̃ = W̃ᵀ · dỸ                (K×O)(O×P)   dx = col2im(dX̃)
//!           dβ[o] = Σ_{b,n} dy[b, o, n]
//! ```
//!
//! `col2im` is the adjoint of `im2col`: every entry of `dX̃` is added to the input pixel it was
//! copied from (`Σ_{(i,j,u,v) ↦ (h,w)} dX̃[(c,i,j),(b,u,v)]`), which gives `dx = im2colᵀ(dX̃)`.
//!
//! At stride 1 with a square kernel and `p < k` the input gradient is itself a convolution,
//! computed by the forward machinery instead of `dX̃` and col2im:
//!
//! ```text
//! dx[b, c, h, w] = Σ_{o,i,j} w′[c, o, i, j] · dy[b, o, h + i − p′, w + j − p′]   (dy = 0 outside)
//! w′[c, o, i, j] = w[o, c, k − 1 − i, k − 1 − j]        p′ = k − 1 − p
//! ```
//!
//! (substitute `i ↦ k − 1 − i` in `dx[b,c,h,w] = Σ_{o,i,j} w[o,c,i,j]·dy[b,o,h + p − i, w + p − j]`).
//! Its column matrix has `O·k²` rows and its product writes `dx` (C × N per image) rather than
//! `dX̃` (C·k² × N) that col2im would then read back, so the input gradient moves less memory.
//!
//! # Blocks of images
//!
//! Images go through these products a few at a time: the batch is split into equal blocks of
//! `nb` images, each with its own `X̃` (K × nb·N), as few blocks as keep that within
//! `IM2COL_BLOCK_ELEMS` = 2²⁰ elements but at least `MIN_BLOCKS` = 4 (images permitting). The forward
//! and `dX̃` are independent per block; the weight gradient sums the blocks' products, computed
//! as `dW̃ᵀ = Σ_blocks X̃·dỸᵀ` (K × O), an orientation the gemm runs about 15% faster than
//! `dỸ·X̃ᵀ`, and added in block order. Compared with one (K × P) matrix for the whole batch, a
//! block's column buffer stays in its thread's cache (first-touch page faults on fresh 19 MB
//! buffers made im2col and col2im 2–3× slower), while every gemm still has at least K × N × O
//! terms.
//!
//! Blocks run in parallel on rayon's threads, each doing its whole chain (im2col, gemm,
//! permutation) on one thread: one synchronisation per convolution instead of several per gemm,
//! and no gemm split between threads along its 64 or 128 output channels. Block boundaries
//! depend on the shapes only, so results do not depend on the thread count. (One convolution's
//! forward + backward at 32×32, 64 → 64 channels, batch 16, two threads: about 45 → 26 ms.)
//!
//! The row-major (c, i, j) × (b, u, v) layout makes im2col and col2im copies/adds of contiguous
//! runs of `Wo` (for stride 1); for a size-preserving stride-1 convolution (`k = 2p + 1`, every
//! 3×3 "same" convolution) an im2col row of one image is the whole input plane shifted by
//! `(i − p)·W + (j − p)`, one copy, after which the `|j − p|` entries per output row whose input
//! column wrapped around are set to zero. `X̃` is appended row by row into an uninitialised
//! buffer rather than a zero-filled one. The layout lets col2im run over the (b, c) input
//! planes in parallel without conflicts, since plane (b, c) only receives rows (c, ·, ·) of
//! image b. The permutations `Ỹ → y` (bias fused in) and `dy → dỸ` (`dβ` fused in) touch
//! output-sized data only.
//!
//! A pointwise convolution (1×1, stride 1, no padding) needs no im2col: image b's `X̃` is
//! `x[b]` itself as a (C × N) matrix, so `y[b] = W̃·x[b]` is one batched matmul (the weight with
//! batch stride 0) written straight into the NCHW output; likewise `dx[b] = W̃ᵀ·dy[b]`, and
//! `dW̃ = Σ_b dy[b]·x[b]ᵀ`.
//!
//! # Implementation
//!
//! One candle custom op ([`CustomOp2`] without bias, [`CustomOp3`] with): its CPU forward is
//! the above, and its `bwd` computes `dx`, `dW` and `dβ` directly on the CPU buffers, each only
//! for arguments that track gradients (no `dx` for a data batch). candle's matmul (the `gemm`
//! crate) is called on the storages with strided layouts, so transposes are views. `X̃` is
//! recomputed in the backward rather than kept from the forward: an im2col pass costs about a
//! twentieth of the three gemms, and keeping it would hold 9× each 3×3 layer's input until the
//! backward. Blocks run in parallel (above); col2im and the single-image passes run in
//! parallel once a buffer has at least 2¹⁵ elements.
//! Gradients are first order only (the backward is not itself differentiable).
//!
//! F32 and F64 on the CPU; other dtypes are an error. On other devices [`conv2d`] falls back to
//! [`conv2d_candle`] (candle's `Tensor::conv2d` + bias), which is also the tests' reference.
//! Note that candle 0.11's own conv2d backward fails ("shape mismatch in add") when
//! `(H + 2p − kh) mod s ≠ (W + 2p − kw) mod s`, e.g. a 5×4 input at stride 2: it derives
//! `conv_transpose2d`'s output padding from the height alone. The kernel here has no such
//! restriction.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use cdm_kernels::conv2d::{conv2d, conv2d_candle};
//!
//! # fn main() -> candle_core::Result<()> {
//! let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &Device::Cpu)?;
//! let w = Tensor::randn(0f32, 0.2, (4, 3, 3, 3), &Device::Cpu)?;
//! let b = Tensor::randn(0f32, 0.1, 4, &Device::Cpu)?;
//! let y = conv2d(&x, &w, Some(&b), 2, 1)?; // 3×3, stride 2, padding 1
//! assert_eq!(y.dims(), &[2, 4, 4, 4]);
//! let reference = conv2d_candle(&x, &w, Some(&b), 2, 1)?;
//! let diff = (y - reference)?.abs()?.max_all()?.to_scalar::<f32>()?;
//! assert!(diff < 1e-4);
//! # Ok(())
//! # }
//! ```

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Device, Layout, Result, Shape, Tensor, WithDType, bail};
use rayon::prelude::*;

use crate::matmul::{Mat, matmul};
use crate::numerics::{self, sum};
use crate::parallel::for_each_chunk;
use crate::storage::{contiguous_slice, cpu_storage, unsupported_dtype};

mod winograd;

/// Blocks the batch is at least split into (images permitting), so that both threads of a
/// two-thread pool get work even when a whole batch's `X̃` would fit in one block. A constant
/// rather than the pool size, so results do not depend on the thread count.
const MIN_BLOCKS: usize = 4;

/// 3×3 stride-1 convolutions with fewer output tiles (2×2 outputs each, over the batch) go
/// through im2col: the 16 Winograd products are then too thin. A 32×32 image has 256 tiles;
/// with this threshold the CIFAR-sized UNet's forward at batch 1 took 26.7 ms instead of 33.8
/// (every 3×3 as Winograd), at batch 4 71.4 instead of 77.2, and batch 16 is unaffected.
const WINOGRAD_MIN_TILES: usize = 256;

/// 3×3 stride-1 convolutions with fewer input or output channels also go through im2col: each
/// Winograd product has the channels as its inner or outer dimension. Batch 16 at 28×28, 2
/// threads, forward + backward: 1 → 32 channels took 1.40 ms as Winograd products and 0.66–1.15
/// through im2col, 32 → 1 2.32 and 0.77–1.31 (a UNet's first and last convolutions).
const WINOGRAD_MIN_CHANNELS: usize = 8;

/// Which algorithm a 3×3 stride-1 convolution takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Winograd {
    /// Winograd products from [`WINOGRAD_MIN_TILES`] output tiles and [`WINOGRAD_MIN_CHANNELS`]
    /// channels on each side, im2col below.
    WhereItPays,
    /// Winograd products whatever the size (tests).
    #[cfg(test)]
    Always,
    /// im2col (tests).
    #[cfg(test)]
    Never,
}

/// Target size (elements) of one block's `X̃`: images are processed a few at a time so that the
/// column buffers stay in cache and are reused instead of freshly allocated.
const IM2COL_BLOCK_ELEMS: usize = 1 << 20;

/// 2-D convolution `y = conv(x, weight) + bias`, GEMM-based forward and backward on the CPU.
///
/// PyTorch's `F.conv2d(x, weight, bias, stride, padding)` with dilation 1 and one group; see
/// the [module documentation](self) for the formulation.
///
/// # Shapes
/// `x` (B, Cin, H, W), `weight` (Cout, Cin, kh, kw), `bias` (Cout) → (B, Cout, Ho, Wo) with
/// `Ho = ⌊(H + 2·padding − kh)/stride⌋ + 1` (likewise `Wo`).
///
/// # Errors
/// Shape mismatches, `stride == 0`, a kernel larger than the padded input, mixed dtypes or
/// devices, and (on the CPU) a dtype other than f32/f64. Non-CPU tensors, and empty ones, go
/// through [`conv2d_candle`].
pub fn conv2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: usize, padding: usize) -> Result<Tensor> {
    conv2d_with(x, weight, bias, Conv2dOp::new(stride, padding))
}

/// [`conv2d`] with a bias, on contiguous CPU tensors, outside candle's autograd: for a fused op
/// that runs the convolution inside its own forward pass.
pub(crate) fn conv2d_untracked(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    x.apply_op3_no_bwd(weight, bias, &Conv2dOp::new(stride, padding))
}

/// [`conv2d_untracked`] on CPU buffers: the output's own storage, for a fused op's `cpu_fwd`
/// to finish in place.
pub(crate) fn conv2d_cpu(
    x: (&CpuStorage, &Layout),
    weight: (&CpuStorage, &Layout),
    bias: (&CpuStorage, &Layout),
    stride: usize,
    padding: usize,
) -> Result<(CpuStorage, Shape)> {
    Conv2dOp::new(stride, padding).cpu_forward(x, weight, Some(bias))
}

/// `(dx, dW, dβ)` of [`conv2d_untracked`] for the output gradient `grad` (CPU tensors).
pub(crate) fn conv2d_gradients(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    grad: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<[Tensor; 3]> {
    match Conv2dOp::new(stride, padding).dispatch_backward(x, weight, Some(bias), grad, [true; 3])? {
        (Some(dx), Some(dw), Some(db)) => Ok([dx, dw, db]),
        _ => bail!("conv2d: the backward left out a gradient it was asked for"),
    }
}

/// [`conv2d`] with the settings of `op`.
fn conv2d_with(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, op: Conv2dOp) -> Result<Tensor> {
    let (stride, padding) = (op.stride, op.padding);
    let geometry = Geometry::new(x.dims(), weight.dims(), stride, padding)?;
    for (name, t) in std::iter::once(("weight", weight)).chain(bias.map(|b| ("bias", b))) {
        if t.dtype() != x.dtype() {
            bail!("conv2d: {name} has dtype {:?} but x has {:?}", t.dtype(), x.dtype());
        }
        if !t.device().same_device(x.device()) {
            bail!("conv2d: {name} is on {:?} but x is on {:?}", t.device().location(), x.device().location());
        }
    }
    if let Some(bias) = bias
        && bias.dims() != [geometry.o]
    {
        bail!("conv2d: bias has shape {:?}, expected ({},)", bias.dims(), geometry.o);
    }
    if !x.device().is_cpu() || geometry.is_empty() {
        return conv2d_candle(x, weight, bias, stride, padding);
    }
    if !matches!(x.dtype(), DType::F32 | DType::F64) {
        return unsupported_dtype("conv2d", x.dtype());
    }
    let (x, weight) = (x.contiguous()?, weight.contiguous()?);
    match bias {
        Some(bias) => x.apply_op3(&weight, &bias.contiguous()?, op),
        None => x.apply_op2(&weight, op),
    }
}

/// candle's own convolution (`Tensor::conv2d`, dilation 1, one group) plus the bias, with the
/// same signature as [`conv2d`]: the fallback on non-CPU devices and the reference in tests.
pub fn conv2d_candle(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let y = x.conv2d(weight, padding, stride, 1, 1)?;
    match bias {
        Some(bias) => y.broadcast_add(&bias.reshape((1, bias.elem_count(), 1, 1))?),
        None => Ok(y),
    }
}

/// Sizes of one convolution (see the module documentation for the names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    fn new(x: &[usize], weight: &[usize], stride: usize, pad: usize) -> Result<Self> {
        let (&[b, c, h, w], &[o, cw, kh, kw]) = (x, weight) else {
            bail!("conv2d: expected x (B, C, H, W) and weight (O, C, kh, kw), got {x:?} and {weight:?}");
        };
        if cw != c {
            bail!("conv2d: x has {c} channels but the weight expects {cw} (x {x:?}, weight {weight:?})");
        }
        if stride == 0 {
            bail!("conv2d: stride must be positive");
        }
        if kh == 0 || kw == 0 || kh > h + 2 * pad || kw > w + 2 * pad {
            bail!("conv2d: kernel {kh}×{kw} does not fit the input {h}×{w} padded by {pad}");
        }
        let (ho, wo) = ((h + 2 * pad - kh) / stride + 1, (w + 2 * pad - kw) / stride + 1);
        Ok(Self { b, c, h, w, o, kh, kw, stride, pad, ho, wo })
    }

    /// Whether this is a 1×1, stride-1, unpadded convolution, whose `X̃` is `x` itself, image
    /// by image.
    fn is_pointwise(&self) -> bool {
        (self.kh, self.kw, self.stride, self.pad) == (1, 1, 1, 0)
    }

    /// The convolution whose forward pass is this one's input gradient, where there is one
    /// (stride 1, a square kernel, `p < k`): `dx = conv(dy, w′)` with `w′` from
    /// [`flipped_transposed_weight`], padding `k − 1 − p`, and `dy` as its (B, O, Ho, Wo) input.
    fn input_gradient(&self) -> Option<Self> {
        (self.stride == 1 && self.kh == self.kw && self.pad < self.kh).then(|| Self {
            c: self.o,
            h: self.ho,
            w: self.wo,
            o: self.c,
            pad: self.kh - 1 - self.pad,
            ho: self.h,
            wo: self.w,
            ..*self
        })
    }

    /// Whether this is a stride-1 convolution whose output has the input's size ("same"
    /// padding, `k = 2p + 1`): row `(c, i, j)` of `X̃` is then plane `c` shifted by
    /// `(i − p)·W + (j − p)` positions, except where a column wraps around.
    fn preserves_size(&self) -> bool {
        self.stride == 1 && (self.ho, self.wo) == (self.h, self.w)
    }

    /// Whether some tensor involved has no elements.
    fn is_empty(&self) -> bool {
        self.b * self.c * self.h * self.w * self.o == 0
    }

    /// Pixels per output image, `N = Ho·Wo`.
    fn n(&self) -> usize {
        self.ho * self.wo
    }

    /// Rows of `X̃`, `K = C·kh·kw`.
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Elements of one input image, `C·H·W`.
    fn image(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Images per block: the batch split into equal blocks, at least [`MIN_BLOCKS`] (while
    /// there are images) and as few as keep a block's largest buffer, `per_image` elements an
    /// image (`X̃`: K·N), within `block_elems` (at least one image each).
    fn images_per_block(&self, per_image: usize, block_elems: usize) -> usize {
        let largest = (block_elems / per_image.max(1)).clamp(1, self.b);
        let blocks = self.b.div_ceil(largest).max(MIN_BLOCKS.min(self.b));
        self.b.div_ceil(blocks)
    }

    /// Output columns `v` whose input column `v·s + j − p` lies inside `[0, W)`, as `lo..hi`,
    /// and the input column of `v = lo`.
    fn valid_columns(&self, j: usize) -> (usize, usize, usize) {
        let (s, p) = (self.stride, self.pad);
        let lo = if j >= p { 0 } else { (p - j).div_ceil(s) }.min(self.wo);
        let hi = if self.w + p > j { (self.w + p - j).div_ceil(s).min(self.wo) } else { 0 }.max(lo);
        (lo, hi, (lo * s + j).saturating_sub(p))
    }

    /// The input row `u·s + i − p` of output row `u`, if inside `[0, H)`.
    fn input_row(&self, u: usize, i: usize) -> Option<usize> {
        (u * self.stride + i).checked_sub(self.pad).filter(|&r| r < self.h)
    }
}

/// The block's `X̃` (K × nb·N) of the `nb` contiguous images `x` (nb, C, H, W), built row by
/// row (no zero-filled buffer first).
fn im2col<T: WithDType>(x: &[T], g: &Geometry) -> Vec<T> {
    let (n, plane) = (g.n(), g.h * g.w);
    let images = x.len() / g.image();
    let zero = T::from_f64(0.0);
    let mut cols = Vec::with_capacity(g.k() * images * n);
    for r in 0..g.k() {
        let (ci, i, j) = (r / (g.kh * g.kw), (r / g.kw) % g.kh, r % g.kw);
        let (lo, hi, first) = g.valid_columns(j);
        for b in 0..images {
            let image = &x[(b * g.c + ci) * plane..][..plane];
            if g.preserves_size() {
                push_shifted_plane(&mut cols, image, g, i, j);
                continue;
            }
            for u in 0..g.ho {
                let Some(ih) = g.input_row(u, i).filter(|_| lo < hi) else {
                    cols.resize(cols.len() + g.wo, zero);
                    continue;
                };
                let src = &image[ih * g.w + first..(ih + 1) * g.w];
                cols.resize(cols.len() + lo, zero);
                if g.stride == 1 {
                    cols.extend_from_slice(&src[..hi - lo]);
                } else {
                    cols.extend(src.iter().step_by(g.stride).take(hi - lo));
                }
                cols.resize(cols.len() + g.wo - hi, zero);
            }
        }
    }
    cols
}

/// Appends row `(c, i, j)` of one image's `X̃` for a [size-preserving](Geometry::preserves_size)
/// convolution: the image plane `c` shifted by `(i − p)·W + (j − p)` positions (zeros where it
/// leaves the plane) as one copy, then the entries whose input column wrapped into the next or
/// previous image row set to zero.
fn push_shifted_plane<T: WithDType>(cols: &mut Vec<T>, plane: &[T], g: &Geometry, i: usize, j: usize) {
    let zero = T::from_f64(0.0);
    let (len, start) = (plane.len(), cols.len());
    let (tap, centre) = (i * g.w + j, g.pad * g.w + g.pad);
    let (lead, from) = (centre.saturating_sub(tap).min(len), tap.saturating_sub(centre).min(len));
    cols.resize(start + lead, zero);
    cols.extend_from_slice(&plane[from..][..len - lead - from]);
    cols.resize(start + len, zero);
    // Column by column (strided, a few per plane) rather than a tiny fill per row.
    let (lo, hi, _) = g.valid_columns(j);
    for v in (0..lo).chain(hi..g.w) {
        cols[start + v..].iter_mut().step_by(g.w).for_each(|entry| *entry = zero);
    }
}

/// Adds `im2colᵀ` of the block's `dX̃` (K × nb·N) onto `dx` (nb, C, H, W): every column entry
/// back onto the input pixel it was copied from.
fn col2im<T: WithDType>(cols: &[T], g: &Geometry, dx: &mut [T]) {
    let (n, plane) = (g.n(), g.h * g.w);
    let columns = cols.len() / g.k();
    for_each_chunk(dx, plane, |q, image| {
        let (b, ci) = (q / g.c, q % g.c);
        for i in 0..g.kh {
            for j in 0..g.kw {
                let (lo, hi, first) = g.valid_columns(j);
                if lo == hi {
                    continue;
                }
                let row = &cols[((ci * g.kh + i) * g.kw + j) * columns + b * n..][..n];
                for (u, src) in row.chunks_exact(g.wo).enumerate() {
                    let Some(ih) = g.input_row(u, i) else { continue };
                    let dst = &mut image[ih * g.w + first..(ih + 1) * g.w];
                    let src = &src[lo..hi];
                    if g.stride == 1 {
                        for (d, &v) in dst[..hi - lo].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (d, &v) in dst.iter_mut().step_by(g.stride).zip(src) {
                            *d += v;
                        }
                    }
                }
            }
        }
    });
}

/// `y[b, o, ·] += β[o]` for `y` (B, O, N).
fn add_bias<T: WithDType>(y: &mut [T], bias: Option<&[T]>, n: usize) {
    if let Some(bias) = bias {
        for_each_chunk(y, n, |q, row| {
            let beta = bias[q % bias.len()];
            row.iter_mut().for_each(|v| *v += beta);
        });
    }
}

/// `w′[c, o, i, j] = w[o, c, kh − 1 − i, kw − 1 − j]` (C, O, kh, kw): the weight of the
/// convolution that maps `dy` to `dx` at stride 1 ([`Geometry::input_gradient`]).
fn flipped_transposed_weight<T: WithDType>(w: &[T], g: &Geometry) -> Vec<T> {
    let taps = g.kh * g.kw;
    let mut flipped = Vec::with_capacity(w.len());
    for c in 0..g.c {
        for o in 0..g.o {
            flipped.extend(w[(o * g.c + c) * taps..][..taps].iter().rev());
        }
    }
    flipped
}

/// `y[b, o, ·] = Ỹ[o, b·N ..] + β[o]` for the `nb` images of a block, `y` (nb, O, N) and `Ỹ`
/// (O × nb·N).
fn scatter_block_output<T: WithDType>(y_tilde: &[T], bias: Option<&[T]>, y: &mut [T], g: &Geometry) {
    let n = g.n();
    let nb = y.len() / (g.o * n);
    for (q, dst) in y.chunks_exact_mut(n).enumerate() {
        let (b, o) = (q / g.o, q % g.o);
        let src = &y_tilde[o * nb * n + b * n..][..n];
        match bias {
            Some(bias) => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v + bias[o]),
            None => dst.copy_from_slice(src),
        }
    }
}

/// The convolution as a candle custom op: `CustomOp2` (x, weight) or `CustomOp3` (x, weight, bias).
#[derive(Clone, Copy, Debug)]
struct Conv2dOp {
    stride: usize,
    padding: usize,
    /// Target size of a block's `X̃` ([`IM2COL_BLOCK_ELEMS`]; smaller in tests).
    block_elems: usize,
    /// When 3×3 stride-1 convolutions run as Winograd products.
    winograd: Winograd,
}

impl Conv2dOp {
    /// The op with the production block size and Winograd thresholds.
    fn new(stride: usize, padding: usize) -> Self {
        Self { stride, padding, block_elems: IM2COL_BLOCK_ELEMS, winograd: Winograd::WhereItPays }
    }

    /// Whether the convolution of `g` runs as Winograd products.
    fn uses_winograd(&self, g: &Geometry) -> bool {
        let (min_tiles, min_channels) = match self.winograd {
            Winograd::WhereItPays => (WINOGRAD_MIN_TILES, WINOGRAD_MIN_CHANNELS),
            #[cfg(test)]
            Winograd::Always => (0, 0),
            #[cfg(test)]
            Winograd::Never => return false,
        };
        winograd::applies(g, min_tiles) && g.c.min(g.o) >= min_channels
    }

    /// The forward pass: `y = W̃·X̃ + β`.
    ///
    /// A pointwise (1×1, stride 1, unpadded) convolution multiplies each image (C × N) in place,
    /// straight into the output. Otherwise blocks of images go through im2col, `Ỹ = W̃·X̃` and
    /// `y = permute(Ỹ) + β`.
    fn forward<T: WithDType>(
        &self,
        x: (&CpuStorage, &Layout),
        weight: (&CpuStorage, &Layout),
        bias: Option<&[T]>,
        g: &Geometry,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, k, o) = (g.n(), g.k(), g.o);
        let shape = Shape::from((g.b, o, g.ho, g.wo));
        let w_tilde = Mat::new(weight.0, weight.1.start_offset(), (o, k));
        if g.is_pointwise() {
            let images = Mat::new(x.0, x.1.start_offset(), (g.c, n)).batched(g.c * n);
            let mut y = matmul::<T>(g.b, w_tilde, images)?;
            add_bias(&mut y, bias, n);
            return Ok((T::to_cpu_storage_owned(y), shape));
        }
        let x = contiguous_slice::<T>(x.0, x.1, "conv2d")?;
        let y = if self.uses_winograd(g) {
            winograd::forward(x, contiguous_slice::<T>(weight.0, weight.1, "conv2d")?, bias, g, self.block_elems)?
        } else {
            self.blocked_forward(x, w_tilde, bias, g)?
        };
        Ok((T::to_cpu_storage_owned(y), shape))
    }

    /// `y = W̃·X̃ + β` (B, O, Ho, Wo) of a convolution that is not pointwise: blocks of images
    /// go through im2col, `Ỹ = W̃·X̃` and `y = permute(Ỹ) + β`, in parallel.
    fn blocked_forward<T: WithDType>(&self, x: &[T], w_tilde: Mat, bias: Option<&[T]>, g: &Geometry) -> Result<Vec<T>> {
        let (n, k, o) = (g.n(), g.k(), g.o);
        if g.b == 1 {
            // One image: (O, 1·N) is already the output layout.
            let cols = T::to_cpu_storage_owned(im2col(x, g));
            let mut y = matmul::<T>(1, w_tilde, Mat::new(&cols, 0, (k, n)))?;
            add_bias(&mut y, bias, n);
            return Ok(y);
        }
        let per_block = g.images_per_block(g.k() * g.n(), self.block_elems);
        let mut y = vec![T::from_f64(0.0); g.b * o * n];
        y.par_chunks_mut(per_block * o * n).enumerate().try_for_each(|(block, y)| {
            let nb = y.len() / (o * n);
            let cols = T::to_cpu_storage_owned(im2col(&x[block * per_block * g.image()..][..nb * g.image()], g));
            let y_tilde = matmul::<T>(1, w_tilde, Mat::new(&cols, 0, (k, nb * n)))?;
            scatter_block_output(&y_tilde, bias, y, g);
            Ok::<(), candle_core::Error>(())
        })?;
        Ok(y)
    }

    /// Dispatches [`Self::forward`] on the dtype.
    fn cpu_forward(
        &self,
        x: (&CpuStorage, &Layout),
        weight: (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(x.1.dims(), weight.1.dims(), self.stride, self.padding)?;
        if !x.1.is_contiguous() || !weight.1.is_contiguous() {
            bail!("conv2d: expected a contiguous input and weight");
        }
        match x.0.dtype() {
            DType::F32 => {
                self.forward(x, weight, bias.map(|(s, l)| contiguous_slice::<f32>(s, l, "conv2d")).transpose()?, &g)
            }
            DType::F64 => {
                self.forward(x, weight, bias.map(|(s, l)| contiguous_slice::<f64>(s, l, "conv2d")).transpose()?, &g)
            }
            dtype => unsupported_dtype("conv2d", dtype),
        }
    }

    /// The backward pass: `(dx, dW, dβ)`, each when asked for in `needs`.
    ///
    /// Pointwise convolutions multiply image by image in place (`dx_b = W̃ᵀ·dy_b`,
    /// `dW̃ = Σ_b dy_b·x_bᵀ`); otherwise blocks of images go through `dỸ`, im2col,
    /// `dW̃ += dỸ·X̃ᵀ`, `dX̃ = W̃ᵀ·dỸ` and col2im.
    fn backward<T: WithDType>(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        grad: &Tensor,
        [need_x, need_w, need_b]: [bool; 3],
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = Geometry::new(x.dims(), weight.dims(), self.stride, self.padding)?;
        let (n, k, o) = (g.n(), g.k(), g.o);
        let need_b = need_b && bias.is_some();
        if !(need_x || need_w || need_b) {
            return Ok((None, None, None));
        }
        let (x, weight, grad) = (x.contiguous()?, weight.contiguous()?, grad.contiguous()?);
        let (x_storage, x_layout) = x.storage_and_layout();
        let (w_storage, w_layout) = weight.storage_and_layout();
        let (grad_storage, grad_layout) = grad.storage_and_layout();
        let (x_cpu, w_cpu, grad_cpu) = (
            cpu_storage(&x_storage, "conv2d")?,
            cpu_storage(&w_storage, "conv2d")?,
            cpu_storage(&grad_storage, "conv2d")?,
        );
        let w_tilde = Mat::new(w_cpu, w_layout.start_offset(), (o, k));
        let (d_x, d_weight, d_bias) = if g.is_pointwise() {
            let images = Mat::new(x_cpu, x_layout.start_offset(), (g.c, n)).batched(g.c * n);
            let dy = Mat::new(grad_cpu, grad_layout.start_offset(), (o, n)).batched(o * n);
            let d_x = need_x.then(|| matmul::<T>(g.b, w_tilde.t(), dy)).transpose()?;
            let d_weight = if need_w {
                // dW̃ᵀ = Σ_b x_b·dy_bᵀ: gemm runs this orientation faster than dy_b·x_bᵀ (1.4 against
                // 2.1 ms for sixteen 128 → 64-channel 32×32 images).
                let partials = matmul::<T>(g.b, images, dy.t())?;
                let mut sum = partials[..o * k].to_vec();
                for partial in partials.chunks_exact(o * k).skip(1) {
                    sum.iter_mut().zip(partial).for_each(|(s, &v)| *s += v);
                }
                Some(transposed(&sum, k, o))
            } else {
                None
            };
            let mut d_bias = vec![T::from_f64(0.0); o];
            if need_b {
                for (q, row) in contiguous_slice::<T>(grad_cpu, grad_layout, "conv2d")?.chunks_exact(n).enumerate() {
                    d_bias[q % o] += T::from_f64(sum(row));
                }
            }
            (d_x, d_weight, d_bias)
        } else {
            let x = contiguous_slice::<T>(x_cpu, x_layout, "conv2d")?;
            let dy = contiguous_slice::<T>(grad_cpu, grad_layout, "conv2d")?;
            let w = contiguous_slice::<T>(w_cpu, w_layout, "conv2d")?;
            if self.uses_winograd(&g) {
                winograd::backward(x, w, dy, (need_x, need_w), &g, self.block_elems)?
            } else if let Some(transposed) = g.input_gradient().filter(|_| need_x) {
                // dx = conv(dy, w′): a forward pass instead of dX̃ and col2im.
                let w_flipped = T::to_cpu_storage_owned(flipped_transposed_weight(w, &g));
                let w_flipped = Mat::new(&w_flipped, 0, (transposed.o, transposed.k()));
                let d_x = self.blocked_forward(dy, w_flipped, None, &transposed)?;
                let (_, d_weight, d_bias) = self.backward_blocks(x, w_tilde, dy, (false, need_w), &g)?;
                (Some(d_x), d_weight, d_bias)
            } else {
                self.backward_blocks(x, w_tilde, dy, (need_x, need_w), &g)?
            }
        };
        let d_x = d_x.map(|d_x| Tensor::from_vec(d_x, (g.b, g.c, g.h, g.w), &Device::Cpu)).transpose()?;
        let d_weight = d_weight.map(|d_w| Tensor::from_vec(d_w, (o, g.c, g.kh, g.kw), &Device::Cpu)).transpose()?;
        let d_bias = need_b.then(|| Tensor::from_vec(d_bias, o, &Device::Cpu)).transpose()?;
        Ok((d_x, d_weight, d_bias))
    }

    /// The blocked backward pass of [`Self::backward`]: `(dx, dW, dβ)`, the first two when
    /// asked for.
    #[allow(clippy::type_complexity)]
    fn backward_blocks<T: WithDType>(
        &self,
        x: &[T],
        w_tilde: Mat,
        dy: &[T],
        (need_x, need_w): (bool, bool),
        g: &Geometry,
    ) -> Result<(Option<Vec<T>>, Option<Vec<T>>, Vec<T>)> {
        let (n, k, o) = (g.n(), g.k(), g.o);
        let per_block = g.images_per_block(g.k() * g.n(), self.block_elems);
        let (d_x, d_bias, d_weight_t) = gradients_by_block(g, per_block, need_x, |start, images, d_x| {
            let x = &x[start * g.image()..][..images * g.image()];
            block_gradients(x, w_tilde, &dy[start * o * n..][..images * o * n], d_x, need_w, g)
        })?;
        let d_weight = d_weight_t.map(|d_weight_t| transposed(&d_weight_t, k, o));
        Ok((d_x, d_weight, d_bias))
    }

    /// Dispatches [`Self::backward`] on the dtype.
    fn dispatch_backward(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        grad: &Tensor,
        needs: [bool; 3],
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        if !x.device().is_cpu() {
            bail!("conv2d: the GEMM kernel's backward runs on the CPU only");
        }
        match x.dtype() {
            DType::F32 => self.backward::<f32>(x, weight, bias, grad, needs),
            DType::F64 => self.backward::<f64>(x, weight, bias, grad, needs),
            dtype => unsupported_dtype("conv2d", dtype),
        }
    }
}

/// The backward pass over blocks of `per_block` images, in parallel: `block(start, images,
/// dx)` returns a block's shares of `dβ` and of a weight gradient (when computed), `dx` its
/// slice of the input gradient when `need_x`. Returns `(dx, dβ, weight gradient)`, the shares
/// added in block order, so independent of the thread count.
#[allow(clippy::type_complexity)]
fn gradients_by_block<T: WithDType>(
    g: &Geometry,
    per_block: usize,
    need_x: bool,
    block: impl Fn(usize, usize, Option<&mut [T]>) -> Result<(Vec<T>, Option<Vec<T>>)> + Sync + Send,
) -> Result<(Option<Vec<T>>, Vec<T>, Option<Vec<T>>)> {
    let zero = T::from_f64(0.0);
    let mut d_x = vec![zero; if need_x { g.b * g.image() } else { 0 }];
    let d_x_blocks: Vec<Option<&mut [T]>> = if need_x {
        d_x.chunks_mut(per_block * g.image()).map(Some).collect()
    } else {
        (0..g.b.div_ceil(per_block)).map(|_| None).collect()
    };
    let partials = d_x_blocks
        .into_par_iter()
        .enumerate()
        .map(|(i, d_x)| block(i * per_block, per_block.min(g.b - i * per_block), d_x))
        .collect::<Result<Vec<_>>>()?;
    let mut d_bias = vec![zero; g.o];
    let mut d_weight: Option<Vec<T>> = None;
    for (d_bias_part, d_weight_part) in partials {
        d_bias.iter_mut().zip(d_bias_part).for_each(|(d, v)| *d += v);
        match (&mut d_weight, d_weight_part) {
            (Some(sum), Some(part)) => sum.iter_mut().zip(part).for_each(|(d, v)| *d += v),
            (None, part) => d_weight = part,
            (Some(_), None) => {}
        }
    }
    Ok((need_x.then_some(d_x), d_bias, d_weight))
}

/// The (cols × rows) transpose of the row-major (rows × cols) matrix `m`.
fn transposed<T: Copy>(m: &[T], rows: usize, cols: usize) -> Vec<T> {
    (0..rows * cols).map(|i| m[(i % rows) * cols + i / rows]).collect()
}

/// A block's `dỸ` (O × nb·N: `dy[b, o, ·]` of its images side by side) and its row sums, the
/// block's share of `dβ`.
fn gather_dy<T: WithDType>(dy: &[T], g: &Geometry) -> (Vec<T>, Vec<T>) {
    let n = g.n();
    let zero = T::from_f64(0.0);
    let mut dy_tilde = Vec::with_capacity(dy.len());
    let sums = (0..g.o)
        .map(|o| {
            let mut sum = zero;
            for src in dy.chunks_exact(g.o * n).map(|image| &image[o * n..][..n]) {
                dy_tilde.extend_from_slice(src);
                sum += T::from_f64(numerics::sum(src));
            }
            sum
        })
        .collect();
    (dy_tilde, sums)
}

/// One block's gradients: `dβ` and (when `need_w`) `dW̃ᵀ` of its images, returned, and `dx`
/// added onto `d_x` when given. `x` and `dy` are the block's images.
fn block_gradients<T: WithDType>(
    x: &[T],
    w_tilde: Mat,
    dy: &[T],
    d_x: Option<&mut [T]>,
    need_w: bool,
    g: &Geometry,
) -> Result<(Vec<T>, Option<Vec<T>>)> {
    let (k, o) = (g.k(), g.o);
    let columns = dy.len() / o;
    let (dy_tilde, d_bias) = gather_dy(dy, g);
    let dy_tilde = T::to_cpu_storage_owned(dy_tilde);
    let dy_tilde = Mat::new(&dy_tilde, 0, (o, columns));
    let d_weight_t = if need_w {
        // dW̃ᵀ = X̃ · dỸᵀ (K × O), dỸᵀ as the transposed view of the row-major dỸ; gemm runs
        // this orientation ~15% faster than dỸ · X̃ᵀ.
        let cols = T::to_cpu_storage_owned(im2col(x, g));
        Some(matmul::<T>(1, Mat::new(&cols, 0, (k, columns)), dy_tilde.t())?)
    } else {
        None
    };
    if let Some(d_x) = d_x {
        // dX̃ = W̃ᵀ · dỸ, then col2im onto the block's images.
        col2im(&matmul::<T>(1, w_tilde.t(), dy_tilde)?, g, d_x);
    }
    Ok((d_bias, d_weight_t))
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "cdm-conv2d"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, w: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        self.cpu_forward((x, xl), (w, wl), None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.dispatch_backward(x, weight, None, grad, [x.track_op(), weight.track_op(), false])?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "cdm-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
        b: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.cpu_forward((x, xl), (w, wl), Some((b, bl)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.dispatch_backward(x, weight, Some(bias), grad, [x, weight, bias].map(Tensor::track_op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_independent_of_thread_count, compare, finite_difference_errors, randn, rel_err};
    use candle_core::{D, Var};

    /// One convolution case: (B, Cin, H, W) → Cout with a k×k kernel.
    #[derive(Clone, Copy, Debug)]
    struct Case {
        b: usize,
        c: usize,
        o: usize,
        h: usize,
        w: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bias: bool,
    }

    /// Forward and gradients of x, weight and bias of `loss = Σ y·r`, ours vs candle's conv2d,
    /// in f32, within a relative 1e-5.
    fn compare_with_candle(case: Case, seed: u64) {
        compare_blocked_with_candle(case, IM2COL_BLOCK_ELEMS, seed)
    }

    /// [`compare_with_candle`] with `block_elems` as the target size of a block's `X̃`; a 3×3
    /// stride-1 case is checked both as Winograd products and through im2col.
    fn compare_blocked_with_candle(case: Case, block_elems: usize, seed: u64) {
        let Case { b, c, o, h, w, k, stride, pad, bias } = case;
        let mut inputs = vec![randn(&[b, c, h, w], DType::F32, seed), randn(&[o, c, k, k], DType::F32, seed + 1)];
        if bias {
            inputs.push(randn(&[o], DType::F32, seed + 2));
        }
        let algorithms: &[Winograd] =
            if (k, stride) == (3, 1) { &[Winograd::Always, Winograd::Never] } else { &[Winograd::Never] };
        for &winograd in algorithms {
            let op = Conv2dOp { stride, padding: pad, block_elems, winograd };
            let (fwd, grads) = compare(
                &inputs,
                |v| conv2d_with(&v[0], &v[1], v.get(2), op),
                |v| conv2d_candle(&v[0], &v[1], v.get(2), stride, pad),
                seed + 3,
            );
            assert!(fwd < 1e-5, "{case:?}, {op:?}: y rel error {fwd:e}");
            for (name, error) in ["dx", "dw", "dbias"].iter().zip(grads) {
                assert!(error < 1e-5, "{case:?}, {op:?}: {name} rel error {error:e}");
            }
        }
    }

    #[test]
    fn winograd_tiles_match_candle_at_odd_sizes_and_paddings() {
        // Odd outputs (a last tile half outside), paddings 0 and 2 (Ho = H ∓ 2), one input
        // channel (conv_in of a grey-scale UNet), C ≠ O, and 5 images in blocks of 1 or 2.
        let cases = [
            (Case { b: 5, c: 3, o: 4, h: 7, w: 5, k: 3, stride: 1, pad: 1, bias: true }, 1),
            (Case { b: 2, c: 4, o: 2, h: 9, w: 6, k: 3, stride: 1, pad: 0, bias: true }, IM2COL_BLOCK_ELEMS),
            (Case { b: 3, c: 2, o: 5, h: 3, w: 4, k: 3, stride: 1, pad: 2, bias: false }, IM2COL_BLOCK_ELEMS),
            (Case { b: 5, c: 1, o: 8, h: 28, w: 28, k: 3, stride: 1, pad: 1, bias: true }, 4 * 16 * 8 * 14 * 14 * 2),
            (Case { b: 2, c: 6, o: 3, h: 4, w: 4, k: 3, stride: 1, pad: 1, bias: true }, IM2COL_BLOCK_ELEMS),
        ];
        for (i, (case, block)) in cases.into_iter().enumerate() {
            compare_blocked_with_candle(case, block, 120 + 10 * i as u64);
        }
    }

    #[test]
    fn three_by_three_same_padding_matches_candle() {
        compare_with_candle(Case { b: 2, c: 5, o: 6, h: 8, w: 8, k: 3, stride: 1, pad: 1, bias: true }, 10);
    }

    #[test]
    fn stride_two_downsample_matches_candle() {
        compare_with_candle(Case { b: 2, c: 4, o: 3, h: 8, w: 8, k: 3, stride: 2, pad: 1, bias: true }, 20);
        // diffusers' `downsample_padding = 0` variant (after its own right/bottom padding).
        compare_with_candle(Case { b: 2, c: 3, o: 4, h: 9, w: 9, k: 3, stride: 2, pad: 0, bias: true }, 21);
    }

    #[test]
    fn one_by_one_matches_candle() {
        compare_with_candle(Case { b: 3, c: 6, o: 4, h: 5, w: 5, k: 1, stride: 1, pad: 0, bias: true }, 30);
    }

    #[test]
    fn odd_shapes_match_candle() {
        // H ≠ W, odd sizes, stride 2 with an odd input (the last row/column is partly unused).
        // candle's own backward fails ("shape mismatch in add") when (H + 2p − k) mod s differs
        // from (W + 2p − k) mod s (it derives conv_transpose2d's output padding from H alone), so
        // those shapes are checked against finite differences only (H 4, W 5, stride 2 below).
        compare_with_candle(Case { b: 3, c: 3, o: 5, h: 7, w: 5, k: 3, stride: 2, pad: 1, bias: true }, 40);
        compare_with_candle(Case { b: 1, c: 2, o: 3, h: 5, w: 9, k: 3, stride: 1, pad: 1, bias: true }, 41);
        compare_with_candle(Case { b: 2, c: 3, o: 2, h: 6, w: 9, k: 5, stride: 3, pad: 2, bias: false }, 42);
        compare_with_candle(Case { b: 2, c: 2, o: 3, h: 3, w: 4, k: 3, stride: 1, pad: 2, bias: true }, 43);
        // Stride 1 with p ≥ k: no input-gradient convolution (p′ < 0), dX̃ and col2im instead.
        compare_with_candle(Case { b: 2, c: 3, o: 4, h: 4, w: 5, k: 1, stride: 1, pad: 1, bias: true }, 44);
        compare_with_candle(Case { b: 2, c: 2, o: 3, h: 3, w: 3, k: 2, stride: 1, pad: 2, bias: true }, 45);
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // 3×3 same (Winograd products, dUᵀ summed over blocks), stride 2 (im2col and col2im),
        // 5 images in blocks of 2, 2, 1.
        for (stride, seed) in [(1, 110), (2, 111)] {
            let inputs = [
                randn(&[5, 8, 16, 16], DType::F32, seed),
                randn(&[8, 8, 3, 3], DType::F32, seed + 1),
                randn(&[8], DType::F32, seed + 2),
            ];
            assert_independent_of_thread_count(&inputs, |v| conv2d(&v[0], &v[1], Some(&v[2]), stride, 1), seed + 3);
        }
    }

    #[test]
    fn large_enough_for_the_parallel_paths_matches_candle() {
        // X̃ is 8·9 × 2·256 ≥ 2¹⁵ elements, so im2col, col2im and dỸ run on rayon.
        compare_with_candle(Case { b: 2, c: 8, o: 8, h: 16, w: 16, k: 3, stride: 1, pad: 1, bias: true }, 50);
    }

    #[test]
    fn blocks_of_images_match_candle() {
        // X̃ of one image is 4·9 × 36: blocks of 1, 2 and 2 + 1 images; with and without bias.
        let case = Case { b: 3, c: 4, o: 5, h: 6, w: 6, k: 3, stride: 1, pad: 1, bias: true };
        for (block, seed) in [(1, 100), (2 * 4 * 9 * 36, 101), (4 * 9 * 36 + 1, 102)] {
            compare_blocked_with_candle(case, block, seed);
            compare_blocked_with_candle(Case { bias: false, stride: 2, ..case }, block, seed + 10);
        }
    }

    /// Central finite differences of `loss = Σ y·r` in f64 against the analytic gradients, on
    /// (2, 2, 4, 5) → 3 channels, 3×3 and 1×1, including strides where candle's reference
    /// backward fails, and odd outputs of the Winograd tiles.
    #[test]
    fn gradients_match_finite_differences_in_f64() {
        // 3×3 at stride 1 as Winograd products (paddings 1, 0 and 2) and through im2col.
        for (k, stride, pad, seed) in
            [(3, 1, 1, 60), (3, 2, 1, 61), (3, 2, 0, 62), (1, 1, 0, 63), (3, 1, 0, 64), (3, 1, 2, 65)]
        {
            for winograd in [Winograd::Always, Winograd::Never] {
                let (b, c, o, h, w) = (2, 2, 3, 4, 5);
                let inputs = [
                    randn(&[b, c, h, w], DType::F64, seed),
                    randn(&[o, c, k, k], DType::F64, seed + 1),
                    randn(&[o], DType::F64, seed + 2),
                ];
                let op = Conv2dOp { stride, padding: pad, block_elems: IM2COL_BLOCK_ELEMS, winograd };
                let errors =
                    finite_difference_errors(&inputs, |v| conv2d_with(&v[0], &v[1], Some(&v[2]), op), seed + 3);
                assert!(errors.iter().all(|&e| e < 1e-7), "{k}×{k} stride {stride} pad {pad}, {op:?}: {errors:?}");
            }
        }
    }

    #[test]
    fn gradients_reach_only_tracked_arguments() {
        // Every subset of tracked arguments, blocked, pointwise and Winograd paths (3×3 at
        // stride 1: 3 images of 3 × 4 tiles, above no threshold but 0): the gradients present
        // are candle's, the others absent.
        for (k, stride, pad) in [(3, 2, 1), (1, 1, 0), (3, 1, 1)] {
            for tracked in 1..8u32 {
                let track = |i: u32, t: Tensor| {
                    if tracked & (1 << i) != 0 { Var::from_tensor(&t).unwrap().into_inner() } else { t }
                };
                let x = track(0, randn(&[3, 2, 5, 7], DType::F32, 73));
                let weight = track(1, randn(&[4, 2, k, k], DType::F32, 74));
                let beta = track(2, randn(&[4], DType::F32, 75));
                let op = Conv2dOp { stride, padding: pad, block_elems: IM2COL_BLOCK_ELEMS, winograd: Winograd::Always };
                let ours = conv2d_with(&x, &weight, Some(&beta), op).unwrap();
                let reference = conv2d_candle(&x, &weight, Some(&beta), stride, pad).unwrap();
                let r = randn(reference.dims(), DType::F32, 76);
                let grads_ours = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
                let grads_ref = (&reference * &r).unwrap().sum_all().unwrap().backward().unwrap();
                for (i, t) in [&x, &weight, &beta].into_iter().enumerate() {
                    assert_eq!(grads_ours.get(t).is_some(), tracked & (1 << i) != 0, "{k}×{k}, tracked {tracked:03b}");
                    if let Some(grad) = grads_ours.get(t) {
                        assert!(
                            rel_err(grad, grads_ref.get(t).unwrap()) < 1e-5,
                            "{k}×{k}, tracked {tracked:03b}, arg {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn unsupported_dtypes_and_bad_shapes_are_errors() {
        let x = randn(&[1, 2, 4, 4], DType::F32, 80);
        let weight = randn(&[3, 2, 3, 3], DType::F32, 81);
        let first_line = |e: candle_core::Error| e.to_string().lines().next().unwrap_or_default().to_string();
        let half = conv2d(&x.to_dtype(DType::F16).unwrap(), &weight.to_dtype(DType::F16).unwrap(), None, 1, 1);
        assert!(first_line(half.unwrap_err()).contains("unsupported dtype F16"));
        let mixed = conv2d(&x, &weight.to_dtype(DType::F64).unwrap(), None, 1, 1);
        assert!(first_line(mixed.unwrap_err()).contains("dtype"));
        let wrong_channels = conv2d(&x, &randn(&[3, 5, 3, 3], DType::F32, 82), None, 1, 1);
        assert!(first_line(wrong_channels.unwrap_err()).contains("channels"));
        let wrong_bias = conv2d(&x, &weight, Some(&randn(&[4], DType::F32, 83)), 1, 1);
        assert!(first_line(wrong_bias.unwrap_err()).contains("bias"));
        assert!(conv2d(&x, &weight, None, 0, 1).is_err());
        assert!(conv2d(&x, &randn(&[3, 2, 7, 7], DType::F32, 84), None, 1, 1).is_err());
        assert!(conv2d(&x.flatten_from(D::Minus2).unwrap(), &weight, None, 1, 1).is_err());
    }

    #[test]
    fn non_contiguous_inputs_are_accepted() {
        let x = randn(&[2, 3, 5, 6], DType::F32, 90).transpose(2, 3).unwrap();
        let weight = randn(&[4, 3, 3, 3], DType::F32, 91);
        let ours = conv2d(&x, &weight, None, 1, 1).unwrap();
        assert!(rel_err(&ours, &conv2d_candle(&x, &weight, None, 1, 1).unwrap()) < 1e-5);
    }
}
