//! Matrix products between views into CPU buffers, for the fused kernels.
//!
//! A kernel that works on slices (a chunk of rows, one parameter inside a packed parameter
//! vector, a transposed weight) still wants a GEMM. [`Mat`] describes such an operand — a
//! row-major matrix, or the transpose of one, at an offset into a [`CpuStorage`] — and
//! [`matmul`] multiplies two of them without copying, on the `gemm` crate (candle's CPU
//! backend). A kernel's own
//! scratch vectors become CPU storage for the duration of a product through [`Buffer::lend`],
//! which moves the vector rather than copying it.
//!
//! The `gemm` crate splits a product across threads above its threading threshold
//! ([`crate::tune_gemm_threading`]); a batch of smaller products, or of at least two per
//! thread, runs one product per rayon task instead (the 1×1 convolutions' per-image products,
//! a Winograd block's 16).

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, Result, WithDType};
use gemm::Parallelism;
use rayon::prelude::*;

use crate::threads::GEMM_THREADING_THRESHOLD;

/// A row-major `rows × cols` matrix (or a batch of them) in CPU storage, possibly viewed
/// transposed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mat<'a> {
    storage: &'a CpuStorage,
    offset: usize,
    rows: usize,
    cols: usize,
    /// Elements from one stored row to the next.
    row_stride: usize,
    /// Whether the stored row-major matrix is this operand's transpose (cols × rows).
    transposed: bool,
    /// Elements from one matrix of a batch to the next (0: the same matrix for every item).
    batch_stride: usize,
}

impl<'a> Mat<'a> {
    /// The row-major `rows × cols` matrix that starts `offset` elements into `storage`.
    pub(crate) fn new(storage: &'a CpuStorage, offset: usize, (rows, cols): (usize, usize)) -> Self {
        Self { storage, offset, rows, cols, row_stride: cols, transposed: false, batch_stride: 0 }
    }

    /// The matrix with its stored rows `row_stride` elements apart (at least its columns).
    pub(crate) fn with_row_stride(self, row_stride: usize) -> Self {
        Self { row_stride, ..self }
    }

    /// Rows `start .. start + count` of a matrix stored row-major (not a transposed view).
    pub(crate) fn rows(self, start: usize, count: usize) -> Self {
        debug_assert!(!self.transposed, "rows of a transposed view are not contiguous slices");
        Self { offset: self.offset + start * self.row_stride, rows: count, ..self }
    }

    /// Its columns.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// The transpose, a strided view of the same elements.
    pub(crate) fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, transposed: !self.transposed, ..self }
    }

    /// A batch of such matrices, `batch_stride` elements apart.
    pub(crate) fn batched(self, batch_stride: usize) -> Self {
        Self { batch_stride, ..self }
    }

    /// `(row stride, column stride)` of the operand's elements.
    fn strides(&self) -> (usize, usize) {
        if self.transposed { (1, self.row_stride) } else { (self.row_stride, 1) }
    }

    /// The operand's elements from its offset on, checked to hold every element of `batch`
    /// matrices (the bound the unchecked gemm call relies on).
    fn data<T: WithDType>(&self, batch: usize) -> Result<&'a [T]> {
        let data = T::cpu_storage_as_slice(self.storage)?;
        let (rs, cs) = self.strides();
        let last = (batch.max(1) - 1) * self.batch_stride + (self.rows.max(1) - 1) * rs + (self.cols.max(1) - 1) * cs;
        match data.get(self.offset..) {
            Some(data) if self.rows * self.cols == 0 || last < data.len() => Ok(data),
            _ => candle_core::bail!(
                "matmul: a {}×{} operand at offset {} overruns its buffer of {}",
                self.rows,
                self.cols,
                self.offset,
                data.len()
            ),
        }
    }
}

