//! Optional: the real Fashion-MNIST from the Debian package `dataset-fashion-mnist`
//! (`apt-get install -y dataset-fashion-mnist`). Skipped, with a message, when it is not installed.

use std::path::Path;

use cdm_data::{Split, load_idx_dir};

const DIR: &str = "/usr/share/datasets/fashion-mnist";

#[test]
fn debian_fashion_mnist_matches_published_statistics() {
    let dir = Path::new(DIR);
    if !dir.join("train-images-idx3-ubyte.gz").is_file() {
        eprintln!("skipping: {DIR} not found (apt-get install -y dataset-fashion-mnist)");
        return;
    }
    let train = load_idx_dir(dir, Split::Train).unwrap();
    let test = load_idx_dir(dir, Split::Test).unwrap();
    assert_eq!((train.len(), train.shape()), (60_000, [1, 28, 28]));
    assert_eq!((test.len(), test.shape()), (10_000, [1, 28, 28]));
    for (ds, per_class) in [(&train, 6000), (&test, 1000)] {
        let mut counts = [0usize; 10];
        ds.labels().unwrap().iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [per_class; 10]);
    }
    let mean = train.mean();
    eprintln!("Fashion-MNIST train mean {mean:.5}, test mean {:.5}", test.mean());
    assert!((mean - 0.2860).abs() < 5e-4, "{mean}");
}
