//! Spread over repeated runs and the interval of a difference between two models.
//!
//! A comparison of two training recipes measures each recipe on several training seeds; every
//! measurement already carries its own sample noise (its own sample draw, its own reference
//! draw), so the spread over seeds holds both the seed variance and the sample noise.
//!
//! | symbol | meaning |
//! |---|---|
//! | `x₁ … xₙ` | one recipe's measurements, one per training seed |
//! | `x̄`, `s` | their mean and sample standard deviation (`n − 1` in the denominator) |
//! | `Δ = x̄_a − x̄_b` | the difference of two recipes' means |
//! | `SE = √(s_a²/n_a + s_b²/n_b)` | its standard error |
//! | `ν` | the Welch–Satterthwaite degrees of freedom |
//!
//! ```text
//! ν = SE⁴ / ( (s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1) )
//! interval (1 − a):  Δ ± t_{1−a/2, ν} · SE
//! k = |Δ| / SE       ("resolved at k σ" when the interval excludes 0)
//! ```
//!
//! Welch's interval does not assume equal variances, which matters here: a recipe can be
//! more seed-sensitive than another.
//!
//! When the two recipes were measured in pairs that share their randomness (the same sampler
//! noise for measurement `i` of both), the paired interval uses the differences
//! `dᵢ = a_i − b_i` instead: shared noise cancels in them, so it is narrower whenever the pairs
//! are correlated, and it is still exact under the usual normal model.
//!
//! ```text
//! d̄ = mean(dᵢ),  SE = s_d / √n,  ν = n − 1,  interval:  d̄ ± t_{1−a/2, ν} · SE
//! ```

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::{Error, Result};

/// Mean and sample standard deviation of repeated measurements.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The mean `x̄`.
    pub mean: f64,
    /// The sample standard deviation `s` (0 for a single measurement).
    pub sd: f64,
    /// The number of measurements `n`.
    pub n: usize,
}

impl Spread {
    /// The spread of `values` (at least one, all finite).
    pub fn of(values: &[f64]) -> Result<Self> {
        if values.is_empty() {
            return Err(Error::invalid("values", "[]", "need at least one measurement"));
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid("values", v, "must be finite"));
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd =
            if n > 1 { (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        Ok(Self { mean, sd, n })
    }

    /// `s²/n`, the variance of the mean.
    fn mean_variance(&self) -> f64 {
        self.sd * self.sd / self.n as f64
    }
}

/// The difference `a − b` of two recipes' means with its Welch or paired interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// `Δ = x̄_a − x̄_b`.
    pub delta: f64,
    /// Its standard error.
    pub std_err: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub dof: f64,
    /// The interval's confidence level (0.95 for 95 %).
    pub level: f64,
    /// The interval's lower end.
    pub low: f64,
    /// The interval's upper end.
    pub high: f64,
}

impl Difference {
    /// Welch's interval at confidence `level` for `a.mean − b.mean`; both need two or more
    /// measurements.
    pub fn welch(a: &Spread, b: &Spread, level: f64) -> Result<Self> {
        if a.n < 2 || b.n < 2 {
            return Err(Error::invalid("n", a.n.min(b.n), "an interval needs two or more measurements per recipe"));
        }
        let (va, vb) = (a.mean_variance(), b.mean_variance());
        let var = va + vb;
        let dof = var * var / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
        Self::t_interval(a.mean - b.mean, var, dof, level)
    }

    /// The paired interval at confidence `level` for `mean(a) − mean(b)`, where `a[i]` and
    /// `b[i]` were measured on shared randomness; needs two or more pairs.
    pub fn paired(a: &[f64], b: &[f64], level: f64) -> Result<Self> {
        if a.len() != b.len() {
            return Err(Error::invalid("pairs", format!("{} and {}", a.len(), b.len()), "need as many a as b"));
        }
        let d = Spread::of(&a.iter().zip(b).map(|(x, y)| x - y).collect::<Vec<_>>())?;
        if d.n < 2 {
            return Err(Error::invalid("n", d.n, "an interval needs two or more pairs"));
        }
        Self::t_interval(d.mean, d.mean_variance(), (d.n - 1) as f64, level)
    }

