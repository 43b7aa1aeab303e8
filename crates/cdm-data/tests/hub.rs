//! The `hub` feature: `hub:` data sets read offline from a hub cache that the test writes
//! (`datasets--OWNER--NAME/{refs/refs/convert/parquet, snapshots/<commit>/…}`), with small
//! snappy-compressed parquet files of PNG images made here.
#![cfg(feature = "hub")]

use std::fs::File;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdm_data::{Error, Hub, HubDataset, Split, load_hub};
use image::{DynamicImage, GrayImage, ImageFormat, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// The commit every fixture snapshot is filed under.
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
/// Images are 4 wide and 3 high: a transposed loader gives `[C, 4, 3]`.
const W: u32 = 4;
const H: u32 = 3;
/// Nothing this slow is "at once".
const PROMPT: Duration = Duration::from_secs(5);

fn png(image: DynamicImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png).unwrap();
    bytes
}

/// Gray image `k`: pixel (x, y) = 40k + 4y + x.
fn gray(k: u32) -> GrayImage {
    GrayImage::from_fn(W, H, |x, y| Luma([(40 * k + 4 * y + x) as u8]))
}

/// Colour image `k`: pixel (x, y) = (10y + x, 100 + 10y + x + k, 250 − x − 10y).
fn rgb(k: u32) -> RgbImage {
    RgbImage::from_fn(W, H, |x, y| Rgb([(10 * y + x) as u8, (100 + 10 * y + x + k) as u8, (250 - x - 10 * y) as u8]))
}

/// The planes of an RGB image, `C×H×W`.
fn planes(image: &RgbImage) -> Vec<u8> {
    (0..3).flat_map(|c| image.pixels().map(move |p| p.0[c])).collect()
}

/// A table of images (a column `image_column`: the `datasets` `{bytes, path}` struct, or plain
/// bytes) with an optional leading `caption` string column and an optional `label` int64 column.
struct Table<'a> {
    image_column: &'a str,
    image_struct: bool,
    caption: bool,
    /// `(image bytes or null, label or null)`; labels are written when any row has one.
    rows: Vec<(Option<Vec<u8>>, Option<i64>)>,
}

impl Table<'_> {
    fn write(&self, path: &Path) {
        let labelled = self.rows.iter().any(|(_, label)| label.is_some());
        let image = if self.image_struct {
            format!("optional group {} {{ optional binary bytes; optional binary path (UTF8); }}", self.image_column)
        } else {
            format!("optional binary {};", self.image_column)
        };
        let schema = format!(
            "message schema {{ {} {image} {} }}",
            if self.caption { "optional binary caption (UTF8);" } else { "" },
            if labelled { "optional int64 label;" } else { "" }
        );
        let schema = Arc::new(parse_message_type(&schema).unwrap());
        let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut writer = SerializedFileWriter::new(File::create(path).unwrap(), schema, props).unwrap();
        let mut group = writer.next_row_group().unwrap();
        let mut bytes_leaf = |values: Vec<ByteArray>, defs: Vec<i16>| {
            let mut column = group.next_column().unwrap().unwrap();
            column.typed::<ByteArrayType>().write_batch(&values, Some(&defs), None).unwrap();
            column.close().unwrap();
        };
        if self.caption {
            let captions = (0..self.rows.len()).map(|i| ByteArray::from(format!("row {i}").as_str())).collect();
            bytes_leaf(captions, vec![1; self.rows.len()]);
        }
        let top = i16::from(self.image_struct) + 1;
        let present: Vec<ByteArray> = self.rows.iter().filter_map(|(b, _)| b.clone().map(ByteArray::from)).collect();
        bytes_leaf(present, self.rows.iter().map(|(b, _)| if b.is_some() { top } else { 0 }).collect());
        if self.image_struct {
            // `path` is null in every present struct, as in the hub's conversions
            bytes_leaf(Vec::new(), self.rows.iter().map(|(b, _)| i16::from(b.is_some())).collect());
        }
        if labelled {
            let mut column = group.next_column().unwrap().unwrap();
            let values: Vec<i64> = self.rows.iter().filter_map(|(_, l)| *l).collect();
            let defs: Vec<i16> = self.rows.iter().map(|(_, l)| i16::from(l.is_some())).collect();
            column.typed::<Int64Type>().write_batch(&values, Some(&defs), None).unwrap();
            column.close().unwrap();
        }
        assert!(group.next_column().unwrap().is_none(), "every leaf written");
        group.close().unwrap();
        writer.close().unwrap();
    }
}

