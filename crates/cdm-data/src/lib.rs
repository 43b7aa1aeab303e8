//! # cdm-data
//!
//! Data for the 1-D and 2-D experiments of *Your Diffusion Model is Secretly a Noise Classifier
//! and Benefits from Contrastive Training* (Wu et al., NeurIPS 2024, arXiv:2407.08946):
//!
//! - [`PointCloud`]: n points × dim, row-major f64, always finite; tensor conversion, gather and a
//!   seeded train/validation split;
//! - [`Toy`]: seeded generators for the Datasaurus [`dino`], moons, circles, rings, swiss roll,
//!   8 Gaussians, pinwheel, two spirals, checkerboard and the paper's 1-D two-mode mixture; point
//!   i depends only on (toy, seed, i);
//! - [`read_csv`] / [`write_csv`]: point-cloud CSV with typed errors naming file, line and column;
//! - [`read_npy`]: NumPy `.npy` arrays of integers or floats, either byte order, as `f64`;
//! - [`Standardizer`]: per-column z-scoring, serialisable and invertible;
//! - [`ImageDataset`]: images in `[−1, 1]` with one interface (shape, length, seeded batches and
//!   shuffles, random horizontal flips, padding) from our own offline [`images`] readers:
//!   MNIST-family IDX ([`load_idx`], raw or `.gz`), CIFAR-10 binary ([`load_cifar10`]), PNG/JPEG
//!   folders ([`load_image_folder`]) and the vendored scikit-learn 8×8 digits ([`load_digits`]);
//!   with the `hub` feature (off by default), also image parquet data sets of the Hugging Face
//!   hub through its local cache (`images::hub`: `load_hub`, `Hub`, `HubDataset`).
#![doc = include_str!("../README.md")]

mod csv;
pub mod dino;
mod error;
pub mod images;
pub mod npy;
mod points;
mod shapes;
mod standardize;
mod toy;

pub use csv::{parse_csv, read_csv, write_csv};
pub use error::{Error, Result};
#[cfg(feature = "hub")]
pub use images::hub::{Hub, HubDataset, load_hub, load_parquet_images};
pub use images::{
    ColorMode, ImageDataset, Split, load_cifar10, load_cifar10_dir, load_digits, load_idx, load_idx_dir,
    load_image_folder,
};
pub use npy::{NpyArray, read_npy};
pub use points::PointCloud;
pub use standardize::Standardizer;
pub use toy::Toy;
