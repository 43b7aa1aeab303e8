//! Property tests of every file parser in cdm-data: valid files, mutated, must give a value or a
//! typed error, never a panic, an endless loop or an allocation far beyond the file.
//!
//! The case count of each property is in its `config(…)` call; `PROPTEST_CASES=N` overrides all
//! of them for a longer run (docs/reliability.md).

#[path = "../common/mod.rs"]
mod common;
mod support;

mod cifar;
mod csv;
mod folder;
mod idx;
mod npy;
