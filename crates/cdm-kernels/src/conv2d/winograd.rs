//! 3×3 stride-1 convolutions by Winograd's minimal filtering F(2×2, 3×3), forward and backward.
//!
//! A 2×2 block of outputs of a 3×3 correlation needs 36 multiplications per channel pair
//! computed directly, 16 in Winograd's form: the input's 4×4 tile and the 3×3 filter are
//! each transformed into a 4×4 array, multiplied elementwise, and the product transformed back.
//! Summed over input channels, the 16 elementwise products are 16 matrix products, 2.25× fewer
//! flops than im2col's one product. The backward pass uses the adjoints of the same
//! transforms, so it is 2.25× cheaper too.
//!
//! # Notation
//!
//! | symbol | meaning | shape |
//! |---|---|---|
//! | `x`, `w`, `β`, `y` | input, weight, bias, output as in [`super`] | (B,C,H,W), (O,C,3,3), O, (B,O,Ho,Wo) |
//! | `p` | zero padding; `Ho = H + 2p − 2`, `Wo = W + 2p − 2` | |
//! | `t = (b, ty, tx)` | output tile: outputs `y[b, ·, 2ty + i, 2tx + j]`, `i, j ∈ {0, 1}` | `T = B·⌈Ho/2⌉·⌈Wo/2⌉` tiles |
//! | `d_{c,t}` | input tile: `x[b, c, 2ty − p + r, 2tx − p + s]`, `r, s ∈ 0..4` (0 outside) | 4×4 |
//! | `ξ = (r, s)` | one of the 16 Winograd positions | |
//!
//! ```text
//! Bᵀ = ⎡1  0 −1  0⎤     G = ⎡ 1   0   0 ⎤     Aᵀ = ⎡1 1  1  0⎤
//!      ⎢0  1  1  0⎥         ⎢ ½   ½   ½ ⎥          ⎣0 1 −1 −1⎦
//!      ⎢0 −1  1  0⎥         ⎢ ½  −½   ½ ⎥
//!      ⎣0  1  0 −1⎦         ⎣ 0   0   1 ⎦
//! ```
//!
//! # Forward
//!
//! `V` and the gradients of `M` are stored tile-major, `(T, 16, C)`: `V[ξ]` is a strided
//! (T × C) view, which the GEMM reads without packing.
//!
//! ```text
//! U[ξ][o, c] = (G·w[o, c]·Gᵀ)[ξ]           filter transform       (16, O, C)
//! V[ξ][t, c] = (Bᵀ·d_{c,t}·B)[ξ]           input transform        (T, 16, C)
//! Mᵀ[ξ]      = V[ξ] · U[ξ]ᵀ                16 matrix products     (16, T, O)
//! y-tile[o, t] = Aᵀ·M[·][o, t]·A + β[o]    output transform       2×2, clipped to Ho × Wo
//! ```
//!
//! # Backward
//!
//! `y` is linear in `U` and `V`, so with `dy` the gradient of the loss:
//!
//! ```text
//! dM[ξ][t, o] = (A·dy-tile[o, t]·Aᵀ)[ξ]     (dy = 0 beyond Ho × Wo)          (T, 16, O)
//! dU[ξ]ᵀ     = V[ξ]ᵀ · dM[ξ]                                              (16, C, O)
//! dw[o, c]   = Gᵀ·dU[·][o, c]·G                                           3×3
//! dV[ξ]      = dM[ξ] · U[ξ]                                               (16, T, C)
//! dx        += B·dV[·][t, c]·Bᵀ  on the 4×4 input tile of t (tiles overlap by 2; padding dropped)
//! dβ[o]      = Σ dy[·, o, ·, ·]
//! ```
//!
//! The one-dimensional maps applied along rows and columns, for a 4-vector `d` and 2-vector `z`:
//! `Bᵀd = (d₀ − d₂, d₁ + d₂, d₂ − d₁, d₁ − d₃)`, `Bv = (v₀, v₁ − v₂ + v₃, v₁ + v₂ − v₀, −v₃)`,
//! `Gg = (g₀, (g₀ + g₁ + g₂)/2, (g₀ − g₁ + g₂)/2, g₂)`, `Gᵀu = (u₀ + (u₁ + u₂)/2, (u₁ − u₂)/2,
//! (u₁ + u₂)/2 + u₃)`, `Aᵀm = (m₀ + m₁ + m₂, m₁ − m₂ − m₃)`, `Az = (z₀, z₀ + z₁, z₀ − z₁, −z₁)`.
//! All coefficients are 0, ±1 and ±½, exact in floating point; F(2×2, 3×3) rounds about as
//! direct summation does (larger tiles, F(4×4, 3×3), would save more and round much worse).
//!
//! Lavin & Gray, *Fast Algorithms for Convolutional Neural Networks*, CVPR 2016.
//!
//! # Implementation
//!
//! As for im2col ([`super`]), images go through in blocks, each block's whole chain on one
//! rayon thread; block boundaries depend on the shapes only, and the weight gradient sums the
//! blocks' `dUᵀ` in block order, so results do not depend on the thread count. A block's 16
//! products are one batched matmul. The transforms work on a channels-last copy of the block
//! (`x` and `dy` in; `y` and `dx` out): a pixel's values are then a contiguous vector over the
//! channels, so every transform is a few elementwise passes over such vectors, each a
//! [`vectorized`] loop. Where a pass can cover a whole row of tiles, it does: one long loop
//! instead of one short one per tile, and each column is transformed once rather than twice.
//! That is the first pass of the input and output-gradient transforms, whose tiles read whole
//! rows of the grid, and the last pass of the input-gradient transform, whose windows add onto
//! them (a block of two 32-channel 28×28 images: input transform 60 → 42 µs, output-gradient
//! transform 44 → 35 µs, input-gradient transform 63 → 51 µs). The output transform stays
//! per tile: its row form, which writes the tiles' rows into scratch rows before the long
//! pass, measured 5 % slower. Leaving `V` and `dM` uninitialised rather than zero-filled made
//! the transforms 10–25 % faster alone but a UNet training step 10 % slower: the buffers are
//! cold in a real step, and the zero-fill's streaming stores bring them into the cache faster
//! than the transforms' scattered ones. In the orientations above, with both operands of the
//! weight gradient's products reduced along rows, the GEMMs ran 1.2–3× faster than with
//! `(16, C, T)` layouts.

