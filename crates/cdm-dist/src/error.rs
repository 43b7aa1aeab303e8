//! The crate's one error type.

/// What can go wrong in a collective.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// The ranks passed tensors that cannot be combined.
    #[error("{collective}: rank {rank} has {got}, rank 0 has {expected}")]
    Mismatch {
        /// The collective that found it.
        collective: &'static str,
        /// The rank whose tensor differs.
        rank: usize,
        /// What rank 0 passed (shape or dtype).
        expected: String,
        /// What that rank passed.
        got: String,
    },

    /// A dtype the transport does not carry.
    #[error("{collective}: {dtype:?} tensors are not supported (use f32 or f64)")]
    UnsupportedDtype {
        /// The collective.
        collective: &'static str,
        /// The tensor's dtype.
        dtype: candle_core::DType,
    },

    /// A rank outside the group.
    #[error("{collective}: root rank {root} is not below the world size {world_size}")]
    BadRoot {
        /// The collective.
        collective: &'static str,
        /// The requested root.
        root: usize,
        /// The group's size.
        world_size: usize,
    },

    /// The MPI environment could not start (no launcher, or initialised twice).
    #[error("MPI: {0}")]
    Mpi(String),

    /// NCCL could not start or a collective failed to launch.
    #[error("NCCL: {0}")]
    Nccl(String),

    /// A batch cannot be split evenly over the ranks.
    #[error("a batch of {batch} rows cannot be split evenly over {world_size} ranks")]
    UnevenBatch {
        /// Rows in the global batch.
        batch: usize,
        /// The number of ranks.
        world_size: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
