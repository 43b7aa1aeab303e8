//! `.npy`: mutated arrays of every supported dtype read to exactly `product(shape)` values, or
//! to a typed error naming the file; valid arrays read back exactly.

use std::path::Path;

use cdm_data::Error;
use cdm_data::npy::{NpyArray, parse_npy};
use proptest::prelude::*;

use crate::support::{config, mutate, mutations, peak_bytes};

/// The supported descriptors with their item sizes.
const DTYPES: [(&str, usize); 14] = [
    ("|i1", 1),
    ("|u1", 1),
    ("<i2", 2),
    (">i2", 2),
    ("<u2", 2),
    ("<i4", 4),
    (">i4", 4),
    ("<u4", 4),
    ("<i8", 8),
    (">i8", 8),
    ("<f4", 4),
    (">f4", 4),
    ("<f8", 8),
    (">f8", 8),
];

/// A `.npy` file (format 1.0, or 2.0 when `v2`) of `values` stored as `descr`.
fn npy_file(descr: &str, size: usize, shape: &[usize], values: &[i8], v2: bool) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = if shape.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    let prefix = if v2 { 12 } else { 10 };
    while !(prefix + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    if v2 {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    for &v in values {
        out.extend(encode(descr, size, v));
    }
    out
}

/// `v` as one item of `descr`.
fn encode(descr: &str, size: usize, v: i8) -> Vec<u8> {
    let mut le = match (&descr[1..2], size) {
        ("f", 4) => (f32::from(v) / 4.0).to_le_bytes().to_vec(),
        ("f", _) => (f64::from(v) / 4.0).to_le_bytes().to_vec(),
        ("u", _) => (i64::from(v).unsigned_abs()).to_le_bytes()[..size].to_vec(),
        _ => i64::from(v).to_le_bytes()[..size].to_vec(),
    };
    if descr.starts_with('>') {
        le.reverse();
    }
    le
}

/// The value `encode` stored.
fn decoded(descr: &str, v: i8) -> f64 {
    match &descr[1..2] {
        "f" => f64::from(v) / 4.0,
        "u" => i64::from(v).unsigned_abs() as f64,
        _ => f64::from(v),
    }
}

fn array() -> impl Strategy<Value = (usize, Vec<usize>, Vec<i8>, bool)> {
    (0..DTYPES.len(), prop::collection::vec(0usize..5, 0..4), any::<bool>()).prop_flat_map(|(dtype, shape, v2)| {
        let count = shape.iter().product::<usize>();
        (Just(dtype), Just(shape), prop::collection::vec(any::<i8>(), count), Just(v2))
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn valid_arrays_read_back_exactly((dtype, shape, values, v2) in array()) {
        let (descr, size) = DTYPES[dtype];
        let bytes = npy_file(descr, size, &shape, &values, v2);
        let array = parse_npy(&bytes, Path::new("a.npy")).unwrap();
        let expected: Vec<f64> = values.iter().map(|&v| decoded(descr, v)).collect();
        prop_assert_eq!(array, NpyArray { shape, values: expected });
    }

    #[test]
    fn mutated_arrays_are_values_or_typed_errors((dtype, shape, values, v2) in array(), m in mutations()) {
        let (descr, size) = DTYPES[dtype];
        let bytes = mutate(npy_file(descr, size, &shape, &values, v2), &m);
        let (result, peak) = peak_bytes(|| parse_npy(&bytes, Path::new("fuzz.npy")));
        // at most 8 bytes of f64 per byte of data, plus the header's small strings
        prop_assert!(peak <= 8 * bytes.len() as u64 + 4096, "{peak} bytes for a {}-byte file", bytes.len());
        match result {
            Ok(array) => prop_assert_eq!(array.values.len(), array.shape.iter().product::<usize>()),
            Err(e) => {
                let typed = matches!(e, Error::BadMagic { .. } | Error::Truncated { .. } | Error::MalformedHeader { .. }
                    | Error::UnsupportedFormat { .. } | Error::DeclaredData { .. });
                prop_assert!(typed, "unexpected error kind: {e}");
                prop_assert!(e.to_string().starts_with("fuzz.npy"), "{e}");
            }
        }
    }
}
