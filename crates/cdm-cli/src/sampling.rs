//! Sampler selection shared by `cdm train` (its final samples) and `cdm sample`.

use anyhow::Result;

use crate::admission;
use candle_core::{DType, Device, Tensor};
use cdm_core::{Chunked, Denoiser, Detached, DiscreteSchedule, NoiseSource};
use cdm_dist::{Collective, Sharded, SingleProcess};
use cdm_samplers::{
    DdimConfig, DdpmConfig, EdmHeunConfig, EdmStochasticConfig, Paradigms, ParadigmsConfig, SamplerNoise, SamplerStats,
    Sequential, StepMap,
};

/// Which step map to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplerKind {
    /// DDPM ancestral (posterior variance σ̃²).
    Ddpm,
    /// DDIM with η.
    Ddim,
    /// EDM deterministic Heun.
    Edm,
    /// EDM stochastic Heun with churn.
    EdmChurn,
    /// DDPM under ParaDiGMS (shorthand for `--sampler ddpm --parallel`).
    Paradigms,
}

/// Sampler options.
#[derive(Clone, Debug, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct SamplerArgs {
    /// Step map (`paradigms` = DDPM under ParaDiGMS) [default: ddpm, or a diffusers pipeline's
    /// own scheduler].
    #[arg(long, value_enum)]
    pub sampler: Option<SamplerKind>,
    /// Sampling steps (default: 1000 DDPM, 50 DDIM, 18 EDM).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Run the chain with ParaDiGMS (parallel Picard iteration).
    #[arg(long)]
    pub parallel: bool,
    /// ParaDiGMS window p (default: the whole chain, the paper's 2-D setting), or `auto`: time
    /// the denoiser per call once and take the window, or sequential sampling, with the least
    /// predicted wall time for this batch (implies `--parallel`; docs/samplers.md §8.8).
    #[arg(long)]
    pub window: Option<Window>,
    /// ParaDiGMS tolerance τ.
    #[arg(long, default_value_t = 0.1)]
    pub tolerance: f64,
    /// ParaDiGMS round cap; the rest is finished sequentially.
    #[arg(long)]
    pub max_rounds: Option<usize>,
    /// DDIM η.
    #[arg(long, default_value_t = 0.0)]
    pub eta: f64,
    /// EDM S_churn (for `edm-churn`).
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Most rows per denoiser call: bounds memory when ParaDiGMS evaluates a whole chain of
    /// many samples (500 Dino samples × 1000 steps unchunked peaked at 7.3 GB). Default: the
    /// data kind's (65 536 for points, 256 for images).
    #[arg(long)]
    pub max_rows: Option<usize>,
}

impl Default for SamplerArgs {
    fn default() -> Self {
        Self {
            sampler: None,
            steps: None,
            parallel: false,
            window: None,
            tolerance: 0.1,
            max_rounds: None,
            eta: 0.0,
            churn: 0.0,
            max_rows: None,
        }
    }
}

impl SamplerArgs {
    /// A short label, e.g. `ddpm-1000` or `ddpm-1000-paradigms-p32-tol0.1`.
    pub fn label(&self) -> String {
        let mut label = format!("{}-{}", self.map_name(), self.step_count());
        if self.is_parallel() {
            let p = self.window.map_or_else(|| "all".into(), |w| w.to_string());
            label.push_str(&format!("-paradigms-p{p}-tol{}", self.tolerance));
        }
        label
    }

    /// The step map: `--sampler`, DDPM when unset.
    pub fn kind(&self) -> SamplerKind {
        self.sampler.unwrap_or(SamplerKind::Ddpm)
    }

