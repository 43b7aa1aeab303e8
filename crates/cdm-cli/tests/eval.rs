//! `cdm nll`, `cdm noise-level` and `cdm eval` end to end: estimates against exact densities,
//! a tiny trained run's `eval.json`, and bad input.

use std::path::Path;
mod common;

use common::{cdm, stderr, write};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Rows of a CSV with a header, as (header, rows of fields).
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    (header, lines.map(|l| l.split(',').map(String::from).collect()).collect())
}

fn column(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// A small deterministic generator of standard normals (xorshift + Box–Muller).
struct Normals(u64);

impl Normals {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// A little-endian f64 `.npy` file of shape (rows, cols).
fn write_npy(path: &Path, values: &[f64], rows: usize, cols: usize) {
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header);
    values.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

const TWO_MODE: &str = r#"{"components": [
    {"weight": 0.5, "mean": [-5.0], "variance": [1.0]},
    {"weight": 0.5, "mean": [5.0], "covariance": [[1.0]]}
]}"#;

#[test]
fn nll_under_an_exact_mixture_matches_the_closed_form() {
    let tmp = tempfile::tempdir().unwrap();
    let density = write(tmp.path(), "two_mode.json", TWO_MODE);
    let points = write(tmp.path(), "pts.csv", "x\n-5\n-3\n0\n2.5\n5\n7.5\n");
    let out_csv = tmp.path().join("nll.csv");
    let out = cdm(&["nll", "--density", s(&density), "--input", s(&points), "--points", "2000", "--out", s(&out_csv)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("exact nats"));
    let (header, rows) = read_csv(&out_csv);
    assert_eq!(&header[..5], ["index", "nats", "nats_se", "bits_per_dim", "bpd_se"]);
    assert_eq!(rows.len(), 6);
    let (nats, se, bpd, exact) = (
        column(&header, "nats"),
        column(&header, "nats_se"),
        column(&header, "bits_per_dim"),
        column(&header, "exact_nats"),
    );
    for row in &rows {
        let v: f64 = row[nats].parse().unwrap();
        let e: f64 = row[exact].parse().unwrap();
        let sd: f64 = row[se].parse().unwrap();
        assert!(sd > 0.0 && (v - e).abs() <= 4.0 * sd + 0.02, "row {row:?}: {v} ± {sd} vs exact {e}");
        let b: f64 = row[bpd].parse().unwrap();
        assert!((b - v / std::f64::consts::LN_2).abs() < 1e-9);
    }
    // the exact −log p(0) of the paper's mixture
    let e0: f64 = rows[2][exact].parse().unwrap();
    assert!((e0 - 13.41894).abs() < 1e-4);

    // the same points from .npy give the same estimates (input i always uses stream i)
    let npy = tmp.path().join("pts.npy");
    write_npy(&npy, &[-5.0, -3.0, 0.0, 2.5, 5.0, 7.5], 6, 1);
    let out_npy = tmp.path().join("nll_npy.csv");
    let out = cdm(&["nll", "--density", s(&density), "--input", s(&npy), "--points", "2000", "--out", s(&out_npy)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_csv(&out_npy).1, rows);
}

#[test]
fn noise_level_under_an_exact_mixture_recovers_known_levels() {
    // two narrow modes in 8-D: the noise already in a point is plain to see
    let tmp = tempfile::tempdir().unwrap();
    let d = 8;
    let comp = |m: f64| {
        format!(
            r#"{{"weight": 0.5, "mean": [{m}{}], "variance": [{}]}}"#,
            format!(", {m}").repeat(d - 1),
            ["1e-4"; 8].join(", ")
        )
    };
    let density = write(tmp.path(), "narrow.json", &format!(r#"{{"components": [{}, {}]}}"#, comp(2.0), comp(-2.0)));
    let levels = [f64::INFINITY, 6.0, 3.0, 1.0, -1.0];
    let labels = ["inf", "6", "3", "1", "-1"];
    let per_level = 8;
    let mut rng = Normals(0x9E37_79B9_7F4A_7C15);
    let mut csv = String::new();
    for &zeta in &levels {
        let (a, sd) = if zeta.is_finite() {
            ((1.0 / (1.0 + (-zeta).exp())).sqrt(), (1.0 / (1.0 + zeta.exp())).sqrt())
        } else {
            (1.0, 0.0)
        };
        for i in 0..per_level {
            let mode = if i % 2 == 0 { 2.0 } else { -2.0 };
            let row: Vec<String> =
                (0..d).map(|_| (a * (mode + 0.01 * rng.normal()) + sd * rng.normal()).to_string()).collect();
            csv.push_str(&row.join(","));
            csv.push('\n');
        }
    }
    let input = write(tmp.path(), "noised.csv", &csv);
    let out_csv = tmp.path().join("levels.csv");
    let out = cdm(&[
        "noise-level",
        "--density",
        s(&density),
        "--input",
        s(&input),
        "--levels",
        "inf,6,3,1,-1",
        "--points",
        "256",
        "--clip",
        "6",
        "--out",
        s(&out_csv),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (header, rows) = read_csv(&out_csv);
    let (pred, exact, prob) =
        (column(&header, "predicted"), column(&header, "exact_predicted"), column(&header, "probability"));
    let truth = |i: usize| labels[i / per_level];
    let right = rows.iter().enumerate().filter(|(i, r)| r[pred] == truth(*i)).count();
    let exact_right = rows.iter().enumerate().filter(|(i, r)| r[exact] == truth(*i)).count();
    assert_eq!(rows.len(), levels.len() * per_level);
    assert!(exact_right * 10 >= rows.len() * 9, "exact posterior right on {exact_right}/{}", rows.len());
    assert!(right * 4 >= rows.len() * 3, "estimated posterior right on {right}/{}", rows.len());
    for r in &rows {
        let p: f64 = r[prob].parse().unwrap();
        let sum: f64 =
            r[column(&header, "p_inf")..=column(&header, "p_-1")].iter().map(|v| v.parse::<f64>().unwrap()).sum();
        assert!(p > 0.0 && p <= 1.0 && (sum - 1.0).abs() < 1e-9, "{r:?}");
    }
}

#[test]
fn eval_of_a_tiny_one_dimensional_run_writes_metrics_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let cfg = write(
        tmp.path(),
        "tiny1d.toml",
        "[train]\nsteps = 12\nbatch_size = 32\nlog_every = 4\ncheckpoint_every = 6\nvalidate_every = 6\n\n[sample]\nn = 0\n\n[data]\ndataset = \"gmm1d\"\nn_train = 500\nn_validation = 200\n\n[model]\nkind = \"plain_mlp\"\n",
    );
    let out = cdm(&["train", "--config", s(&cfg), "--runs-dir", s(&runs), "--name", "g", "--no-progress"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = runs.join("g");
    let eval_args = [
        "eval",
        "--run",
        s(&run),
        "--n",
        "64",
        "--points",
        "8",
        "--noise-inputs",
        "40",
        "--mse-inputs",
        "100",
        "--trajectories",
        "3",
        "--no-progress",
    ];
    let out = cdm(&eval_args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(run.join("eval.json")).unwrap();
    let eval: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in
        ["/mmd/value", "/mmd_median_heuristic/value", "/sliced_w2", "/nll/nats", "/nll/std_err", "/nll/bits_per_dim"]
    {
        let v = eval.pointer(key).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        assert!(v.is_finite(), "{key} = {v} in {text}");
    }
    assert!(eval["nll"]["data_units"]["nats"].as_f64().unwrap().is_finite());
    let acc = eval["noise_level"]["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    assert_eq!(eval["noise_level"]["levels"][0], "inf");
    assert_eq!(eval["mse_vs_log_snr"].as_array().unwrap().len(), 40);
    assert!(eval["mse_vs_log_snr"][0]["exact"].as_f64().is_some());
    assert!(eval["ood_map"]["regions"]["near"].as_f64().unwrap().is_finite());
    assert_eq!(eval["ood_map"]["trajectories"], 3);
    for png in ["mse_vs_log_snr.png", "ood_map.png"] {
        assert!(std::fs::metadata(run.join(png)).unwrap().len() > 1000, "{png}");
    }
    // the same seed gives the same eval.json
    let again = cdm(&eval_args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(std::fs::read_to_string(run.join("eval.json")).unwrap(), text);

    // nll and noise-level under the run, inputs in data units
    let points = write(tmp.path(), "pts.csv", "-5\n0\n5\n");
    let out = cdm(&["nll", "--run", s(&run), "--input", s(&points), "--points", "16"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cdm(&["noise-level", "--run", s(&run), "--input", s(&points), "--points", "16"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn bad_input_fails_with_a_message_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let good = write(tmp.path(), "two_mode.json", TWO_MODE);
    let pts = write(tmp.path(), "pts.csv", "-1\n0\n1\n");
    let pts2d = write(tmp.path(), "pts2d.csv", "0,1\n1,2\n");
    let txt = write(tmp.path(), "pts.txt", "0\n");
    let malformed = write(tmp.path(), "malformed.json", "{\"components\": [{\"mean\": [0], \"variance\": [1]}");
    let unknown = write(tmp.path(), "unknown.json", r#"{"components": [{"means": [0], "variance": [1]}]}"#);
    let wrong_dim = write(tmp.path(), "wrong_dim.json", r#"{"components": [{"mean": [0, 1], "variance": [1]}]}"#);
    let full_mix = write(
        tmp.path(),
        "full_mix.json",
        r#"{"components": [{"mean": [0, 0], "covariance": [[1, 0.5], [0.5, 1]]}, {"mean": [1, 1], "variance": [1, 1]}]}"#,
    );
    let not_pd =
        write(tmp.path(), "not_pd.json", r#"{"components": [{"mean": [0, 0], "covariance": [[1, 2], [2, 1]]}]}"#);
    let missing = tmp.path().join("nope.csv");
    let (g, p) = (s(&good), s(&pts));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["nll", "--density", s(&malformed), "--input", p], "malformed.json"),
        (vec!["nll", "--density", s(&unknown), "--input", p], "means"),
        (vec!["nll", "--density", s(&wrong_dim), "--input", p], "components[0].variance"),
        (vec!["nll", "--density", s(&full_mix), "--input", p], "only diagonal"),
        (vec!["nll", "--density", s(&not_pd), "--input", p], "positive definite"),
        (vec!["nll", "--density", "/nonexistent/density.json", "--input", p], "/nonexistent/density.json"),
        (vec!["nll", "--density", g, "--input", s(&pts2d)], "dimension 1"),
        (vec!["nll", "--density", g, "--input", s(&missing)], "nope.csv"),
        (vec!["nll", "--density", g, "--input", s(&txt)], "unsupported input format"),
        (vec!["nll", "--density", g, "--input", p, "--points", "1"], "--points"),
        (vec!["noise-level", "--density", g, "--input", p, "--levels", "inf,6,abc"], "unknown level \"abc\""),
        (vec!["noise-level", "--density", g, "--input", p, "--levels", "inf"], "at least two"),
        (vec!["noise-level", "--density", g, "--input", s(&missing)], "nope.csv"),
        (vec!["nll", "--density", g, "--run", "/tmp", "--input", p], "cannot be used with"),
        (vec!["nll", "--input", p], "required"),
        (vec!["eval", "--run", "/nonexistent/run"], "/nonexistent/run/config.json"),
    ];
    for (args, needle) in cases {
        let out = cdm(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: stderr lacks {needle:?}:\n{err}");
        assert!(!err.contains("panicked"), "{args:?} panicked:\n{err}");
    }
}
