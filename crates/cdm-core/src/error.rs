//! The crate's one error type.

/// Everything that can go wrong in `cdm-core`.
///
/// Variants name the argument or shape at fault, so a caller can report it without
/// re-deriving context. Tensor failures from candle pass through as [`Error::Candle`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A configuration value is outside its valid range.
    #[error("invalid {field}: {reason} (got {value})")]
    InvalidArgument {
        /// The argument or config field, e.g. `"clip"`.
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the value must satisfy.
        reason: &'static str,
    },

    /// Two tensors or arrays that must agree in shape do not.
    #[error("{op}: shape mismatch, expected {expected}, got {got}")]
    ShapeMismatch {
        /// The operation that checked the shapes.
        op: &'static str,
        /// The expected shape, formatted.
        expected: String,
        /// The shape that was passed.
        got: String,
    },

    /// A matrix that must be symmetric positive definite is not.
    #[error("{what} is not symmetric positive definite")]
    NotPositiveDefinite {
        /// Which matrix.
        what: &'static str,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid(field: &'static str, value: impl std::fmt::Display, reason: &'static str) -> Self {
        Error::InvalidArgument { field, value: value.to_string(), reason }
    }

    /// Builds an [`Error::ShapeMismatch`].
    pub fn shape(op: &'static str, expected: impl std::fmt::Debug, got: impl std::fmt::Debug) -> Self {
        Error::ShapeMismatch { op, expected: format!("{expected:?}"), got: format!("{got:?}") }
    }
}