/// `table` as `file` of dataset repository `repo` in the hub cache `cache`, at [`COMMIT`].
fn put(cache: &Path, repo: &str, file: &str, table: &Table<'_>) -> PathBuf {
    let folder = cache.join(format!("datasets--{}", repo.replace('/', "--")));
    let refs = folder.join("refs/refs/convert");
    std::fs::create_dir_all(&refs).unwrap();
    std::fs::write(refs.join("parquet"), COMMIT).unwrap();
    let path = folder.join("snapshots").join(COMMIT).join(file);
    table.write(&path);
    path
}

/// `mnist`: three gray images labelled 7, 0, 3 (train) and one labelled 5 (test).
fn put_mnist(cache: &Path) {
    let rows = [(0, 7), (1, 0), (2, 3)].map(|(k, label)| (Some(png(gray(k).into())), Some(label))).to_vec();
    put(
        cache,
        "ylecun/mnist",
        "mnist/train/0000.parquet",
        &Table { image_column: "image", image_struct: true, caption: false, rows },
    );
    let rows = vec![(Some(png(gray(5).into())), Some(5))];
    put(
        cache,
        "ylecun/mnist",
        "mnist/test/0000.parquet",
        &Table { image_column: "image", image_struct: true, caption: false, rows },
    );
}

fn mnist_pixels(k: u32) -> Vec<u8> {
    gray(k).into_raw()
}

#[test]
fn mnist_from_the_cache_has_exact_pixels_shape_and_labels() {
    let tmp = tempfile::tempdir().unwrap();
    put_mnist(tmp.path());
    let hub = Hub::new(tmp.path()).with_offline(true);
    let train = hub.load(&HubDataset::Mnist, Split::Train).unwrap();
    assert_eq!((train.len(), train.shape(), train.max_value()), (3, [1, 3, 4], 255));
    for k in 0..3 {
        assert_eq!(train.pixels(k), mnist_pixels(k as u32).as_slice(), "image {k}");
    }
    assert_eq!(train.labels(), Some(&[7, 0, 3][..]));
    let test = hub.load(&HubDataset::Mnist, Split::Test).unwrap();
    assert_eq!((test.len(), test.pixels(0), test.labels()), (1, mnist_pixels(5).as_slice(), Some(&[5][..])));
}

