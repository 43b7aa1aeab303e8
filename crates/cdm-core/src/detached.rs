//! [`Detached`]: a [`Denoiser`] whose outputs carry no autograd graph, for inference.
//!
//! candle has no `no_grad` mode: a network with `Var` weights records its graph on every call,
//! and the output keeps every activation of that call alive until the output is dropped or
//! detached. Sampling never back-propagates, so it detaches each output. Under
//! [`Chunked`](crate::Chunked) the order matters: `Chunked::new(Detached(net), m)` drops each
//! chunk's activations as soon as the chunk is done, so peak memory is that of one chunk, while
//! `Detached(Chunked::new(net, m))` keeps all chunks' graphs until the concatenation is detached.
//! Values are unchanged: `Detached(d).ε̂(z, α) = d.ε̂(z, α)`.

use candle_core::Tensor;

use crate::{Denoiser, Result};

/// `inner` with every output detached from the autograd graph; see the
/// [module docs](crate::detached).
#[derive(Clone, Copy, Debug)]
pub struct Detached<D>(pub D);

impl<D: Denoiser> Denoiser for Detached<D> {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> Result<Tensor> {
        Ok(self.0.eps(z, log_snr)?.detach())
    }

    fn eps_at(&self, z: &Tensor, log_snr: &[f64]) -> Result<Tensor> {
        Ok(self.0.eps_at(z, log_snr)?.detach())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    use crate::Chunked;

    /// ε̂ = w·z with a trainable `w`: every call records an op on `w`.
    struct Trainable(Var);

    impl Denoiser for Trainable {
        fn eps(&self, z: &Tensor, _log_snr: &Tensor) -> Result<Tensor> {
            Ok(z.broadcast_mul(self.0.as_tensor())?)
        }
    }

    #[test]
    fn outputs_keep_their_values_and_lose_their_graph() {
        let net = Trainable(Var::new(&[0.5f64], &Device::Cpu).unwrap());
        let z = Tensor::new(&[[1.0f64], [2.0], [3.0]], &Device::Cpu).unwrap();
        let alpha = [0.0, 1.0, 2.0];
        let tracked = net.eps_at(&z, &alpha).unwrap();
        assert!(tracked.track_op());
        for d in [&Detached(&net) as &dyn Denoiser, &Chunked::new(Detached(&net), 2).unwrap()] {
            let out = d.eps_at(&z, &alpha).unwrap();
            assert!(!out.track_op());
            assert_eq!(out.to_vec2::<f64>().unwrap(), tracked.to_vec2::<f64>().unwrap());
        }
    }
}
