//! Sequential samplers vs ParaDiGMS on (a) the exact 8-D Gaussian-mixture denoiser and (b) the
//! paper's Dino MLP (d_model 128, 2 blocks, seeded untrained weights; sequential samplers only:
//! its time per NFE is a trained one's, its Picard rounds would not be — trained ParaDiGMS rounds
//! and times are in `cargo xtask reproduce`).
//!
//! The data is the reference's toy (`docs/samplers.md` §11): 4 isotropic components in D = 8,
//! means ~ N(0, 4I), variance 0.05; B = 64 samples in f32 (the exact denoiser computes in f64 on
//! the host). Benchmarks, all on the trailing grid:
//!
//! - `ddpm1000/{sequential, paradigms_p32, paradigms_p64, paradigms_pS}` (τ = 0.1);
//! - `ddim50/sequential`, `ddim200/{sequential, paradigms_p32}` (τ = 1e-3);
//! - `edm18/{sequential, paradigms_pS}` (Heun, τ = 0.1);
//! - `mlp_*/sequential`: the sequential samplers on the Dino MLP with B = 64 2-D points.
//!
//! Each configuration prints its rounds (sequential depth) and NFE per sample before it is
//! timed. On one CPU a batch of L positions costs about L times one position, so ParaDiGMS is
//! expected to be *slower* here by up to NFE/S; its gain is the rounds column (`docs/samplers.md` §10).
//!
//! Run with `cargo bench -p cdm-benches --bench samplers`.

use std::time::Duration;

// linked for its global allocator, mimalloc, as in the `cdm` binary
use cdm_benches as _;

use candle_core::{DType, Device};
use cdm_core::{Denoiser, DiscreteSchedule, GaussianMixture, MixtureComponent, NoiseSource};
use cdm_models::{MlpConfig, ModelConfig};
use cdm_samplers::{
    DdimConfig, DdpmConfig, EdmHeunConfig, Paradigms, ParadigmsConfig, Sampler, SamplerNoise, Sequential, StepMap,
};
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};

const BATCH: usize = 64;
const DIM: usize = 8;

/// The reference's mixture: 4 components, means 2·N(0, I) from a fixed seed, variance 0.05.
fn mixture() -> GaussianMixture {
    let means = NoiseSource::new(0).fork("bench-mixture").streams(0, 4).normal_f64(DIM);
    let components = means
        .chunks(DIM)
        .map(|m| MixtureComponent {
            weight: 0.25,
            mean: m.iter().map(|v| 2.0 * v).collect(),
            variance: vec![0.05; DIM],
        })
        .collect();
    GaussianMixture::new(components).unwrap()
}

fn run(c: &mut Criterion, group: &str, map: &dyn StepMap, samplers: &[(&str, &dyn Sampler)]) {
    run_on(c, group, &mixture(), DIM, map, samplers);
    // An untrained network's Picard iteration may need up to S rounds of whole-chain windows, so
    // only the sequential samplers are timed on the MLP (trained ParaDiGMS costs: `cdm reproduce`).
    let (mlp, _vars) = MlpConfig::default().init(0, DType::F32, &Device::Cpu).unwrap();
    let sequential: Vec<(&str, &dyn Sampler)> =
        samplers.iter().copied().filter(|(n, _)| n.starts_with("sequential")).collect();
    run_on(c, &format!("mlp_{group}"), &mlp, 2, map, &sequential);
}

fn run_on(
    c: &mut Criterion,
    group: &str,
    gmm: &dyn Denoiser,
    dim: usize,
    map: &dyn StepMap,
    samplers: &[(&str, &dyn Sampler)],
) {
    let noise = SamplerNoise::seeded(&NoiseSource::new(1), 0, BATCH, &[dim], DType::F32, &Device::Cpu).unwrap();
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for &(name, sampler) in samplers {
        let st = sampler.sample(gmm, map, &noise, &mut ()).unwrap().stats;
        println!(
            "{group}/{name}: S = {}, rounds {}, NFE {} per sample, {} forward calls, B = {BATCH}",
            map.steps(),
            st.rounds,
            st.nfe,
            st.forward_calls
        );
        g.bench_function(name, |b| b.iter(|| sampler.sample(gmm, map, &noise, &mut ()).unwrap()));
    }
    g.finish();
}

fn paradigms(window: usize, tolerance: f64) -> Paradigms {
    Paradigms::new(ParadigmsConfig { window, tolerance, ..Default::default() }).unwrap()
}

fn ddpm(c: &mut Criterion) {
    let map = DdpmConfig::default().build(&DiscreteSchedule::ddpm()).unwrap();
    let (p32, p64, ps) = (paradigms(32, 0.1), paradigms(64, 0.1), paradigms(usize::MAX, 0.1));
    let samplers: [(&str, &dyn Sampler); 4] =
        [("sequential", &Sequential), ("paradigms_p32", &p32), ("paradigms_p64", &p64), ("paradigms_pS", &ps)];
    run(c, "ddpm1000", &map, &samplers);
}

fn ddim(c: &mut Criterion) {
    let schedule = DiscreteSchedule::ddpm();
    let ddim50 = DdimConfig { steps: 50, ..Default::default() }.build(&schedule).unwrap();
    run(c, "ddim50", &ddim50, &[("sequential", &Sequential)]);
    let ddim200 = DdimConfig { steps: 200, ..Default::default() }.build(&schedule).unwrap();
    let p32 = paradigms(32, 1e-3);
    run(c, "ddim200", &ddim200, &[("sequential", &Sequential), ("paradigms_p32", &p32)]);
}

fn edm(c: &mut Criterion) {
    let map = EdmHeunConfig::default().build().unwrap();
    let ps = paradigms(usize::MAX, 0.1);
    run(c, "edm18", &map, &[("sequential", &Sequential), ("paradigms_pS", &ps)]);
}

criterion_group!(benches, ddpm, ddim, edm);
criterion_main!(benches);
