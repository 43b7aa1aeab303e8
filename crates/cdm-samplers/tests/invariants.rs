//! Invariants of ParaDiGMS checked through the observer (`docs/samplers.md` §8.4):
//! rounds ≤ S, NFE ≤ evals-per-position·p·rounds, stride ≥ 1, and positions never change once
//! accepted (everything up to and including the next anchor).

mod common;

use candle_core::{DType, Tensor};
use cdm_core::DiscreteSchedule;
use cdm_samplers::{
    DdimConfig, DdpmConfig, EdmHeunConfig, EdmStochasticConfig, Observer, Paradigms, ParadigmsConfig, Round, Sampler,
    StepMap,
};
use common::{reference_mixture, rows, seeded};

/// Remembers every accepted position and checks it is never rewritten.
#[derive(Default)]
struct AcceptanceChecker {
    accepted: Vec<Vec<Vec<f64>>>,
    lo: usize,
    rounds: usize,
}

impl Observer for AcceptanceChecker {
    fn on_start(&mut self, x: &Tensor) {
        self.accepted = vec![rows(x)];
    }

    fn on_round(&mut self, round: &Round<'_>) {
        assert_eq!(round.round, self.rounds);
        assert_eq!(round.window.start, self.lo, "the window starts at the last anchor");
        assert!(round.next_lo > round.window.start, "stride ≥ 1");
        assert_eq!(round.residuals.len(), round.window.len());
        for (q, want) in self.accepted.iter().enumerate() {
            assert_eq!(&rows(&round.trajectory[q]), want, "round {}: accepted position {q} changed", round.round);
        }
        for q in self.accepted.len()..=round.next_lo {
            self.accepted.push(rows(&round.trajectory[q]));
        }
        self.lo = round.next_lo;
        self.rounds += 1;
    }
}

#[test]
fn rounds_nfe_and_acceptance_invariants_hold() {
    let gmm = reference_mixture();
    let schedule = DiscreteSchedule::ddpm();
    let cases: Vec<(Box<dyn StepMap>, usize, f64)> = vec![
        (Box::new(DdpmConfig { steps: 200, ..Default::default() }.build(&schedule).unwrap()), 16, 0.1),
        (Box::new(DdpmConfig { steps: 1000, ..Default::default() }.build(&schedule).unwrap()), 32, 0.1),
        (Box::new(DdimConfig { steps: 100, ..Default::default() }.build(&schedule).unwrap()), 8, 1e-3),
        (Box::new(DdimConfig { steps: 100, eta: 1.0, ..Default::default() }.build(&schedule).unwrap()), 100, 0.1),
        (Box::new(EdmHeunConfig { steps: 40, ..Default::default() }.build().unwrap()), 8, 0.05),
        (Box::new(EdmStochasticConfig { steps: 40, s_churn: 20.0, ..Default::default() }.build().unwrap()), 12, 0.05),
    ];
    for (map, window, tolerance) in cases {
        for dtype in [DType::F32, DType::F64] {
            let noise = seeded(4, 4, 8, dtype);
            let mut checker = AcceptanceChecker::default();
            let cfg = ParadigmsConfig { window, tolerance, ..Default::default() };
            let out = Paradigms::new(cfg).unwrap().sample(&gmm, map.as_ref(), &noise, &mut checker).unwrap();
            let (s, st) = (map.steps(), out.stats);
            let max_evals = (0..s).map(|j| map.evals_at(j)).max().unwrap();
            println!("S={s} p={window} τ={tolerance} {dtype:?}: {st:?}");
            assert!(st.converged() && st.rounds == checker.rounds && checker.lo == s);
            assert!(st.rounds <= s, "{st:?}");
            assert!(st.positions <= window * st.rounds, "{st:?}");
            assert!(st.nfe <= max_evals * window * st.rounds, "{st:?}");
            assert!(st.rounds < s, "τ > 0 should save rounds: {st:?}");
        }
    }
}
