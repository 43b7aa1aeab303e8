//! MMD² against a brute-force transcription of the paper's formula, its null behaviour,
//! symmetry, bandwidth rules and speed.

use cdm_core::NoiseSource;
use cdm_metrics::mmd::{BANDWIDTH_SEED, mmd2_bandwidths};
use cdm_metrics::{Error, median_heuristic, mmd2, paper_bandwidth, paper_bandwidth_grid};

/// `n` standard-normal points of dimension `dim`, shifted by `shift` in every coordinate.
fn normal(seed: u64, n: usize, dim: usize, shift: f64) -> Vec<f64> {
    NoiseSource::new(seed).streams(0, n).normal_f64(dim).into_iter().map(|v| v + shift).collect()
}

/// The paper's estimator, term by term, with the kernel written out.
fn brute_force(x: &[f64], y: &[f64], dim: usize, b: f64) -> f64 {
    let k = |u: &[f64], v: &[f64]| {
        let d2: f64 = u.iter().zip(v).map(|(a, c)| (a - c).powi(2)).sum();
        (2.0 * std::f64::consts::PI * b).powf(-0.5) * (-d2 / (2.0 * b)).exp()
    };
    let (xs, ys): (Vec<&[f64]>, Vec<&[f64]>) = (x.chunks(dim).collect(), y.chunks(dim).collect());
    let (n, m) = (xs.len() as f64, ys.len() as f64);
    let mut yy = 0.0;
    for j in 0..ys.len() {
        for jp in j + 1..ys.len() {
            yy += k(ys[j], ys[jp]);
        }
    }
    let mut xx = 0.0;
    for i in 0..xs.len() {
        for ip in 0..xs.len() {
            if i != ip {
                xx += k(xs[i], xs[ip]);
            }
        }
    }
    let mut xy = 0.0;
    for xi in &xs {
        for yj in &ys {
            xy += k(xi, yj);
        }
    }
    2.0 / (m * (m - 1.0)) * yy + xx / (n * (n - 1.0)) - 2.0 / (n * m) * xy
}

#[test]
fn equals_the_brute_force_triple_sum() {
    for (dim, n, m) in [(1, 9, 4), (2, 7, 7), (2, 40, 33), (3, 5, 12)] {
        let x = normal(1, n, dim, 0.0);
        let y = normal(2, m, dim, 0.3);
        for b in [0.03, 0.5, 2.0] {
            let (fast, slow) = (mmd2(&x, &y, dim, b).unwrap(), brute_force(&x, &y, dim, b));
            assert!((fast - slow).abs() < 1e-12, "dim {dim}, n {n}, m {m}, b {b}: {fast} vs {slow}");
        }
        let many = mmd2_bandwidths(&x, &y, dim, &[0.03, 0.5, 2.0]).unwrap();
        for (got, b) in many.iter().zip([0.03, 0.5, 2.0]) {
            assert!((got - brute_force(&x, &y, dim, b)).abs() < 1e-12);
        }
    }
}

#[test]
fn is_zero_in_expectation_for_one_distribution_and_positive_for_two() {
    let (reps, n, b) = (40, 150, 0.5);
    let stats = |shift: f64| -> (f64, f64) {
        let v: Vec<f64> = (0..reps)
            .map(|r| mmd2(&normal(2 * r, n, 2, 0.0), &normal(2 * r + 1, n, 2, shift), 2, b).unwrap())
            .collect();
        let mean = v.iter().sum::<f64>() / reps as f64;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (reps - 1) as f64).sqrt();
        (mean, sd / (reps as f64).sqrt())
    };
    let (null_mean, null_se) = stats(0.0);
    let (alt_mean, _) = stats(1.0);
    eprintln!("MMD² same distribution {null_mean:.2e} ± {null_se:.2e}; shifted by 1: {alt_mean:.3e}");
    assert!(null_mean.abs() < 3.0 * null_se, "null mean {null_mean} ± {null_se}");
    assert!(alt_mean > 50.0 * null_se && alt_mean > 0.01);
}

