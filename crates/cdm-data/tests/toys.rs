//! Sample statistics of every toy, with tolerances of 3 standard errors unless stated.

use std::f64::consts::PI;

use cdm_data::{PointCloud, Toy};

const N: usize = 20_000;

/// Mean, population variance and the standard error of that variance, (μ₄ − σ⁴)/n.
fn moments(x: &[f64]) -> (f64, f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n;
    let m4 = x.iter().map(|v| (v - m).powi(4)).sum::<f64>() / n;
    (m, var, ((m4 - var * var) / n).sqrt())
}

/// Asserts that the sample mean of `x` is within 3 standard errors of `expected`.
fn assert_mean(what: &str, x: &[f64], expected: f64) {
    let (m, var, _) = moments(x);
    let se = (var / x.len() as f64).sqrt();
    assert!((m - expected).abs() < 3.0 * se, "{what}: mean {m}, expected {expected} ± {}", 3.0 * se);
}

/// Asserts that a count out of `n` with probability `p` is within 4 binomial standard deviations.
fn assert_count(what: &str, count: usize, n: usize, p: f64) {
    let expected = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    assert!((count as f64 - expected).abs() < 4.0 * sd, "{what}: {count} of {n}, expected {expected}");
}

fn radii(points: &PointCloud) -> Vec<f64> {
    points.iter_rows().map(|p| p[0].hypot(p[1])).collect()
}

/// Groups points by the nearest of `radii`; checks each is within 5σ, the group shares are equal
/// and each group's mean radius is E|c + σN| ≈ r + σ²/(2r).
fn assert_rings(toy: Toy, ring_radii: &[f64], sigma: f64) {
    let points = toy.sample(N, 0);
    let mut groups = vec![Vec::new(); ring_radii.len()];
    for r in radii(&points) {
        let k = (0..ring_radii.len()).min_by(|&a, &b| (r - ring_radii[a]).abs().total_cmp(&(r - ring_radii[b]).abs()));
        let k = k.unwrap();
        assert!((r - ring_radii[k]).abs() < 5.0 * sigma, "{toy}: radius {r}");
        groups[k].push(r);
    }
    for (k, g) in groups.iter().enumerate() {
        assert_count(&format!("{toy} ring {k}"), g.len(), N, 1.0 / ring_radii.len() as f64);
        let r = ring_radii[k];
        assert_mean(&format!("{toy} ring {k} radius"), g, r + sigma * sigma / (2.0 * r));
    }
}

#[test]
fn every_toy_is_seeded_finite_and_independent_of_n() {
    for &toy in Toy::all() {
        let a = toy.sample(100, 7);
        assert_eq!((a.len(), a.dim()), (100, toy.dim()));
        assert_eq!(a, toy.sample(100, 7), "{toy}: same seed, same points");
        assert_ne!(a, toy.sample(100, 8), "{toy}: another seed, other points");
        assert_eq!(toy.sample(10, 7).row(3), a.row(3), "{toy}: point 3 depends on n");
        assert_eq!(toy.sample(10, 7).data(), &a.data()[..10 * toy.dim()]);
        assert!(a.data().iter().all(|v| v.is_finite()));
        assert!(toy.sample(0, 7).is_empty());
    }
    assert_ne!(Toy::Moons.sample(5, 1).data(), Toy::Circles.sample(5, 1).data(), "toys draw from their own domains");
}

#[test]
fn moons_lie_on_two_unit_arcs() {
    let points = Toy::Moons.sample(N, 0);
    for p in points.iter_rows() {
        let q = [(p[0] + 1.0) / 2.0, (p[1] + 0.2) / 2.0];
        let outer = q[0].hypot(q[1]) - 1.0;
        let inner = (q[0] - 1.0).hypot(q[1] - 0.5) - 1.0;
        assert!(outer.abs().min(inner.abs()) < 5.0 * 0.1, "{p:?}");
    }
    // E = 2·(0.5, 0.25) + (−1, −0.2): the arc means are (0, 2/π) and (1, 0.5 − 2/π).
    assert_mean("moons x", &points.column(0), 0.0);
    assert_mean("moons y", &points.column(1), 0.3);
}

#[test]
fn circles_have_radii_3_and_1_5() {
    assert_rings(Toy::Circles, &[3.0, 1.5], 3.0 * 0.08);
}

#[test]
fn rings_have_radii_3_2_25_1_5_0_75() {
    assert_rings(Toy::Rings, &[3.0, 2.25, 1.5, 0.75], 0.08);
}

#[test]
fn swiss_roll_moments_and_extent() {
    let points = Toy::SwissRoll.sample(N, 0);
    // t uniform on [1.5π, 4.5π]: E[t cos t] = 6π/3π = 2, E[t sin t] = 2/3π; both divided by 5.
    assert_mean("swiss roll x", &points.column(0), 0.4);
    assert_mean("swiss roll y", &points.column(1), 2.0 / (15.0 * PI));
    for r in radii(&points) {
        assert!((0.3 * PI - 1.0..0.9 * PI + 1.0).contains(&r), "radius {r}");
    }
}

