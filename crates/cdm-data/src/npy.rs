//! NumPy `.npy` arrays of numbers, read into `f64` with every size checked before use.
//!
//! # Format
//!
//! | bytes | content |
//! |---|---|
//! | 0–5 | the magic `\x93NUMPY` |
//! | 6, 7 | format version (major, minor): 1.x, 2.x or 3.x |
//! | 8 … | header length: u16 little-endian (1.x) or u32 (2.x, 3.x) |
//! | then | the header: a Python dict literal `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }` |
//! | then | the values, C order, exactly `product(shape) × item size` bytes |
//!
//! `descr` is a byte order (`<` little, `>` big, `|` not applicable, `=` native) followed by a
//! kind and an item size: signed `i1 i2 i4 i8`, unsigned `u1 u2 u4 u8`, float `f4 f8`. Every
//! value becomes an `f64` (integers above 2⁵³ round to the nearest representable value), so a
//! caller that wants `f32` narrows once.
//!
//! Failures are typed [`Error`]s naming the file: [`Error::BadMagic`] (not `.npy`),
//! [`Error::Truncated`] (a header that ends early), [`Error::MalformedHeader`] (a header that is
//! not the dict above, or a shape whose product overflows), [`Error::UnsupportedFormat`]
//! (Fortran order, other dtypes such as complex, bool, strings or objects),
//! [`Error::DeclaredData`] (data shorter or longer than the header declares). Nothing is
//! allocated before the declared size has been checked against the bytes present.

use std::path::Path;

use crate::{Error, Result};

/// The magic string at the start of every `.npy` file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// An array read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// The values in C (row-major) order, `product(shape)` of them.
    pub values: Vec<f64>,
}

/// Reads a `.npy` file (see the module docs for the accepted format and the errors).
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.into(), source })?;
    parse_npy(&bytes, path)
}

/// Parses the bytes of a `.npy` file; `origin` names the file in errors.
pub fn parse_npy(bytes: &[u8], origin: &Path) -> Result<NpyArray> {
    let truncated =
        |expected: usize| Error::Truncated { path: origin.into(), expected: expected as u64, got: bytes.len() as u64 };
    if bytes.len() < 8 {
        return Err(if bytes.starts_with(&MAGIC[..bytes.len().min(6)]) {
            truncated(10)
        } else {
            bad_magic(bytes, origin)
        });
    }
    if &bytes[..6] != MAGIC {
        return Err(bad_magic(bytes, origin));
    }
    let (len_bytes, utf8) = match bytes[6] {
        1 => (2, false),
        2 => (4, false),
        3 => (4, true),
        major => return Err(malformed(origin, format!("format version {major}.{} is not 1, 2 or 3", bytes[7]))),
    };
    let start = 8 + len_bytes;
    let len_field = bytes.get(8..start).ok_or_else(|| truncated(start))?;
    let header_len = len_field.iter().rev().fold(0usize, |acc, &b| acc << 8 | usize::from(b));
    let data_start = start.checked_add(header_len).ok_or_else(|| truncated(usize::MAX))?;
    let raw_header = bytes.get(start..data_start).ok_or_else(|| truncated(data_start))?;
    let header = match std::str::from_utf8(raw_header) {
        Ok(text) if utf8 || text.is_ascii() => text,
        _ => return Err(malformed(origin, "the header is not ASCII text".into())),
    };
    let header = Header::parse(header).map_err(|reason| malformed(origin, reason))?;
    if header.fortran_order {
        return Err(Error::UnsupportedFormat {
            path: origin.into(),
            reason: "Fortran-order (column-major) data; save it with numpy.ascontiguousarray first".into(),
        });
    }
    let dtype =
        Dtype::parse(&header.descr).map_err(|reason| Error::UnsupportedFormat { path: origin.into(), reason })?;
    let count = header.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let need = count.and_then(|n| n.checked_mul(dtype.size));
    let (Some(count), Some(need)) = (count, need) else {
        return Err(malformed(origin, format!("shape {:?} holds more bytes than an address space", header.shape)));
    };
    let data = &bytes[data_start..];
    if data.len() != need {
        return Err(Error::DeclaredData {
            path: origin.into(),
            values: count as u64,
            bytes: need as u64,
            found: data.len() as u64,
        });
    }
    let values = data.chunks_exact(dtype.size).map(|item| dtype.value(item)).collect();
    Ok(NpyArray { shape: header.shape, values })
}

fn malformed(origin: &Path, reason: String) -> Error {
    Error::MalformedHeader { path: origin.into(), what: ".npy", reason }
}

