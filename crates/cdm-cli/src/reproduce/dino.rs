//! Scoring one trained Dino model at one training seed, as the paper does and with the sample
//! noise measured.
//!
//! | sampler | draws | measured |
//! |---|---|---|
//! | sequential DDPM (1000 steps) | `sequential_draws` | MMD (b = 0.03 and the median heuristic) |
//! | ParaDiGMS, whole chain, τ = 0.1 | 1 | MMD, Picard rounds, NFE per sample, wall time, MMD after every round |
//! | ParaDiGMS, p = 32, τ = 0.1 | 1 | the same |
//!
//! Draw `r` of training seed `s` takes its sampler noise and its fresh reference points (drawn
//! from the toy generator, standardised like the training data) from [`draw_seed`]`(s, r)`, so
//! every draw is independent of every other, while the recipes of one seed share theirs (a
//! paired design). The spread over seeds therefore holds both the seed variance and the sample
//! noise; the spread over a seed's sequential draws is the sample noise alone.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use cdm_core::{Chunked, Denoiser, Itd, NoiseSource};
use cdm_data::PointCloud;
use cdm_samplers::{Observer, Round};
use serde::{Deserialize, Serialize};

use super::plan::Plan;
use crate::data::{POINT_ROWS_PER_CALL as ROWS_PER_CALL, PointData};
use crate::sampling::{SamplerArgs, SamplerKind, Window};

/// The paper's Dino kernel variance.
pub const PAPER_BANDWIDTH: f64 = 0.03;

/// ITD integration points per held-out point of the NLL column.
const NLL_POINTS: usize = 128;

/// The seed of draw `draw` of training seed `seed` (sampler noise and reference points).
pub fn draw_seed(seed: u64, draw: usize) -> u64 {
    1_000_003 * (seed + 1) + draw as u64
}

/// MMD² of one draw against its references.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Score {
    /// With the paper's bandwidth b = 0.03.
    pub mmd: f64,
    /// With the median heuristic of a fixed reference set (the same for every model).
    pub mmd_median: f64,
}

/// One ParaDiGMS draw.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParallelScore {
    /// Its MMD².
    pub score: Score,
    /// Picard rounds.
    pub rounds: usize,
    /// Denoiser evaluations per sample.
    pub nfe: usize,
    /// Wall seconds.
    pub seconds: f64,
    /// MMD² (b = 0.03) of the chain's end after each round.
    pub mmd_per_round: Vec<f64>,
}

/// Everything measured of one model at one seed (`eval-reproduce.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DinoEval {
    /// The plan's sample sizes it was measured with (a changed plan re-measures).
    pub sizes: [usize; 5],
    /// The median-heuristic bandwidth used.
    pub bandwidth_median: f64,
    /// The sequential draws.
    pub sequential: Vec<Score>,
    /// ParaDiGMS over the whole chain.
    pub full: ParallelScore,
    /// ParaDiGMS with a 32-step window.
    pub p32: ParallelScore,
    /// Held-out −log p (nats per point) and its standard error.
    pub nll: (f64, f64),
}

impl DinoEval {
    /// The sample sizes of `plan` as recorded in a [`DinoEval`].
    pub fn sizes(plan: &Plan) -> [usize; 5] {
        [plan.samples, plan.references, plan.sequential_draws, plan.nll_points, plan.chain_steps]
    }
}

/// Scores a model: what one seed's draws are compared with.
pub struct Scorer<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The run's data (standardiser, held-out points, Gaussian base).
    pub data: &'a PointData,
    /// The median-heuristic bandwidth, fixed for the whole comparison.
    pub bandwidth_median: f64,
    /// Where the model computes.
    pub device: &'a Device,
}