use candle_core::{Result, WithDType};
use rayon::prelude::*;

use super::{Geometry, gradients_by_block};
use crate::matmul::{Mat, matmul};
use crate::numerics::sum;
use crate::simd::{Simd, WithSimd, vectorized};

/// Winograd positions `ξ`: a 4×4 tile.
const POSITIONS: usize = 16;

/// Whether the convolution is one this module computes: a 3×3 kernel at stride 1, with at
/// least `min_tiles` output tiles over the batch.
pub(super) fn applies(g: &Geometry, min_tiles: usize) -> bool {
    (g.kh, g.kw, g.stride) == (3, 3, 1) && g.b * Tiles::new(g).per_image() >= min_tiles
}

/// The tiling of one convolution's output into 2×2 tiles.
#[derive(Clone, Copy, Debug)]
struct Tiles {
    /// Tile rows and columns per image, `⌈Ho/2⌉` and `⌈Wo/2⌉`.
    rows: usize,
    cols: usize,
}

impl Tiles {
    fn new(g: &Geometry) -> Self {
        Self { rows: g.ho.div_ceil(2), cols: g.wo.div_ceil(2) }
    }

    /// The tiles `(b, ty, tx)` of `images` images, in order `t`.
    #[inline(always)]
    fn of(self, images: usize) -> impl Iterator<Item = (usize, usize, usize)> {
        let per_image = self.per_image();
        (0..images * per_image).map(move |t| (t / per_image, (t % per_image) / self.cols, t % self.cols))
    }

