//! `metrics.jsonl`: one JSON object per [`LogRecord`], appended as the run goes.
//!
//! A resumed run starts from its checkpoint, so lines the killed run wrote past that step
//! would be written again: [`on_start`](TrainObserver::on_start) keeps only the lines with
//! `step` ≤ the resumed step (none on a fresh start), and the file ends up as if the run had
//! never stopped.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{LogRecord, RunStart, TrainObserver};
use crate::{Error, Result};

/// Writes every log record as a line of JSON.
#[derive(Debug)]
pub struct MetricsJsonl {
    path: PathBuf,
    file: Option<fs::File>,
}

impl MetricsJsonl {
    /// A writer of `path` (conventionally `metrics.jsonl` in the run directory); the file is
    /// opened when the run starts.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), file: None }
    }
}

impl TrainObserver for MetricsJsonl {
    fn on_start(&mut self, start: &RunStart<'_>) -> Result<()> {
        let kept: String = match fs::read_to_string(&self.path) {
            Ok(text) if start.step > 0 => text
                .lines()
                .filter(|l| line_step(l).is_some_and(|s| s <= start.step))
                .map(|l| format!("{l}\n"))
                .collect(),
            _ => String::new(),
        };
        fs::write(&self.path, kept).map_err(Error::io(&self.path))?;
        self.file = Some(open_append(&self.path)?);
        Ok(())
    }

    /// Appends the record; one arriving without a start is appended to what the file holds.
    fn on_log(&mut self, record: &LogRecord) -> Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(open_append(&self.path)?),
        };
        writeln!(file, "{}", Value::Object(json(record))).map_err(Error::io(&self.path))
    }
}

fn open_append(path: &Path) -> Result<fs::File> {
    fs::OpenOptions::new().append(true).create(true).open(path).map_err(Error::io(path))
}

/// The `step` of a line, if it is a JSON object with one.
fn line_step(line: &str) -> Option<u64> {
    serde_json::from_str::<Value>(line).ok()?.get("step")?.as_u64()
}

/// The record as one JSON object: `step`, `loss`, `lr`, `grad_norm`, `it_per_s`, the named
/// metrics, and `val_loss` when validation ran.
fn json(record: &LogRecord) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("step".into(), record.step.into());
    object.insert("loss".into(), record.loss.into());
    object.insert("lr".into(), record.lr.into());
    object.insert("grad_norm".into(), record.grad_norm.into());
    object.insert("it_per_s".into(), record.it_per_s.into());
    for (name, value) in &record.metrics {
        object.insert(name.clone(), (*value).into());
    }
    if let Some(v) = record.val_loss {
        object.insert("val_loss".into(), v.into());
    }
    object
}
