//! The paper's residual MLP as one fused operation, forward and backward.
//!
//! Composed from candle ops, the residual MLP makes about a dozen passes over
//! (N × D) tensors per block in the forward and twice that in the backward, most of them
//! candle's single-threaded elementwise ops and its gradient accumulation (`zeros_like` + `add`
//! per gradient). Here the network from its input features to ε̂ is one candle custom op: rows
//! go through in chunks of `CHUNK_ROWS`, every layer of a chunk runs while its (rows × D)
//! activations are in cache, and only ε̂ and what the backward needs leave it.
//!
//! # Network
//!
//! With features `x` (N × F), embedding `e` (N × D) and `L` blocks
//! ([`crate::residual_block`] has each block's forward and backward):
//!
//! ```text
//! h₀ = x·W_inᵀ + b_in                      W_in: D × F
//! h_{k+1} = block_k(h_k, e)                k = 0 … L−1
//! ε̂ = h_L·W_outᵀ + b_out                   W_out: dim × D
//! ```
//!
//! and in the backward, with `dε̂ = ∂L/∂ε̂`:
//!
//! ```text
//! dW_out = dε̂ᵀ·h_L    db_out = Σ_rows dε̂    dh_L = dε̂·W_out
//! dh_k, de_k, d(block k) = block_kᵀ(dh_{k+1})                k = L−1 … 0
//! dW_in = dh₀ᵀ·x      db_in = Σ_rows dh₀     dx = dh₀·W_in    de = Σ_k de_k
//! ```
//!
//! # Implementation
//!
//! All parameters travel as one packed vector (a `cat`, whose backward hands each parameter its
//! slice of the packed gradient), so the op is a `CustomOp3(x, e, packed)`. The forward keeps
//! each block's `a`, `x̂` and `ρ` inside the op (candle keeps the op alive exactly as long as
//! the graph that can call its backward); the backward recomputes the block inputs,
//! `h₀` from `x` and `h_{k+1} = x̂_k·γ_k + β_k`.
//!
//! Chunks run on rayon's threads; within a chunk every product goes to candle's CPU matmul (the
//! `gemm` crate) on the calling thread, and the elementwise loops run `vectorized`. In the
//! backward, consecutive chunks form at most `MAX_GROUPS` groups; a group adds its chunks'
//! parameter gradients in f64 and the groups are added in order, so results do not depend on
//! the number of threads. `dx` and `de` are computed only for inputs that track gradients.
//! Gradients are first order (the backward is not itself differentiable).
//!
//! f32 and f64 on the CPU; on other devices [`residual_mlp`] is [`residual_mlp_composed`],
//! which is also the tests' reference.

use std::sync::{Mutex, PoisonError};

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::matmul::{Buffer, Mat, matmul};
use crate::numerics::{ColumnSums, Real};
use crate::parallel::add_in_order;
use crate::residual_block::{
    BackwardChunk, BlockParams, ChunkGrad, Forward, ForwardChunk, GradSums, Inputs, Packing, Params, backward_chunk,
    forward_chunk, residual_block_composed,
};
use crate::simd::{Simd, WithSimd, vectorized};
use crate::storage::{by_float_dtype, contiguous_slice, cpu_storage};

/// Rows per chunk: a chunk's (rows × D) activations stay in cache between its products.
const CHUNK_ROWS: usize = 256;

/// At most this many groups of chunks in the backward (each keeps its own parameter sums).
const MAX_GROUPS: usize = 16;

const NAME: &str = "residual_mlp";

/// The parameters of the whole network, as candle's `Linear` and `LayerNorm` hold them.
#[derive(Clone, Debug)]
pub struct MlpParams<'a> {
    /// `W_in` (D × F).
    pub input_weight: &'a Tensor,
    /// `b_in` (D).
    pub input_bias: &'a Tensor,
    /// The residual blocks, in order.
    pub blocks: Vec<BlockParams<'a>>,
    /// `W_out` (dim × D).
    pub output_weight: &'a Tensor,
    /// `b_out` (dim).
    pub output_bias: &'a Tensor,
}

