//! Point CSV: mutated text parses to finite points of one width, or to a typed error naming the
//! file; a cloud that parses writes and reads back bit for bit.

use std::path::Path;

use cdm_data::{Error, PointCloud, parse_csv, read_csv, write_csv};
use proptest::prelude::*;

use crate::common::TempDir;
use crate::support::{config, mutate, mutations, peak_bytes};

/// CSV text of `rows`, with an optional header and a comment.
fn csv_text(rows: &[Vec<f64>], header: bool) -> String {
    let mut text = String::from("# points\n");
    if header {
        let names: Vec<String> = (0..rows[0].len()).map(|j| format!("x{j}")).collect();
        text += &(names.join(",") + "\n");
    }
    for row in rows {
        text += &(row.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ") + "\r\n");
    }
    text
}

fn rows() -> impl Strategy<Value = Vec<Vec<f64>>> {
    (1usize..4).prop_flat_map(|dim| prop::collection::vec(prop::collection::vec(-1e6f64..1e6, dim), 1..12))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mutated_csv_is_points_or_a_typed_error(rows in rows(), header in any::<bool>(), m in mutations()) {
        let bytes = mutate(csv_text(&rows, header).into_bytes(), &m);
        let text = String::from_utf8_lossy(&bytes);
        let (result, peak) = peak_bytes(|| parse_csv(&text, Path::new("fuzz.csv")));
        prop_assert!(peak < 64 * bytes.len() as u64 + (1 << 20), "{peak} bytes for a {}-byte file", bytes.len());
        match result {
            Ok(cloud) => {
                prop_assert!(cloud.dim() > 0 && !cloud.is_empty());
                prop_assert_eq!(cloud.data().len(), cloud.len() * cloud.dim());
                prop_assert!(cloud.data().iter().all(|v| v.is_finite()));
            }
            Err(e) => {
                let named = matches!(e, Error::NoRows { .. } | Error::ColumnCount { .. } | Error::NotANumber { .. }
                    | Error::NonFiniteField { .. });
                prop_assert!(named, "unexpected error kind: {e}");
                prop_assert!(e.to_string().starts_with("fuzz.csv"), "{e}");
            }
        }
    }

    #[test]
    fn written_clouds_read_back_bit_for_bit(rows in rows()) {
        let dim = rows[0].len();
        let cloud = PointCloud::new(rows.concat(), dim).unwrap();
        let tmp = TempDir::new("fuzz-csv-roundtrip");
        let path = tmp.path("points.csv");
        write_csv(&path, &cloud, None).unwrap();
        prop_assert_eq!(read_csv(&path).unwrap(), cloud);
    }
}
