//! Per-column standardisation: `z = (x − μ) / s`, inverted by `x = μ + s·z`.
//!
//! [`Standardizer::fit`] uses the column mean μ and the **population** standard deviation
//! s = √(Σ(x − μ)²/n), like numpy's default `std()` in the paper's data code. A column whose
//! s is at most 1e-12 × its largest |x| (constant up to round-off) is rejected with
//! [`Error::ZeroVariance`], one whose s overflows f64 with [`Error::InvalidArgument`]. Applying
//! a standardiser never panics: a mismatched dimension, a hand-built standardiser with a zero
//! or non-finite s, or a value that leaves the f64 range is a typed error.

use crate::{Error, PointCloud, Result};

/// Column means and standard deviations; serialisable so a trained model can store them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Standardizer {
    /// Column means μ.
    pub mean: Vec<f64>,
    /// Column standard deviations s (all > 0).
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits μ and s to the columns of `points`.
    ///
    /// Fails with [`Error::InvalidArgument`] on an empty cloud and [`Error::ZeroVariance`] on a
    /// constant column.
    pub fn fit(points: &PointCloud) -> Result<Self> {
        if points.is_empty() {
            return Err(Error::invalid("points", "0 rows", "standardize needs at least one row"));
        }
        let n = points.len() as f64;
        let mut mean = vec![0.0; points.dim()];
        let mut std = vec![0.0; points.dim()];
        for j in 0..points.dim() {
            let column = points.column(j);
            let mu = column.iter().sum::<f64>() / n;
            let s = (column.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / n).sqrt();
            let scale = column.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            if !s.is_finite() || !mu.is_finite() {
                return Err(Error::invalid(
                    "points",
                    format!("column {j}"),
                    "values so large their spread overflows f64",
                ));
            }
            if s <= 1e-12 * scale {
                return Err(Error::ZeroVariance { column: j, value: mu });
            }
            (mean[j], std[j]) = (mu, s);
        }
        Ok(Self { mean, std })
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Checks a standardiser read from a file: as many means as standard deviations, finite
    /// means, and finite positive standard deviations.
    pub fn validate(&self) -> Result<()> {
        if self.mean.len() != self.std.len() {
            return Err(Error::invalid("std", self.std.len(), "needs one entry per mean"));
        }
        if let Some(j) = self.mean.iter().position(|m| !m.is_finite()) {
            return Err(Error::invalid("mean", format!("{} in column {j}", self.mean[j]), "must be finite"));
        }
        if let Some(j) = self.std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::invalid("std", format!("{} in column {j}", self.std[j]), "must be finite and positive"));
        }
        Ok(())
    }

    /// `(x − μ) / s` for every point.
    pub fn apply(&self, points: &PointCloud) -> Result<PointCloud> {
        self.map(points, |x, mu, s| (x - mu) / s)
    }

    /// `μ + s·z` for every point: the inverse of [`Standardizer::apply`].
    pub fn invert(&self, points: &PointCloud) -> Result<PointCloud> {
        self.map(points, |z, mu, s| mu + s * z)
    }

    fn map(&self, points: &PointCloud, f: impl Fn(f64, f64, f64) -> f64) -> Result<PointCloud> {
        self.validate()?;
        let dim = points.dim();
        if dim != self.dim() {
            return Err(Error::invalid("points", format!("{dim} columns"), "must have the standardiser's columns"));
        }
        let mut data = points.data().to_vec();
        for (i, row) in data.chunks_exact_mut(dim).enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                let original = *x;
                *x = f(*x, self.mean[j], self.std[j]);
                if !x.is_finite() {
                    let at = format!("{original} at row {i}, column {j}");
                    return Err(Error::invalid("points", at, "leaves the f64 range when standardised"));
                }
            }
        }
        Ok(PointCloud::from_finite(data, dim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_apply_invert_round_trip() {
        let c = PointCloud::new(vec![1.0, 10.0, 2.0, 30.0, 3.0, 20.0, 6.0, 60.0], 2).unwrap();
        let s = Standardizer::fit(&c).unwrap();
        assert_eq!(s.mean, vec![3.0, 30.0]);
        assert!((s.std[0] - 3.5f64.sqrt()).abs() < 1e-12);
        let z = s.apply(&c).unwrap();
        let refit = Standardizer::fit(&z).unwrap();
        for j in 0..2 {
            assert!(refit.mean[j].abs() < 1e-12 && (refit.std[j] - 1.0).abs() < 1e-12, "{refit:?}");
        }
        for (a, b) in s.invert(&z).unwrap().data().iter().zip(c.data()) {
            assert!((a - b).abs() < 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
        // serde_json without its `float_roundtrip` feature may parse back 1 ulp off.
        let back: Standardizer = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        for (a, b) in back.mean.iter().chain(&back.std).zip(s.mean.iter().chain(&s.std)) {
            assert!((a - b).abs() <= 4.0 * f64::EPSILON * b.abs(), "{back:?} vs {s:?}");
        }
    }

    #[test]
    fn zero_variance_and_empty_are_errors() {
        let c = PointCloud::new(vec![1.0, 0.1, 2.0, 0.1, 3.0, 0.1], 2).unwrap();
        assert!(matches!(Standardizer::fit(&c), Err(Error::ZeroVariance { column: 1, .. })));
        let one = PointCloud::new(vec![5.0], 1).unwrap();
        assert!(matches!(Standardizer::fit(&one), Err(Error::ZeroVariance { column: 0, .. })));
        let zeros = PointCloud::new(vec![0.0; 4], 1).unwrap();
        assert!(matches!(Standardizer::fit(&zeros), Err(Error::ZeroVariance { column: 0, .. })));
        let empty = PointCloud::new(vec![], 2).unwrap();
        assert!(matches!(Standardizer::fit(&empty), Err(Error::InvalidArgument { field: "points", .. })));
    }

    #[test]
    fn values_beyond_f64_and_broken_standardizers_are_errors_not_panics() {
        // (x − μ)² overflows: the spread is not representable
        let huge = PointCloud::new(vec![1e308, -1e308, 0.0], 1).unwrap();
        assert!(matches!(Standardizer::fit(&huge), Err(Error::InvalidArgument { field: "points", .. })));
        // a standardiser from a file with a zero or non-finite std, or too few entries
        let c = PointCloud::new(vec![1.0, 2.0], 1).unwrap();
        for bad in [
            Standardizer { mean: vec![0.0], std: vec![0.0] },
            Standardizer { mean: vec![f64::NAN], std: vec![1.0] },
            Standardizer { mean: vec![0.0, 1.0], std: vec![1.0] },
        ] {
            assert!(matches!(bad.apply(&c), Err(Error::InvalidArgument { .. })), "{bad:?}");
        }
        // a value that leaves the f64 range when mapped, and a dimension mismatch
        let tiny = Standardizer { mean: vec![0.0], std: vec![1e-300] };
        let err = tiny.apply(&PointCloud::new(vec![1.0, 1e10], 1).unwrap()).unwrap_err().to_string();
        assert!(err.contains("row 1, column 0"), "{err}");
        let two = PointCloud::new(vec![1.0, 2.0], 2).unwrap();
        assert!(matches!(tiny.apply(&two), Err(Error::InvalidArgument { field: "points", .. })));
    }
}