    fn map_name(&self) -> &'static str {
        match self.kind() {
            SamplerKind::Ddpm | SamplerKind::Paradigms => "ddpm",
            SamplerKind::Ddim => "ddim",
            SamplerKind::Edm => "edm",
            SamplerKind::EdmChurn => "edm-churn",
        }
    }

    fn is_parallel(&self) -> bool {
        self.parallel || self.kind() == SamplerKind::Paradigms || self.window == Some(Window::Auto)
    }

    /// The window in steps (the whole chain without one); `auto` must be resolved first.
    fn window_steps(&self) -> usize {
        match self.window {
            Some(Window::Steps(p)) => p,
            None | Some(Window::Auto) => usize::MAX,
        }
    }

    /// `--window auto` replaced by its choice for `noise`'s batch on `d`: a window, or sequential
    /// sampling of the same step map. Other settings are returned unchanged.
    /// Over several ranks each call's time is the mean of the ranks', so that all choose alike.
    fn resolve_window(&self, d: &dyn Denoiser, noise: &SamplerNoise, world: &dyn Collective) -> Result<Self> {
        if self.window != Some(Window::Auto) {
            return Ok(self.clone());
        }
        let init = noise.init();
        let probe = |rows: usize| -> Result<f64> {
            let mut shape = init.dims().to_vec();
            shape[0] = rows;
            let x = init.narrow(0, 0, 1)?.broadcast_as(shape)?.contiguous()?;
            let alphas = vec![0.0; rows];
            // the faster of two calls: a new row count's first call pays for fresh buffers
            let mut fastest = f64::INFINITY;
            for _ in 0..2 {
                let began = std::time::Instant::now();
                drop(d.eps_at(&x, &alphas)?);
                fastest = fastest.min(began.elapsed().as_secs_f64());
            }
            let fastest = world.all_reduce_mean(&Tensor::new(fastest, &Device::Cpu)?)?.to_scalar::<f64>()?;
            tracing::debug!(rows, seconds = fastest, "--window auto: cost of one call");
            Ok(fastest)
        };
        let choice = cdm_samplers::window_choice::choose_window(self.step_count(), noise.batch(), probe)?;
        let chosen = choice.map_or_else(|| "sequential".to_string(), |p| format!("p = {p}"));
        tracing::info!(batch = noise.batch(), chosen, "--window auto");
        let kind = match self.kind() {
            SamplerKind::Paradigms => SamplerKind::Ddpm,
            other => other,
        };
        Ok(match choice {
            Some(p) => Self { parallel: true, window: Some(Window::Steps(p)), ..self.clone() },
            None => Self { sampler: Some(kind), parallel: false, window: None, ..self.clone() },
        })
    }

    /// Positions of the chain (default: 1000 DDPM, 50 DDIM, 18 EDM).
    pub fn step_count(&self) -> usize {
        self.steps.unwrap_or(match self.kind() {
            SamplerKind::Ddpm | SamplerKind::Paradigms => 1000,
            SamplerKind::Ddim => 50,
            SamplerKind::Edm | SamplerKind::EdmChurn => 18,
        })
    }

    fn step_map(&self, chain: &Chain) -> Result<Box<dyn StepMap>> {
        let steps = self.step_count();
        Ok(match self.kind() {
            SamplerKind::Ddpm | SamplerKind::Paradigms => {
                Box::new(DdpmConfig { steps, ..chain.ddpm }.build(&chain.schedule)?)
            }
            SamplerKind::Ddim => Box::new(DdimConfig { steps, eta: self.eta, ..chain.ddim }.build(&chain.schedule)?),
            SamplerKind::Edm => Box::new(EdmHeunConfig { steps, ..Default::default() }.build()?),
            SamplerKind::EdmChurn => {
                Box::new(EdmStochasticConfig { steps, s_churn: self.churn, ..Default::default() }.build()?)
            }
        })
    }

    /// Refuses `n` samples of `per_row` values each when their states would exceed the memory
    /// limit: sequential sampling holds a few copies, ParaDiGMS about three per window position.
    /// With `--window auto` the window is not known yet: only what sequential sampling needs is
    /// checked, and [`sample`](Self::sample) checks the chosen window again.
    pub fn admit(&self, n: usize, per_row: usize) -> Result<()> {
        let windowed = self.is_parallel() && self.window != Some(Window::Auto);
        let copies = if windowed { 3 * (self.window_steps().min(self.step_count()) + 1) } else { 4 };
        let what = format!("sampling {n} samples of {per_row} values with {}", self.label());
        admission::admit(&what, admission::states(n, per_row, copies))
    }

    /// Draws `n` samples of shape `sample_shape`, at most `--max-rows` (else `rows_per_call`)
    /// rows per denoiser call; sample i's noise depends only on (seed, i).
    pub fn run(
        &self,
        d: &dyn Denoiser,
        n: usize,
        sample_shape: &[usize],
        seed: u64,
        device: &Device,
        observer: &mut dyn cdm_samplers::Observer,
        rows_per_call: usize,
    ) -> Result<(Tensor, SamplerStats)> {
        self.run_rows(d, 0..n, sample_shape, seed, device, observer, rows_per_call)
    }

    /// Samples `rows` of the sequence [`run`](Self::run) draws with `seed`: the same noise
    /// per sample, so a batch split into groups gives the samples of one call.
    #[allow(clippy::too_many_arguments)]
    pub fn run_rows(
        &self,
        d: &dyn Denoiser,
        rows: std::ops::Range<usize>,
        sample_shape: &[usize],
        seed: u64,
        device: &Device,
        observer: &mut dyn cdm_samplers::Observer,
        rows_per_call: usize,
    ) -> Result<(Tensor, SamplerStats)> {
        self.admit(rows.len(), sample_shape.iter().product())?;
        let noise = SamplerNoise::seeded(
            &NoiseSource::new(seed),
            rows.start as u64,
            rows.len(),
            sample_shape,
            DType::F32,
            device,
        )?;
        self.sample(d, &Chain::default(), &noise, observer, rows_per_call, &SingleProcess)
    }

    /// Runs the step map built on `chain` from `noise`, at most `--max-rows` (else
    /// `rows_per_call`) rows per denoiser call on each rank of `world`, which share every call
    /// ([`Sharded`]) and all end with the same samples.
    pub fn sample(
        &self,
        d: &dyn Denoiser,
        chain: &Chain,
        noise: &SamplerNoise,
        observer: &mut dyn cdm_samplers::Observer,
        rows_per_call: usize,
        world: &dyn Collective,
    ) -> Result<(Tensor, SamplerStats)> {
        // detached per chunk: only one chunk's activations are alive at a time
        let capped = Chunked::new(Detached(d), self.max_rows.unwrap_or(rows_per_call))?;
        let d = Sharded::new(&capped, world);
        let probing = std::time::Instant::now();
        let this = self.resolve_window(&d, noise, world)?;
        let probing = probing.elapsed();
        let init = noise.init();
        this.admit(noise.batch(), init.elem_count() / noise.batch())?;
        let map = this.step_map(chain)?;
        let out = if this.is_parallel() {
            let cfg =
                ParadigmsConfig { window: this.window_steps(), tolerance: this.tolerance, max_rounds: this.max_rounds };
            cdm_samplers::Sampler::sample(&Paradigms::new(cfg)?, &d, map.as_ref(), noise, observer)?
        } else {
            cdm_samplers::Sampler::sample(&Sequential, &d, map.as_ref(), noise, observer)?
        };
        // the wall time a user waits includes choosing the window
        let stats = SamplerStats { wall: out.stats.wall + probing, ..out.stats };
        Ok((out.x, stats))
    }
}