impl MlpParams<'_> {
    /// The packing for `features` input columns, after checking every shape.
    fn packing(&self, features: usize) -> candle_core::Result<MlpPacking> {
        let &[width, f] = self.input_weight.dims() else {
            bail!("{NAME}: the input weight must be (D, F), got {:?}", self.input_weight.dims())
        };
        let &[out, w] = self.output_weight.dims() else {
            bail!("{NAME}: the output weight must be (dim, D), got {:?}", self.output_weight.dims())
        };
        if f != features || w != width || width == 0 {
            bail!(
                "{NAME}: input weight {:?} and output weight {:?} do not fit {features} features",
                self.input_weight.dims(),
                self.output_weight.dims()
            );
        }
        if self.input_bias.dims() != [width] || self.output_bias.dims() != [out] {
            bail!(
                "{NAME}: biases {:?} and {:?}, expected [{width}] and [{out}]",
                self.input_bias.dims(),
                self.output_bias.dims()
            );
        }
        for block in &self.blocks {
            block.check(width)?;
        }
        Ok(MlpPacking { features, width, blocks: self.blocks.len(), out })
    }

    /// Every parameter flattened into one vector, in packing order.
    fn packed(&self) -> candle_core::Result<Tensor> {
        let mut parts = vec![self.input_weight.flatten_all()?, self.input_bias.clone()];
        for block in &self.blocks {
            parts.extend(block.packed_parts()?);
        }
        parts.extend([self.output_weight.flatten_all()?, self.output_bias.clone()]);
        Tensor::cat(&parts, 0)
    }
}

/// Offsets inside the packed parameter vector `[W_in, b_in, block₀, …, W_out, b_out]`.
#[derive(Clone, Copy, Debug)]
struct MlpPacking {
    features: usize,
    width: usize,
    blocks: usize,
    out: usize,
}

impl MlpPacking {
    fn input_bias(self) -> usize {
        self.width * self.features
    }
    fn block(self, k: usize) -> usize {
        self.input_bias() + self.width + k * self.block_packing().len()
    }
    fn block_packing(self) -> Packing {
        Packing { width: self.width }
    }
    fn output_weight(self) -> usize {
        self.block(self.blocks)
    }
    fn output_bias(self) -> usize {
        self.output_weight() + self.out * self.width
    }
    fn len(self) -> usize {
        self.output_bias() + self.out
    }
}

/// ε̂ of the residual MLP on `features`, all layers in one fused op on the CPU (see the
/// [module docs](self)).
///
/// # Shapes
/// `features`: (N, F); `embedding`: (N, D). Returns (N, dim).
///
/// # Errors
/// Shape, dtype or device mismatches; on the CPU, a dtype other than f32/f64.
pub fn residual_mlp(
    features: &Tensor,
    embedding: &Tensor,
    params: &MlpParams,
    eps: f64,
) -> candle_core::Result<Tensor> {
    let packing = check_inputs(features, embedding, params)?;
    if !features.device().is_cpu() {
        return residual_mlp_composed(features, embedding, params, eps);
    }
    let op = ResidualMlpOp { packing, eps, saved: Mutex::new(None) };
    features.contiguous()?.apply_op3(&embedding.contiguous()?, &params.packed()?, op)
}

/// The same network composed from candle ops and the other kernels: the reference of the
/// tests and the path on non-CPU devices.
pub fn residual_mlp_composed(
    features: &Tensor,
    embedding: &Tensor,
    params: &MlpParams,
    eps: f64,
) -> candle_core::Result<Tensor> {
    check_inputs(features, embedding, params)?;
    let mut h = features.matmul(&params.input_weight.t()?)?.broadcast_add(params.input_bias)?;
    for block in &params.blocks {
        h = residual_block_composed(&h, embedding, block, eps)?;
    }
    h.matmul(&params.output_weight.t()?)?.broadcast_add(params.output_bias)
}

