//! The collectives over MPI (rsmpi), for CPU tensors.
//!
//! Each call copies the tensor to a host buffer (free for CPU tensors beyond the copy),
//! runs the MPI collective on it, and builds the result on the tensor's device. Before the
//! payload, every call all-gathers each rank's `(element count, dtype)` and compares them, so
//! ranks that disagree get [`Error::Mismatch`] naming the rank instead of a truncated buffer.
//! All-reduce is `MPI_Allreduce` with `MPI_SUM`, which hands every rank the same result.

use candle_core::{DType, Device, Tensor};
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Equivalence, Root};

use crate::{Collective, Error, Result};

/// `MPI_COMM_WORLD` of a process started by `mpirun` (or alone, as a world of one).
pub struct Mpi {
    world: SimpleCommunicator,
    /// Finalises MPI when dropped; declared last so the communicator goes first.
    _universe: Universe,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mpi {{ rank: {}, world_size: {} }}", self.rank(), self.world_size())
    }
}

impl Mpi {
    /// Initialises MPI; once per process.
    pub fn init() -> Result<Self> {
        let universe = mpi::initialize().ok_or_else(|| Error::Mpi("MPI is already initialised".into()))?;
        Ok(Self { world: universe.world(), _universe: universe })
    }

    /// Every rank's `(element count, dtype code)`, after checking that the dtypes agree and,
    /// with `same_count`, the counts.
    pub(crate) fn agree(&self, collective: &'static str, t: &Tensor, same_count: bool) -> Result<Vec<u64>> {
        let mine = [t.elem_count() as u64, dtype_code(collective, t.dtype())?];
        let mut all = vec![0u64; 2 * self.world_size()];
        self.world.all_gather_into(&mine[..], &mut all[..]);
        for (rank, theirs) in all.chunks_exact(2).enumerate() {
            if theirs[1] != all[1] || (same_count && theirs[0] != all[0]) {
                return Err(Error::Mismatch {
                    collective,
                    rank,
                    expected: format!("{} elements of dtype #{}", all[0], all[1]),
                    got: format!("{} elements of dtype #{}", theirs[0], theirs[1]),
                });
            }
        }
        Ok(all.chunks_exact(2).map(|c| c[0]).collect())
    }

    /// Every rank's number of rows of `t` (one dimension or more), after checking that the
    /// dtypes and the row shapes (all dimensions but the first) agree.
    pub(crate) fn gathered_rows(&self, collective: &'static str, t: &Tensor) -> Result<Vec<usize>> {
        let row: usize = t.dims().iter().skip(1).product();
        let counts = self.agree(collective, t, false)?;
        if let Some(rank) = counts.iter().position(|&c| row == 0 || !(c as usize).is_multiple_of(row)) {
            return Err(Error::Mismatch {
                collective,
                rank,
                expected: format!("rows of {:?}", &t.dims()[1..]),
                got: format!("{} elements", counts[rank]),
            });
        }
        Ok(counts.iter().map(|&c| c as usize / row).collect())
    }
}

fn dtype_code(collective: &'static str, dtype: DType) -> Result<u64> {
    match dtype {
        DType::F32 => Ok(0),
        DType::F64 => Ok(1),
        dtype => Err(Error::UnsupportedDtype { collective, dtype }),
    }
}

/// `t`'s elements, row-major, on the host.
fn host<T: candle_core::WithDType>(t: &Tensor) -> Result<Vec<T>> {
    Ok(t.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<T>()?)
}

/// Runs `f` on `t`'s elements as f32 or f64 and returns its output buffer as a tensor of
/// `shape` on `t`'s device.
fn with_host_buffer(
    t: &Tensor,
    shape: &[usize],
    f32_op: impl FnOnce(Vec<f32>) -> Vec<f32>,
    f64_op: impl FnOnce(Vec<f64>) -> Vec<f64>,
) -> Result<Tensor> {
    let out = match t.dtype() {
        DType::F32 => Tensor::from_vec(f32_op(host(t)?), shape, &Device::Cpu)?,
        _ => Tensor::from_vec(f64_op(host(t)?), shape, &Device::Cpu)?,
    };
    Ok(out.to_device(t.device())?)
}

impl Mpi {
    fn all_reduce_buffer<T: Equivalence + Default + Clone>(&self, send: Vec<T>) -> Vec<T> {
        let mut out = vec![T::default(); send.len()];
        self.world.all_reduce_into(&send[..], &mut out[..], mpi::collective::SystemOperation::sum());
        out
    }

    pub(crate) fn broadcast_buffer<T: Equivalence>(&self, mut buf: Vec<T>, root: usize) -> Vec<T> {
        self.world.process_at_rank(root as i32).broadcast_into(&mut buf[..]);
        buf
    }

    fn all_gather_buffer<T: Equivalence + Default + Clone>(&self, send: Vec<T>, counts: &[u64]) -> Vec<T> {
        let counts: Vec<i32> = counts.iter().map(|&c| c as i32).collect();
        let displs: Vec<i32> = counts.iter().scan(0, |at, &c| Some(std::mem::replace(at, *at + c))).collect();
        let mut out = vec![T::default(); counts.iter().map(|&c| c as usize).sum()];
        let mut partition = PartitionMut::new(&mut out[..], counts, displs);
        self.world.all_gather_varcount_into(&send[..], &mut partition);
        out
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn world_size(&self) -> usize {
        self.world.size() as usize
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    fn all_reduce_sum(&self, t: &Tensor) -> Result<Tensor> {
        self.agree("all_reduce_sum", t, true)?;
        with_host_buffer(t, t.dims(), |v| self.all_reduce_buffer(v), |v| self.all_reduce_buffer(v))
    }

    fn broadcast(&self, t: &Tensor, root: usize) -> Result<Tensor> {
        if root >= self.world_size() {
            return Err(Error::BadRoot { collective: "broadcast", root, world_size: self.world_size() });
        }
        self.agree("broadcast", t, true)?;
        with_host_buffer(t, t.dims(), |v| self.broadcast_buffer(v, root), |v| self.broadcast_buffer(v, root))
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let t = &if t.rank() == 0 { t.reshape(1)? } else { t.clone() };
        let rows = self.gathered_rows("all_gather", t)?;
        let row: usize = t.dims().iter().skip(1).product();
        let counts: Vec<u64> = rows.iter().map(|&n| (n * row) as u64).collect();
        let mut shape = t.dims().to_vec();
        shape[0] = rows.iter().sum();
        with_host_buffer(t, &shape, |v| self.all_gather_buffer(v, &counts), |v| self.all_gather_buffer(v, &counts))
    }
}
