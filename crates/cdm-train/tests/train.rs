//! Resume, crash safety, the non-finite guard and config validation of the training loop.

mod common;

use std::cell::Cell;
use std::path::Path;

use candle_core::{Device, Tensor};
use cdm_core::{Denoiser, NoiseSource};
use cdm_objectives::{LossOutput, Objective};
use cdm_train::checkpoint::{latest_checkpoint, load_checkpoint, load_tensors};
use cdm_train::{Error, TrainConfig, Trainer};
use common::{TinyNet, batch, config, objective, run_dir};

#[test]
fn stopping_and_resuming_is_bit_identical_to_an_uninterrupted_run() {
    let obj = objective();
    let validation = batch(999, 0).unwrap();
    let straight = TinyNet::new();
    let dir_a = run_dir("straight");
    Trainer::new(config(12), straight.params.clone(), &straight, &obj, &dir_a)
        .unwrap()
        .run(&mut batch, Some(&validation), false)
        .unwrap();

    // the same 12-step run, killed while drawing the batch of step 9 (after the step-8 checkpoint)
    let killed = TinyNet::new();
    let dir_b = run_dir("resumed");
    let mut dies_at_nine = |step: u64, micro: usize| {
        if step == 9 {
            return Err(Error::InvalidArgument { field: "simulated", value: "kill".into(), reason: "test" });
        }
        batch(step, micro)
    };
    let result = Trainer::new(config(12), killed.params.clone(), &killed, &obj, &dir_b).unwrap().run(
        &mut dies_at_nine,
        Some(&validation),
        false,
    );
    assert!(result.is_err());
    // a fresh process: new model object, weights only from the checkpoint
    let fresh = TinyNet::new();
    let summary = Trainer::new(config(12), fresh.params.clone(), &fresh, &obj, &dir_b)
        .unwrap()
        .run(&mut batch, Some(&validation), true)
        .unwrap();
    assert_eq!(summary.resumed_from, 8);
    assert_eq!(straight.snapshot(), fresh.snapshot(), "weights differ after resume");
    let ema_a = load_tensors(&dir_a.join("ema.safetensors"), &Device::Cpu).unwrap();
    let ema_b = load_tensors(&dir_b.join("ema.safetensors"), &Device::Cpu).unwrap();
    for (name, t) in &ema_a {
        assert_eq!(
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            ema_b[name].flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }
    let lines = |d: &Path| std::fs::read_to_string(d.join("metrics.jsonl")).unwrap().lines().count();
    assert_eq!(lines(&dir_a), lines(&dir_b));
    let text = std::fs::read_to_string(dir_a.join("metrics.jsonl")).unwrap();
    assert!(text.contains("\"val_loss\"") && text.contains("\"grad_norm\"") && text.contains("\"cdl_accuracy\""));
}

#[test]
fn an_interrupted_checkpoint_write_never_corrupts_latest() {
    let obj = objective();
    let net = TinyNet::new();
    let dir = run_dir("interrupted");
    Trainer::new(config(8), net.params.clone(), &net, &obj, &dir).unwrap().run(&mut batch, None, false).unwrap();
    // simulate a kill in the middle of writing step 12: a temp dir with a truncated file
    let tmp = dir.join("checkpoints/.tmp-step-00000012");
    std::fs::create_dir_all(&tmp).unwrap();
    let good = std::fs::read(dir.join("checkpoints/step-00000008/model.safetensors")).unwrap();
    std::fs::write(tmp.join("model.safetensors"), &good[..good.len() / 2]).unwrap();
    let latest = latest_checkpoint(&dir).unwrap().unwrap();
    assert!(latest.ends_with("step-00000008"));
    assert!(load_checkpoint(&latest, &Device::Cpu).is_ok());
    // resuming works and cleans the leftover
    let again = TinyNet::new();
    Trainer::new(config(12), again.params.clone(), &again, &obj, &dir).unwrap().run(&mut batch, None, true).unwrap();
    assert!(!tmp.exists());
    // a truncated checkpoint file is a typed error naming the file, never a panic
    let broken = dir.join("broken.safetensors");
    std::fs::write(&broken, &good[..good.len() / 3]).unwrap();
    match load_tensors(&broken, &Device::Cpu) {
        Err(Error::Checkpoint { path, .. }) => assert_eq!(path, broken),
        other => panic!("expected a checkpoint error, got {:?}", other.map(|m| m.len())),
    }
    std::fs::write(&broken, b"not a safetensors file at all").unwrap();
    assert!(matches!(load_tensors(&broken, &Device::Cpu), Err(Error::Checkpoint { .. })));
}

/// Wraps an objective and makes its loss NaN at one call.
struct PoisonAt<'a> {
    inner: &'a dyn Objective,
    call: Cell<u64>,
    poison: u64,
}

