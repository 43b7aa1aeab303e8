//! Sliced W₂: exact 1-D values, translations, symmetry and seeding.

use cdm_core::NoiseSource;
use cdm_metrics::{Error, sliced_wasserstein, wasserstein_1d};

fn normal(seed: u64, n: usize, dim: usize) -> Vec<f64> {
    NoiseSource::new(seed).streams(0, n).normal_f64(dim)
}

#[test]
fn identical_clouds_are_at_distance_zero() {
    let x = normal(1, 300, 2);
    assert_eq!(sliced_wasserstein(&x, &x, 2, 64, &NoiseSource::new(0)).unwrap(), 0.0);
    assert_eq!(wasserstein_1d(&x, &x).unwrap(), 0.0);
}

#[test]
fn a_translated_one_dimensional_cloud_is_at_the_shift() {
    let x = normal(2, 500, 1);
    for shift in [0.7, -3.0, 1e-3] {
        let y: Vec<f64> = x.iter().map(|v| v + shift).collect();
        let sw = sliced_wasserstein(&x, &y, 1, 16, &NoiseSource::new(3)).unwrap();
        assert!((sw - shift.abs()).abs() < 1e-12, "shift {shift}: {sw}");
        assert!((wasserstein_1d(&y, &x).unwrap() - shift.abs()).abs() < 1e-12);
    }
}

#[test]
fn unequal_sizes_use_the_exact_quantile_integral() {
    // F_a⁻¹ = 0 on [0, ½), 1 on [½, 1); F_b⁻¹ = 0, ½, 1 on thirds: W₂² = 2·(1/6)·¼ = 1/12
    let w = wasserstein_1d(&[1.0, 0.0], &[0.5, 1.0, 0.0]).unwrap();
    assert!((w - (1.0f64 / 12.0).sqrt()).abs() < 1e-15);
    // one point against many: W₂² = mean squared distance to it
    let b = [1.0, 2.0, 4.0];
    let want = ((1.0 + 4.0 + 16.0) / 3.0f64).sqrt();
    assert!((wasserstein_1d(&[0.0], &b).unwrap() - want).abs() < 1e-15);
}

#[test]
fn a_translation_in_two_dimensions_averages_over_directions() {
    // W₂²(θ·x, θ·x + θ·c) = (θ·c)², whose mean over uniform θ in 2-D is ‖c‖²/2
    let x = normal(4, 200, 2);
    let c = [3.0, -4.0];
    let y: Vec<f64> = x.chunks(2).flat_map(|p| [p[0] + c[0], p[1] + c[1]]).collect();
    let sw = sliced_wasserstein(&x, &y, 2, 4000, &NoiseSource::new(5)).unwrap();
    let want = 5.0 / 2f64.sqrt();
    assert!((sw - want).abs() < 0.05 * want, "{sw} vs {want}");
}

#[test]
fn is_symmetric_and_reproducible() {
    let (x, y) = (normal(6, 120, 3), normal(7, 90, 3));
    let noise = NoiseSource::new(8);
    let a = sliced_wasserstein(&x, &y, 3, 50, &noise).unwrap();
    assert_eq!(a.to_bits(), sliced_wasserstein(&y, &x, 3, 50, &noise).unwrap().to_bits());
    assert_eq!(a.to_bits(), sliced_wasserstein(&x, &y, 3, 50, &NoiseSource::new(8)).unwrap().to_bits());
    assert_ne!(a, sliced_wasserstein(&x, &y, 3, 50, &NoiseSource::new(9)).unwrap());
    assert!(a > 0.0);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let x = normal(1, 4, 2);
    let noise = NoiseSource::new(0);
    assert!(matches!(sliced_wasserstein(&x[..3], &x, 2, 4, &noise), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(sliced_wasserstein(&[], &x, 2, 4, &noise), Err(Error::InvalidArgument { field: "points", .. })));
    assert!(matches!(
        sliced_wasserstein(&x, &x, 2, 0, &noise),
        Err(Error::InvalidArgument { field: "directions", .. })
    ));
    assert!(matches!(wasserstein_1d(&[], &x), Err(Error::InvalidArgument { .. })));
}
