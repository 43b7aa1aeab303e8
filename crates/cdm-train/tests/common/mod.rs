//! The fixtures shared by the training tests: a tiny 2-D denoiser, reproducible batches, the
//! CDL + MSE objective and a short config.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};
use cdm_core::{Denoiser, DiscreteSchedule, GaussianBase, Itd, NoiseSource};
use cdm_objectives::{Cdl, CdlMode, Mse, WeightedSum, ZetaDistribution};
use cdm_train::TrainConfig;

/// ε̂ = W2·tanh(W1·[z, α/10] + b1) + b2 on 2-D points.
pub struct TinyNet {
    pub params: Vec<(String, Var)>,
}

impl TinyNet {
    pub fn new() -> Self {
        let mut s = NoiseSource::new(42).streams(0, 1);
        let mut var = |name: &str, shape: &[usize], scale: f64| {
            let t = (s.normal(shape, DType::F32, &Device::Cpu).unwrap().reshape(shape).unwrap() * scale).unwrap();
            (name.to_string(), Var::from_tensor(&t).unwrap())
        };
        let params =
            vec![var("w1", &[3, 16], 0.5), var("b1", &[16], 0.1), var("w2", &[16, 2], 0.3), var("b2", &[2], 0.0)];
        Self { params }
    }

    fn get(&self, name: &str) -> &Tensor {
        self.params.iter().find(|(n, _)| n == name).unwrap().1.as_tensor()
    }

    pub fn snapshot(&self) -> Vec<Vec<f32>> {
        self.params.iter().map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    }
}

impl Denoiser for TinyNet {
    fn eps(&self, z: &Tensor, log_snr: &Tensor) -> cdm_core::Result<Tensor> {
        let input = Tensor::cat(&[z, &(log_snr.unsqueeze(1)? / 10.0)?], 1)?;
        let h = input.matmul(self.get("w1"))?.broadcast_add(self.get("b1"))?.tanh()?;
        Ok(h.matmul(self.get("w2"))?.broadcast_add(self.get("b2"))?)
    }
}

pub fn batch(step: u64, micro: usize) -> cdm_train::Result<Tensor> {
    // two clusters, reproducible from (step, micro)
    let mut s = NoiseSource::new(7).fork_index(step).fork_index(micro as u64).streams(0, 32);
    let x = s.normal(&[2], DType::F32, &Device::Cpu)?;
    let sign =
        Tensor::from_vec((0..32).map(|i| if i % 2 == 0 { 2f32 } else { -2.0 }).collect(), (32, 1), &Device::Cpu)?;
    Ok((x * 0.3)?.broadcast_add(&sign)?)
}

pub fn objective() -> WeightedSum {
    let itd = Itd::from_base_heuristic(GaussianBase::standard(2), 3.0, 8).unwrap();
    let zeta = ZetaDistribution::Logistic(itd.config().proposal);
    WeightedSum::new(vec![
        (1.0, Box::new(Mse::new(DiscreteSchedule::ddpm()))),
        (1.0, Box::new(Cdl::new(itd, zeta, CdlMode::Improved, Some(8)).unwrap())),
    ])
}

pub fn config(steps: u64) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 32,
        lr: 1e-2,
        warmup_steps: 3,
        log_every: 2,
        validate_every: 4,
        checkpoint_every: 4,
        progress: false,
        ..Default::default()
    }
}

pub fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cdm-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
