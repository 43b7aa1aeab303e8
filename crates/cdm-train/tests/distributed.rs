//! Data-parallel training over MPI: two ranks equal one process at the same global batch (to
//! f32 reduction rounding), bit for bit across repeated runs, and a killed rank stops the job.
//!
//! The parent tests start `mpirun -np 2` on this test binary's `mpi_rank_entry`, which trains
//! as one rank and lets rank 0 write the run directory. Needs Open MPI (`mpirun` on the PATH);
//! without it the tests say so and skip.
#![cfg(feature = "mpi")]

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use cdm_core::{DiscreteSchedule, GaussianBase, Itd};
use cdm_objectives::{ItdLoss, Mse, WeightedSum};
use cdm_train::checkpoint::load_tensors;
use cdm_train::{TrainConfig, Trainer};
use common::{TinyNet, batch, run_dir};

const STEPS: u64 = 200;

/// MSE + ITD: objectives whose random numbers are drawn per global row, so a sharded batch
/// draws exactly the numbers of the whole batch.
fn objective() -> WeightedSum {
    let itd = Itd::from_base_heuristic(GaussianBase::standard(2), 3.0, 8).unwrap();
    WeightedSum::new(vec![(1.0, Box::new(Mse::new(DiscreteSchedule::ddpm()))), (0.5, Box::new(ItdLoss::new(itd)))])
}

fn config() -> TrainConfig {
    TrainConfig {
        steps: STEPS,
        batch_size: 32,
        lr: 1e-2,
        warmup_steps: 10,
        log_every: 10,
        validate_every: 0,
        checkpoint_every: 50,
        progress: false,
        ..Default::default()
    }
}

/// Trains in `dir` over `world`, resuming if asked.
fn train(dir: &Path, world: &dyn cdm_dist::Collective, resume: bool) -> cdm_train::Result<()> {
    let net = TinyNet::new();
    let obj = objective();
    Trainer::new(config(), net.params.clone(), &net, &obj, dir)?.distributed(world)?.run(&mut batch, None, resume)?;
    Ok(())
}

/// The entry point of each rank under `mpirun`; does nothing when run by `cargo test`.
#[test]
#[ignore = "a rank of the MPI job that the other tests start with mpirun"]
fn mpi_rank_entry() {
    let dir = PathBuf::from(std::env::var("CDM_TEST_RUN_DIR").expect("CDM_TEST_RUN_DIR"));
    let world = cdm_dist::Mpi::init().unwrap();
    let kill_at: Option<u64> = std::env::var("CDM_TEST_KILL_RANK1_AT").ok().map(|s| s.parse().unwrap());
    if let (Some(at), 1) = (kill_at, cdm_dist::Collective::rank(&world)) {
        // rank 1 dies when it is asked for the batch of step `at`
        let mut dying = |step: u64, micro: usize| {
            if step == at {
                std::process::exit(3);
            }
            batch(step, micro)
        };
        let net = TinyNet::new();
        let obj = objective();
        let trainer =
            Trainer::new(config(), net.params.clone(), &net, &obj, &dir).unwrap().distributed(&world).unwrap();
        let _ = trainer.run(&mut dying, None, false);
        unreachable!("rank 1 exits at step {at}");
    }
    if let Err(e) = train(&dir, &world, std::env::var_os("CDM_TEST_RESUME").is_some()) {
        eprintln!("rank {}: {e}", cdm_dist::Collective::rank(&world));
        std::process::exit(2);
    }
}

/// `mpirun -np 2` on `mpi_rank_entry`; `None` when there is no `mpirun`.
fn mpirun(dir: &Path, env: &[(&str, &str)]) -> Option<std::process::Output> {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("mpirun");
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(exe)
        .args(["--exact", "mpi_rank_entry", "--ignored", "--nocapture", "--test-threads", "1"])
        .env("CDM_TEST_RUN_DIR", dir)
        .env("RAYON_NUM_THREADS", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    match cmd.output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)");
            None
        }
        Err(e) => panic!("mpirun: {e}"),
    }
}

fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let mut t: Vec<_> = load_tensors(&dir.join("model.safetensors"), &candle_core::Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

/// `loss` of every line of `metrics.jsonl`.
fn losses(dir: &Path) -> Vec<f64> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
        .collect()
}

fn max_diff<'a>(a: impl IntoIterator<Item = &'a f32>, b: impl IntoIterator<Item = &'a f32>) -> f32 {
    a.into_iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "mpirun failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_ranks_equal_one_process_and_repeat_bit_for_bit() {
    let single = run_dir("dp-single");
    let started = std::time::Instant::now();
    train(&single, &cdm_dist::SingleProcess, false).unwrap();
    let single_wall = started.elapsed();
    let (first, second) = (run_dir("dp-two-a"), run_dir("dp-two-b"));
    let started = std::time::Instant::now();
    let Some(out) = mpirun(&first, &[]) else { return };
    let two_wall = started.elapsed();
    ok(&out);
    ok(&mpirun(&second, &[]).unwrap());

    let (w1, w2, w2b) = (weights(&single), weights(&first), weights(&second));
    assert_eq!(w2, w2b, "two repeated 2-rank runs differ");
    let dw = w1.iter().zip(&w2).map(|((_, a), (_, b))| max_diff(a, b)).fold(0.0, f32::max);
    let (l1, l2) = (losses(&single), losses(&first));
    assert_eq!(l1.len(), l2.len());
    let dl = l1.iter().zip(&l2).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    eprintln!(
        "{STEPS} steps, batch 32: max |w_1 − w_2| = {dw:.3e}, max |loss_1 − loss_2| = {dl:.3e}; \
         wall 1 process {:.2} s, 2 ranks (mpirun, incl. start-up) {:.2} s",
        single_wall.as_secs_f64(),
        two_wall.as_secs_f64()
    );
    // f32 sums in a different order, carried through 200 AdamW steps
    assert!(dw < 1e-4, "weights differ by {dw}");
    assert!(dl < 1e-4, "logged losses differ by {dl}");
    // only rank 0 wrote: one metrics line per log, one set of checkpoints
    assert_eq!(l2.len() as u64, STEPS / config().log_every);
}

#[test]
fn a_killed_rank_stops_the_job_and_resume_finishes_it_on_any_world_size() {
    let dir = run_dir("dp-kill");
    let Some(out) = mpirun(&dir, &[("CDM_TEST_KILL_RANK1_AT", "120")]) else { return };
    assert!(!out.status.success(), "the job must fail when a rank dies");
    let latest = cdm_train::checkpoint::latest_checkpoint(&dir).unwrap().expect("checkpoints before the kill");
    assert!(latest.ends_with("step-00000100"), "{}", latest.display());
    let copy = run_dir("dp-kill-copy");
    copy_dir(&dir, &copy);
    let whole = run_dir("dp-whole");
    ok(&mpirun(&whole, &[]).unwrap());
    // resumed on two ranks: exactly the uninterrupted 2-rank run
    ok(&mpirun(&dir, &[("CDM_TEST_RESUME", "1")]).unwrap());
    assert_eq!(weights(&dir), weights(&whole));
    // resumed on one process: the same run to f32 reduction rounding
    train(&copy, &cdm_dist::SingleProcess, true).unwrap();
    let dw = weights(&copy).iter().zip(&weights(&whole)).map(|((_, a), (_, b))| max_diff(a, b)).fold(0.0, f32::max);
    eprintln!("killed at step 120, resumed from step 100 on one process: max |w − w_2-rank| = {dw:.3e}");
    assert!(dw < 1e-4, "{dw}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
