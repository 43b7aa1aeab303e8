//! CSV round trips and the typed error of every malformed case.

use std::path::PathBuf;

use cdm_data::{Error, PointCloud, Toy, read_csv, write_csv};

/// A fresh path under the system temp dir, unique per test and process.
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cdm-data-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn read_text(name: &str, text: &str) -> (PathBuf, cdm_data::Result<PointCloud>) {
    let path = temp(name);
    std::fs::write(&path, text).unwrap();
    let result = read_csv(&path);
    (path, result)
}

#[test]
fn write_then_read_is_bit_exact() {
    let extreme = PointCloud::new(vec![0.1, -1e-300, 1e300, f64::MIN_POSITIVE, -0.0, 1.0 / 3.0], 3).unwrap();
    for (i, points) in [Toy::Dino.sample(500, 3), Toy::TwoModes1d.sample(50, 3), extreme].into_iter().enumerate() {
        let names: Vec<String> = (0..points.dim()).map(|j| format!("c{j}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        for header in [None, Some(names.as_slice())] {
            let path = temp(&format!("round-trip-{i}-{}.csv", header.is_some()));
            write_csv(&path, &points, header).unwrap();
            let back = read_csv(&path).unwrap();
            assert_eq!(back.dim(), points.dim());
            let same = back.data().iter().zip(points.data()).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same && back.len() == points.len(), "round trip {i} changed the values");
        }
    }
}

#[test]
fn write_rejects_bad_headers() {
    let points = Toy::Moons.sample(3, 0);
    let path = temp("bad-header.csv");
    for header in [&["x"][..], &["x", "y", "z"], &["x", "1.5"], &["x", "a,b"], &["", "y"], &["#x", "y"], &[" x", "y"]] {
        let err = write_csv(&path, &points, Some(header)).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { field: "header", .. }), "{header:?}: {err}");
    }
}

#[test]
fn wrong_column_count_names_line() {
    let (path, result) = read_text("ragged.csv", "# points\n1,2\n3,4\n\n5,6,7\n");
    let err = result.unwrap_err();
    assert!(matches!(&err, Error::ColumnCount { line: 5, expected: 2, got: 3, path: p } if *p == path), "{err}");
    assert_eq!(err.to_string(), format!("{}:5: expected 2 columns, got 3", path.display()));
    let (_, result) = read_text("ragged-header.csv", "x,y,z\n1,2\n");
    assert!(matches!(result, Err(Error::ColumnCount { line: 2, expected: 3, got: 2, .. })));
}

#[test]
fn non_number_names_line_and_column() {
    let (path, result) = read_text("text.csv", "x,y\n1,2\n3,4\n5,abc\n");
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::NotANumber { line: 4, column: 2, field, path: p } if field == "abc" && *p == path),
        "{err}"
    );
    // A first line that is only partly numeric is a bad data row, not a header.
    let (_, result) = read_text("partial-header.csv", "1,y\n2,3\n");
    assert!(matches!(result, Err(Error::NotANumber { line: 1, column: 2, .. })));
    let (_, result) = read_text("empty-field.csv", "1,2\n3,\n");
    assert!(matches!(result, Err(Error::NotANumber { line: 2, column: 2, .. })));
}

#[test]
fn non_finite_values_are_rejected() {
    for (text, line, column) in [("1,2\nNaN,3\n", 2, 1), ("1,inf\n", 1, 2), ("x\n1\n-infinity\n", 3, 1)] {
        let (_, result) = read_text("non-finite.csv", text);
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::NonFiniteField { line: l, column: c, .. } if (*l, *c) == (line, column)),
            "{err}"
        );
    }
}

#[test]
fn empty_files_have_no_rows() {
    for (i, text) in ["", "\n\n", "# only a comment\n", "x,y\n", "x,y\n# nothing\n"].into_iter().enumerate() {
        let (path, result) = read_text(&format!("empty-{i}.csv"), text);
        assert!(matches!(&result, Err(Error::NoRows { path: p }) if *p == path), "{text:?}: {result:?}");
    }
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let path = temp("does-not-exist.csv");
    let err = read_csv(&path).unwrap_err();
    assert!(matches!(&err, Error::Io { path: p, .. } if *p == path), "{err}");
    assert!(err.to_string().starts_with(&path.display().to_string()));
    let dir = temp("");
    assert!(matches!(write_csv(&dir, &Toy::Moons.sample(2, 0), None), Err(Error::Io { .. })));
}
