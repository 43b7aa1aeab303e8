//! PNG figures: samples against data, the error heat map with sampler trajectories, and line
//! charts (loss curves, MMD per Picard round, MSE against log-SNR).
//!
//! Everything is drawn with plotters' bitmap backend; text uses the bundled DejaVu Sans
//! (`assets/DejaVuSans.ttf`, Bitstream Vera licence), registered once as `"sans-serif"`, so no
//! system font is needed. Drawing never panics on awkward inputs: non-finite points are
//! skipped, empty or constant ranges are padded, and failures come back as [`Error::Plot`] or
//! [`Error::Io`] naming the file. Missing parent directories are created.

mod heatmap;
mod line;
mod scatter;

pub use heatmap::heatmap_with_trajectories;
pub use line::{BandPoint, band_chart, line_chart};
pub use scatter::scatter_vs_data;

use std::path::Path;
use std::sync::OnceLock;

use plotters::style::{FontStyle, register_font};

use crate::{Error, Result};

/// DejaVu Sans, Bitstream Vera licence (`assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// A boxed plotters failure, turned into [`Error::Plot`] at the public boundary.
type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Registers the font and creates `path`'s parent directory.
fn prepare(path: &Path) -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if !*REGISTERED.get_or_init(|| register_font("sans-serif", FontStyle::Normal, FONT).is_ok()) {
        return Err(Error::Plot { path: path.into(), message: "the bundled font did not parse".into() });
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.into(), source })
        }
        _ => Ok(()),
    }
}

/// Runs a drawing routine, naming `path` in any error.
fn render(path: &Path, draw: impl FnOnce() -> DrawResult) -> Result<()> {
    prepare(path)?;
    draw().map_err(|e| Error::Plot { path: path.into(), message: e.to_string() })
}

/// `[lo, hi]` of the finite values (below 1e100 in magnitude), padded by 5% (by 1 when constant; `[0, 1]` when none).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    pad(values).unwrap_or((0.0, 1.0))
}

/// Whole decades `[10^⌊log₁₀ min⌋, 10^⌈log₁₀ max⌉]` around the positive finite values (at
/// least one decade; `[0.1, 1]` when none), so the log axis has labelled decade ticks.
fn decade_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let Some((lo, hi)) = bounds(values.filter(|v| *v > 0.0).map(f64::log10)) else {
        return (0.1, 1.0);
    };
    let (lo, hi) = (lo.floor(), hi.ceil());
    // a hair below the lowest decade, so that plotters' tick search includes it
    (10f64.powf(lo) * (1.0 - 1e-9), 10f64.powf(if hi > lo { hi } else { lo + 1.0 }))
}

/// A tick label: integers without a fraction, small or large magnitudes in scientific form,
/// others with at most three decimals.
fn tick(v: &f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Min and max of the finite values below 1e100 in magnitude.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) =
        values.filter(|v| v.abs() < 1e100).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    (lo <= hi).then_some((lo, hi))
}

/// `bounds` padded by 5% of the span, or by 1 around a constant.
fn pad(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = bounds(values)?;
    if hi - lo <= 1e-12 * lo.abs().max(1.0) {
        Some((lo - 1.0, hi + 1.0))
    } else {
        let margin = 0.05 * (hi - lo);
        Some((lo - margin, hi + margin))
    }
}
