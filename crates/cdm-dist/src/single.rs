//! One process: every collective is the identity.

use candle_core::Tensor;

use crate::{Collective, Error, Result};

/// The group of one process, rank 0. Costs nothing: no copy, no communication.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn world_size(&self) -> usize {
        1
    }

    fn all_reduce_sum(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.clone())
    }

    fn broadcast(&self, t: &Tensor, root: usize) -> Result<Tensor> {
        match root {
            0 => Ok(t.clone()),
            _ => Err(Error::BadRoot { collective: "broadcast", root, world_size: 1 }),
        }
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.clone())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::Shard;

    #[test]
    fn one_process_collectives_are_the_identity_and_shards_cover_the_batch() {
        let t = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
        let world = SingleProcess;
        for out in [world.all_reduce_sum(&t), world.all_reduce_mean(&t), world.broadcast(&t, 0), world.all_gather(&t)] {
            assert_eq!(out.unwrap().to_vec2::<f32>().unwrap(), t.to_vec2::<f32>().unwrap());
        }
        assert!(matches!(world.broadcast(&t, 1), Err(Error::BadRoot { root: 1, world_size: 1, .. })));
        assert_eq!(Shard::of(7, &world).unwrap(), Shard { start: 0, len: 7 });
    }

    /// A world of `n` ranks seen from rank `r`, for sharding only.
    struct Seat(usize, usize);
    impl Collective for Seat {
        fn rank(&self) -> usize {
            self.0
        }
        fn world_size(&self) -> usize {
            self.1
        }
        fn all_reduce_sum(&self, _: &Tensor) -> Result<Tensor> {
            unreachable!()
        }
        fn broadcast(&self, _: &Tensor, _: usize) -> Result<Tensor> {
            unreachable!()
        }
        fn all_gather(&self, _: &Tensor) -> Result<Tensor> {
            unreachable!()
        }
    }

    #[test]
    fn shards_split_the_batch_evenly_in_rank_order_or_refuse() {
        let shards: Vec<Shard> = (0..4).map(|r| Shard::of(32, &Seat(r, 4)).unwrap()).collect();
        assert_eq!(shards.iter().map(|s| (s.start, s.len)).collect::<Vec<_>>(), [(0, 8), (8, 8), (16, 8), (24, 8)]);
        assert!(matches!(Shard::of(30, &Seat(0, 4)), Err(Error::UnevenBatch { batch: 30, world_size: 4 })));
        // any row count: contiguous, in rank order, sizes within one, empty shards below N rows
        for (rows, expected) in [(10, vec![(0, 2), (2, 3), (5, 2), (7, 3)]), (3, vec![(0, 0), (0, 1), (1, 1), (2, 1)])]
        {
            let got: Vec<_> = (0..4).map(|r| Shard::balanced(rows, &Seat(r, 4))).map(|s| (s.start, s.len)).collect();
            assert_eq!(got, expected, "{rows} rows");
        }
    }
}
