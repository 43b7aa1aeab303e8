//! How the kernels split their work across rayon's threads.
//!
//! An input is cut into blocks whose size depends on its shape only: [`ROW_BLOCK_ELEMS`]
//! elements of whole rows, or one normalisation set, per work item. A blocked reduction sums
//! each block on its own and adds the blocks' f64 partial sums in block order
//! ([`add_in_order`]), so its result is the same bit for bit on any number of threads. Small
//! inputs (below [`PAR_MIN_ELEMS`]) run on the calling thread, block by block as well.

use rayon::prelude::*;

/// Inputs with at least this many elements are split across rayon's threads; smaller ones run
/// on the calling thread (a row of 128 floats is far cheaper than a rayon hand-off).
pub(crate) const PAR_MIN_ELEMS: usize = 32 * 1024;

/// Target elements per parallel work item. Fixed (not derived from the thread count) so that
/// blocked reductions give bit-identical results on any number of threads.
pub(crate) const ROW_BLOCK_ELEMS: usize = 16 * 1024;

/// Calls `f(i, chunk)` for the consecutive `chunk`-element pieces of `out` (the last may be
/// shorter), on rayon's threads when `out` has at least [`PAR_MIN_ELEMS`] elements, and returns
/// the results in order.
pub(crate) fn for_each_chunk<T, R, F>(out: &mut [T], chunk: usize, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(usize, &mut [T]) -> R + Sync + Send,
{
    let chunk = chunk.max(1);
    if out.len() >= PAR_MIN_ELEMS && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(chunk).enumerate().map(|(i, c)| f(i, c)).collect()
    } else {
        out.chunks_mut(chunk).enumerate().map(|(i, c)| f(i, c)).collect()
    }
}

/// Whole rows of `width` elements per work item (at least one).
pub(crate) fn rows_per_block(width: usize) -> usize {
    (ROW_BLOCK_ELEMS / width.max(1)).max(1)
}

/// Adds equally long f64 vectors in order (a fixed order, so the result is deterministic).
pub(crate) fn add_in_order(parts: &[Vec<f64>], width: usize) -> Vec<f64> {
    let mut total = vec![0.0; width];
    for part in parts {
        for (t, &p) in total.iter_mut().zip(part) {
            *t += p;
        }
    }
    total
}
