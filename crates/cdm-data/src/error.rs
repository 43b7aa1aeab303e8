//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `cdm-data`.
///
/// CSV variants name the file, the 1-based line and, where it applies, the 1-based column, so a
/// caller can print them as they are. Tensor failures from candle pass through as [`Error::Candle`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tensor operation failed inside candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A CSV file holds no data rows (only blank lines, comments or a header).
    #[error("{}: no data rows", path.display())]
    NoRows {
        /// The file.
        path: PathBuf,
    },

    /// A CSV row has a different number of columns than the first row (or the header).
    #[error("{}:{line}: expected {expected} columns, got {got}", path.display())]
    ColumnCount {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The column count of the header or first data row.
        expected: usize,
        /// The column count of this row.
        got: usize,
    },

    /// A CSV field is not a number.
    #[error("{}:{line}: column {column}: `{field}` is not a number", path.display())]
    NotANumber {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The 1-based column number.
        column: usize,
        /// The field as written (trimmed).
        field: String,
    },

    /// A CSV field parses as NaN or ±infinity.
    #[error("{}:{line}: column {column}: `{field}` is not finite", path.display())]
    NonFiniteField {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The 1-based column number.
        column: usize,
        /// The field as written (trimmed).
        field: String,
    },

    /// A flat buffer does not split into rows of `dim` values (or `dim` is 0).
    #[error("point cloud: {len} values do not fill rows of {dim} columns")]
    Shape {
        /// Number of values.
        len: usize,
        /// Requested row width.
        dim: usize,
    },

    /// A point-cloud value is NaN or ±infinity.
    #[error("point cloud: value {index} (row {row}, column {column}) is {value}")]
    NonFinite {
        /// Flat index of the value.
        index: usize,
        /// Its 0-based row.
        row: usize,
        /// Its 0-based column.
        column: usize,
        /// The value.
        value: f64,
    },

    /// A column has (numerically) zero variance, so it cannot be standardised.
    #[error("standardize: column {column} has zero variance (constant value {value})")]
    ZeroVariance {
        /// The 0-based column.
        column: usize,
        /// Its mean.
        value: f64,
    },

    /// A toy name that [`crate::Toy`] does not know.
    #[error("unknown toy `{name}`; valid names: {}", crate::toy::valid_names())]
    UnknownToy {
        /// The name that was given.
        name: String,
    },

    /// An argument is outside its valid range.
    #[error("invalid {field}: {reason} (got {value})")]
    InvalidArgument {
        /// The argument, e.g. `"validation_fraction"`.
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
    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid(field: &'static str, value: impl std::fmt::Display, reason: &'static str) -> Self {
        Error::InvalidArgument { field, value: value.to_string(), reason }
    }
}
