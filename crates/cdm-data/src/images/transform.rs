//! Geometric transforms of a whole [`ImageDataset`]: centred padding, nearest-neighbour
//! upsampling and transposition. All keep the labels and the white level.

use super::ImageDataset;
use crate::{Error, Result};

impl ImageDataset {
    /// Pads every image to `height × width` with pixel 0 (value −1, black), centred: the top and
    /// left margins are `⌊(height − H)/2⌋` and `⌊(width − W)/2⌋`, the bottom and right ones take
    /// the rest. Example: the 8×8 digits to 16×16 for a UNet with two downsamplings.
    ///
    /// Fails with [`Error::InvalidArgument`] when `height < H` or `width < W`.
    pub fn pad_to(&self, height: usize, width: usize) -> Result<Self> {
        let [c, h, w] = self.shape;
        if height < h || width < w {
            return Err(Error::invalid(
                "pad_to size",
                format!("{height}×{width} for {h}×{w} images"),
                "must not be smaller than the images",
            ));
        }
        let (top, left) = ((height - h) / 2, (width - w) / 2);
        let mut pixels = vec![0u8; self.len() * c * height * width];
        for (src, dst) in self.pixels.chunks_exact(w).zip(0..) {
            let (plane, y) = (dst / h, dst % h);
            let start = (plane * height + top + y) * width + left;
            pixels[start..start + w].copy_from_slice(src);
        }
        Ok(self.with_pixels(pixels, [c, height, width]))
    }

    /// Scales every image up by an integer `factor` with nearest-neighbour sampling: pixel
    /// `(y, x)` of the result is pixel `(⌊y/factor⌋, ⌊x/factor⌋)` of the original.
    ///
    /// Fails with [`Error::InvalidArgument`] when `factor` is 0.
    pub fn upsample(&self, factor: usize) -> Result<Self> {
        if factor == 0 {
            return Err(Error::invalid("factor", 0, "must be positive"));
        }
        let [c, h, w] = self.shape;
        let mut pixels = Vec::with_capacity(self.pixels.len() * factor * factor);
        for row in self.pixels.chunks_exact(w) {
            let wide: Vec<u8> = row.iter().flat_map(|&p| std::iter::repeat_n(p, factor)).collect();
            for _ in 0..factor {
                pixels.extend_from_slice(&wide);
            }
        }
        Ok(self.with_pixels(pixels, [c, h * factor, w * factor]))
    }

    /// Swaps rows and columns of every image (`C×H×W` → `C×W×H`). EMNIST stores its images
    /// transposed, so `load_idx(..)?.transposed()` shows them upright.
    pub fn transposed(&self) -> Self {
        let [c, h, w] = self.shape;
        let mut pixels = Vec::with_capacity(self.pixels.len());
        for plane in self.pixels.chunks_exact(h * w) {
            pixels.extend((0..w).flat_map(|x| (0..h).map(move |y| plane[y * w + x])));
        }
        self.with_pixels(pixels, [c, w, h])
    }

    /// The same labels and white level with new pixels of a new shape (same image count).
    fn with_pixels(&self, pixels: Vec<u8>, shape: [usize; 3]) -> Self {
        debug_assert_eq!(pixels.len(), self.len() * shape.iter().product::<usize>());
        Self { pixels, shape, max_value: self.max_value, labels: self.labels.clone() }
    }
}
