//! # cdm-dist
//!
//! The collectives that data-parallel training and distributed sampling need, behind one
//! trait, so that nothing else in the workspace knows which implementation runs:
//!
//! | implementation | where | tensors |
//! |---|---|---|
//! | [`SingleProcess`] | the default: one process, every collective is the identity | any device |
//! | `Mpi` (feature `mpi`) | `mpirun -np N …`, one rank per process | CPU (others go through the host) |
//! | `Nccl` (feature `nccl`) | `mpirun -np N …`, one GPU per rank, bootstrapped over MPI | CUDA, GPU to GPU (CPU over MPI) |
//!
//! [`Sharded`] splits a denoiser's calls over the ranks, which is how samplers run distributed.
//!
//! # Contract
//!
//! Every rank calls the same collectives in the same order with tensors of the same dtype
//! (and, for [`Collective::all_reduce_sum`] and [`Collective::broadcast`], the same shape).
//! Results are **identical on every rank**, bit for bit: an all-reduce hands every rank the same
//! sum (MPI_Allreduce's guarantee), so weights updated from it stay identical. A rank that
//! dies makes the others' next collective fail or abort under the launcher, never hang
//! silently: `mpirun` stops the whole job when one process exits with an error.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use cdm_dist::{Collective, SingleProcess};
//!
//! let world = SingleProcess;
//! let g = Tensor::new(&[1.0f32, 2.0], &Device::Cpu)?;
//! assert_eq!(world.all_reduce_mean(&g)?.to_vec1::<f32>()?, [1.0, 2.0]);
//! assert_eq!((world.rank(), world.world_size()), (0, 1));
//! # Ok::<(), cdm_dist::Error>(())
//! ```

mod error;
#[cfg(feature = "mpi")]
mod mpi;
#[cfg(feature = "nccl")]
mod nccl;
mod shard;
pub mod sharded;
mod single;

pub use error::{Error, Result};
#[cfg(feature = "mpi")]
pub use mpi::Mpi;
#[cfg(feature = "nccl")]
pub use nccl::Nccl;
pub use shard::Shard;
pub use sharded::Sharded;
pub use single::SingleProcess;

use candle_core::Tensor;

/// A group of processes that compute together.
pub trait Collective {
    /// This process's index in `0..world_size()`.
    fn rank(&self) -> usize;

    /// The number of processes.
    fn world_size(&self) -> usize;

    /// `Σ_r t_r` over the ranks, on every rank; `t` has the same shape and dtype everywhere.
    fn all_reduce_sum(&self, t: &Tensor) -> Result<Tensor>;

    /// Rank `root`'s `t` on every rank; `t` has the same shape and dtype everywhere.
    fn broadcast(&self, t: &Tensor, root: usize) -> Result<Tensor>;

    /// The ranks' `t` concatenated along dimension 0 in rank order, on every rank; the other
    /// dimensions agree, the first may differ. A scalar counts as one row: N scalars give (N).
    fn all_gather(&self, t: &Tensor) -> Result<Tensor>;

    /// `(1/N)·Σ_r t_r` over the `N` ranks.
    fn all_reduce_mean(&self, t: &Tensor) -> Result<Tensor> {
        match self.world_size() {
            1 => Ok(t.clone()),
            n => Ok(self.all_reduce_sum(t)?.affine(1.0 / n as f64, 0.0)?),
        }
    }

    /// Ends this process and every other rank's at once, with exit status `code`: what a rank
    /// that cannot go on does, so that the others do not wait for it in their next collective.
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }

    /// Whether this is the rank that writes files and shows progress.
    fn is_root(&self) -> bool {
        self.rank() == 0
    }
}