/// The packing, after checking `features` (N, F), `embedding` (N, D) and the parameters.
fn check_inputs(features: &Tensor, embedding: &Tensor, params: &MlpParams) -> candle_core::Result<MlpPacking> {
    let &[rows, f] = features.dims() else { bail!("{NAME}: features must be (N, F), got {:?}", features.dims()) };
    let packing = params.packing(f)?;
    if embedding.dims() != [rows, packing.width] {
        bail!("{NAME}: the embedding has shape {:?}, expected [{rows}, {}]", embedding.dims(), packing.width);
    }
    Ok(packing)
}

/// What the forward keeps for the backward: `[a, x̂, ρ]` of every block, chunk by chunk (each
/// chunk allocates its own, so no output-sized buffer is zeroed up front).
struct Saved {
    chunks: Vec<Vec<[CpuStorage; 3]>>,
}

/// The fused network: `CustomOp3(features, embedding, packed parameters)`.
struct ResidualMlpOp {
    packing: MlpPacking,
    eps: f64,
    saved: Mutex<Option<Saved>>,
}

/// The packed parameters as matmul operands and blocks.
struct MlpView<'a, T> {
    storage: &'a CpuStorage,
    offset: usize,
    packing: MlpPacking,
    values: &'a [T],
    blocks: Vec<Params<'a, T>>,
}

impl<'a, T: Real> MlpView<'a, T> {
    fn new(storage: &'a CpuStorage, layout: &Layout, packing: MlpPacking) -> candle_core::Result<Self> {
        let values = contiguous_slice(storage, layout, NAME)?;
        if values.len() != packing.len() {
            bail!("{NAME}: packed parameters have {} values, expected {}", values.len(), packing.len());
        }
        let offset = layout.start_offset();
        let blocks = (0..packing.blocks)
            .map(|k| Params::new(storage, offset + packing.block(k), packing.block_packing()))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { storage, offset, packing, values, blocks })
    }

    /// `W_in` (D × F).
    fn input_weight(&self) -> Mat<'a> {
        Mat::new(self.storage, self.offset, (self.packing.width, self.packing.features))
    }

    /// `W_out` (dim × D).
    fn output_weight(&self) -> Mat<'a> {
        Mat::new(self.storage, self.offset + self.packing.output_weight(), (self.packing.out, self.packing.width))
    }

    fn input_bias(&self) -> &'a [T] {
        &self.values[self.packing.input_bias()..][..self.packing.width]
    }

    fn output_bias(&self) -> &'a [T] {
        &self.values[self.packing.output_bias()..][..self.packing.out]
    }
}

/// A chunk of rows of an input matrix: its values, and where they sit in their storage.
#[derive(Clone, Copy)]
struct Rows<'a, T> {
    storage: &'a CpuStorage,
    offset: usize,
    values: &'a [T],
    cols: usize,
}

impl<'a, T: Real> Rows<'a, T> {
    /// Rows `start..start + count` of the (·, cols) matrix `values` stored at `offset`.
    fn new(storage: &'a CpuStorage, offset: usize, values: &'a [T], cols: usize, span: (usize, usize)) -> Self {
        Self { storage, offset: offset + span.0 * cols, values: row_span(values, span, cols), cols }
    }

    fn mat(&self) -> Mat<'a> {
        Mat::new(self.storage, self.offset, (self.values.len() / self.cols, self.cols))
    }
}

