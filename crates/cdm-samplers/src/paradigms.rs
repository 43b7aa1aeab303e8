//! ParaDiGMS: parallel sampling by sliding-window Picard iteration (Shih, Belkhale, Ermon, Sadigh,
//! Anari 2023, *Parallel Sampling of Diffusion Models*, arXiv:2305.16317; rules as the authors'
//! code `AndyShih12/paradigms` @ d44faf9 and `docs/samplers.md` §8).
//!
//! Any [`StepMap`] `x_{j+1} = F_j(x_j) + n_j` telescopes to
//! `x_{j+1} = x_a + Σ_{i=a}^{j} Δ_i(x_i) + Σ_{i=a}^{j} n_i` with drift `Δ_i = F_i(x_i) − x_i`.
//! With all noise drawn up front, Picard iteration refines a window of positions at once. One
//! round over the window `[lo, hi)`, `L = hi − lo`:
//!
//! ```text
//! Δ_i       = F_i(buf[i]) − buf[i],  i ∈ [lo, hi)        one batched call over L·B rows
//! new[lo+m+1] = buf[lo] + Σ_{i=lo}^{lo+m} Δ_i + Σ_{i=lo}^{lo+m} n_i      m = 0 … L−1
//! e(q, b)   = ‖new[q, b] − buf[q, b]‖² · w[q],   w[q] = 1/(D·σ²_q),  w[S] = +∞
//! m*        = first m with max_b e(lo+m+1, b) > τ²   (or L; NaN = 0·∞ passes)
//! stride    = min(m* + 1, p);   lo′ = lo + stride;   hi′ = min(lo′ + p, S)
//! buf[lo+1 ..= hi] ← new;   buf[hi+1 ..= hi′] ← buf[hi]
//! ```
//!
//! starting from `buf[0 ..= S] = x_0`, `lo = 0`, `hi = p`, until `lo = S`; the output is
//! `buf[S]`. Every position up to the first failing one is accepted, and the first failing
//! one becomes the next anchor (it was computed from accepted inputs). Hence `rounds ≤ S` and
//! `Σ L ≤ p·rounds`. The window advances at the pace of the slowest sample (batch-global `any`).
//! With `p = 1` or `τ = 0` the output is the sequential chain's (up to the rounding of the
//! telescoped sum). `p ≥ S` is the no-window variant (window = all remaining positions).
//!
//! The window's `L·B` rows (up to `S·B` without a window) go to the denoiser in one call; to
//! bound a network's memory, pass it wrapped in [`cdm_core::Chunked`] (with
//! [`cdm_core::Detached`] inside, see [`cdm_core::detached`]), which splits the call without
//! changing its result.
//!
//! Prefix sums run sequentially in the buffer's dtype; the per-sample squared errors are
//! accumulated in f64. With `max_rounds`, a run that has not converged finishes the remaining
//! steps sequentially from the anchor `buf[lo]` (exact) and reports them in
//! [`SamplerStats::finished_sequentially`].
//!
//! | name here | symbol |
//! |---|---|
//! | `window` | p |
//! | `tolerance` | τ (compared squared) |
//! | `buf` | trajectory buffer, positions 0…S |
//! | `lo`, `hi` | window `[lo, hi)` |
//! | `delta` | Δ_i |
//! | `weights` | w[q] = 1/(D·σ²_q) |
//! | `first_fail` | m* |

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use cdm_core::Denoiser;

use crate::sampler::{Counting, initial_state, step};
use crate::{Error, Observer, Result, Round, Sample, Sampler, SamplerNoise, SamplerStats, StepMap};

/// Options of [`Paradigms`]. The default is the authors' tolerance 0.1 with window 32 (CDL,
/// and the paper's 200-step runs).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ParadigmsConfig {
    /// Window size p ≥ 1 (capped at S; `usize::MAX` is the no-window variant).
    pub window: usize,
    /// Tolerance τ ≥ 0 on the per-dimension error normalised by the step's noise variance.
    pub tolerance: f64,
    /// After this many Picard rounds, finish the remaining steps sequentially (`None`: no cap).
    pub max_rounds: Option<usize>,
}

impl Default for ParadigmsConfig {
    fn default() -> Self {
        Self { window: 32, tolerance: 0.1, max_rounds: None }
    }
}

impl ParadigmsConfig {
    /// The no-window variant (p = S, used for 2-D data) with tolerance τ.
    pub fn no_window(tolerance: f64) -> Self {
        Self { window: usize::MAX, tolerance, ..Self::default() }
    }

    /// Checks every option: `window ≥ 1`, `tolerance` finite and ≥ 0, `max_rounds ≥ 1`.
    pub fn validate(&self) -> Result<()> {
        if self.window == 0 {
            return Err(Error::invalid("window", 0, "must be at least 1"));
        }
        if !(self.tolerance >= 0.0 && self.tolerance.is_finite()) {
            return Err(Error::invalid("tolerance", self.tolerance, "must be finite and non-negative"));
        }
        if self.max_rounds == Some(0) {
            return Err(Error::invalid("max_rounds", 0, "must be at least 1"));
        }
        Ok(())
    }
}

/// The ParaDiGMS sampler; construct it with [`Paradigms::new`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Paradigms {
    config: ParadigmsConfig,
}

