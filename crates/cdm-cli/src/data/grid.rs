//! Sample grids: a batch of images as one PNG.

use std::path::Path;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};

/// Writes `x` (B, C, H, W) in `[−1, 1]` as a PNG grid of `columns` images, each pixel drawn as
/// a `scale × scale` block, with a 1-block grey gutter: `p = round(127.5·(x + 1))` clipped to
/// 0–255.
pub fn write_grid(path: &Path, x: &Tensor, columns: usize, scale: usize) -> Result<(u32, u32)> {
    let (b, c, h, w) = x.dims4().context("image grid: expected (B, C, H, W) samples")?;
    if c != 1 && c != 3 {
        bail!("image grid: {c} channels (expected 1 or 3)");
    }
    let values = x.to_dtype(DType::F32)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
    let columns = columns.clamp(1, b.max(1));
    let rows = b.div_ceil(columns);
    let (cell_w, cell_h) = ((w + 1) * scale, (h + 1) * scale);
    let (width, height) = ((columns * cell_w + scale) as u32, (rows * cell_h + scale) as u32);
    let mut img = image::RgbImage::from_pixel(width, height, image::Rgb([128, 128, 128]));
    let to_byte = |v: f32| (127.5 * (v + 1.0)).round().clamp(0.0, 255.0) as u8;
    for k in 0..b {
        let (x0, y0) = ((k % columns) * cell_w + scale, (k / columns) * cell_h + scale);
        for y in 0..h * scale {
            for xx in 0..w * scale {
                let (py, px) = (y / scale, xx / scale);
                let at = |ch: usize| to_byte(values[((k * c + ch) * h + py) * w + px]);
                let rgb = if c == 1 { [at(0); 3] } else { [at(0), at(1), at(2)] };
                img.put_pixel((x0 + xx) as u32, (y0 + y) as u32, image::Rgb(rgb));
            }
        }
    }
    img.save(path).with_context(|| format!("writing {}", path.display()))?;
    Ok((width, height))
}
