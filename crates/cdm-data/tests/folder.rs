//! Image-folder loader: PNG/JPEG decoding, RGB/grayscale, resize + centre crop, class subfolders.

mod common;

use cdm_data::{ColorMode, Error, load_image_folder};
use common::TempDir;
use image::{GrayImage, Luma, Rgb, RgbImage};

/// A 4×2 (w×h) RGB image whose pixel (x, y) is (10x + y, 100 + x, 200 − y).
fn rgb_4x2() -> RgbImage {
    RgbImage::from_fn(4, 2, |x, y| Rgb([(10 * x + y) as u8, (100 + x) as u8, (200 - y) as u8]))
}

#[test]
fn flat_folder_rgb_and_gray_exact_values_sorted_by_name() {
    let tmp = TempDir::new("folder-flat");
    let gray = GrayImage::from_fn(2, 2, |x, y| Luma([(50 * (2 * y + x)) as u8]));
    gray.save(tmp.path("b_gray.png")).unwrap();
    // Same size as the target: loaded unchanged.
    RgbImage::from_fn(2, 2, |x, y| Rgb([x as u8, y as u8, 7])).save(tmp.path("a_rgb.PNG")).unwrap();
    tmp.write("notes.txt", b"not an image");
    tmp.write(".hidden.png", b"skipped");
    let ds = load_image_folder(tmp.dir(), (2, 2), ColorMode::Rgb).unwrap();
    assert_eq!((ds.len(), ds.shape(), ds.labels()), (2, [3, 2, 2], None));
    assert_eq!(ds.pixels(0), &[0, 1, 0, 1, 0, 0, 1, 1, 7, 7, 7, 7], "RGB as CHW planes");
    assert_eq!(ds.pixels(1), &[0, 50, 100, 150, 0, 50, 100, 150, 0, 50, 100, 150], "gray replicated");
    let ds = load_image_folder(tmp.dir(), (2, 2), ColorMode::Grayscale).unwrap();
    assert_eq!(ds.shape(), [1, 2, 2]);
    assert_eq!(ds.pixels(1), &[0, 50, 100, 150]);
}

#[test]
fn wide_image_is_centre_cropped_and_large_image_resized() {
    let tmp = TempDir::new("folder-crop");
    rgb_4x2().save(tmp.path("wide.png")).unwrap();
    // Shorter side already 2: no resampling, columns 1 and 2 are kept.
    let ds = load_image_folder(tmp.dir(), (2, 2), ColorMode::Rgb).unwrap();
    assert_eq!(ds.pixels(0), &[10, 20, 11, 21, 101, 102, 101, 102, 200, 200, 199, 199]);
    // 8×6 to 3×3: scale 0.5 → 4×3, resampled, then cropped; a constant image stays constant.
    let tmp2 = TempDir::new("folder-resize");
    RgbImage::from_pixel(8, 6, Rgb([30, 60, 90])).save(tmp2.path("const.png")).unwrap();
    let ds = load_image_folder(tmp2.dir(), (3, 3), ColorMode::Rgb).unwrap();
    assert_eq!(ds.shape(), [3, 3, 3]);
    assert_eq!(ds.pixels(0), &[[30u8; 9], [60; 9], [90; 9]].concat());
    // A horizontal gradient 8 wide, 4 high, to 2×2: scale 0.5, left column darker than right.
    let tmp3 = TempDir::new("folder-gradient");
    GrayImage::from_fn(8, 4, |x, _| Luma([(x * 30) as u8])).save(tmp3.path("g.png")).unwrap();
    let ds = load_image_folder(tmp3.dir(), (2, 2), ColorMode::Grayscale).unwrap();
    let p = ds.pixels(0);
    assert!(p[0] < p[1] && p[0] == p[2] && p[1] == p[3], "{p:?}");
}

#[test]
fn jpeg_decodes() {
    let tmp = TempDir::new("folder-jpeg");
    RgbImage::from_pixel(8, 8, Rgb([128, 128, 128])).save(tmp.path("x.jpg")).unwrap();
    let ds = load_image_folder(tmp.dir(), (8, 8), ColorMode::Grayscale).unwrap();
    assert!(ds.pixels(0).iter().all(|&p| p.abs_diff(128) <= 2), "{:?}", ds.pixels(0));
}