fn bad_magic(bytes: &[u8], origin: &Path) -> Error {
    let mut first = [0u8; 4];
    for (to, from) in first.iter_mut().zip(bytes) {
        *to = *from;
    }
    let what = "NumPy .npy array";
    Error::BadMagic {
        path: origin.into(),
        what,
        expected: u32::from_be_bytes([0x93, b'N', b'U', b'M']),
        got: u32::from_be_bytes(first),
    }
}

/// The three keys of an `.npy` header.
#[derive(Debug)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl Header {
    /// Parses the dict literal; the error says what is wrong.
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut p = Parser { rest: text.trim() };
        p.expect('{')?;
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        while !p.eat('}') {
            let key = p.string()?;
            p.expect(':')?;
            match key.as_str() {
                "descr" => descr = Some(p.string()?),
                "fortran_order" => fortran_order = Some(p.boolean()?),
                "shape" => shape = Some(p.tuple()?),
                other => return Err(format!("unexpected key {other:?}")),
            }
            if !p.eat(',') {
                p.expect('}')?;
                break;
            }
        }
        if !p.rest.is_empty() {
            return Err(format!("text after the dict: {:?}", p.rest.chars().take(20).collect::<String>()));
        }
        let missing = |key: &str| format!("no {key:?} key");
        Ok(Self {
            descr: descr.ok_or_else(|| missing("descr"))?,
            fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
        })
    }
}

/// A cursor over the header text that skips whitespace between tokens.
struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    fn eat(&mut self, c: char) -> bool {
        self.rest = self.rest.trim_start();
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest.trim_start();
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, c: char) -> std::result::Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected `{c}` at {:?}", self.rest.chars().take(20).collect::<String>()))
        }
    }

    /// A `'…'` or `"…"` string without escapes.
    fn string(&mut self) -> std::result::Result<String, String> {
        let quote = self.rest.chars().next().filter(|c| *c == '\'' || *c == '"').ok_or("expected a quoted string")?;
        let body = &self.rest[1..];
        let end = body.find(quote).ok_or("unterminated string")?;
        self.rest = body[end + 1..].trim_start();
        Ok(body[..end].to_string())
    }

    fn boolean(&mut self) -> std::result::Result<bool, String> {
        for (word, value) in [("True", true), ("False", false)] {
            if let Some(rest) = self.rest.strip_prefix(word) {
                self.rest = rest.trim_start();
                return Ok(value);
            }
        }
        Err("fortran_order: expected True or False".into())
    }

    /// `()`, `(n,)`, `(n, m)`, … of non-negative integers.
    fn tuple(&mut self) -> std::result::Result<Vec<usize>, String> {
        self.expect('(')?;
        let mut dims = Vec::new();
        while !self.eat(')') {
            let digits = self.rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(self.rest.len());
            let dim = self.rest[..digits].parse::<usize>().map_err(|_| {
                format!("shape: expected a size at {:?}", self.rest.chars().take(20).collect::<String>())
            })?;
            dims.push(dim);
            self.rest = &self.rest[digits..];
            if !self.eat(',') {
                self.expect(')')?;
                break;
            }
        }
        Ok(dims)
    }
}

/// An element type: kind, size and byte order.
struct Dtype {
    kind: u8,
    size: usize,
    big_endian: bool,
}

impl Dtype {
    fn parse(descr: &str) -> std::result::Result<Self, String> {
        let unsupported = || format!("dtype {descr:?}; supported: i1 i2 i4 i8 u1 u2 u4 u8 f4 f8, either byte order");
        let (order, code) = match descr.as_bytes().first() {
            Some(b'<' | b'>' | b'|' | b'=') => descr.split_at(1),
            _ => ("=", descr),
        };
        let (kind, size) = match code.as_bytes() {
            [kind @ (b'i' | b'u'), size @ (b'1' | b'2' | b'4' | b'8')] => (*kind, usize::from(size - b'0')),
            [b'f', size @ (b'4' | b'8')] => (b'f', usize::from(size - b'0')),
            _ => return Err(unsupported()),
        };
        let big_endian = match order {
            ">" => true,
            "<" => false,
            "|" if size == 1 => false,
            "|" => return Err(format!("dtype {descr:?}: `|` (no byte order) on a {size}-byte type")),
            _ => cfg!(target_endian = "big"),
        };
        Ok(Self { kind, size, big_endian })
    }

