//! Image folders: mutated PNG and JPEG files decode and resize to the requested shape, or give
//! [`Error::Image`] naming the file; the decoder's own limits bound what a header can request.

use cdm_data::{ColorMode, Error, load_image_folder};
use image::{DynamicImage, ImageFormat, RgbImage};
use proptest::prelude::*;

use crate::common::TempDir;
use crate::support::{config, mutate, mutations, peak_bytes};

/// A `w×h` image encoded as PNG or JPEG.
fn encoded(w: u32, h: u32, seed: u8, png: bool) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([seed, (x * 17) as u8, (y * 29) as u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    let format = if png { ImageFormat::Png } else { ImageFormat::Jpeg };
    DynamicImage::ImageRgb8(img).write_to(&mut out, format).unwrap();
    out.into_inner()
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn mutated_images_load_at_the_requested_shape_or_fail_typed(
        w in 1u32..12,
        h in 1u32..12,
        seed in any::<u8>(),
        png in any::<bool>(),
        gray in any::<bool>(),
        m in mutations(),
    ) {
        let tmp = TempDir::new("fuzz-folder");
        let name = if png { "a.png" } else { "a.jpg" };
        tmp.write(name, &mutate(encoded(w, h, seed, png), &m));
        let color = if gray { ColorMode::Grayscale } else { ColorMode::Rgb };
        let (result, peak) = peak_bytes(|| load_image_folder(tmp.dir(), (4, 5), color));
        prop_assert!(peak <= cdm_data::images::folder::MAX_DECODE_BYTES + (1 << 20), "{peak} bytes held while loading");
        match result {
            Ok(ds) => {
                prop_assert_eq!(ds.len(), 1);
                prop_assert_eq!(ds.shape(), [if gray { 1 } else { 3 }, 4, 5]);
            }
            Err(e) => {
                let typed = matches!(e, Error::Image { .. } | Error::UnsupportedFormat { .. });
                prop_assert!(typed, "unexpected error kind: {e}");
                prop_assert!(e.to_string().contains(name), "{e}");
            }
        }
    }
}
