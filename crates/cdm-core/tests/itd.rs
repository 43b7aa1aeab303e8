//! The ITD estimator, the log-ratio and the noise-level classifier against closed forms.
//!
//! Every test uses an exact denoiser, so the only errors are Monte-Carlo noise (bounded by
//! 3 standard errors) and the clip-window truncation, which these tests make negligible by
//! clipping at c = 6 unless they measure it.

use candle_core::{DType, Device, Tensor};
use cdm_core::exact::{ExactDensity, sample_rows};
use cdm_core::{
    BaseCovariance, Chunked, Denoiser, Error, Gaussian, GaussianBase, GaussianMixture, Itd, ItdConfig,
    MixtureComponent, NoiseLevelClassifier, NoiseSource, PointwiseEstimate, RandomNumbers, TruncatedLogistic,
};

fn points(x: &[f64], dim: usize) -> Tensor {
    Tensor::from_slice(x, (x.len() / dim, dim), &Device::Cpu).unwrap()
}

fn itd(base: GaussianBase, clip: f64, k: usize) -> Itd {
    Itd::from_base_heuristic(base, clip, k).unwrap()
}

fn mixture_1d_itd(k: usize, clip: f64) -> Itd {
    itd(GaussianBase::from_log_eigenvalues(vec![26f64.ln()]).unwrap(), clip, k)
}

fn assert_within_3se(what: &str, est: f64, se: f64, exact: f64) {
    assert!((est - exact).abs() < 3.0 * se, "{what}: estimate {est:.5} ± {se:.5}, exact {exact:.5}");
}

#[test]
fn nll_of_a_correlated_gaussian_matches_the_closed_form() {
    let g = Gaussian::new(vec![0.5, -1.0], vec![2.0, 1.2, 1.2, 1.0]).unwrap();
    let base = GaussianBase::from_log_eigenvalues(g.eigenvalues().iter().map(|l| l.ln()).collect()).unwrap();
    let xs = [0.3, 0.2, -2.0, 1.5, 3.0, 0.0];
    let est = itd(base, 6.0, 8192).nll(&g, &points(&xs, 2), None, &NoiseSource::new(11)).unwrap().summary().unwrap();
    for (i, row) in xs.chunks(2).enumerate() {
        assert_within_3se("Gaussian −log p", est.value[i], est.std_err[i], -g.log_prob(row, f64::INFINITY));
    }
}

#[test]
fn nll_error_shrinks_like_one_over_root_k() {
    // RMS error over 200 independent repetitions; ×4 points should halve it.
    let g = Gaussian::new(vec![0.5, -1.0], vec![2.0, 1.2, 1.2, 1.0]).unwrap();
    let base = GaussianBase::from_log_eigenvalues(g.eigenvalues().iter().map(|l| l.ln()).collect()).unwrap();
    let exact = -g.log_prob(&[-2.0, 1.5], f64::INFINITY);
    let reps = 200;
    let x = points(&[-2.0, 1.5].repeat(reps), 2);
    let rmse: Vec<f64> = [64, 256, 1024]
        .iter()
        .map(|&k| {
            let est =
                itd(base.clone(), 6.0, k).nll(&g, &x, None, &NoiseSource::new(k as u64)).unwrap().summary().unwrap();
            (est.value.iter().map(|v| (v - exact).powi(2)).sum::<f64>() / reps as f64).sqrt()
        })
        .collect();
    eprintln!("RMS error of −log p at K = 64, 256, 1024: {rmse:?}");
    for w in rmse.windows(2) {
        assert!((w[1] / w[0] - 0.5).abs() < 0.15, "RMSE ratio {}", w[1] / w[0]);
    }
}

#[test]
fn nll_of_the_two_mode_mixture_matches_the_closed_form() {
    let gmm = GaussianMixture::two_mode_1d();
    let xs = [-3.0, 0.0, 5.0, 7.5];
    let est =
        mixture_1d_itd(20_000, 6.0).nll(&gmm, &points(&xs, 1), None, &NoiseSource::new(2)).unwrap().summary().unwrap();
    for (i, &x) in xs.iter().enumerate() {
        assert_within_3se("mixture −log p", est.value[i], est.std_err[i], -gmm.log_prob(&[x], f64::INFINITY));
    }
    assert!((-gmm.log_prob(&[0.0], f64::INFINITY) - 13.41894).abs() < 1e-5);
}

