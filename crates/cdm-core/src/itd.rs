//! The ITD log-likelihood estimator and the noise-level log-ratio.
//!
//! **Log-likelihood** (Kong et al. 2023, ITD; `docs/math.md` §6). For an ε-denoiser,
//!
//! ```text
//! −log p(x) = h_G + ½ ∫ (E_ε‖ε − ε̂(z_α, α)‖² − mmse_G(α)) dα,   z_α = √σ(α)·x + √σ(−α)·ε
//! ```
//!
//! estimated per input with `K` points `α_k ~ q` (truncated logistic, weight `w_k`) and
//! `ε_k ~ N(0, I)`:
//!
//! ```text
//! −log p̂(x) = h_G + (1/K) Σ_k ½·w_k·(‖ε_k − ε̂(z_k, α_k)‖² − mmse_G(α_k))
//! ```
//!
//! **Noised density** (`docs/math.md` §7). The same network defines the density `p_ζ` of the data
//! noised at ζ: replace `ε̂(z, α)` by `κ·ε̂(z, α′)` with `α′ = −LSE(−α, −ζ, −α−ζ)`,
//! `κ = √(σ(−α)/σ(−α′))`.
//!
//! **Log-ratio** (the implicit noise classifier). `f_ζ(z) = log p(z) − log p_ζ(z)` is the
//! Bayes-optimal logit of "clean" against "noised at ζ". With **common random numbers** the same
//! `(α_k, ε_k)` serve both terms, `h_G` and `mmse_G` cancel exactly, and
//!
//! ```text
//! f̂_ζ(z) = (1/K) Σ_k ½·w_k·(‖ε_k − κ_k·ε̂(z_k, α′_k)‖² − ‖ε_k − ε̂(z_k, α_k)‖²)
//! ```
//!
//! which has far lower variance than the authors' **faithful** estimator (independent draws for
//! the two terms, `docs/math.md` §7.3). Either way both terms go through **one** denoiser call of
//! `2·B·K` rows; to bound the rows a network sees per call, pass it wrapped in
//! [`Chunked`](crate::Chunked), which splits that call without changing its result.
//!
//! Every estimate is returned as a [`PointwiseEstimate`]: a differentiable (B, K) tensor of
//! per-point terms, so the same code serves training losses and evaluation with standard errors.
//! Input `b`'s random numbers come from stream `b` of the [`NoiseSource`], so they do not depend
//! on the batch it is evaluated in.
//!
//! | name | symbol |
//! |---|---|
//! | `points` | K |
//! | `log_snr` | α_k |
//! | `weight` | w_k |
//! | `zeta` | ζ |
//! | `base` | the Gaussian base (h_G, mmse_G) |

use candle_core::{DType, Device, Tensor};

use crate::gaussian_base::GaussianBase;
use crate::log_snr::{alpha_prime, kappa, noise_coef, signal_coef};
use crate::logistic::TruncatedLogistic;
use crate::noise::{NoiseSource, Streams};
use crate::{Denoiser, Error, Result};

/// Configuration of the ITD estimator.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItdConfig {
    /// Integration points per input, K.
    pub points: usize,
    /// The log-SNR proposal.
    pub proposal: TruncatedLogistic,
}

/// How the two log-densities of a log-ratio draw their random numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RandomNumbers {
    /// The same (α_k, ε_k) for both terms: the improved, low-variance estimator.
    #[default]
    Common,
    /// Independent draws for each term, as the authors' code does.
    Independent,
}

/// Per-point terms of a Monte-Carlo estimate: `value_b = offset + mean_k terms[b, k]`.
#[derive(Clone, Debug)]
pub struct PointwiseEstimate {
    /// (B, K) per-point contributions, attached to the denoiser's graph.
    pub terms: Tensor,
    /// The additive constant (h_G for log-likelihoods, 0 for log-ratios).
    pub offset: f64,
}

/// Host summary of an estimate: values with their Monte-Carlo standard errors.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Estimated value per input.
    pub value: Vec<f64>,
    /// Standard error of each value (sample std of the terms / √K).
    pub std_err: Vec<f64>,
}

