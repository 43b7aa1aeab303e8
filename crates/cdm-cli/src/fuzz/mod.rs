//! Property tests of the CLI's text parsers (tests only): TOML run configs, density JSON,
//! `--dataset` strings and the JSON files of a run directory.
//!
//! Each property starts from valid text (the repository's `configs/*.toml`, generated specs,
//! a run's own files) and mutates it; the parser must answer with a value or an error that names
//! the file or field — never a panic (proptest fails a case that panics) — and whatever it
//! accepts must survive the next step (a config must round-trip through `config.json`). The
//! case count of each property is in its `config(…)` call; `PROPTEST_CASES=N` overrides it
//! (docs/reliability.md).

mod dataset_spec;
mod density_json;
mod run_config;
mod run_files;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// The case count of a property: `PROPTEST_CASES` when set, else `default`.
pub fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// One change to a text file.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Keep only the text before the position.
    Truncate(Index),
    /// Replace one byte.
    Byte(Index, u8),
    /// Insert a fragment: a token of the formats, or arbitrary text.
    Insert(Index, String),
    /// Remove up to 8 bytes.
    Remove(Index, usize),
    /// Replace a number (a run of digits, `.`, `-`, `e`) with another.
    Number(Index, String),
}

/// Numbers a field should refuse or survive: huge, tiny, negative, non-finite, fractional.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1e308".to_string()),
        Just("1e309".to_string()),
        Just("-1e308".to_string()),
        Just("5e-324".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("NaN".to_string()),
        Just("18446744073709551616".to_string()),
        Just("18446744073709551615".to_string()),
        Just("0.5".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
    ]
}

fn fragment() -> impl Strategy<Value = String> {
    static TOKENS: [&str; 15] =
        ["[", "]", "{", "}", ",", ":", "=", "\"", "'", "\n", "#", "[model]", "kind = \"unet\"", "null", "true"];
    prop_oneof![prop::sample::select(&TOKENS[..]).prop_map(str::to_string), "[ -~]{1,12}", number()]
}

/// One edit.
pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Byte(at, b)),
        2 => (any::<Index>(), fragment()).prop_map(|(at, s)| Edit::Insert(at, s)),
        1 => (any::<Index>(), 1usize..8).prop_map(|(at, n)| Edit::Remove(at, n)),
        4 => (any::<Index>(), number()).prop_map(|(at, s)| Edit::Number(at, s)),
    ]
}

/// One to three edits.
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), 1..4)
}

/// `text` with `edits` applied in order (bytes that stop being UTF-8 are replaced).
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for e in edits {
        match e {
            Edit::Truncate(at) => bytes.truncate(at.index(bytes.len() + 1)),
            Edit::Byte(at, b) if !bytes.is_empty() => {
                let i = at.index(bytes.len());
                bytes[i] = *b;
            }
            Edit::Byte(..) => {}
            Edit::Insert(at, s) => {
                let i = at.index(bytes.len() + 1);
                bytes.splice(i..i, s.bytes());
            }
            Edit::Remove(at, n) if !bytes.is_empty() => {
                let i = at.index(bytes.len());
                bytes.drain(i..(i + n).min(bytes.len()));
            }
            Edit::Remove(..) => {}
            Edit::Number(at, s) => {
                let runs = number_runs(&bytes);
                if !runs.is_empty() {
                    let (start, end) = runs[at.index(runs.len())];
                    bytes.splice(start..end, s.bytes());
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The `[start, end)` ranges of the numbers in `bytes`.
fn number_runs(bytes: &[u8]) -> Vec<(usize, usize)> {
    let in_number = |b: u8| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'e';
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = (0..i).rev().take_while(|&j| bytes[j] == b'-').last().unwrap_or(i);
            let mut end = i;
            while end < bytes.len() && in_number(bytes[end]) {
                end += 1;
            }
            runs.push((start, end));
            i = end;
        } else {
            i += 1;
        }
    }
    runs
}
