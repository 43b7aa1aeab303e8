//! Sampling split over two MPI ranks with [`Sharded`]: ParaDiGMS takes the same rounds and NFE
//! as in one process and its samples agree to f32 rounding, for the DDPM and DDIM step maps
//! (and the sequential sampler); both ranks hold bit-identical samples.
//!
//! `two_ranks_sample_like_one_process` starts `mpirun -np 2` on this binary's
//! `sampling_rank_entry`; without `mpirun` the test says so and skips.
#![cfg(feature = "mpi")]

mod common;

use candle_core::{DType, Device, Tensor};
use cdm_core::{DiscreteSchedule, NoiseSource};
use cdm_dist::{Collective, Mpi, Sharded};
use cdm_models::{Mlp, MlpConfig, seeded_var_builder};
use cdm_samplers::{DdimConfig, DdpmConfig, Paradigms, ParadigmsConfig, Sampler, SamplerNoise, Sequential, StepMap};

/// Samples per run: odd, so the window's rows split unevenly over the ranks.
const SAMPLES: usize = 7;

/// Largest |a − b| over all elements.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    a.sub(b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
#[ignore = "a rank of the MPI job that two_ranks_sample_like_one_process starts"]
fn sampling_rank_entry() {
    let world = Mpi::init().unwrap();
    let r = world.rank();
    let cpu = Device::Cpu;
    // the paper's 2-D network at a fixed seeded initialisation: every rank builds the same one
    let (_vars, vb) = seeded_var_builder(5, DType::F32, &cpu);
    let net = Mlp::new(&MlpConfig::default(), vb).unwrap();
    let sharded = Sharded::new(&net, &world);
    let noise = SamplerNoise::seeded(&NoiseSource::new(3), 0, SAMPLES, &[2], DType::F32, &cpu).unwrap();

    let schedule = DiscreteSchedule::ddpm();
    let maps: [(&str, Box<dyn StepMap>); 2] = [
        ("ddpm-200", Box::new(DdpmConfig { steps: 200, ..Default::default() }.build(&schedule).unwrap())),
        ("ddim-50", Box::new(DdimConfig { steps: 50, ..Default::default() }.build(&schedule).unwrap())),
    ];
    let paradigms = Paradigms::new(ParadigmsConfig { window: 16, tolerance: 0.1, max_rounds: None }).unwrap();
    for (name, map) in &maps {
        for (sampler, label) in [(&paradigms as &dyn Sampler, "paradigms p=16"), (&Sequential, "sequential")] {
            let one = sampler.sample(&net, map.as_ref(), &noise, &mut ()).unwrap();
            let two = sampler.sample(&sharded, map.as_ref(), &noise, &mut ()).unwrap();
            let diff = max_abs_diff(&one.x, &two.x);
            let scale = one.x.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            println!(
                "rank {r} {name} {label}: rounds {} vs {}, nfe {} vs {}, max |Δx| {diff:.2e} (|x| ≤ {scale:.2}), {:.3} s vs {:.3} s",
                one.stats.rounds,
                two.stats.rounds,
                one.stats.nfe,
                two.stats.nfe,
                one.stats.wall.as_secs_f64(),
                two.stats.wall.as_secs_f64()
            );
            assert_eq!((one.stats.rounds, one.stats.nfe), (two.stats.rounds, two.stats.nfe), "{name} {label}");
            assert!(diff <= 1e-5 * scale.max(1.0), "{name} {label}: max |Δx| {diff:e}");
            // the ranks hold the same bits: each compares its samples with rank 0's
            let root = world.broadcast(&two.x, 0).unwrap();
            assert_eq!(max_abs_diff(&root, &two.x), 0.0, "{name} {label}: rank {r} differs from rank 0");
        }
    }
    println!("rank {r}: distributed sampling agreed");
}

#[test]
fn two_ranks_sample_like_one_process() {
    if let Some(stdout) = common::mpirun_entry("sampling_rank_entry", 2) {
        println!("{stdout}");
        assert_eq!(stdout.matches("distributed sampling agreed").count(), 2, "{stdout}");
    }
}
