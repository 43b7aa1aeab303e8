//! Nearest-neighbour ×2 upsampling of (B, C, H, W) maps, with its backward.
//!
//! ```text
//! forward:   y[b, c, 2i + r, 2j + s] = x[b, c, i, j]            r, s ∈ {0, 1}
//! backward:  ∂L/∂x[b, c, i, j] = Σ_{r, s} ∂L/∂y[b, c, 2i + r, 2j + s]
//! ```
//!
//! Planes (one channel of one sample) run in parallel on rayon's threads once the map is large
//! enough; each output element depends on one plane only, so results do not depend on the
//! thread count. candle's own `upsample_nearest2d` computes its gradient as a grouped
//! convolution with a ones kernel, one small convolution per channel.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor, bail};

use crate::numerics::Real;
use crate::parallel::for_each_chunk;
use crate::storage::{SliceOp, run_slice_op};

const NAME: &str = "upsample_nearest_2x";
const GRAD_NAME: &str = "upsample_nearest_2x_grad";

/// The forward op on maps of `height × width` planes.
struct UpsampleOp {
    height: usize,
    width: usize,
}

/// The backward op: `∂L/∂y` of `2·height × 2·width` planes to `∂L/∂x`.
struct UpsampleGradOp {
    height: usize,
    width: usize,
}

impl SliceOp<1> for UpsampleOp {
    const NAME: &'static str = NAME;

    fn compute<T: Real>(&self, [x]: [&[T]; 1]) -> Vec<T> {
        let (h, w) = (self.height, self.width);
        let mut y = vec![T::zero(); 4 * x.len()];
        for_each_chunk(&mut y, 4 * h * w, |plane, y| {
            for (i, row) in x[plane * h * w..][..h * w].chunks_exact(w).enumerate() {
                let (top, bottom) = y[2 * i * 2 * w..][..4 * w].split_at_mut(2 * w);
                for ((pair, &v), pair_below) in top.chunks_exact_mut(2).zip(row).zip(bottom.chunks_exact_mut(2)) {
                    pair.fill(v);
                    pair_below.fill(v);
                }
            }
        });
        y
    }
}

impl SliceOp<1> for UpsampleGradOp {
    const NAME: &'static str = GRAD_NAME;

    fn compute<T: Real>(&self, [dy]: [&[T]; 1]) -> Vec<T> {
        let (h, w) = (self.height, self.width);
        let mut dx = vec![T::zero(); dy.len() / 4];
        for_each_chunk(&mut dx, h * w, |plane, dx| {
            let dy = &dy[plane * 4 * h * w..][..4 * h * w];
            for (i, row) in dx.chunks_exact_mut(w).enumerate() {
                let (top, bottom) = dy[2 * i * 2 * w..][..4 * w].split_at(2 * w);
                for ((d, a), b) in row.iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
                    *d = (a[0] + a[1]) + (b[0] + b[1]);
                }
            }
        });
        dx
    }
}

impl CustomOp1 for UpsampleOp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = layout.shape().dims4()?;
        Ok((run_slice_op(self, [(storage, layout)])?, Shape::from((b, c, 2 * h, 2 * w))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let op = UpsampleGradOp { height: self.height, width: self.width };
        Ok(Some(dy.contiguous()?.apply_op1_no_bwd(&op)?.reshape(x.shape())?))
    }
}

impl CustomOp1 for UpsampleGradOp {
    fn name(&self) -> &'static str {
        GRAD_NAME
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = layout.shape().dims4()?;
        Ok((run_slice_op(self, [(storage, layout)])?, Shape::from((b, c, h / 2, w / 2))))
    }
}

/// Nearest-neighbour ×2 upsampling, `y[b, c, 2i + r, 2j + s] = x[b, c, i, j]`, with its
/// gradient (see the module doc).
///
/// # Shapes
/// `x`: (B, C, H, W) → (B, C, 2H, 2W).
///
/// # Errors
/// An `x` that is not 4-D; on the CPU, a dtype other than F32/F64. Other devices run
/// [`upsample_nearest_2x_composed`].
pub fn upsample_nearest_2x(x: &Tensor) -> candle_core::Result<Tensor> {
    let Ok((_, _, height, width)) = x.dims4() else {
        bail!("{NAME}: x must be (B, C, H, W), got shape {:?}", x.dims())
    };
    if !x.device().is_cpu() {
        return upsample_nearest_2x_composed(x);
    }
    x.contiguous()?.apply_op1(UpsampleOp { height, width })
}

/// [`upsample_nearest_2x`] out of candle's own op (`upsample_nearest2d`): the reference for the
/// tests and the fallback on devices other than the CPU.
///
/// # Shapes
/// As [`upsample_nearest_2x`].
pub fn upsample_nearest_2x_composed(x: &Tensor) -> candle_core::Result<Tensor> {
    let (_, _, height, width) = x.dims4()?;
    // candle overwrites, rather than adds to, the gradient of an upsample's input; a copy that
    // only the upsample reads makes that the whole gradient.
    x.affine(1.0, 0.0)?.upsample_nearest2d(2 * height, 2 * width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_independent_of_thread_count, compare, finite_difference_errors, randn};
    use candle_core::{DType, Device};

    #[test]
    fn matches_composed_f32() {
        // Small, odd sides, and 16×32×14×14 (100 352 elements, planes in parallel).
        for (case, shape) in [[1, 1, 1, 1], [2, 3, 3, 5], [16, 32, 14, 14]].into_iter().enumerate() {
            let x = randn(&shape, DType::F32, case as u64);
            let (fwd, grads) =
                compare(&[x], |v| upsample_nearest_2x(&v[0]), |v| upsample_nearest_2x_composed(&v[0]), 7);
            assert!(fwd == 0.0 && grads[0] < 1e-6, "{shape:?}: {fwd:e} {grads:?}");
        }
    }

    #[test]
    fn copies_each_pixel_into_its_two_by_two_block() {
        let x = Tensor::new(&[[[[1f32, 2.0], [3.0, 4.0]]]], &Device::Cpu).unwrap();
        let y = upsample_nearest_2x(&x).unwrap().squeeze(0).unwrap().squeeze(0).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(y, [[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0], [3.0, 3.0, 4.0, 4.0], [3.0, 3.0, 4.0, 4.0]]);
    }

    #[test]
    fn finite_differences_f64() {
        let x = randn(&[2, 2, 3, 2], DType::F64, 30);
        let errs = finite_difference_errors(&[x], |v| upsample_nearest_2x(&v[0]), 31);
        assert!(errs[0] < 1e-8, "{errs:?}");
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let x = randn(&[4, 16, 20, 20], DType::F32, 40);
        assert_independent_of_thread_count(&[x], |v| upsample_nearest_2x(&v[0]), 41);
    }

    #[test]
    fn rejects_bad_input() {
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(upsample_nearest_2x(&x).unwrap_err().to_string().contains("must be (B, C, H, W)"));
        let x = Tensor::zeros((1, 1, 2, 2), DType::BF16, &Device::Cpu).unwrap();
        assert!(upsample_nearest_2x(&x).unwrap_err().to_string().contains("unsupported dtype BF16"));
    }
}
