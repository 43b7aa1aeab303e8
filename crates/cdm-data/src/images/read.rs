//! Reading whole files, with gzip detected by its magic bytes `1f 8b` rather than the file name.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::{Error, Result};

/// The gzip magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The bytes of `path`, decompressed if they are gzip.
pub(super) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    gunzip_if_gz(raw, path)
}

/// The bytes of `path` like [`read_maybe_gz`], but a gzip stream is inflated only as far as
/// its own header allows: `declared` reads the total size in bytes from the first `head`
/// decompressed bytes (`None`: no usable header, and only those bytes are returned, for the
/// caller's parser to report). A stream that inflates past the declared size is refused with
/// [`Error::SizeMismatch`] one byte past it, so a small file claiming a small payload cannot
/// inflate gigabytes into memory.
pub(super) fn read_declared(path: &Path, head: usize, declared: impl Fn(&[u8]) -> Option<u64>) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let gzip = |source| Error::Gzip { path: path.to_path_buf(), source };
    let mut decoder = MultiGzDecoder::new(raw.as_slice());
    let mut out = Vec::new();
    (&mut decoder).take(head as u64).read_to_end(&mut out).map_err(gzip)?;
    let Some(total) = declared(&out) else { return Ok(out) };
    let limit = total.saturating_add(1).saturating_sub(out.len() as u64);
    (&mut decoder).take(limit).read_to_end(&mut out).map_err(gzip)?;
    if out.len() as u64 > total {
        let what = "decompressed size in bytes (inflating stopped one byte past the header's size)";
        return Err(Error::SizeMismatch { path: path.to_path_buf(), what, expected: total, got: out.len() as u64 });
    }
    Ok(out)
}

/// `bytes` decompressed if they start with the gzip magic, else unchanged; `path` names them in errors.
pub(super) fn gunzip_if_gz(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut out)
        .map_err(|source| Error::Gzip { path: path.to_path_buf(), source })?;
    Ok(out)
}
