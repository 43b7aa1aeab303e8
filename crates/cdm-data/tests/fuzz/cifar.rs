//! CIFAR-10 binary batches, raw and gzip: mutated files load whole records with labels below
//! ten, or give a typed error naming the file.

use cdm_data::{Error, load_cifar10};
use proptest::prelude::*;

use crate::common::{TempDir, gzip};
use crate::support::{config, mutate, mutations, peak_bytes};

/// Bytes per record: a label and 3×32×32 pixels.
const RECORD: usize = 3073;

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn mutated_batches_load_whole_records_or_fail_typed(
        labels in prop::collection::vec(0u8..10, 1..4),
        fill in any::<u8>(),
        gzipped in any::<bool>(),
        mutate_after_gzip in any::<bool>(),
        m in mutations(),
    ) {
        let mut raw = Vec::new();
        for &label in &labels {
            raw.push(label);
            raw.extend(std::iter::repeat_n(fill, RECORD - 1));
        }
        let bytes = match (gzipped, mutate_after_gzip) {
            (false, _) => mutate(raw, &m),
            (true, false) => gzip(&mutate(raw, &m)),
            (true, true) => mutate(gzip(&raw), &m),
        };
        let tmp = TempDir::new("fuzz-cifar");
        let path = tmp.write("batch.bin", &bytes);
        let (result, peak) = peak_bytes(|| load_cifar10(&[&path]));
        // three records are 9 KiB; even a damaged stream inflates to little
        prop_assert!(peak < 4 << 20, "{peak} bytes held while loading");
        match result {
            Ok(ds) => {
                prop_assert_eq!(ds.shape(), [3, 32, 32]);
                prop_assert!(ds.labels().is_some_and(|l| l.len() == ds.len() && l.iter().all(|&l| l < 10)));
            }
            Err(e) => {
                let typed = matches!(e, Error::RecordSize { .. } | Error::LabelOutOfRange { .. } | Error::Gzip { .. }
                    | Error::SizeMismatch { .. });
                prop_assert!(typed, "unexpected error kind: {e}");
                prop_assert!(e.to_string().contains("batch.bin"), "{e}");
            }
        }
    }
}
