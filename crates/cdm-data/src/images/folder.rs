//! A folder of PNG/JPEG images, optionally one subfolder per class.
//!
//! # Layout
//!
//! - **Flat**: `dir/*.png`, `*.jpg`, `*.jpeg` (extension case-insensitive); no labels.
//! - **Classes**: when `dir` has subfolders, each is a class, labelled by its index among the
//!   subfolders sorted by name, and its images are collected recursively. Files directly in `dir`
//!   are then ignored (a README or a label list may sit there).
//!
//! Links are followed; a link that leads back into a directory being walked (a loop) is an
//! [`Error::Io`] naming it. Names starting with `.` are skipped. Images are ordered by path (byte order of the names), so
//! the data set is the same on every machine. Files are decoded by content (the `image` crate with
//! its `png` and `jpeg` decoders), so a misnamed file still loads.
//!
//! # Resizing
//!
//! Each image is scaled, keeping its aspect ratio, until it just covers `height × width`
//! (scale `max(height/h, width/w)`, sides rounded), with a triangle (bilinear, antialiased when
//! shrinking) filter, then the centre `height × width` is cropped. An image already of the target
//! size is used unchanged. Decoding may allocate at most [`MAX_DECODE_BYTES`] per file.
//! [`ColorMode::Rgb`] drops any alpha channel without compositing and
//! replicates gray images to three channels; [`ColorMode::Grayscale`] converts colour with the
//! `image` crate's Rec. 709 luma weights.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView, ImageReader, Limits};
use walkdir::WalkDir;

use super::ImageDataset;
use crate::{Error, Result};

/// The most bytes the decoder may allocate for one file (a 8192×8192 RGBA image): a header
/// that declares a larger image is [`Error::Image`] before its pixels are allocated.
pub const MAX_DECODE_BYTES: u64 = 256 << 20;

/// The channels an image folder is loaded with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColorMode {
    /// Three channels, red, green, blue.
    Rgb,
    /// One luma channel.
    Grayscale,
}

/// Loads every PNG/JPEG image under `dir` (see the module docs for layout and order), resized
/// and centre-cropped to `size = (height, width)`, with white level 255.
///
/// Fails with [`Error::InvalidArgument`] when a side of `size` is 0, [`Error::Io`] when a
/// directory or file cannot be read, [`Error::Image`] when a file does not decode, and
/// [`Error::NoFiles`] when there are no images.
pub fn load_image_folder(dir: &Path, size: (u32, u32), color: ColorMode) -> Result<ImageDataset> {
    let (height, width) = size;
    if height == 0 || width == 0 {
        return Err(Error::invalid("size", format!("{height}×{width}"), "both sides must be positive"));
    }
    let (classes, top_files) = list(dir)?;
    let mut files: Vec<(PathBuf, u32)> = Vec::new();
    if classes.is_empty() {
        files.extend(top_files.into_iter().filter(|p| is_image(p)).map(|p| (p, 0)));
    } else {
        for (label, class) in (0u32..).zip(&classes) {
            let mut found = Vec::new();
            collect_images(class, &mut found)?;
            files.extend(found.into_iter().map(|p| (p, label)));
        }
    }
    if files.is_empty() {
        return Err(Error::NoFiles { dir: dir.to_path_buf(), expected: "*.png/*.jpg/*.jpeg images".to_string() });
    }
    let channels = match color {
        ColorMode::Rgb => 3,
        ColorMode::Grayscale => 1,
    };
    let plane = (height * width) as usize;
    let mut pixels = Vec::with_capacity(files.len() * channels * plane);
    for (path, _) in &files {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.clone(), source })?;
        let img = decode(&bytes, path)?;
        if img.width() == 0 || img.height() == 0 {
            return Err(Error::UnsupportedFormat { path: path.clone(), reason: "an image with no pixels".to_string() });
        }
        let img = cover_and_crop(img, height, width);
        match color {
            ColorMode::Grayscale => pixels.extend_from_slice(img.to_luma8().as_raw()),
            ColorMode::Rgb => {
                let rgb = img.to_rgb8();
                for c in 0..3 {
                    pixels.extend(rgb.as_raw().iter().skip(c).step_by(3));
                }
            }
        }
    }
    let labels = (!classes.is_empty()).then(|| files.iter().map(|&(_, label)| label).collect());
    ImageDataset::new(pixels, [channels, height as usize, width as usize], u8::MAX, labels)
}

/// Decodes one file by its content, within [`MAX_DECODE_BYTES`].
fn decode(bytes: &[u8], path: &Path) -> Result<DynamicImage> {
    let image = |source| Error::Image { path: path.to_path_buf(), source };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode().map_err(image)
}

/// The visible subdirectories and files of `dir`, each sorted by name.
fn list(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries.into_iter().partition(|p| p.is_dir()))
}

/// Appends the images under `dir`, recursively, in path order. Links are followed, but a link
/// back to a directory being walked (a loop) is [`Error::Io`] naming it rather than an endless
/// walk.
fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let visible = |e: &walkdir::DirEntry| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.');
    let mut images = Vec::new();
    for entry in WalkDir::new(dir).follow_links(true).into_iter().filter_entry(visible) {
        let entry = entry.map_err(|e| Error::Io { path: e.path().unwrap_or(dir).to_path_buf(), source: e.into() })?;
        if !entry.file_type().is_dir() && is_image(entry.path()) {
            images.push(entry.into_path());
        }
    }
    images.sort();
    out.extend(images);
    Ok(())
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Scales `img` to just cover `height × width`, then crops the centre.
fn cover_and_crop(img: DynamicImage, height: u32, width: u32) -> DynamicImage {
    let (w, h) = img.dimensions();
    if (w, h) == (width, height) {
        return img;
    }
    let scale = f64::max(f64::from(width) / f64::from(w), f64::from(height) / f64::from(h));
    let scaled_w = ((f64::from(w) * scale).round() as u32).max(width);
    let scaled_h = ((f64::from(h) * scale).round() as u32).max(height);
    let img =
        if (scaled_w, scaled_h) == (w, h) { img } else { img.resize_exact(scaled_w, scaled_h, FilterType::Triangle) };
    img.crop_imm((scaled_w - width) / 2, (scaled_h - height) / 2, width, height)
}
