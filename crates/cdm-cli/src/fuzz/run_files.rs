//! The JSON files of a run directory (`config.json`, `model.json`, `standardizer.json`), each
//! mutated in a run written by the same code as `cdm train`: opening the run and building its
//! network give a run or an error naming the file, never a panic or an allocation the memory
//! limit would refuse.

use candle_core::Device;
use cdm_data::{PointCloud, Standardizer};
use proptest::prelude::*;

use super::{apply, config, edits};
use crate::admission;
use crate::config::{ModelSpec, RunConfig};
use crate::model::Network;
use crate::run_dir::{SavedConfig, SavedRun, read_json};

/// The three files of a small run: points (MLP) or images (UNet) defaults.
fn run_files(images: bool) -> [(&'static str, String); 3] {
    let mut cfg = if images { RunConfig::image_defaults() } else { RunConfig::default() };
    if let ModelSpec::Mlp(m) = &mut cfg.model {
        m.d_model = 16;
    }
    let saved = SavedConfig::new(cfg.clone(), None);
    let standardizer = Standardizer::fit(&PointCloud::new(vec![0.0, 1.0, 2.0, 5.0, 3.0, -1.0], 2).unwrap()).unwrap();
    [("config.json", pretty(&saved)), ("model.json", pretty(&cfg.model)), ("standardizer.json", pretty(&standardizer))]
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mutated_run_files_open_or_name_the_file(images in any::<bool>(), file in 0usize..3, e in edits()) {
        let tmp = tempfile::tempdir().unwrap();
        let mut files = run_files(images);
        files[file].1 = apply(&files[file].1, &e);
        for (name, text) in &files {
            std::fs::write(tmp.path().join(name), text).unwrap();
        }
        let name = files[file].0;
        let named = |err: &anyhow::Error| format!("{err:#}").contains(name);
        match SavedRun::open(tmp.path()) {
            Ok(run) => {
                // a model small enough to build quickly builds or names its bad field; a larger one
                // is left to the memory admission (tested in admission.rs)
                if admission::parameters(&run.spec) <= 1_000_000
                    && let Err(err) = Network::build(&run.spec, 0, &Device::Cpu, false)
                {
                    let message = format!("{err:#}");
                    prop_assert!(message.contains("invalid") || message.contains("unsupported"), "{}", message);
                }
                let _ = run.device(None);
            }
            Err(err) => prop_assert!(named(&err), "{:#}", err),
        }
        match read_json::<Standardizer>(&tmp.path().join("standardizer.json")) {
            // a standardizer that reads must map a point to finite values or refuse it
            Ok(s) => {
                let point = PointCloud::new(vec![1.0; s.dim().max(1)], s.dim().max(1)).unwrap();
                if let Ok(z) = s.apply(&point) {
                    prop_assert!(z.data().iter().all(|v| v.is_finite()), "{:?} from {:?}", z.data(), s);
                }
            }
            Err(err) => prop_assert!(named(&err), "{:#}", err),
        }
    }
}
