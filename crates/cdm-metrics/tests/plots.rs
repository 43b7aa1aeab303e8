//! Every figure renders to a readable PNG, awkward inputs do not panic, and failures name the file.
//!
//! The figures are left in `$TMPDIR/cdm-metrics-plots/` for inspection.

mod common;

use std::path::PathBuf;

use candle_core::{DType, Device};
use cdm_core::{DiscreteSchedule, ExactDensity, GaussianMixture, NoiseSource};
use cdm_metrics::ood_map::ErrorMap;
use cdm_metrics::{
    BandPoint, Error, band_chart, heatmap_with_trajectories, line_chart, ood_error_map, scatter_vs_data,
};
use common::TrainedLike;

fn out(name: &str) -> PathBuf {
    std::env::temp_dir().join("cdm-metrics-plots").join(name)
}

/// Width, height and the fraction of pixels that are not white.
fn inspect(path: &PathBuf) -> (u32, u32, f64) {
    let img = image::open(path).unwrap().to_rgb8();
    let ink = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    (img.width(), img.height(), ink as f64 / (img.width() * img.height()) as f64)
}

/// DDPM ancestral trajectories (timestep, x_t) under the exact denoiser, from the given x_T.
fn ancestral_trajectories(gmm: &GaussianMixture, starts: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let s = DiscreteSchedule::ddpm();
    let (betas, abar) = (s.betas(), s.alpha_bar());
    starts
        .iter()
        .enumerate()
        .map(|(i, &start)| {
            let mut rng = NoiseSource::new(4).streams(i as u64, 1);
            let mut x = start;
            let mut path = vec![(999.0, x)];
            for t in (1..1000).rev() {
                let mut eps = [0.0];
                gmm.eps_into(&[x], s.log_snrs()[t], &mut eps);
                let mean = (x - betas[t] / (1.0 - abar[t]).sqrt() * eps[0]) / (1.0 - betas[t]).sqrt();
                let var = betas[t] * (1.0 - abar[t - 1]) / (1.0 - abar[t]);
                x = mean + var.sqrt() * rng.normal_f64(1)[0];
                path.push(((t - 1) as f64, x));
            }
            path
        })
        .collect()
}

#[test]
fn samples_against_data() {
    let noise = NoiseSource::new(1);
    let ring = |seed: u64, n: usize, jitter: f64| -> Vec<f64> {
        let g = noise.fork_index(seed).streams(0, n).normal_f64(3);
        g.chunks(3)
            .flat_map(|r| {
                let phi = r[0] * 2.0;
                [2.0 * phi.cos() + jitter * r[1], 2.0 * phi.sin() + jitter * r[2]]
            })
            .collect()
    };
    let path = out("scatter.png");
    scatter_vs_data(&path, &ring(1, 1500, 0.25), &ring(2, 2000, 0.1), "Ring: data vs generated samples").unwrap();
    let (w, h, ink) = inspect(&path);
    assert_eq!((w, h), (1100, 560));
    assert!(ink > 0.02, "ink {ink}");
}

#[test]
fn error_map_with_trajectories() {
    let gmm = GaussianMixture::two_mode_1d();
    let timesteps: Vec<usize> = (0..1000).step_by(5).collect();
    let values: Vec<f64> = (0..=240).map(|i| -30.0 + 0.25 * i as f64).collect();
    let map = ood_error_map(
        &TrainedLike::two_mode(),
        &gmm,
        &DiscreteSchedule::ddpm(),
        &timesteps,
        &values,
        &Device::Cpu,
        DType::F64,
    )
    .unwrap();
    let path = out("heatmap.png");
    let trajectories = ancestral_trajectories(&gmm, &[-2.5, 0.3, 1.8]);
    heatmap_with_trajectories(&path, &map, &trajectories, "Score error of a model fitted on the forward paths")
        .unwrap();
    let (w, h, ink) = inspect(&path);
    assert_eq!((w, h), (1100, 620));
    assert!(ink > 0.2, "ink {ink}");
    // the trajectories end near the modes
    for tr in &trajectories {
        assert!((tr.last().unwrap().1.abs() - 5.0).abs() < 3.5);
    }
}

