//! [`ImageDataset`]: `N` images of `C×H×W` bytes with optional labels, and their tensors.
//!
//! Pixels are kept as bytes (a quarter of the memory of f32; CIFAR-10's 50,000 training images
//! take 150 MB) and mapped to `x = 2·p/max − 1 ∈ [−1, 1]` only when a batch is built.

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// `N` images of shape `C×H×W`, stored image-major then channel, row, column (NCHW) as bytes in
/// `0..=max`, with an optional class label per image.
///
/// Build one with a loader ([`crate::load_idx`], [`crate::load_cifar10`],
/// [`crate::load_image_folder`], [`crate::load_digits`]) or [`ImageDataset::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageDataset {
    pub(super) pixels: Vec<u8>,
    pub(super) shape: [usize; 3],
    pub(super) max_value: u8,
    pub(super) labels: Option<Vec<u32>>,
}

impl ImageDataset {
    /// Wraps NCHW bytes of images with `shape = [C, H, W]` and white level `max_value`.
    ///
    /// Fails with [`Error::InvalidArgument`] when a dimension or `max_value` is 0, when
    /// `pixels.len()` is not a multiple of `C·H·W`, when a pixel exceeds `max_value`, or when
    /// `labels` does not hold one label per image.
    pub fn new(pixels: Vec<u8>, shape: [usize; 3], max_value: u8, labels: Option<Vec<u32>>) -> Result<Self> {
        if shape.contains(&0) {
            return Err(Error::invalid("shape", format!("{shape:?}"), "every dimension must be positive"));
        }
        if max_value == 0 {
            return Err(Error::invalid("max_value", 0, "must be positive"));
        }
        let size = shape.iter().product::<usize>();
        if !pixels.len().is_multiple_of(size) {
            return Err(Error::invalid("pixels", pixels.len(), "length must be a multiple of C·H·W"));
        }
        if let Some(&p) = pixels.iter().find(|&&p| p > max_value) {
            return Err(Error::invalid("pixels", p, "values must not exceed max_value"));
        }
        if let Some(labels) = &labels
            && labels.len() != pixels.len() / size
        {
            return Err(Error::invalid("labels", labels.len(), "must hold one label per image"));
        }
        Ok(Self { pixels, shape, max_value, labels })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.image_size()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// `[C, H, W]` of every image.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The white level: pixel `max_value` maps to `+1`, pixel 0 to `−1`.
    pub fn max_value(&self) -> u8 {
        self.max_value
    }

    /// The bytes of image `i`, `C·H·W` of them in CHW order.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn pixels(&self, i: usize) -> &[u8] {
        let size = self.image_size();
        &self.pixels[i * size..(i + 1) * size]
    }

    /// Image `i` as `C·H·W` values `2·p/max − 1` in CHW order.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn image(&self, i: usize) -> Vec<f32> {
        let table = self.value_table();
        self.pixels(i).iter().map(|&p| table[p as usize]).collect()
    }

    /// The label of image `i`, if the data set has labels.
    ///
    /// # Panics
    /// If there are labels and `i >= self.len()`.
    pub fn label(&self, i: usize) -> Option<u32> {
        self.labels.as_ref().map(|labels| labels[i])
    }

    /// All labels, one per image, if the data set has them.
    pub fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }

    /// Mean pixel intensity in `[0, 1]` units (`p/max`), over all images and channels; NaN when
    /// empty. Fashion-MNIST's training set gives 0.2860.
    pub fn mean(&self) -> f64 {
        let sum: u64 = self.pixels.iter().map(|&p| u64::from(p)).sum();
        sum as f64 / (self.pixels.len() as f64 * f64::from(self.max_value))
    }

    /// The images at `indices`, in that order (repeats allowed), with their labels.
    ///
    /// Fails with [`Error::InvalidArgument`] on an index `>= self.len()`.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_size());
        for &i in indices {
            pixels.extend_from_slice(self.checked_pixels(i)?);
        }
        let labels = self.labels.as_ref().map(|labels| indices.iter().map(|&i| labels[i]).collect());
        Ok(Self { pixels, shape: self.shape, max_value: self.max_value, labels })
    }

    /// A `(B, C, H, W)` tensor of the images at `indices` (B = `indices.len()`), with values
    /// `2·p/max − 1` built in f32 on the host, then cast to `dtype` on `device`.
    ///
    /// `flip[k]` mirrors image `k` left–right (column `j` ↦ `W − 1 − j`); an empty `flip` flips
    /// nothing. Fails with [`Error::InvalidArgument`] on an index `>= self.len()` or when `flip`
    /// is neither empty nor as long as `indices`.
    pub fn to_tensor(&self, indices: &[usize], flip: &[bool], dtype: DType, device: &Device) -> Result<Tensor> {
        if !flip.is_empty() && flip.len() != indices.len() {
            return Err(Error::invalid("flip", flip.len(), "must be empty or hold one entry per index"));
        }
        let table = self.value_table();
        let [c, h, w] = self.shape;
        let mut values = Vec::with_capacity(indices.len() * self.image_size());
        for (k, &i) in indices.iter().enumerate() {
            let rows = self.checked_pixels(i)?.chunks_exact(w);
            if flip.get(k).copied().unwrap_or(false) {
                rows.for_each(|row| values.extend(row.iter().rev().map(|&p| table[p as usize])));
            } else {
                rows.for_each(|row| values.extend(row.iter().map(|&p| table[p as usize])));
            }
        }
        Ok(Tensor::from_vec(values, (indices.len(), c, h, w), device)?.to_dtype(dtype)?)
    }

    /// `C·H·W`.
    pub(super) fn image_size(&self) -> usize {
        self.shape.iter().product()
    }

    fn checked_pixels(&self, i: usize) -> Result<&[u8]> {
        if i >= self.len() {
            return Err(Error::invalid("index", format!("{i} (length {})", self.len()), "must be below the length"));
        }
        Ok(self.pixels(i))
    }

    /// `2·p/max − 1` for every byte `p`, computed in f64.
    fn value_table(&self) -> [f32; 256] {
        let max = f64::from(self.max_value);
        std::array::from_fn(|p| (2.0 * p as f64 / max - 1.0) as f32)
    }
}
