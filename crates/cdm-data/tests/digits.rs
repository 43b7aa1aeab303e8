//! The vendored scikit-learn digits.

use candle_core::{DType, Device};
use cdm_data::load_digits;

#[test]
fn digits_have_the_published_shape_counts_and_range() {
    let ds = load_digits().unwrap();
    assert_eq!((ds.len(), ds.shape(), ds.max_value()), (1797, [1, 8, 8], 16));
    let mut counts = [0usize; 10];
    for &l in ds.labels().unwrap() {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    // First row of the CSV: 0,0,5,13,9,1,0,0, … label 0.
    assert_eq!(&ds.pixels(0)[..8], &[0, 0, 5, 13, 9, 1, 0, 0]);
    assert_eq!(ds.label(0), Some(0));
    assert_eq!(&ds.image(0)[..4], &[-1.0, -1.0, -0.375, 0.625]);
    let all = ds.to_tensor(&(0..ds.len()).collect::<Vec<_>>(), &[], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(all.dims(), &[1797, 1, 8, 8]);
    let values = all.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert!(values.contains(&1.0) && values.contains(&-1.0));
    // Every value is 2·k/16 − 1 for an integer k.
    assert!(values.iter().all(|v| ((v + 1.0) * 8.0).fract() == 0.0));
    assert!((ds.mean() - 4.884 / 16.0).abs() < 1e-3, "{}", ds.mean());
}
