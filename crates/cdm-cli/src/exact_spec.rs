//! Exact densities described in a small JSON file, for `cdm nll --density` and
//! `cdm noise-level --density`.
//!
//! ```json
//! {"components": [
//!   {"weight": 0.5, "mean": [-5.0], "variance": [1.0]},
//!   {"weight": 0.5, "mean": [5.0], "covariance": [[1.0]]}
//! ]}
//! ```
//!
//! Each component has a `mean`, an optional `weight` (default 1; weights are normalised) and
//! exactly one of `variance` (per-coordinate variances) or `covariance` (a d×d matrix). A
//! mixture needs diagonal covariances; a single component may have any symmetric
//! positive-definite covariance. The result is both a [`Denoiser`] (its exact ε̂*) and an
//! [`ExactDensity`] (its exact log p_α), plus the Gaussian base of the ITD estimator with the
//! density's own covariance (exact moments, no sampling).

use std::path::Path;

use anyhow::{Context, Result, bail};
use cdm_core::{Denoiser, ExactDensity, Gaussian, GaussianBase, GaussianMixture, MixtureComponent};
use serde::Deserialize;

/// The JSON file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DensitySpec {
    /// The mixture components (at least one).
    pub components: Vec<ComponentSpec>,
}

/// One Gaussian component.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentSpec {
    /// Mixture weight (default 1; normalised over the components).
    #[serde(default = "one")]
    pub weight: f64,
    /// Mean μ (length d).
    pub mean: Vec<f64>,
    /// Per-coordinate variances (length d).
    pub variance: Option<Vec<f64>>,
    /// Full covariance, d rows of d values.
    pub covariance: Option<Vec<Vec<f64>>>,
}

fn one() -> f64 {
    1.0
}

/// A density with both an exact denoiser and an exact log-density.
pub trait ExactModel {
    /// The exact ε̂*.
    fn denoiser(&self) -> &dyn Denoiser;
    /// The exact log p_α.
    fn density(&self) -> &dyn ExactDensity;
}

impl<T: Denoiser + ExactDensity> ExactModel for T {
    fn denoiser(&self) -> &dyn Denoiser {
        self
    }
    fn density(&self) -> &dyn ExactDensity {
        self
    }
}

/// A loaded density and the ITD base matching its covariance.
pub struct LoadedDensity {
    /// The density.
    pub model: Box<dyn ExactModel>,
    /// The Gaussian with the density's per-coordinate variances (mixtures) or eigenvalues
    /// (a single full-covariance Gaussian).
    pub base: GaussianBase,
    /// Dimension d.
    pub dim: usize,
    /// Number of components.
    pub components: usize,
}

/// Reads and validates a density spec; errors name the file and the field.
pub fn load_density(path: &Path) -> Result<LoadedDensity> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading density {}", path.display()))?;
    let spec: DensitySpec =
        serde_json::from_str(&text).with_context(|| format!("parsing density {}", path.display()))?;
    build(&spec).with_context(|| format!("density {}", path.display()))
}

