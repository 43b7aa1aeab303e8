//! [`PointCloud`]: `n` points of dimension `dim`, stored row-major in f64.
//!
//! Point `i` occupies `data[i·dim .. (i+1)·dim]`. Every value is finite: the constructors check it,
//! so downstream code (standardisation, training) never meets a NaN from the data.

use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;

use crate::{Error, Result};

/// `n` points of dimension `dim`, row-major f64, all finite.
#[derive(Clone, Debug, PartialEq)]
pub struct PointCloud {
    data: Vec<f64>,
    dim: usize,
}

impl PointCloud {
    /// Wraps a row-major buffer of `data.len() / dim` points.
    ///
    /// Fails with [`Error::Shape`] when `dim` is 0 or does not divide `data.len()`, and with
    /// [`Error::NonFinite`] on the first NaN or infinity.
    pub fn new(data: Vec<f64>, dim: usize) -> Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(Error::Shape { len: data.len(), dim });
        }
        if let Some(index) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { index, row: index / dim, column: index % dim, value: data[index] });
        }
        Ok(Self { data, dim })
    }

    /// Wraps values that are finite by construction (the generators). Checked in debug builds.
    pub(crate) fn from_finite(data: Vec<f64>, dim: usize) -> Self {
        debug_assert!(dim > 0 && data.len().is_multiple_of(dim) && data.iter().all(|v| v.is_finite()));
        Self { data, dim }
    }

    /// Copies a rank-2 `(n, dim)` tensor of any float or integer dtype to the host.
    pub fn from_tensor(tensor: &Tensor) -> Result<Self> {
        let (n, dim) = tensor.dims2()?;
        let data = tensor.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        debug_assert_eq!(data.len(), n * dim);
        Self::new(data, dim)
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Dimension of each point.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The row-major values.
    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// Consumes the cloud and returns its row-major values.
    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// Point `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Iterates over the points.
    pub fn iter_rows(&self) -> std::slice::ChunksExact<'_, f64> {
        self.data.chunks_exact(self.dim)
    }

    /// The values of column `j`, one per point.
    ///
    /// # Panics
    /// If `j >= self.dim()`.
    pub fn column(&self, j: usize) -> Vec<f64> {
        assert!(j < self.dim, "column {j} out of range for dim {}", self.dim);
        self.iter_rows().map(|r| r[j]).collect()
    }

    /// An `(n, dim)` tensor of `dtype` on `device` (built in f64 on the host, then cast).
    pub fn to_tensor(&self, dtype: DType, device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(&self.data, (self.len(), self.dim), device)?.to_dtype(dtype)?)
    }

    /// The points at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn rows(&self, indices: &[usize]) -> PointCloud {
        let mut data = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Self { data, dim: self.dim }
    }

    /// Splits into `(train, validation)` with `round(validation_fraction · n)` validation points
    /// chosen by a seeded shuffle (ChaCha8 via [`cdm_core::NoiseSource`], domain `"split"`).
    /// Each part keeps the original relative order of its points.
    ///
    /// Fails with [`Error::InvalidArgument`] unless `0 ≤ validation_fraction ≤ 1`.
    pub fn split(&self, validation_fraction: f64, seed: u64) -> Result<(PointCloud, PointCloud)> {
        if !(0.0..=1.0).contains(&validation_fraction) {
            return Err(Error::invalid("validation_fraction", validation_fraction, "must lie in [0, 1]"));
        }
        let n = self.len();
        let n_val = ((validation_fraction * n as f64).round() as usize).min(n);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut cdm_core::NoiseSource::new(seed).fork("split").stream(0));
        let (val, train) = order.split_at_mut(n_val);
        train.sort_unstable();
        val.sort_unstable();
        Ok((self.rows(train), self.rows(val)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud() -> PointCloud {
        PointCloud::new((0..20).map(f64::from).collect(), 2).unwrap()
    }

    #[test]
    fn new_rejects_ragged_zero_dim_and_non_finite() {
        assert!(matches!(PointCloud::new(vec![1.0; 5], 2), Err(Error::Shape { len: 5, dim: 2 })));
        assert!(matches!(PointCloud::new(vec![], 0), Err(Error::Shape { len: 0, dim: 0 })));
        let err = PointCloud::new(vec![0.0, 1.0, 2.0, f64::NAN], 2).unwrap_err();
        assert!(matches!(err, Error::NonFinite { index: 3, row: 1, column: 1, .. }), "{err}");
        assert!(matches!(PointCloud::new(vec![f64::INFINITY], 1), Err(Error::NonFinite { index: 0, .. })));
        let empty = PointCloud::new(vec![], 3).unwrap();
        assert!(empty.is_empty());
        assert_eq!((empty.len(), empty.dim()), (0, 3));
    }

    #[test]
    fn rows_gather_and_accessors() {
        let c = cloud();
        assert_eq!((c.len(), c.dim()), (10, 2));
        assert_eq!(c.row(3), &[6.0, 7.0]);
        assert_eq!(c.rows(&[4, 0, 4]).data(), &[8.0, 9.0, 0.0, 1.0, 8.0, 9.0]);
        assert_eq!(c.column(1), (0..10).map(|i| f64::from(2 * i + 1)).collect::<Vec<_>>());
        assert_eq!(c.iter_rows().count(), 10);
    }

    #[test]
    fn tensor_round_trip() {
        let c = cloud();
        let t = c.to_tensor(DType::F32, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[10, 2]);
        assert_eq!(t.dtype(), DType::F32);
        assert_eq!(PointCloud::from_tensor(&t).unwrap(), c);
        let rank1 = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(PointCloud::from_tensor(&rank1), Err(Error::Candle(_))));
    }

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let c = cloud();
        let (train, val) = c.split(0.3, 5).unwrap();
        assert_eq!((train.len(), val.len()), (7, 3));
        let mut firsts: Vec<f64> = train.iter_rows().chain(val.iter_rows()).map(|r| r[0]).collect();
        firsts.sort_by(f64::total_cmp);
        assert_eq!(firsts, c.column(0));
        assert_eq!(c.split(0.3, 5).unwrap(), (train.clone(), val.clone()));
        let (_, other) = c.split(0.3, 6).unwrap();
        assert_ne!(other, val, "a different seed should pick different points");
        assert_eq!(c.split(0.0, 1).unwrap().1.len(), 0);
        assert_eq!(c.split(1.0, 1).unwrap().0.len(), 0);
        for bad in [-0.1, 1.5, f64::NAN] {
            assert!(matches!(c.split(bad, 1), Err(Error::InvalidArgument { field: "validation_fraction", .. })));
        }
    }
}