/// `lhs · rhs` for each of `batch` pairs; the row-major (batch, lhs.rows, rhs.cols) products.
///
/// The products run on the `gemm` crate, as in candle's CPU matmul, but write straight into an
/// uninitialised vector: candle zero-fills its output first, a pass over memory as large as
/// the product's output that showed up as 4 % of a UNet training step.
#[allow(unsafe_code)]
pub(crate) fn matmul<T: WithDType>(batch: usize, lhs: Mat, rhs: Mat) -> Result<Vec<T>> {
    if lhs.cols != rhs.rows {
        candle_core::bail!("matmul: ({}×{})·({}×{}) do not chain", lhs.rows, lhs.cols, rhs.rows, rhs.cols);
    }
    let (m, n, k) = (lhs.rows, rhs.cols, lhs.cols);
    let (lhs_data, rhs_data) = (lhs.data::<T>(batch)?, rhs.data::<T>(batch)?);
    let len = batch * m * n;
    if k == 0 || len == 0 {
        return Ok(vec![T::from_f64(0.0); len]);
    }
    let (lhs_rs, lhs_cs) = lhs.strides();
    let (rhs_rs, rhs_cs) = rhs.strides();
    // A batch-invariant rhs and a row-major lhs whose matrices follow one another: one product
    // of (batch·m) rows.
    let (batch, m) = if rhs.batch_stride == 0 && !lhs.transposed && lhs.batch_stride == m * lhs.row_stride {
        (1, batch * m)
    } else {
        (batch, m)
    };
    let mut dst = Vec::<T>::with_capacity(len);
    let product = |step: usize, out: &mut [MaybeUninit<T>], parallelism| {
        // SAFETY: `data` checked that every element the two views address lies inside their
        // buffers; `out` holds one row-major m×n product, which gemm writes (k > 0) without
        // reading it, `read_dst` being false.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr().cast::<T>(),
                1,
                n as isize,
                false,
                lhs_data.as_ptr().add(step * lhs.batch_stride),
                lhs_cs as isize,
                lhs_rs as isize,
                rhs_data.as_ptr().add(step * rhs.batch_stride),
                rhs_cs as isize,
                rhs_rs as isize,
                T::from_f64(0.0),
                T::from_f64(1.0),
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    let outputs = dst.spare_capacity_mut()[..len].chunks_mut(m * n);
    let threads = rayon::current_num_threads();
    if batch > 1 && (m * n * k < GEMM_THREADING_THRESHOLD || batch >= 2 * threads) {
        // Products too small for gemm to split, or enough of them to keep every thread busy:
        // one per task. (gemm splits a product's rows and columns, never its inner dimension,
        // so a product with a long inner dimension and a small output splits badly: sixteen
        // (64 × 1024)·(1024 × 128) products took 3.7 ms split and 1.4 ms one per task.)
        outputs
            .collect::<Vec<_>>()
            .into_par_iter()
            .enumerate()
            .for_each(|(step, out)| product(step, out, Parallelism::None));
    } else {
        let parallelism = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
        outputs.enumerate().for_each(|(step, out)| product(step, out, parallelism));
    }
    // SAFETY: the products above wrote all `len` elements.
    unsafe { dst.set_len(len) };
    Ok(dst)
}

/// A kernel's scratch vector, lent to [`matmul`] as CPU storage and taken back afterwards.
#[derive(Debug, Default)]
pub(crate) struct Buffer<T>(pub(crate) Vec<T>);

impl<T: WithDType> Buffer<T> {
    /// `f(storage)` with the vector as candle CPU storage (moved, not copied).
    pub(crate) fn lend<R>(&mut self, f: impl FnOnce(&CpuStorage) -> Result<R>) -> Result<R> {
        let storage = T::to_cpu_storage_owned(std::mem::take(&mut self.0));
        let result = f(&storage);
        self.0 = T::cpu_storage_data(storage)?;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_of_views_match_the_definition() {
        // A (2×3) at offset 1 of a 7-element buffer; B (3×2) stored as its transpose (2×3).
        let a: Vec<f64> = vec![99.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b_t: Vec<f64> = vec![1.0, 0.0, -1.0, 2.0, 1.0, 0.5];
        let (a, b_t) = (CpuStorage::F64(a), CpuStorage::F64(b_t));
        let product = matmul::<f64>(1, Mat::new(&a, 1, (2, 3)), Mat::new(&b_t, 0, (2, 3)).t()).unwrap();
        // rows of A · columns of B (= rows of Bᵀ)
        assert_eq!(product, vec![1.0 - 3.0, 2.0 + 2.0 + 1.5, 4.0 - 6.0, 8.0 + 5.0 + 3.0]);
        let aat = matmul::<f64>(1, Mat::new(&a, 1, (2, 3)).t(), Mat::new(&a, 1, (2, 3))).unwrap();
        assert_eq!(aat[..3], [1.0 + 16.0, 2.0 + 20.0, 3.0 + 24.0]);
        let err = matmul::<f64>(1, Mat::new(&a, 1, (2, 3)), Mat::new(&a, 1, (2, 3)));
        assert!(err.unwrap_err().to_string().contains("(2×3)·(2×3)"));
    }

    #[test]
    fn row_strided_views_read_every_other_block() {
        // Two (2×2) matrices interleaved row by row, as Winograd's tile-major (T, 16, C) layout
        // stores its 16 positions: row r of matrix k at 4r + 2k (row stride 4, batch stride 2).
        let m = CpuStorage::F64(vec![1.0, 2.0, 10.0, 20.0, 3.0, 4.0, 30.0, 40.0]);
        let views = Mat::new(&m, 0, (2, 2)).with_row_stride(4).batched(2);
        let identity = CpuStorage::F64(vec![1.0, 0.0, 0.0, 1.0]);
        let identity = Mat::new(&identity, 0, (2, 2));
        let copies = matmul::<f64>(2, views, identity).unwrap();
        assert_eq!(copies, vec![1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0]);
        let transposes = matmul::<f64>(2, views.t(), identity).unwrap();
        assert_eq!(transposes, vec![1.0, 3.0, 2.0, 4.0, 10.0, 30.0, 20.0, 40.0]);
    }

    #[test]
    fn batched_products_share_a_stride_zero_operand() {
        let w = CpuStorage::F32(vec![1.0, 2.0]); // (1×2)
        let x = CpuStorage::F32(vec![1.0, 0.0, 0.0, 1.0, 3.0, 4.0, 5.0, 6.0]); // 2 × (2×2)
        let y = matmul::<f32>(2, Mat::new(&w, 0, (1, 2)), Mat::new(&x, 0, (2, 2)).batched(4)).unwrap();
        assert_eq!(y, vec![1.0, 2.0, 13.0, 16.0]);
        let mut buffer = Buffer(vec![2.0f32, 0.0]);
        let lent = buffer.lend(|s| matmul::<f32>(1, Mat::new(s, 0, (1, 2)), Mat::new(&x, 0, (2, 2)))).unwrap();
        assert_eq!((lent, buffer.0), (vec![2.0, 0.0], vec![2.0, 0.0]));
    }

    #[test]
    fn batch_invariant_rhs_stacks_the_lhs_rows() {
        // 3 × (2×2) lhs, one (2×1) rhs: the folded single product gives each batch's rows.
        let x = CpuStorage::F64((1..=12).map(f64::from).collect());
        let w = CpuStorage::F64(vec![1.0, -1.0]);
        let y = matmul::<f64>(3, Mat::new(&x, 0, (2, 2)).batched(4), Mat::new(&w, 0, (2, 1))).unwrap();
        assert_eq!(y, vec![-1.0; 6]);
    }

    #[test]
    fn views_past_the_buffer_are_an_error() {
        let x = CpuStorage::F32(vec![0.0; 6]);
        let err = matmul::<f32>(2, Mat::new(&x, 0, (2, 2)).batched(4), Mat::new(&x, 2, (2, 2))).unwrap_err();
        assert!(err.to_string().contains("overruns its buffer of 6"), "{err}");
        assert!(matmul::<f32>(1, Mat::new(&x, 4, (1, 2)), Mat::new(&x, 0, (2, 3))).is_ok());
    }
}
