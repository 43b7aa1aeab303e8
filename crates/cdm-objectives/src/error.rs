//! The crate's one error type.

/// Everything that can go wrong in `cdm-objectives`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the diffusion math (estimators, denoisers, shapes).
    #[error(transparent)]
    Core(#[from] cdm_core::Error),

    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A configuration value is outside its valid range.
    #[error("invalid {field}: {reason} (got {value})")]
    InvalidArgument {
        /// The config field, e.g. `"instances"`.
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the value must satisfy.
        reason: &'static str,
    },

    /// The batch is too small for the objective.
    #[error("{objective}: batch of {got} rows, need at least {need}")]
    BatchTooSmall {
        /// The objective that checked.
        objective: &'static str,
        /// The minimum batch size.
        need: usize,
        /// The batch size passed.
        got: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::InvalidArgument`].
    pub(crate) fn invalid(field: &'static str, value: impl std::fmt::Display, reason: &'static str) -> Self {
        Error::InvalidArgument { field, value: value.to_string(), reason }
    }
}
