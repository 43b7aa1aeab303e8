//! [`Sharded`]: a [`Denoiser`] whose every call is split over the ranks of a [`Collective`].
//!
//! Every rank passes the same `N` rows; rank `r` evaluates its [`Shard::balanced`] share
//! `[⌊r·N/W⌋, ⌊(r+1)·N/W⌋)` of the `W` ranks, and the shares are all-gathered in rank order:
//!
//! ```text
//! Sharded(d, world).ε̂(z, α) = cat_r d.ε̂(z[shard r], α[shard r])       (along rows, on every rank)
//! ```
//!
//! A denoiser's rows are independent, so this is the one-process call row for row, up to
//! the rounding of a network evaluated at a different batch size. Every rank receives the
//! same bits (the all-gather copies, it does not add), so whatever a sampler computes from the
//! result stays identical on every rank. That is how samplers run distributed without knowing
//! it: ParaDiGMS's window of `L·B` rows is one call, split over the ranks; the Picard sums, the
//! tolerance test and the window slide run on every rank on identical tensors. A sequential
//! sampler splits its batch the same way.
//!
//! For inference: the gathered tensor is built from host or device buffers and has no gradient.
//! Cap each rank's rows with [`cdm_core::Chunked`] inside: `Sharded::new(Chunked::new(net, m)?, &world)`.

use candle_core::Tensor;
use cdm_core::Denoiser;

use crate::{Collective, Shard};

/// A [`Denoiser`] evaluating each rank's share of every call and all-gathering the results;
/// see the [module docs](crate::sharded).
pub struct Sharded<'w, D> {
    inner: D,
    world: &'w dyn Collective,
}

impl<'w, D> Sharded<'w, D> {
    /// `inner` split over the ranks of `world`; every rank must make the same calls.
    pub fn new(inner: D, world: &'w dyn Collective) -> Self {
        Self { inner, world }
    }

    /// Evaluates `call(start, len)` on this rank's share of `rows` and gathers every rank's.
    fn gathered(
        &self,
        rows: usize,
        call: impl Fn(usize, usize) -> cdm_core::Result<Tensor>,
    ) -> cdm_core::Result<Tensor> {
        if self.world.world_size() == 1 {
            return call(0, rows);
        }
        let shard = Shard::balanced(rows, self.world);
        let mine = call(shard.start, shard.len)?;
        self.world.all_gather(&mine).map_err(|e| cdm_core::Error::Candle(candle_core::Error::wrap(e)))
    }
}

impl<D: Denoiser> Denoiser for Sharded<'_, D> {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> cdm_core::Result<Tensor> {
        let rows = z.dim(0)?;
        if log_snr.dims() != [rows] {
            return Err(cdm_core::Error::shape("Sharded::eps log_snr", [rows], log_snr.dims()));
        }
        self.gathered(rows, |start, len| match len {
            // an empty share: no call, but this rank still joins the gather
            0 => Ok(z.narrow(0, start, 0)?),
            _ => self.inner.eps(&z.narrow(0, start, len)?, &log_snr.narrow(0, start, len)?),
        })
    }

    fn eps_at(&self, z: &Tensor, log_snr: &[f64]) -> cdm_core::Result<Tensor> {
        let rows = z.dim(0)?;
        if log_snr.len() != rows {
            return Err(cdm_core::Error::shape("Sharded::eps_at log_snr", [rows], [log_snr.len()]));
        }
        self.gathered(rows, |start, len| match len {
            0 => Ok(z.narrow(0, start, 0)?),
            _ => self.inner.eps_at(&z.narrow(0, start, len)?, &log_snr[start..start + len]),
        })
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use cdm_core::Gaussian;

    use super::*;
    use crate::SingleProcess;

    #[test]
    fn one_rank_is_the_direct_call_and_bad_log_snrs_are_typed_errors() {
        let gauss = Gaussian::new(vec![0.5, -1.0], vec![2.0, 1.2, 1.2, 1.0]).unwrap();
        let z = Tensor::new(&[[1.0f64, 2.0], [-3.0, 0.5], [0.0, 4.0]], &Device::Cpu).unwrap();
        let alpha = [-2.0, 0.0, 3.0];
        let sharded = Sharded::new(&gauss, &SingleProcess);
        let direct = gauss.eps_at(&z, &alpha).unwrap().to_vec2::<f64>().unwrap();
        assert_eq!(sharded.eps_at(&z, &alpha).unwrap().to_vec2::<f64>().unwrap(), direct);
        let alpha_t = Tensor::new(&alpha, &Device::Cpu).unwrap();
        assert_eq!(sharded.eps(&z, &alpha_t).unwrap().to_vec2::<f64>().unwrap(), direct);
        assert!(matches!(sharded.eps_at(&z, &alpha[..2]), Err(cdm_core::Error::ShapeMismatch { .. })));
        let short = alpha_t.narrow(0, 0, 2).unwrap();
        assert!(matches!(sharded.eps(&z, &short), Err(cdm_core::Error::ShapeMismatch { .. })));
    }
}
