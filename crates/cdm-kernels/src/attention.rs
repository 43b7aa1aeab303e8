//! Scaled dot-product attention as one op, on channel-major feature maps, with a fused
//! backward.
//!
//! # Notation
//!
//! | symbol | meaning |
//! |---|---|
//! | `B`, `H` | batch, heads |
//! | `N`, `M` | query positions, key positions |
//! | `D`, `Dv` | channels per head of the queries and keys, of the values |
//! | `q`, `k`, `v` | one head of one sample, channel-major: (D × N), (D × M), (Dv × M) |
//! | `s` | the scale of the scores (`1/√D` in a transformer), > 0 |
//!
//! The inputs are laid out as a convolutional network holds its features, `(B, H·D, N)` with
//! head `h` in channels `h·D .. (h+1)·D` (a UNet's `(B, C, H, W)` map with its positions
//! flattened), and so is the output, `(B, H·Dv, N)`. The projections before and after are then
//! 1×1 convolutions, and no tensor is transposed to tokens and back.
//!
//! # Forward, per sample and head
//!
//! ```text
//! S = s·qᵀ·k                 (N × M)
//! P = softmax of each row of S
//! o = v·Pᵀ                   (Dv × N)
//! ```
//!
//! # Backward, given `do = ∂L/∂o` (Dv × N)
//!
//! ```text
//! dv = do·P                  dP = doᵀ·v
//! dS = P ⊙ (dP − rowsum(dP ⊙ P))       (the softmax gradient, row by row)
//! dq = s·k·dSᵀ               dk = s·q·dS
//! ```
//!
//! # Implementation
//!
//! Samples run in parallel on rayon's threads; each product is one gemm call over a sample's
//! heads, on their contiguous (D × N) blocks or transposed views of them, and its result is
//! the sample's block of the output. The forward pass keeps `P` for the backward (as PyTorch's
//! autograd keeps the softmax's output); a second backward through the same graph finds it
//! gone and recomputes it from `q` and `k`. The row softmax is that of [`crate::softmax`]: the
//! row maximum subtracted before the exponential (no overflow), sums in f64. Each product is
//! computed by one thread, so results do not depend on the thread count.
//!
//! Compared with composing it from candle ops (transpose to tokens, split heads, `matmul`,
//! scale, softmax, `matmul`, merge heads, transpose back), the op makes no copies, makes no
//! pass over the scores for the scale, keeps the scores out of candle's autograd (whose
//! bookkeeping adds a zeroed buffer and an addition per gradient), and runs a batch's
//! per-sample products in parallel where candle runs them one after the other.
//!
//! Reference: Vaswani et al., *Attention Is All You Need*, NeurIPS 2017.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, D, Layout, Result, Shape, Tensor, bail};

use rayon::prelude::*;

use crate::matmul::{Buffer, Mat, matmul};
use crate::numerics::Real;
use crate::softmax::{softmax_row_grad_in_place, softmax_row_in_place};
use crate::storage::{by_float_dtype, cpu_storage};

const NAME: &str = "attention";

/// The sizes of one call.
#[derive(Clone, Copy, Debug)]
struct Dims {
    batch: usize,
    heads: usize,
    queries: usize,
    keys: usize,
    /// Channels per head of `q` and `k`.
    d: usize,
    /// Channels per head of `v`.
    dv: usize,
    scale: f64,
}

impl Dims {
    /// Elements of one sample of `q`, `k`, `v` and of the output.
    fn q_sample(&self) -> usize {
        self.queries * self.heads * self.d
    }
    fn k_sample(&self) -> usize {
        self.keys * self.heads * self.d
    }
    fn v_sample(&self) -> usize {
        self.keys * self.heads * self.dv
    }
    fn o_sample(&self) -> usize {
        self.queries * self.heads * self.dv
    }

    /// `q`, `k`, `v` in the storage of one packed `[q; k; v]` tensor, and `∂L/∂o`.
    fn packed<'a>(&self, qkv: Input<'a>, d_out: Option<Input<'a>>) -> Operands<'a> {
        let qkv = Input { sample_stride: self.q_sample() + self.k_sample() + self.v_sample(), ..qkv };
        Operands {
            q: qkv,
            k: qkv.channel_range(self.q_sample()),
            v: qkv.channel_range(self.q_sample() + self.k_sample()),
            d_out,
        }
    }