impl Paradigms {
    /// A sampler with validated options.
    pub fn new(config: ParadigmsConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The options.
    pub fn config(&self) -> &ParadigmsConfig {
        &self.config
    }
}

impl Sampler for Paradigms {
    fn sample(
        &self,
        d: &dyn Denoiser,
        map: &dyn StepMap,
        noise: &SamplerNoise,
        observer: &mut dyn Observer,
    ) -> Result<Sample> {
        let start = Instant::now();
        let cfg = &self.config;
        let counter = Counting::new(d);
        let s = map.steps();
        let p = cfg.window.min(s);
        let batch = noise.batch();
        let per_sample = noise.init().elem_count() / batch;

        // Noise up front: ξ (S, B, …) and the additive n_j = σ_j·ξ_j.
        let xi = if map.is_ode() { None } else { Some(noise.all_steps(s)?) };
        let additive = match &xi {
            Some(xi) if (0..s).any(|j| map.noise_std(j) > 0.0) => {
                Some((0..s).map(|j| Ok(xi.get(j)?.affine(map.noise_std(j), 0.0)?)).collect::<Result<Vec<_>>>()?)
            }
            _ => None,
        };
        let weights: Vec<f64> = (0..s)
            .map(|j| 1.0 / (map.tolerance_variance(j) * per_sample as f64))
            .chain(std::iter::once(f64::INFINITY))
            .collect();
        let tol2 = cfg.tolerance * cfg.tolerance;

        let x0 = initial_state(map, noise)?;
        observer.on_start(&x0);
        let mut buf = vec![x0; s + 1];
        let (mut lo, mut hi) = (0, p);
        let (mut rounds, mut positions, mut finished) = (0, 0, 0);
        while lo < s {
            if cfg.max_rounds == Some(rounds) {
                let window = xi.as_ref().map(|xi| xi.narrow(0, lo, s - lo)).transpose()?;
                for j in lo..s {
                    let xi_j = window.as_ref().map(|w| w.get(j - lo)).transpose()?;
                    buf[j + 1] = step(map, &counter, &buf[j], j, xi_j.as_ref())?;
                    observer.on_step(j, &buf[j + 1]);
                }
                finished = s - lo;
                tracing::debug!(rounds, lo, finished, "paradigms reached max_rounds; finished sequentially");
                break;
            }
            let len = hi - lo;
            let x = Tensor::cat(&buf[lo..hi], 0)?;
            let rows: Vec<usize> = (lo..hi).flat_map(|j| std::iter::repeat_n(j, batch)).collect();
            let xi_rows = xi.as_ref().map(|xi| xi.narrow(0, lo, len)?.flatten(0, 1)).transpose()?;
            let delta = map.apply(&counter, &x, &rows, xi_rows.as_ref())?.sub(&x)?;

            // Prefix sums, sequential in the buffer dtype: Σ Δ and Σ n kept apart as in [PG].
            let mut new = Vec::with_capacity(len);
            let (mut sum_delta, mut sum_noise): (Option<Tensor>, Option<Tensor>) = (None, None);
            for m in 0..len {
                let dm = delta.narrow(0, m * batch, batch)?;
                let sd = match sum_delta {
                    Some(acc) => acc.add(&dm)?,
                    None => dm,
                };
                let mut value = buf[lo].add(&sd)?;
                if let Some(additive) = &additive {
                    let sn = match sum_noise {
                        Some(acc) => acc.add(&additive[lo + m])?,
                        None => additive[lo + m].clone(),
                    };
                    value = value.add(&sn)?;
                    sum_noise = Some(sn);
                }
                sum_delta = Some(sd);
                new.push(value);
            }

            // Squared errors per (position, sample): differences in the buffer dtype, squares
            // summed in f64 (on the CPU for Metal, which has no f64).
            let diff = Tensor::cat(&new, 0)?.sub(&Tensor::cat(&buf[lo + 1..=hi], 0)?)?;
            let diff = if diff.device().is_metal() { diff.to_device(&Device::Cpu)? } else { diff };
            let diff = diff.to_dtype(DType::F64)?;
            let sq = diff.sqr()?.reshape((len * batch, per_sample))?.sum(1)?.to_vec1::<f64>()?;
            let mut residuals = Vec::with_capacity(len);
            let mut first_fail = len;
            for m in 0..len {
                let w = weights[lo + 1 + m];
                let errors = sq[m * batch..(m + 1) * batch].iter().map(|e| e * w);
                let mut worst = 0.0f64;
                let mut fails = false;
                for e in errors {
                    fails |= e > tol2; // NaN (0·∞ at position S) compares false: passes
                    worst = worst.max(e);
                }
                residuals.push(worst);
                if fails && first_fail == len {
                    first_fail = m;
                }
            }
            let stride = (first_fail + 1).min(p);

            for (m, value) in new.into_iter().enumerate() {
                buf[lo + 1 + m] = value;
            }
            // With no failure at all (the last position bit-identical, 0·∞ = NaN passes) the
            // reference's stride can overshoot S by one; the run ends either way.
            let next_lo = (lo + stride).min(s);
            let next_hi = (next_lo + p).min(s);
            for q in hi + 1..=next_hi {
                buf[q] = buf[hi].clone();
            }
            observer.on_round(&Round {
                round: rounds,
                window: lo..hi,
                next_lo,
                residuals: &residuals,
                trajectory: &buf,
            });
            tracing::trace!(round = rounds, lo, hi, stride, "paradigms round");
            rounds += 1;
            positions += len;
            (lo, hi) = (next_lo, next_hi);
        }
        let stats = SamplerStats {
            rounds: rounds + finished,
            nfe: counter.rows.get() / batch,
            positions: positions + finished,
            forward_calls: counter.calls.get(),
            finished_sequentially: finished,
            wall: start.elapsed(),
        };
        tracing::debug!(?stats, window = p, tolerance = cfg.tolerance, "paradigms finished");
        Ok(Sample { x: buf.swap_remove(s), stats })
    }
}