impl Objective for PoisonAt<'_> {
    fn name(&self) -> &'static str {
        "poisoned"
    }
    fn loss(&self, d: &dyn Denoiser, x: &Tensor, noise: &NoiseSource) -> cdm_objectives::Result<LossOutput> {
        let mut out = self.inner.loss(d, x, noise)?;
        if self.call.get() == self.poison {
            out.loss = (out.loss * f64::NAN)?;
        }
        self.call.set(self.call.get() + 1);
        Ok(out)
    }
}

#[test]
fn a_nan_loss_stops_the_run_with_a_typed_error_and_the_last_checkpoint_loads() {
    let inner = objective();
    let poisoned = PoisonAt { inner: &inner, call: Cell::new(0), poison: 5 };
    let net = TinyNet::new();
    let dir = run_dir("nan");
    let err = Trainer::new(config(12), net.params.clone(), &net, &poisoned, &dir)
        .unwrap()
        .run(&mut batch, None, false)
        .unwrap_err();
    let Error::NonFinite { step, what, last_checkpoint } = err else { panic!("expected NonFinite, got {err}") };
    assert_eq!((step, what), (5, "loss"));
    let last = last_checkpoint.expect("a checkpoint at step 4");
    assert!(last.ends_with("step-00000004"));
    let ckpt = load_checkpoint(&last, &Device::Cpu).unwrap();
    assert_eq!(ckpt.state.step, 4);
    // the check runs before every checkpoint: the last one holds only finite weights
    assert!(ckpt.model.values().chain(ckpt.ema.values()).all(|t| {
        t.flatten_all()
            .unwrap()
            .to_dtype(candle_core::DType::F64)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
            .iter()
            .all(|v| v.is_finite())
    }));
}

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_nan_validation_loss_is_a_logged_warning_and_training_goes_on() {
    let net = TinyNet::new();
    let validation = Tensor::new(&[[f32::NAN, 0.0], [1.0, 1.0]], &Device::Cpu).unwrap();
    let log = Captured::default();
    let sink = log.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || sink.clone()).with_ansi(false).finish();
    let summary = tracing::subscriber::with_default(subscriber, || {
        Trainer::new(config(4), net.params.clone(), &net, &objective(), run_dir("nanval")).unwrap().run(
            &mut batch,
            Some(&validation),
            false,
        )
    })
    .unwrap();
    assert_eq!(summary.steps, 4);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let warning =
        text.lines().find(|l| l.contains("validation loss is not finite")).unwrap_or_else(|| panic!("{text}"));
    assert!(warning.contains("WARN") && warning.contains("step=4") && warning.contains("NaN"), "{warning}");
}

/// A loss whose value is finite but whose gradient is NaN (√ at 0).
struct NanGradient;
impl Objective for NanGradient {
    fn name(&self) -> &'static str {
        "nan_gradient"
    }
    fn loss(&self, d: &dyn Denoiser, x: &Tensor, _noise: &NoiseSource) -> cdm_objectives::Result<LossOutput> {
        let alpha = vec![0.0; x.dim(0)?];
        let out = d.eps_at(x, &alpha)?;
        // √((u − u)²) = 0, whose derivative is ∞·0 = NaN
        let zero = out.sub(&out.detach())?;
        Ok(LossOutput { loss: zero.sqr()?.sqrt()?.sum_all()?, metrics: vec![] })
    }
}

#[test]
fn a_nan_gradient_stops_the_run_at_its_step_before_any_checkpoint() {
    let net = TinyNet::new();
    let dir = run_dir("nangrad");
    let err = Trainer::new(config(4), net.params.clone(), &net, &NanGradient, &dir)
        .unwrap()
        .run(&mut batch, None, false)
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { step: 0, what: "gradient", last_checkpoint: None }), "{err}");
    assert_eq!(latest_checkpoint(&dir).unwrap(), None);
}

#[test]
fn bad_config_values_are_typed_errors() {
    let net = TinyNet::new();
    let obj = objective();
    let cases: Vec<(&str, TrainConfig)> = vec![
        ("steps", TrainConfig { steps: 0, ..config(4) }),
        ("batch_size", TrainConfig { batch_size: 0, ..config(4) }),
        ("lr", TrainConfig { lr: -1.0, ..config(4) }),
        ("lr", TrainConfig { lr: f64::NAN, ..config(4) }),
        ("grad_clip", TrainConfig { grad_clip: Some(0.0), ..config(4) }),
        ("ema_decay", TrainConfig { ema_decay: 1.0, ..config(4) }),
        ("min_lr_ratio", TrainConfig { min_lr_ratio: 2.0, ..config(4) }),
    ];
    for (field, cfg) in cases {
        match Trainer::new(cfg, net.params.clone(), &net, &obj, run_dir("badcfg")) {
            Err(Error::InvalidArgument { field: f, .. }) => assert_eq!(f, field),
            Err(e) => panic!("{field}: wrong error {e}"),
            Ok(_) => panic!("{field}: accepted"),
        }
    }
    let json = r#"{"steps": 10, "learning_rate": 0.1}"#;
    assert!(serde_json::from_str::<TrainConfig>(json).is_err(), "unknown fields are rejected");
}