/// Builds the density of a parsed spec.
pub fn build(spec: &DensitySpec) -> Result<LoadedDensity> {
    let Some(first) = spec.components.first() else {
        bail!("components: need at least one component");
    };
    let dim = first.mean.len();
    if dim == 0 {
        bail!("components[0].mean: must have at least one value");
    }
    // Per component: Ok(variances) if diagonal, Err(row-major covariance) if not.
    let mut shapes: Vec<std::result::Result<Vec<f64>, Vec<f64>>> = Vec::new();
    for (k, c) in spec.components.iter().enumerate() {
        let at = |field: &str| format!("components[{k}].{field}");
        if c.mean.len() != dim {
            bail!("{}: expected {dim} values (the dimension of components[0]), got {}", at("mean"), c.mean.len());
        }
        if let Some(m) = c.mean.iter().find(|m| !m.is_finite()) {
            bail!("{}: {m} is not finite", at("mean"));
        }
        if !(c.weight > 0.0 && c.weight.is_finite()) {
            bail!("{}: must be positive and finite (got {})", at("weight"), c.weight);
        }
        let shape = match (&c.variance, &c.covariance) {
            (Some(_), Some(_)) => bail!("components[{k}]: give `variance` or `covariance`, not both"),
            (None, None) => bail!("components[{k}]: missing `variance` (d values) or `covariance` (d×d)"),
            (Some(v), None) => {
                if v.len() != dim {
                    bail!("{}: expected {dim} values, got {}", at("variance"), v.len());
                }
                Ok(v.clone())
            }
            (None, Some(rows)) => {
                if rows.len() != dim || rows.iter().any(|r| r.len() != dim) {
                    let lens: Vec<usize> = rows.iter().map(Vec::len).collect();
                    bail!("{}: expected {dim} rows of {dim} values, got rows of lengths {lens:?}", at("covariance"));
                }
                let diagonal = (0..dim).all(|i| (0..dim).all(|j| i == j || rows[i][j] == 0.0));
                if diagonal { Ok((0..dim).map(|i| rows[i][i]).collect()) } else { Err(rows.concat()) }
            }
        };
        let values = match &shape {
            Ok(v) | Err(v) => v,
        };
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            bail!("{}: {v} is not finite", at(if c.variance.is_some() { "variance" } else { "covariance" }));
        }
        if let Ok(v) = &shape
            && let Some(bad) = v.iter().find(|v| **v <= 0.0)
        {
            let field = if c.variance.is_some() { "variance" } else { "covariance (diagonal)" };
            bail!("{}: variances must be positive (got {bad})", at(field));
        }
        shapes.push(shape);
    }
    let components = spec.components.len();
    if let Some(k) = shapes.iter().position(|s| s.is_err())
        && components > 1
    {
        bail!(
            "components[{k}].covariance: a mixture of {components} components supports only diagonal covariances \
             (use `variance`, or a single component for a full covariance)"
        );
    }
    if let [Err(cov)] = shapes.as_slice() {
        let g = Gaussian::new(first.mean.clone(), cov.clone()).map_err(|e| match e {
            cdm_core::Error::NotPositiveDefinite { .. } => {
                anyhow::anyhow!("components[0].covariance: not symmetric positive definite")
            }
            other => anyhow::Error::new(other).context("components[0].covariance"),
        })?;
        let base = GaussianBase::from_log_eigenvalues(g.eigenvalues().iter().map(|l| l.ln()).collect())?;
        return Ok(LoadedDensity { model: Box::new(g), base, dim, components });
    }
    let parts: Vec<MixtureComponent> = spec
        .components
        .iter()
        .zip(shapes)
        .map(|(c, s)| MixtureComponent { weight: c.weight, mean: c.mean.clone(), variance: s.unwrap_or_default() })
        .collect();
    // exact per-coordinate variance of the mixture: Σ π_k (v_k + μ_k²) − (Σ π_k μ_k)², with the
    // weights normalised relative to the largest (finite weights may overflow when summed)
    let largest = parts.iter().map(|c| c.weight).fold(0.0, f64::max);
    let total: f64 = parts.iter().map(|c| c.weight / largest).sum();
    let mut variances = Vec::with_capacity(dim);
    for j in 0..dim {
        let share = |c: &MixtureComponent| c.weight / largest / total;
        let mean: f64 = parts.iter().map(|c| share(c) * c.mean[j]).sum();
        let second: f64 = parts.iter().map(|c| share(c) * (c.variance[j] + c.mean[j] * c.mean[j])).sum();
        let variance = second - mean * mean;
        if !variance.is_finite() {
            bail!("components: the mixture's variance in coordinate {j} overflows (means or variances too large)");
        }
        variances.push(variance.max(f64::MIN_POSITIVE));
    }
    let mixture = GaussianMixture::new(parts).context("components")?;
    let base = GaussianBase::from_log_eigenvalues(variances.iter().map(|v| v.ln()).collect())?;
    Ok(LoadedDensity { model: Box::new(mixture), base, dim, components })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<LoadedDensity> {
        build(&serde_json::from_str(json)?)
    }

    fn message(json: &str) -> String {
        format!("{:#}", parse(json).err().expect("an error"))
    }

    #[test]
    fn two_mode_spec_is_the_papers_mixture() {
        let d = parse(
            r#"{"components": [{"weight": 0.5, "mean": [-5], "variance": [1]},
                               {"weight": 0.5, "mean": [5], "covariance": [[1]]}]}"#,
        )
        .unwrap();
        assert_eq!((d.dim, d.components), (1, 2));
        assert!((-d.model.density().log_prob(&[0.0], f64::INFINITY) - 13.41894).abs() < 1e-5);
        assert!((d.base.log_eigenvalues()[0] - 26f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn full_covariance_single_component_is_a_gaussian() {
        let d = parse(r#"{"components": [{"mean": [0, 0], "covariance": [[2, 0.5], [0.5, 1]]}]}"#).unwrap();
        let exact = Gaussian::new(vec![0.0, 0.0], vec![2.0, 0.5, 0.5, 1.0]).unwrap();
        let z = [0.3, -0.4];
        assert!((d.model.density().log_prob(&z, 1.0) - exact.log_prob(&z, 1.0)).abs() < 1e-12);
    }

    #[test]
    fn bad_specs_name_the_field() {
        assert!(message(r#"{"components": []}"#).contains("at least one"));
        assert!(message(r#"{"components": [{"mean": [0, 1], "variance": [1]}]}"#).contains("components[0].variance"));
        assert!(
            message(r#"{"components": [{"mean": [0], "variance": [1]}, {"mean": [1, 2], "variance": [1, 1]}]}"#)
                .contains("components[1].mean")
        );
        assert!(message(r#"{"components": [{"mean": [0], "variance": [-1]}]}"#).contains("positive"));
        assert!(message(r#"{"components": [{"mean": [0], "variance": [1], "weight": 0}]}"#).contains("weight"));
        let two_full = r#"{"components": [{"mean": [0, 0], "covariance": [[1, 0.5], [0.5, 1]]},
                                          {"mean": [1, 1], "variance": [1, 1]}]}"#;
        assert!(message(two_full).contains("only diagonal"));
        assert!(
            message(r#"{"components": [{"mean": [0, 0], "covariance": [[1, 2], [2, 1]]}]}"#)
                .contains("positive definite")
        );
        assert!(message(r#"{"components": [{"mean": [0], "variance": [1], "covariance": [[1]]}]}"#).contains("both"));
        assert!(serde_json::from_str::<DensitySpec>(r#"{"components": [{"means": [0]}]}"#).is_err());
        let far = r#"{"components": [{"mean": [1e200], "variance": [1]}, {"mean": [-1e200], "variance": [1]}]}"#;
        assert!(message(far).contains("coordinate 0 overflows"), "{}", message(far));
    }

    #[test]
    fn weights_whose_sum_overflows_are_the_same_mixture() {
        let huge = parse(
            r#"{"components": [{"weight": 1e308, "mean": [-5], "variance": [1]},
                                            {"weight": 1e308, "mean": [5], "variance": [1]}]}"#,
        )
        .unwrap();
        // 0.5·N(−5, 1) + 0.5·N(5, 1): variance 26, −log p(0) = 13.41894
        assert!((huge.base.log_eigenvalues()[0] - 26f64.ln()).abs() < 1e-12);
        assert!((-huge.model.density().log_prob(&[0.0], f64::INFINITY) - 13.41894).abs() < 1e-5);
    }
}
