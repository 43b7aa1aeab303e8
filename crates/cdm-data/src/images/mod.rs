//! Image data sets behind one interface, read offline by our own small readers.
//!
//! Every loader returns (the format of each file is documented in its module) an [`ImageDataset`]: `N` images of `C×H×W` bytes, optional class labels,
//! and a white level `max` (255 for 8-bit files, 16 for the sklearn digits). Tensors hold the
//! pixel `p` as `x = 2·p/max − 1 ∈ [−1, 1]`, the usual diffusion-model convention.
//!
//! | loader | format | module |
//! |---|---|---|
//! | [`load_idx`], [`load_idx_dir`] | MNIST-family IDX (MNIST, Fashion-MNIST, KMNIST, EMNIST), raw or gzip | [`idx`] |
//! | [`load_cifar10`], [`load_cifar10_dir`] | CIFAR-10 binary batches | [`cifar`] |
//! | [`load_image_folder`] | a folder of PNG/JPEG files, optional class subfolders | [`folder`] |
//! | [`load_digits`] | the vendored scikit-learn 8×8 digits | [`digits`] |
//! | `load_hub`, `Hub::load`, `load_parquet_images` | image parquet files from the Hugging Face hub cache (feature `hub`) | `hub` |
//!
//! Files are gzip-decompressed when they start with the gzip magic bytes `1f 8b`, whatever their
//! name. Every header and size is checked, and a bad file gives a typed [`crate::Error`] naming it
//! (`BadMagic`, `Truncated`, `SizeMismatch`, `RecordSize`, `UnsupportedFormat`, `Gzip`, `Image`,
//! `LabelOutOfRange`, `NoFiles`), never a panic.
//!
//! We do not use `candle-datasets`: it pulls in about 300 extra crates (hf-hub, parquet,
//! tokenizers), reads only uncompressed IDX and needs exactly 10,000 records per CIFAR file. The
//! opt-in `hub` feature uses two of its building blocks directly (hf-hub's blocking API and
//! cache, the `parquet` crate's row reader) and adds about 30 crates.

mod batch;
pub mod cifar;
mod dataset;
pub mod digits;
pub mod folder;
#[cfg(feature = "hub")]
pub mod hub;
pub mod idx;
mod read;
mod transform;

pub use cifar::{load_cifar10, load_cifar10_dir};
pub use dataset::ImageDataset;
pub use digits::load_digits;
pub use folder::{ColorMode, load_image_folder};
pub use idx::{load_idx, load_idx_dir};

/// Which part of a data set with a fixed train/test split to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images (`train-*` IDX files, CIFAR-10 `data_batch_1..5.bin`).
    Train,
    /// The test images (`t10k-*` IDX files, CIFAR-10 `test_batch.bin`).
    Test,
}