impl Scorer<'_> {
    /// Measures `net` at training seed `seed`; with `plot`, draws its first sequential draw
    /// over the references there, titled `title`.
    pub fn score(&self, net: &dyn Denoiser, seed: u64, plot: Option<&Path>, title: &str) -> Result<DinoEval> {
        let refs: Vec<PointCloud> = (0..self.plan.sequential_draws.max(1))
            .map(|r| self.data.fresh_references(self.plan.references, draw_seed(seed, r))?.context("Dino is a toy"))
            .collect::<Result<_>>()?;
        let ddpm =
            SamplerArgs { sampler: Some(SamplerKind::Ddpm), steps: Some(self.plan.chain_steps), ..Default::default() };
        let mut sequential = Vec::new();
        for (r, reference) in refs.iter().enumerate().take(self.plan.sequential_draws) {
            let (x, _) = self.sample(net, &ddpm, draw_seed(seed, r), &mut ())?;
            let score = self.mmd(&x, reference)?;
            if let (0, Some(path)) = (r, plot) {
                let title = format!("{title}: sequential DDPM (MMD² {:.5})", score.mmd);
                cdm_metrics::scatter_vs_data(path, &x, reference.data(), &title)?;
            }
            sequential.push(score);
        }
        let parallel = |window| SamplerArgs { parallel: true, window, tolerance: 0.1, ..ddpm.clone() };
        let full = self.parallel(net, &parallel(None), seed, &refs[0])?;
        let p32 = self.parallel(net, &parallel(Some(Window::Steps(32))), seed, &refs[0])?;
        let nll = self.nll(net)?;
        tracing::info!(seed, mmd = sequential.first().map(|s| s.mmd), rounds = full.rounds, "scored");
        Ok(DinoEval {
            sizes: DinoEval::sizes(self.plan),
            bandwidth_median: self.bandwidth_median,
            sequential,
            full,
            p32,
            nll,
        })
    }

    fn sample(
        &self,
        net: &dyn Denoiser,
        args: &SamplerArgs,
        seed: u64,
        observer: &mut dyn Observer,
    ) -> Result<(Vec<f64>, cdm_samplers::SamplerStats)> {
        let dim = self.data.train.dim();
        let (x, stats) = args.run(net, self.plan.samples, &[dim], seed, self.device, observer, ROWS_PER_CALL)?;
        Ok((x.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?, stats))
    }

    fn mmd(&self, x: &[f64], reference: &PointCloud) -> Result<Score> {
        let b = [PAPER_BANDWIDTH, self.bandwidth_median];
        let m = cdm_metrics::mmd2_bandwidths(x, reference.data(), reference.dim(), &b)?;
        Ok(Score { mmd: m[0], mmd_median: m[1] })
    }

    fn parallel(
        &self,
        net: &dyn Denoiser,
        args: &SamplerArgs,
        seed: u64,
        reference: &PointCloud,
    ) -> Result<ParallelScore> {
        let started = Instant::now();
        let mut per_round = MmdPerRound { reference, mmd: Vec::new() };
        let (x, stats) = self.sample(net, args, draw_seed(seed, 0), &mut per_round)?;
        let seconds = started.elapsed().as_secs_f64();
        Ok(ParallelScore {
            score: self.mmd(&x, reference)?,
            rounds: stats.rounds,
            nfe: stats.nfe,
            seconds,
            mmd_per_round: per_round.mmd,
        })
    }

    fn nll(&self, net: &dyn Denoiser) -> Result<(f64, f64)> {
        let itd = Itd::from_base_heuristic(self.data.base(None)?, 3.0, NLL_POINTS)?;
        let n = self.plan.nll_points.min(self.data.validation.len());
        let held_out = self.data.validation.rows(&(0..n).collect::<Vec<_>>()).to_tensor(DType::F32, self.device)?;
        let report = cdm_metrics::dataset_nll(
            &itd,
            &Chunked::new(net, ROWS_PER_CALL)?,
            &held_out,
            ROWS_PER_CALL / NLL_POINTS,
            &NoiseSource::new(7),
        )?;
        Ok((report.nats, report.std_err))
    }
}

/// Records the MMD² (b = 0.03) of the chain's end after every Picard round.
struct MmdPerRound<'a> {
    reference: &'a PointCloud,
    mmd: Vec<f64>,
}

impl Observer for MmdPerRound<'_> {
    fn on_round(&mut self, round: &Round<'_>) {
        let last =
            round.trajectory.last().and_then(|x| x.to_dtype(DType::F64).ok()?.flatten_all().ok()?.to_vec1().ok());
        let (reference, dim) = (self.reference.data(), self.reference.dim());
        let value = last.and_then(|x: Vec<f64>| cdm_metrics::mmd2(&x, reference, dim, PAPER_BANDWIDTH).ok());
        self.mmd.push(value.unwrap_or(f64::NAN));
    }
}
