//! Training checkpoints (`state.json` and the model, EMA and optimizer safetensors), one file
//! mutated at a time: the checkpoint loads with finite tensors or gives a typed error naming the
//! damaged file; never a panic or an allocation beyond the files. `PROPTEST_CASES=N` runs longer
//! (docs/reliability.md).

// the mutations and the allocation measure are the data parsers' (cdm-data's fuzz suite)
#[path = "../../cdm-data/tests/fuzz/support.rs"]
mod support;

use std::collections::HashMap;
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use cdm_train::Error;
use cdm_train::checkpoint::{Checkpoint, TrainState, load_checkpoint, save_checkpoint};
use proptest::prelude::*;
use support::{config, mutate, mutations, peak_bytes};

const FILES: [&str; 4] = ["state.json", "model.safetensors", "ema.safetensors", "optimizer.safetensors"];

fn tensors(scale: f32) -> HashMap<String, Tensor> {
    let t = |n: usize| Tensor::from_vec((0..n).map(|i| scale * i as f32).collect::<Vec<f32>>(), n, &Device::Cpu);
    HashMap::from([("w".to_string(), t(12).unwrap()), ("b".to_string(), t(3).unwrap())])
}

/// The files of one valid checkpoint, written once by `save_checkpoint` (which syncs to disk).
fn valid_files() -> &'static [Vec<u8>; 4] {
    static FILES_BYTES: OnceLock<[Vec<u8>; 4]> = OnceLock::new();
    FILES_BYTES.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let state = TrainState { step: 40, ema_updates: 40, seed: 7 };
        let ckpt = Checkpoint { model: tensors(0.5), ema: tensors(0.25), optimizer: tensors(0.01), state };
        let dir = save_checkpoint(tmp.path(), &ckpt).unwrap();
        FILES.map(|f| std::fs::read(dir.join(f)).unwrap())
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_damaged_checkpoint_loads_finite_or_names_the_file(file in 0..FILES.len(), m in mutations()) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for (i, (name, bytes)) in FILES.iter().zip(valid_files()).enumerate() {
            let bytes = if i == file { mutate(bytes.clone(), &m) } else { bytes.clone() };
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let (result, peak) = peak_bytes(|| load_checkpoint(dir, &Device::Cpu));
        prop_assert!(peak < 1 << 20, "{peak} bytes held loading a checkpoint of a few hundred bytes");
        match result {
            Ok(loaded) => {
                for t in loaded.model.values().chain(loaded.ema.values()).chain(loaded.optimizer.values()) {
                    let values = t.flatten_all().unwrap().to_dtype(candle_core::DType::F32).unwrap().to_vec1::<f32>().unwrap();
                    prop_assert!(values.iter().all(|v| v.is_finite()));
                }
            }
            Err(e) => {
                let typed = matches!(e, Error::Checkpoint { .. } | Error::Io { .. });
                prop_assert!(typed, "unexpected error kind: {e}");
                prop_assert!(e.to_string().contains(FILES[file]), "{e}");
            }
        }
    }
}
