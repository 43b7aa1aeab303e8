//! Seeded, host-side noise with one stream per sample.
//!
//! candle cannot seed its CPU RNG, and device RNGs differ between backends, so every random
//! number in the workspace is drawn here on the host (ChaCha8, portable across platforms and
//! versions) and uploaded. A [`NoiseSource`] is a `(seed, domain)` pair; sample `i` draws from
//! ChaCha stream `i` of that key, so **sample i's noise depends only on (seed, domain, i)** —
//! never on the batch it was drawn in or on the batch size. [`NoiseSource::fork`] derives
//! independent domains for independent purposes ("init", "step noise", "itd", …).

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::Result;

/// A reproducible source of per-sample random streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoiseSource {
    seed: u64,
    domain: u64,
    first: u64,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl NoiseSource {
    /// The root source of a seed.
    pub fn new(seed: u64) -> Self {
        Self { seed, domain: 0, first: 0 }
    }

    /// The seed this source was created from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// An independent source for a named purpose (stable FNV-1a hash of the label).
    pub fn fork(&self, label: &str) -> Self {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for b in label.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.fork_index(h)
    }

    /// An independent source for an index (e.g. a training step).
    pub fn fork_index(&self, index: u64) -> Self {
        Self { seed: self.seed, domain: splitmix64(self.domain ^ splitmix64(index)), first: self.first }
    }

    /// The same source with sample indices shifted by `first`: batch row `i` then draws the
    /// stream of global sample `first + i`. Use it to evaluate a dataset in chunks.
    pub fn with_offset(&self, first: u64) -> Self {
        Self { first: self.first + first, ..*self }
    }

    /// The global sample index of batch row 0 (the sum of the offsets).
    pub fn offset(&self) -> u64 {
        self.first
    }

    /// The random stream of sample `index` (after the offset).
    pub fn stream(&self, index: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix64(self.seed) ^ self.domain);
        rng.set_stream(self.first + index);
        rng
    }

    /// The streams of samples `first .. first + count`.
    pub fn streams(&self, first: u64, count: usize) -> Streams {
        Streams { rngs: (0..count as u64).map(|i| self.stream(first + i)).collect() }
    }
}

/// The random streams of a batch of samples, consumed in step.
#[derive(Clone, Debug)]
pub struct Streams {
    rngs: Vec<ChaCha8Rng>,
}

impl Streams {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.rngs.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.rngs.is_empty()
    }

    /// `per_sample` standard normals from each stream, sample-major (B·per_sample values).
    pub fn normal_f64(&mut self, per_sample: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.rngs.len() * per_sample);
        for rng in &mut self.rngs {
            out.extend((0..per_sample).map(|_| rng.sample::<f64, _>(StandardNormal)));
        }
        out
    }

    /// `per_sample` uniforms in [0, 1) from each stream, sample-major.
    pub fn uniform_f64(&mut self, per_sample: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.rngs.len() * per_sample);
        for rng in &mut self.rngs {
            out.extend((0..per_sample).map(|_| rng.random::<f64>()));
        }
        out
    }

    /// A (B, …`shape`) tensor of standard normals, drawn in f64 and cast to `dtype`.
    pub fn normal(&mut self, shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let per_sample: usize = shape.iter().product();
        let values = self.normal_f64(per_sample);
        let mut dims = vec![self.rngs.len()];
        dims.extend_from_slice(shape);
        Ok(Tensor::from_vec(values, dims, device)?.to_dtype(dtype)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_noise_does_not_depend_on_the_batch() {
        let src = NoiseSource::new(7).fork("init");
        let big = src.streams(0, 10).normal_f64(5);
        let small = src.streams(3, 2).normal_f64(5);
        assert_eq!(&big[15..25], &small[..]);
        let shifted = src.with_offset(3).streams(0, 2).normal_f64(5);
        assert_eq!(&big[15..25], &shifted[..]);
    }

    #[test]
    fn same_seed_is_bit_identical_and_forks_differ() {
        let a = NoiseSource::new(1).streams(0, 3).normal(&[4], DType::F32, &Device::Cpu).unwrap();
        let b = NoiseSource::new(1).streams(0, 3).normal(&[4], DType::F32, &Device::Cpu).unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
        let x = NoiseSource::new(1).fork("a").streams(0, 1).normal_f64(8);
        let y = NoiseSource::new(1).fork("b").streams(0, 1).normal_f64(8);
        let z = NoiseSource::new(2).fork("a").streams(0, 1).normal_f64(8);
        assert_ne!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn normals_have_unit_moments_within_three_standard_errors() {
        let v = NoiseSource::new(3).streams(0, 4).normal_f64(25_000);
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!(mean.abs() < 3.0 / n.sqrt(), "mean {mean}");
        // Var of the sample variance of N(0,1) is 2/(n−1)
        assert!((var - 1.0).abs() < 3.0 * (2.0 / (n - 1.0)).sqrt(), "var {var}");
    }
}