impl PointwiseEstimate {
    /// The (B,) estimate, differentiable.
    pub fn value(&self) -> Result<Tensor> {
        Ok((self.terms.mean(1)? + self.offset)?)
    }

    /// Values and standard errors on the host.
    pub fn summary(&self) -> Result<Estimate> {
        let rows = self.terms.to_dtype(DType::F64)?.to_device(&Device::Cpu)?.to_vec2::<f64>()?;
        let (value, std_err) = rows
            .iter()
            .map(|r| {
                let k = r.len() as f64;
                let mean = r.iter().sum::<f64>() / k;
                let var = if r.len() > 1 { r.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (k - 1.0) } else { 0.0 };
                (self.offset + mean, (var / k).sqrt())
            })
            .unzip();
        Ok(Estimate { value, std_err })
    }
}

/// The ITD estimator of −log p, −log p_ζ and log p − log p_ζ for any [`Denoiser`].
#[derive(Clone, Debug)]
pub struct Itd {
    config: ItdConfig,
    base: GaussianBase,
}

/// K points per input: repeated inputs, log-SNRs, weights and noise.
struct Points {
    x: Tensor,
    log_snr: Vec<f64>,
    weight: Vec<f64>,
    eps: Tensor,
}

impl Itd {
    /// An estimator with a Gaussian `base` of the data's dimension.
    pub fn new(base: GaussianBase, config: ItdConfig) -> Result<Self> {
        config.proposal.validate()?;
        if config.points == 0 {
            return Err(Error::invalid("points", 0, "must be at least 1"));
        }
        Ok(Self { config, base })
    }

    /// The authors' setup: base and proposal (loc, scale) from data statistics, given clip and K.
    pub fn from_base_heuristic(base: GaussianBase, clip: f64, points: usize) -> Result<Self> {
        let (loc, scale) = base.logistic_heuristic();
        Self::new(base, ItdConfig { points, proposal: TruncatedLogistic::new(loc, scale, clip)? })
    }

    /// The configuration.
    pub fn config(&self) -> &ItdConfig {
        &self.config
    }

    /// The Gaussian base.
    pub fn base(&self) -> &GaussianBase {
        &self.base
    }

    fn check_input(&self, x: &Tensor) -> Result<usize> {
        let b = x.dims().first().copied().unwrap_or(0);
        let per_sample = x.elem_count().checked_div(b).unwrap_or(0);
        if x.rank() < 2 || per_sample != self.base.dim() {
            return Err(Error::shape(
                "ITD input",
                format!("(B, …) with {} values per sample", self.base.dim()),
                x.dims(),
            ));
        }
        Ok(b)
    }

    /// Draws `k` points per input from the inputs' streams.
    fn draw(&self, x: &Tensor, streams: &mut Streams, k: usize) -> Result<Points> {
        let b = x.dim(0)?;
        let sample_shape = &x.dims()[1..];
        let log_snr: Vec<f64> = streams.uniform_f64(k).into_iter().map(|u| self.config.proposal.log_snr(u)).collect();
        let weight = log_snr.iter().map(|&a| self.config.proposal.weight(a)).collect();
        let mut dims = vec![b * k];
        dims.extend_from_slice(sample_shape);
        let eps = streams.normal(&[k * self.base.dim()], x.dtype(), x.device())?.reshape(dims.as_slice())?;
        let mut rep = vec![b, k];
        rep.extend_from_slice(sample_shape);
        let x = x.unsqueeze(1)?.broadcast_as(rep)?.reshape(dims.as_slice())?;
        Ok(Points { x, log_snr, weight, eps })
    }

