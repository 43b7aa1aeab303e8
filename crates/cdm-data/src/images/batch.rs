//! Seeded shuffles and training batches, reproducible from `(seed, step)`.
//!
//! Batches walk through epochs without replacement: global sample position `k = step·B + j`
//! (batch size `B`, row `j`) is image `order_e[k mod N]` of epoch `e = ⌊k / N⌋`, where `order_e`
//! is [`ImageDataset::shuffled_indices`]`(seed, e)`. So every image appears once per epoch, and
//! batch `step` can be rebuilt (e.g. after resuming) from `(seed, step, B)` alone. Flips are one
//! fair coin per row from a ChaCha stream of `(seed, step)`.
//!
//! Random streams come from [`cdm_core::NoiseSource`]: domain `"image-epochs"` forked by the epoch
//! for the orders, `"image-flips"` forked by the step for the flips.

use candle_core::{DType, Device, Tensor};
use cdm_core::NoiseSource;
use rand::Rng;
use rand::seq::SliceRandom;

use super::ImageDataset;
use crate::{Error, Result};

impl ImageDataset {
    /// A seeded permutation of `0..len()` for epoch `epoch`: the same `(seed, epoch)` always gives
    /// the same order, different epochs give independent orders.
    pub fn shuffled_indices(&self, seed: u64, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut NoiseSource::new(seed).fork("image-epochs").fork_index(epoch).stream(0));
        order
    }

    /// The image indices of batch `step` (see the module docs): `batch_size` of them, each image
    /// once per epoch.
    ///
    /// Fails with [`Error::InvalidArgument`] when the data set is empty or `batch_size` is 0.
    pub fn batch_indices(&self, step: u64, batch_size: usize, seed: u64) -> Result<Vec<usize>> {
        if self.is_empty() {
            return Err(Error::invalid("dataset", 0, "must hold at least one image to draw batches"));
        }
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be positive"));
        }
        let n = self.len() as u128;
        let first = u128::from(step) * batch_size as u128;
        let mut epoch = first / n;
        let mut order = self.shuffled_indices(seed, epoch as u64);
        let mut indices = Vec::with_capacity(batch_size);
        for k in first..first + batch_size as u128 {
            if k / n != epoch {
                epoch = k / n;
                order = self.shuffled_indices(seed, epoch as u64);
            }
            indices.push(order[(k % n) as usize]);
        }
        Ok(indices)
    }

    /// The horizontal flips of batch `step`: `batch_size` fair coins from `(seed, step)`.
    pub fn batch_flips(&self, step: u64, batch_size: usize, seed: u64) -> Vec<bool> {
        let mut rng = NoiseSource::new(seed).fork("image-flips").fork_index(step).stream(0);
        (0..batch_size).map(|_| rng.random::<bool>()).collect()
    }

    /// Batch `step` as a `(batch_size, C, H, W)` tensor in `[−1, 1]`: the images of
    /// [`batch_indices`](Self::batch_indices), mirrored per [`batch_flips`](Self::batch_flips) when
    /// `random_flip` is set.
    ///
    /// Fails like [`batch_indices`](Self::batch_indices).
    pub fn batch(
        &self,
        step: u64,
        batch_size: usize,
        seed: u64,
        random_flip: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let indices = self.batch_indices(step, batch_size, seed)?;
        let flips = if random_flip { self.batch_flips(step, batch_size, seed) } else { Vec::new() };
        self.to_tensor(&indices, &flips, dtype, device)
    }
}
