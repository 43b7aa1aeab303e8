//! ParaDiGMS against the numpy reference (`scripts/make_paradigms_fixture.py`, adapted from
//! the project's numpy reference, `docs/samplers.md` §11): same mixture, same x_0 and step
//! noise, f64 throughout.
//! Rounds and evaluations are integers and must match exactly; samples to 1e-10.

mod common;

use cdm_core::DiscreteSchedule;
use cdm_samplers::{DdimConfig, DdpmConfig, Paradigms, ParadigmsConfig, Sampler, SamplerNoise, Sequential, StepMap};
use common::{max_abs_err, npy, reference_mixture};

#[derive(serde::Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    case: String,
    sampler: String,
    steps: usize,
    window: usize,
    tolerance: f64,
    rounds: usize,
    evals: usize,
}

const SAMPLE_TOL: f64 = 1e-10;

#[test]
fn rounds_evals_and_samples_match_the_reference() {
    let golden: Golden =
        serde_json::from_str(&std::fs::read_to_string(common::fixture_dir().join("golden.json")).unwrap()).unwrap();
    let gmm = reference_mixture();
    let schedule = DiscreteSchedule::ddpm();
    let x0 = npy("x0.npy");
    assert_eq!(golden.cases.len(), 3);
    for case in &golden.cases {
        let (map, noise): (Box<dyn StepMap>, _) = match case.sampler.as_str() {
            "ddpm" => (
                Box::new(DdpmConfig { steps: case.steps, ..Default::default() }.build(&schedule).unwrap()),
                SamplerNoise::explicit(x0.clone(), Some(npy(&format!("xi_{}.npy", case.steps)))).unwrap(),
            ),
            "ddim" => (
                Box::new(DdimConfig { steps: case.steps, ..Default::default() }.build(&schedule).unwrap()),
                SamplerNoise::explicit(x0.clone(), None).unwrap(),
            ),
            other => panic!("unknown sampler {other}"),
        };
        let cfg = ParadigmsConfig { window: case.window, tolerance: case.tolerance, ..Default::default() };
        let out = Paradigms::new(cfg).unwrap().sample(&gmm, map.as_ref(), &noise, &mut ()).unwrap();
        let want = npy(&format!("out_{}.npy", case.case));
        let err = max_abs_err(&out.x, &want);
        println!(
            "{}: reference rounds {} evals {} | ours rounds {} nfe {} | max |Δx| {err:.2e}",
            case.case, case.rounds, case.evals, out.stats.rounds, out.stats.nfe
        );
        assert_eq!((out.stats.rounds, out.stats.nfe), (case.rounds, case.evals), "{}", case.case);
        assert!(err < SAMPLE_TOL, "{}: {err:e}", case.case);

        let seq = Sequential.sample(&gmm, map.as_ref(), &noise, &mut ()).unwrap();
        let seq_err = max_abs_err(&seq.x, &npy(&format!("seq_{}{}.npy", case.sampler, case.steps)));
        assert!(seq_err < SAMPLE_TOL, "{} sequential: {seq_err:e}", case.case);
        if case.case == "ddpm1000_p32_tol0.1" {
            assert!(out.stats.rounds <= 80 && out.stats.nfe <= 3 * case.steps, "{:?}", out.stats);
        }
    }
}
