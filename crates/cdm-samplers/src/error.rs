//! The crate's one error type.

/// Everything that can go wrong while building or running a sampler.
///
/// Option errors name the field at fault (`"window"`, `"tolerance"`, `"steps"`, …), so a CLI can
/// report them without re-deriving context. Errors from `cdm-core` (schedules, denoisers) and
/// from candle pass through unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `cdm-core` operation failed (a denoiser call, a schedule or spacing).
    #[error(transparent)]
    Core(#[from] cdm_core::Error),

    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A sampler option is outside its valid range.
    #[error("invalid sampler option {field}: {reason} (got {value})")]
    InvalidArgument {
        /// The option or config field, e.g. `"window"`.
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the value must satisfy.
        reason: &'static str,
    },

    /// Two tensors that must agree in shape do not (initial noise, step noise, rows).
    #[error("{op}: shape mismatch, expected {expected}, got {got}")]
    ShapeMismatch {
        /// The operation that checked the shapes.
        op: &'static str,
        /// The expected shape, formatted.
        expected: String,
        /// The shape that was passed.
        got: String,
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