#[test]
fn clip_three_truncation_bias_is_small_and_documented() {
    // The authors' clip c = 3 drops the tails outside [−12.26, 5.74]; at x = 0 the bias is a
    // few thousandths of a nat, far below the estimator's noise at the paper's K = 128.
    let gmm = GaussianMixture::two_mode_1d();
    let x = points(&[0.0], 1);
    let wide = mixture_1d_itd(40_000, 6.0).nll(&gmm, &x, None, &NoiseSource::new(5)).unwrap().summary().unwrap();
    let narrow = mixture_1d_itd(40_000, 3.0).nll(&gmm, &x, None, &NoiseSource::new(5)).unwrap().summary().unwrap();
    let combined_se = (wide.std_err[0].powi(2) + narrow.std_err[0].powi(2)).sqrt();
    assert!((wide.value[0] - narrow.value[0]).abs() < 3.0 * combined_se + 0.01);
    let paper_k = mixture_1d_itd(128, 3.0).nll(&gmm, &x, None, &NoiseSource::new(5)).unwrap().summary().unwrap();
    assert!(paper_k.std_err[0] > 0.01, "K = 128 noise {} dominates the truncation bias", paper_k.std_err[0]);
}

#[test]
fn nll_of_a_two_dimensional_mixture_matches_the_closed_form() {
    let comp =
        |w: f64, m: [f64; 2], v: [f64; 2]| MixtureComponent { weight: w, mean: m.to_vec(), variance: v.to_vec() };
    let gmm = GaussianMixture::new(vec![
        comp(0.5, [-2.0, 0.0], [0.3, 0.5]),
        comp(0.3, [2.0, 1.0], [0.5, 0.2]),
        comp(0.2, [0.0, -2.5], [1.0, 0.1]),
    ])
    .unwrap();
    let data = sample_rows(&gmm, &NoiseSource::new(9), 4096);
    let base = GaussianBase::from_data(&data, 4096, 2, BaseCovariance::Full).unwrap();
    let xs = [-2.0, 0.2, 1.0, 1.0, 0.0, -2.0, 0.0, 0.0];
    let est = itd(base, 6.0, 16_384).nll(&gmm, &points(&xs, 2), None, &NoiseSource::new(4)).unwrap().summary().unwrap();
    for (i, row) in xs.chunks(2).enumerate() {
        assert_within_3se("2-D mixture −log p", est.value[i], est.std_err[i], -gmm.log_prob(row, f64::INFINITY));
    }
}

#[test]
fn noised_density_and_log_ratio_match_their_closed_forms() {
    let gmm = GaussianMixture::two_mode_1d();
    let zeta = 2.0;
    let zs = [1.0, 5.0, -6.0, 0.5];
    let z = points(&zs, 1);
    let est = mixture_1d_itd(20_000, 6.0);
    let nll_zeta = est.nll(&gmm, &z, Some(zeta), &NoiseSource::new(3)).unwrap().summary().unwrap();
    for (i, &zi) in zs.iter().enumerate() {
        assert_within_3se("−log p_ζ", nll_zeta.value[i], nll_zeta.std_err[i], -gmm.log_prob(&[zi], zeta));
    }
    assert!((-gmm.log_prob(&[1.0], zeta) - 8.42943).abs() < 1e-5);
    for mode in [RandomNumbers::Common, RandomNumbers::Independent] {
        let f = est.log_ratio(&gmm, &z, &[zeta; 4], &NoiseSource::new(8), mode).unwrap().summary().unwrap();
        for (i, &zi) in zs.iter().enumerate() {
            let exact = gmm.log_prob(&[zi], f64::INFINITY) - gmm.log_prob(&[zi], zeta);
            assert_within_3se("f_ζ", f.value[i], f.std_err[i], exact);
        }
    }
}

/// Sample variance of `n` repeated estimates at the paper's budget (K = 128, clip 3).
fn log_ratio_spread(mode: RandomNumbers, z: f64, zeta: f64) -> (f64, f64) {
    let gmm = GaussianMixture::two_mode_1d();
    let est = mixture_1d_itd(128, 3.0);
    let reps = 200;
    // 200 copies of z in one batch: each row draws its own stream, i.e. an independent repetition
    let batch = points(&vec![z; reps], 1);
    let f = est.log_ratio(&gmm, &batch, &vec![zeta; reps], &NoiseSource::new(21), mode).unwrap().summary().unwrap();
    let mean = f.value.iter().sum::<f64>() / reps as f64;
    let var = f.value.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (reps - 1) as f64;
    (mean, var)
}

