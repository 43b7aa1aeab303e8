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