/// `rows += bias` for every row.
#[inline(always)]
fn add_bias<T: Real>(rows: &mut [T], bias: &[T]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// `h₀ = x·W_inᵀ + b_in` of a chunk.
#[inline(always)]
fn first_hidden<T: Real>(features: Rows<T>, p: &MlpView<T>) -> candle_core::Result<Vec<T>> {
    let mut h = matmul::<T>(1, features.mat(), p.input_weight().t())?;
    add_bias(&mut h, p.input_bias());
    Ok(h)
}

/// A block's kept values for one chunk: `a`, `x̂` (rows × D) and `ρ` (rows).
type BlockSaved<T> = [Vec<T>; 3];

/// The forward of one chunk, as a [`vectorized`] kernel.
struct ForwardRows<'a, T> {
    features: Rows<'a, T>,
    e: &'a [T],
    p: &'a MlpView<'a, T>,
    eps: f64,
    out: &'a mut [T],
}

impl<T: Real> WithSimd for ForwardRows<'_, T> {
    type Output = candle_core::Result<Vec<BlockSaved<T>>>;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> Self::Output {
        forward_rows(self)
    }
}

#[inline(always)]
fn forward_rows<T: Real>(
    ForwardRows { features, e, p, eps, out }: ForwardRows<T>,
) -> candle_core::Result<Vec<BlockSaved<T>>> {
    let (width, rows) = (p.packing.width, e.len() / p.packing.width);
    let mut h = first_hidden(features, p)?;
    let mut kept = Vec::with_capacity(p.blocks.len());
    for block in &p.blocks {
        let Forward { y, pre_act, normalised, rstd } =
            forward_chunk(ForwardChunk { input: Inputs { h: &h, e }, p: block, eps })?;
        kept.push([pre_act, normalised, rstd]);
        h = y;
    }
    let eps_hat = Buffer(h).lend(|h| matmul::<T>(1, Mat::new(h, 0, (rows, width)), p.output_weight().t()))?;
    out.copy_from_slice(&eps_hat);
    add_bias(out, p.output_bias());
    Ok(kept)
}

/// Runs `f` on every item, in parallel when there is more than one.
fn run_all<W: Send, R: Send>(
    work: Vec<W>,
    f: impl Fn(W) -> candle_core::Result<R> + Sync + Send,
) -> candle_core::Result<Vec<R>> {
    if work.len() > 1 { work.into_par_iter().map(f).collect() } else { work.into_iter().map(f).collect() }
}

/// The forward over all rows: ε̂ and the kept values.
fn forward<T: Real>(
    (fs, fl): (&CpuStorage, &Layout),
    e: &[T],
    p: &MlpView<T>,
    eps: f64,
) -> candle_core::Result<(Vec<T>, Saved)> {
    let pk = p.packing;
    let features = contiguous_slice::<T>(fs, fl, NAME)?;
    let mut out = vec![T::zero(); e.len() / pk.width * pk.out];
    let work: Vec<_> = out.chunks_mut(CHUNK_ROWS * pk.out).enumerate().collect();
    let chunks = run_all(work, |(i, out)| {
        let span = (i * CHUNK_ROWS, out.len() / pk.out);
        let features = Rows::new(fs, fl.start_offset(), features, pk.features, span);
        let kept = vectorized(ForwardRows { features, e: row_span(e, span, pk.width), p, eps, out })?;
        Ok(kept.into_iter().map(|buffers| buffers.map(T::to_cpu_storage_owned)).collect())
    })?;
    Ok((out, Saved { chunks }))
}

/// Parameter-gradient sums of a group of chunks, in f64.
struct MlpGradSums<T> {
    packing: MlpPacking,
    input_weight: Vec<f64>,
    input_bias: ColumnSums<T>,
    blocks: Vec<GradSums<T>>,
    output_weight: Vec<f64>,
    output_bias: ColumnSums<T>,
}

impl<T: Real> MlpGradSums<T> {
    fn new(packing: MlpPacking) -> Self {
        Self {
            packing,
            input_weight: vec![0.0; packing.width * packing.features],
            input_bias: ColumnSums::new(packing.width),
            blocks: (0..packing.blocks).map(|_| GradSums::new(packing.block_packing())).collect(),
            output_weight: vec![0.0; packing.out * packing.width],
            output_bias: ColumnSums::new(packing.out),
        }
    }

