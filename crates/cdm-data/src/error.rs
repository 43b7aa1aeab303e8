//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in `cdm-data`.
///
/// CSV variants name the file, the 1-based line and, where it applies, the 1-based column; image
/// loader variants name the file (or directory) and say what was expected. A caller can print them
/// as they are. Tensor failures from candle pass through as [`Error::Candle`].
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

    /// A binary file does not start with the expected magic number (IDX header).
    #[error("{}: bad magic number 0x{got:08x}, expected 0x{expected:08x} ({what})", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// What the file should hold, e.g. `"IDX images, u8, 3 dimensions"`.
        what: &'static str,
        /// The expected magic number.
        expected: u32,
        /// The first four bytes, big-endian.
        got: u32,
    },

    /// A file ends before its header or its declared data is complete.
    #[error("{}: truncated: expected {expected} bytes, got {got}", path.display())]
    Truncated {
        /// The file (after decompression, if it was gzipped).
        path: PathBuf,
        /// The number of bytes the header declares (or the minimum for a header).
        expected: u64,
        /// The number of bytes present.
        got: u64,
    },

    /// A file's header declares more or fewer data bytes than follow it (`.npy`).
    #[error("{}: the header declares {values} values ({bytes} bytes), found {found} bytes", path.display())]
    DeclaredData {
        /// The file.
        path: PathBuf,
        /// The number of values the header declares.
        values: u64,
        /// The bytes those values take.
        bytes: u64,
        /// The data bytes present after the header.
        found: u64,
    },

    /// A file's header is not in its format's syntax, or declares an impossible size.
    #[error("{}: malformed {what} header: {reason}", path.display())]
    MalformedHeader {
        /// The file.
        path: PathBuf,
        /// The format, e.g. `".npy"`.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// A size or count in a file disagrees with what its header or a companion file says.
    #[error("{}: {what}: expected {expected}, got {got}", path.display())]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// What is being counted, e.g. `"file size in bytes"` or `"label count"`.
        what: &'static str,
        /// The expected value.
        expected: u64,
        /// The value found.
        got: u64,
    },

    /// A file of fixed-size records (CIFAR-10 binary) whose size is not a multiple of the record.
    #[error("{}: {len} bytes is not a positive multiple of the {record}-byte record", path.display())]
    RecordSize {
        /// The file.
        path: PathBuf,
        /// The file size in bytes.
        len: u64,
        /// The record size in bytes.
        record: u64,
    },

    /// A file whose header is well-formed but describes data this crate does not read.
    #[error("{}: unsupported format: {reason}", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        reason: String,
    },

    /// A file starts with the gzip magic bytes but does not decompress.
    #[error("{}: corrupt gzip stream: {source}", path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's error.
        source: std::io::Error,
    },

    /// The `image` crate could not decode a PNG/JPEG file.
    #[error("{}: cannot decode image: {source}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },

    /// A record's class label is outside the data set's classes.
    #[error("{}: record {record}: label {label} is not below the {classes} classes", path.display())]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// The 0-based record index.
        record: usize,
        /// The label found.
        label: u32,
        /// The number of classes.
        classes: u32,
    },

    /// A CSV field is a number, but not one the format allows.
    #[error("{}:{line}: column {column}: `{field}` is not {expected}", path.display())]
    InvalidField {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The 1-based column number.
        column: usize,
        /// The field as written.
        field: String,
        /// What the field must be, e.g. `"an integer in 0..=16"`.
        expected: &'static str,
    },

    /// A directory lacks the files a loader looks for.
    #[error("{}: no {expected}", dir.display())]
    NoFiles {
        /// The directory.
        dir: PathBuf,
        /// What was looked for, e.g. `"train-images-idx3-ubyte[.gz]"`.
        expected: String,
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
