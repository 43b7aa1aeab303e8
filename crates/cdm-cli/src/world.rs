//! `--distributed`: the ranks a command computes with, and the device of this rank.
//!
//! Without the flag a command runs alone ([`SingleProcess`], no cost). With it, `cdm` must be
//! built with the `mpi` feature (and `nccl` for CUDA) and started by `mpirun` or `srun`; every
//! rank runs the same command line. On a CUDA device the collectives go over NCCL, elsewhere
//! over MPI, and `--device cuda` without an ordinal means the GPU of the rank's local index on
//! its node (one GPU per rank). A rank that fails ends the whole job ([`or_abort`]): the others
//! would wait for it forever.

use anyhow::Result;
use candle_core::{Device, Tensor};
use cdm_dist::{Collective, SingleProcess};

use crate::device::parse_device;

/// This process's group of ranks and its device, parsed from `device`.
pub fn join(distributed: bool, device: &str) -> Result<(Box<dyn Collective>, Device)> {
    if !distributed {
        return Ok((Box::new(SingleProcess), parse_device(device)?));
    }
    join_mpi(device)
}

#[cfg(not(feature = "mpi"))]
fn join_mpi(_: &str) -> Result<(Box<dyn Collective>, Device)> {
    anyhow::bail!(
        "--distributed needs a cdm built with MPI: cargo build --release -p cdm-cli --features mpi \
         (Open MPI: apt-get install libopenmpi-dev openmpi-bin libclang-dev; add the nccl feature for CUDA)"
    )
}

#[cfg(feature = "mpi")]
fn join_mpi(device: &str) -> Result<(Box<dyn Collective>, Device)> {
    let mpi = cdm_dist::Mpi::init()?;
    let device = match device.trim().eq_ignore_ascii_case("cuda") {
        true => parse_device(&format!("cuda:{}", local_rank().unwrap_or(mpi.rank())))?,
        false => parse_device(device)?,
    };
    tracing::info!(rank = mpi.rank(), world_size = mpi.world_size(), ?device, "joined the MPI job");
    #[cfg(feature = "nccl")]
    if device.is_cuda() {
        return Ok((Box::new(cdm_dist::Nccl::init(mpi, &device)?), device));
    }
    Ok((Box::new(mpi), device))
}

/// The rank's index among the ranks on its node, as Open MPI, MPICH or Slurm tell it.
#[cfg(feature = "mpi")]
fn local_rank() -> Option<usize> {
    ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"]
        .iter()
        .find_map(|var| std::env::var(var).ok()?.parse().ok())
}

/// Rank 0's `text` on every rank (run names carry a time stamp that the ranks would not agree
/// on).
pub fn root_text(world: &dyn Collective, text: String) -> Result<String> {
    if world.world_size() == 1 {
        return Ok(text);
    }
    let cpu = &Device::Cpu;
    let len = world.broadcast(&Tensor::new(text.len() as f64, cpu)?, 0)?.to_scalar::<f64>()? as usize;
    let mut bytes: Vec<f32> = text.bytes().map(f32::from).collect();
    bytes.resize(len, 0.0);
    let bytes = world.broadcast(&Tensor::from_vec(bytes, len, cpu)?, 0)?.to_vec1::<f32>()?;
    Ok(String::from_utf8(bytes.into_iter().map(|b| b as u8).collect())?)
}

/// `f()`'s result; in a job of several ranks an error is printed with this rank's number and
/// ends every rank (`MPI_Abort`), since the others would wait for this one forever.
/// Log lines carry the rank meanwhile.
pub fn or_abort<T>(world: &dyn Collective, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let span = (world.world_size() > 1).then(|| tracing::info_span!("rank", r = world.rank()).entered());
    let result = f();
    drop(span);
    match result {
        Err(e) if world.world_size() > 1 => {
            eprintln!("rank {} of {}:", world.rank(), world.world_size());
            crate::print_error(&e);
            world.abort(1)
        }
        result => result,
    }
}
