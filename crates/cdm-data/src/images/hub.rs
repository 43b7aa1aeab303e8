//! `hub:` data sets: image parquet files from the Hugging Face hub, read through its local cache
//! (feature `hub`, off by default).
//!
//! # Names
//!
//! Every name reads the hub's parquet conversion, revision [`PARQUET_REVISION`]
//! (`refs/convert/parquet`), which the hub keeps for each public data set:
//!
//! | name | repository | files of a split (`train`, `test`) |
//! |---|---|---|
//! | `mnist` | `ylecun/mnist` | `mnist/<split>/0000.parquet` |
//! | `fashion-mnist` | `zalando-datasets/fashion_mnist` | `fashion_mnist/<split>/0000.parquet` |
//! | `cifar10` | `uoft-cs/cifar10` | `plain_text/<split>/0000.parquet` |
//! | `OWNER/NAME[/CONFIG]` | `OWNER/NAME` | `CONFIG/<split>/*.parquet`, in name order |
//!
//! Without `/CONFIG`, a repository's configuration is `default` when it has one with the split,
//! else the only one that has it; several others are [`Error::HubConfigs`].
//!
//! # The cache
//!
//! The cache is hf-hub's, shared with Python's `huggingface_hub`: `$HF_HOME/hub`, or
//! `~/.cache/huggingface/hub` when `HF_HOME` is unset. Per repository it holds
//!
//! ```text
//! datasets--OWNER--NAME/
//!     refs/refs/convert/parquet        the commit the revision points to, as text
//!     snapshots/<commit>/<file>        each downloaded file (a link into blobs/)
//!     blobs/<etag>
//! ```
//!
//! # Finding the files
//!
//! 1. Each file is looked up in the snapshot of the cached commit first, without network.
//! 2. When it is missing and `HF_HUB_OFFLINE` is `1` (or `true`, `yes`, `on`), the load fails at
//!    once with [`Error::HubNotCached`], naming the repository, revision, file and cache.
//! 3. Otherwise hf-hub's blocking API downloads it once (from `HF_ENDPOINT`, default
//!    `https://huggingface.co`, with the token in `$HF_HOME/token` if there is one) into the same
//!    cache, with a progress bar on stderr. A failure is [`Error::HubDownload`]: the same facts
//!    and the reason.
//!
//! `OWNER/NAME` lists its split from the cached snapshot when that holds any of its files, with
//! no network; else from the hub's file list (or [`Error::HubNoFiles`] when offline). A
//! snapshot that an interrupted download left with only some of the files is used as it is:
//! delete `datasets--OWNER--NAME/` to list the repository again.
//!
//! # Rows
//!
//! [`load_parquet_images`] reads the files row by row (the `parquet` crate's record API; snappy
//! and gzip pages):
//!
//! - **images**: the first struct column with a binary `bytes` field (the `datasets` library's
//!   `Image` feature, `{bytes, path}`), else a binary column named `image` or `img`; PNG or JPEG,
//!   decoded by content within [`MAX_DECODE_BYTES`]. Gray images (L, LA) give one channel,
//!   colour (RGB, RGBA) three, alpha dropped; once one image has colour the data set has three
//!   channels and gray images are replicated. Every image must have one height and width
//!   ([`Error::ImageSize`] names the first that differs); pixels are stored `C×H×W`, row by
//!   row, with white level 255;
//! - **labels**: an integer column named `label`. The data set has labels when every row of every
//!   file has a label in `0..=u32::MAX` (test splits marked `-1` have none).
//!
//! Rows are counted from 0 within their file in error messages.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};
use image::{DynamicImage, ImageReader, Limits};
use parquet::basic::Type as PhysicalType;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use parquet::record::reader::RowIter;
use parquet::schema::types::Type;

use super::folder::MAX_DECODE_BYTES;
use super::{ImageDataset, Split};
use crate::{Error, Result};

