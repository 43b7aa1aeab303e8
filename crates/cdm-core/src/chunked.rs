//! [`Chunked`]: a [`Denoiser`] that passes at most `max_rows` rows to the wrapped one per call.
//!
//! **Why a cap.** The estimators and samplers of this workspace batch aggressively: ITD
//! evaluates all `B·K` points of a batch in one call, the CDL both log-densities of every
//! instance, ParaDiGMS a whole window of `L·B` positions. A network's memory grows with the
//! rows of one call (every layer's activations, kept for the backward pass when training),
//! so the caller bounds it: a UNet at about 256 rows, the 2-D MLP at 65 536. The cap is a
//! property of the network and the device, not of an algorithm, hence one adapter around the
//! network instead of an argument threaded through every estimator and step map.
//!
//! **What it computes.** For `z` (N, …) with per-row log-SNRs `α`, chunk `c` is rows
//! `[c·m, min((c+1)·m, N))` with `m = max_rows`, and
//!
//! ```text
//! Chunked(d, m).ε̂(z, α) = cat_c d.ε̂(z[chunk c], α[chunk c])       (along rows)
//! ```
//!
//! with a single direct call when `N ≤ m`. A denoiser's rows are independent (ε̂ of a row
//! depends only on that row and its α), so the result equals the uncapped call row for row.
//! `narrow` and `cat` have a backward pass, so gradients reach the wrapped network through
//! every chunk. That also means every chunk's graph lives as long as the result: for inference
//! on trainable weights, wrap [`Detached`](crate::Detached) inside, `Chunked::new(Detached(net), m)`.

use candle_core::Tensor;

use crate::{Denoiser, Error, Result};

/// A [`Denoiser`] evaluating `inner` on at most `max_rows` rows per call; see the
/// [module docs](crate::chunked).
///
/// Wrap an owned network, a reference (`Chunked::new(&net, 256)`) or a `&dyn Denoiser`.
#[derive(Clone, Copy, Debug)]
pub struct Chunked<D> {
    inner: D,
    max_rows: usize,
}

impl<D> Chunked<D> {
    /// `inner` capped at `max_rows ≥ 1` rows per call.
    pub fn new(inner: D, max_rows: usize) -> Result<Self> {
        if max_rows == 0 {
            return Err(Error::invalid("max_rows", max_rows, "must be at least 1"));
        }
        Ok(Self { inner, max_rows })
    }

    /// Evaluates `call(start, len)` on every chunk of `rows` rows and concatenates the results.
    fn by_chunks(&self, rows: usize, call: impl Fn(usize, usize) -> Result<Tensor>) -> Result<Tensor> {
        if rows <= self.max_rows {
            return call(0, rows);
        }
        let parts = (0..rows)
            .step_by(self.max_rows)
            .map(|start| call(start, self.max_rows.min(rows - start)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::cat(&parts, 0)?)
    }
}

impl<D: Denoiser> Denoiser for Chunked<D> {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> Result<Tensor> {
        let rows = z.dim(0)?;
        if log_snr.dims() != [rows] {
            return Err(Error::shape("Chunked::eps log_snr", [rows], log_snr.dims()));
        }
        self.by_chunks(rows, |start, len| self.inner.eps(&z.narrow(0, start, len)?, &log_snr.narrow(0, start, len)?))
    }