    fn out_shape(&self) -> Shape {
        Shape::from((self.batch, self.heads * self.dv, self.queries))
    }

    /// `P` of sample `sample`'s heads in `p`, a batch of (N × M) matrices.
    fn p_heads<'a>(&self, p: &'a CpuStorage) -> Mat<'a> {
        Mat::new(p, 0, (self.queries, self.keys)).batched(self.queries * self.keys)
    }
}

/// One of `q`, `k`, `v` (or `∂L/∂o`) as CPU storage: the element offset of its first sample and
/// the elements from one sample to the next (more than a sample's own when the three are
/// channel ranges of one packed tensor).
#[derive(Clone, Copy)]
struct Input<'a> {
    storage: &'a CpuStorage,
    start: usize,
    sample_stride: usize,
}

impl<'a> Input<'a> {
    /// The contiguous tensor of `layout`, samples `sample_len` elements apart.
    fn new(storage: &'a CpuStorage, layout: &Layout, sample_len: usize) -> Result<Self> {
        match layout.contiguous_offsets() {
            Some((start, _)) => Ok(Self { storage, start, sample_stride: sample_len }),
            None => bail!("{NAME}: expects contiguous inputs (the public wrapper makes them so)"),
        }
    }

    /// The channels `offset ..` of each sample of `self`, `self` being `packed` per sample.
    fn channel_range(self, offset: usize) -> Self {
        Self { start: self.start + offset, ..self }
    }

    /// The heads of sample `sample`: a batch of contiguous `channels × positions` blocks.
    fn heads(&self, sample: usize, channels: usize, positions: usize) -> Mat<'a> {
        let offset = self.start + sample * self.sample_stride;
        Mat::new(self.storage, offset, (channels, positions)).batched(channels * positions)
    }
}

/// `q`, `k`, `v` (and `∂L/∂o` in the backward) of one call.
#[derive(Clone, Copy)]
struct Operands<'a> {
    q: Input<'a>,
    k: Input<'a>,
    v: Input<'a>,
    d_out: Option<Input<'a>>,
}

/// `P` of every head of sample `sample`, (H, N, M).
fn probabilities<T: Real>(x: Operands, dims: &Dims, sample: usize) -> Result<CpuStorage> {
    let (q, k) = (x.q.heads(sample, dims.d, dims.queries), x.k.heads(sample, dims.d, dims.keys));
    let mut p = matmul::<T>(dims.heads, q.t(), k)?;
    let scale = T::from_f64(dims.scale);
    p.chunks_exact_mut(dims.keys).for_each(|row| softmax_row_in_place(row, scale));
    Ok(T::to_cpu_storage_owned(p))
}