/// The revision of the hub's parquet conversion of a data set.
pub const PARQUET_REVISION: &str = "refs/convert/parquet";

/// A `hub:` data set (see the [module docs](self) for the repositories and files).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HubDataset {
    /// `mnist`: LeCun's digits, `ylecun/mnist`.
    Mnist,
    /// `fashion-mnist`: Zalando's Fashion-MNIST, `zalando-datasets/fashion_mnist`.
    FashionMnist,
    /// `cifar10`: CIFAR-10, `uoft-cs/cifar10`.
    Cifar10,
    /// `OWNER/NAME[/CONFIG]`: any image data set on the hub.
    Parquet {
        /// `OWNER/NAME`.
        repo: String,
        /// The configuration (the first directory of the conversion), if named.
        config: Option<String>,
    },
}

impl HubDataset {
    /// The hub repository, `OWNER/NAME`.
    pub fn repo(&self) -> &str {
        match self {
            HubDataset::Mnist => "ylecun/mnist",
            HubDataset::FashionMnist => "zalando-datasets/fashion_mnist",
            HubDataset::Cifar10 => "uoft-cs/cifar10",
            HubDataset::Parquet { repo, .. } => repo,
        }
    }

    /// The configuration and single file of a split of the named data sets; `None` for
    /// `OWNER/NAME`, whose files are listed.
    fn known_config(&self) -> Option<&'static str> {
        match self {
            HubDataset::Mnist => Some("mnist"),
            HubDataset::FashionMnist => Some("fashion_mnist"),
            HubDataset::Cifar10 => Some("plain_text"),
            HubDataset::Parquet { .. } => None,
        }
    }
}

impl FromStr for HubDataset {
    type Err = Error;

    /// Parses `mnist`, `fashion-mnist`, `cifar10` or `OWNER/NAME[/CONFIG]` (each part ASCII
    /// letters, digits, `-`, `_` and `.`, not `.` or `..`); anything else is
    /// [`Error::UnknownHubDataset`].
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "mnist" => HubDataset::Mnist,
            "fashion-mnist" => HubDataset::FashionMnist,
            "cifar10" => HubDataset::Cifar10,
            _ => {
                let parts: Vec<&str> = name.split('/').collect();
                if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| is_name_part(p)) {
                    return Err(Error::UnknownHubDataset { name: name.to_string() });
                }
                HubDataset::Parquet {
                    repo: format!("{}/{}", parts[0], parts[1]),
                    config: parts.get(2).map(|c| c.to_string()),
                }
            }
        })
    }
}

impl fmt::Display for HubDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HubDataset::Mnist => f.write_str("mnist"),
            HubDataset::FashionMnist => f.write_str("fashion-mnist"),
            HubDataset::Cifar10 => f.write_str("cifar10"),
            HubDataset::Parquet { repo, config: None } => f.write_str(repo),
            HubDataset::Parquet { repo, config: Some(config) } => write!(f, "{repo}/{config}"),
        }
    }
}

