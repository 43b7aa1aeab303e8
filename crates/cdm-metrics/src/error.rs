//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `cdm-metrics`.
///
/// Argument and shape variants name the argument at fault; file variants name the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An estimator or oracle of `cdm-core` failed.
    #[error(transparent)]
    Core(#[from] cdm_core::Error),

    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// An argument is outside its valid range.
    #[error("invalid {field}: {reason} (got {value})")]
    InvalidArgument {
        /// The argument, e.g. `"bandwidth"`.
        field: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the value must satisfy.
        reason: &'static str,
    },

    /// Arrays that must agree in shape do not.
    #[error("{op}: shape mismatch, expected {expected}, got {got}")]
    ShapeMismatch {
        /// The operation that checked the shapes.
        op: &'static str,
        /// The expected shape, formatted.
        expected: String,
        /// The shape that was passed.
        got: String,
    },

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },

    /// The FID network's weights are not where they were looked for.
    #[error("FID Inception weights not found at {}: run `cargo xtask fetch-fid` (or set CDM_FID_WEIGHTS to the file)", path.display())]
    MissingFidWeights {
        /// The path that was tried.
        path: PathBuf,
    },

    /// A weights file or archive for the FID network is unreadable or does not fit the network.
    #[error("{file}: {detail}")]
    FidWeights {
        /// The file.
        file: String,
        /// What is wrong, naming the tensor where there is one.
        detail: String,
    },

    /// Drawing or encoding a plot failed.
    #[error("{}: plotting failed: {message}", path.display())]
    Plot {
        /// The image being written.
        path: PathBuf,
        /// What plotters reported.
        message: String,
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
