//! ParaDiGMS reproduces the sequential sampler with identical noise when `p = 1` or `τ = 0`
//! (`docs/samplers.md` §8.5), for every step map, in f32 (≤ 1e-6 relative per sample), also when its
//! batched calls are split by a [`Chunked`] denoiser.

mod common;

use candle_core::DType;
use cdm_core::{Chunked, DiscreteSchedule};
use cdm_samplers::{
    DdimConfig, DdpmConfig, DdpmVariance, EdmHeunConfig, EdmStochasticConfig, Paradigms, ParadigmsConfig, Sampler,
    SamplerNoise, Sequential, StepMap, TrajectoryRecorder,
};
use common::{max_rel_err, reference_mixture, seeded};

const REL_TOL: f64 = 1e-6;

fn maps() -> Vec<(&'static str, Box<dyn StepMap>)> {
    let schedule = DiscreteSchedule::ddpm();
    vec![
        ("ddpm-100", Box::new(DdpmConfig { steps: 100, ..Default::default() }.build(&schedule).unwrap())),
        (
            "ddpm-large-100",
            Box::new(
                DdpmConfig { steps: 100, variance: DdpmVariance::FixedLarge, ..Default::default() }
                    .build(&schedule)
                    .unwrap(),
            ),
        ),
        ("ddim-50", Box::new(DdimConfig { steps: 50, ..Default::default() }.build(&schedule).unwrap())),
        ("ddim-eta-50", Box::new(DdimConfig { steps: 50, eta: 0.5, ..Default::default() }.build(&schedule).unwrap())),
        ("edm-heun-18", Box::new(EdmHeunConfig::default().build().unwrap())),
        (
            "edm-churn-18",
            Box::new(
                EdmStochasticConfig { s_churn: 10.0, s_min: 0.05, s_max: 50.0, ..Default::default() }.build().unwrap(),
            ),
        ),
    ]
}

fn check(window: usize, tolerance: f64, max_rounds: Option<usize>) {
    let gmm = reference_mixture();
    let noise = seeded(11, 4, 8, DType::F32);
    for (name, map) in maps() {
        let seq = Sequential.sample(&gmm, map.as_ref(), &noise, &mut ()).unwrap();
        let cfg = ParadigmsConfig { window, tolerance, max_rounds };
        let chunked = Chunked::new(&gmm, 37).unwrap();
        let par = Paradigms::new(cfg).unwrap().sample(&chunked, map.as_ref(), &noise, &mut ()).unwrap();
        let err = max_rel_err(&par.x, &seq.x);
        println!("p={window} τ={tolerance} {name}: rel err {err:.1e}, seq {:?}, par {:?}", seq.stats, par.stats);
        assert!(err <= REL_TOL, "{name}: relative error {err:e}");
        assert!(par.stats.rounds <= map.steps());
        if window == 1 {
            assert_eq!(par.stats.rounds, map.steps(), "{name}");
            assert_eq!(par.stats.nfe, seq.stats.nfe, "{name}");
        }
    }
}

#[test]
fn window_one_equals_sequential() {
    check(1, 0.1, None);
}

#[test]
fn zero_tolerance_equals_sequential() {
    check(16, 0.0, None);
    check(usize::MAX, 0.0, None);
}

#[test]
fn max_rounds_finishes_sequentially_and_exactly() {
    check(8, 0.0, Some(5));
    let gmm = reference_mixture();
    let ddpm = DdpmConfig { steps: 100, ..Default::default() }.build(&DiscreteSchedule::ddpm()).unwrap();
    let noise = seeded(3, 4, 8, DType::F32);
    let cfg = ParadigmsConfig { window: 8, tolerance: 0.0, max_rounds: Some(5) };
    let par = Paradigms::new(cfg).unwrap().sample(&gmm, &ddpm, &noise, &mut ()).unwrap();
    assert!(!par.stats.converged() && par.stats.finished_sequentially >= 100 - 5 * 8);
    assert_eq!(par.stats.rounds, 5 + par.stats.finished_sequentially);
}

#[test]
fn trajectories_agree_position_by_position() {
    let gmm = reference_mixture();
    let ddpm = DdpmConfig { steps: 60, ..Default::default() }.build(&DiscreteSchedule::ddpm()).unwrap();
    let noise = seeded(5, 3, 8, DType::F32);
    let (mut seq_traj, mut par_traj) = (TrajectoryRecorder::default(), TrajectoryRecorder::default());
    Sequential.sample(&gmm, &ddpm, &noise, &mut seq_traj).unwrap();
    let cfg = ParadigmsConfig { window: 1, ..Default::default() };
    Paradigms::new(cfg).unwrap().sample(&gmm, &ddpm, &noise, &mut par_traj).unwrap();
    assert_eq!((seq_traj.states.len(), par_traj.states.len()), (61, 61));
    assert_eq!(par_traj.rounds.len(), 60);
    for (j, (a, b)) in par_traj.states.iter().zip(&seq_traj.states).enumerate() {
        assert!(max_rel_err(a, b) <= REL_TOL, "position {j}");
    }
}

#[test]
fn ddim_eta_zero_is_deterministic_and_draws_no_step_noise() {
    let gmm = reference_mixture();
    let ddim = DdimConfig { steps: 50, ..Default::default() }.build(&DiscreteSchedule::ddpm()).unwrap();
    let noise = seeded(9, 4, 8, DType::F64);
    let a = Sequential.sample(&gmm, &ddim, &noise, &mut ()).unwrap();
    let b = Sequential.sample(&gmm, &ddim, &noise, &mut ()).unwrap();
    let init_only = SamplerNoise::explicit(noise.init().clone(), None).unwrap();
    let c = Sequential.sample(&gmm, &ddim, &init_only, &mut ()).unwrap();
    let (a, b, c) = (common::rows(&a.x), common::rows(&b.x), common::rows(&c.x));
    assert_eq!(a, b);
    assert_eq!(a, c);
    // a stochastic map needs its step noise
    let ddpm = DdpmConfig { steps: 50, ..Default::default() }.build(&DiscreteSchedule::ddpm()).unwrap();
    assert!(Sequential.sample(&gmm, &ddpm, &init_only, &mut ()).is_err());
}

#[test]
fn a_sample_does_not_depend_on_its_batch() {
    let gmm = reference_mixture();
    let ddpm = DdpmConfig { steps: 50, ..Default::default() }.build(&DiscreteSchedule::ddpm()).unwrap();
    let churn = EdmStochasticConfig { steps: 10, s_churn: 5.0, ..Default::default() }.build().unwrap();
    let source = cdm_core::NoiseSource::new(21);
    let dev = candle_core::Device::Cpu;
    let big = SamplerNoise::seeded(&source, 0, 6, &[8], DType::F64, &dev).unwrap();
    let small = SamplerNoise::seeded(&source, 2, 2, &[8], DType::F64, &dev).unwrap();
    for map in [&ddpm as &dyn StepMap, &churn] {
        let all = common::rows(&Sequential.sample(&gmm, map, &big, &mut ()).unwrap().x);
        let part = common::rows(&Sequential.sample(&gmm, map, &small, &mut ()).unwrap().x);
        assert_eq!(&all[2..4], &part[..]);
    }
}
