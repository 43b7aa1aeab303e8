//! The Datasaurus "dino": 142 hand-drawn points, as the paper's `real_dino` data set.
//!
//! One draw (the authors' `real_dino`, `docs/math.md` §13.2; after tanelp/tiny-diffusion):
//!
//! 1. pick a row (x, y) of the 142 uniformly at random;
//! 2. jitter in raw units: x += 0.15·N, y += 0.15·N;
//! 3. map x ↦ 4(x/54 − 1), y ↦ 4(y/48 − 1), roughly onto [−3.3, 3.3]²;
//! 4. standardise each column: z = (u − μ)/s.
//!
//! The paper standardises with the statistics of its own 100,000-point draw. Here μ and s are the
//! **exact** moments of steps 1–3, so the generator is deterministic per point and independent of
//! the sample size: with m the 142 mapped rows, μ = mean(m) and
//! s² = var(m) + (4·0.15/54)² for x, resp. var(m) + (4·0.15/48)² for y, where var is the population
//! variance over the rows (a uniform pick) and the second term is the mapped jitter variance.
//! [`standardizer`] returns these (μ, s).
//!
//! The CSV is vendored from the Apache-2.0 PyPI wheel `same-stats==0.1.1`; see `data/NOTICE.md`.

use std::sync::OnceLock;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::{PointCloud, Standardizer, parse_csv};

/// The vendored CSV text: 142 headerless `x,y` rows in raw Datasaurus units.
pub const CSV: &str = include_str!("../data/datasaurus_dino.csv");

/// Standard deviation of the raw-unit jitter added to each coordinate.
pub const JITTER: f64 = 0.15;

/// The divisors of the affine map u = 4(x/d − 1), per column.
pub const DIVISORS: [f64; 2] = [54.0, 48.0];

struct Dino {
    raw: PointCloud,
    mapped: Vec<[f64; 2]>,
    standardizer: Standardizer,
}

fn dino() -> &'static Dino {
    static DINO: OnceLock<Dino> = OnceLock::new();
    DINO.get_or_init(|| {
        let raw = parse_csv(CSV, "datasaurus_dino.csv".as_ref()).expect("the vendored Datasaurus CSV parses");
        let mapped: Vec<[f64; 2]> = raw.iter_rows().map(|r| [map(r[0], 0), map(r[1], 1)]).collect();
        let n = mapped.len() as f64;
        let mut mean = vec![0.0; 2];
        let mut std = vec![0.0; 2];
        for j in 0..2 {
            mean[j] = mapped.iter().map(|p| p[j]).sum::<f64>() / n;
            let var = mapped.iter().map(|p| (p[j] - mean[j]).powi(2)).sum::<f64>() / n;
            std[j] = (var + (4.0 * JITTER / DIVISORS[j]).powi(2)).sqrt();
        }
        Dino { raw, mapped, standardizer: Standardizer { mean, std } }
    })
}

fn map(x: f64, column: usize) -> f64 {
    4.0 * (x / DIVISORS[column] - 1.0)
}

/// The 142 raw points (142 × 2), parsed from [`CSV`].
pub fn raw_points() -> &'static PointCloud {
    &dino().raw
}

/// The exact mean and standard deviation of a mapped, jittered draw (steps 1–3), which step 4
/// divides out. [`Standardizer::invert`] takes generated points back to the mapped units.
pub fn standardizer() -> &'static Standardizer {
    &dino().standardizer
}

/// One standardised dino point from `rng` (draw order: row, x jitter, y jitter).
pub(crate) fn point(rng: &mut ChaCha8Rng) -> [f64; 2] {
    let d = dino();
    let row = d.mapped[rng.random_range(0..d.mapped.len())];
    std::array::from_fn(|j| {
        let jitter = 4.0 * JITTER / DIVISORS[j] * rng.sample::<f64, _>(StandardNormal);
        (row[j] + jitter - d.standardizer.mean[j]) / d.standardizer.std[j]
    })
}
