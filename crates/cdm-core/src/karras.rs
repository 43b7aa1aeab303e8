//! The EDM (Karras et al. 2022) noise-level grid.
//!
//! ```text
//! σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,   i = 0…N−1,   then σ_N = 0
//! ```
//!
//! with defaults ρ = 7, σ_min = 0.002, σ_max = 80 (EDM, *Elucidating the Design Space of
//! Diffusion-Based Generative Models*, arXiv:2206.00364, eq. 5). The EDM σ is the
//! variance-exploding view of the log-SNR: σ = e^{−α/2} ([`crate::log_snr::sigma_edm`]).

use crate::{Error, Result};

/// Parameters of the ρ-schedule of EDM noise levels.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KarrasSigmas {
    /// Smallest noise level σ_min.
    pub sigma_min: f64,
    /// Largest noise level σ_max.
    pub sigma_max: f64,
    /// Curvature ρ.
    pub rho: f64,
}

impl Default for KarrasSigmas {
    /// EDM's defaults: σ ∈ [0.002, 80], ρ = 7.
    fn default() -> Self {
        Self { sigma_min: 0.002, sigma_max: 80.0, rho: 7.0 }
    }
}

impl KarrasSigmas {
    /// The `n` decreasing levels σ_0 = σ_max … σ_{n−1} = σ_min (the trailing 0 is not included).
    pub fn sigmas(&self, n: usize) -> Result<Vec<f64>> {
        if n == 0 {
            return Err(Error::invalid("steps", n, "must be at least 1"));
        }
        if !(self.sigma_min > 0.0 && self.sigma_min < self.sigma_max && self.sigma_max.is_finite()) {
            return Err(Error::invalid("sigma_min", self.sigma_min, "must satisfy 0 < sigma_min < sigma_max < inf"));
        }
        if !(self.rho > 0.0 && self.rho.is_finite()) {
            return Err(Error::invalid("rho", self.rho, "must be positive"));
        }
        if n == 1 {
            return Ok(vec![self.sigma_max]);
        }
        let (lo, hi) = (self.sigma_min.powf(1.0 / self.rho), self.sigma_max.powf(1.0 / self.rho));
        Ok((0..n).map(|i| (hi + i as f64 / (n - 1) as f64 * (lo - hi)).powf(self.rho)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighteen_levels_span_eighty_to_two_thousandths() {
        let s = KarrasSigmas::default().sigmas(18).unwrap();
        assert_eq!(s.len(), 18);
        assert!((s[0] - 80.0).abs() < 1e-12);
        assert!((s[17] - 0.002).abs() < 1e-15);
        assert!(s.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        assert!(KarrasSigmas::default().sigmas(0).is_err());
        let bad = KarrasSigmas { sigma_min: 90.0, ..Default::default() };
        assert!(matches!(bad.sigmas(10), Err(Error::InvalidArgument { field: "sigma_min", .. })));
        let bad = KarrasSigmas { rho: 0.0, ..Default::default() };
        assert!(matches!(bad.sigmas(10), Err(Error::InvalidArgument { field: "rho", .. })));
    }
}