    /// `‖ε − κ·ε̂(z_α, α′)‖²` per row for every `(points, zeta)` block, in one denoiser call.
    ///
    /// `zeta` per row: `+∞` means the clean density (α′ = α, κ = 1).
    fn squared_errors(&self, d: &dyn Denoiser, blocks: &[(&Points, &[f64])]) -> Result<Vec<Tensor>> {
        let mut z_rows = Vec::with_capacity(blocks.len());
        let mut call_log_snr = Vec::new();
        let mut kappas = Vec::new();
        for (p, zeta) in blocks {
            let (a, s): (Vec<f64>, Vec<f64>) = p.log_snr.iter().map(|&l| (signal_coef(l), noise_coef(l))).unzip();
            z_rows.push(row_scale(&p.x, &a)?.add(&row_scale(&p.eps, &s)?)?);
            for (&l, &zt) in p.log_snr.iter().zip(zeta.iter()) {
                call_log_snr.push(alpha_prime(l, zt));
                kappas.push(kappa(l, zt));
            }
        }
        let z = Tensor::cat(&z_rows, 0)?;
        let eps_hat = row_scale(&d.eps_at(&z, &call_log_snr)?, &kappas)?;
        let mut out = Vec::with_capacity(blocks.len());
        let mut start = 0;
        for (p, _) in blocks {
            let n = p.log_snr.len();
            let diff = p.eps.sub(&eps_hat.narrow(0, start, n)?)?;
            out.push(diff.sqr()?.flatten_from(1)?.sum(1)?);
            start += n;
        }
        Ok(out)
    }

    /// ½·w·(err − mmse_G(α)) as a (B, K) tensor.
    fn nll_terms(&self, p: &Points, err: &Tensor, b: usize) -> Result<Tensor> {
        let mmse: Vec<f64> = p.log_snr.iter().map(|&a| self.base.mmse(a)).collect();
        let half_w: Vec<f64> = p.weight.iter().map(|w| 0.5 * w).collect();
        let centred = err.sub(&crate::host_tensor(&mmse, err)?)?;
        Ok(centred.mul(&crate::host_tensor(&half_w, err)?)?.reshape((b, self.config.points))?)
    }

    /// −log p(x) per input (ζ = `None`) or −log p_ζ(x) (ζ = `Some`), in nats.
    ///
    /// # Shapes
    /// `x`: (B, …) with `base.dim()` values per sample. Terms: (B, K).
    pub fn nll(
        &self,
        d: &dyn Denoiser,
        x: &Tensor,
        zeta: Option<f64>,
        noise: &NoiseSource,
    ) -> Result<PointwiseEstimate> {
        let b = self.check_input(x)?;
        let k = self.config.points;
        let mut streams = noise.fork("itd").streams(0, b);
        let p = self.draw(x, &mut streams, k)?;
        let zetas = vec![zeta.unwrap_or(f64::INFINITY); b * k];
        let err = self.squared_errors(d, &[(&p, &zetas)])?.remove(0);
        Ok(PointwiseEstimate { terms: self.nll_terms(&p, &err, b)?, offset: self.base.entropy() })
    }

    /// `f_ζ(z) = log p(z) − log p_ζ(z)` per input, with one ζ per input.
    ///
    /// Positive when `z` looks clean rather than noised at ζ.
    pub fn log_ratio(
        &self,
        d: &dyn Denoiser,
        z: &Tensor,
        zeta: &[f64],
        noise: &NoiseSource,
        random_numbers: RandomNumbers,
    ) -> Result<PointwiseEstimate> {
        let b = self.check_input(z)?;
        if zeta.len() != b {
            return Err(Error::shape("log_ratio zeta", [b], [zeta.len()]));
        }
        let k = self.config.points;
        let zetas: Vec<f64> = zeta.iter().flat_map(|&zt| std::iter::repeat_n(zt, k)).collect();
        let clean = vec![f64::INFINITY; b * k];
        let mut streams = noise.fork("itd").streams(0, b);
        let p = self.draw(z, &mut streams, k)?;
        let terms = match random_numbers {
            RandomNumbers::Common => {
                let errs = self.squared_errors(d, &[(&p, &zetas), (&p, &clean)])?;
                let half_w: Vec<f64> = p.weight.iter().map(|w| 0.5 * w).collect();
                errs[0].sub(&errs[1])?.mul(&crate::host_tensor(&half_w, &errs[0])?)?.reshape((b, k))?
            }
            RandomNumbers::Independent => {
                let q = self.draw(z, &mut streams, k)?;
                let errs = self.squared_errors(d, &[(&p, &zetas), (&q, &clean)])?;
                // log p − log p_ζ = nll_ζ − nll; pairing independent draws keeps the terms i.i.d.
                self.nll_terms(&p, &errs[0], b)?.sub(&self.nll_terms(&q, &errs[1], b)?)?
            }
        };
        Ok(PointwiseEstimate { terms, offset: 0.0 })
    }

