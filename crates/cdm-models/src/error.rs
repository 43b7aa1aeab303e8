//! The crate's one error type.

use std::path::PathBuf;

/// A tensor whose shape in a checkpoint differs from the model's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorShapeMismatch {
    /// The parameter name, e.g. `"down_blocks.0.resnets.0.conv1.weight"`.
    pub name: String,
    /// The shape the model expects.
    pub expected: Vec<usize>,
    /// The shape stored in the checkpoint.
    pub found: Vec<usize>,
}

impl std::fmt::Display for TensorShapeMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: expected {:?}, found {:?}", self.name, self.expected, self.found)
    }
}

/// Everything that can go wrong in `cdm-models`.
///
/// Configuration problems are reported when a model is built, checkpoint problems when it is
/// loaded; both name the field or tensor at fault. Tensor failures pass through as
/// [`Error::Candle`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from `cdm-core`.
    #[error(transparent)]
    Core(#[from] cdm_core::Error),

    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A config value is outside its valid range or inconsistent with another field.
    #[error("invalid config field {field}: {reason} (got {value})")]
    InvalidArgument {
        /// The config field, e.g. `"block_out_channels"`.
        field: String,
        /// The offending value, formatted.
        value: String,
        /// What the value must satisfy.
        reason: String,
    },

    /// A config names an architecture variant this crate does not implement.
    #[error("unsupported config field {field}: {value:?} (supported: {supported})")]
    UnsupportedConfig {
        /// The config field, e.g. `"down_block_types[1]"`.
        field: String,
        /// The value found in the config.
        value: String,
        /// The values this crate implements.
        supported: &'static str,
    },

    /// Reading or writing a checkpoint or config file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A JSON config could not be parsed or written.
    #[error("config json {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },

    /// A weights file is not a valid safetensors file (truncated, corrupt, unsupported dtype).
    #[error("corrupt checkpoint {path}: {reason}")]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What the safetensors reader reported.
        reason: String,
    },

    /// A weights file does not hold exactly the model's parameters.
    #[error("checkpoint {path} does not match the model: {}", mismatch_summary(.missing, .unexpected, .mismatched))]
    CheckpointMismatch {
        /// The file.
        path: PathBuf,
        /// Parameters of the model absent from the file (sorted).
        missing: Vec<String>,
        /// Tensors in the file the model has no parameter for (sorted).
        unexpected: Vec<String>,
        /// Tensors present in both with different shapes (sorted by name).
        mismatched: Vec<TensorShapeMismatch>,
    },
}

fn mismatch_summary(missing: &[String], unexpected: &[String], mismatched: &[TensorShapeMismatch]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing [{}]", missing.join(", ")));
    }
    if !unexpected.is_empty() {
        parts.push(format!("unexpected [{}]", unexpected.join(", ")));
    }
    if !mismatched.is_empty() {
        let shapes: Vec<String> = mismatched.iter().map(ToString::to_string).collect();
        parts.push(format!("mis-shaped [{}]", shapes.join("; ")));
    }
    parts.join("; ")
}

impl Error {
    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, value: impl std::fmt::Debug, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { field: field.into(), value: format!("{value:?}"), reason: reason.into() }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
