//! The data of a run behind one interface, [`RunData`], with its two kinds: points (toys, CSV)
//! and images (digits, IDX, CIFAR-10, folders).

mod grid;
mod images;
mod points;
mod run_data;
mod sample_files;

use anyhow::Result;

pub use grid::write_grid;
pub use images::{ROWS_PER_CALL as IMAGE_ROWS_PER_CALL, load_images};
pub use points::{PointData, ROWS_PER_CALL as POINT_ROWS_PER_CALL, load_points};
pub use run_data::RunData;
pub use sample_files::write_samples;

use crate::config::DataConfig;
use crate::dataset::DataKind;

/// Loads the data set of `cfg`.
pub fn load(cfg: &DataConfig) -> Result<Box<dyn RunData>> {
    Ok(match cfg.dataset.kind() {
        DataKind::Points => Box::new(load_points(cfg)?),
        DataKind::Images => Box::new(images::load_images(cfg)?),
    })
}