    /// One item's value; `item` has exactly `self.size` bytes.
    fn value(&self, item: &[u8]) -> f64 {
        let mut le = [0u8; 8];
        le[..self.size].copy_from_slice(item);
        if self.big_endian {
            le[..self.size].reverse();
        }
        let bits = u64::from_le_bytes(le);
        let shift = 64 - 8 * self.size as u32;
        match (self.kind, self.size) {
            (b'f', 4) => f64::from(f32::from_bits(bits as u32)),
            (b'f', _) => f64::from_bits(bits),
            // sign-extend by shifting the item to the top of an i64 and back
            (b'i', _) => ((bits << shift) as i64 >> shift) as f64,
            _ => bits as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 `.npy` file with `header` (padded as numpy does) and `data`.
    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut text = header.to_string();
        while !(10 + text.len() + 1).is_multiple_of(64) {
            text.push(' ');
        }
        text.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn parse(bytes: &[u8]) -> Result<NpyArray> {
        parse_npy(bytes, Path::new("x.npy"))
    }

    fn header(descr: &str, shape: &str) -> String {
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
    }

    #[test]
    fn every_integer_and_float_type_in_both_byte_orders() {
        let cases: [(&str, Vec<u8>, f64); 12] = [
            ("|i1", vec![0xfe], -2.0),
            ("|u1", vec![0xfe], 254.0),
            ("<i2", (-300i16).to_le_bytes().to_vec(), -300.0),
            (">i2", (-300i16).to_be_bytes().to_vec(), -300.0),
            ("<u2", 60_000u16.to_le_bytes().to_vec(), 60_000.0),
            ("<i4", (-70_000i32).to_le_bytes().to_vec(), -70_000.0),
            (">i4", (-70_000i32).to_be_bytes().to_vec(), -70_000.0),
            ("<i8", (-(1i64 << 40)).to_le_bytes().to_vec(), -(2f64.powi(40))),
            (">u8", (1u64 << 50).to_be_bytes().to_vec(), 2f64.powi(50)),
            ("<f4", 1.5f32.to_le_bytes().to_vec(), 1.5),
            (">f4", (-0.25f32).to_be_bytes().to_vec(), -0.25),
            (">f8", 1e-300f64.to_be_bytes().to_vec(), 1e-300),
        ];
        for (descr, data, value) in cases {
            let array = parse(&npy(&header(descr, "(1,)"), &data)).unwrap_or_else(|e| panic!("{descr}: {e}"));
            assert_eq!(array, NpyArray { shape: vec![1], values: vec![value] }, "{descr}");
        }
    }

    #[test]
    fn shapes_keep_c_order() {
        let data: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let array = parse(&npy(&header("<f8", "(2, 3)"), &data)).unwrap();
        assert_eq!(array.shape, [2, 3]);
        assert_eq!(array.values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(parse(&npy(&header("<f8", "()"), &data[..8])).unwrap().shape, Vec::<usize>::new());
        assert!(parse(&npy(&header("<f8", "(0, 3)"), &[])).unwrap().values.is_empty());
    }

    #[test]
    fn bad_files_get_typed_errors_that_name_them() {
        let err = parse(&npy(&header("<f8", "(3,)"), &[0; 16])).unwrap_err();
        assert!(matches!(err, Error::DeclaredData { values: 3, bytes: 24, found: 16, .. }), "{err}");
        assert_eq!(err.to_string(), "x.npy: the header declares 3 values (24 bytes), found 16 bytes");
        let err = parse(&npy(&header("<f8", "(4294967296, 4294967296, 4294967296)"), &[])).unwrap_err();
        assert!(matches!(err, Error::MalformedHeader { .. }) && err.to_string().contains("shape"), "{err}");
        let fortran = "{'descr': '<f8', 'fortran_order': True, 'shape': (1,), }";
        let err = parse(&npy(fortran, &[0; 8])).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFormat { .. }) && err.to_string().contains("Fortran"), "{err}");
        let err = parse(&npy(&header("<c16", "(1,)"), &[0; 16])).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFormat { .. }) && err.to_string().contains("<c16"), "{err}");
        assert!(matches!(parse(b"PK\x03\x04 a zip file").unwrap_err(), Error::BadMagic { .. }));
        assert!(matches!(parse(&npy(&header("<f8", "(1,)"), &[])[..20]).unwrap_err(), Error::Truncated { .. }));
        let err = parse(&npy("{'descr': '<f8', 'shape': (1,), }", &[0; 8])).unwrap_err();
        assert!(err.to_string().contains("fortran_order"), "{err}");
    }
}