    /// The gradient of the packed parameters.
    fn finish(self) -> Vec<f64> {
        let mut total = self.input_weight;
        total.extend(self.input_bias.finish());
        for block in self.blocks {
            total.extend(block.finish());
        }
        total.extend(self.output_weight);
        total.extend(self.output_bias.finish());
        debug_assert_eq!(total.len(), self.packing.len());
        total
    }
}

/// `sums += partial`, elementwise in f64.
#[inline(always)]
fn accumulate<T: Real>(sums: &mut [f64], partial: &[T]) {
    for (s, &v) in sums.iter_mut().zip(partial) {
        *s += v.to_f64();
    }
}

/// The backward of one chunk, as a [`vectorized`] kernel.
struct BackwardRows<'a, 'b, T> {
    features: Rows<'a, T>,
    e: &'a [T],
    saved: Vec<[&'a [T]; 3]>,
    d_out: Rows<'a, T>,
    p: &'a MlpView<'a, T>,
    sums: &'b mut MlpGradSums<T>,
    d_features: Option<&'b mut [T]>,
    de: Option<&'b mut [T]>,
}

impl<T: Real> WithSimd for BackwardRows<'_, '_, T> {
    type Output = candle_core::Result<()>;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _simd: S) -> Self::Output {
        backward_rows(self)
    }
}

#[inline(always)]
fn backward_rows<T: Real>(
    BackwardRows { features, e, saved, d_out, p, sums, d_features, mut de }: BackwardRows<T>,
) -> candle_core::Result<()> {
    let (width, rows) = (p.packing.width, e.len() / p.packing.width);
    // The block inputs h₀ … h_L.
    let mut hidden = vec![first_hidden(features, p)?];
    for ([_, normalised, _], block) in saved.iter().zip(&p.blocks) {
        let (gamma, beta) = (block.vector(block.packing.gamma()), block.vector(block.packing.beta()));
        let mut h = normalised.to_vec();
        for row in h.chunks_exact_mut(width) {
            for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = *v * g + b;
            }
        }
        hidden.push(h);
    }
    // The output layer.
    let mut last = Buffer(hidden.pop().unwrap_or_default());
    let d_w_out = last.lend(|h| matmul::<T>(1, d_out.mat().t(), Mat::new(h, 0, (rows, width))))?;
    accumulate(&mut sums.output_weight, &d_w_out);
    for row in d_out.values.chunks_exact(p.packing.out) {
        sums.output_bias.add_row(row);
    }
    let mut dh = matmul::<T>(1, d_out.mat(), p.output_weight())?;
    // The blocks, last to first.
    let mut de_block = vec![T::zero(); if de.is_some() { rows * width } else { 0 }];
    for (k, [pre_act, normalised, rstd]) in saved.iter().enumerate().rev() {
        let mut dh_in = vec![T::zero(); rows * width];
        let c = ChunkGrad { input: Inputs { h: &hidden[k], e }, pre_act, normalised, rstd, dy: &dh };
        let de_k = de.is_some().then_some(&mut de_block[..]);
        backward_chunk(BackwardChunk { c, p: &p.blocks[k], sums: &mut sums.blocks[k], dh: &mut dh_in, de: de_k })?;
        if let Some(de) = de.as_deref_mut() {
            de.iter_mut().zip(&de_block).for_each(|(d, &v)| *d += v);
        }
        dh = dh_in;
    }
    // The input layer.
    for row in dh.chunks_exact(width) {
        sums.input_bias.add_row(row);
    }
    let mut dh = Buffer(dh);
    let d_w_in = dh.lend(|dh| matmul::<T>(1, Mat::new(dh, 0, (rows, width)).t(), features.mat()))?;
    accumulate(&mut sums.input_weight, &d_w_in);
    if let Some(d_features) = d_features {
        let dx = dh.lend(|dh| matmul::<T>(1, Mat::new(dh, 0, (rows, width)), p.input_weight()))?;
        d_features.copy_from_slice(&dx);
    }
    Ok(())
}