    /// The rows of tiles `(b, ty)` of `images` images, in order `t`.
    #[inline(always)]
    fn rows_of(self, images: usize) -> impl Iterator<Item = (usize, usize)> {
        (0..images).flat_map(move |b| (0..self.rows).map(move |ty| (b, ty)))
    }

    /// Tiles per image.
    fn per_image(&self) -> usize {
        self.rows * self.cols
    }

    /// The padded input grid the tiles read: `2·rows + 2` by `2·cols + 2`, input pixel `(i, j)`
    /// at `(i + p, j + p)` (which fits, since `Ho = H + 2p − 2 ≤ 2·rows`).
    fn input_grid(&self) -> (usize, usize) {
        (2 * self.rows + 2, 2 * self.cols + 2)
    }
}

/// One pass of this module over a block, run as a [`vectorized`] kernel: its loops compiled for
/// the widest SIMD (every function it calls is `#[inline(always)]`).
trait Pass {
    type Output;
    fn run(self) -> Self::Output;
}

/// The [`WithSimd`] adapter of a [`Pass`].
struct Wide<P>(P);

impl<P: Pass> WithSimd for Wide<P> {
    type Output = P::Output;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> P::Output {
        self.0.run()
    }
}

/// `V` of a block of input images (nb, C, H, W): [`transform_input`] of their padded
/// channels-last copy.
struct InputTiles<'a, T> {
    x: &'a [T],
    g: &'a Geometry,
    tiles: Tiles,
}

impl<T: WithDType> Pass for InputTiles<'_, T> {
    type Output = Vec<T>;

    #[inline(always)]
    fn run(self) -> Vec<T> {
        let Self { x, g, tiles } = self;
        let padded = ChannelsLast::from_planes(x, (g.c, g.h, g.w), g.pad, tiles.input_grid());
        transform_input(&padded, x.len() / g.image(), tiles)
    }
}

/// A block's output (nb, O, Ho, Wo) from `Mᵀ`: [`transform_output`], then back to planes.
struct OutputFromTiles<'a, T> {
    m: &'a [T],
    bias: Option<&'a [T]>,
    y: &'a mut [T],
    g: &'a Geometry,
    tiles: Tiles,
}

impl<T: WithDType> Pass for OutputFromTiles<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self { m, bias, y, g, tiles } = self;
        let mut out = ChannelsLast::zeros(y.len() / (g.o * g.n()), 2 * tiles.rows, 2 * tiles.cols, g.o);
        transform_output(m, bias, &mut out, tiles);
        out.to_planes(0, (g.ho, g.wo), y);
    }
}

/// `dM` of a block's `dy` (nb, O, Ho, Wo): [`transform_output_gradient`] of its channels-last
/// copy.
struct OutputGradientTiles<'a, T> {
    dy: &'a [T],
    g: &'a Geometry,
    tiles: Tiles,
}

impl<T: WithDType> Pass for OutputGradientTiles<'_, T> {
    type Output = Vec<T>;

    #[inline(always)]
    fn run(self) -> Vec<T> {
        let Self { dy, g, tiles } = self;
        let images = dy.len() / (g.o * g.n());
        let dy = ChannelsLast::from_planes(dy, (g.o, g.ho, g.wo), 0, (2 * tiles.rows, 2 * tiles.cols));
        transform_output_gradient(&dy, images, tiles)
    }
}

/// A block's `dx` (nb, C, H, W) from `dV`: [`transform_input_gradient`] onto a padded
/// channels-last grid, then its interior back to planes.
struct InputGradientFromTiles<'a, T> {
    d_v: &'a [T],
    dx: &'a mut [T],
    g: &'a Geometry,
    tiles: Tiles,
}

