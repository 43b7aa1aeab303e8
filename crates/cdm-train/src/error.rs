//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while training.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the diffusion math.
    #[error(transparent)]
    Core(#[from] cdm_core::Error),

    /// An error from an objective.
    #[error(transparent)]
    Objective(#[from] cdm_objectives::Error),

    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A checkpoint is missing, corrupt or does not match the model.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The loss or the gradient became NaN or infinite; the run stopped at the next log or
    /// checkpoint, before writing anything after that step.
    #[error("non-finite {what} at step {step} (last good checkpoint: {last_checkpoint:?})")]
    NonFinite {
        /// The optimizer step at which it happened.
        step: u64,
        /// `"loss"` or `"gradient"`.
        what: &'static str,
        /// The last checkpoint written before it, if any.
        last_checkpoint: Option<PathBuf>,
    },

    /// The ranks of a data-parallel run no longer hold the same weights.
    #[error("data-parallel replicas diverged at step {step}: rank {rank}'s weights differ from rank 0's")]
    Diverged {
        /// The step of the check.
        step: u64,
        /// The first rank that differs.
        rank: usize,
    },

    /// A collective failed (a rank died, or the ranks disagree).
    #[error(transparent)]
    Dist(#[from] cdm_dist::Error),

    /// A training option is outside its valid range.
    #[error("invalid {field}: {reason} (got {value})")]
    InvalidArgument {
        /// The config field.
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the value must satisfy.
        reason: &'static str,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::Checkpoint { path: path.into(), reason: reason.to_string() }
    }

    /// Builds an [`Error::InvalidArgument`].
    pub(crate) fn invalid(field: &'static str, value: impl std::fmt::Display, reason: &'static str) -> Self {
        Error::InvalidArgument { field, value: value.to_string(), reason }
    }
}
