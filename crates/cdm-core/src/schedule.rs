//! Discrete DDPM noise schedules as views of the log-SNR.
//!
//! A schedule of `T` training timesteps `t = 0…T−1` (0 = least noise) is stored as f64 tables:
//!
//! ```text
//! linear (Ho et al. 2020):   β_t = β_0 + (β_{T−1} − β_0)·t/(T−1)
//! scaled linear (latent diffusion, diffusers `scaled_linear`):
//!                            β_t = (√β_0 + (√β_{T−1} − √β_0)·t/(T−1))²
//! cosine (Nichol & Dhariwal 2021, s = 0.008):
//!                            ᾱ(u) = cos²((u/T + s)/(1 + s)·π/2) / cos²(s/(1 + s)·π/2),
//!                            β_t = min(1 − ᾱ(t+1)/ᾱ(t), 0.999)
//! ᾱ_t = ∏_{s≤t} (1 − β_s)      α_t = logit(ᾱ_t)   (the log-SNR, so σ(α_t) = ᾱ_t)
//! ```
//!
//! With the DDPM defaults (T = 1000, β ∈ [1e-4, 0.02]) ᾱ_0 = 0.9999, ᾱ_999 = 4.0358e-5,
//! α_0 = 9.2102 and α_999 = −10.1177.
//!
//! **Continuous time.** [`DiscreteSchedule::log_snr`] interpolates α linearly between integer
//! timesteps, and [`DiscreteSchedule::timestep`] with [`TimestepInverse::Exact`] is its exact
//! inverse (binary search plus interpolation), so `t(α(t)) = t`. Outside `[α_{T−1}, α_0]` the
//! timestep saturates at `T−1` or `0`. [`TimestepInverse::Official`] reproduces the mapping of
//! the authors' code (`docs/math.md` §3.2): for the linear schedule the nearest point on a 10×
//! finer grid of β/10, for the cosine schedule the closed-form arccos inverse.
//!
//! | name here | symbol |
//! |---|---|
//! | `betas` | β_t |
//! | `alpha_bar` | ᾱ_t |
//! | `log_snrs` | α_t = logit(ᾱ_t) |

use crate::log_snr::sigmoid;
use crate::{Error, Result};

/// The family a [`DiscreteSchedule`] was built from.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BetaSchedule {
    /// Linearly spaced β from `beta_start` to `beta_end`, inclusive.
    Linear {
        /// β_0.
        beta_start: f64,
        /// β_{T−1}.
        beta_end: f64,
    },
    /// β whose square roots are linearly spaced from `√beta_start` to `√beta_end`, inclusive.
    ScaledLinear {
        /// β_0.
        beta_start: f64,
        /// β_{T−1}.
        beta_end: f64,
    },
    /// The squared-cosine ᾱ of improved DDPM, with offset `s`.
    Cosine {
        /// The small offset `s` (0.008 in the paper).
        s: f64,
    },
}

/// How a log-SNR is turned back into a (continuous) training timestep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestepInverse {
    /// The exact inverse of [`DiscreteSchedule::log_snr`]: `t(α(t)) = t`.
    #[default]
    Exact,
    /// The authors' mapping: a 10× finer grid (linear) or the closed-form arccos (cosine),
    /// resolution 0.1, saturating outside the grid. Sits 0.5–1.4 steps away from `Exact`.
    /// The scaled-linear schedule, which the authors did not use, maps exactly.
    Official,
}

/// A DDPM schedule of `T` discrete timesteps, tabulated in f64.
#[derive(Clone, Debug)]
pub struct DiscreteSchedule {
    kind: BetaSchedule,
    betas: Vec<f64>,
    alpha_bar: Vec<f64>,
    log_snrs: Vec<f64>,
    fine_grid: std::sync::OnceLock<Vec<f64>>,
}

impl DiscreteSchedule {
    /// The DDPM default: linear β from 1e-4 to 0.02 over 1000 steps.
    pub fn ddpm() -> Self {
        Self::linear(1000, 1e-4, 0.02).expect("valid default schedule")
    }

    /// Linear β from `beta_start` to `beta_end` (inclusive) over `num_timesteps` steps.
    pub fn linear(num_timesteps: usize, beta_start: f64, beta_end: f64) -> Result<Self> {
        check_beta_range(num_timesteps, beta_start, beta_end)?;
        let betas = linspace(num_timesteps, beta_start, beta_end);
        Self::from_betas(BetaSchedule::Linear { beta_start, beta_end }, betas)
    }