    /// `delta ± t_{(1+level)/2, dof} · √var`.
    fn t_interval(delta: f64, var: f64, dof: f64, level: f64) -> Result<Self> {
        if !(level > 0.0 && level < 1.0) {
            return Err(Error::invalid("level", level, "must lie in (0, 1)"));
        }
        if var == 0.0 {
            // no spread observed (e.g. integer Picard rounds that agree across three seeds):
            // the standard error cannot be estimated, so neither can an interval
            return Ok(Self { delta, std_err: 0.0, dof: f64::NAN, level, low: f64::NEG_INFINITY, high: f64::INFINITY });
        }
        let t = student_t_quantile(0.5 + level / 2.0, dof)?;
        let std_err = var.sqrt();
        Ok(Self { delta, std_err, dof, level, low: delta - t * std_err, high: delta + t * std_err })
    }

    /// `|Δ| / SE`: how many standard errors the difference is from 0.
    pub fn sigmas(&self) -> f64 {
        if self.std_err == 0.0 {
            if self.delta == 0.0 { 0.0 } else { f64::INFINITY }
        } else {
            self.delta.abs() / self.std_err
        }
    }

    /// Whether the interval excludes 0.
    pub fn resolved(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }

    /// `"resolved at 4.2 σ"`, `"not resolved (1.1 σ)"`, or, when neither side varied,
    /// `"not testable (no spread on either side)"`.
    pub fn verdict(&self) -> String {
        if self.std_err == 0.0 {
            "not testable (no spread on either side)".into()
        } else if self.resolved() {
            format!("resolved at {:.1} σ", self.sigmas())
        } else {
            format!("not resolved ({:.1} σ)", self.sigmas())
        }
    }

    /// The smallest `|Δ|` this design resolves at `k` σ, given its standard error.
    pub fn resolvable_at(&self, k: f64) -> f64 {
        k * self.std_err
    }
}

/// The `p`-quantile of Student's t with `dof` degrees of freedom (`dof = ∞`: the normal).
pub fn student_t_quantile(p: f64, dof: f64) -> Result<f64> {
    if !(p > 0.0 && p < 1.0) {
        return Err(Error::invalid("p", p, "must lie in (0, 1)"));
    }
    if dof.is_nan() || dof <= 0.0 {
        return Err(Error::invalid("dof", dof, "must be positive"));
    }
    if dof > 1e7 {
        // t's quantiles are within 1e-6 of the normal's here (and its inversion stalls at ∞)
        return Ok(Normal::standard().inverse_cdf(p));
    }
    let t = StudentsT::new(0.0, 1.0, dof).map_err(|_| Error::invalid("dof", dof, "rejected by Student's t"))?;
    Ok(t.inverse_cdf(p))
}

#[cfg(test)]
mod tests {
    use cdm_core::NoiseSource;

    use super::*;

    #[test]
    fn spread_matches_the_textbook_sample_sd() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, Σ(x − 5)² = 32, s = √(32/7)
        let s = Spread::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(s.mean, 5.0);
        assert!((s.sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-15);
        assert_eq!(Spread::of(&[3.0]).unwrap().sd, 0.0);
        assert!(Spread::of(&[]).is_err());
        assert!(Spread::of(&[1.0, f64::NAN]).is_err());
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        // two-sided 95 % critical values: df 1 → 12.706, 2 → 4.303, 4 → 2.776, 30 → 2.042, ∞ → 1.960
        for (dof, t) in [(1.0, 12.7062), (2.0, 4.3027), (4.0, 2.7764), (30.0, 2.0423), (f64::INFINITY, 1.9600)] {
            let q = student_t_quantile(0.975, dof).unwrap();
            assert!((q - t).abs() < 1e-3, "df {dof}: {q} vs {t}");
        }
        assert!(student_t_quantile(1.0, 3.0).is_err());
        assert!(student_t_quantile(0.5, 0.0).is_err());
    }

