//! The vendored Datasaurus CSV and the dino generator.

use cdm_data::{Standardizer, Toy, dino};

#[test]
fn vendored_csv_has_the_canonical_142_rows() {
    let raw = dino::raw_points();
    assert_eq!((raw.len(), raw.dim()), (142, 2));
    assert_eq!(raw.row(0), &[55.3846, 97.1795]);
    let n = raw.len() as f64;
    let expected = [(54.263, 16.765), (47.832, 26.935)];
    for (j, (mean, sd)) in expected.into_iter().enumerate() {
        let col = raw.column(j);
        let m = col.iter().sum::<f64>() / n;
        let s = (col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!((m - mean).abs() < 5e-4, "column {j}: mean {m}");
        assert!((s - sd).abs() < 5e-4, "column {j}: sd {s}");
    }
}

#[test]
fn analytic_standardizer_matches_mapped_rows_plus_jitter() {
    // Population moments of the mapped rows, then the mapped jitter variance (4·0.15/d)².
    let mapped = Standardizer::fit(dino::raw_points()).unwrap();
    let s = dino::standardizer();
    for j in 0..2 {
        let d = dino::DIVISORS[j];
        let mean = 4.0 * (mapped.mean[j] / d - 1.0);
        let var = (4.0 * mapped.std[j] / d).powi(2) + (4.0 * dino::JITTER / d).powi(2);
        assert!((s.mean[j] - mean).abs() < 1e-12, "{s:?}");
        assert!((s.std[j] - var.sqrt()).abs() < 1e-12, "{s:?}");
    }
}

#[test]
fn standardised_dino_has_zero_mean_unit_std_and_undoes_to_the_rows() {
    let n = 20_000;
    let points = Toy::Dino.sample(n, 1);
    let nf = n as f64;
    for j in 0..2 {
        let col = points.column(j);
        let m = col.iter().sum::<f64>() / nf;
        let var = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / nf;
        let m4 = col.iter().map(|x| (x - m).powi(4)).sum::<f64>() / nf;
        assert!(m.abs() < 3.0 / nf.sqrt(), "column {j}: mean {m}");
        assert!((var - 1.0).abs() < 3.0 * ((m4 - var * var) / nf).sqrt(), "column {j}: var {var}");
    }
    // Undo step 4 and the affine map: every point is within 5 jitter σ of a Datasaurus row.
    let mapped = dino::standardizer().invert(&points).unwrap();
    let raw = dino::raw_points();
    for p in mapped.iter_rows() {
        let x = [(p[0] / 4.0 + 1.0) * 54.0, (p[1] / 4.0 + 1.0) * 48.0];
        let nearest = raw.iter_rows().map(|r| (r[0] - x[0]).hypot(r[1] - x[1])).fold(f64::INFINITY, f64::min);
        assert!(nearest < 5.0 * dino::JITTER, "{x:?} is {nearest} from the nearest row");
    }
}
