//! Numerically stable scalar functions of the log-SNR.
//!
//! The whole workspace speaks variance-preserving log-SNR: a clean `x` noised at log-SNR `α` is
//!
//! ```text
//! z = √σ(α)·x + √σ(−α)·ε,      ε ~ N(0, I),      σ(u) = 1/(1 + e^{−u})
//! ```
//!
//! so large `α` means little noise. Noising an already noised point again composes two channels
//! into one (Wu et al. 2024; `docs/math.md` §7.1):
//!
//! ```text
//! α′ = logit(σ(α)·σ(ζ)) = −LSE(−α, −ζ, −α−ζ)          (always α′ < min(α, ζ))
//! κ  = √(σ(−α)/σ(−α′)),   log κ = ½(softplus(α′) − softplus(α))
//! ```
//!
//! and the optimal denoiser of the ζ-noised density is `ε̂_ζ(u, α) = κ·ε̂(u, α′)`.
//!
//! | name here | symbol | meaning |
//! |---|---|---|
//! | `log_snr`, `alpha` | α | log signal-to-noise ratio of the channel |
//! | `zeta` | ζ | log-SNR at which the contrastive negative was noised |
//! | `signal_coef` | √σ(α) | multiplies the clean signal |
//! | `noise_coef` | √σ(−α) | multiplies the Gaussian noise |
//! | `sigma_edm` | σ_E = e^{−α/2} | EDM (variance-exploding) noise level |
//!
//! Every function here is written so that no intermediate overflows or cancels in `f64`, and the
//! same forms stay finite when evaluated in `f32` up to |α| = 40 (no `1 − sigmoid`, no
//! `logit(sigmoid(·))`).

/// softplus(u) = log(1 + eᵘ), without overflow for large |u|.
pub fn softplus(u: f64) -> f64 {
    u.max(0.0) + (-u.abs()).exp().ln_1p()
}

/// The logistic sigmoid σ(u) = 1/(1 + e^{−u}).
pub fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

/// log σ(u) = −softplus(−u).
pub fn log_sigmoid(u: f64) -> f64 {
    -softplus(-u)
}

/// logit(p) = log(p / (1 − p)) for p in (0, 1).
pub fn logit(p: f64) -> f64 {
    p.ln() - (-p).ln_1p()
}

/// √σ(α): the coefficient of the clean signal at log-SNR α.
pub fn signal_coef(log_snr: f64) -> f64 {
    (-0.5 * softplus(-log_snr)).exp()
}

/// √σ(−α): the coefficient of the noise at log-SNR α.
pub fn noise_coef(log_snr: f64) -> f64 {
    (-0.5 * softplus(log_snr)).exp()
}

/// Log-sum-exp of a few values, shifted by their maximum.
pub fn log_sum_exp(values: &[f64]) -> f64 {
    let m = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m.is_infinite() {
        return m;
    }
    m + values.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// α′ = −LSE(−α, −ζ, −α−ζ): the log-SNR of the clean data after noising at ζ, then at α.
///
/// `ζ = +∞` (no first noising) gives α′ = α.
pub fn alpha_prime(log_snr: f64, zeta: f64) -> f64 {
    if zeta == f64::INFINITY {
        return log_snr;
    }
    -log_sum_exp(&[-log_snr, -zeta, -log_snr - zeta])
}

/// log κ(α, ζ) = ½(softplus(α′) − softplus(α)) ≤ 0.
pub fn log_kappa(log_snr: f64, zeta: f64) -> f64 {
    0.5 * (softplus(alpha_prime(log_snr, zeta)) - softplus(log_snr))
}

/// κ(α, ζ) = √(σ(−α)/σ(−α′)): the factor on ε̂ in the induced denoiser of the ζ-noised density.
pub fn kappa(log_snr: f64, zeta: f64) -> f64 {
    log_kappa(log_snr, zeta).exp()
}

/// EDM noise level σ_E = e^{−α/2} of log-SNR α.
pub fn sigma_edm(log_snr: f64) -> f64 {
    (-0.5 * log_snr).exp()
}

/// log-SNR α = −2·ln σ_E of an EDM noise level.
pub fn log_snr_of_sigma_edm(sigma: f64) -> f64 {
    -2.0 * sigma.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_prime_and_kappa_match_the_paper_table() {
        // docs/math.md §7.1 example values.
        let cases = [(10.0, 6.0, 5.982, 0.134), (16.0, 10.5, 10.496, 0.0638), (10.0, 10.5, 9.526, 0.789)];
        for (a, z, ap, k) in cases {
            assert!((alpha_prime(a, z) - ap).abs() < 5e-4, "α′({a},{z}) = {}", alpha_prime(a, z));
            assert!((kappa(a, z) - k).abs() / k < 5e-3, "κ({a},{z}) = {}", kappa(a, z));
        }
    }

    #[test]
    fn alpha_prime_equals_the_channel_composition() {
        for &(a, z) in &[(-3.0, 2.0), (0.5, -1.0), (4.0, 9.0), (-12.0, -12.0)] {
            let direct = logit(sigmoid(a) * sigmoid(z));
            assert!((alpha_prime(a, z) - direct).abs() < 1e-10);
            let k2 = sigmoid(-a) / sigmoid(-alpha_prime(a, z));
            assert!((kappa(a, z).powi(2) - k2).abs() < 1e-12);
        }
        assert_eq!(alpha_prime(3.0, f64::INFINITY), 3.0);
    }

    #[test]
    fn stable_forms_stay_finite_in_f32_up_to_forty() {
        for a in [-40.0, -20.0, 0.0, 16.6, 20.0, 40.0] {
            for z in [-10.0, 6.0, 15.0, 40.0] {
                let ap = alpha_prime(a, z) as f32;
                let k = kappa(a, z) as f32;
                assert!(ap.is_finite() && k.is_finite() && k > 0.0 && k <= 1.0, "α={a} ζ={z}");
                assert!(ap < (a as f32).min(z as f32) + 1e-3);
            }
            assert!(signal_coef(a).is_finite() && noise_coef(a).is_finite());
            let total = signal_coef(a).powi(2) + noise_coef(a).powi(2);
            assert!((total - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn edm_sigma_round_trips() {
        assert!((log_snr_of_sigma_edm(0.002) - 12.429).abs() < 1e-3);
        assert!((log_snr_of_sigma_edm(80.0) + 8.764).abs() < 1e-3);
        assert!((sigma_edm(log_snr_of_sigma_edm(3.7)) - 3.7).abs() < 1e-12);
    }
}
