//! The building blocks of the FID Inception network: convolution + batch norm + ReLU, and the
//! three pooling windows of the TensorFlow graph as its PyTorch port runs them.
//!
//! **Conv2dLayer.** A bias-free convolution, then inference batch norm with unit scale, then
//! ReLU:
//!
//! ```text
//! y = relu( (w ⋆ x − mean) / √(var + ε) + β ),   ε = 10⁻³ (the TensorFlow default, not 10⁻⁵)
//! ```
//!
//! Folded at load time into one convolution with a bias, `w′[o] = w[o]·s[o]` and
//! `b′[o] = β[o] − mean[o]·s[o]` with `s[o] = 1/√(var[o] + ε)`; the fold is done in f64 and
//! stored in f32. Padding may differ between height and width (the 1×7 and 7×1 kernels pad 3
//! on one axis only); the convolution (`cdm_kernels::conv2d`, blocked im2col + GEMM on the CPU,
//! candle's `conv2d` elsewhere) pads both axes alike, so unequal padding is applied with
//! explicit zero rows and columns first.
//!
//! **Pools** (`k×k` window, stride `s`, padding `p`):
//!
//! - max pool 3×3, stride 2, no padding (the stem and the grid reductions);
//! - max pool 3×3, stride 1, padding 1 (the last block's pool branch). PyTorch pads with −∞;
//!   padding by repeating the edge row or column gives the same maximum, because every window
//!   that reaches into the padding also holds the edge value that was repeated;
//! - average pool 3×3, stride 1, padding 1 **without counting the padding**
//!   (`count_include_pad=False`, as TensorFlow's `SAME` average pool does): a window of
//!   `c(u, v)` real pixels is divided by `c(u, v)` — 9 inside, 6 on an edge, 4 in a corner;
//! - the final average pool 8×8, stride 8, over the 8×8 map of the last block.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use cdm_kernels::conv2d::conv2d;

use crate::{Error, Result};

/// Batch-norm ε of the TensorFlow graph.
pub const BATCH_NORM_EPS: f64 = 1e-3;

/// Where a convolution sits and how it slides: tensor-name prefix, kernel (kh, kw), stride,
/// padding (ph, pw), and the output channels of the published network.
#[derive(Clone, Debug)]
pub struct ConvSpec {
    /// Tensor-name prefix, e.g. `"mixed_4.tower.conv_1"` (the weights are `<prefix>.weight`,
    /// `.beta`, `.mean`, `.var`).
    pub name: String,
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Stride along both axes.
    pub stride: usize,
    /// Zero padding along height and width.
    pub padding: (usize, usize),
    /// Output channels in the published weights (2048 features in all).
    pub channels: usize,
}

/// A convolution with its batch norm folded in (see the module doc), ready to run.
#[derive(Clone, Debug)]
pub struct ConvBn {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: (usize, usize),
}

