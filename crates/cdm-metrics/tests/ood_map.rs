//! The Figure 1 error map: zero for the exact denoiser, low near the forward paths and high
//! away from them for a model that only learned where the data went.

use std::cell::Cell;

mod common;

use candle_core::{DType, Device, Tensor};
use cdm_core::{Denoiser, DiscreteSchedule, Gaussian, GaussianMixture};
use cdm_metrics::{Error, ood_error_map};
use common::TrainedLike;

/// Counts calls to the wrapped denoiser.
struct Counting<'a, D> {
    inner: &'a D,
    calls: Cell<usize>,
}

impl<D: Denoiser> Denoiser for Counting<'_, D> {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> cdm_core::Result<Tensor> {
        self.calls.set(self.calls.get() + 1);
        self.inner.eps(z, log_snr)
    }
}

fn grid() -> (Vec<usize>, Vec<f64>) {
    ((0..1000).step_by(25).collect(), (0..=120).map(|i| -30.0 + 0.5 * i as f64).collect())
}

#[test]
fn the_exact_denoiser_has_no_error_anywhere() {
    let gmm = GaussianMixture::two_mode_1d();
    let (timesteps, values) = grid();
    let counting = Counting { inner: &gmm, calls: Cell::new(0) };
    let schedule = DiscreteSchedule::ddpm();
    let map = ood_error_map(&counting, &gmm, &schedule, &timesteps, &values, &Device::Cpu, DType::F64).unwrap();
    assert_eq!(counting.calls.get(), 1, "the whole grid goes through one batched call");
    assert_eq!((map.error.len(), map.error[0].len()), (timesteps.len(), values.len()));
    assert_eq!(map.log_snrs[1], schedule.log_snrs()[25]);
    assert!(map.max_error() < 1e-10, "max error {}", map.max_error());
}

#[test]
fn a_model_fitted_on_the_forward_paths_is_wrong_away_from_them() {
    let gmm = GaussianMixture::two_mode_1d();
    let model = TrainedLike::two_mode();
    let (timesteps, values) = grid();
    let map =
        ood_error_map(&model, &gmm, &DiscreteSchedule::ddpm(), &timesteps, &values, &Device::Cpu, DType::F64).unwrap();
    // ≈ ±2 std around each unit-variance noised mode of weight ½
    let regions = map.region_means(&gmm, 0.5 * 0.054).unwrap();
    eprintln!("{regions:?}, ratio {:.1}, max {:.2}", regions.ratio(), map.max_error());
    assert_eq!(regions.near_cells + regions.away_cells, timesteps.len() * values.len());
    assert!(regions.ratio() > 10.0, "away/near ratio {}", regions.ratio());
    // the error grows with the distance to the data: at t = 0 it is worst at the grid's edge
    let first = &map.error[0];
    assert!(first[0] > first[60] && first[120] > first[60]);
}

#[test]
fn a_low_precision_model_is_evaluated_in_its_dtype() {
    let gmm = GaussianMixture::two_mode_1d();
    let map =
        ood_error_map(&gmm, &gmm, &DiscreteSchedule::ddpm(), &[10, 500], &[-6.0, 0.0, 6.0], &Device::Cpu, DType::F32)
            .unwrap();
    // f32 rounding of ε̂ only, amplified by 1/√σ(−α) ≤ 1/0.03 at t = 10
    assert!(map.max_error() < 1e-4, "{}", map.max_error());
}

#[test]
fn bad_grids_are_typed_errors() {
    let gmm = GaussianMixture::two_mode_1d();
    let s = DiscreteSchedule::ddpm();
    let cpu = &Device::Cpu;
    let plane = Gaussian::isotropic(vec![0.0, 0.0], 1.0).unwrap();
    assert!(matches!(
        ood_error_map(&plane, &plane, &s, &[0], &[0.0], cpu, DType::F64),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        ood_error_map(&gmm, &gmm, &s, &[1000], &[0.0], cpu, DType::F64),
        Err(Error::InvalidArgument { field: "timesteps", .. })
    ));
    assert!(matches!(
        ood_error_map(&gmm, &gmm, &s, &[], &[0.0], cpu, DType::F64),
        Err(Error::InvalidArgument { field: "grid", .. })
    ));
    assert!(matches!(
        ood_error_map(&gmm, &gmm, &s, &[0], &[f64::NAN], cpu, DType::F64),
        Err(Error::InvalidArgument { field: "values", .. })
    ));
    let map = ood_error_map(&gmm, &gmm, &s, &[0, 999], &[-5.0, 30.0], cpu, DType::F64).unwrap();
    assert!(matches!(map.region_means(&gmm, 0.0), Err(Error::InvalidArgument { field: "min_density", .. })));
    assert!(matches!(map.region_means(&gmm, 10.0), Err(Error::InvalidArgument { field: "min_density", .. })));
}
