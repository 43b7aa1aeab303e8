//! Reading whole files, with gzip detected by its magic bytes `1f 8b` rather than the file name.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::{Error, Result};

/// The gzip magic bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The bytes of `path`, decompressed if they are gzip, but a gzip stream is inflated only as far as
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

/// The bytes of `path`, decompressed if they are gzip, refused with [`Error::SizeMismatch`] when they
/// exceed `max` bytes: a raw file is measured before it is read, and a gzip stream stops
/// inflating one byte past `max`. For formats without a header to declare their size.
pub(super) fn read_at_most(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let too_large = |got| Error::SizeMismatch { path: path.to_path_buf(), what, expected: max, got };
    let len = std::fs::metadata(path).map_err(io)?.len();
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut magic = Vec::with_capacity(2);
    (&mut file).take(2).read_to_end(&mut magic).map_err(io)?;
    if magic != GZIP_MAGIC {
        if len > max {
            return Err(too_large(len));
        }
        let mut raw = magic;
        file.read_to_end(&mut raw).map_err(io)?;
        return Ok(raw);
    }
    let stream = std::io::Cursor::new(magic).chain(std::io::BufReader::new(file));
    let mut out = Vec::new();
    MultiGzDecoder::new(stream)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|source| Error::Gzip { path: path.to_path_buf(), source })?;
    if out.len() as u64 > max {
        return Err(too_large(out.len() as u64));
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    #[test]
    fn read_at_most_refuses_a_raw_file_unread_and_stops_a_stream_one_byte_past() {
        let dir = std::env::temp_dir().join(format!("cdm-data-read-at-most-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("raw.bin");
        std::fs::write(&raw, [7u8; 1000]).unwrap();
        assert_eq!(read_at_most(&raw, 1000, "size").unwrap().len(), 1000);
        let err = read_at_most(&raw, 999, "size").unwrap_err();
        assert!(matches!(err, Error::SizeMismatch { expected: 999, got: 1000, .. }), "{err}");
        // a megabyte of zeros compresses to about a kilobyte; inflating stops at byte 101
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&vec![0u8; 1 << 20]).unwrap();
        let packed = dir.join("zeros.gz");
        std::fs::write(&packed, gz.finish().unwrap()).unwrap();
        let err = read_at_most(&packed, 100, "size").unwrap_err();
        assert!(matches!(err, Error::SizeMismatch { expected: 100, got: 101, .. }), "{err}");
        assert_eq!(read_at_most(&packed, 1 << 20, "size").unwrap().len(), 1 << 20);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