impl<T: WithDType> Pass for InputGradientFromTiles<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self { d_v, dx, g, tiles } = self;
        let (rows, cols) = tiles.input_grid();
        let mut padded = ChannelsLast::zeros(dx.len() / g.image(), rows, cols, g.c);
        transform_input_gradient(d_v, &mut padded, tiles);
        padded.to_planes(g.pad, (g.h, g.w), dx);
    }
}

/// Images per block: as in im2col ([`Geometry::images_per_block`]), with the block's `V` or
/// `M` (16·max(C, O) per tile) as its largest buffer, and a quarter of im2col's target size:
/// 2¹⁸ f32 elements, 1 MiB, a core's L2 cache on the machines we measured (blocks of 2¹⁹ and
/// 2²⁰ were up to 10 % slower at 32×32, 64 channels).
fn images_per_block(g: &Geometry, block_elems: usize) -> usize {
    let per_image = POSITIONS * g.c.max(g.o) * Tiles::new(g).per_image();
    g.images_per_block(per_image, block_elems / 4)
}

/// `U[ξ][o, c] = (G·w[o, c]·Gᵀ)[ξ]`, (16, O, C).
fn transform_filter<T: WithDType>(w: &[T], g: &Geometry) -> Vec<T> {
    let half = T::from_f64(0.5);
    let g_times = |v: [T; 3]| [v[0], (v[0] + v[1] + v[2]) * half, (v[0] - v[1] + v[2]) * half, v[2]];
    let pairs = g.o * g.c;
    let mut u = vec![T::zero(); POSITIONS * pairs];
    for (pair, k) in w.chunks_exact(9).enumerate() {
        // G·w along the columns of each kernel row, then along the rows.
        let rows = [0, 1, 2].map(|i| g_times([k[3 * i], k[3 * i + 1], k[3 * i + 2]]));
        for s in 0..4 {
            let column = g_times([rows[0][s], rows[1][s], rows[2][s]]);
            for (r, value) in column.into_iter().enumerate() {
                u[(4 * r + s) * pairs + pair] = value;
            }
        }
    }
    u
}

/// `dw[o, c] = Gᵀ·dU[·][o, c]·G` from `dUᵀ` (16, C, O).
fn filter_gradient<T: WithDType>(d_u_t: &[T], g: &Geometry) -> Vec<T> {
    let half = T::from_f64(0.5);
    let g_t_times = |u: [T; 4]| [u[0] + (u[1] + u[2]) * half, (u[1] - u[2]) * half, (u[1] + u[2]) * half + u[3]];
    let pairs = g.o * g.c;
    let mut d_w = vec![T::zero(); 9 * pairs];
    for o in 0..g.o {
        for c in 0..g.c {
            let at = |r: usize, s: usize| d_u_t[(4 * r + s) * pairs + c * g.o + o];
            let rows = [0, 1, 2, 3].map(|r| g_t_times([at(r, 0), at(r, 1), at(r, 2), at(r, 3)]));
            let k = &mut d_w[(o * g.c + c) * 9..][..9];
            for j in 0..3 {
                let column = g_t_times([rows[0][j], rows[1][j], rows[2][j], rows[3][j]]);
                for (i, value) in column.into_iter().enumerate() {
                    k[3 * i + j] = value;
                }
            }
        }
    }
    d_w
}

/// Channel vectors of one tile: `N` slices of equal length.
type Vectors<'a, T, const N: usize> = [&'a [T]; N];

/// `N` disjoint consecutive `len`-element pieces of `values`.
fn split<T, const N: usize>(values: &mut [T], len: usize) -> [&mut [T]; N] {
    let mut pieces = values.chunks_exact_mut(len);
    std::array::from_fn(|_| pieces.next().expect("N pieces of len"))
}

