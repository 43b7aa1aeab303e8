//! Accuracy and confusion matrix of the implicit noise-level classifier.

use candle_core::{Device, Tensor};
use cdm_core::exact::{ExactDensity, sample_rows};
use cdm_core::log_snr::{noise_coef, signal_coef};
use cdm_core::{
    BaseCovariance, GaussianBase, GaussianMixture, Itd, MixtureComponent, NoiseLevelClassifier, NoiseSource,
};
use cdm_metrics::{Error, noise_level_accuracy};

/// Two tight 8-D clusters: added noise is visible against the cluster scale.
fn setup() -> (GaussianMixture, NoiseLevelClassifier, Tensor) {
    let d = 8;
    let comp = |sign: f64| MixtureComponent {
        weight: 0.5,
        mean: (0..d).map(|i| sign * if i % 2 == 0 { 1.5 } else { -1.0 }).collect(),
        variance: vec![0.05; d],
    };
    let gmm = GaussianMixture::new(vec![comp(1.0), comp(-1.0)]).unwrap();
    let n = 24;
    let clean = sample_rows(&gmm, &NoiseSource::new(1), n);
    let base = GaussianBase::from_data(&clean, n, d, BaseCovariance::Diagonal).unwrap();
    let itd = Itd::from_base_heuristic(base, 4.0, 128).unwrap();
    let classifier = NoiseLevelClassifier::new(itd, vec![f64::INFINITY, 3.0, 0.0, -3.0]).unwrap();
    (gmm, classifier, Tensor::from_slice(&clean, (n, d), &Device::Cpu).unwrap())
}

#[test]
fn recovers_known_noise_levels_far_above_chance() {
    let (gmm, classifier, clean) = setup();
    let result = noise_level_accuracy(&classifier, &gmm, &clean, &NoiseSource::new(3)).unwrap();
    eprintln!("accuracy {:.3}, per level {:?}, confusion {:?}", result.accuracy, result.per_level(), result.confusion);
    assert_eq!(result.levels, classifier.levels());
    for row in &result.confusion {
        assert_eq!(row.iter().sum::<usize>(), 24);
    }
    let diagonal: usize = (0..4).map(|j| result.confusion[j][j]).sum();
    assert_eq!(result.accuracy, diagonal as f64 / 96.0);
    // the Bayes classifier on the same noised inputs (streams as documented) bounds any classifier
    let inputs = NoiseSource::new(3).fork("noise-accuracy-inputs");
    let x = clean.to_vec2::<f64>().unwrap();
    let mut bayes_correct = 0;
    for (j, &zeta) in classifier.levels().iter().enumerate() {
        let eps = inputs.fork_index(j as u64).streams(0, x.len()).normal_f64(8);
        for (xi, e) in x.iter().zip(eps.chunks(8)) {
            let z: Vec<f64> = xi.iter().zip(e).map(|(v, n)| signal_coef(zeta) * v + noise_coef(zeta) * n).collect();
            let lp: Vec<f64> = classifier.levels().iter().map(|&l| gmm.log_prob(&z, l)).collect();
            bayes_correct += usize::from((0..4).max_by(|&a, &b| lp[a].total_cmp(&lp[b])) == Some(j));
        }
    }
    let bayes = bayes_correct as f64 / 96.0;
    eprintln!("Bayes accuracy {bayes:.3}");
    assert!(result.accuracy > 0.6, "chance is 0.25, got {}", result.accuracy);
    assert!(bayes - result.accuracy < 0.15, "Bayes {bayes}, ITD classifier {}", result.accuracy);
    assert_eq!(result.per_level().len(), 4);
}

#[test]
fn is_reproducible_from_its_seed() {
    let (gmm, classifier, clean) = setup();
    let clean = clean.narrow(0, 0, 6).unwrap();
    let a = noise_level_accuracy(&classifier, &gmm, &clean, &NoiseSource::new(5)).unwrap();
    assert_eq!(a, noise_level_accuracy(&classifier, &gmm, &clean, &NoiseSource::new(5)).unwrap());
}

#[test]
fn bad_inputs_are_typed_errors() {
    let (gmm, classifier, clean) = setup();
    let flat = clean.flatten_all().unwrap();
    assert!(matches!(
        noise_level_accuracy(&classifier, &gmm, &flat, &NoiseSource::new(0)),
        Err(Error::ShapeMismatch { .. })
    ));
}