/// Whether `part` may be one `/`-separated part of a repository name or configuration.
fn is_name_part(part: &str) -> bool {
    !part.is_empty()
        && part != "."
        && part != ".."
        && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The hub cache and how to fill it: where it is, whether downloading is allowed, and from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hub {
    cache: PathBuf,
    offline: bool,
    endpoint: Option<String>,
}

impl Hub {
    /// The cache hf-hub uses (`$HF_HOME/hub`, else `~/.cache/huggingface/hub`), offline when
    /// `HF_HUB_OFFLINE` is `1`, `true`, `yes` or `on` (any case), downloading from `HF_ENDPOINT`
    /// when set.
    ///
    /// Fails with [`Error::InvalidArgument`] when `HF_HOME` is unset and there is no home
    /// directory to put the cache in.
    pub fn from_env() -> Result<Self> {
        if std::env::var_os("HF_HOME").is_none() && std::env::home_dir().is_none() {
            return Err(Error::invalid("HF_HOME", "unset", "must be set when there is no home directory"));
        }
        let offline = std::env::var("HF_HUB_OFFLINE")
            .is_ok_and(|v| ["1", "true", "yes", "on"].contains(&v.trim().to_ascii_lowercase().as_str()));
        Ok(Self { cache: Cache::from_env().path().clone(), offline, endpoint: std::env::var("HF_ENDPOINT").ok() })
    }

    /// The hub cache `dir` (the directory holding `datasets--OWNER--NAME/`), downloading what it
    /// lacks from `https://huggingface.co`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { cache: dir.into(), offline: false, endpoint: None }
    }

    /// Never downloads: a file missing from the cache is [`Error::HubNotCached`] at once.
    pub fn with_offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// Downloads from `endpoint` (a URL like `https://huggingface.co`) instead.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    /// Whether downloads are off.
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// The images (and labels) of `split` of `dataset`, from the cache, downloading missing
    /// files unless offline (see the [module docs](self)).
    ///
    /// Fails with [`Error::HubNotCached`], [`Error::HubDownload`], [`Error::HubNoFiles`],
    /// [`Error::HubListing`] or [`Error::HubConfigs`] when the files cannot be had, and with the
    /// errors of [`load_parquet_images`] when they do not hold one size of images.
    pub fn load(&self, dataset: &HubDataset, split: Split) -> Result<ImageDataset> {
        load_parquet_images(&self.files(dataset, split)?)
    }

    /// The local paths of the parquet files of `split` of `dataset`, in order.
    fn files(&self, dataset: &HubDataset, split: Split) -> Result<Vec<PathBuf>> {
        let split = split_dir(split);
        let repo = dataset.repo();
        if let Some(config) = dataset.known_config() {
            return Ok(vec![self.resolve(repo, &format!("{config}/{split}/0000.parquet"))?]);
        }
        let requested = match dataset {
            HubDataset::Parquet { config, .. } => config.as_deref(),
            _ => None,
        };
        let snapshot = self.snapshot(repo);
        let cached = match &snapshot {
            Some(dir) => cached_files(dir, split)?,
            None => BTreeMap::new(),
        };
        let expected = || format!("{}/{split}/*.parquet", requested.unwrap_or("CONFIG"));
        if !cached.is_empty() && (requested.is_none() || requested.is_some_and(|c| cached.contains_key(c))) {
            return self.choose(repo, split, requested, cached, expected);
        }
        if self.offline {
            return Err(self.no_files(repo, expected()));
        }
        let listing = self.api_repo(repo).and_then(|api| api.info()).map_err(|source| Error::HubListing {
            repo: repo.to_string(),
            revision: PARQUET_REVISION.to_string(),
            cache: self.cache.clone(),
            source: Box::new(source),
        })?;
        let mut remote: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for sibling in listing.siblings {
            if let [config, dir, name] = sibling.rfilename.split('/').collect::<Vec<_>>()[..]
                && dir == split
                && is_name_part(config)
                && is_name_part(name)
                && name.ends_with(".parquet")
            {
                remote.entry(config.to_string()).or_default().push(sibling.rfilename.clone());
            }
        }
        remote.values_mut().for_each(|files| files.sort());
        self.choose(repo, split, requested, remote, expected)?.iter().map(|file| self.resolve(repo, file)).collect()
    }

    /// The files of the requested configuration, else of `default`, else of the only one.
    fn choose<T>(
        &self,
        repo: &str,
        split: &'static str,
        requested: Option<&str>,
        mut configs: BTreeMap<String, Vec<T>>,
        expected: impl Fn() -> String,
    ) -> Result<Vec<T>> {
        let chosen = match requested {
            Some(config) => configs.remove(config),
            None if configs.len() > 1 && !configs.contains_key("default") => {
                return Err(Error::HubConfigs {
                    repo: repo.to_string(),
                    split,
                    configs: configs.into_keys().collect(),
                });
            }
            None => configs.remove("default").or_else(|| configs.into_values().next()),
        };
        chosen.filter(|files| !files.is_empty()).ok_or_else(|| self.no_files(repo, expected()))
    }

    fn no_files(&self, repo: &str, expected: String) -> Error {
        Error::HubNoFiles {
            repo: repo.to_string(),
            revision: PARQUET_REVISION.to_string(),
            expected,
            cache: self.cache.clone(),
            offline: self.offline,
        }
    }

    /// The local path of `file` of `repo`: the cached copy, else (unless offline) a download.
    fn resolve(&self, repo: &str, file: &str) -> Result<PathBuf> {
        if let Some(path) = self.snapshot(repo).map(|dir| dir.join(file)).filter(|path| path.is_file()) {
            return Ok(path);
        }
        let (repo, revision, file, cache) =
            (repo.to_string(), PARQUET_REVISION.to_string(), file.to_string(), self.cache.clone());
        if self.offline {
            return Err(Error::HubNotCached { repo, revision, file, cache });
        }
        match self.api_repo(&repo).and_then(|api| api.download(&file)) {
            Ok(path) => Ok(path),
            Err(source) => Err(Error::HubDownload { repo, revision, file, cache, source: Box::new(source) }),
        }
    }

    /// `snapshots/<commit>/` of the commit the cache's `refs/refs/convert/parquet` names, if any.
    fn snapshot(&self, repo: &str) -> Option<PathBuf> {
        let folder = self.cache.join(hub_repo(repo).folder_name());
        let commit = std::fs::read_to_string(folder.join("refs").join(PARQUET_REVISION)).ok()?;
        let commit = commit.trim();
        let plain = !commit.is_empty() && commit.chars().all(|c| c.is_ascii_alphanumeric());
        plain.then(|| folder.join("snapshots").join(commit))
    }

    /// hf-hub's blocking API on this cache, for `repo` at [`PARQUET_REVISION`].
    fn api_repo(&self, repo: &str) -> std::result::Result<hf_hub::api::sync::ApiRepo, hf_hub::api::sync::ApiError> {
        let mut builder = ApiBuilder::from_cache(Cache::new(self.cache.clone()));
        if let Some(endpoint) = &self.endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        Ok(builder.build()?.repo(hub_repo(repo)))
    }
}

