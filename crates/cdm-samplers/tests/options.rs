//! Bad options and mismatched shapes are typed errors naming the field.

mod common;

use candle_core::{DType, Device, Tensor};
use cdm_core::DiscreteSchedule;
use cdm_samplers::{
    DdimConfig, DdpmConfig, EdmHeunConfig, Error, Paradigms, ParadigmsConfig, Sampler, SamplerNoise, Sequential,
    StepMap,
};
use common::reference_mixture;

fn field(err: Error) -> &'static str {
    match err {
        Error::InvalidArgument { field, .. } => field,
        other => panic!("expected an option error, got {other}"),
    }
}

#[test]
fn bad_paradigms_options_name_their_field() {
    let bad = |cfg: ParadigmsConfig| field(Paradigms::new(cfg).unwrap_err());
    let base = ParadigmsConfig::default();
    assert_eq!(bad(ParadigmsConfig { window: 0, ..base }), "window");
    assert_eq!(bad(ParadigmsConfig { tolerance: -0.1, ..base }), "tolerance");
    assert_eq!(bad(ParadigmsConfig { tolerance: f64::NAN, ..base }), "tolerance");
    assert_eq!(bad(ParadigmsConfig { max_rounds: Some(0), ..base }), "max_rounds");
    assert!(Paradigms::new(ParadigmsConfig::no_window(0.0)).is_ok());
}

#[test]
fn bad_step_counts_name_their_field() {
    let schedule = DiscreteSchedule::ddpm();
    for steps in [0, 1001] {
        assert_eq!(field(DdpmConfig { steps, ..Default::default() }.build(&schedule).unwrap_err()), "steps");
        assert_eq!(field(DdimConfig { steps, ..Default::default() }.build(&schedule).unwrap_err()), "steps");
    }
    assert_eq!(field(EdmHeunConfig { steps: 0, ..Default::default() }.build().unwrap_err()), "steps");
    assert_eq!(field(DdimConfig { eta: 1.5, ..Default::default() }.build(&schedule).unwrap_err()), "eta");
}

#[test]
fn mismatched_shapes_are_shape_errors() {
    let dev = Device::Cpu;
    let gmm = reference_mixture();
    let ddpm = DdpmConfig { steps: 10, ..Default::default() }.build(&DiscreteSchedule::ddpm()).unwrap();
    let init = Tensor::zeros((4, 8), DType::F64, &dev).unwrap();
    // step noise of the wrong sample shape
    let wrong = Tensor::zeros((10, 4, 7), DType::F64, &dev).unwrap();
    assert!(matches!(SamplerNoise::explicit(init.clone(), Some(wrong)), Err(Error::ShapeMismatch { .. })));
    // step noise for the wrong number of steps
    let eleven =
        SamplerNoise::explicit(init.clone(), Some(Tensor::zeros((11, 4, 8), DType::F64, &dev).unwrap())).unwrap();
    for sampler in [&Sequential as &dyn Sampler, &Paradigms::new(ParadigmsConfig::default()).unwrap()] {
        assert!(matches!(sampler.sample(&gmm, &ddpm, &eleven, &mut ()), Err(Error::ShapeMismatch { .. })));
        // no step noise for a stochastic map
        let none = SamplerNoise::explicit(init.clone(), None).unwrap();
        assert_eq!(field(sampler.sample(&gmm, &ddpm, &none, &mut ()).unwrap_err()), "noise");
    }
    // samples of the wrong dimension for the denoiser
    let noise = common::seeded(0, 2, 3, DType::F64);
    assert!(matches!(Sequential.sample(&gmm, &ddpm, &noise, &mut ()), Err(Error::Core(_))));
    // one step index per row
    let x = Tensor::zeros((3, 8), DType::F64, &dev).unwrap();
    assert!(matches!(ddpm.apply(&gmm, &x, &[0, 1], None), Err(Error::ShapeMismatch { .. })));
    assert!(SamplerNoise::explicit(Tensor::zeros((0, 8), DType::F64, &dev).unwrap(), None).is_err());
}
