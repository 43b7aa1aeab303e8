//! What every parser property shares: the case count, mutations of valid files, and a measure
//! of the largest single allocation a parse makes.
//!
//! Each property starts from a valid file built from random parameters and applies a few
//! mutations of the kinds real damage and hostile files take: truncation, flipped or overwritten
//! bytes, inserted or removed runs, header numbers replaced (big-endian words, decimal digits),
//! and the parser must answer with a value or a typed error — never a panic (proptest fails a
//! case that panics), never holding far more memory than the input calls for (peak heap bytes of the
//! parsing thread, measured by `allocation-counter`), never a hang (a
//! case runs in milliseconds; one that loops stalls the suite).

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// The case count of a property: `PROPTEST_CASES` when set (the long run documented in
/// docs/reliability.md), else `default`, sized to keep the suite quick on 2 cores.
pub fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// One change to a file's bytes; positions are fractions of the current length, and `head`
/// positions fall in the first 64 bytes, where the headers are.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Keep only the bytes before the position.
    Truncate(Index),
    /// Flip one bit.
    Flip { head: bool, at: Index, bit: u8 },
    /// Overwrite one byte.
    Set { head: bool, at: Index, value: u8 },
    /// Overwrite four bytes with a big-endian word (IDX sizes, magic numbers).
    Word { head: bool, at: Index, value: u32 },
    /// Replace a run of ASCII digits (a text header's or a CSV's number) with another number.
    Digits { which: Index, text: String },
    /// Insert bytes.
    Insert { at: Index, bytes: Vec<u8> },
    /// Remove up to 16 bytes.
    Remove { head: bool, at: Index, len: usize },
}

fn word() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(1), Just(0xff), Just(0x7fff_ffff), Just(u32::MAX), Just(1 << 16), any::<u32>()]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("18446744073709551616".to_string()),
        Just("4294967296".to_string()),
        Just(String::new()),
        any::<u64>().prop_map(|n| n.to_string()),
        (0u32..1000).prop_map(|n| n.to_string()),
    ]
}

/// One mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<bool>(), any::<Index>(), 0u8..8).prop_map(|(head, at, bit)| Mutation::Flip { head, at, bit }),
        (any::<bool>(), any::<Index>(), any::<u8>()).prop_map(|(head, at, value)| Mutation::Set { head, at, value }),
        (any::<bool>(), any::<Index>(), word()).prop_map(|(head, at, value)| Mutation::Word { head, at, value }),
        (any::<Index>(), number()).prop_map(|(which, text)| Mutation::Digits { which, text }),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<bool>(), any::<Index>(), 1usize..16).prop_map(|(head, at, len)| Mutation::Remove { head, at, len }),
    ]
}

/// One to three mutations.
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

/// `bytes` with `mutations` applied in order.
pub fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    let pos = |bytes: &Vec<u8>, head: bool, at: &Index| {
        let span = if head { bytes.len().min(64) } else { bytes.len() };
        (span > 0).then(|| at.index(span))
    };
    for m in mutations {
        match m {
            Mutation::Truncate(at) => {
                let keep = at.index(bytes.len() + 1);
                bytes.truncate(keep);
            }
            Mutation::Flip { head, at, bit } => {
                if let Some(i) = pos(&bytes, *head, at) {
                    bytes[i] ^= 1 << bit;
                }
            }
            Mutation::Set { head, at, value } => {
                if let Some(i) = pos(&bytes, *head, at) {
                    bytes[i] = *value;
                }
            }
            Mutation::Word { head, at, value } => {
                if let Some(i) = pos(&bytes, *head, at) {
                    let end = (i + 4).min(bytes.len());
                    bytes[i..end].copy_from_slice(&value.to_be_bytes()[..end - i]);
                }
            }
            Mutation::Digits { which, text } => {
                let runs = digit_runs(&bytes);
                if !runs.is_empty() {
                    let (start, end) = runs[which.index(runs.len())];
                    bytes.splice(start..end, text.bytes());
                }
            }
            Mutation::Insert { at, bytes: extra } => {
                let i = at.index(bytes.len() + 1);
                bytes.splice(i..i, extra.iter().copied());
            }
            Mutation::Remove { head, at, len } => {
                if let Some(i) = pos(&bytes, *head, at) {
                    let end = (i + len).min(bytes.len());
                    bytes.drain(i..end);
                }
            }
        }
    }
    bytes
}

/// The `[start, end)` ranges of the runs of ASCII digits in `bytes`.
fn digit_runs(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, b) in bytes.iter().chain([&b' ']).enumerate() {
        match (b.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    runs
}

/// `f()` and the most heap bytes its thread held at once while it ran.
pub fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let mut value = None;
    let info = allocation_counter::measure(|| value = Some(f()));
    (value.expect("the closure ran"), info.bytes_max)
}
