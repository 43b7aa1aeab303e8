//! NCCL on one GPU: a world of one rank, bootstrapped over MPI, runs every collective on CUDA
//! tensors and returns the identity, with the padding of uneven gathers dropped. Skips, saying
//! so, where there is no CUDA device. Run it under `mpirun -np 1` or alone (MPI's singleton
//! start).
#![cfg(feature = "nccl")]

use candle_core::{DType, Device, Tensor};
use cdm_dist::{Collective, Mpi, Nccl};

#[test]
fn one_gpu_collectives_are_the_identity() {
    let device = match Device::new_cuda(0) {
        Ok(device) => device,
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            return;
        }
    };
    let world = Nccl::init(Mpi::init().unwrap(), &device).unwrap();
    assert_eq!((world.rank(), world.world_size()), (0, 1));
    let t = Tensor::arange(0f32, 12.0, &device).unwrap().reshape((3, 4)).unwrap();
    for out in [world.all_reduce_sum(&t), world.all_reduce_mean(&t), world.broadcast(&t, 0), world.all_gather(&t)] {
        assert_eq!(out.unwrap().to_vec2::<f32>().unwrap(), t.to_vec2::<f32>().unwrap());
    }
    let f64s = t.to_dtype(DType::F64).unwrap().t().unwrap(); // strided: made contiguous first
    assert_eq!(world.all_reduce_sum(&f64s).unwrap().to_vec2::<f64>().unwrap(), f64s.to_vec2::<f64>().unwrap());
    let scalar = world.all_gather(&Tensor::new(2.5f32, &device).unwrap()).unwrap();
    assert_eq!(scalar.to_vec1::<f32>().unwrap(), [2.5]);
    // CPU tensors take the MPI path
    let cpu = Tensor::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
    assert_eq!(world.all_reduce_sum(&cpu).unwrap().to_vec1::<f32>().unwrap(), [1.0, 2.0]);
}
