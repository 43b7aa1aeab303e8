//! Drawn samples on disk: `.npy` always, `.csv` for points.

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use cdm_data::PointCloud;

/// Writes `prefix.npy` (and `prefix.csv` for points) and returns the samples as a point cloud.
pub fn write_samples(dir: &Path, prefix: &str, x: &Tensor) -> Result<PointCloud> {
    let x64 = x.to_dtype(DType::F64)?.to_device(&Device::Cpu)?;
    let npy = dir.join(format!("{prefix}.npy"));
    x64.write_npy(&npy).with_context(|| format!("writing {}", npy.display()))?;
    let rows = x64.dim(0)?;
    let cloud = PointCloud::new(x64.flatten_all()?.to_vec1::<f64>()?, x64.elem_count() / rows.max(1))?;
    if x.rank() == 2 {
        cdm_data::write_csv(&dir.join(format!("{prefix}.csv")), &cloud, None)?;
    }
    Ok(cloud)
}
