//! One residual block of the paper's MLP on a chunk of rows, forward and backward.
//!
//! The arithmetic of [`crate::residual_mlp`], the fused MLP: it runs these functions chunk by
//! chunk, with a chunk's (rows × D) intermediates in cache between the block's two matrix
//! products, and keeps `a`, `x̂` and `ρ` for the backward. `u` and `g = a·Φ(a)` are recomputed
//! there, `g` from the same `Φ(a)` that `GELU′` needs.
//!
//! # Notation
//!
//! | symbol | meaning | shape |
//! |---|---|---|
//! | `h` | block input | N × D |
//! | `e` | noise-level embedding | N × D |
//! | `W₁, W₂` | weights, stored `out × in` as in candle's `Linear` | D × D |
//! | `b₁, b₂, γ, β` | biases, layer-norm scale and shift | D |
//! | `Φ, φ` | standard normal CDF and density | |
//!
//! # Forward
//!
//! ```text
//! u = h + e
//! a = u·W₁ᵀ + b₁
//! g = GELU(a) = a·Φ(a)
//! r = h + g·W₂ᵀ + b₂
//! y = x̂·γ + β,   x̂ = (r − μ)·ρ,   μ, σ² the row's mean and (biased) variance, ρ = 1/√(σ² + ε)
//! ```
//!
//! # Backward
//!
//! With `dy = ∂L/∂y`, and means taken over a row:
//!
//! ```text
//! dγ = Σ_rows dy ⊙ x̂               dβ = Σ_rows dy
//! dr = ρ·(dy⊙γ − mean(dy⊙γ) − x̂·mean(dy⊙γ⊙x̂))
//! dW₂ = drᵀ·g    db₂ = Σ_rows dr    dg = dr·W₂
//! da = dg ⊙ GELU′(a),   GELU′(a) = Φ(a) + a·φ(a)
//! dW₁ = daᵀ·u    db₁ = Σ_rows da    du = da·W₁
//! dh = dr + du   de = du
//! ```
//!
//! A block's parameters are packed as `[W₁, b₁, W₂, b₂, γ, β]` (`Packing`).

use candle_core::{CpuStorage, Tensor, bail};

use crate::Activation;
use crate::activation::bias_act;
use crate::matmul::{Buffer, Mat, matmul};
use crate::norm::layer_norm_composed;
use crate::norm::moments;
use crate::numerics::{ColumnSums, Real, dot, sum};

const NAME: &str = "residual_block";

/// The parameters of one block, as candle's `Linear` and `LayerNorm` hold them.
#[derive(Clone, Copy, Debug)]
pub struct BlockParams<'a> {
    /// `W₁` (D × D, out × in).
    pub w1: &'a Tensor,
    /// `b₁` (D).
    pub b1: &'a Tensor,
    /// `W₂` (D × D, out × in).
    pub w2: &'a Tensor,
    /// `b₂` (D).
    pub b2: &'a Tensor,
    /// Layer-norm scale `γ` (D).
    pub gamma: &'a Tensor,
    /// Layer-norm shift `β` (D).
    pub beta: &'a Tensor,
}

impl BlockParams<'_> {
    /// Checks the shapes against `D = width`.
    pub(super) fn check(&self, width: usize) -> candle_core::Result<()> {
        for (name, t, want) in [
            ("w1", self.w1, vec![width, width]),
            ("b1", self.b1, vec![width]),
            ("w2", self.w2, vec![width, width]),
            ("b2", self.b2, vec![width]),
            ("gamma", self.gamma, vec![width]),
            ("beta", self.beta, vec![width]),
        ] {
            if t.dims() != want.as_slice() {
                bail!("{NAME}: {name} has shape {:?}, expected {want:?} for width {width}", t.dims());
            }
        }
        Ok(())
    }

    /// `[W₁, b₁, W₂, b₂, γ, β]`, each flattened, in packing order.
    pub(super) fn packed_parts(&self) -> candle_core::Result<Vec<Tensor>> {
        Ok(vec![
            self.w1.flatten_all()?,
            self.b1.clone(),
            self.w2.flatten_all()?,
            self.b2.clone(),
            self.gamma.clone(),
            self.beta.clone(),
        ])
    }
}

/// Offsets of a block's parameters inside its packed vector, for width `D`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Packing {
    pub(super) width: usize,
}

impl Packing {
    pub(super) fn w1(self) -> usize {
        0
    }
    pub(super) fn b1(self) -> usize {
        self.width * self.width
    }
    pub(super) fn w2(self) -> usize {
        self.b1() + self.width
    }
    pub(super) fn b2(self) -> usize {
        self.w2() + self.width * self.width
    }
    pub(super) fn gamma(self) -> usize {
        self.b2() + self.width
    }
    pub(super) fn beta(self) -> usize {
        self.gamma() + self.width
    }
    pub(super) fn len(self) -> usize {
        self.beta() + self.width
    }
}