#[test]
fn common_random_numbers_cut_the_log_ratio_variance_at_least_tenfold() {
    for (z, zeta) in [(5.0, 2.0), (0.5, 2.0), (5.0, 6.0)] {
        let (m_ind, v_ind) = log_ratio_spread(RandomNumbers::Independent, z, zeta);
        let (m_crn, v_crn) = log_ratio_spread(RandomNumbers::Common, z, zeta);
        let ratio = v_ind / v_crn;
        eprintln!(
            "z={z} ζ={zeta}: faithful {m_ind:.4} (var {v_ind:.4}), common {m_crn:.4} (var {v_crn:.2e}), ratio {ratio:.0}"
        );
        assert!(ratio >= 10.0, "variance ratio {ratio}");
        // same expectation: the difference of means is within 3 SE of the faithful mean
        assert!((m_ind - m_crn).abs() < 3.0 * (v_ind / 200.0 + v_crn / 200.0).sqrt());
    }
}

#[test]
fn noise_level_classifier_recovers_known_noise_levels() {
    // 8-D mixture of tight clusters: noise is visible against the cluster scale.
    let d = 8;
    let comp = |sign: f64| MixtureComponent {
        weight: 0.5,
        mean: (0..d).map(|i| sign * if i % 2 == 0 { 1.5 } else { -1.0 }).collect(),
        variance: vec![0.05; d],
    };
    let gmm = GaussianMixture::new(vec![comp(1.0), comp(-1.0)]).unwrap();
    let levels = vec![f64::INFINITY, 6.0, 3.0, 1.0, -1.0];
    let per_level = 40;
    let clean = sample_rows(&gmm, &NoiseSource::new(1), levels.len() * per_level);
    let mut rows = Vec::new();
    let mut truth = Vec::new();
    for (j, &zeta) in levels.iter().enumerate() {
        let x = &clean[j * per_level * d..(j + 1) * per_level * d];
        let mut rng = NoiseSource::new(2).stream(j as u64);
        rows.extend(if zeta.is_finite() { cdm_core::exact::noise_rows(x, zeta, &mut rng) } else { x.to_vec() });
        truth.extend(std::iter::repeat_n(j, per_level));
    }
    let data_base = GaussianBase::from_data(&clean, clean.len() / d, d, BaseCovariance::Diagonal).unwrap();
    let classifier = NoiseLevelClassifier::new(itd(data_base, 4.0, 256), levels.clone()).unwrap();
    let z = points(&rows, d);
    let post = classifier.classify(&gmm, &z, &NoiseSource::new(3)).unwrap();
    // The Bayes classifier from the exact noised densities bounds what any classifier can do.
    let bayes: Vec<usize> = rows
        .chunks(d)
        .map(|z| {
            let lp: Vec<f64> = levels.iter().map(|&l| gmm.log_prob(z, l)).collect();
            (0..lp.len()).max_by(|&a, &b| lp[a].total_cmp(&lp[b])).unwrap()
        })
        .collect();
    let rate = |pred: &[usize], other: &[usize]| {
        pred.iter().zip(other).filter(|(p, t)| p == t).count() as f64 / other.len() as f64
    };
    let (accuracy, bayes_accuracy, agreement) =
        (rate(&post.predicted, &truth), rate(&bayes, &truth), rate(&post.predicted, &bayes));
    eprintln!(
        "noise-level accuracy {accuracy:.3} (Bayes {bayes_accuracy:.3}, agreement {agreement:.3}) over {} inputs, {} levels, chance {:.2}",
        truth.len(),
        levels.len(),
        1.0 / levels.len() as f64
    );
    assert!(accuracy > 0.6, "accuracy {accuracy}");
    assert!(bayes_accuracy - accuracy < 0.1 && agreement > 0.85);
    for p in &post.posterior {
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    assert_eq!(post.neighbour_log_ratios(0).len(), levels.len() - 1);
}

#[test]
fn batch_loss_is_unbiased_for_the_expected_nll() {
    // E_x[−log p(x)] for N(μ, Σ) is its entropy d/2·log(2πe) + ½·log det Σ.
    let g = Gaussian::new(vec![0.0, 1.0], vec![1.5, -0.4, -0.4, 0.8]).unwrap();
    let entropy =
        GaussianBase::from_log_eigenvalues(g.eigenvalues().iter().map(|l| l.ln()).collect()).unwrap().entropy();
    let base = GaussianBase::standard(2);
    let est = itd(base, 6.0, 1);
    let n = 4096;
    let x = points(&sample_rows(&g, &NoiseSource::new(30), n), 2);
    let reps: Vec<f64> = (0..16)
        .map(|r| est.batch_loss(&g, &x, &NoiseSource::new(100 + r)).unwrap().to_scalar::<f64>().unwrap())
        .collect();
    let mean = reps.iter().sum::<f64>() / reps.len() as f64;
    let se =
        (reps.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (reps.len() - 1) as f64 / reps.len() as f64).sqrt();
    // the fixed data sample adds its own spread: include the sampling SE of the mean NLL
    let nll: Vec<f64> = x.to_vec2::<f64>().unwrap().iter().map(|r| -g.log_prob(r, f64::INFINITY)).collect();
    let nll_mean = nll.iter().sum::<f64>() / n as f64;
    assert_within_3se("batch loss vs sample NLL", mean, se, nll_mean);
    assert!((nll_mean - entropy).abs() < 0.1);
}

#[test]
fn same_seed_is_bit_identical_and_rows_do_not_depend_on_the_batch() {
    let gmm = GaussianMixture::two_mode_1d();
    let est = mixture_1d_itd(64, 3.0);
    let xs = [0.0, 1.0, 2.0, 3.0, 4.0];
    let all = est.nll(&gmm, &points(&xs, 1), None, &NoiseSource::new(7)).unwrap().summary().unwrap();
    let again = est.nll(&gmm, &points(&xs, 1), None, &NoiseSource::new(7)).unwrap().summary().unwrap();
    assert_eq!(all, again);
    let tail =
        est.nll(&gmm, &points(&xs[3..], 1), None, &NoiseSource::new(7).with_offset(3)).unwrap().summary().unwrap();
    assert_eq!(&all.value[3..], &tail.value[..]);
    let f32_x = points(&xs, 1).to_dtype(DType::F32).unwrap();
    let f32_a = est.nll(&gmm, &f32_x, None, &NoiseSource::new(7)).unwrap().summary().unwrap();
    let f32_b = est.nll(&gmm, &f32_x, None, &NoiseSource::new(7)).unwrap().summary().unwrap();
    assert_eq!(f32_a, f32_b);
}

#[test]
fn estimators_evaluate_all_points_in_one_call_split_only_by_chunked() {
    struct Counting<'a>(&'a GaussianMixture, std::cell::RefCell<Vec<usize>>);
    impl Denoiser for Counting<'_> {
        fn eps(&self, z: &Tensor, log_snr: &Tensor) -> cdm_core::Result<Tensor> {
            self.1.borrow_mut().push(z.dim(0)?);
            self.0.eps(z, log_snr)
        }
    }
    let gmm = GaussianMixture::two_mode_1d();
    let d = Counting(&gmm, Default::default());
    let x = points(&[0.0, 1.0, 2.0], 1);
    let proposal = TruncatedLogistic::new(-3.258, 3.0, 3.0).unwrap();
    let base = GaussianBase::from_log_eigenvalues(vec![26f64.ln()]).unwrap();
    let est = Itd::new(base, ItdConfig { points: 50, proposal }).unwrap();
    let one = est.log_ratio(&d, &x, &[2.0; 3], &NoiseSource::new(0), RandomNumbers::Common).unwrap();
    assert_eq!(*d.1.borrow(), vec![300], "both terms of all 3×50 points in one call");
    d.1.borrow_mut().clear();
    let capped = Chunked::new(&d, 128).unwrap();
    let split = est.log_ratio(&capped, &x, &[2.0; 3], &NoiseSource::new(0), RandomNumbers::Common).unwrap();
    assert_eq!(*d.1.borrow(), vec![128, 128, 44]);
    let terms = |e: PointwiseEstimate| e.terms.to_vec2::<f64>().unwrap();
    assert_eq!(terms(split), terms(one), "the split call gives the same estimate");
}

