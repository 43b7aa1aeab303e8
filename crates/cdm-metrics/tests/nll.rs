//! Dataset NLL through ITD against the closed-form mean −log p, and chunk invariance.

use candle_core::{Device, Tensor};
use cdm_core::exact::{ExactDensity, sample_rows};
use cdm_core::{GaussianBase, GaussianMixture, Itd, NoiseSource};
use cdm_metrics::{Error, dataset_nll};

fn setup(n: usize) -> (GaussianMixture, Itd, Vec<f64>, Tensor) {
    let gmm = GaussianMixture::two_mode_1d();
    // the mixture's variance is 1 + 25; clip 6 makes the window truncation negligible
    let itd =
        Itd::from_base_heuristic(GaussianBase::from_log_eigenvalues(vec![26f64.ln()]).unwrap(), 6.0, 1024).unwrap();
    let x = sample_rows(&gmm, &NoiseSource::new(42), n);
    let t = Tensor::from_slice(&x, (n, 1), &Device::Cpu).unwrap();
    (gmm, itd, x, t)
}

#[test]
fn matches_the_closed_form_mean_within_three_standard_errors() {
    let (gmm, itd, x, data) = setup(96);
    let report = dataset_nll(&itd, &gmm, &data, 32, &NoiseSource::new(1)).unwrap();
    let exact = x.iter().map(|&v| -gmm.log_prob(&[v], f64::INFINITY)).sum::<f64>() / x.len() as f64;
    eprintln!("{report:?}; exact mean −log p {exact:.5}");
    assert_eq!((report.count, report.dim), (96, 1));
    assert!((report.nats - exact).abs() < 3.0 * report.mc_std_err, "{} vs {exact}", report.nats);
    assert!(report.std_err > report.mc_std_err, "data spread adds to the Monte-Carlo error");
    assert!((report.bits_per_dim - report.nats / std::f64::consts::LN_2).abs() < 1e-12);
    assert!((report.bits_per_dim_std_err - report.std_err / std::f64::consts::LN_2).abs() < 1e-12);
}

#[test]
fn chunking_does_not_change_the_result_and_seeds_reproduce_it() {
    let (gmm, itd, _, data) = setup(20);
    let noise = NoiseSource::new(7);
    let whole = dataset_nll(&itd, &gmm, &data, 20, &noise).unwrap();
    for chunk in [1, 3, 7, 64] {
        assert_eq!(dataset_nll(&itd, &gmm, &data, chunk, &noise).unwrap(), whole, "chunk {chunk}");
    }
    assert_eq!(dataset_nll(&itd, &gmm, &data, 20, &NoiseSource::new(7)).unwrap(), whole);
    assert_ne!(dataset_nll(&itd, &gmm, &data, 20, &NoiseSource::new(8)).unwrap().nats, whole.nats);
}

#[test]
fn one_input_reports_its_monte_carlo_error() {
    let (gmm, itd, _, data) = setup(1);
    let report = dataset_nll(&itd, &gmm, &data, 4, &NoiseSource::new(2)).unwrap();
    assert_eq!(report.std_err, report.mc_std_err);
    assert!(report.mc_std_err > 0.0);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let (gmm, itd, _, data) = setup(4);
    let noise = NoiseSource::new(0);
    assert!(matches!(dataset_nll(&itd, &gmm, &data, 0, &noise), Err(Error::InvalidArgument { field: "chunk", .. })));
    let flat = data.flatten_all().unwrap();
    assert!(matches!(dataset_nll(&itd, &gmm, &flat, 2, &noise), Err(Error::ShapeMismatch { .. })));
    let wide = Tensor::zeros((2, 3), candle_core::DType::F64, &Device::Cpu).unwrap();
    assert!(matches!(dataset_nll(&itd, &gmm, &wide, 2, &noise), Err(Error::Core(_))));
}