/// The block composed from candle ops and the other kernels: the reference of the tests and
/// the path on non-CPU devices.
pub fn residual_block_composed(h: &Tensor, e: &Tensor, params: &BlockParams, eps: f64) -> candle_core::Result<Tensor> {
    let a = (h + e)?.matmul(&params.w1.t()?)?;
    let g = bias_act(&a, Some(params.b1), Some(Activation::Gelu))?;
    let update = g.matmul(&params.w2.t()?)?.broadcast_add(params.b2)?;
    layer_norm_composed(&(h + update)?, params.gamma, params.beta, eps)
}

/// A chunk's rows (rows × D) of the block input and the embedding.
#[derive(Clone, Copy)]
pub(super) struct Inputs<'a, T> {
    pub(super) h: &'a [T],
    pub(super) e: &'a [T],
}

/// One block's packed parameters, as slices and as matmul operands.
pub(super) struct Params<'a, T> {
    storage: &'a CpuStorage,
    offset: usize,
    pub(super) packing: Packing,
    values: &'a [T],
}

impl<'a, T: Real> Params<'a, T> {
    /// The block whose packed parameters start `offset` elements into `storage`.
    pub(super) fn new(storage: &'a CpuStorage, offset: usize, packing: Packing) -> candle_core::Result<Self> {
        let values = T::cpu_storage_as_slice(storage)?.get(offset..offset + packing.len());
        let Some(values) = values else { bail!("{NAME}: the packed parameters are too short") };
        Ok(Self { storage, offset, packing, values })
    }

    fn weight(&self, at: usize) -> Mat<'a> {
        let width = self.packing.width;
        Mat::new(self.storage, self.offset + at, (width, width))
    }

    pub(super) fn vector(&self, at: usize) -> &'a [T] {
        &self.values[at..at + self.packing.width]
    }
}

/// The arguments of [`forward_chunk`].
pub(super) struct ForwardChunk<'a, T> {
    pub(super) input: Inputs<'a, T>,
    pub(super) p: &'a Params<'a, T>,
    pub(super) eps: f64,
}

/// What [`forward_chunk`] computes for its rows: the block output `y`, and `a`, `x̂` (rows × D)
/// and `ρ` (rows) for the backward.
pub(super) struct Forward<T> {
    pub(super) y: Vec<T>,
    pub(super) pre_act: Vec<T>,
    pub(super) normalised: Vec<T>,
    pub(super) rstd: Vec<T>,
}

/// The forward of one chunk.
#[inline(always)]
pub(super) fn forward_chunk<T: Real>(
    ForwardChunk { input, p, eps }: ForwardChunk<T>,
) -> candle_core::Result<Forward<T>> {
    let (width, pk) = (p.packing.width, p.packing);
    let rows = input.h.len() / width;
    let mut work = Buffer(input.h.iter().zip(input.e).map(|(&h, &e)| h + e).collect::<Vec<T>>());
    // a = u·W₁ᵀ + b₁ in the product's own buffer; g = GELU(a) over u.
    let mut pre_act = work.lend(|u| matmul::<T>(1, Mat::new(u, 0, (rows, width)), p.weight(pk.w1()).t()))?;
    let b1 = p.vector(pk.b1());
    for (a_row, g_row) in pre_act.chunks_exact_mut(width).zip(work.0.chunks_exact_mut(width)) {
        for ((a, &b), g) in a_row.iter_mut().zip(b1).zip(g_row.iter_mut()) {
            *a += b;
            *g = *a * a.normal_cdf_pdf().0;
        }
    }
    // r = h + g·W₂ᵀ + b₂, normalised in place into x̂.
    let mut normalised = work.lend(|g| matmul::<T>(1, Mat::new(g, 0, (rows, width)), p.weight(pk.w2()).t()))?;
    let (b2, gamma, beta) = (p.vector(pk.b2()), p.vector(pk.gamma()), p.vector(pk.beta()));
    let mut y = vec![T::zero(); rows * width];
    let mut rstd = Vec::with_capacity(rows);
    for ((x_row, h_row), y_row) in
        normalised.chunks_exact_mut(width).zip(input.h.chunks_exact(width)).zip(y.chunks_exact_mut(width))
    {
        for ((r, &h), &b) in x_row.iter_mut().zip(h_row).zip(b2) {
            *r += h + b;
        }
        let (mean, inv_std) = moments(x_row, eps);
        rstd.push(inv_std);
        for (((y, x), &g), &b) in y_row.iter_mut().zip(x_row.iter_mut()).zip(gamma).zip(beta) {
            *x = (*x - mean) * inv_std;
            *y = *x * g + b;
        }
    }
    Ok(Forward { y, pre_act, normalised, rstd })
}

/// Parameter-gradient sums of one block over a group of chunks, in f64, packed like the
/// parameters.
pub(super) struct GradSums<T> {
    packing: Packing,
    weights: Vec<f64>,
    gamma: ColumnSums<T>,
    beta: ColumnSums<T>,
    b1: ColumnSums<T>,
    b2: ColumnSums<T>,
}

impl<T: Real> GradSums<T> {
    pub(super) fn new(packing: Packing) -> Self {
        let width = packing.width;
        Self {
            packing,
            weights: vec![0.0; packing.len()],
            gamma: ColumnSums::new(width),
            beta: ColumnSums::new(width),
            b1: ColumnSums::new(width),
            b2: ColumnSums::new(width),
        }
    }