/// `repo` as a data set repository at [`PARQUET_REVISION`].
fn hub_repo(repo: &str) -> Repo {
    Repo::with_revision(repo.to_string(), RepoType::Dataset, PARQUET_REVISION.to_string())
}

/// The directory of a split in the parquet conversion.
fn split_dir(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "test",
    }
}

/// The `*.parquet` files of `<config>/<split>/` under a snapshot directory, per configuration,
/// sorted by name (links followed).
fn cached_files(snapshot: &Path, split: &str) -> Result<BTreeMap<String, Vec<PathBuf>>> {
    let mut configs = BTreeMap::new();
    for config in sorted_entries(snapshot)? {
        let dir = config.join(split);
        if !dir.is_dir() {
            continue;
        }
        let files: Vec<PathBuf> = sorted_entries(&dir)?
            .into_iter()
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        if let (false, Some(name)) = (files.is_empty(), config.file_name()) {
            configs.insert(name.to_string_lossy().into_owned(), files);
        }
    }
    Ok(configs)
}

/// The entries of `dir`, sorted; none when it does not exist.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut paths = entries.map(|e| e.map(|e| e.path())).collect::<std::io::Result<Vec<_>>>().map_err(io)?;
    paths.sort();
    Ok(paths)
}

/// The images of `files`, one after another, as one data set (see "Rows" in the
/// [module docs](self)).
///
/// Fails with [`Error::Io`] or [`Error::Parquet`] when a file cannot be read as parquet,
/// [`Error::ParquetContent`] when a file has no image column or there are no rows,
/// [`Error::ParquetRow`] on a missing image, [`Error::ParquetImage`] when an image does not
/// decode and [`Error::ImageSize`] when images differ in size.
pub fn load_parquet_images(files: &[PathBuf]) -> Result<ImageDataset> {
    let mut images = Images::default();
    for path in files {
        images.read_file(path)?;
    }
    images.finish(files)
}

