//! Checkpoints round-trip exactly, and bad files give typed errors naming the tensor.

mod common;

use std::fs;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use cdm_core::Denoiser;
use cdm_models::checkpoint::{self, CheckpointFiles};
use cdm_models::{Error, MlpConfig, ModelConfig, UnetConfig};
use common::{named_vars, randn, tiny_unet};

/// A fresh, empty directory under cargo's per-test temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cdm-models-{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn unet_and_mlp_round_trip_exactly() {
    let dir = scratch("round-trip");
    let config = tiny_unet(1, [8, 16], 4);
    let (unet, vars) = config.init(11, DType::F32, &Device::Cpu).unwrap();
    let files = CheckpointFiles::in_dir(&dir);
    checkpoint::save(&files, &config, &vars).unwrap();
    let loaded = checkpoint::load::<UnetConfig>(&files, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(loaded.config, config);
    let (before, after) = (named_vars(&vars), named_vars(&loaded.vars));
    assert_eq!(before.len(), after.len());
    for ((name, a), (other, b)) in before.iter().zip(&after) {
        assert_eq!(name, other);
        assert_eq!(values(a.as_tensor()), values(b.as_tensor()), "{name}");
    }
    let z = randn(1, &[2, 1, 8, 8], DType::F32);
    let t = Tensor::new(&[5f32, 900.0], &Device::Cpu).unwrap();
    let (y0, y1) = (unet.forward(&z, &t, false).unwrap(), loaded.model.forward(&z, &t, false).unwrap());
    assert_eq!(values(&y0), values(&y1));

    let mlp_files = CheckpointFiles { config: dir.join("mlp.json"), weights: dir.join("mlp.safetensors") };
    let (mlp, vars) = MlpConfig::default().init(3, DType::F32, &Device::Cpu).unwrap();
    checkpoint::save(&mlp_files, &MlpConfig::default(), &vars).unwrap();
    let loaded = checkpoint::load::<MlpConfig>(&mlp_files, DType::F32, &Device::Cpu).unwrap();
    let z = randn(2, &[3, 2], DType::F32);
    assert_eq!(
        values(&mlp.eps_at(&z, &[0.0, 1.0, 2.0]).unwrap()),
        values(&loaded.model.eps_at(&z, &[0.0, 1.0, 2.0]).unwrap())
    );

    // only the two files: no temporary files are left behind
    let mut names: Vec<String> =
        fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["config.json", "diffusion_pytorch_model.safetensors", "mlp.json", "mlp.safetensors"]);
}

#[test]
fn mismatched_checkpoints_name_every_offending_tensor() {
    let dir = scratch("mismatch");
    let files = CheckpointFiles::in_dir(&dir);
    let small = MlpConfig { d_model: 8, ..MlpConfig::default() };
    let (_, vars) = small.init(0, DType::F32, &Device::Cpu).unwrap();
    checkpoint::save_weights(&files.weights, &vars).unwrap();

    // a wider model: every hidden tensor is mis-shaped
    let (_, wide) = MlpConfig { d_model: 16, ..MlpConfig::default() }.init(0, DType::F32, &Device::Cpu).unwrap();
    match checkpoint::load_weights(&files.weights, &wide) {
        Err(Error::CheckpointMismatch { missing, unexpected, mismatched, .. }) => {
            assert!(missing.is_empty() && unexpected.is_empty());
            let first = &mismatched[0];
            assert_eq!(
                (first.name.as_str(), &first.expected[..], &first.found[..]),
                ("blocks.0.linear1.bias", &[16][..], &[8][..])
            );
            assert_eq!(mismatched.len(), 2 * 6 + 3); // 6 per block, input weight and bias, output weight
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }

    // a deeper model: the third block is missing; a shallower one: the second is unexpected
    let (_, deeper) = MlpConfig { blocks: 3, ..small.clone() }.init(0, DType::F32, &Device::Cpu).unwrap();
    match checkpoint::load_weights(&files.weights, &deeper) {
        Err(Error::CheckpointMismatch { missing, unexpected, mismatched, .. }) => {
            assert_eq!(missing.len(), 6);
            assert!(missing.iter().all(|n| n.starts_with("blocks.2.")));
            assert!(unexpected.is_empty() && mismatched.is_empty());
        }
        other => panic!("expected missing tensors, got {other:?}"),
    }
    let (_, shallower) = MlpConfig { blocks: 1, ..small }.init(0, DType::F32, &Device::Cpu).unwrap();
    let error = checkpoint::load_weights(&files.weights, &shallower).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("unexpected [blocks.1.linear1.bias"), "{message}");
}

#[test]
fn truncated_or_corrupt_files_give_typed_errors_without_panicking() {
    let dir = scratch("corrupt");
    let files = CheckpointFiles::in_dir(&dir);
    let config = MlpConfig { d_model: 8, ..MlpConfig::default() };
    let (_, vars) = config.init(0, DType::F32, &Device::Cpu).unwrap();
    checkpoint::save(&files, &config, &vars).unwrap();
    let bytes = fs::read(&files.weights).unwrap();
    let broken = dir.join("broken.safetensors");

    for len in (0..bytes.len()).step_by(7) {
        fs::write(&broken, &bytes[..len]).unwrap();
        assert!(
            matches!(checkpoint::load_weights(&broken, &vars), Err(Error::CorruptCheckpoint { .. })),
            "length {len}"
        );
    }
    // flip bytes in the header and in the data: either a typed error, or (data only) a clean load
    for position in (0..bytes.len()).step_by(5) {
        let mut flipped = bytes.clone();
        flipped[position] ^= 0xA5;
        fs::write(&broken, &flipped).unwrap();
        match checkpoint::load_weights(&broken, &vars) {
            Ok(()) | Err(Error::CorruptCheckpoint { .. } | Error::CheckpointMismatch { .. }) => {}
            Err(other) => panic!("byte {position}: unexpected error {other}"),
        }
    }
    assert!(matches!(checkpoint::load_weights(&dir.join("absent.safetensors"), &vars), Err(Error::Io { .. })));
    fs::write(&files.config, b"{ \"d_model\": ").unwrap();
    assert!(matches!(checkpoint::load::<MlpConfig>(&files, DType::F32, &Device::Cpu), Err(Error::Json { .. })));
}