/// Rows `start..start + count` of a matrix with `cols` columns.
fn row_span<T>(values: &[T], (start, count): (usize, usize), cols: usize) -> &[T] {
    &values[start * cols..][..count * cols]
}

/// Rows `start..start + count` of a matrix with `cols` columns, mutably.
fn row_span_mut<T>(values: &mut [T], (start, count): (usize, usize), cols: usize) -> &mut [T] {
    &mut values[start * cols..][..count * cols]
}

/// `buffer` split into `groups` pieces of `group` elements, each `Some` when `wanted`, else all `None`.
fn optional_groups<T>(buffer: &mut [T], group: usize, groups: usize, wanted: bool) -> Vec<Option<&mut [T]>> {
    if wanted { buffer.chunks_mut(group).map(Some).collect() } else { (0..groups).map(|_| None).collect() }
}

/// The gradients of `(features, embedding, packed)`, each only when it tracks gradients.
#[allow(clippy::type_complexity)]
fn gradients<T: Real>(
    op: &ResidualMlpOp,
    features: &Tensor,
    embedding: &Tensor,
    packed: &Tensor,
    d_out: &Tensor,
) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let guard = op.saved.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(saved) = guard.as_ref() else { bail!("{NAME}: backward without a forward") };
    let (fs, fl) = features.storage_and_layout();
    let (es, el) = embedding.storage_and_layout();
    let (ps, pl) = packed.storage_and_layout();
    let (ds, dl) = d_out.storage_and_layout();
    let (fs, es, ps, ds) =
        (cpu_storage(&fs, NAME)?, cpu_storage(&es, NAME)?, cpu_storage(&ps, NAME)?, cpu_storage(&ds, NAME)?);
    let (x, e, dy) = (
        contiguous_slice::<T>(fs, fl, NAME)?,
        contiguous_slice::<T>(es, el, NAME)?,
        contiguous_slice::<T>(ds, dl, NAME)?,
    );
    let p = MlpView::<T>::new(ps, pl, op.packing)?;
    let pk = op.packing;
    let kept: Vec<Vec<[&[T]; 3]>> = saved
        .chunks
        .iter()
        .map(|chunk| {
            chunk
                .iter()
                .map(|[a, x, r]| {
                    Ok([T::cpu_storage_as_slice(a)?, T::cpu_storage_as_slice(x)?, T::cpu_storage_as_slice(r)?])
                })
                .collect()
        })
        .collect::<candle_core::Result<_>>()?;
    let rows = e.len() / pk.width;
    if dy.len() != rows * pk.out || kept.len() != rows.div_ceil(CHUNK_ROWS) {
        bail!("{NAME}: the backward's shapes do not match the forward's");
    }
    let (need_x, need_e) = (features.track_op(), embedding.track_op());
    let group_rows = rows.div_ceil(CHUNK_ROWS).max(1).div_ceil(MAX_GROUPS) * CHUNK_ROWS;
    let groups = rows.div_ceil(group_rows);
    let mut d_features = vec![T::zero(); if need_x { x.len() } else { 0 }];
    let mut de = vec![T::zero(); if need_e { e.len() } else { 0 }];
    let work: Vec<_> = optional_groups(&mut d_features, group_rows * pk.features, groups, need_x)
        .into_iter()
        .zip(optional_groups(&mut de, group_rows * pk.width, groups, need_e))
        .enumerate()
        .collect();
    let partials = run_all(work, |(g, (mut d_features, mut de))| {
        let mut sums = MlpGradSums::new(pk);
        let group_start = g * group_rows;
        for start in (group_start..rows.min(group_start + group_rows)).step_by(CHUNK_ROWS) {
            let span = (start, CHUNK_ROWS.min(rows - start));
            let local = (start - group_start, span.1);
            vectorized(BackwardRows {
                features: Rows::new(fs, fl.start_offset(), x, pk.features, span),
                e: row_span(e, span, pk.width),
                saved: kept[start / CHUNK_ROWS].clone(),
                d_out: Rows::new(ds, dl.start_offset(), dy, pk.out, span),
                p: &p,
                sums: &mut sums,
                d_features: d_features.as_deref_mut().map(|d| row_span_mut(d, local, pk.features)),
                de: de.as_deref_mut().map(|d| row_span_mut(d, local, pk.width)),
            })?;
        }
        Ok(sums.finish())
    })?;
    let d_packed: Vec<T> = add_in_order(&partials, pk.len()).into_iter().map(T::from_f64).collect();
    let device = features.device();
    Ok((
        need_x.then(|| Tensor::from_vec(d_features, features.shape(), device)).transpose()?,
        need_e.then(|| Tensor::from_vec(de, embedding.shape(), device)).transpose()?,
        Some(Tensor::from_vec(d_packed, packed.shape(), device)?),
    ))
}