/// `out = Bᵀ·d`, elementwise over channel vectors:
/// `(d₀ − d₂, d₁ + d₂, d₂ − d₁, d₁ − d₃)`.
#[inline(always)]
fn apply_bt<T: WithDType>(d: Vectors<T, 4>, out: [&mut [T]; 4]) {
    let n = out[0].len();
    let [d0, d1, d2, d3] = d.map(|v| &v[..n]);
    let [o0, o1, o2, o3] = out.map(|v| &mut v[..n]);
    for ch in 0..n {
        o0[ch] = d0[ch] - d2[ch];
        o1[ch] = d1[ch] + d2[ch];
        o2[ch] = d2[ch] - d1[ch];
        o3[ch] = d1[ch] - d3[ch];
    }
}

/// `out += B·v` (`B·v` the adjoint of [`apply_bt`]): `(v₀, v₁ − v₂ + v₃, v₁ + v₂ − v₀, −v₃)`.
#[inline(always)]
fn add_b<T: WithDType>(v: Vectors<T, 4>, out: [&mut [T]; 4]) {
    let n = out[0].len();
    let [v0, v1, v2, v3] = v.map(|v| &v[..n]);
    let [o0, o1, o2, o3] = out.map(|v| &mut v[..n]);
    for ch in 0..n {
        o0[ch] += v0[ch];
        o1[ch] += v1[ch] - v2[ch] + v3[ch];
        o2[ch] += v1[ch] + v2[ch] - v0[ch];
        o3[ch] -= v3[ch];
    }
}

/// `out = Aᵀ·m + β`: `(m₀ + m₁ + m₂ + β, m₁ − m₂ − m₃ + β)`.
#[inline(always)]
fn apply_at<T: WithDType>(m: Vectors<T, 4>, beta: &[T], out: [&mut [T]; 2]) {
    let n = out[0].len();
    let [m0, m1, m2, m3] = m.map(|v| &v[..n]);
    let beta = &beta[..n];
    let [o0, o1] = out.map(|v| &mut v[..n]);
    for ch in 0..n {
        o0[ch] = m0[ch] + m1[ch] + m2[ch] + beta[ch];
        o1[ch] = m1[ch] - m2[ch] - m3[ch] + beta[ch];
    }
}

/// `out = A·z` (the adjoint of [`apply_at`]): `(z₀, z₀ + z₁, z₀ − z₁, −z₁)`.
#[inline(always)]
fn apply_a<T: WithDType>(z: Vectors<T, 2>, out: [&mut [T]; 4]) {
    let n = out[0].len();
    let [z0, z1] = z.map(|v| &v[..n]);
    let [o0, o1, o2, o3] = out.map(|v| &mut v[..n]);
    for ch in 0..n {
        o0[ch] = z0[ch];
        o1[ch] = z0[ch] + z1[ch];
        o2[ch] = z0[ch] - z1[ch];
        o3[ch] = T::zero() - z1[ch];
    }
}

/// A block of images in channels-last layout, `(images, rows, cols, channels)`, the layout the
/// transforms work in: the values of one pixel are a contiguous vector over the channels.
struct ChannelsLast<T> {
    values: Vec<T>,
    rows: usize,
    cols: usize,
    channels: usize,
}

impl<T: WithDType> ChannelsLast<T> {
    /// Zeros.
    fn zeros(images: usize, rows: usize, cols: usize, channels: usize) -> Self {
        Self { values: vec![T::zero(); images * rows * cols * channels], rows, cols, channels }
    }

    /// The planes `src` (images, channels, h, w), each pixel `(i, j)` moved to `(i + at, j + at)`
    /// of a zero `rows × cols` grid.
    #[inline(always)]
    fn from_planes(
        src: &[T],
        (channels, h, w): (usize, usize, usize),
        at: usize,
        (rows, cols): (usize, usize),
    ) -> Self {
        let images = src.len() / (channels * h * w);
        let mut out = Self::zeros(images, rows, cols, channels);
        for (b, image) in src.chunks_exact(channels * h * w).enumerate() {
            for i in 0..h {
                let row = &mut out.values[((b * rows + i + at) * cols + at) * channels..][..w * channels];
                for (c, plane) in image.chunks_exact(h * w).enumerate() {
                    for (pixel, &value) in row.chunks_exact_mut(channels).zip(&plane[i * w..][..w]) {
                        pixel[c] = value;
                    }
                }
            }
        }
        out
    }

