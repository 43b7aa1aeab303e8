//! The uniform sampler interface (k-diffusion style: one signature for every driver and step
//! map; `docs/samplers.md` §7) and the sequential driver.
//!
//! Every sampler takes the same inputs — a [`Denoiser`], a [`StepMap`] (which carries the
//! schedule, the time grid and the algorithm's own options), the [`SamplerNoise`] and an
//! [`Observer`] — and returns the samples with [`SamplerStats`]. The step maps are
//! [`crate::Ddpm`], [`crate::Ddim`], [`crate::EdmHeun`] and [`crate::EdmStochastic`]; the
//! drivers are [`Sequential`] and [`crate::Paradigms`], so any driver runs any map.
//!
//! The sequential driver is the plain chain
//!
//! ```text
//! x_0 = c_init·ξ_init,     x_{j+1} = F_j(x_j; ξ_j) + σ_j·ξ_j,     j = 0 … S−1
//! ```

use std::cell::Cell;
use std::time::{Duration, Instant};

use candle_core::Tensor;
use cdm_core::{Denoiser, Detached};

use crate::{Observer, Result, SamplerNoise, StepMap};

/// A sampling algorithm over any step map and denoiser.
pub trait Sampler {
    /// Runs the map from `noise` to the samples x_S (B, …), reporting to `observer`.
    fn sample(
        &self,
        d: &dyn Denoiser,
        map: &dyn StepMap,
        noise: &SamplerNoise,
        observer: &mut dyn Observer,
    ) -> Result<Sample>;
}

/// The output of a [`Sampler`].
#[derive(Clone, Debug)]
pub struct Sample {
    /// The samples x_S, (B, …) like the initial noise.
    pub x: Tensor,
    /// What it cost.
    pub stats: SamplerStats,
}

/// What a sampling run cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplerStats {
    /// Sequential depth: dependent rounds of denoiser calls (S for the sequential sampler;
    /// Picard rounds plus any steps finished sequentially for ParaDiGMS).
    pub rounds: usize,
    /// Denoiser evaluations per sample (ParaDiGMS' "evals": Σ over rounds of the window's
    /// evaluations; 2 per Heun position).
    pub nfe: usize,
    /// Positions whose step map was evaluated, Σ L over rounds (= `nfe` for one-call maps).
    pub positions: usize,
    /// Batched denoiser calls the driver made (a [`cdm_core::Chunked`] denoiser may split each
    /// into several network calls).
    pub forward_calls: usize,
    /// Steps ParaDiGMS finished sequentially after reaching `max_rounds` (0 when converged).
    pub finished_sequentially: usize,
    /// Wall-clock time of the whole run.
    pub wall: Duration,
}

impl SamplerStats {
    /// Whether the run ended without falling back to sequential steps.
    pub fn converged(&self) -> bool {
        self.finished_sequentially == 0
    }
}

/// The plain step-by-step sampler: one denoiser call over the whole batch per evaluation
/// (wrap the denoiser in [`cdm_core::Chunked`] to cap the rows per call).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sequential;

impl Sampler for Sequential {
    fn sample(
        &self,
        d: &dyn Denoiser,
        map: &dyn StepMap,
        noise: &SamplerNoise,
        observer: &mut dyn Observer,
    ) -> Result<Sample> {
        let start = Instant::now();
        let counter = Counting::new(d);
        let batch = noise.batch();
        let mut reader = if map.is_ode() { None } else { Some(noise.reader(map.steps())?) };
        let mut x = initial_state(map, noise)?;
        observer.on_start(&x);
        for j in 0..map.steps() {
            let xi = reader.as_mut().map(|r| r.next_step()).transpose()?;
            x = step(map, &counter, &x, j, xi.as_ref())?;
            observer.on_step(j, &x);
        }
        let stats = SamplerStats {
            rounds: map.steps(),
            nfe: counter.rows.get() / batch,
            positions: map.steps(),
            forward_calls: counter.calls.get(),
            finished_sequentially: 0,
            wall: start.elapsed(),
        };
        tracing::debug!(?stats, "sequential sampling finished");
        Ok(Sample { x, stats })
    }
}

/// x_0 = c_init·ξ_init.
pub(crate) fn initial_state(map: &dyn StepMap, noise: &SamplerNoise) -> Result<Tensor> {
    let scale = map.init_scale();
    Ok(if scale == 1.0 { noise.init().clone() } else { noise.init().affine(scale, 0.0)? })
}

/// One sequential step x_{j+1} = F_j(x_j; ξ_j) + σ_j·ξ_j on a batch.
pub(crate) fn step(map: &dyn StepMap, d: &dyn Denoiser, x: &Tensor, j: usize, xi: Option<&Tensor>) -> Result<Tensor> {
    let rows = vec![j; x.dim(0)?];
    let f = map.apply(d, x, &rows, xi)?;
    match (xi, map.noise_std(j)) {
        (Some(xi), std) if std > 0.0 => Ok(f.add(&xi.affine(std, 0.0)?)?),
        _ => Ok(f),
    }
}

/// Counts the calls and rows that reach the wrapped denoiser, and detaches its outputs.
pub(crate) struct Counting<'a> {
    inner: Detached<&'a dyn Denoiser>,
    pub(crate) calls: Cell<usize>,
    pub(crate) rows: Cell<usize>,
}

impl<'a> Counting<'a> {
    pub(crate) fn new(inner: &'a dyn Denoiser) -> Self {
        Self { inner: Detached(inner), calls: Cell::new(0), rows: Cell::new(0) }
    }

    fn count(&self, z: &Tensor) -> cdm_core::Result<()> {
        self.calls.set(self.calls.get() + 1);
        self.rows.set(self.rows.get() + z.dim(0)?);
        Ok(())
    }
}

// Sampling never back-propagates. A network with `Var` weights records a graph on every call,
// and each state depends on the previous one, so without `detach` a 1000-step chain would keep
// every step's activations alive (gigabytes for a few thousand 2-D points). A `Chunked` network
// should detach inside the chunks as well (`Chunked::new(Detached(net), m)`): this outer detach
// comes only after all chunks of the call are done.
impl Denoiser for Counting<'_> {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> cdm_core::Result<Tensor> {
        self.count(z)?;
        self.inner.eps(z, log_snr)
    }

    fn eps_at(&self, z: &Tensor, log_snr: &[f64]) -> cdm_core::Result<Tensor> {
        self.count(z)?;
        self.inner.eps_at(z, log_snr)
    }
}