#[test]
fn is_symmetric_in_its_arguments() {
    for (n, m) in [(60, 60), (60, 45)] {
        let (x, y) = (normal(3, n, 2, 0.0), normal(4, m, 2, 0.2));
        let (a, b) = (mmd2(&x, &y, 2, 0.3).unwrap(), mmd2(&y, &x, 2, 0.3).unwrap());
        assert!((a - b).abs() <= 1e-15 * a.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn same_inputs_give_bit_identical_results() {
    let (x, y) = (normal(5, 300, 2, 0.0), normal(6, 200, 2, 0.1));
    assert_eq!(mmd2(&x, &y, 2, 0.03).unwrap().to_bits(), mmd2(&x, &y, 2, 0.03).unwrap().to_bits());
    let grid = paper_bandwidth_grid();
    assert_eq!(paper_bandwidth(&x, 2, &grid).unwrap(), paper_bandwidth(&x, 2, &grid).unwrap());
}

#[test]
fn bad_inputs_are_typed_errors() {
    let x = normal(1, 4, 2, 0.0);
    assert!(matches!(mmd2(&x[..7], &x, 2, 1.0), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(mmd2(&x[..2], &x, 2, 1.0), Err(Error::InvalidArgument { field: "points", .. })));
    assert!(matches!(mmd2(&x, &x, 0, 1.0), Err(Error::InvalidArgument { field: "dim", .. })));
    for b in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(mmd2(&x, &x, 2, b), Err(Error::InvalidArgument { field: "bandwidth", .. })));
    }
    let mut bad = x.clone();
    bad[3] = f64::NAN;
    assert!(matches!(mmd2(&bad, &x, 2, 1.0), Err(Error::InvalidArgument { field: "points", .. })));
    assert!(matches!(mmd2_bandwidths(&x, &x, 2, &[]), Err(Error::InvalidArgument { field: "bandwidths", .. })));
    assert!(matches!(paper_bandwidth(&x, 2, &[]), Err(Error::InvalidArgument { .. })));
    assert!(matches!(median_heuristic(&x[..3], 2), Err(Error::ShapeMismatch { .. })));
}

#[test]
fn median_heuristic_is_the_median_of_the_reference_distance_matrix() {
    // odd and even sizes: numpy's median of all N² entries, zero diagonal included
    for n in [7, 8, 1] {
        let x = normal(7, n, 2, 0.0);
        let points: Vec<&[f64]> = x.chunks(2).collect();
        let mut all: Vec<f64> = points
            .iter()
            .flat_map(|u| points.iter().map(move |v| u.iter().zip(*v).map(|(a, b)| (a - b).powi(2)).sum::<f64>()))
            .collect();
        all.sort_by(f64::total_cmp);
        let t = all.len();
        let want = if t % 2 == 1 { all[t / 2] } else { 0.5 * (all[t / 2 - 1] + all[t / 2]) };
        assert_eq!(median_heuristic(&x, 2).unwrap(), want, "n {n}");
    }
}

#[test]
fn paper_bandwidth_maximises_the_discrepancy_to_a_seeded_normal() {
    let grid = paper_bandwidth_grid();
    assert_eq!((grid.len(), grid[0], grid[99]), (100, 0.001, 3.0));
    // four tight clusters at (±1, ±1): the discrepancy to N(0, I) peaks at a small bandwidth
    let centres = [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)];
    let jitter = normal(9, 160, 2, 0.0);
    let data: Vec<f64> = jitter
        .chunks(2)
        .enumerate()
        .flat_map(|(i, p)| {
            let c = centres[i % 4];
            [c.0 + 0.15 * p[0], c.1 + 0.15 * p[1]]
        })
        .collect();
    let b = paper_bandwidth(&data, 2, &grid).unwrap();
    let reference = NoiseSource::new(BANDWIDTH_SEED).fork("paper-bandwidth").streams(0, 160).normal_f64(2);
    let curve = mmd2_bandwidths(&data, &reference, 2, &grid).unwrap();
    let at_b = curve[grid.iter().position(|&g| g == b).unwrap()];
    assert!(curve.iter().all(|&c| c <= at_b));
    eprintln!("paper bandwidth for four tight clusters: {b:.4} (MMD² {at_b:.4})");
    assert!(b < 0.2, "{b}");
}

/// Release-mode speed: `cargo test --release -p cdm-metrics --test mmd -- --nocapture`.
///
/// About 3.5 ns of CPU per pair on one core (so ≈ 15 ms and ≈ 0.25 s wall on two idle cores);
/// the bounds only catch gross regressions, since CI machines are shared.
#[test]
#[cfg_attr(debug_assertions, ignore = "timing is only meaningful in release")]
fn thousands_of_two_dimensional_points_take_well_under_a_second() {
    for n in [2000, 8000] {
        let (x, y) = (normal(10, n, 2, 0.0), normal(11, n, 2, 0.1));
        let start = std::time::Instant::now();
        let value = mmd2(&x, &y, 2, 0.03).unwrap();
        let elapsed = start.elapsed();
        eprintln!("MMD² n = m = {n}, 2-D: {value:.3e} in {elapsed:?}");
        assert!(elapsed.as_secs_f64() < if n == 2000 { 0.5 } else { 4.0 });
    }
}