    /// Writes pixels `(i + at, j + at)`, `i < h`, `j < w`, into the planes `dst` (images,
    /// channels, h, w).
    #[inline(always)]
    fn to_planes(&self, at: usize, (h, w): (usize, usize), dst: &mut [T]) {
        let channels = self.channels;
        for (b, image) in dst.chunks_exact_mut(channels * h * w).enumerate() {
            for i in 0..h {
                let row = &self.values[((b * self.rows + i + at) * self.cols + at) * channels..][..w * channels];
                for (c, plane) in image.chunks_exact_mut(h * w).enumerate() {
                    for (value, pixel) in plane[i * w..][..w].iter_mut().zip(row.chunks_exact(channels)) {
                        *value = pixel[c];
                    }
                }
            }
        }
    }

    /// Row `i` of image `b`: its pixels' channel vectors, one after another.
    #[inline(always)]
    fn row(&self, b: usize, i: usize) -> &[T] {
        &self.values[(b * self.rows + i) * self.cols * self.channels..][..self.cols * self.channels]
    }

    /// The channel vector of pixel `(i, j)` of image `b`, to write.
    #[inline(always)]
    fn pixel_mut(&mut self, b: usize, i: usize, j: usize) -> &mut [T] {
        &mut self.values[((b * self.rows + i) * self.cols + j) * self.channels..][..self.channels]
    }

    /// Rows `i .. i + N` of image `b`, to write.
    #[inline(always)]
    fn rows_mut<const N: usize>(&mut self, b: usize, i: usize) -> [&mut [T]; N] {
        let row = self.cols * self.channels;
        split(&mut self.values[(b * self.rows + i) * row..][..N * row], row)
    }
}

/// `V = Bᵀ·d·B` of every 4×4 input tile, tile-major: `(T, 16, C)`, position `ξ = (r, s)` of
/// tile `t` the channel vector at `(16t + 4r + s)·C`. `x` is zero-padded channels-last, input
/// pixel `(i, j)` at `(i + p, j + p)`.
///
/// `Bᵀ` down the columns runs once per row of tiles, over the four grid rows it reads, whole:
/// neighbouring tiles share two columns, and one long pass is faster than a short one per tile.
#[inline(always)]
fn transform_input<T: WithDType>(x: &ChannelsLast<T>, images: usize, tiles: Tiles) -> Vec<T> {
    let (c, row) = (x.channels, x.cols * x.channels);
    let mut v = vec![T::zero(); images * tiles.per_image() * POSITIONS * c];
    // Bᵀ down the columns: row r of the result at r·row, column j at j·C.
    let mut e = vec![T::zero(); 4 * row];
    for ((b, ty), out) in tiles.rows_of(images).zip(v.chunks_exact_mut(tiles.cols * POSITIONS * c)) {
        apply_bt(std::array::from_fn(|r| x.row(b, 2 * ty + r)), split(&mut e, row));
        for (tx, out) in out.chunks_exact_mut(POSITIONS * c).enumerate() {
            for (r, out) in out.chunks_exact_mut(4 * c).enumerate() {
                apply_bt(std::array::from_fn(|s| &e[r * row + (2 * tx + s) * c..][..c]), split(out, c));
            }
        }
    }
    v
}