#[test]
fn bad_arguments_are_typed_errors() {
    let base = GaussianBase::standard(2);
    let proposal = TruncatedLogistic { loc: 0.0, scale: 3.0, clip: 3.0 };
    let cfg = |points, proposal| ItdConfig { points, proposal };
    assert!(matches!(Itd::new(base.clone(), cfg(0, proposal)), Err(Error::InvalidArgument { field: "points", .. })));
    let bad_clip = TruncatedLogistic { clip: 0.0, ..proposal };
    assert!(matches!(Itd::new(base.clone(), cfg(4, bad_clip)), Err(Error::InvalidArgument { field: "clip", .. })));
    let est = Itd::new(base, cfg(4, proposal)).unwrap();
    let g = Gaussian::isotropic(vec![0.0, 0.0], 1.0).unwrap();
    let wrong_dim = points(&[0.0, 1.0, 2.0], 3);
    assert!(matches!(est.nll(&g, &wrong_dim, None, &NoiseSource::new(0)), Err(Error::ShapeMismatch { .. })));
    let x = points(&[0.0, 1.0], 2);
    assert!(matches!(
        est.log_ratio(&g, &x, &[1.0, 2.0], &NoiseSource::new(0), RandomNumbers::Common),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(NoiseLevelClassifier::new(est.clone(), vec![1.0]).is_err());
    assert!(NoiseLevelClassifier::new(est, vec![1.0, f64::NAN]).is_err());
}
