//! The MPI collectives on two ranks: sums, broadcasts and uneven gathers reach every rank
//! exactly, and ranks that pass disagreeing tensors get a typed error instead of a hang.
//!
//! `two_ranks_agree_on_every_collective` starts `mpirun -np 2` on this binary's `rank_entry`,
//! which asserts as one rank; without `mpirun` the test says so and skips.
#![cfg(feature = "mpi")]

mod common;

use candle_core::{Device, Tensor};
use cdm_dist::{Collective, Error, Mpi};

#[test]
#[ignore = "a rank of the MPI job that two_ranks_agree_on_every_collective starts"]
fn rank_entry() {
    let world = Mpi::init().unwrap();
    let (r, n) = (world.rank(), world.world_size());
    assert_eq!(n, 2);
    let cpu = &Device::Cpu;

    // f32 and f64 sums, the same on both ranks
    let t = Tensor::new(&[[1.0f32 + r as f32, 0.5], [-2.0, 0.25 * r as f32]], cpu).unwrap();
    let sum = world.all_reduce_sum(&t).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(sum, [[3.0, 1.0], [-4.0, 0.25]]);
    let mean = world.all_reduce_mean(&t.to_dtype(candle_core::DType::F64).unwrap()).unwrap();
    assert_eq!(mean.to_vec2::<f64>().unwrap(), [[1.5, 0.5], [-2.0, 0.125]]);

    // rank 1's tensor everywhere
    let mine = Tensor::new(&[10.0f32 * r as f32, 1.0], cpu).unwrap();
    assert_eq!(world.broadcast(&mine, 1).unwrap().to_vec1::<f32>().unwrap(), [10.0, 1.0]);
    assert!(matches!(world.broadcast(&mine, 2), Err(Error::BadRoot { root: 2, world_size: 2, .. })));

    // uneven rows: rank 0 has one row, rank 1 two, gathered in rank order
    let rows = Tensor::ones((1 + r, 3), candle_core::DType::F32, cpu).unwrap().affine(1.0, r as f64).unwrap();
    let all = world.all_gather(&rows).unwrap();
    assert_eq!(all.to_vec2::<f32>().unwrap(), [[1.0; 3], [2.0; 3], [2.0; 3]]);
    let scalars = world.all_gather(&Tensor::new(r as f64, cpu).unwrap()).unwrap();
    assert_eq!(scalars.to_vec1::<f64>().unwrap(), [0.0, 1.0]);

    // disagreeing shapes: both ranks learn which rank differs
    let odd = Tensor::zeros(3 + r, candle_core::DType::F32, cpu).unwrap();
    match world.all_reduce_sum(&odd) {
        Err(Error::Mismatch { collective: "all_reduce_sum", rank: 1, .. }) => {}
        other => panic!("rank {r}: expected a mismatch naming rank 1, got {other:?}"),
    }
    let half = Tensor::zeros(2, candle_core::DType::F16, cpu).unwrap();
    assert!(matches!(world.all_reduce_sum(&half), Err(Error::UnsupportedDtype { .. })));
    println!("rank {r}: every collective agreed");
}

#[test]
fn two_ranks_agree_on_every_collective() {
    if let Some(stdout) = common::mpirun_entry("rank_entry", 2) {
        assert_eq!(stdout.matches("every collective agreed").count(), 2, "{stdout}");
    }
}