#[test]
fn class_subfolders_give_sorted_labels() {
    let tmp = TempDir::new("folder-classes");
    std::fs::create_dir_all(tmp.path("cat/nested")).unwrap();
    std::fs::create_dir_all(tmp.path("dog")).unwrap();
    let px = |v: u8| GrayImage::from_pixel(2, 2, Luma([v]));
    px(1).save(tmp.path("dog/d.png")).unwrap();
    px(2).save(tmp.path("cat/nested/z.png")).unwrap();
    px(3).save(tmp.path("cat/a.png")).unwrap();
    px(9).save(tmp.path("top-level-ignored.png")).unwrap();
    let ds = load_image_folder(tmp.dir(), (2, 2), ColorMode::Grayscale).unwrap();
    assert_eq!(ds.labels(), Some(&[0, 0, 1][..]));
    assert_eq!([ds.pixels(0)[0], ds.pixels(1)[0], ds.pixels(2)[0]], [3, 2, 1]);
}

#[test]
fn errors_name_the_file_or_directory() {
    let tmp = TempDir::new("folder-errors");
    let err = load_image_folder(tmp.dir(), (2, 2), ColorMode::Rgb).unwrap_err();
    assert!(matches!(&err, Error::NoFiles { dir, .. } if dir == tmp.dir()), "{err}");
    let bad = tmp.write("broken.png", b"\x89PNG\r\n\x1a\nthis is not a png");
    let err = load_image_folder(tmp.dir(), (2, 2), ColorMode::Rgb).unwrap_err();
    assert!(matches!(&err, Error::Image { path, .. } if *path == bad), "{err}");
    assert!(matches!(load_image_folder(tmp.dir(), (0, 2), ColorMode::Rgb), Err(Error::InvalidArgument { .. })));
    let missing = tmp.path("missing");
    assert!(
        matches!(load_image_folder(&missing, (2, 2), ColorMode::Rgb), Err(Error::Io { path, .. }) if path == missing)
    );
}

#[cfg(unix)]
#[test]
fn a_link_back_up_the_tree_is_an_error_and_a_link_across_loads_its_images() {
    let tmp = TempDir::new("folder-links");
    std::fs::create_dir_all(tmp.path("cat")).unwrap();
    std::fs::create_dir_all(tmp.path("dog")).unwrap();
    GrayImage::from_pixel(2, 2, Luma([7])).save(tmp.path("cat/a.png")).unwrap();
    GrayImage::from_pixel(2, 2, Luma([8])).save(tmp.path("dog/b.png")).unwrap();
    // a link to a sibling is followed: its image counts for this class too
    std::os::unix::fs::symlink(tmp.path("cat"), tmp.path("dog/cats")).unwrap();
    let ds = load_image_folder(tmp.dir(), (2, 2), ColorMode::Grayscale).unwrap();
    assert_eq!(ds.labels(), Some(&[0, 1, 1][..]));
    assert_eq!([ds.pixels(0)[0], ds.pixels(1)[0], ds.pixels(2)[0]], [7, 8, 7]);
    // a link to an ancestor would be walked forever: it is an I/O error naming the link
    std::os::unix::fs::symlink(tmp.path("cat"), tmp.path("cat/again")).unwrap();
    let err = load_image_folder(tmp.dir(), (2, 2), ColorMode::Grayscale).unwrap_err();
    assert!(matches!(&err, Error::Io { path, .. } if path.ends_with("again")), "{err}");
    assert!(err.to_string().contains("loop"), "{err}");
}

#[test]
fn a_header_declaring_a_huge_image_fails_before_its_pixels_are_allocated() {
    let tmp = TempDir::new("folder-huge");
    let mut png = std::io::Cursor::new(Vec::new());
    GrayImage::from_pixel(1, 1, Luma([0])).write_to(&mut png, image::ImageFormat::Png).unwrap();
    let mut png = png.into_inner();
    // IHDR data starts at byte 16: width, height (big-endian); its CRC covers bytes 12..29
    png[16..20].copy_from_slice(&20_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&20_000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&png[12..29]);
    png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    let path = tmp.write("huge.png", &png);
    let info = allocation_counter::measure(|| {
        let err = load_image_folder(tmp.dir(), (2, 2), ColorMode::Grayscale).unwrap_err();
        assert!(matches!(&err, Error::Image { path: p, .. } if *p == path), "{err}");
    });
    // 20 000² bytes (400 MB) is under the image crate's default 512 MiB but over our 256 MiB
    assert!(info.bytes_max < 1 << 20, "{} bytes", info.bytes_max);
}
