//! The training loop's observers: the events and their order, composing and dropping
//! observers, checkpoint retention, `metrics.jsonl` truncation, and observer errors.

mod common;

use std::path::{Path, PathBuf};

use cdm_train::{
    Error, LogRecord, MetricsJsonl, RunStart, StandardObservers, StepEnd, TrainConfig, TrainObserver, TrainSummary,
    Trainer,
};
use common::{TinyNet, batch, config, objective, run_dir};

/// One event as a recorder saw it.
#[derive(Debug, PartialEq)]
enum Seen {
    Start { step: u64, total_steps: u64, resumed_from: Option<PathBuf> },
    Step(u64),
    Validation(u64),
    Log(u64),
    Checkpoint(u64, PathBuf),
    Finish(u64),
}

/// Records every event, with the per-step learning rates and the log records.
#[derive(Default)]
struct Recorder {
    seen: Vec<Seen>,
    lrs: Vec<f64>,
    val_losses: Vec<f64>,
    records: Vec<LogRecord>,
}

impl TrainObserver for Recorder {
    fn on_start(&mut self, start: &RunStart<'_>) -> cdm_train::Result<()> {
        self.seen.push(Seen::Start {
            step: start.step,
            total_steps: start.total_steps,
            resumed_from: start.resumed_from.map(Path::to_path_buf),
        });
        Ok(())
    }

    fn on_step(&mut self, step: &StepEnd) -> cdm_train::Result<()> {
        self.seen.push(Seen::Step(step.step));
        self.lrs.push(step.lr);
        Ok(())
    }

    fn on_validation(&mut self, step: u64, loss: f64) -> cdm_train::Result<()> {
        self.seen.push(Seen::Validation(step));
        self.val_losses.push(loss);
        Ok(())
    }

    fn on_log(&mut self, record: &LogRecord) -> cdm_train::Result<()> {
        self.seen.push(Seen::Log(record.step));
        self.records.push(record.clone());
        Ok(())
    }

    fn on_checkpoint(&mut self, step: u64, dir: &Path) -> cdm_train::Result<()> {
        self.seen.push(Seen::Checkpoint(step, dir.to_path_buf()));
        Ok(())
    }

    fn on_finish(&mut self, summary: &TrainSummary) -> cdm_train::Result<()> {
        self.seen.push(Seen::Finish(summary.steps));
        Ok(())
    }
}

/// Trains a fresh net in `dir`, validating on a fixed batch, reporting to `observer` or, without
/// one, to the standard observers; returns the trained weights.
fn train(
    dir: &Path,
    cfg: TrainConfig,
    resume: bool,
    observer: Option<&mut dyn TrainObserver>,
) -> cdm_train::Result<Vec<Vec<f32>>> {
    let obj = objective();
    let validation = batch(999, 0)?;
    let net = TinyNet::new();
    let trainer = Trainer::new(cfg, net.params.clone(), &net, &obj, dir)?;
    match observer {
        Some(o) => trainer.run_observed(&mut batch, Some(&validation), resume, o)?,
        None => trainer.run(&mut batch, Some(&validation), resume)?,
    };
    Ok(net.snapshot())
}

fn checkpoint(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("checkpoints/step-{step:08}"))
}

/// The `step-…` directories under a run's `checkpoints/`, sorted.
fn checkpoint_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect();
    names.sort();
    names
}

/// `(step, loss)` of every line of a run's `metrics.jsonl`.
fn metrics_lines(dir: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap())
        })
        .collect()
}

#[test]
fn a_recorder_sees_every_event_in_order_with_the_right_steps() {
    use Seen::*;
    let dir = run_dir("observed");
    // log every 2, validate and checkpoint every 4; the recorder rides along with the standard set
    let mut recorder = Recorder::default();
    let mut observers = (StandardObservers::new(&config(6), &dir), &mut recorder);
    train(&dir, config(6), false, Some(&mut observers)).unwrap();
    let expected = vec![
        Start { step: 0, total_steps: 6, resumed_from: None },
        Step(1),
        Step(2),
        Log(2),
        Step(3),
        Step(4),
        Validation(4),
        Log(4),
        Checkpoint(4, checkpoint(&dir, 4)),
        Step(5),
        Step(6),
        Validation(6),
        Log(6),
        Checkpoint(6, checkpoint(&dir, 6)),
        Finish(6),
    ];
    assert_eq!(recorder.seen, expected);

    // a record holds its window's means (the per-step losses from the same run logged every
    // step), and the validation loss when validation ran
    let mut per_step = Recorder::default();
    train(&run_dir("observed-every-step"), TrainConfig { log_every: 1, ..config(6) }, false, Some(&mut per_step))
        .unwrap();
    let l: Vec<f64> = per_step.records.iter().map(|rec| rec.loss).collect();
    let r = &recorder.records;
    assert_eq!([r[0].loss, r[1].loss, r[2].loss], [(l[0] + l[1]) / 2.0, (l[2] + l[3]) / 2.0, (l[4] + l[5]) / 2.0]);
    assert_eq!(
        [r[0].val_loss, r[1].val_loss, r[2].val_loss],
        [None, Some(recorder.val_losses[0]), Some(recorder.val_losses[1])]
    );
    assert!(r.iter().all(|rec| rec.metrics.iter().any(|(name, _)| name == "cdl_accuracy")));
    // metrics.jsonl holds exactly those records
    assert_eq!(metrics_lines(&dir), r.iter().map(|rec| (rec.step, rec.loss)).collect::<Vec<_>>());

    // resuming in a longer run starts from the step-6 checkpoint
    let mut recorder = Recorder::default();
    train(&dir, config(8), true, Some(&mut recorder)).unwrap();
    let expected = vec![
        Start { step: 6, total_steps: 8, resumed_from: Some(checkpoint(&dir, 6)) },
        Step(7),
        Step(8),
        Validation(8),
        Log(8),
        Checkpoint(8, checkpoint(&dir, 8)),
        Finish(8),
    ];
    assert_eq!(recorder.seen, expected);
}

