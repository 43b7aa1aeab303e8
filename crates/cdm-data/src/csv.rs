//! Point-cloud CSV: one point per line, comma-separated numbers.
//!
//! [`read_csv`] states the accepted format; [`write_csv`] writes Rust's shortest round-trip float
//! representation, so a write followed by a read reproduces the cloud bit for bit.

use std::io::Write;
use std::path::Path;

use crate::{Error, PointCloud, Result};

/// Reads a point cloud from a CSV file.
///
/// - Blank lines and lines whose first non-blank character is `#` are skipped.
/// - Fields are trimmed of surrounding whitespace; `\n` and `\r\n` line endings both work.
/// - The first remaining line is a **header** when none of its fields parses as a number
///   (`x,y`); it is skipped but fixes the column count.
/// - Every row has the column count of the header or the first data row.
/// - Every field is a finite `f64` (`nan`, `inf` are rejected).
///
/// Every failure is a typed [`Error`] naming the file and, for content errors, the 1-based line
/// and column: [`Error::Io`], [`Error::NoRows`], [`Error::ColumnCount`], [`Error::NotANumber`],
/// [`Error::NonFiniteField`].
pub fn read_csv(path: &Path) -> Result<PointCloud> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), source })?;
    parse_csv(&text, path)
}

/// Parses CSV text in the format of [`read_csv`]; `origin` is the file name used in error
/// messages.
pub fn parse_csv(text: &str, origin: &Path) -> Result<PointCloud> {
    // a UTF-8 byte-order mark (spreadsheet exports) is not part of the first field
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut data = Vec::new();
    let mut columns: Option<usize> = None;
    let mut first = true;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if std::mem::take(&mut first) && fields.iter().all(|f| f.parse::<f64>().is_err()) {
            columns = Some(fields.len());
            continue;
        }
        let expected = *columns.get_or_insert(fields.len());
        if fields.len() != expected {
            return Err(Error::ColumnCount { path: origin.into(), line: index + 1, expected, got: fields.len() });
        }
        for (column, field) in fields.iter().enumerate() {
            let (path, line, column) = (origin, index + 1, column + 1);
            match field.parse::<f64>() {
                Ok(value) if value.is_finite() => data.push(value),
                Ok(_) => {
                    return Err(Error::NonFiniteField { path: path.into(), line, column, field: field.to_string() });
                }
                Err(_) => return Err(Error::NotANumber { path: path.into(), line, column, field: field.to_string() }),
            }
        }
    }
    match columns {
        Some(dim) if !data.is_empty() => Ok(PointCloud::from_finite(data, dim)),
        _ => Err(Error::NoRows { path: origin.into() }),
    }
}

/// Writes `points` as CSV, with an optional header line of column names.
///
/// Header names must be one per column, non-empty, free of `,`, `#` and line breaks, and not
/// parse as numbers (otherwise [`read_csv`] could not tell the header from data); anything else
/// is an [`Error::InvalidArgument`]. Values use Rust's shortest round-trip formatting.
pub fn write_csv(path: &Path, points: &PointCloud, header: Option<&[&str]>) -> Result<()> {
    if let Some(names) = header {
        if names.len() != points.dim() {
            return Err(Error::invalid("header", names.join(","), "needs one name per column"));
        }
        if let Some(bad) = names
            .iter()
            .find(|n| n.is_empty() || n.trim() != **n || n.contains([',', '#', '\n', '\r']) || n.parse::<f64>().is_ok())
        {
            return Err(Error::invalid(
                "header",
                format!("{bad:?}"),
                "names must be non-empty, without surrounding spaces, `,`, `#` or line breaks, and not numbers",
            ));
        }
    }
    let io = |source| Error::Io { path: path.into(), source };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    if let Some(names) = header {
        writeln!(out, "{}", names.join(",")).map_err(io)?;
    }
    for row in points.iter_rows() {
        for (j, v) in row.iter().enumerate() {
            let sep = if j == 0 { "" } else { "," };
            write!(out, "{sep}{v:?}").map_err(io)?;
        }
        writeln!(out).map_err(io)?;
    }
    out.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PointCloud> {
        parse_csv(text, Path::new("t.csv"))
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_field() {
        assert_eq!(parse("\u{feff}1,2\n3,4\n").unwrap().data(), &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(parse("\u{feff}x,y\n5,6\n").unwrap().data(), &[5.0, 6.0]);
    }

    #[test]
    fn header_comments_blank_lines_and_crlf() {
        let c = parse("# comment\r\n\r\n x , y \r\n1, 2\r\n  # another\r\n3.5,-4e-3\r\n").unwrap();
        assert_eq!((c.len(), c.dim()), (2, 2));
        assert_eq!(c.data(), &[1.0, 2.0, 3.5, -4e-3]);
        let headerless = parse("1\n2\n3").unwrap();
        assert_eq!((headerless.len(), headerless.dim()), (3, 1));
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let err = parse("x,y\n1,2\n3,oops\n").unwrap_err();
        assert!(matches!(&err, Error::NotANumber { line: 3, column: 2, field, .. } if field == "oops"), "{err}");
        assert_eq!(err.to_string(), "t.csv:3: column 2: `oops` is not a number");
        let err = parse("x,y\n1,2,3\n").unwrap_err();
        assert!(matches!(err, Error::ColumnCount { line: 2, expected: 2, got: 3, .. }), "{err}");
        assert_eq!(err.to_string(), "t.csv:2: expected 2 columns, got 3");
    }
}