/// The output and every sample's `P` (kept for the backward).
fn forward<T: Real>(x: Operands, dims: &Dims) -> Result<(Vec<T>, Vec<CpuStorage>)> {
    let mut out = vec![T::zero(); dims.batch * dims.o_sample()];
    let p = out
        .par_chunks_mut(dims.o_sample())
        .enumerate()
        .map(|(sample, out)| {
            let p = probabilities::<T>(x, dims, sample)?;
            let v = x.v.heads(sample, dims.dv, dims.keys);
            out.copy_from_slice(&matmul::<T>(dims.heads, v, dims.p_heads(&p).t())?);
            Ok(p)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((out, p))
}

/// The gradients of one sample's `q`, `k` and `v`, written into `dq`, `dk`, `dv`, from its `P`.
fn sample_gradients<T: Real>(
    x: Operands,
    dims: &Dims,
    sample: usize,
    p: &CpuStorage,
    [dq, dk, dv]: [&mut [T]; 3],
) -> Result<()> {
    let (n, m, heads) = (dims.queries, dims.keys, dims.heads);
    let Some(d_out) = x.d_out else { bail!("{NAME}: the backward needs ∂L/∂o") };
    let d_o = d_out.heads(sample, dims.dv, n);
    let p_heads = dims.p_heads(p);
    dv.copy_from_slice(&matmul::<T>(heads, d_o, p_heads)?);
    let mut ds = matmul::<T>(heads, d_o.t(), x.v.heads(sample, dims.dv, m))?;
    let s = T::from_f64(dims.scale);
    for (dp_row, p_row) in ds.chunks_exact_mut(m).zip(T::cpu_storage_as_slice(p)?.chunks_exact(m)) {
        softmax_row_grad_in_place(dp_row, p_row, s);
    }
    Buffer(ds).lend(|ds| {
        let ds = Mat::new(ds, 0, (n, m)).batched(n * m);
        dq.copy_from_slice(&matmul::<T>(heads, x.k.heads(sample, dims.d, m), ds.t())?);
        dk.copy_from_slice(&matmul::<T>(heads, x.q.heads(sample, dims.d, n), ds)?);
        Ok(())
    })
}

/// Every sample's `P`: the forward pass's, or recomputed if it is gone (a second backward).
fn cached_or_recomputed<T: Real>(cache: &ProbabilityCache, x: Operands, dims: &Dims) -> Result<Vec<CpuStorage>> {
    match cache.take() {
        Some(p) => Ok(p),
        None => (0..dims.batch).into_par_iter().map(|sample| probabilities::<T>(x, dims, sample)).collect(),
    }
}

/// `(dq, dk, dv)` in the layouts of `q`, `k` and `v`.
fn backward<T: Real>(x: Operands, dims: &Dims, cache: &ProbabilityCache) -> Result<[Vec<T>; 3]> {
    let p = cached_or_recomputed::<T>(cache, x, dims)?;
    let zero = T::zero();
    let mut dq = vec![zero; dims.batch * dims.q_sample()];
    let mut dk = vec![zero; dims.batch * dims.k_sample()];
    let mut dv = vec![zero; dims.batch * dims.v_sample()];
    dq.par_chunks_mut(dims.q_sample())
        .zip(dk.par_chunks_mut(dims.k_sample()))
        .zip(dv.par_chunks_mut(dims.v_sample()))
        .enumerate()
        .try_for_each(|(sample, ((dq, dk), dv))| sample_gradients(x, dims, sample, &p[sample], [dq, dk, dv]))?;
    Ok([dq, dk, dv])
}

/// The gradient of a packed `[q; k; v]` (self-attention), in its layout.
fn backward_packed<T: Real>(x: Operands, dims: &Dims, cache: &ProbabilityCache) -> Result<Vec<T>> {
    let p = cached_or_recomputed::<T>(cache, x, dims)?;
    let packed = dims.q_sample() + dims.k_sample() + dims.v_sample();
    let mut d_qkv = vec![T::zero(); dims.batch * packed];
    d_qkv.par_chunks_mut(packed).enumerate().try_for_each(|(sample, d)| {
        let (dq, rest) = d.split_at_mut(dims.q_sample());
        let (dk, dv) = rest.split_at_mut(dims.k_sample());
        sample_gradients(x, dims, sample, &p[sample], [dq, dk, dv])
    })?;
    Ok(d_qkv)
}

/// The forward pass's `P`, one CPU storage per sample, until the backward takes it.
#[derive(Default)]
struct ProbabilityCache(Mutex<Option<Vec<CpuStorage>>>);

impl ProbabilityCache {
    fn put(&self, p: Vec<CpuStorage>) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(p);
    }

    fn take(&self) -> Option<Vec<CpuStorage>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

/// The op on separate `q`, `k`, `v`.
struct AttentionOp {
    dims: Dims,
    cache: ProbabilityCache,
}

/// The op on `[q; k; v]` packed along the channels of one tensor (self-attention).
struct SelfAttentionOp {
    dims: Dims,
    /// (B, H·Dv, S…): the positions in the layout `qkv` has them.
    out_shape: Shape,
    cache: ProbabilityCache,
}

/// `t` as an [`Input`] whose samples are `sample_len` elements apart.
fn input<'a>(
    guard: &'a (impl std::ops::Deref<Target = candle_core::Storage>, &Layout),
    sample_len: usize,
) -> Result<Input<'a>> {
    Input::new(cpu_storage(&guard.0, NAME)?, guard.1, sample_len)
}

