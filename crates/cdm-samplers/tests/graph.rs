//! Sampling a network with trainable weights keeps no autograd graph between steps.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use cdm_core::{Denoiser, DiscreteSchedule};
use cdm_samplers::{DdpmConfig, Paradigms, ParadigmsConfig, Sampler, Sequential};

/// ε̂ = w·z with a trainable `w`: every call records an op on `w`.
struct Trainable(Var);

impl Denoiser for Trainable {
    fn eps(&self, z: &Tensor, _log_snr: &Tensor) -> cdm_core::Result<Tensor> {
        Ok(z.broadcast_mul(self.0.as_tensor())?)
    }
}

#[test]
fn samples_of_a_trainable_network_carry_no_graph() {
    let net = Trainable(Var::new(&[0.5f32], &Device::Cpu).unwrap());
    let ddpm = DdpmConfig { steps: 50, ..Default::default() }.build(&DiscreteSchedule::ddpm()).unwrap();
    let noise = common::seeded(0, 8, 2, DType::F32);
    let seq = Sequential.sample(&net, &ddpm, &noise, &mut ()).unwrap();
    assert!(!seq.x.track_op(), "the sequential chain kept the graph of all its steps");
    let par = Paradigms::new(ParadigmsConfig { window: 10, ..Default::default() }).unwrap();
    let out = par.sample(&net, &ddpm, &noise, &mut ()).unwrap();
    assert!(!out.x.track_op(), "the Picard iteration kept the graph of all its rounds");
}
