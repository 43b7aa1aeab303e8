//! Safetensors weights, mutated (truncated, bytes flipped, header numbers and offsets changed),
//! load into a model exactly and finitely, or give a typed error naming the file; never a
//! panic or an allocation beyond the file. `PROPTEST_CASES=N` runs longer (docs/reliability.md).

// the mutations and the allocation measure are the data parsers' (cdm-data's fuzz suite)
#[path = "../../cdm-data/tests/fuzz/support.rs"]
mod support;

use std::path::PathBuf;

use candle_core::{DType, Device};
use cdm_models::checkpoint::{load_weights, save_weights};
use cdm_models::{Error, MlpConfig, ModelConfig};
use proptest::prelude::*;
use support::{config, mutate, mutations, peak_bytes};

fn scratch() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cdm-models-fuzz-checkpoint");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The saved weights of a small residual MLP.
fn saved_weights(path: &std::path::Path) -> Vec<u8> {
    let config = MlpConfig { d_model: 8, blocks: 1, ..Default::default() };
    let (_, vars) = config.init(3, DType::F32, &Device::Cpu).unwrap();
    save_weights(path, &vars).unwrap();
    std::fs::read(path).unwrap()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mutated_weights_load_finite_or_fail_typed(m in mutations()) {
        let dir = scratch();
        let valid = saved_weights(&dir.join("valid.safetensors"));
        let bytes = mutate(valid, &m);
        let path = dir.join("mutated.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        let config = MlpConfig { d_model: 8, blocks: 1, ..Default::default() };
        let (_, vars) = config.init(4, DType::F32, &Device::Cpu).unwrap();
        let (result, peak) = peak_bytes(|| load_weights(&path, &vars));
        prop_assert!(peak < 16 * bytes.len() as u64 + (1 << 20), "{peak} bytes held for a {}-byte file", bytes.len());
        match result {
            Ok(()) => {
                for var in vars.all_vars() {
                    let values = var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    prop_assert!(values.iter().all(|v| v.is_finite()));
                }
            }
            Err(e) => {
                let typed = matches!(e, Error::CorruptCheckpoint { .. } | Error::CheckpointMismatch { .. });
                prop_assert!(typed, "unexpected error kind: {e}");
                prop_assert!(e.to_string().contains("mutated.safetensors"), "{e}");
            }
        }
    }
}