#[test]
fn a_generic_repository_reads_rgb_as_chw_planes_over_several_files() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = "someone/tiles";
    let table = |image_struct, rows| Table { image_column: "img", image_struct, caption: true, rows };
    // gray first: the set turns to three channels at the colour image and replicates it
    let first = vec![(Some(png(gray(1).into())), None), (Some(png(rgb(0).into())), None)];
    put(tmp.path(), repo, "default/train/0000.parquet", &table(true, first));
    let rgba = RgbaImage::from_fn(W, H, |x, y| {
        let p = rgb(9).get_pixel(x, y).0;
        Rgba([p[0], p[1], p[2], (60 * x) as u8])
    });
    put(tmp.path(), repo, "default/train/0001.parquet", &table(true, vec![(Some(png(rgba.into())), None)]));
    let other = vec![(Some(png(gray(2).into())), Some(1)), (Some(png(gray(3).into())), Some(4))];
    put(tmp.path(), repo, "other/train/0000.parquet", &table(false, other));

    let hub = Hub::new(tmp.path()).with_offline(true);
    let tiles: HubDataset = "someone/tiles".parse().unwrap();
    let ds = hub.load(&tiles, Split::Train).unwrap();
    assert_eq!((ds.len(), ds.shape(), ds.labels()), (3, [3, 3, 4], None), "`default` chosen, C×H×W");
    let gray1 = gray(1).into_raw();
    assert_eq!(ds.pixels(0), [gray1.clone(), gray1.clone(), gray1].concat().as_slice(), "gray replicated");
    assert_eq!(ds.pixels(1), planes(&rgb(0)).as_slice(), "R plane, G plane, B plane, each row by row");
    assert_eq!(ds.pixels(2), planes(&rgb(9)).as_slice(), "alpha dropped");
    assert_eq!(ds.pixels(1)[..4], [0, 1, 2, 3], "first row of R runs along x");
    assert_eq!(ds.pixels(1)[4], 10, "second row starts at y = 1");

    // a named configuration; plain binary `img` column; labels
    let other = hub.load(&"someone/tiles/other".parse().unwrap(), Split::Train).unwrap();
    assert_eq!((other.shape(), other.labels()), ([1, 3, 4], Some(&[1, 4][..])));
    assert_eq!(other.pixels(1), gray(3).into_raw().as_slice());
    assert_eq!(tiles.to_string(), "someone/tiles");
}

#[test]
fn missing_files_fail_at_once_naming_repository_revision_file_and_cache() {
    let tmp = tempfile::tempdir().unwrap();
    put_mnist(tmp.path());
    let hub = Hub::new(tmp.path()).with_offline(true);
    let start = Instant::now();
    let err = hub.load(&HubDataset::FashionMnist, Split::Train).unwrap_err();
    assert!(start.elapsed() < PROMPT, "{:?}", start.elapsed());
    let message = err.to_string();
    assert!(matches!(err, Error::HubNotCached { .. }), "{message}");
    for part in ["zalando-datasets/fashion_mnist", "refs/convert/parquet", "fashion_mnist/train/0000.parquet"] {
        assert!(message.contains(part), "{message}");
    }
    assert!(message.contains(&tmp.path().display().to_string()), "{message}");

    let err = hub.load(&"someone/nothing".parse().unwrap(), Split::Train).unwrap_err();
    assert!(matches!(err, Error::HubNoFiles { offline: true, .. }), "{err}");
    assert!(err.to_string().contains("someone/nothing") && err.to_string().contains("CONFIG/train/*.parquet"), "{err}");
}

#[test]
fn bad_rows_and_files_are_typed_errors_naming_file_and_row() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::new(tmp.path()).with_offline(true);
    let table = |rows| Table { image_column: "image", image_struct: true, caption: false, rows };
    let load = |repo: &str| hub.load(&repo.parse().unwrap(), Split::Train).unwrap_err();

    let file = put(
        tmp.path(),
        "a/corrupt",
        "default/train/0000.parquet",
        &table(vec![
            (Some(png(gray(0).into())), Some(1)),
            (Some(b"\x89PNG\r\n\x1a\n but not really".to_vec()), Some(2)),
        ]),
    );
    let err = load("a/corrupt");
    assert!(
        matches!(&err, Error::ParquetImage { row: 1, column, path, .. } if column == "image" && *path == file),
        "{err}"
    );

    let wide = GrayImage::from_pixel(H, W, Luma([9])); // 3 wide, 4 high
    let file = put(
        tmp.path(),
        "a/sizes",
        "default/train/0000.parquet",
        &table(vec![(Some(png(gray(0).into())), None), (Some(png(wide.into())), None)]),
    );
    let err = load("a/sizes");
    assert!(matches!(&err, Error::ImageSize { row: 1, expected: (3, 4), got: (4, 3), path } if *path == file), "{err}");

    put(
        tmp.path(),
        "a/null",
        "default/train/0000.parquet",
        &table(vec![(Some(png(gray(0).into())), None), (None, None)]),
    );
    assert!(matches!(load("a/null"), Error::ParquetRow { row: 1, .. }));

    let text = Table { image_column: "caption_only", image_struct: false, caption: true, rows: vec![] };
    put(tmp.path(), "a/text", "default/train/0000.parquet", &text);
    let err = load("a/text");
    assert!(matches!(&err, Error::ParquetContent { .. }) && err.to_string().contains("caption"), "{err}");

    let folder = tmp.path().join("datasets--a--garbage");
    put(tmp.path(), "a/garbage", "default/train/0000.parquet", &table(vec![]));
    std::fs::write(folder.join("snapshots").join(COMMIT).join("default/train/0000.parquet"), b"not parquet").unwrap();
    assert!(matches!(load("a/garbage"), Error::Parquet { .. }));
}

