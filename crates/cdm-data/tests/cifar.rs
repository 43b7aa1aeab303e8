//! CIFAR-10 binary loader: exact CHW values and labels, and typed errors on bad files.

mod common;

use cdm_data::{Error, Split, load_cifar10, load_cifar10_dir};
use common::{TempDir, gzip};

/// A record with `label` whose pixel (c, y, x) is `(c·7 + y·3 + x + seed) mod 256`.
fn record(label: u8, seed: usize) -> Vec<u8> {
    let mut out = vec![label];
    for c in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                out.push(((c * 7 + y * 3 + x + seed) % 256) as u8);
            }
        }
    }
    out
}

#[test]
fn records_load_in_chw_order_with_labels_across_files() {
    let tmp = TempDir::new("cifar-records");
    let a = tmp.write("a.bin", &[record(3, 0), record(9, 100)].concat());
    let b = tmp.write("b.bin.gz", &gzip(&record(0, 200)));
    let ds = load_cifar10(&[&a, &b]).unwrap();
    assert_eq!((ds.len(), ds.shape(), ds.max_value()), (3, [3, 32, 32], 255));
    assert_eq!(ds.labels(), Some(&[3, 9, 0][..]));
    for (i, seed) in [0, 100, 200].into_iter().enumerate() {
        assert_eq!(ds.pixels(i), &record(0, seed)[1..]);
    }
    // Green plane (c = 1), row 2, column 5 of image 1: (7 + 6 + 5 + 100) = 118.
    assert_eq!(ds.pixels(1)[1024 + 2 * 32 + 5], 118);
    assert_eq!(ds.image(1)[1024 + 2 * 32 + 5], (2.0 * 118.0 / 255.0 - 1.0_f64) as f32);
}

#[test]
fn size_not_a_multiple_of_the_record_is_record_size() {
    let tmp = TempDir::new("cifar-size");
    let good = tmp.write("good.bin", &record(1, 0));
    let mut bytes = [record(1, 0), record(2, 0)].concat();
    bytes.pop();
    let bad = tmp.write("bad.bin", &bytes);
    let err = load_cifar10(&[&good, &bad]).unwrap_err();
    assert!(matches!(&err, Error::RecordSize { path, len: 6145, record: 3073 } if *path == bad), "{err}");
    assert!(err.to_string().contains("bad.bin"), "{err}");
    let empty = tmp.write("empty.bin", &[]);
    assert!(matches!(load_cifar10(&[&empty]), Err(Error::RecordSize { len: 0, .. })));
    // A CIFAR-100 record (2 label bytes) has the wrong size.
    let c100 = tmp.write("c100.bin", &[vec![1], record(2, 0)].concat());
    assert!(matches!(load_cifar10(&[&c100]), Err(Error::RecordSize { len: 3074, .. })));
    assert!(matches!(load_cifar10::<&std::path::Path>(&[]), Err(Error::InvalidArgument { .. })));
}

#[test]
fn label_above_nine_is_label_out_of_range() {
    let tmp = TempDir::new("cifar-label");
    let path = tmp.write("x.bin", &[record(1, 0), record(10, 0)].concat());
    let err = load_cifar10(&[&path]).unwrap_err();
    assert!(
        matches!(&err, Error::LabelOutOfRange { path: p, record: 1, label: 10, classes: 10 } if *p == path),
        "{err}"
    );
}

#[test]
fn dir_loads_the_split_files_and_names_a_missing_one() {
    let tmp = TempDir::new("cifar-dir");
    for i in 1..=5 {
        tmp.write(&format!("data_batch_{i}.bin"), &record(i, i as usize));
    }
    let train = load_cifar10_dir(tmp.dir(), Split::Train).unwrap();
    assert_eq!(train.labels(), Some(&[1, 2, 3, 4, 5][..]));
    assert_eq!(train.pixels(4), &record(0, 5)[1..]);
    let err = load_cifar10_dir(tmp.dir(), Split::Test).unwrap_err();
    assert!(matches!(&err, Error::NoFiles { expected, .. } if expected == "test_batch.bin"), "{err}");
}