    fn eps_at(&self, z: &Tensor, log_snr: &[f64]) -> Result<Tensor> {
        let rows = z.dim(0)?;
        if log_snr.len() != rows {
            return Err(Error::shape("Chunked::eps_at log_snr", [rows], [log_snr.len()]));
        }
        self.by_chunks(rows, |start, len| self.inner.eps_at(&z.narrow(0, start, len)?, &log_snr[start..start + len]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    use crate::{Gaussian, GaussianMixture, MixtureComponent};

    /// `n` rows of `dim` values and `n` log-SNRs, all distinct.
    fn inputs(n: usize, dim: usize) -> (Tensor, Vec<f64>) {
        let z: Vec<f64> = (0..n * dim).map(|i| ((i * 37 % 101) as f64 - 50.0) / 7.0).collect();
        let alpha = (0..n).map(|i| -8.0 + 16.0 * i as f64 / n as f64).collect();
        (Tensor::from_vec(z, (n, dim), &Device::Cpu).unwrap(), alpha)
    }

    fn mixture() -> GaussianMixture {
        let comp =
            |w: f64, m: [f64; 2], v: [f64; 2]| MixtureComponent { weight: w, mean: m.to_vec(), variance: v.to_vec() };
        GaussianMixture::new(vec![comp(0.3, [1.0, 2.0], [0.5, 0.1]), comp(0.7, [-1.0, 0.0], [1.0, 2.0])]).unwrap()
    }

    fn rows(t: Tensor) -> Vec<Vec<f64>> {
        t.to_vec2::<f64>().unwrap()
    }

    #[test]
    fn chunks_equal_the_direct_call_bit_for_bit() {
        let n = 10;
        let (z, alpha) = inputs(n, 2);
        let alpha_t = Tensor::from_slice(&alpha, n, &Device::Cpu).unwrap();
        let gauss = Gaussian::new(vec![0.5, -1.0], vec![2.0, 1.2, 1.2, 1.0]).unwrap();
        let gmm = mixture();
        for d in [&gauss as &dyn Denoiser, &gmm] {
            let direct = rows(d.eps_at(&z, &alpha).unwrap());
            // 3 and 4 do not divide 10; 1, n − 1, n, n + 1 are the edges
            for cap in [1, 3, 4, n - 1, n, n + 1, usize::MAX] {
                let chunked = Chunked::new(d, cap).unwrap();
                assert_eq!(rows(chunked.eps_at(&z, &alpha).unwrap()), direct, "eps_at, cap {cap}");
                assert_eq!(rows(chunked.eps(&z, &alpha_t).unwrap()), direct, "eps, cap {cap}");
            }
        }
    }

    /// ε̂ = z ⊙ w + α·b with trainable `w`, `b` (D,): row-independent, differentiable.
    struct Linear {
        w: Var,
        b: Var,
    }

    impl Denoiser for Linear {
        fn eps(&self, z: &Tensor, log_snr: &Tensor) -> Result<Tensor> {
            let shift = log_snr.unsqueeze(1)?.broadcast_mul(&self.b.unsqueeze(0)?)?;
            Ok(z.broadcast_mul(&self.w.unsqueeze(0)?)?.add(&shift)?)
        }
    }

    #[test]
    fn gradients_through_the_chunks_equal_the_unchunked_ones() {
        let dev = Device::Cpu;
        let net = Linear {
            w: Var::from_vec(vec![2.0f64, -3.0, 0.5], 3, &dev).unwrap(),
            b: Var::from_vec(vec![1.0f64, 0.25, -1.0], 3, &dev).unwrap(),
        };
        // small integers and dyadic weights: every sum is exact in f64, whatever its order
        let z = Var::from_vec((0..21).map(|i| (i % 5) as f64 - 2.0).collect(), (7, 3), &dev).unwrap();
        let alpha: Vec<f64> = (0..7).map(|i| i as f64 - 3.0).collect();
        let grads = |d: &dyn Denoiser| {
            let loss = d.eps_at(z.as_tensor(), &alpha).unwrap().sqr().unwrap().sum_all().unwrap();
            let g = loss.backward().unwrap();
            [net.w.as_tensor(), net.b.as_tensor(), z.as_tensor()]
                .map(|v| g.get(v).expect("gradient").flatten_all().unwrap().to_vec1::<f64>().unwrap())
        };
        let direct = grads(&net);
        for cap in [1, 3, 6] {
            assert_eq!(grads(&Chunked::new(&net, cap).unwrap()), direct, "cap {cap}");
        }
    }

    #[test]
    fn bad_arguments_are_typed_errors() {
        let gauss = Gaussian::isotropic(vec![0.0, 0.0], 1.0).unwrap();
        assert!(matches!(Chunked::new(&gauss, 0), Err(Error::InvalidArgument { field: "max_rows", .. })));
        let (z, alpha) = inputs(5, 2);
        let chunked = Chunked::new(&gauss, 2).unwrap();
        assert!(matches!(chunked.eps_at(&z, &alpha[..4]), Err(Error::ShapeMismatch { .. })));
        let short = Tensor::from_slice(&alpha[..4], 4, &Device::Cpu).unwrap();
        assert!(matches!(chunked.eps(&z, &short), Err(Error::ShapeMismatch { .. })));
    }
}