#[test]
fn dropped_observers_change_no_weights_and_write_nothing() {
    // a checkpoint every 2 of 10 steps, 3 kept
    let cfg = TrainConfig { checkpoint_every: 2, keep_checkpoints: 3, ..config(10) };
    let standard_dir = run_dir("standard");
    let standard = train(&standard_dir, cfg.clone(), false, None).unwrap();
    assert_eq!(checkpoint_dirs(&standard_dir), ["step-00000006", "step-00000008", "step-00000010"]);
    assert_eq!(metrics_lines(&standard_dir).len(), 5);

    // the standard set without its metrics writer: retention still runs, no metrics.jsonl
    let no_metrics_dir = run_dir("no-metrics");
    let StandardObservers { progress, retention, .. } = StandardObservers::new(&cfg, &no_metrics_dir);
    let mut rest: Vec<Box<dyn TrainObserver>> = vec![Box::new(progress), Box::new(retention)];
    let no_metrics = train(&no_metrics_dir, cfg.clone(), false, Some(&mut rest)).unwrap();
    assert!(!no_metrics_dir.join("metrics.jsonl").exists());
    assert_eq!(checkpoint_dirs(&no_metrics_dir), checkpoint_dirs(&standard_dir));

    // no observers at all: every checkpoint stays
    let bare_dir = run_dir("bare");
    let bare = train(&bare_dir, cfg, false, Some(&mut ())).unwrap();
    assert!(!bare_dir.join("metrics.jsonl").exists());
    let all: Vec<String> = (1..=5).map(|k| format!("step-{:08}", 2 * k)).collect();
    assert_eq!(checkpoint_dirs(&bare_dir), all);

    // observers only observe: the weights are bit-identical either way
    assert_eq!(standard, no_metrics);
    assert_eq!(standard, bare);
}

#[test]
fn metrics_jsonl_keeps_only_the_lines_up_to_the_resumed_step() {
    let dir = run_dir("metrics-truncation");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("metrics.jsonl");
    let lines: String = (1..=6).map(|k| format!("{{\"step\":{},\"loss\":{k}.5}}\n", 2 * k)).collect();
    std::fs::write(&path, format!("{lines}not json\n")).unwrap();
    let record = |step| LogRecord {
        step,
        loss: 0.25,
        lr: 1e-3,
        grad_norm: 1.0,
        it_per_s: 10.0,
        metrics: vec![("cdl_accuracy".into(), 0.5)],
        val_loss: None,
    };

    // resumed at step 8: lines past 8 (and lines without a step) go, new records append
    let mut metrics = MetricsJsonl::new(&path);
    metrics.on_start(&RunStart { step: 8, total_steps: 12, resumed_from: None }).unwrap();
    metrics.on_log(&record(10)).unwrap();
    assert_eq!(metrics_lines(&dir), [(2, 1.5), (4, 2.5), (6, 3.5), (8, 4.5), (10, 0.25)]);
    let last: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&path).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(last["cdl_accuracy"], 0.5);
    assert!(last.get("val_loss").is_none());

    // a fresh start empties it
    let mut metrics = MetricsJsonl::new(&path);
    metrics.on_start(&RunStart { step: 0, total_steps: 12, resumed_from: None }).unwrap();
    assert!(metrics_lines(&dir).is_empty());
}

/// Fails with an I/O error when the checkpoint of `step` is reported.
struct FailsAtCheckpoint {
    step: u64,
}

impl TrainObserver for FailsAtCheckpoint {
    fn on_checkpoint(&mut self, step: u64, _dir: &Path) -> cdm_train::Result<()> {
        if step == self.step {
            return Err(Error::Io { path: "observer".into(), source: std::io::Error::other("disk full") });
        }
        Ok(())
    }
}

#[test]
fn an_observer_error_stops_the_run_with_that_error() {
    let dir = run_dir("observer-error");
    let mut recorder = Recorder::default();
    let mut observers = (&mut recorder, FailsAtCheckpoint { step: 4 });
    let err = train(&dir, config(12), false, Some(&mut observers)).unwrap_err();
    match err {
        Error::Io { path, source } => {
            assert_eq!((path, source.to_string()), (PathBuf::from("observer"), "disk full".into()))
        }
        other => panic!("expected the observer's error, got {other}"),
    }
    // nothing ran past the failing event; the checkpoint it reported is complete
    assert_eq!(recorder.seen.last(), Some(&Seen::Checkpoint(4, checkpoint(&dir, 4))));
    assert_eq!(recorder.lrs.len(), 4);
    assert_eq!(cdm_train::checkpoint::latest_checkpoint(&dir).unwrap(), Some(checkpoint(&dir, 4)));

    // a metrics writer that cannot write stops the run before the first step, naming its file
    let mut unwritable = MetricsJsonl::new(&dir);
    match train(&dir, config(12), false, Some(&mut (&mut recorder, &mut unwritable))) {
        Err(Error::Io { path, .. }) => assert_eq!(path, dir),
        other => panic!("expected an I/O error naming {}, got {:?}", dir.display(), other.map(|_| ())),
    }
    assert_eq!(recorder.lrs.len(), 4);
}