    /// β = (linearly spaced √β from `√beta_start` to `√beta_end`)², as diffusers' `scaled_linear`.
    pub fn scaled_linear(num_timesteps: usize, beta_start: f64, beta_end: f64) -> Result<Self> {
        check_beta_range(num_timesteps, beta_start, beta_end)?;
        let betas = linspace(num_timesteps, beta_start.sqrt(), beta_end.sqrt()).into_iter().map(|r| r * r).collect();
        Self::from_betas(BetaSchedule::ScaledLinear { beta_start, beta_end }, betas)
    }

    /// The improved-DDPM cosine schedule with offset `s` (0.008 in the paper), β capped at 0.999.
    pub fn cosine(num_timesteps: usize, s: f64) -> Result<Self> {
        check_len(num_timesteps)?;
        if !(s > 0.0 && s.is_finite()) {
            return Err(Error::invalid("s", s, "must be positive"));
        }
        let big_t = num_timesteps as f64;
        let f = |u: f64| ((u / big_t + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2).cos().powi(2);
        let betas = (0..num_timesteps).map(|t| (1.0 - f(t as f64 + 1.0) / f(t as f64)).min(0.999)).collect();
        Self::from_betas(BetaSchedule::Cosine { s }, betas)
    }

    /// Builds the schedule of a [`BetaSchedule`] over `num_timesteps` steps.
    pub fn new(kind: BetaSchedule, num_timesteps: usize) -> Result<Self> {
        match kind {
            BetaSchedule::Linear { beta_start, beta_end } => Self::linear(num_timesteps, beta_start, beta_end),
            BetaSchedule::ScaledLinear { beta_start, beta_end } => {
                Self::scaled_linear(num_timesteps, beta_start, beta_end)
            }
            BetaSchedule::Cosine { s } => Self::cosine(num_timesteps, s),
        }
    }

    fn from_betas(kind: BetaSchedule, betas: Vec<f64>) -> Result<Self> {
        let mut alpha_bar = Vec::with_capacity(betas.len());
        let mut log_snrs = Vec::with_capacity(betas.len());
        // Accumulate log ᾱ to keep full relative precision deep into the noisy end.
        let mut log_ab = 0.0f64;
        for &b in &betas {
            log_ab += (-b).ln_1p();
            alpha_bar.push(log_ab.exp());
            // logit(ᾱ) = log ᾱ − log(1 − ᾱ)
            log_snrs.push(log_ab - (-log_ab.exp_m1()).ln());
        }
        if log_snrs.windows(2).any(|w| w[1] >= w[0]) {
            return Err(Error::invalid("betas", format!("{kind:?}"), "log-SNR must strictly decrease"));
        }
        Ok(Self { kind, betas, alpha_bar, log_snrs, fine_grid: Default::default() })
    }

    /// The family this schedule was built from.
    pub fn kind(&self) -> BetaSchedule {
        self.kind
    }

    /// Number of training timesteps `T`.
    pub fn num_timesteps(&self) -> usize {
        self.betas.len()
    }

    /// β_t for t = 0…T−1.
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// ᾱ_t for t = 0…T−1.
    pub fn alpha_bar(&self) -> &[f64] {
        &self.alpha_bar
    }

    /// α_t = logit(ᾱ_t) for t = 0…T−1 (strictly decreasing).
    pub fn log_snrs(&self) -> &[f64] {
        &self.log_snrs
    }

    /// ᾱ at an integer timestep, with the clean-end convention ᾱ_{−1} = 1.
    pub fn alpha_bar_at(&self, t: i64) -> f64 {
        if t < 0 { 1.0 } else { self.alpha_bar[(t as usize).min(self.alpha_bar.len() - 1)] }
    }

    /// The log-SNR at a continuous timestep `t ∈ [0, T−1]`, linear between integer steps
    /// (clamped to the table outside it).
    pub fn log_snr(&self, t: f64) -> f64 {
        let last = self.log_snrs.len() - 1;
        let t = t.clamp(0.0, last as f64);
        let i = (t.floor() as usize).min(last.saturating_sub(1));
        let frac = t - i as f64;
        if last == 0 {
            return self.log_snrs[0];
        }
        self.log_snrs[i] + frac * (self.log_snrs[i + 1] - self.log_snrs[i])
    }

    /// The continuous timestep whose log-SNR is `log_snr`; see [`TimestepInverse`].
    pub fn timestep(&self, log_snr: f64, inverse: TimestepInverse) -> f64 {
        match inverse {
            TimestepInverse::Exact => self.exact_timestep(log_snr),
            TimestepInverse::Official => match self.kind {
                BetaSchedule::Linear { beta_start, beta_end } => {
                    let grid =
                        self.fine_grid.get_or_init(|| official_fine_grid(self.num_timesteps(), beta_start, beta_end));
                    nearest_on_fine_grid(grid, log_snr)
                }
                BetaSchedule::Cosine { s } => cosine_closed_form_timestep(self.num_timesteps(), s, log_snr),
                BetaSchedule::ScaledLinear { .. } => self.exact_timestep(log_snr),
            },
        }
    }

    fn exact_timestep(&self, log_snr: f64) -> f64 {
        let a = &self.log_snrs;
        let last = a.len() - 1;
        if log_snr >= a[0] || last == 0 {
            return 0.0;
        }
        if log_snr <= a[last] {
            return last as f64;
        }
        // first index whose log-SNR is below the target: a[i-1] >= target > a[i]
        let i = a.partition_point(|&v| v >= log_snr);
        let (hi, lo) = (a[i - 1], a[i]);
        (i - 1) as f64 + (hi - log_snr) / (hi - lo)
    }
}

/// Checks the length and that both end points of a β range lie in (0, 1).
fn check_beta_range(num_timesteps: usize, beta_start: f64, beta_end: f64) -> Result<()> {
    check_len(num_timesteps)?;
    for (field, b) in [("beta_start", beta_start), ("beta_end", beta_end)] {
        if !(b > 0.0 && b < 1.0) {
            return Err(Error::invalid(field, b, "must lie in (0, 1)"));
        }
    }
    Ok(())
}

/// `n` values from `start` to `end`, both included.
fn linspace(n: usize, start: f64, end: f64) -> Vec<f64> {
    let last = (n - 1).max(1) as f64;
    (0..n).map(|t| start + (end - start) * t as f64 / last).collect()
}

fn check_len(num_timesteps: usize) -> Result<()> {
    if num_timesteps < 2 {
        return Err(Error::invalid("num_timesteps", num_timesteps, "must be at least 2"));
    }
    Ok(())
}

/// The authors' `logsnr2t` grid: ᾱ on 10·T steps of β/10 (strictly decreasing).
fn official_fine_grid(num_timesteps: usize, beta_start: f64, beta_end: f64) -> Vec<f64> {
    let n = 10 * num_timesteps;
    let mut alpha_bar = 1.0f64;
    (0..n)
        .map(|i| {
            alpha_bar *= 1.0 - 0.1 * (beta_start + (beta_end - beta_start) * i as f64 / (n - 1) as f64);
            alpha_bar
        })
        .collect()
}

/// 0.1 × the index of the grid point nearest to σ(α).
fn nearest_on_fine_grid(grid: &[f64], log_snr: f64) -> f64 {
    let target = sigmoid(log_snr);
    let i = grid.partition_point(|&v| v > target);
    let best = if i == 0 {
        0
    } else if i == grid.len() || (grid[i - 1] - target).abs() <= (grid[i] - target).abs() {
        i - 1
    } else {
        i
    };
    0.1 * best as f64
}

/// The closed-form inverse of the continuous cosine ᾱ(t), as the authors' iDDPM wrapper does it.
fn cosine_closed_form_timestep(num_timesteps: usize, s: f64, log_snr: f64) -> f64 {
    let half_pi = std::f64::consts::FRAC_PI_2;
    let c0 = (s / (1.0 + s) * half_pi).cos();
    let arg = (c0 * sigmoid(log_snr).sqrt()).clamp(-1.0, 1.0);
    let t = num_timesteps as f64 * (arg.acos() * (1.0 + s) / half_pi - s);
    t.clamp(0.0, (num_timesteps - 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddpm_table_matches_reference_values() {
        let s = DiscreteSchedule::ddpm();
        assert!((s.alpha_bar()[0] - 0.9999).abs() / 0.9999 < 1e-8);
        assert!((s.alpha_bar()[999] - 4.0358e-5).abs() / 4.0358e-5 < 1e-4);
        assert!((s.log_snrs()[0] - 9.2102).abs() < 1e-4);
        assert!((s.log_snrs()[999] + 10.1177).abs() < 1e-4);
        // docs/math.md §3.1 table
        for (t, a) in [(10, 6.1201), (100, 2.1444), (500, -2.4727), (900, -8.2159)] {
            assert!((s.log_snrs()[t] - a).abs() < 1e-4, "α_{t} = {}", s.log_snrs()[t]);
        }
    }

    #[test]
    fn scaled_linear_squares_linear_roots_and_ends_where_stable_diffusion_does() {
        let s = DiscreteSchedule::scaled_linear(1000, 0.00085, 0.012).unwrap();
        let (r0, r1) = (0.00085f64.sqrt(), 0.012f64.sqrt());
        for t in [0usize, 1, 500, 999] {
            let want = (r0 + (r1 - r0) * t as f64 / 999.0).powi(2);
            assert!((s.betas()[t] - want).abs() < 1e-15, "β_{t} = {}", s.betas()[t]);
        }
        // √ᾱ_T = 0.068265 (Lin et al. 2024, *Common Diffusion Noise Schedules and Sample Steps
        // are Flawed*, table 1: Stable Diffusion's terminal signal)
        assert!((s.alpha_bar()[999].sqrt() - 0.068265).abs() < 1e-6, "{}", s.alpha_bar()[999].sqrt());
        assert_eq!(s.timestep(s.log_snrs()[700], TimestepInverse::Official), 700.0);
    }

    #[test]
    fn alpha_bar_matches_the_plain_cumulative_product() {
        let s = DiscreteSchedule::ddpm();
        let mut prod = 1.0f64;
        for (t, b) in s.betas().iter().enumerate() {
            prod *= 1.0 - b;
            assert!((s.alpha_bar()[t] - prod).abs() / prod < 1e-12);
        }
        assert_eq!(s.alpha_bar_at(-1), 1.0);
    }

    #[test]
    fn exact_inverse_round_trips_on_and_between_steps() {
        for s in [DiscreteSchedule::ddpm(), DiscreteSchedule::cosine(1000, 0.008).unwrap()] {
            for t in [0.0, 0.25, 1.0, 10.5, 123.456, 500.0, 998.9, 999.0] {
                let back = s.timestep(s.log_snr(t), TimestepInverse::Exact);
                assert!((back - t).abs() < 1e-9, "{:?}: t={t} back={back}", s.kind());
            }
            assert_eq!(s.timestep(50.0, TimestepInverse::Exact), 0.0);
            assert_eq!(s.timestep(-50.0, TimestepInverse::Exact), 999.0);
        }
    }

    #[test]
    fn official_fine_grid_reproduces_the_authors_offsets() {
        // docs/math.md §3.2: t → α_t → t(α_t) gives 0→0.8, 10→10.6, 100→100.5, 500→501.4, 999→999.9
        let s = DiscreteSchedule::ddpm();
        for (t, expect) in [(0usize, 0.8), (10, 10.6), (100, 100.5), (500, 501.4), (999, 999.9)] {
            let got = s.timestep(s.log_snrs()[t], TimestepInverse::Official);
            assert!((got - expect).abs() < 1e-9, "t={t}: {got}");
        }
        assert_eq!(s.timestep(12.0, TimestepInverse::Official), 0.0);
        assert!((s.timestep(-11.0, TimestepInverse::Official) - 999.9).abs() < 1e-9);
    }

    #[test]
    fn cosine_schedule_is_not_degenerate_and_its_closed_form_inverse_is_close() {
        let s = DiscreteSchedule::cosine(1000, 0.008).unwrap();
        assert!(s.betas().iter().all(|&b| b > 0.0 && b <= 0.999));
        assert!(s.alpha_bar()[0] > 0.9999 && s.alpha_bar()[0] < 1.0);
        assert!(s.alpha_bar()[999] < 1e-6);
        // away from the clipped end, the closed form agrees with the table to within a step
        for t in [5usize, 100, 400, 800] {
            let back = s.timestep(s.log_snrs()[t], TimestepInverse::Official);
            assert!((back - (t as f64 + 1.0)).abs() < 1e-6, "t={t}: {back}");
        }
    }

    #[test]
    fn bad_arguments_are_typed_errors() {
        assert!(matches!(
            DiscreteSchedule::linear(1, 1e-4, 0.02),
            Err(Error::InvalidArgument { field: "num_timesteps", .. })
        ));
        assert!(matches!(
            DiscreteSchedule::linear(10, 0.0, 0.02),
            Err(Error::InvalidArgument { field: "beta_start", .. })
        ));
        assert!(matches!(
            DiscreteSchedule::linear(10, 1e-4, 1.5),
            Err(Error::InvalidArgument { field: "beta_end", .. })
        ));
        assert!(matches!(DiscreteSchedule::cosine(10, -1.0), Err(Error::InvalidArgument { field: "s", .. })));
    }
}