/// Where a file keeps its images and labels.
struct Columns {
    /// The image column's name.
    image: String,
    /// Whether the image column is a struct with a `bytes` field (else plain bytes).
    image_struct: bool,
    /// The integer `label` column, if there is one.
    label: Option<String>,
    /// The file schema cut down to these columns.
    projection: Type,
}

impl Columns {
    /// Finds the image and label columns of a file's root schema.
    fn find(root: &Type, path: &Path) -> Result<Self> {
        let fields = root.get_fields();
        let binary = |t: &Type| t.is_primitive() && t.get_physical_type() == PhysicalType::BYTE_ARRAY;
        let image_struct =
            fields.iter().find(|f| f.is_group() && f.get_fields().iter().any(|c| c.name() == "bytes" && binary(c)));
        let (image, is_struct) = match image_struct {
            Some(field) => (field, true),
            None => match fields.iter().find(|f| matches!(f.name(), "image" | "img") && binary(f)) {
                Some(field) => (field, false),
                None => {
                    let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
                    let reason = format!(
                        "no image column (a struct with a binary `bytes` field, or a binary `image`/`img` column) among the columns [{}]",
                        names.join(", ")
                    );
                    return Err(Error::ParquetContent { path: path.to_path_buf(), reason });
                }
            },
        };
        let label = fields.iter().find(|f| {
            f.name() == "label"
                && f.is_primitive()
                && matches!(f.get_physical_type(), PhysicalType::INT32 | PhysicalType::INT64)
        });
        let projected = [Some(image), label].into_iter().flatten().cloned().collect();
        let projection = Type::group_type_builder(root.name())
            .with_fields(projected)
            .build()
            .map_err(|source| Error::Parquet { path: path.to_path_buf(), source })?;
        Ok(Self {
            image: image.name().to_string(),
            image_struct: is_struct,
            label: label.map(|l| l.name().to_string()),
            projection,
        })
    }
}

/// The images read so far.
#[derive(Default)]
struct Images {
    /// `C×H×W` bytes per image.
    pixels: Vec<u8>,
    /// 0 before the first image, then 1 or 3.
    channels: usize,
    /// `(H, W)` of the first image.
    size: Option<(usize, usize)>,
    count: usize,
    /// One label per image while every row so far had one (`None` before the first file).
    labels: Option<Vec<u32>>,
    /// Whether some row had no usable label.
    unlabelled: bool,
}