/// The forward pass as a candle `cpu_fwd`: the output's storage; `P` goes to `cache`.
fn run_forward(x: Operands, dims: &Dims, cache: &ProbabilityCache) -> Result<(CpuStorage, Shape)> {
    fn run<T: Real>(x: Operands, dims: &Dims, cache: &ProbabilityCache) -> Result<CpuStorage> {
        let (out, p) = forward::<T>(x, dims)?;
        cache.put(p);
        Ok(T::to_cpu_storage_owned(out))
    }
    Ok((by_float_dtype!(x.q.storage.dtype(), NAME, run(x, dims, cache)), dims.out_shape()))
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(
        &self,
        q: &CpuStorage,
        ql: &Layout,
        k: &CpuStorage,
        kl: &Layout,
        v: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = &self.dims;
        let x = Operands {
            q: Input::new(q, ql, d.q_sample())?,
            k: Input::new(k, kl, d.k_sample())?,
            v: Input::new(v, vl, d.v_sample())?,
            d_out: None,
        };
        run_forward(x, d, &self.cache)
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _out: &Tensor,
        d_out: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        fn run<T: Real>(x: Operands, op: &AttentionOp, shapes: [&Shape; 3]) -> Result<[Tensor; 3]> {
            let [dq, dk, dv] = backward::<T>(x, &op.dims, &op.cache)?;
            let cpu = &candle_core::Device::Cpu;
            Ok([
                Tensor::from_vec(dq, shapes[0], cpu)?,
                Tensor::from_vec(dk, shapes[1], cpu)?,
                Tensor::from_vec(dv, shapes[2], cpu)?,
            ])
        }
        let d = &self.dims;
        let d_out = d_out.contiguous()?;
        let guards = [q, k, v, &d_out].map(|t| t.storage_and_layout());
        let x = Operands {
            q: input(&guards[0], d.q_sample())?,
            k: input(&guards[1], d.k_sample())?,
            v: input(&guards[2], d.v_sample())?,
            d_out: Some(input(&guards[3], d.o_sample())?),
        };
        let [dq, dk, dv] = by_float_dtype!(q.dtype(), NAME, run(x, self, [q.shape(), k.shape(), v.shape()]));
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

impl CustomOp1 for SelfAttentionOp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, qkv: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        // `packed` sets the stride between samples.
        let (out, _) = run_forward(self.dims.packed(Input::new(qkv, layout, 0)?, None), &self.dims, &self.cache)?;
        Ok((out, self.out_shape.clone()))
    }

    fn bwd(&self, qkv: &Tensor, _out: &Tensor, d_out: &Tensor) -> Result<Option<Tensor>> {
        fn run<T: Real>(x: Operands, op: &SelfAttentionOp, shape: &Shape) -> Result<Tensor> {
            Tensor::from_vec(backward_packed::<T>(x, &op.dims, &op.cache)?, shape, &candle_core::Device::Cpu)
        }
        let d = &self.dims;
        let d_out = d_out.contiguous()?;
        let (qkv_guard, d_out_guard) = (qkv.storage_and_layout(), d_out.storage_and_layout());
        let x = d.packed(input(&qkv_guard, 0)?, Some(input(&d_out_guard, d.o_sample())?));
        Ok(Some(by_float_dtype!(qkv.dtype(), NAME, run(x, self, qkv.shape()))))
    }
}

