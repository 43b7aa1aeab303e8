//! IDX images and labels, raw and gzip: mutated files load consistently or give a typed error
//! naming the file, and a gzip stream is never inflated far past what its header declares.

use cdm_data::{Error, load_idx};
use proptest::prelude::*;

use crate::common::{TempDir, gzip, idx};
use crate::support::{config, mutate, mutations, peak_bytes};

/// How a file reaches the loader.
#[derive(Clone, Copy, Debug)]
enum Packing {
    /// Mutated raw bytes.
    Raw,
    /// Raw bytes mutated, then compressed: a valid stream of damaged content.
    GzipOfMutated,
    /// Compressed, then mutated: a damaged stream.
    MutatedGzip,
}

fn packing() -> impl Strategy<Value = Packing> {
    prop_oneof![Just(Packing::Raw), Just(Packing::GzipOfMutated), Just(Packing::MutatedGzip)]
}

fn pack(raw: Vec<u8>, packing: Packing, m: &[crate::support::Mutation]) -> Vec<u8> {
    match packing {
        Packing::Raw => mutate(raw, m),
        Packing::GzipOfMutated => gzip(&mutate(raw, m)),
        Packing::MutatedGzip => mutate(gzip(&raw), m),
    }
}

fn images() -> impl Strategy<Value = (u32, u32, u32, Vec<u8>)> {
    (1u32..4, 1u32..6, 1u32..6).prop_flat_map(|(n, rows, cols)| {
        (Just(n), Just(rows), Just(cols), prop::collection::vec(any::<u8>(), (n * rows * cols) as usize))
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mutated_idx_files_load_consistently_or_fail_typed(
        (n, rows, cols, pixels) in images(),
        image_packing in packing(),
        label_packing in packing(),
        damage_labels in any::<bool>(),
        m in mutations(),
    ) {
        let tmp = TempDir::new("fuzz-idx");
        let labels: Vec<u8> = (0..n as u8).collect();
        let (image_m, label_m) = if damage_labels { (&[][..], &m[..]) } else { (&m[..], &[][..]) };
        let image_bytes = pack(idx(&[n, rows, cols], &pixels), image_packing, image_m);
        let label_bytes = pack(idx(&[n], &labels), label_packing, label_m);
        let images = tmp.write("images", &image_bytes);
        let labels_path = tmp.write("labels", &label_bytes);
        let (result, peak) = peak_bytes(|| load_idx(&images, Some(&labels_path)));
        // the files are under 1 KiB raw; a header-sized allocation would be gigabytes
        prop_assert!(peak < 1 << 20, "{peak} bytes held while loading");
        match result {
            Ok(ds) => {
                let [c, h, w] = ds.shape();
                prop_assert_eq!(c, 1);
                prop_assert_eq!(ds.labels().map(<[u32]>::len), Some(ds.len()));
                prop_assert!(!ds.is_empty() && h > 0 && w > 0);
            }
            Err(e) => {
                let typed = matches!(e, Error::BadMagic { .. } | Error::Truncated { .. } | Error::SizeMismatch { .. }
                    | Error::UnsupportedFormat { .. } | Error::Gzip { .. });
                prop_assert!(typed, "unexpected error kind: {e}");
                let text = e.to_string();
                prop_assert!(text.contains("images") || text.contains("labels"), "{text}");
            }
        }
    }
}