    fn add_weight(&mut self, at: usize, partial: &[T]) {
        for (s, &v) in self.weights[at..at + partial.len()].iter_mut().zip(partial) {
            *s += v.to_f64();
        }
    }

    /// The block's gradient, packed like its parameters.
    pub(super) fn finish(self) -> Vec<f64> {
        let pk = self.packing;
        let mut total = self.weights;
        for (at, sums) in [(pk.b1(), self.b1), (pk.b2(), self.b2), (pk.gamma(), self.gamma), (pk.beta(), self.beta)] {
            total[at..at + pk.width].copy_from_slice(&sums.finish());
        }
        total
    }
}

/// Everything the backward of a chunk reads: inputs, kept values and `dy` (rows × D; `ρ` rows).
pub(super) struct ChunkGrad<'a, T> {
    pub(super) input: Inputs<'a, T>,
    pub(super) pre_act: &'a [T],
    pub(super) normalised: &'a [T],
    pub(super) rstd: &'a [T],
    pub(super) dy: &'a [T],
}

/// The arguments of [`backward_chunk`].
pub(super) struct BackwardChunk<'a, 'b, T> {
    pub(super) c: ChunkGrad<'a, T>,
    pub(super) p: &'a Params<'a, T>,
    pub(super) sums: &'b mut GradSums<T>,
    pub(super) dh: &'b mut [T],
    pub(super) de: Option<&'b mut [T]>,
}

/// The backward of one chunk: writes `dh` (and `de`), adds its parameter gradients to `sums`.
#[inline(always)]
pub(super) fn backward_chunk<T: Real>(
    BackwardChunk { c, p, sums, dh, de }: BackwardChunk<T>,
) -> candle_core::Result<()> {
    let (width, pk) = (p.packing.width, p.packing);
    let rows = dh.len() / width;
    let inv_width = 1.0 / width as f64;
    let gamma = p.vector(pk.gamma());
    // dr, from the layer norm's backward.
    let mut dr = Buffer(vec![T::zero(); dh.len()]);
    for (((dr_row, dy_row), x_row), &rstd) in
        dr.0.chunks_exact_mut(width).zip(c.dy.chunks_exact(width)).zip(c.normalised.chunks_exact(width)).zip(c.rstd)
    {
        for ((s, &dy), &x) in sums.gamma.fast_mut().iter_mut().zip(dy_row).zip(x_row) {
            *s += dy * x;
        }
        sums.gamma.row_done();
        sums.beta.add_row(dy_row);
        for ((d, &dy), &g) in dr_row.iter_mut().zip(dy_row).zip(gamma) {
            *d = dy * g;
        }
        let mean = T::from_f64(sum(dr_row) * inv_width);
        let mean_x = T::from_f64(dot(dr_row, x_row) * inv_width);
        for (d, &x) in dr_row.iter_mut().zip(x_row) {
            *d = rstd * (*d - mean - x * mean_x);
        }
        sums.b2.add_row(dr_row);
    }
    // g = GELU(a) and GELU′(a), from one Φ(a).
    let mut g = Buffer(vec![T::zero(); dh.len()]);
    let mut gelu_grad = vec![T::zero(); dh.len()];
    for ((&a, g), gp) in c.pre_act.iter().zip(g.0.iter_mut()).zip(gelu_grad.iter_mut()) {
        let (cdf, pdf) = a.normal_cdf_pdf();
        *g = a * cdf;
        *gp = cdf + a * pdf;
    }
    let d_w2 =
        dr.lend(|dr| g.lend(|g| matmul::<T>(1, Mat::new(dr, 0, (rows, width)).t(), Mat::new(g, 0, (rows, width)))))?;
    sums.add_weight(pk.w2(), &d_w2);
    let mut da = Buffer(dr.lend(|dr| matmul::<T>(1, Mat::new(dr, 0, (rows, width)), p.weight(pk.w2())))?);
    for (da_row, gp_row) in da.0.chunks_exact_mut(width).zip(gelu_grad.chunks_exact(width)) {
        for (d, &gp) in da_row.iter_mut().zip(gp_row) {
            *d *= gp;
        }
        sums.b1.add_row(da_row);
    }
    // u = h + e, into g's buffer.
    for ((u, &h), &e) in g.0.iter_mut().zip(c.input.h).zip(c.input.e) {
        *u = h + e;
    }
    let d_w1 =
        da.lend(|da| g.lend(|u| matmul::<T>(1, Mat::new(da, 0, (rows, width)).t(), Mat::new(u, 0, (rows, width)))))?;
    sums.add_weight(pk.w1(), &d_w1);
    let du = da.lend(|da| matmul::<T>(1, Mat::new(da, 0, (rows, width)), p.weight(pk.w1())))?;
    for ((dh, &dr), &du) in dh.iter_mut().zip(&dr.0).zip(&du) {
        *dh = dr + du;
    }
    if let Some(de) = de {
        de.copy_from_slice(&du);
    }
    Ok(())
}