    /// Three seeds each of 37 and 36 rounds: a difference of 1 with no measured spread is
    /// no evidence (the seeds' spread is unknown, not zero), so no interval and no verdict.
    #[test]
    fn no_spread_on_either_side_is_not_testable() {
        let (a, b) = (Spread::of(&[37.0; 3]).unwrap(), Spread::of(&[36.0; 3]).unwrap());
        let d = Difference::welch(&a, &b, 0.95).unwrap();
        assert_eq!(d.delta, 1.0);
        assert!(!d.resolved());
        assert_eq!(d.verdict(), "not testable (no spread on either side)");
        assert!(d.low.is_infinite() && d.high.is_infinite());
    }

    #[test]
    fn welch_with_equal_spreads_has_the_pooled_dof() {
        // equal n and s: ν = 2(n − 1), SE = s√(2/n)
        let a = Spread { mean: 1.0, sd: 0.2, n: 5 };
        let b = Spread { mean: 0.5, sd: 0.2, n: 5 };
        let d = Difference::welch(&a, &b, 0.95).unwrap();
        assert!((d.dof - 8.0).abs() < 1e-12);
        assert!((d.std_err - 0.2 * (2.0f64 / 5.0).sqrt()).abs() < 1e-15);
        let t = student_t_quantile(0.975, 8.0).unwrap();
        assert!((d.high - d.low - 2.0 * t * d.std_err).abs() < 1e-12);
        assert!(d.resolved());
        assert!(d.verdict().starts_with("resolved at 4.0 σ"), "{}", d.verdict());
        assert!(Difference::welch(&Spread { n: 1, ..a }, &b, 0.95).is_err());
    }

    /// Statistical check: over 4000 simulated comparisons of two equal recipes with unequal
    /// spreads (n = 3 and 4), the 95 % interval covers the true difference 0 at a rate within
    /// 4 binomial SDs (4·√(0.95·0.05/4000) ≈ 0.014) of 0.95.
    #[test]
    fn the_interval_covers_the_truth_at_its_level() {
        let noise = NoiseSource::new(11);
        let trials = 4000;
        let mut covered = 0;
        for i in 0..trials {
            let draws = noise.fork_index(i).streams(0, 1).normal_f64(7);
            let a: Vec<f64> = draws[..3].iter().map(|z| 0.3 * z).collect();
            let b: Vec<f64> = draws[3..].iter().map(|z| 1.0 * z).collect();
            let d = Difference::welch(&Spread::of(&a).unwrap(), &Spread::of(&b).unwrap(), 0.95).unwrap();
            covered += usize::from(d.low <= 0.0 && d.high >= 0.0);
        }
        let rate = covered as f64 / trials as f64;
        assert!((rate - 0.95).abs() < 0.014, "coverage {rate}");
    }

    /// d = (0.5, 0.4, 0.6, 0.5): d̄ = 0.5, s_d = √(0.02/3), SE = s_d/2, t₀.₉₇₅,₃ = 3.1824;
    /// the pairs share a large common term, so Welch's interval on the same numbers is far wider.
    #[test]
    fn paired_interval_is_the_t_interval_of_the_differences() {
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [0.5, 1.6, 2.4, 3.5]);
        let d = Difference::paired(&a, &b, 0.95).unwrap();
        let se = (0.02f64 / 3.0).sqrt() / 2.0;
        assert!((d.delta - 0.5).abs() < 1e-12);
        assert!((d.std_err - se).abs() < 1e-12);
        assert_eq!(d.dof, 3.0);
        assert!((d.high - 0.5 - 3.182446 * se).abs() < 1e-5, "{d:?}");
        assert!(d.resolved());
        let welch = Difference::welch(&Spread::of(&a).unwrap(), &Spread::of(&b).unwrap(), 0.95).unwrap();
        assert!(!welch.resolved() && welch.std_err > 5.0 * d.std_err, "{welch:?}");
        assert!(Difference::paired(&a, &b[..3], 0.95).is_err());
        assert!(Difference::paired(&a[..1], &b[..1], 0.95).is_err());
    }
}
