//! IDX (MNIST-family) loader: exact round trips, raw and gzip, and typed errors on bad files.

mod common;

use cdm_data::{Error, Split, load_idx, load_idx_dir};
use common::{TempDir, gzip, idx};

/// Three 2×3 images with distinct bytes, and their labels.
fn fixture() -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..18).map(|i| (i * 15) as u8).collect();
    (idx(&[3, 2, 3], &pixels), idx(&[3], &[7, 0, 9]))
}

#[test]
fn raw_and_gzip_round_trip_exactly() {
    let tmp = TempDir::new("idx-round-trip");
    let (images, labels) = fixture();
    let raw = (tmp.write("raw-images", &images), tmp.write("raw-labels", &labels));
    // gzip is detected by content: one gz file without the extension, one with.
    let gz = (tmp.write("gz-images", &gzip(&images)), tmp.write("gz-labels.gz", &gzip(&labels)));
    for (img, lab) in [raw, gz] {
        let ds = load_idx(&img, Some(&lab)).unwrap();
        assert_eq!((ds.len(), ds.shape(), ds.max_value()), (3, [1, 2, 3], 255));
        assert_eq!(ds.labels(), Some(&[7, 0, 9][..]));
        assert_eq!(ds.pixels(1), &[90, 105, 120, 135, 150, 165]);
        let expected: Vec<f32> =
            [90u8, 105, 120, 135, 150, 165].iter().map(|&p| (2.0 * p as f64 / 255.0 - 1.0) as f32).collect();
        assert_eq!(ds.image(1), expected);
        assert_eq!(ds.image(0)[0], -1.0);
        let unlabelled = load_idx(&img, None).unwrap();
        assert_eq!(unlabelled.label(0), None);
    }
}

#[test]
fn dir_finds_standard_names_raw_or_gz() {
    let tmp = TempDir::new("idx-dir");
    let (images, labels) = fixture();
    tmp.write("train-images-idx3-ubyte.gz", &gzip(&images));
    tmp.write("train-labels-idx1-ubyte", &labels);
    let ds = load_idx_dir(tmp.dir(), Split::Train).unwrap();
    assert_eq!((ds.len(), ds.label(2)), (3, Some(9)));
    match load_idx_dir(tmp.dir(), Split::Test) {
        Err(Error::NoFiles { dir, expected }) => {
            assert_eq!(dir, tmp.dir());
            assert_eq!(expected, "t10k-images-idx3-ubyte[.gz]");
        }
        other => panic!("expected NoFiles, got {other:?}"),
    }
}

#[test]
fn wrong_magic_is_bad_magic_naming_the_file() {
    let tmp = TempDir::new("idx-magic");
    let (images, labels) = fixture();
    let img = tmp.write("images", &images);
    // Labels passed as images and vice versa.
    let lab = tmp.write("labels", &labels);
    let err = load_idx(&lab, None).unwrap_err();
    assert!(matches!(&err, Error::BadMagic { path, expected: 0x803, got: 0x801, .. } if *path == lab), "{err}");
    assert!(err.to_string().contains("labels"), "{err}");
    let err = load_idx(&img, Some(&img)).unwrap_err();
    assert!(matches!(&err, Error::BadMagic { path, expected: 0x801, got: 0x803, .. } if *path == img), "{err}");
    let png = tmp.write("not-idx", b"\x89PNG\r\n\x1a\n");
    assert!(matches!(load_idx(&png, None), Err(Error::BadMagic { .. })));
}

#[test]
fn non_byte_element_type_is_unsupported() {
    let tmp = TempDir::new("idx-type");
    let mut images = fixture().0;
    images[2] = 0x0d; // float32
    let path = tmp.write("float-images", &images);
    let err = load_idx(&path, None).unwrap_err();
    assert!(matches!(&err, Error::UnsupportedFormat { path: p, .. } if *p == path), "{err}");
}

#[test]
fn truncated_header_or_data_is_truncated() {
    let tmp = TempDir::new("idx-truncated");
    let (images, _) = fixture();
    for (name, len, expected) in
        [("empty", 0, 4), ("magic-only", 4, 16), ("half-header", 10, 16), ("short-data", 30, 34)]
    {
        let path = tmp.write(name, &images[..len]);
        let err = load_idx(&path, None).unwrap_err();
        assert!(
            matches!(&err, Error::Truncated { path: p, expected: e, got } if *p == path && *e == expected && *got == len as u64),
            "{name}: {err}"
        );
    }
    // A huge declared size is a truncation, not an allocation.
    let path = tmp.write("huge", &idx(&[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3]));
    assert!(matches!(load_idx(&path, None), Err(Error::Truncated { .. })));
}

#[test]
fn trailing_bytes_and_label_count_are_size_mismatches() {
    let tmp = TempDir::new("idx-size");
    let (mut images, _) = fixture();
    let good = tmp.write("images", &images);
    images.push(0);
    let long = tmp.write("long", &images);
    let err = load_idx(&long, None).unwrap_err();
    assert!(matches!(&err, Error::SizeMismatch { path, expected: 34, got: 35, .. } if *path == long), "{err}");
    let labels = tmp.write("two-labels", &idx(&[2], &[1, 2]));
    let err = load_idx(&good, Some(&labels)).unwrap_err();
    assert!(matches!(&err, Error::SizeMismatch { path, expected: 3, got: 2, .. } if *path == labels), "{err}");
    assert!(err.to_string().contains("two-labels"), "{err}");
}

#[test]
fn a_gzip_stream_inflates_no_further_than_its_header_says() {
    let tmp = TempDir::new("idx-bomb");
    // the header declares 3 images of 2×3 (34 bytes in all); the stream inflates to 64 MiB
    let mut bomb = fixture().0;
    bomb.resize(64 << 20, 0);
    let path = tmp.write("bomb.gz", &gzip(&bomb));
    let err = load_idx(&path, None).unwrap_err();
    assert!(matches!(&err, Error::SizeMismatch { expected: 34, got: 35, .. }), "{err}");
    assert!(err.to_string().contains("decompressed size"), "{err}");
}

#[test]
fn corrupt_or_truncated_gzip_is_gzip_error() {
    let tmp = TempDir::new("idx-gzip");
    let gz = gzip(&fixture().0);
    let cut = tmp.write("cut.gz", &gz[..gz.len() / 2]);
    let err = load_idx(&cut, None).unwrap_err();
    assert!(matches!(&err, Error::Gzip { path, .. } if *path == cut), "{err}");
    let mut bad = gz.clone();
    let n = bad.len();
    bad[n - 6] ^= 0xff; // the CRC
    let crc = tmp.write("crc.gz", &bad);
    assert!(matches!(load_idx(&crc, None), Err(Error::Gzip { path, .. }) if path == crc));
    let mut garbage = gz[..10].to_vec();
    garbage.extend_from_slice(&[0xff; 40]);
    let garbage = tmp.write("garbage.gz", &garbage);
    assert!(matches!(load_idx(&garbage, None), Err(Error::Gzip { .. })));
}

#[test]
fn missing_file_is_io_error_naming_it() {
    let tmp = TempDir::new("idx-missing");
    let path = tmp.path("nope");
    assert!(matches!(load_idx(&path, None), Err(Error::Io { path: p, .. }) if p == path));
}