impl Images {
    fn read_file(&mut self, path: &Path) -> Result<()> {
        let parquet = |source| Error::Parquet { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let reader = SerializedFileReader::new(file).map_err(parquet)?;
        let columns = Columns::find(reader.metadata().file_metadata().schema(), path)?;
        if columns.label.is_none() {
            self.unlabelled = true;
        }
        let mut row = 0;
        for group in 0..reader.num_row_groups() {
            let group = reader.get_row_group(group).map_err(parquet)?;
            for record in RowIter::from_row_group(Some(columns.projection.clone()), group.as_ref()).map_err(parquet)? {
                let record = record.map_err(parquet)?;
                let mut label = None;
                let mut bytes = None;
                for (name, field) in record.get_column_iter() {
                    if *name == columns.image {
                        bytes = Some(image_bytes(field, columns.image_struct));
                    } else if columns.label.as_ref() == Some(name) {
                        label = class_label(field);
                    }
                }
                let bytes = bytes.flatten().ok_or_else(|| Error::ParquetRow {
                    path: path.to_path_buf(),
                    row,
                    column: columns.image.clone(),
                    reason: "no image bytes (a null image, or one stored only as a path)".to_string(),
                })?;
                let image = decode(bytes).map_err(|source| Error::ParquetImage {
                    path: path.to_path_buf(),
                    row,
                    column: columns.image.clone(),
                    source: Box::new(source),
                })?;
                self.push(&image, path, row, &columns.image)?;
                match label {
                    Some(label) => self.labels.get_or_insert_with(Vec::new).push(label),
                    None => self.unlabelled = true,
                }
                row += 1;
            }
        }
        Ok(())
    }

    /// Appends one image as `C×H×W` bytes, going to three channels at its first colour image.
    fn push(&mut self, image: &DynamicImage, path: &Path, row: usize, column: &str) -> Result<()> {
        let got = (image.height() as usize, image.width() as usize);
        match self.size {
            _ if got.0 == 0 || got.1 == 0 => {
                let reason = "an image with no pixels".to_string();
                return Err(Error::ParquetRow { path: path.to_path_buf(), row, column: column.to_string(), reason });
            }
            None => self.size = Some(got),
            Some(expected) if expected != got => {
                return Err(Error::ImageSize { path: path.to_path_buf(), row, expected, got });
            }
            Some(_) => {}
        }
        let colour = image.color().has_color();
        if colour && self.channels == 1 {
            let plane = got.0 * got.1;
            let gray = std::mem::take(&mut self.pixels);
            self.pixels = gray.chunks_exact(plane).flat_map(|p| [p, p, p]).flatten().copied().collect();
        }
        if colour || self.channels == 3 {
            self.channels = 3;
            let rgb = image.to_rgb8();
            for c in 0..3 {
                self.pixels.extend(rgb.as_raw().iter().skip(c).step_by(3));
            }
        } else {
            self.channels = 1;
            self.pixels.extend_from_slice(image.to_luma8().as_raw());
        }
        self.count += 1;
        Ok(())
    }

    fn finish(self, files: &[PathBuf]) -> Result<ImageDataset> {
        let Some((height, width)) = self.size else {
            let path = files.first().cloned().unwrap_or_default();
            let reason = format!("no images in {} parquet file(s)", files.len());
            return Err(Error::ParquetContent { path, reason });
        };
        let labels = if self.unlabelled { None } else { self.labels };
        ImageDataset::new(self.pixels, [self.channels, height, width], u8::MAX, labels)
    }
}

/// The encoded image of a row's image field: the `bytes` of the struct, or the bytes themselves.
fn image_bytes(field: &Field, is_struct: bool) -> Option<&[u8]> {
    match (field, is_struct) {
        (Field::Group(group), true) => group.get_column_iter().find_map(|(name, value)| match value {
            Field::Bytes(bytes) if name == "bytes" => Some(bytes.data()),
            _ => None,
        }),
        (Field::Bytes(bytes), false) => Some(bytes.data()),
        _ => None,
    }
}

/// A row's class label: an integer in `0..=u32::MAX`, else none.
fn class_label(field: &Field) -> Option<u32> {
    let value = match *field {
        Field::Byte(v) => i64::from(v),
        Field::Short(v) => i64::from(v),
        Field::Int(v) => i64::from(v),
        Field::Long(v) => v,
        Field::UByte(v) => i64::from(v),
        Field::UShort(v) => i64::from(v),
        Field::UInt(v) => i64::from(v),
        Field::ULong(v) => return u32::try_from(v).ok(),
        _ => return None,
    };
    u32::try_from(value).ok()
}

/// Decodes PNG/JPEG bytes by their content, within [`MAX_DECODE_BYTES`].
fn decode(bytes: &[u8]) -> std::result::Result<DynamicImage, image::ImageError> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode()
}

/// Loads `split` of `dataset` through [`Hub::from_env`]: the cache at `$HF_HOME/hub`,
/// `HF_HUB_OFFLINE` and `HF_ENDPOINT` as the [module docs](self) describe.
pub fn load_hub(dataset: &HubDataset, split: Split) -> Result<ImageDataset> {
    Hub::from_env()?.load(dataset, split)
}
