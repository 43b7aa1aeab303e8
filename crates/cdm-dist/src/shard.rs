//! A rank's share of a global batch.
//!
//! A global batch of `B` rows over `N` ranks gives rank `r` the rows `[⌊r·B/N⌋, ⌊(r+1)·B/N⌋)`:
//! contiguous, in rank order, sizes differing by at most one. Training asks for an even split
//! ([`Shard::of`]); inference takes any ([`Shard::balanced`]). Row `i` of a training shard is
//! global row `start + i`, and draws the noise stream of that global index
//! (`NoiseSource::with_offset`), so the random numbers of a sample do not depend on how many
//! ranks share the batch.

use crate::{Collective, Error, Result};

/// Rows `[start, start + len)` of a global batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The first global row.
    pub start: usize,
    /// Rows in the shard.
    pub len: usize,
}

impl Shard {
    /// This rank's equal share of `batch` rows; the batch must divide evenly, so that every
    /// rank's mean carries the same weight in the all-reduced mean.
    pub fn of(batch: usize, world: &dyn Collective) -> Result<Self> {
        let n = world.world_size();
        if !batch.is_multiple_of(n) {
            return Err(Error::UnevenBatch { batch, world_size: n });
        }
        Ok(Self::balanced(batch, world))
    }

    /// This rank's share of `rows` rows, any number: `⌊r·rows/N⌋ … ⌊(r+1)·rows/N⌋`, empty on
    /// some ranks when `rows < N`.
    pub fn balanced(rows: usize, world: &dyn Collective) -> Self {
        let (r, n) = (world.rank(), world.world_size());
        let bound = |r: usize| r * rows / n;
        Self { start: bound(r), len: bound(r + 1) - bound(r) }
    }
}