/// The sizes of a call, or an error naming the mismatched shapes.
fn dims(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f64) -> Result<Dims> {
    let (batch, q_width, queries) = q.dims3()?;
    let (k_batch, k_width, keys) = k.dims3()?;
    let (v_batch, v_width, v_keys) = v.dims3()?;
    if heads == 0 || q_width % heads != 0 || v_width % heads != 0 {
        bail!("{NAME}: {heads} heads do not divide the channels of q {:?} and v {:?}", q.dims(), v.dims());
    }
    if k_batch != batch || v_batch != batch || v_keys != keys || k_width != q_width {
        bail!(
            "{NAME}: q {:?}, k {:?} and v {:?} do not match (B, H·D, N), (B, H·D, M), (B, H·Dv, M)",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    if !(scale.is_finite() && scale > 0.0) {
        bail!("{NAME}: the scale must be finite and positive, got {scale}");
    }
    Ok(Dims { batch, heads, queries, keys, d: q_width / heads, dv: v_width / heads, scale })
}

/// Multi-head scaled dot-product attention on channel-major features, `v·softmax(s·qᵀ·k)ᵀ`
/// per sample and head, as one op with a fused backward (see the module doc).
///
/// # Shapes
/// `q`: (B, H·D, N), `k`: (B, H·D, M), `v`: (B, H·Dv, M) → (B, H·Dv, N); head `h` in channels
/// `h·D .. (h+1)·D` (`h·Dv ..` of `v` and the output).
///
/// # Errors
/// Shapes that do not match, `heads` not dividing the channels, a scale that is not finite
/// and positive; on the CPU, a dtype other than F32/F64. Other devices run
/// [`attention_composed`].
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    let dims = dims(q, k, v, heads, scale)?;
    if !q.device().is_cpu() {
        return attention_composed(q, k, v, heads, scale);
    }
    q.contiguous()?.apply_op3(
        &k.contiguous()?,
        &v.contiguous()?,
        AttentionOp { dims, cache: ProbabilityCache::default() },
    )
}

/// [`attention`] of a tensor with itself: `q`, `k` and `v` are the first, second and third
/// thirds of the channels of `qkv` (what one 1×1 convolution with the three projections'
/// weights stacked produces), and the gradient is one tensor in that layout. The positions may
/// come in any number of dimensions (a feature map's `H, W`), taken in row-major order, so a
/// convolutional network's map goes in and out without a reshape.
///
/// # Shapes
/// `qkv`: (B, 3·H·D, S…) → (B, H·D, S…), `N` the product of `S…`.
///
/// # Errors
/// Fewer than three dimensions, channels not a multiple of `3·heads`, a scale that is not
/// finite and positive; on the CPU, a dtype other than F32/F64. Other devices run
/// [`self_attention_composed`].
pub fn self_attention(qkv: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    let (flat, out_shape) = positions_flattened(qkv)?;
    let [q, k, v] = split_qkv(&flat, heads)?;
    let dims = dims(&q, &k, &v, heads, scale)?;
    if !qkv.device().is_cpu() {
        return attention_composed(&q, &k, &v, heads, scale)?.reshape(out_shape);
    }
    qkv.contiguous()?.apply_op1(SelfAttentionOp { dims, out_shape, cache: ProbabilityCache::default() })
}

/// `qkv` (B, 3·C, S…) viewed as (B, 3·C, N), and the shape (B, C, S…) of the attention's output.
fn positions_flattened(qkv: &Tensor) -> Result<(Tensor, Shape)> {
    let (batch, channels, positions) = match qkv.dims() {
        &[batch, channels, ref positions @ ..] if !positions.is_empty() => (batch, channels, positions),
        dims => bail!("{NAME}: qkv {dims:?} needs (B, 3·H·D, positions…)"),
    };
    let out: Vec<usize> = [batch, channels / 3].into_iter().chain(positions.iter().copied()).collect();
    Ok((qkv.reshape((batch, channels, positions.iter().product::<usize>()))?, Shape::from(out)))
}

/// [`self_attention`] out of candle's own ops: the thirds of `qkv` through
/// [`attention_composed`].
///
/// # Shapes
/// As [`self_attention`].
pub fn self_attention_composed(qkv: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    let (flat, out_shape) = positions_flattened(qkv)?;
    let [q, k, v] = split_qkv(&flat, heads)?;
    attention_composed(&q, &k, &v, heads, scale)?.reshape(out_shape)
}

/// The thirds `q`, `k`, `v` of the channels of `qkv` (views).
fn split_qkv(qkv: &Tensor, heads: usize) -> Result<[Tensor; 3]> {
    let (_, channels, _) = qkv.dims3()?;
    if heads == 0 || channels % (3 * heads) != 0 {
        bail!("{NAME}: qkv {:?} needs channels that are a multiple of 3·heads = {}", qkv.dims(), 3 * heads);
    }
    let third = channels / 3;
    Ok([qkv.narrow(1, 0, third)?, qkv.narrow(1, third, third)?, qkv.narrow(1, 2 * third, third)?])
}

/// [`attention`] out of candle's own ops (heads split into token-major `(B, H, N, D)`, batched
/// `matmul`, `candle_nn`'s softmax): the reference for the tests and the fallback on devices
/// other than the CPU.
///
/// # Shapes
/// As [`attention`].
pub fn attention_composed(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    let Dims { batch, queries, dv, .. } = dims(q, k, v, heads, scale)?;
    let split = |t: &Tensor| -> Result<Tensor> {
        let (b, width, positions) = t.dims3()?;
        t.reshape((b, heads, width / heads, positions))?.transpose(2, 3)?.contiguous()
    };
    let (q, k, v) = (split(q)?, split(k)?, split(v)?);
    let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
    let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
    weights.matmul(&v)?.transpose(2, 3)?.reshape((batch, heads * dv, queries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_independent_of_thread_count, compare, finite_difference_errors, randn, rel_err};
    use candle_core::{DType, Device, Var};

    fn inputs(b: usize, n: usize, m: usize, heads: usize, d: usize, dv: usize, dtype: DType, seed: u64) -> [Tensor; 3] {
        [
            randn(&[b, heads * d, n], dtype, seed),
            randn(&[b, heads * d, m], dtype, seed + 1),
            randn(&[b, heads * dv, m], dtype, seed + 2),
        ]
    }

    #[test]
    fn matches_composed_f32() {
        // One head (the UNets' layers), several heads with Dv ≠ D, N ≠ M, and a 14×14 map.
        for (case, &(b, n, m, heads, d, dv, scale)) in [
            (2, 5, 5, 1, 8, 8, 0.35),
            (3, 7, 4, 4, 3, 5, 0.6),
            (1, 1, 9, 2, 4, 4, 1.0),
            (2, 196, 196, 1, 64, 64, 0.125),
        ]
        .iter()
        .enumerate()
        {
            let x = inputs(b, n, m, heads, d, dv, DType::F32, 10 * case as u64);
            let (fwd, grads) = compare(
                &x,
                |t| attention(&t[0], &t[1], &t[2], heads, scale),
                |t| attention_composed(&t[0], &t[1], &t[2], heads, scale),
                7,
            );
            assert!(fwd < 1e-5 && grads.iter().all(|&e| e < 1e-5), "case {case}: {fwd:e} {grads:?}");
        }
    }

    #[test]
    fn self_attention_matches_composed_f32() {
        for (case, &(b, n, heads, d)) in [(2, 5, 1, 8), (3, 7, 2, 3), (2, 196, 1, 16)].iter().enumerate() {
            let qkv = randn(&[b, 3 * heads * d, n], DType::F32, 90 + case as u64);
            let (fwd, grads) = compare(
                &[qkv],
                |t| self_attention(&t[0], heads, 0.4),
                |t| self_attention_composed(&t[0], heads, 0.4),
                91,
            );
            assert!(fwd < 1e-5 && grads[0] < 1e-5, "case {case}: {fwd:e} {grads:?}");
        }
    }

    #[test]
    fn self_attention_is_attention_of_the_thirds() {
        // Bit-identical: the same kernel reads the thirds in place or as separate tensors.
        let qkv = randn(&[3, 12, 9], DType::F64, 95);
        let thirds: Vec<Tensor> = (0..3).map(|i| qkv.narrow(1, 4 * i, 4).unwrap()).collect();
        let packed = self_attention(&qkv, 2, 0.3).unwrap();
        let separate = attention(&thirds[0], &thirds[1], &thirds[2], 2, 0.3).unwrap();
        assert_eq!(rel_err(&packed, &separate), 0.0);
        let errs = finite_difference_errors(&[qkv], |t| self_attention(&t[0], 2, 0.3), 96);
        assert!(errs[0] < 1e-6, "{errs:?}");
    }

    #[test]
    fn self_attention_takes_a_feature_map_as_it_is() {
        // (B, 3C, H, W) in and (B, C, H, W) out, bit-identical to the positions flattened, and
        // the gradient in the map's shape; the composed twin agrees.
        let map = randn(&[2, 12, 3, 5], DType::F64, 99);
        let flat = map.reshape((2, 12, 15)).unwrap();
        let y = self_attention(&map, 2, 0.3).unwrap();
        assert_eq!(y.dims(), &[2, 4, 3, 5]);
        assert_eq!(rel_err(&y.flatten_from(2).unwrap(), &self_attention(&flat, 2, 0.3).unwrap()), 0.0);
        let (fwd, grads) =
            compare(&[map], |t| self_attention(&t[0], 2, 0.3), |t| self_attention_composed(&t[0], 2, 0.3), 100);
        assert!(fwd < 1e-12 && grads[0] < 1e-12, "{fwd:e} {grads:?}");
    }

    #[test]
    fn a_second_backward_recomputes_the_probabilities() {
        // The first backward takes the forward's P; the second finds none and recomputes it.
        let x = inputs(3, 6, 5, 2, 3, 4, DType::F64, 97);
        let vars: Vec<Var> = x.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let y = attention(vars[0].as_tensor(), vars[1].as_tensor(), vars[2].as_tensor(), 2, 0.6).unwrap();
        let loss = (&y * &randn(y.dims(), DType::F64, 98)).unwrap().sum_all().unwrap();
        let (first, second) = (loss.backward().unwrap(), loss.backward().unwrap());
        for var in &vars {
            assert_eq!(rel_err(first.get(var).unwrap(), second.get(var).unwrap()), 0.0);
        }
    }

    #[test]
    fn finite_differences_f64() {
        let x = inputs(2, 4, 3, 2, 3, 2, DType::F64, 50);
        let errs = finite_difference_errors(&x, |t| attention(&t[0], &t[1], &t[2], 2, 0.7), 51);
        assert!(errs.iter().all(|&e| e < 1e-6), "{errs:?}");
    }

    #[test]
    fn strided_inputs() {
        // q, k and v as transposed views (made contiguous by the wrapper).
        let x = inputs(2, 6, 6, 2, 2, 2, DType::F32, 60);
        let t = |x: &Tensor| x.transpose(1, 2).unwrap();
        let xt = [t(&x[0]), t(&x[1]), t(&x[2])];
        let (fwd, grads) = compare(
            &xt,
            |v| attention(&t(&v[0]), &t(&v[1]), &t(&v[2]), 2, 0.5),
            |v| attention_composed(&t(&v[0]), &t(&v[1]), &t(&v[2]), 2, 0.5),
            61,
        );
        assert!(fwd < 1e-5 && grads.iter().all(|&e| e < 1e-5), "{fwd:e} {grads:?}");
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let x = inputs(5, 20, 17, 2, 4, 3, DType::F32, 70);
        assert_independent_of_thread_count(&x, |t| attention(&t[0], &t[1], &t[2], 2, 0.5), 71);
    }

    #[test]
    fn large_scores_do_not_overflow() {
        // Scores of ±1e4 in the first row (a one-hot softmax, no overflow), ties in the second.
        // Token-major rows q₀ = (100, 0), q₁ = (0, −100), k₀ = (100, 0), k₁ = (−100, 0),
        // v₀ = (1, 2), v₁ = (3, 4), given channel-major (transposed).
        let t = |rows: [[f32; 2]; 2]| Tensor::new(&[rows], &Device::Cpu).unwrap().transpose(1, 2).unwrap();
        let (q, k, v) =
            (t([[100.0, 0.0], [0.0, -100.0]]), t([[100.0, 0.0], [-100.0, 0.0]]), t([[1.0, 2.0], [3.0, 4.0]]));
        let out = attention(&q, &k, &v, 1, 1.0).unwrap().transpose(1, 2).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(out[0][0], [1.0, 2.0]);
        assert_eq!(out[0][1], [2.0, 3.0]);
    }

    #[test]
    fn rejects_bad_input() {
        let [q, k, v] = inputs(2, 3, 4, 2, 2, 2, DType::F32, 80);
        let err = |r: Result<Tensor>| r.unwrap_err().to_string();
        assert!(err(attention(&q, &k, &v, 3, 0.5)).contains("3 heads do not divide"));
        assert!(err(attention(&q, &v.narrow(1, 0, 3).unwrap(), &v, 2, 0.5)).contains("do not match"));
        assert!(err(attention(&q, &k, &v, 2, f64::NAN)).contains("finite and positive"));
        let bf = |t: &Tensor| t.to_dtype(DType::BF16).unwrap();
        assert!(err(attention(&bf(&q), &bf(&k), &bf(&v), 2, 0.5)).contains("unsupported dtype BF16"));
        assert!(err(self_attention(&q, 2, 0.5)).contains("multiple of 3·heads = 6"));
        assert!(err(self_attention(&q.flatten_from(1).unwrap(), 2, 0.5)).contains("needs (B, 3·H·D, positions…)"));
    }
}
