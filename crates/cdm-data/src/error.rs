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

    /// A `hub:` name that is neither a known data set nor `OWNER/NAME[/CONFIG]`.
    #[cfg(feature = "hub")]
    #[error("unknown hub data set `{name}`: expected mnist, fashion-mnist, cifar10 or OWNER/NAME[/CONFIG]")]
    UnknownHubDataset {
        /// The name that was given.
        name: String,
    },

    /// A file of a hub data set is not in the hub cache, and downloads are off (`HF_HUB_OFFLINE`).
    #[cfg(feature = "hub")]
    #[error(
        "hub data set {repo} (revision {revision}): {file} is not in the hub cache {} and downloads are off \
         (HF_HUB_OFFLINE); download it once with network access, or set HF_HOME to a directory whose \
         hub/ cache holds it",
        cache.display()
    )]
    HubNotCached {
        /// The repository, `OWNER/NAME`.
        repo: String,
        /// The revision, `refs/convert/parquet`.
        revision: String,
        /// The file within the repository.
        file: String,
        /// The hub cache directory (holding `datasets--OWNER--NAME/`).
        cache: PathBuf,
    },

    /// A file of a hub data set is not in the hub cache, and downloading it failed.
    #[cfg(feature = "hub")]
    #[error(
        "hub data set {repo} (revision {revision}): {file} is not in the hub cache {}, and downloading it \
         failed: {source}",
        cache.display()
    )]
    HubDownload {
        /// The repository, `OWNER/NAME`.
        repo: String,
        /// The revision, `refs/convert/parquet`.
        revision: String,
        /// The file within the repository.
        file: String,
        /// The hub cache directory (holding `datasets--OWNER--NAME/`).
        cache: PathBuf,
        /// hf-hub's error (boxed: it is large).
        source: Box<hf_hub::api::sync::ApiError>,
    },

    /// Listing the files of a hub data set failed, and the hub cache has none of them.
    #[cfg(feature = "hub")]
    #[error(
        "hub data set {repo} (revision {revision}): the hub cache {} has none of its files, and listing them \
         failed: {source}",
        cache.display()
    )]
    HubListing {
        /// The repository, `OWNER/NAME`.
        repo: String,
        /// The revision, `refs/convert/parquet`.
        revision: String,
        /// The hub cache directory (holding `datasets--OWNER--NAME/`).
        cache: PathBuf,
        /// hf-hub's error (boxed: it is large).
        source: Box<hf_hub::api::sync::ApiError>,
    },

    /// A hub data set has no parquet files for the split (in the cache, when offline).
    #[cfg(feature = "hub")]
    #[error(
        "hub data set {repo} (revision {revision}): no {expected} files in the hub cache {}{}",
        cache.display(),
        if *offline { " and downloads are off (HF_HUB_OFFLINE)" } else { " nor in the repository" }
    )]
    HubNoFiles {
        /// The repository, `OWNER/NAME`.
        repo: String,
        /// The revision, `refs/convert/parquet`.
        revision: String,
        /// The files looked for, e.g. `"default/train/*.parquet"`.
        expected: String,
        /// The hub cache directory (holding `datasets--OWNER--NAME/`).
        cache: PathBuf,
        /// Whether only the cache was searched.
        offline: bool,
    },

    /// A hub data set has several configurations with the split, and none was named.
    #[cfg(feature = "hub")]
    #[error(
        "hub data set {repo}: the configurations {} all have a {split} split; name one as {repo}/CONFIG",
        configs.join(", ")
    )]
    HubConfigs {
        /// The repository, `OWNER/NAME`.
        repo: String,
        /// The split, `"train"` or `"test"`.
        split: &'static str,
        /// The configurations that have it.
        configs: Vec<String>,
    },

    /// A parquet file cannot be read (its footer, schema or pages).
    #[cfg(feature = "hub")]
    #[error("{}: cannot read parquet: {source}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The parquet reader's error.
        source: parquet::errors::ParquetError,
    },

    /// A parquet file reads, but does not hold what an image loader needs.
    #[cfg(feature = "hub")]
    #[error("{}: {reason}", path.display())]
    ParquetContent {
        /// The file.
        path: PathBuf,
        /// What is missing, e.g. the image column.
        reason: String,
    },

    /// A row of a parquet file lacks a usable value.
    #[cfg(feature = "hub")]
    #[error("{}: row {row}, column `{column}`: {reason}", path.display())]
    ParquetRow {
        /// The file.
        path: PathBuf,
        /// The 0-based row within the file.
        row: usize,
        /// The column.
        column: String,
        /// What is wrong.
        reason: String,
    },

    /// The image in a row of a parquet file does not decode.
    #[cfg(feature = "hub")]
    #[error("{}: row {row}, column `{column}`: cannot decode image: {source}", path.display())]
    ParquetImage {
        /// The file.
        path: PathBuf,
        /// The 0-based row within the file.
        row: usize,
        /// The image column.
        column: String,
        /// The decoder's error (boxed: it is large).
        source: Box<image::ImageError>,
    },

    /// An image of a data set that needs one size has another.
    #[cfg(feature = "hub")]
    #[error(
        "{}: row {row}: the image is {}×{} (H×W), but the images before it are {}×{}; a data set needs one size",
        path.display(), got.0, got.1, expected.0, expected.1
    )]
    ImageSize {
        /// The file.
        path: PathBuf,
        /// The 0-based row within the file.
        row: usize,
        /// `(H, W)` of the first image.
        expected: (usize, usize),
        /// `(H, W)` of this one.
        got: (usize, usize),
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
