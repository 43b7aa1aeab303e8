//! The collectives over NCCL, for CUDA tensors, one GPU per rank, bootstrapped over MPI.
//!
//! NCCL's ranks must share a unique id before their communicator exists, and NCCL does not
//! launch processes. [`Nccl::init`] takes the MPI world that `mpirun` (or Slurm) made: rank 0
//! draws the id (`ncclGetUniqueId`), MPI broadcasts its 128 bytes, and every rank joins with
//! `ncclCommInitRank` on the stream of its candle device. Collectives are queued on that
//! stream, behind the kernels that produced their inputs: no host synchronisation.
//!
//! Each call first checks the ranks' element counts and dtypes over MPI (a few bytes, as
//! [`crate::Mpi`] does), so disagreeing ranks get [`crate::Error::Mismatch`] instead of a hung
//! kernel; then the payload moves GPU to GPU. All-reduce is `ncclAllReduce` with `ncclSum`,
//! which hands every rank the same result. NCCL's all-gather takes equal counts, so uneven
//! rows are padded to the longest rank's and the padding is dropped. Tensors that are not on
//! a CUDA device go through MPI.

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, ValidAsZeroBits};
use candle_core::cuda_backend::cudarc::nccl::{Comm, Id, NcclType, ReduceOp};
use candle_core::cuda_backend::{CudaDType, CudaDevice};
use candle_core::{CpuStorage, CudaStorage, CustomOp1, DType, Device, Layout, Shape, Tensor};

use crate::{Collective, Error, Mpi, Result};

/// NCCL over the ranks of an MPI world, each on its own GPU.
pub struct Nccl {
    comm: Comm,
    /// Checks agreement, carries CPU tensors, and finalises MPI after `comm` is gone.
    mpi: Mpi,
}

impl std::fmt::Debug for Nccl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Nccl {{ rank: {}, world_size: {} }}", self.rank(), self.world_size())
    }
}

impl Nccl {
    /// Joins the ranks of `mpi` on `device`, a CUDA device of this process (usually
    /// `cuda:<local rank>`, one GPU per rank).
    pub fn init(mpi: Mpi, device: &Device) -> Result<Self> {
        let Device::Cuda(cuda) = device else {
            return Err(Error::Nccl(format!("needs a CUDA device, got {device:?}")));
        };
        let id = match mpi.is_root() {
            true => Id::new().map_err(|e| Error::Nccl(format!("ncclGetUniqueId: {e:?}")))?,
            false => Id::uninit([0; 128]),
        };
        let bytes = mpi.broadcast_buffer(id.internal().to_vec(), 0);
        let id = Id::uninit(bytes.try_into().expect("the id is 128 bytes on every rank"));
        let comm = Comm::from_rank(cuda.cuda_stream(), mpi.rank(), mpi.world_size(), id)
            .map_err(|e| Error::Nccl(format!("ncclCommInitRank (rank {}): {e:?}", mpi.rank())))?;
        Ok(Self { comm, mpi })
    }
}

/// Which NCCL collective a [`NcclOp`] runs.
#[derive(Clone, Copy)]
enum Kind {
    AllReduceSum,
    Broadcast {
        root: usize,
    },
    /// Equal-sized inputs from every rank, concatenated along dimension 0.
    AllGather,
}

/// One NCCL collective as a candle op, so it runs on the tensor's storage in place of a copy.
struct NcclOp<'a> {
    comm: &'a Comm,
    kind: Kind,
}

impl NcclOp<'_> {
    fn run<T: CudaDType + NcclType + DeviceRepr + ValidAsZeroBits>(
        &self,
        storage: &CudaStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{}: the input must be contiguous", self.name())
        };
        let src = storage.as_cuda_slice::<T>()?.slice(start..end);
        let device: CudaDevice = storage.device().clone();
        let shape = match self.kind {
            Kind::AllGather => {
                let mut dims = layout.dims().to_vec();
                dims[0] *= self.comm.world_size();
                Shape::from(dims)
            }
            _ => layout.shape().clone(),
        };
        let mut dst = device.alloc_zeros::<T>(shape.elem_count())?;
        let status = match self.kind {
            Kind::AllReduceSum => self.comm.all_reduce(&src, &mut dst, &ReduceOp::Sum),
            Kind::Broadcast { root } => self.comm.broadcast(Some(&src), &mut dst, root as i32),
            Kind::AllGather => self.comm.all_gather(&src, &mut dst),
        };
        status.map_err(|e| candle_core::Error::Msg(format!("{}: {e:?}", self.name())))?;
        Ok((CudaStorage::wrap_cuda_slice(dst, device), shape))
    }
}

impl CustomOp1 for NcclOp<'_> {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::AllReduceSum => "ncclAllReduce",
            Kind::Broadcast { .. } => "ncclBroadcast",
            Kind::AllGather => "ncclAllGather",
        }
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        candle_core::bail!("{}: CPU tensors go through MPI", self.name())
    }

    fn cuda_fwd(&self, storage: &CudaStorage, layout: &Layout) -> candle_core::Result<(CudaStorage, Shape)> {
        match storage.dtype() {
            DType::F32 => self.run::<f32>(storage, layout),
            DType::F64 => self.run::<f64>(storage, layout),
            dtype => candle_core::bail!("{}: {dtype:?} is not supported (use f32 or f64)", self.name()),
        }
    }
}

impl Nccl {
    fn apply(&self, t: &Tensor, kind: Kind) -> Result<Tensor> {
        Ok(t.contiguous()?.apply_op1_no_bwd(&NcclOp { comm: &self.comm, kind })?)
    }
}

impl Collective for Nccl {
    fn rank(&self) -> usize {
        self.mpi.rank()
    }

    fn world_size(&self) -> usize {
        self.mpi.world_size()
    }

    fn abort(&self, code: i32) -> ! {
        self.mpi.abort(code)
    }

    fn all_reduce_sum(&self, t: &Tensor) -> Result<Tensor> {
        if !t.device().is_cuda() {
            return self.mpi.all_reduce_sum(t);
        }
        self.mpi.agree("all_reduce_sum", t, true)?;
        self.apply(t, Kind::AllReduceSum)
    }

    fn broadcast(&self, t: &Tensor, root: usize) -> Result<Tensor> {
        if !t.device().is_cuda() {
            return self.mpi.broadcast(t, root);
        }
        if root >= self.world_size() {
            return Err(Error::BadRoot { collective: "broadcast", root, world_size: self.world_size() });
        }
        self.mpi.agree("broadcast", t, true)?;
        self.apply(t, Kind::Broadcast { root })
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        if !t.device().is_cuda() {
            return self.mpi.all_gather(t);
        }
        let t = &if t.rank() == 0 { t.reshape(1)? } else { t.clone() };
        let rows = self.mpi.gathered_rows("all_gather", t)?;
        let longest = rows.iter().copied().max().unwrap_or(0);
        if longest == 0 {
            return Ok(t.clone());
        }
        let padded = match longest - t.dim(0)? {
            0 => t.clone(),
            pad => t.pad_with_zeros(0, 0, pad)?,
        };
        let all = self.apply(&padded, Kind::AllGather)?;
        if rows.iter().all(|&n| n == longest) {
            return Ok(all);
        }
        let parts = rows
            .iter()
            .enumerate()
            .map(|(r, &n)| all.narrow(0, r * longest, n))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Tensor::cat(&parts, 0)?)
    }
}