/// The three `(storage, layout)` arguments of a `CustomOp3`.
type Storage3<'a> = [(&'a CpuStorage, &'a Layout); 3];

impl CustomOp3 for ResidualMlpOp {
    fn name(&self) -> &'static str {
        NAME
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
        fn run<T: Real>(op: &ResidualMlpOp, [x, (s2, l2), (s3, l3)]: Storage3) -> candle_core::Result<CpuStorage> {
            let e = contiguous_slice(s2, l2, NAME)?;
            let p = MlpView::new(s3, l3, op.packing)?;
            let (eps_hat, saved) = forward::<T>(x, e, &p, op.eps)?;
            *op.saved.lock().unwrap_or_else(PoisonError::into_inner) = Some(saved);
            Ok(T::to_cpu_storage_owned(eps_hat))
        }
        let out = by_float_dtype!(s1.dtype(), NAME, run(self, [(s1, l1), (s2, l2), (s3, l3)]));
        Ok((out, Shape::from((l1.dims()[0], self.packing.out))))
    }

    fn bwd(
        &self,
        features: &Tensor,
        embedding: &Tensor,
        packed: &Tensor,
        _eps_hat: &Tensor,
        d_out: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d_out = d_out.contiguous()?;
        Ok(by_float_dtype!(features.dtype(), NAME, gradients(self, features, embedding, packed, &d_out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_independent_of_thread_count, compare, finite_difference_errors, randn, rel_err};
    use candle_core::{DType, Var};

    /// `[x, e, W_in, b_in, (W₁, b₁, W₂, b₂, γ, β) × blocks, W_out, b_out]`, seeded.
    fn inputs(
        rows: usize,
        (features, width, blocks, out): (usize, usize, usize, usize),
        dtype: DType,
        seed: u64,
    ) -> Vec<Tensor> {
        let mut next = seed;
        let mut t = |shape: &[usize], scale: f64, shift: f64| {
            next += 1;
            randn(shape, dtype, next).affine(scale, shift).unwrap()
        };
        let w = 1.0 / (width as f64).sqrt();
        let mut all = vec![t(&[rows, features], 1.0, 0.0), t(&[rows, width], 1.0, 0.0)];
        all.extend([t(&[width, features], 0.7, 0.0), t(&[width], 0.3, 0.0)]);
        for _ in 0..blocks {
            all.extend([t(&[width, width], w, 0.0), t(&[width], 0.3, 0.0), t(&[width, width], w, 0.0)]);
            all.extend([t(&[width], 0.3, 0.0), t(&[width], 0.3, 1.0), t(&[width], 0.3, 0.0)]);
        }
        all.extend([t(&[out, width], w, 0.0), t(&[out], 0.3, 0.0)]);
        all
    }

    fn params(args: &[Tensor]) -> MlpParams<'_> {
        let n = args.len();
        let blocks = args[4..n - 2]
            .chunks_exact(6)
            .map(|b| BlockParams { w1: &b[0], b1: &b[1], w2: &b[2], b2: &b[3], gamma: &b[4], beta: &b[5] })
            .collect();
        MlpParams {
            input_weight: &args[2],
            input_bias: &args[3],
            blocks,
            output_weight: &args[n - 2],
            output_bias: &args[n - 1],
        }
    }

    fn run(args: &[Tensor], fused: bool) -> candle_core::Result<Tensor> {
        let p = params(args);
        if fused {
            residual_mlp(&args[0], &args[1], &p, 1e-5)
        } else {
            residual_mlp_composed(&args[0], &args[1], &p, 1e-5)
        }
    }

    #[test]
    fn fused_matches_composed_f32() {
        // One partial chunk; several chunks in one group; 21 chunks in groups of two.
        for (rows, sizes, seed) in
            [(5, (2, 16, 2, 2), 1), (600, (6, 24, 1, 3), 2), (20 * CHUNK_ROWS + 7, (2, 8, 3, 2), 3)]
        {
            let (fwd, grads) =
                compare(&inputs(rows, sizes, DType::F32, seed), |a| run(a, true), |a| run(a, false), seed);
            assert!(fwd < 1e-5, "forward {fwd:e} at {rows} rows, {sizes:?}");
            for (i, err) in grads.iter().enumerate() {
                assert!(*err < 1e-5, "gradient of input {i}: {err:e} at {rows} rows, {sizes:?}");
            }
        }
    }

    #[test]
    fn without_blocks_it_is_two_linear_layers() {
        let args = inputs(9, (3, 4, 0, 2), DType::F32, 4);
        let err = rel_err(&run(&args, true).unwrap(), &run(&args, false).unwrap());
        assert!(err < 1e-6, "{err:e}");
    }

    #[test]
    fn gradients_match_finite_differences_f64() {
        let errors = finite_difference_errors(&inputs(3, (2, 4, 2, 2), DType::F64, 7), |a| run(a, true), 8);
        for (i, err) in errors.iter().enumerate() {
            assert!(*err < 1e-6, "input {i}: {err:e}");
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let args = inputs(9 * CHUNK_ROWS + 3, (2, 8, 2, 2), DType::F32, 11);
        assert_independent_of_thread_count(&args, |a| run(a, true), 99);
    }

    #[test]
    fn constant_inputs_get_no_gradient() {
        let args = inputs(40, (2, 8, 2, 2), DType::F32, 13);
        let vars: Vec<Var> = args[2..].iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let mut tracked = args[..2].to_vec();
        tracked.extend(vars.iter().map(|v| v.as_tensor().clone()));
        let grads = run(&tracked, true).unwrap().sqr().unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&args[0]).is_none() && grads.get(&args[1]).is_none());
        assert!(vars.iter().all(|v| grads.get(v).is_some()));
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let args = inputs(4, (2, 8, 1, 2), DType::F32, 17);
        let mut bad = args.clone();
        bad[1] = randn(&[4, 6], DType::F32, 0);
        assert!(run(&bad, true).unwrap_err().to_string().contains("embedding has shape [4, 6]"));
        let mut bad = args.clone();
        bad[8] = randn(&[7], DType::F32, 0);
        assert!(run(&bad, true).unwrap_err().to_string().contains("gamma has shape [7]"));
        let mut bad = args.clone();
        bad[0] = randn(&[4, 3], DType::F32, 0);
        assert!(run(&bad, true).unwrap_err().to_string().contains("do not fit 3 features"));
        let mut bad = args;
        bad[0] = randn(&[4, 2, 1], DType::F32, 0);
        assert!(run(&bad, true).unwrap_err().to_string().contains("must be (N, F)"));
    }
}
