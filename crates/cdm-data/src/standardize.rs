//! Per-column standardisation: `z = (x − μ) / s`, inverted by `x = μ + s·z`.
//!
//! [`Standardizer::fit`] uses the column mean μ and the **population** standard deviation
//! s = √(Σ(x − μ)²/n), like numpy's default `std()` in the paper's data code. A column whose
//! s is at most 1e-12 × its largest |x| (constant up to round-off) is rejected with
//! [`Error::ZeroVariance`].

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

    /// `(x − μ) / s` for every point.
    ///
    /// # Panics
    /// If `points.dim() != self.dim()`, or a result is not finite (possible only with a
    /// hand-built standardiser, e.g. one with a zero `std`).
    pub fn apply(&self, points: &PointCloud) -> PointCloud {
        self.map(points, |x, mu, s| (x - mu) / s)
    }

    /// `μ + s·z` for every point: the inverse of [`Standardizer::apply`].
    ///
    /// # Panics
    /// If `points.dim() != self.dim()`, or a result is not finite (possible only with a
    /// hand-built standardiser, e.g. one with a zero `std`).
    pub fn invert(&self, points: &PointCloud) -> PointCloud {
        self.map(points, |z, mu, s| mu + s * z)
    }

    fn map(&self, points: &PointCloud, f: impl Fn(f64, f64, f64) -> f64) -> PointCloud {
        let dim = points.dim();
        assert_eq!(dim, self.dim(), "standardizer has {} columns, points have {dim}", self.dim());
        let mut data = points.data().to_vec();
        for row in data.chunks_exact_mut(dim) {
            for (j, x) in row.iter_mut().enumerate() {
                *x = f(*x, self.mean[j], self.std[j]);
                assert!(x.is_finite(), "standardizer produced {x} in column {j} (std {})", self.std[j]);
            }
        }
        PointCloud::from_finite(data, dim)
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
        let z = s.apply(&c);
        let refit = Standardizer::fit(&z).unwrap();
        for j in 0..2 {
            assert!(refit.mean[j].abs() < 1e-12 && (refit.std[j] - 1.0).abs() < 1e-12, "{refit:?}");
        }
        for (a, b) in s.invert(&z).data().iter().zip(c.data()) {
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
}