#[test]
fn eight_gaussians_cover_all_modes_equally() {
    let sigma = 0.5 / 1.414;
    let centres: Vec<[f64; 2]> = (0..8)
        .map(|k| [4.0 * (k as f64 * PI / 4.0).cos() / 1.414, 4.0 * (k as f64 * PI / 4.0).sin() / 1.414])
        .collect();
    let mut counts = [0usize; 8];
    for p in Toy::EightGaussians.sample(N, 0).iter_rows() {
        let dist = |c: &[f64; 2]| (p[0] - c[0]).hypot(p[1] - c[1]);
        let k = (0..8).min_by(|&a, &b| dist(&centres[a]).total_cmp(&dist(&centres[b]))).unwrap();
        // A 2-D radius beyond 5σ has probability e^(−12.5) ≈ 4e-6 (beyond 4σ: e^(−8), ~7 of 20 000).
        assert!(dist(&centres[k]) < 5.0 * sigma, "{p:?}");
        counts[k] += 1;
    }
    for (k, &c) in counts.iter().enumerate() {
        assert_count(&format!("mode {k}"), c, N, 1.0 / 8.0);
    }
}

#[test]
fn checkerboard_fills_only_the_8_even_cells() {
    let mut counts = std::collections::HashMap::new();
    for p in Toy::Checkerboard.sample(N, 0).iter_rows() {
        assert!(p.iter().all(|v| (-4.0..4.0).contains(v)), "{p:?}");
        let (i, j) = ((p[0] / 2.0).floor() as i64, (p[1] / 2.0).floor() as i64);
        assert_eq!((i + j).rem_euclid(2), 0, "{p:?} is in an empty cell");
        *counts.entry((i, j)).or_insert(0usize) += 1;
    }
    assert_eq!(counts.len(), 8);
    for (cell, &c) in &counts {
        assert_count(&format!("cell {cell:?}"), c, N, 1.0 / 8.0);
    }
}

#[test]
fn pinwheel_is_centred_with_known_second_moment() {
    let points = Toy::Pinwheel.sample(N, 0);
    assert_mean("pinwheel x", &points.column(0), 0.0);
    assert_mean("pinwheel y", &points.column(1), 0.0);
    // |p|² = 4(r² + s²): E = 4(1 + 0.3² + 0.1²) = 4.4.
    let sq: Vec<f64> = points.iter_rows().map(|p| p[0] * p[0] + p[1] * p[1]).collect();
    assert_mean("pinwheel |p|²", &sq, 4.4);
    // Undo the bend with r ≈ |p|/2: the angle is then 2πk/5 + atan(s/r), with E|s/r| ≈ 0.08·E[1/r].
    let arm = 2.0 * PI / 5.0;
    let offsets: Vec<f64> = points
        .iter_rows()
        .map(|p| {
            let phi = p[1].atan2(p[0]) - 0.25 * (p[0].hypot(p[1]) / 2.0).exp();
            let d = phi.rem_euclid(arm);
            d.min(arm - d)
        })
        .collect();
    let (mean_offset, _, _) = moments(&offsets);
    assert!(mean_offset < 0.1, "points are {mean_offset} rad off the arms on average");
}

#[test]
fn two_spirals_are_symmetric_with_known_second_moment() {
    let points = Toy::TwoSpirals.sample(N, 0);
    assert_mean("spirals x", &points.column(0), 0.0);
    assert_mean("spirals y", &points.column(1), 0.0);
    // u = 3π√U has density 2u/9π² on [0, 3π]: E u² = 9π²/2, E[u cos u] = −4/3π,
    // E[u sin u] = 2(9π² − 4)/9π²; the offsets are 0.5U (mean 1/4, second moment 1/12).
    let pi2 = PI * PI;
    let d2 = 4.5 * pi2 + 2.0 / 12.0 + 0.5 * 4.0 / (3.0 * PI) + 0.5 * 2.0 * (9.0 * pi2 - 4.0) / (9.0 * pi2);
    let sq: Vec<f64> = points.iter_rows().map(|p| p[0] * p[0] + p[1] * p[1]).collect();
    assert_mean("spirals |p|²", &sq, d2 / 9.0 + 2.0 * 0.01);
}

#[test]
fn gmm1d_has_two_equal_modes_at_plus_minus_5() {
    let points = Toy::TwoModes1d.sample(N, 0);
    assert_eq!(points.dim(), 1);
    let x = points.data();
    let (m, var, se_var) = moments(x);
    assert!(m.abs() < 3.0 * (var / N as f64).sqrt(), "mean {m}");
    assert!((var - 26.0).abs() < 3.0 * se_var, "var {var} ± {se_var}");
    let positive = x.iter().filter(|v| **v > 0.0).count();
    assert_count("positive mode", positive, N, 0.5);
    let upper: Vec<f64> = x.iter().copied().filter(|v| *v > 0.0).collect();
    assert_mean("upper mode", &upper, 5.0);
}