/// `y = Aᵀ·M·A + β` of every tile, from `Mᵀ` (16, T, O), into channels-last `y` (images,
/// 2·rows, 2·cols, O). (Storing straight into the (O, Ho, Wo) planes instead was up to 30 %
/// slower at 32×32 and 16×16, where the planes' rows alias in the L1 cache.)
#[inline(always)]
fn transform_output<T: WithDType>(m: &[T], bias: Option<&[T]>, y: &mut ChannelsLast<T>, tiles: Tiles) {
    let o = y.channels;
    let count = m.len() / (POSITIONS * o);
    let zeros = vec![T::zero(); o];
    let bias = bias.unwrap_or(&zeros);
    // Aᵀ along the columns of the window: column s, output row i at (2s + i)·O; then the
    // 2×2 outputs, pixel (i, j) at (2i + j)·O.
    let (mut e, mut out) = (vec![T::zero(); 8 * o], vec![T::zero(); 4 * o]);
    for (t, (b, ty, tx)) in tiles.of(count / tiles.per_image()).enumerate() {
        for (s, e) in e.chunks_exact_mut(2 * o).enumerate() {
            apply_at(std::array::from_fn(|r| &m[((4 * r + s) * count + t) * o..][..o]), &zeros, split(e, o));
        }
        for (i, out) in out.chunks_exact_mut(2 * o).enumerate() {
            apply_at(std::array::from_fn(|s| &e[(2 * s + i) * o..][..o]), bias, split(out, o));
        }
        for (q, values) in out.chunks_exact(o).enumerate() {
            y.pixel_mut(b, 2 * ty + q / 2, 2 * tx + q % 2).copy_from_slice(values);
        }
    }
}

/// `dM = A·dy·Aᵀ` of every 2×2 output tile, tile-major `(T, 16, O)`, from channels-last `dy`
/// (images, 2·rows, 2·cols, O) (zero beyond Ho × Wo). `A` down the columns runs once per row
/// of tiles, over its two rows of `dy`, whole.
#[inline(always)]
fn transform_output_gradient<T: WithDType>(dy: &ChannelsLast<T>, images: usize, tiles: Tiles) -> Vec<T> {
    let (o, row) = (dy.channels, dy.cols * dy.channels);
    let mut d_m = vec![T::zero(); images * tiles.per_image() * POSITIONS * o];
    // A down the columns: row r of the result at r·row, column j at j·O.
    let mut e = vec![T::zero(); 4 * row];
    for ((b, ty), d_m) in tiles.rows_of(images).zip(d_m.chunks_exact_mut(tiles.cols * POSITIONS * o)) {
        apply_a(std::array::from_fn(|i| dy.row(b, 2 * ty + i)), split(&mut e, row));
        for (tx, d_m) in d_m.chunks_exact_mut(POSITIONS * o).enumerate() {
            for (r, out) in d_m.chunks_exact_mut(4 * o).enumerate() {
                apply_a(std::array::from_fn(|j| &e[r * row + (2 * tx + j) * o..][..o]), split(out, o));
            }
        }
    }
    d_m
}

/// Adds `B·dV·Bᵀ` of every tile, from `dV` (16, T, C), onto its 4×4 window of the padded
/// channels-last `dx` (tiles overlap by two rows and columns).
///
/// The adjoint of [`transform_input`]'s order: `B` along each tile's rows adds its window's
/// four columns into four rows for the whole row of tiles; `B` down the columns then runs once
/// per row of tiles over those rows, whole, and adds them onto the four rows of `dx`.
#[inline(always)]
fn transform_input_gradient<T: WithDType>(d_v: &[T], dx: &mut ChannelsLast<T>, tiles: Tiles) {
    let (c, row) = (dx.channels, dx.cols * dx.channels);
    let count = d_v.len() / (POSITIONS * c);
    // Row r of the windows at r·row, column j at j·C.
    let mut e = vec![T::zero(); 4 * row];
    for (row_of_tiles, (b, ty)) in tiles.rows_of(count / tiles.per_image()).enumerate() {
        e.fill(T::zero());
        for tx in 0..tiles.cols {
            let t = row_of_tiles * tiles.cols + tx;
            for (r, e) in e.chunks_exact_mut(row).enumerate() {
                let d_v = std::array::from_fn(|s| &d_v[((4 * r + s) * count + t) * c..][..c]);
                add_b(d_v, split(&mut e[2 * tx * c..][..4 * c], c));
            }
        }
        add_b(std::array::from_fn(|r| &e[r * row..][..row]), dx.rows_mut(b, 2 * ty));
    }
}