#[test]
fn line_charts_linear_and_log() {
    let steps = |f: &dyn Fn(f64) -> f64| (0..200).map(|i| (i as f64 * 50.0, f(i as f64))).collect::<Vec<_>>();
    let losses =
        [("MSE", steps(&|i| 0.3 + 2.0 * (-i / 30.0).exp())), ("CDL", steps(&|i| 0.35 + 3.0 * (-i / 40.0).exp()))];
    let path = out("losses.png");
    line_chart(&path, &losses, "training step", "loss", "Training loss", true).unwrap();
    assert!(inspect(&path).2 > 0.01);
    let rounds = |v: &[f64]| v.iter().enumerate().map(|(i, &m)| ((i + 1) as f64, m)).collect::<Vec<_>>();
    let mmd = [
        ("CDL", rounds(&[0.052, 0.049, 0.035, 0.025, 0.02, 0.015, 0.01, 0.0055, 0.0031, 0.0016, 0.0012, 0.0013])),
        ("DDPM", rounds(&[0.055, 0.05, 0.04, 0.03, 0.022, 0.016, 0.012, 0.008, 0.005, 0.0037, 0.0034, 0.0034])),
    ];
    let path = out("mmd_rounds.png");
    line_chart(&path, &mmd, "Picard iteration", "MMD² (b = 0.03)", "MMD per Picard round (Dino)", false).unwrap();
    let (w, h, ink) = inspect(&path);
    assert_eq!((w, h), (800, 520));
    assert!(ink > 0.01);
}

/// A band chart shades its band: the same lines with a ±30 % band put more ink on the page
/// than with a zero-width one, and a non-finite edge drops only its point.
#[test]
fn band_charts_shade_the_spread() {
    let curve = |scale: f64, width: f64| -> Vec<BandPoint> {
        (1..=30)
            .map(|r| {
                let y = scale * (-(r as f64) / 8.0).exp() + 0.001;
                BandPoint { x: r as f64, y, low: y * (1.0 - width), high: y * (1.0 + width) }
            })
            .collect()
    };
    let ink = |width: f64, name: &str| {
        let series = [("CDL", curve(0.05, width)), ("DDPM", curve(0.06, width))];
        let path = out(name);
        band_chart(&path, &series, "Picard round", "MMD²", "MMD per round, mean ± SD over seeds", true).unwrap();
        inspect(&path).2
    };
    assert!(ink(0.3, "band.png") > ink(0.0, "band_zero.png") + 0.01);
    let mut holey = curve(0.05, 0.3);
    holey[4].low = f64::NAN;
    band_chart(out("band_nan.png"), &[("holey", holey)], "x", "y", "one NaN edge", false).unwrap();
}

#[test]
fn awkward_inputs_do_not_panic() {
    let empty: [(&str, Vec<(f64, f64)>); 0] = [];
    let nasty = [
        ("empty", vec![]),
        ("one point", vec![(1.0, 2.0)]),
        ("non-finite", vec![(f64::NAN, 1.0), (2.0, f64::INFINITY), (3.0, -1.0), (4.0, 0.0)]),
    ];
    let constant = [("flat", vec![(0.0, 5.0), (0.0, 5.0)])];
    for log_y in [false, true] {
        line_chart(out("empty.png"), &empty, "x", "y", "nothing", log_y).unwrap();
        line_chart(out("nasty.png"), &nasty, "x", "y", "nasty", log_y).unwrap();
        line_chart(out("constant.png"), &constant, "x", "y", "constant", log_y).unwrap();
    }
    scatter_vs_data(out("scatter_nan.png"), &[f64::NAN, 1.0, 0.0, 0.0], &[1.0, 1.0], "one point each").unwrap();
    let tiny = ErrorMap { timesteps: vec![3], log_snrs: vec![1.0], values: vec![0.5], error: vec![vec![f64::NAN]] };
    heatmap_with_trajectories(out("tiny.png"), &tiny, &[vec![], vec![(f64::NAN, 1.0)]], "one NaN cell").unwrap();
}

#[test]
fn failures_are_typed_and_name_the_file() {
    let blocker = out("not-a-directory");
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"x").unwrap();
    let inside = blocker.join("chart.png");
    let series = [("s", vec![(0.0, 1.0), (1.0, 2.0)])];
    match line_chart(&inside, &series, "x", "y", "t", false) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("not-a-directory"), "{e}"),
        other => panic!("expected an IO error, got {other:?}"),
    }
    match line_chart(out("chart.unknown-format"), &series, "x", "y", "t", false) {
        Err(e @ Error::Plot { .. }) => assert!(e.to_string().contains("chart.unknown-format"), "{e}"),
        other => panic!("expected a plot error, got {other:?}"),
    }
    let ragged =
        ErrorMap { timesteps: vec![0, 1], log_snrs: vec![1.0, 0.0], values: vec![0.0], error: vec![vec![1.0]] };
    assert!(matches!(
        heatmap_with_trajectories(out("ragged.png"), &ragged, &[], "t"),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(scatter_vs_data(out("odd.png"), &[1.0], &[1.0, 2.0], "t"), Err(Error::ShapeMismatch { .. })));
    assert!(matches!(scatter_vs_data(out("none.png"), &[], &[1.0, 2.0], "t"), Err(Error::InvalidArgument { .. })));
}