impl ConvBn {
    /// Folds the tensors `<name>.{weight,beta,mean,var}` of `tensors`, checking that the weight
    /// is (O, `in_channels`, kh, kw) with the kernel of `spec` and the rest have O entries.
    pub fn load(spec: &ConvSpec, in_channels: usize, tensors: &HashMap<String, Tensor>, source: &str) -> Result<Self> {
        let get = |part: &str| {
            let key = format!("{}.{part}", spec.name);
            tensors
                .get(&key)
                .ok_or_else(|| Error::FidWeights { file: source.into(), detail: format!("missing tensor {key}") })
        };
        let weight = get("weight")?;
        let (kh, kw) = spec.kernel;
        let dims = weight.dims();
        let out = dims.first().copied().unwrap_or(0);
        if dims != [out, in_channels, kh, kw] || out == 0 {
            return Err(Error::FidWeights {
                file: source.into(),
                detail: format!("{}.weight has shape {dims:?}, expected [O, {in_channels}, {kh}, {kw}]", spec.name),
            });
        }
        let vector = |part: &str| -> Result<Vec<f64>> {
            let t = get(part)?;
            if t.dims() != [out] {
                return Err(Error::FidWeights {
                    file: source.into(),
                    detail: format!("{}.{part} has shape {:?}, expected [{out}]", spec.name, t.dims()),
                });
            }
            Ok(t.to_dtype(DType::F64)?.to_vec1::<f64>()?)
        };
        let (beta, mean, var) = (vector("beta")?, vector("mean")?, vector("var")?);
        let w = weight.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        if let Some(bad) = w.iter().chain(&beta).chain(&mean).chain(&var).find(|v| !v.is_finite()) {
            return Err(Error::FidWeights {
                file: source.into(),
                detail: format!("{} holds a non-finite value ({bad})", spec.name),
            });
        }
        if let Some(v) = var.iter().find(|v| **v < 0.0) {
            return Err(Error::FidWeights {
                file: source.into(),
                detail: format!("{}.var holds a negative variance ({v})", spec.name),
            });
        }
        let scale: Vec<f64> = var.iter().map(|v| 1.0 / (v + BATCH_NORM_EPS).sqrt()).collect();
        let per_out = in_channels * kh * kw;
        let folded: Vec<f32> = w.iter().enumerate().map(|(i, v)| (v * scale[i / per_out]) as f32).collect();
        let bias: Vec<f32> = (0..out).map(|o| (beta[o] - mean[o] * scale[o]) as f32).collect();
        let device = weight.device();
        Ok(Self {
            weight: Tensor::from_vec(folded, (out, in_channels, kh, kw), device)?,
            bias: Tensor::from_vec(bias, out, device)?,
            stride: spec.stride,
            padding: spec.padding,
        })
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }

    /// `relu(w′ ⋆ x + b′)` on (B, C, H, W).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (ph, pw) = self.padding;
        let y = if ph == pw {
            conv2d(x, &self.weight, Some(&self.bias), self.stride, ph)?
        } else {
            let x = x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?;
            conv2d(&x, &self.weight, Some(&self.bias), self.stride, 0)?
        };
        Ok(y.relu()?)
    }
}

/// A pooling window of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// Max pool 3×3, stride 2, no padding.
    Max3Stride2,
    /// Max pool 3×3, stride 1, padding 1.
    Max3Same,
    /// Average pool 3×3, stride 1, padding 1, dividing by the real pixels in the window.
    Avg3Same,
    /// Average pool 8×8, stride 8.
    Avg8,
}

impl Pool {
    /// Pools (B, C, H, W).
    pub fn forward(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Pool::Max3Stride2 => x.max_pool2d_with_stride(3, 2)?,
            Pool::Max3Same => x.pad_with_same(2, 1, 1)?.pad_with_same(3, 1, 1)?.max_pool2d_with_stride(3, 1)?,
            Pool::Avg3Same => {
                let (_, _, h, w) = x.dims4()?;
                let sums = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?.avg_pool2d_with_stride(3, 1)?;
                sums.broadcast_mul(&window_correction(h, w, x.dtype(), x.device())?)?
            }
            Pool::Avg8 => x.avg_pool2d_with_stride(8, 8)?,
        })
    }
}

/// `9 / c(u, v)` for an H×W map, shaped (1, 1, H, W): turns the zero-padded 3×3 mean (a sum
/// over 9) into the mean over the `c(u, v)` pixels inside the image.
fn window_correction(h: usize, w: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let span = |i: usize, n: usize| (i + 1).min(n - 1) - i.saturating_sub(1) + 1;
    let values: Vec<f32> = (0..h * w).map(|k| 9.0 / (span(k / w, h) * span(k % w, w)) as f32).collect();
    Ok(Tensor::from_vec(values, (1, 1, h, w), device)?.to_dtype(dtype)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_correction_counts_pixels_inside_the_image() {
        let c =
            window_correction(3, 4, DType::F32, &Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // corners see 2×2 pixels, edges 2×3 or 3×2, the inside 3×3
        let counts: Vec<f32> = c.iter().map(|v| 9.0 / v).collect();
        assert_eq!(counts, [4.0, 6.0, 6.0, 4.0, 6.0, 9.0, 9.0, 6.0, 4.0, 6.0, 6.0, 4.0]);
    }
}
