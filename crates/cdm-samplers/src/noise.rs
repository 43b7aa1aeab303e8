//! The random numbers a sampler consumes: the initial noise ξ_init and the per-step ξ_j.
//!
//! Both the sequential sampler and ParaDiGMS read the **same** numbers from a [`SamplerNoise`]:
//! ξ_init first, then ξ_0, ξ_1, …, ξ_{S−1} in order. A seeded source draws sample `i`'s numbers
//! from stream `i` of the forks `"init"` and `"steps"` of a [`NoiseSource`], so they depend only
//! on `(seed, i)` — never on the batch size or on which sampler runs. Explicit arrays (e.g. a
//! reference implementation's) can be passed instead. Maps that are ODEs draw no step noise.

use candle_core::{DType, Device, Tensor};
use cdm_core::{NoiseSource, Streams};

use crate::{Error, Result};

/// ξ_init and the source of the per-step ξ_j of one batch.
#[derive(Clone, Debug)]
pub struct SamplerNoise {
    init: Tensor,
    steps: StepNoise,
}

#[derive(Clone, Debug)]
enum StepNoise {
    Seeded(Streams),
    Explicit(Option<Tensor>),
}

impl SamplerNoise {
    /// Samples `first .. first + count` of `source`, each of shape `sample_shape`, drawn in f64
    /// on the host and cast to `dtype` on `device`.
    pub fn seeded(
        source: &NoiseSource,
        first: u64,
        count: usize,
        sample_shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        if count == 0 {
            return Err(Error::invalid("samples", count, "must be at least 1"));
        }
        let init = source.fork("init").streams(first, count).normal(sample_shape, dtype, device)?;
        Ok(Self { init, steps: StepNoise::Seeded(source.fork("steps").streams(first, count)) })
    }

    /// Explicit standard normals: `init` (B, …) and, for maps with step noise, `steps` (S, B, …).
    pub fn explicit(init: Tensor, steps: Option<Tensor>) -> Result<Self> {
        if init.rank() == 0 || init.dim(0)? == 0 {
            return Err(Error::shape("SamplerNoise::explicit", ["B ≥ 1", "…"], init.dims()));
        }
        if let Some(s) = &steps
            && (s.rank() != init.rank() + 1 || s.dims()[1..] != *init.dims())
        {
            return Err(Error::shape("SamplerNoise::explicit steps", format!("(S, {:?})", init.dims()), s.dims()));
        }
        Ok(Self { init, steps: StepNoise::Explicit(steps) })
    }

    /// The initial standard normals ξ_init (B, …).
    pub fn init(&self) -> &Tensor {
        &self.init
    }

    /// Batch size B.
    pub fn batch(&self) -> usize {
        self.init.dims()[0]
    }

    /// A fresh reader of ξ_0, ξ_1, … for an `S`-step map.
    pub(crate) fn reader(&self, steps: usize) -> Result<StepReader> {
        let init = &self.init;
        match &self.steps {
            StepNoise::Seeded(streams) => Ok(StepReader::Seeded {
                streams: streams.clone(),
                shape: init.dims()[1..].to_vec(),
                dtype: init.dtype(),
                device: init.device().clone(),
            }),
            StepNoise::Explicit(Some(t)) if t.dim(0)? == steps => Ok(StepReader::Explicit { all: t.clone(), next: 0 }),
            StepNoise::Explicit(Some(t)) => {
                Err(Error::shape("SamplerNoise step noise", format!("({steps}, …)"), t.dims()))
            }
            StepNoise::Explicit(None) => {
                Err(Error::invalid("noise", "none", "this step map needs explicit step noise (S, B, …)"))
            }
        }
    }

    /// All of ξ_0 … ξ_{S−1} as one (S, B, …) tensor (the same numbers a reader yields).
    pub(crate) fn all_steps(&self, steps: usize) -> Result<Tensor> {
        let mut reader = self.reader(steps)?;
        match reader {
            StepReader::Explicit { ref all, .. } => Ok(all.clone()),
            StepReader::Seeded { .. } => {
                let draws = (0..steps).map(|_| reader.next_step()).collect::<Result<Vec<_>>>()?;
                Ok(Tensor::stack(&draws, 0)?)
            }
        }
    }
}

/// Yields ξ_j (B, …) in step order.
pub(crate) enum StepReader {
    Seeded { streams: Streams, shape: Vec<usize>, dtype: DType, device: Device },
    Explicit { all: Tensor, next: usize },
}

impl StepReader {
    /// The next ξ_j.
    pub(crate) fn next_step(&mut self) -> Result<Tensor> {
        match self {
            StepReader::Seeded { streams, shape, dtype, device } => Ok(streams.normal(shape, *dtype, device)?),
            StepReader::Explicit { all, next } => {
                *next += 1;
                Ok(all.get(*next - 1)?)
            }
        }
    }
}