/// The schedule and the DDPM/DDIM settings the step maps are built on: this project's (the DDPM
/// schedule, trailing spacing, no clipping) or a diffusers scheduler's.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The training schedule.
    pub schedule: DiscreteSchedule,
    /// DDPM's settings but `steps`.
    pub ddpm: DdpmConfig,
    /// DDIM's settings but `steps` and `eta`.
    pub ddim: DdimConfig,
}

impl Default for Chain {
    fn default() -> Self {
        Self { schedule: DiscreteSchedule::ddpm(), ddpm: DdpmConfig::default(), ddim: DdimConfig::default() }
    }
}

/// `--window`: a ParaDiGMS window of p steps, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// p steps.
    Steps(usize),
    /// Chosen per batch from the measured cost per call.
    Auto,
}

impl std::str::FromStr for Window {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Window::Auto),
            _ => match s.parse::<usize>() {
                Ok(p) if p >= 1 => Ok(Window::Steps(p)),
                _ => Err(format!("{s:?}: expected a window of at least 1 step, or `auto`")),
            },
        }
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Window::Steps(p) => write!(f, "{p}"),
            Window::Auto => f.write_str("auto"),
        }
    }
}

/// A number of steps, or the string `"auto"`.
impl serde::Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Window::Steps(p) => s.serialize_u64(*p as u64),
            Window::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Steps(usize),
            Name(String),
        }
        match Stored::deserialize(d)? {
            Stored::Steps(p) => Ok(Window::Steps(p)),
            Stored::Name(name) => name.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_reads_steps_or_auto_from_flags_and_json() {
        assert_eq!("32".parse::<Window>().unwrap(), Window::Steps(32));
        assert_eq!("auto".parse::<Window>().unwrap(), Window::Auto);
        for bad in ["0", "-3", "all", ""] {
            assert!(bad.parse::<Window>().is_err(), "{bad:?}");
        }
        for w in [Window::Steps(7), Window::Auto] {
            let json = serde_json::to_string(&w).unwrap();
            assert_eq!(serde_json::from_str::<Window>(&json).unwrap(), w, "{json}");
        }
        assert_eq!(serde_json::to_string(&Window::Steps(7)).unwrap(), "7", "stored as before: a number");
        let auto = SamplerArgs { window: Some(Window::Auto), ..Default::default() };
        assert!(auto.is_parallel() && auto.label().ends_with("-paradigms-pauto-tol0.1"), "{}", auto.label());
    }
}
