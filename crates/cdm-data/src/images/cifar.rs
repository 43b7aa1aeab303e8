//! CIFAR-10 binary batches (`cifar-10-batches-bin/`).
//!
//! # Format
//!
//! A file is a sequence of 3073-byte records: 1 label byte (0–9), then the 32×32 image as 1024 red,
//! 1024 green and 1024 blue bytes, each plane row-major. That is already CHW order. The official
//! files hold 10,000 records each (`data_batch_1.bin` … `data_batch_5.bin` for training,
//! `test_batch.bin` for testing), but any positive number of records is accepted; a size that is
//! not a positive multiple of 3073 is [`Error::RecordSize`], and a label above 9 is
//! [`Error::LabelOutOfRange`] (a CIFAR-100 file, with 3074-byte records, usually fails the size
//! check first). Gzip-compressed files are decompressed first. A file may hold at most
//! [`MAX_RECORDS`] records (the whole data set): a larger raw file is refused before it is read,
//! and a gzip stream stops inflating one byte past that size, with [`Error::SizeMismatch`].

use std::path::Path;

use super::read::read_at_most;
use super::{ImageDataset, Split};
use crate::{Error, Result};

/// Bytes per record: one label byte and a 3×32×32 image.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;

/// Bytes per image.
const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Most records one file may hold: the 60,000 images of the whole of CIFAR-10.
pub const MAX_RECORDS: usize = 60_000;

/// Number of CIFAR-10 classes.
const CLASSES: u32 = 10;

/// Reads and concatenates CIFAR-10 binary batch files, in the given order, into `3×32×32` images
/// with labels and white level 255.
///
/// Fails with [`Error::InvalidArgument`] when `files` is empty, otherwise with a typed error
/// naming the offending file (see the module docs).
pub fn load_cifar10<P: AsRef<Path>>(files: &[P]) -> Result<ImageDataset> {
    if files.is_empty() {
        return Err(Error::invalid("files", 0, "must name at least one CIFAR-10 batch file"));
    }
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for path in files {
        let path = path.as_ref();
        let what = "size in bytes (at most the 60,000 records of CIFAR-10; gzip stops inflating one byte past)";
        let bytes = read_at_most(path, (MAX_RECORDS * RECORD_BYTES) as u64, what)?;
        if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD_BYTES) {
            let (len, record) = (bytes.len() as u64, RECORD_BYTES as u64);
            return Err(Error::RecordSize { path: path.to_path_buf(), len, record });
        }
        pixels.reserve(bytes.len() / RECORD_BYTES * IMAGE_BYTES);
        for (record, chunk) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
            let label = u32::from(chunk[0]);
            if label >= CLASSES {
                return Err(Error::LabelOutOfRange { path: path.to_path_buf(), record, label, classes: CLASSES });
            }
            labels.push(label);
            pixels.extend_from_slice(&chunk[1..]);
        }
    }
    ImageDataset::new(pixels, [3, 32, 32], u8::MAX, Some(labels))
}

/// Reads the `split` of a `cifar-10-batches-bin` directory: `data_batch_1.bin` …
/// `data_batch_5.bin` for [`Split::Train`] (50,000 images), `test_batch.bin` for [`Split::Test`]
/// (10,000).
///
/// Fails with [`Error::NoFiles`] naming the first missing file, otherwise like [`load_cifar10`].
pub fn load_cifar10_dir(dir: &Path, split: Split) -> Result<ImageDataset> {
    let names: Vec<String> = match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".to_string()],
    };
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        if !path.is_file() {
            return Err(Error::NoFiles { dir: dir.to_path_buf(), expected: name });
        }
        files.push(path);
    }
    load_cifar10(&files)
}
