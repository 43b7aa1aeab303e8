//! The scikit-learn 8×8 handwritten `digits` (1797 images, labels 0–9), vendored.
//!
//! # Format
//!
//! `data/digits.csv.gz` (57,523 bytes) is copied byte for byte from the scikit-learn wheel
//! (`sklearn/datasets/data/digits.csv.gz`, BSD-3-Clause; source, licence and attribution in
//! `data/NOTICE.md`). It is a gzip CSV without header: 1797 rows of 65 comma-separated integers,
//! the 64 pixels of an 8×8 image in row-major order, each in `0..=16`, then the label in `0..=9`.
//! Each pixel counts the set pixels of a 4×4 block of a 32×32 bitmap (UCI "Optical Recognition of
//! Handwritten Digits", test set), so the white level is 16.

use std::path::Path;

use super::ImageDataset;
use super::read::gunzip_if_gz;
use crate::{Error, Result};

/// The vendored gzip CSV.
pub const CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// The name errors give the vendored file.
const NAME: &str = "digits.csv.gz";

/// Pixels per image.
const PIXELS: usize = 64;

/// The white level: a 4×4 block has at most 16 set pixels.
const MAX_VALUE: u8 = 16;

/// The 1797 digits as `1×8×8` images with white level 16 and labels 0–9.
///
/// Class counts are `[178, 182, 177, 183, 181, 182, 181, 179, 174, 180]`. The vendored file is
/// checked while parsing, so this fails (with a typed error naming `digits.csv.gz`) only if it
/// was damaged.
pub fn load_digits() -> Result<ImageDataset> {
    let path = Path::new(NAME);
    let text = gunzip_if_gz(CSV_GZ.to_vec(), path)?;
    let mut pixels = Vec::with_capacity(1797 * PIXELS);
    let mut labels = Vec::with_capacity(1797);
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(line);
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split(',').collect();
        if fields.len() != PIXELS + 1 {
            return Err(Error::ColumnCount {
                path: path.to_path_buf(),
                line: index + 1,
                expected: PIXELS + 1,
                got: fields.len(),
            });
        }
        for (column, field) in fields.iter().enumerate() {
            let (max, expected) =
                if column < PIXELS { (MAX_VALUE, "an integer in 0..=16") } else { (9, "a label in 0..=9") };
            let value = field.trim().parse::<u8>().ok().filter(|&v| v <= max).ok_or_else(|| Error::InvalidField {
                path: path.to_path_buf(),
                line: index + 1,
                column: column + 1,
                field: field.trim().to_string(),
                expected,
            })?;
            if column < PIXELS {
                pixels.push(value);
            } else {
                labels.push(u32::from(value));
            }
        }
    }
    if labels.is_empty() {
        return Err(Error::NoRows { path: path.to_path_buf() });
    }
    ImageDataset::new(pixels, [1, 8, 8], MAX_VALUE, Some(labels))
}
