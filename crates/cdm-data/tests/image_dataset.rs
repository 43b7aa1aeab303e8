//! The uniform `ImageDataset` interface: construction checks, tensors, seeded batches and flips,
//! shuffles, padding, upsampling and transposition.

use candle_core::{DType, Device, Tensor};
use cdm_data::{Error, ImageDataset};

/// `n` 2-channel 2×3 images; image i has pixel (c, y, x) = 10·i + 6c + 3y + x (white level 255),
/// label i % 4.
fn dataset(n: usize) -> ImageDataset {
    let pixels = (0..n).flat_map(|i| (0..12).map(move |k| (10 * i + k) as u8)).collect();
    ImageDataset::new(pixels, [2, 2, 3], 255, Some((0..n as u32).map(|i| i % 4).collect())).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn new_validates_its_arguments() {
    let invalid = |r: cdm_data::Result<ImageDataset>| matches!(r, Err(Error::InvalidArgument { .. }));
    assert!(invalid(ImageDataset::new(vec![0; 12], [0, 2, 3], 255, None)));
    assert!(invalid(ImageDataset::new(vec![0; 12], [2, 2, 3], 0, None)));
    assert!(invalid(ImageDataset::new(vec![0; 13], [2, 2, 3], 255, None)));
    assert!(invalid(ImageDataset::new(vec![17; 12], [2, 2, 3], 16, None)));
    assert!(invalid(ImageDataset::new(vec![0; 12], [2, 2, 3], 255, Some(vec![0, 1]))));
    let empty = ImageDataset::new(vec![], [1, 2, 2], 255, None).unwrap();
    assert!(empty.is_empty());
    assert!(matches!(empty.batch(0, 2, 0, false, DType::F32, &Device::Cpu), Err(Error::InvalidArgument { .. })));
}

#[test]
fn to_tensor_maps_to_minus_one_one_and_flips_rows() {
    let ds = dataset(3);
    let t = ds.to_tensor(&[2, 0], &[true, false], DType::F64, &Device::Cpu).unwrap();
    assert_eq!((t.dims(), t.dtype()), (&[2, 2, 2, 3][..], DType::F64));
    let v: Vec<f64> = t.flatten_all().unwrap().to_vec1().unwrap();
    let x = |p: u32| (2.0 * f64::from(p) / 255.0 - 1.0) as f32 as f64;
    // Image 2 mirrored: row (20, 21, 22) becomes (22, 21, 20).
    assert_eq!(&v[..3], &[x(22), x(21), x(20)]);
    assert_eq!(&v[12..15], &[x(0), x(1), x(2)]);
    assert!(matches!(ds.to_tensor(&[3], &[], DType::F32, &Device::Cpu), Err(Error::InvalidArgument { .. })));
    assert!(matches!(ds.to_tensor(&[0, 1], &[true], DType::F32, &Device::Cpu), Err(Error::InvalidArgument { .. })));
    let white = ImageDataset::new(vec![0, 255], [1, 1, 2], 255, None).unwrap();
    assert_eq!(white.image(0), vec![-1.0, 1.0]);
    assert!((white.mean() - 0.5).abs() < 1e-12);
}

#[test]
fn shuffles_are_seeded_permutations() {
    let ds = dataset(50);
    let a = ds.shuffled_indices(7, 0);
    assert_eq!(a, ds.shuffled_indices(7, 0));
    assert_ne!(a, ds.shuffled_indices(7, 1));
    assert_ne!(a, ds.shuffled_indices(8, 0));
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>());
}