/// The forward pass `y = conv(x, w) + β` (B, O, Ho, Wo) of a convolution that [`applies`].
pub(super) fn forward<T: WithDType>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    g: &Geometry,
    block_elems: usize,
) -> Result<Vec<T>> {
    let tiles = Tiles::new(g);
    let u = T::to_cpu_storage_owned(transform_filter(w, g));
    let u = Mat::new(&u, 0, (g.o, g.c)).batched(g.o * g.c);
    let per_block = images_per_block(g, block_elems);
    let out_image = g.o * g.n();
    let mut y = vec![T::zero(); g.b * out_image];
    y.par_chunks_mut(per_block * out_image).enumerate().try_for_each(|(block, y)| {
        let images = y.len() / out_image;
        let count = images * tiles.per_image();
        let x = &x[block * per_block * g.image()..][..images * g.image()];
        let v = T::to_cpu_storage_owned(vectorized(Wide(InputTiles { x, g, tiles })));
        let v = Mat::new(&v, 0, (count, g.c)).with_row_stride(POSITIONS * g.c).batched(g.c);
        let m = matmul::<T>(POSITIONS, v, u.t())?;
        vectorized(Wide(OutputFromTiles { m: &m, bias, y, g, tiles }));
        Ok::<(), candle_core::Error>(())
    })?;
    Ok(y)
}

/// The backward pass of a convolution that [`applies`]: `(dx, dw, dβ)`, the first two when
/// asked for.
#[allow(clippy::type_complexity)]
pub(super) fn backward<T: WithDType>(
    x: &[T],
    w: &[T],
    dy: &[T],
    (need_x, need_w): (bool, bool),
    g: &Geometry,
    block_elems: usize,
) -> Result<(Option<Vec<T>>, Option<Vec<T>>, Vec<T>)> {
    let (tiles, n, zero) = (Tiles::new(g), g.n(), T::zero());
    let u = T::to_cpu_storage_owned(transform_filter(w, g));
    let u = Mat::new(&u, 0, (g.o, g.c)).batched(g.o * g.c);
    let per_block = images_per_block(g, block_elems);
    let (d_x, d_bias, d_u_t) = gradients_by_block(g, per_block, need_x, |start, images, d_x| {
        let count = images * tiles.per_image();
        let dy = &dy[start * g.o * n..][..images * g.o * n];
        let mut d_bias = vec![zero; g.o];
        for (q, plane) in dy.chunks_exact(n).enumerate() {
            d_bias[q % g.o] += T::from_f64(sum(plane));
        }
        let d_m = T::to_cpu_storage_owned(vectorized(Wide(OutputGradientTiles { dy, g, tiles })));
        let d_m = Mat::new(&d_m, 0, (count, g.o)).with_row_stride(POSITIONS * g.o).batched(g.o);
        let d_u_t = if need_w {
            let x = &x[start * g.image()..][..images * g.image()];
            let v = T::to_cpu_storage_owned(vectorized(Wide(InputTiles { x, g, tiles })));
            let v = Mat::new(&v, 0, (count, g.c)).with_row_stride(POSITIONS * g.c).batched(g.c);
            Some(matmul::<T>(POSITIONS, v.t(), d_m)?)
        } else {
            None
        };
        if let Some(d_x) = d_x {
            let d_v = matmul::<T>(POSITIONS, d_m, u)?;
            vectorized(Wide(InputGradientFromTiles { d_v: &d_v, dx: d_x, g, tiles }));
        }
        Ok((d_bias, d_u_t))
    })?;
    Ok((d_x, d_u_t.map(|d_u_t| filter_gradient(&d_u_t, g)), d_bias))
}