#[test]
fn names_parse_and_print_back() {
    for name in ["mnist", "fashion-mnist", "cifar10", "o/n", "some-one/data_set.v2/config"] {
        assert_eq!(name.parse::<HubDataset>().unwrap().to_string(), name);
    }
    for bad in ["", "mnsit", "a/", "/b", "a/b/c/d", "a/../b", "a b/c", "a/b:c"] {
        assert!(matches!(bad.parse::<HubDataset>(), Err(Error::UnknownHubDataset { .. })), "{bad}");
    }
    assert_eq!(HubDataset::Cifar10.repo(), "uoft-cs/cifar10");
}

/// Set in the child process that [`hf_home_hf_hub_offline_and_hf_endpoint_are_honoured`] starts.
const CHILD: &str = "CDM_HUB_TEST_CHILD";

/// The environment variables, set on a child process (this test binary again) so that no test
/// thread sees them change: `HF_HOME` locates the cache; with `HF_HUB_OFFLINE=1` a missing file
/// fails at once; without it, cached files still load with no network, and a missing one is
/// one failed download (from an `HF_ENDPOINT` that refuses connections).
#[test]
fn hf_home_hf_hub_offline_and_hf_endpoint_are_honoured() {
    if let Ok(mode) = std::env::var(CHILD) {
        return child(&mode);
    }
    let home = tempfile::tempdir().unwrap();
    put_mnist(&home.path().join("hub"));
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for (mode, offline, endpoint) in
        [("offline", Some("1"), None), ("online", None, Some(format!("http://127.0.0.1:{closed_port}")))]
    {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.args(["--exact", "hf_home_hf_hub_offline_and_hf_endpoint_are_honoured", "--nocapture"]);
        command.env(CHILD, mode).env("HF_HOME", home.path());
        match offline {
            Some(v) => command.env("HF_HUB_OFFLINE", v),
            None => command.env_remove("HF_HUB_OFFLINE"),
        };
        match &endpoint {
            Some(url) => command.env("HF_ENDPOINT", url),
            None => command.env_remove("HF_ENDPOINT"),
        };
        let out = command.output().unwrap();
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{mode}: {log}");
        assert!(log.contains("1 passed"), "{mode}: the child ran the test: {log}");
    }
}

fn child(mode: &str) {
    let cache = PathBuf::from(std::env::var("HF_HOME").unwrap()).join("hub");
    let hub = Hub::from_env().unwrap();
    assert_eq!((hub.cache_dir(), hub.is_offline()), (cache.as_path(), mode == "offline"));
    let train = load_hub(&HubDataset::Mnist, Split::Train).unwrap();
    assert_eq!((train.shape(), train.labels()), ([1, 3, 4], Some(&[7, 0, 3][..])));
    assert_eq!(train.pixels(2), mnist_pixels(2).as_slice());
    let start = Instant::now();
    let err = load_hub(&HubDataset::Cifar10, Split::Train).unwrap_err();
    assert!(start.elapsed() < PROMPT, "{:?}", start.elapsed());
    let message = err.to_string();
    assert!(message.contains("uoft-cs/cifar10") && message.contains(&cache.display().to_string()), "{message}");
    match mode {
        "offline" => assert!(matches!(err, Error::HubNotCached { .. }), "{message}"),
        _ => assert!(matches!(err, Error::HubDownload { .. }), "{message}"),
    }
}