#[test]
fn batches_are_reproducible_and_cover_each_epoch_once() {
    let ds = dataset(10);
    let cpu = Device::Cpu;
    let b = ds.batch(3, 4, 11, true, DType::F32, &cpu).unwrap();
    assert_eq!(b.dims(), &[4, 2, 2, 3]);
    assert_eq!(values(&b), values(&ds.batch(3, 4, 11, true, DType::F32, &cpu).unwrap()));
    assert_ne!(values(&b), values(&ds.batch(4, 4, 11, true, DType::F32, &cpu).unwrap()));
    assert_ne!(values(&b), values(&ds.batch(3, 4, 12, true, DType::F32, &cpu).unwrap()));
    // Batches of 5 over 10 images: steps 0 and 1 are epoch 0, steps 2 and 3 epoch 1.
    for epoch in 0..2u64 {
        let mut seen: Vec<usize> =
            (2 * epoch..2 * epoch + 2).flat_map(|s| ds.batch_indices(s, 5, 11).unwrap()).collect();
        assert_eq!(seen, ds.shuffled_indices(11, epoch)[..].to_vec());
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }
    // A batch larger than the data set spans several epochs.
    let big = ds.batch_indices(0, 25, 11).unwrap();
    assert_eq!(&big[..10], ds.shuffled_indices(11, 0).as_slice());
    assert_eq!(&big[20..], &ds.shuffled_indices(11, 2)[..5]);
    assert!(matches!(ds.batch_indices(0, 0, 11), Err(Error::InvalidArgument { .. })));
}

#[test]
fn random_flip_mirrors_exactly_the_flipped_rows() {
    let ds = dataset(10);
    let cpu = Device::Cpu;
    let (step, seed) = (5, 3);
    let indices = ds.batch_indices(step, 8, seed).unwrap();
    let flips = ds.batch_flips(step, 8, seed);
    assert_eq!(flips, ds.batch_flips(step, 8, seed));
    assert!(flips.iter().any(|&f| f) && flips.iter().any(|&f| !f), "{flips:?}");
    let flipped = ds.batch(step, 8, seed, true, DType::F32, &cpu).unwrap();
    let plain = ds.batch(step, 8, seed, false, DType::F32, &cpu).unwrap();
    assert_eq!(values(&plain), values(&ds.to_tensor(&indices, &[], DType::F32, &cpu).unwrap()));
    let mirrored = plain.flip(&[3]).unwrap();
    for (k, &f) in flips.iter().enumerate() {
        let got = values(&flipped.get(k).unwrap());
        let want = if f { values(&mirrored.get(k).unwrap()) } else { values(&plain.get(k).unwrap()) };
        assert_eq!(got, want, "row {k}, flip {f}");
    }
}

#[test]
fn pad_to_centres_and_fills_with_black() {
    let ds = dataset(2);
    let padded = ds.pad_to(5, 6).unwrap();
    assert_eq!((padded.shape(), padded.len(), padded.labels()), ([2, 5, 6], 2, ds.labels()));
    // top = ⌊(5−2)/2⌋ = 1, left = ⌊(6−3)/2⌋ = 1.
    let p = padded.pixels(1);
    for c in 0..2 {
        for y in 0..5 {
            for x in 0..6 {
                let inside = (1..3).contains(&y) && (1..4).contains(&x);
                let want = if inside { ds.pixels(1)[c * 6 + (y - 1) * 3 + (x - 1)] } else { 0 };
                assert_eq!(p[c * 30 + y * 6 + x], want, "c {c} y {y} x {x}");
            }
        }
    }
    assert_eq!(padded.image(0)[0], -1.0);
    assert_eq!(ds.pad_to(2, 3).unwrap(), ds);
    assert!(matches!(ds.pad_to(1, 3), Err(Error::InvalidArgument { .. })));
}

#[test]
fn upsample_transpose_and_subset() {
    let ds = dataset(2);
    let up = ds.upsample(2).unwrap();
    assert_eq!(up.shape(), [2, 4, 6]);
    assert_eq!(&up.pixels(1)[..12], &[10, 10, 11, 11, 12, 12, 10, 10, 11, 11, 12, 12]);
    assert_eq!(ds.upsample(1).unwrap(), ds);
    assert!(matches!(ds.upsample(0), Err(Error::InvalidArgument { .. })));
    let t = ds.transposed();
    assert_eq!(t.shape(), [2, 3, 2]);
    assert_eq!(&t.pixels(0)[..6], &[0, 3, 1, 4, 2, 5]);
    assert_eq!(t.transposed(), ds);
    let sub = ds.subset(&[1, 1, 0]).unwrap();
    assert_eq!((sub.len(), sub.labels()), (3, Some(&[1, 1, 0][..])));
    assert_eq!(sub.pixels(2), ds.pixels(0));
    assert!(matches!(ds.subset(&[2]), Err(Error::InvalidArgument { .. })));
}