    /// The training form: one `(α, ε)` per element, `h_G + mean_b ½·w_b·(err_b − mmse_G(α_b))`.
    ///
    /// An unbiased estimate of the clipped expected NLL (nats per sample); a scalar tensor.
    pub fn batch_loss(&self, d: &dyn Denoiser, x: &Tensor, noise: &NoiseSource) -> Result<Tensor> {
        let b = self.check_input(x)?;
        let mut streams = noise.fork("itd-batch").streams(0, b);
        let p = self.draw(x, &mut streams, 1)?;
        let err = self.squared_errors(d, &[(&p, &vec![f64::INFINITY; b])])?.remove(0);
        let mmse: Vec<f64> = p.log_snr.iter().map(|&a| self.base.mmse(a)).collect();
        let half_w: Vec<f64> = p.weight.iter().map(|w| 0.5 * w).collect();
        let terms = err.sub(&crate::host_tensor(&mmse, &err)?)?.mul(&crate::host_tensor(&half_w, &err)?)?;
        Ok((terms.mean_all()? + self.base.entropy())?)
    }

    /// Estimates of `log p_{ζ_j}(z) − log p(z)` for every level, sharing one set of
    /// `(α_k, ε_k)` per input; `+∞` levels (clean) are exactly 0 and cost nothing.
    ///
    /// Returns one (B, K) term tensor per level.
    pub fn level_log_densities(
        &self,
        d: &dyn Denoiser,
        z: &Tensor,
        levels: &[f64],
        noise: &NoiseSource,
    ) -> Result<Vec<Tensor>> {
        let b = self.check_input(z)?;
        let k = self.config.points;
        if let Some(l) = levels.iter().find(|l| l.is_nan()) {
            return Err(Error::invalid("levels", l, "must not be NaN"));
        }
        let mut streams = noise.fork("itd").streams(0, b);
        let p = self.draw(z, &mut streams, k)?;
        let finite: Vec<Vec<f64>> = levels.iter().filter(|l| l.is_finite()).map(|&l| vec![l; b * k]).collect();
        let clean = vec![f64::INFINITY; b * k];
        let mut blocks: Vec<(&Points, &[f64])> = vec![(&p, &clean)];
        blocks.extend(finite.iter().map(|zs| (&p, zs.as_slice())));
        let errs = self.squared_errors(d, &blocks)?;
        let neg_half_w: Vec<f64> = p.weight.iter().map(|w| -0.5 * w).collect();
        let neg_half_w = crate::host_tensor(&neg_half_w, &errs[0])?;
        let zero = Tensor::zeros((b, k), z.dtype(), z.device())?;
        let mut next = errs[1..].iter();
        levels
            .iter()
            .map(|l| match l.is_finite() {
                false => Ok(zero.clone()),
                true => {
                    let e = next.next().expect("one error block per finite level");
                    Ok(e.sub(&errs[0])?.mul(&neg_half_w)?.reshape((b, k))?)
                }
            })
            .collect()
    }
}

/// Multiplies row `i` of `x` (N, …) by `coef[i]`.
fn row_scale(x: &Tensor, coef: &[f64]) -> Result<Tensor> {
    let mut shape = vec![1usize; x.rank()];
    shape[0] = coef.len();
    Ok(x.broadcast_mul(&crate::host_tensor(coef, x)?.reshape(shape)?)?)
}

/// Converts nats per sample to bits per dimension.
pub fn bits_per_dim(nats: f64, dim: usize) -> f64 {
    nats / (dim as f64 * std::f64::consts::LN_2)
}
