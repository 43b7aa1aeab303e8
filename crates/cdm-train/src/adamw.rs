//! AdamW (Loshchilov & Hutter 2019) whose state can be saved and restored.
//!
//! candle's `AdamW` keeps its moments private, so a resumed run would restart them. This one
//! is the same update (decoupled weight decay, PyTorch defaults) with named, saveable state:
//!
//! ```text
//! θ ← θ·(1 − lr·λ)
//! m ← β₁·m + (1 − β₁)·g          v ← β₂·v + (1 − β₂)·g²
//! θ ← θ − lr · (m/(1 − β₁ᵗ)) / (√(v/(1 − β₂ᵗ)) + ε)
//! ```

use std::collections::HashMap;

use candle_core::{Tensor, Var, backprop::GradStore};
use cdm_kernels::adamw::{AdamWStep, adamw_composed, adamw_in_place_all};

use crate::{Error, Result};

/// AdamW hyper-parameters (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

/// AdamW over named variables.
pub struct AdamW {
    config: AdamWConfig,
    params: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
}

impl AdamW {
    /// An optimizer over `params` (name, var), with zero moments.
    pub fn new(params: Vec<(String, Var)>, config: AdamWConfig) -> Result<Self> {
        // Each moment owns its storage: on the CPU they are updated in place.
        let zeros = || params.iter().map(|(_, p)| p.zeros_like()).collect::<candle_core::Result<Vec<_>>>();
        Ok(Self { config, m: zeros()?, v: zeros()?, params, step: 0 })
    }

    /// Number of updates applied so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// One update with learning rate `lr`; variables without a gradient are left alone.
    ///
    /// On the CPU the moments and parameters are overwritten in place, the parameters in
    /// parallel ([`cdm_kernels::adamw::adamw_in_place_all`]); elsewhere the update is composed
    /// of candle ops ([`cdm_kernels::adamw::adamw_composed`]).
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.step_with(grads, lr, true)
    }

    fn step_with(&mut self, grads: &GradStore, lr: f64, allow_inplace: bool) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let step = AdamWStep {
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            lr,
            bias1: 1.0 - c.beta1.powi(self.step as i32),
            bias2: 1.0 - c.beta2.powi(self.step as i32),
        };
        let in_place = |var: &Var| allow_inplace && var.device().is_cpu();
        for (i, (_, var)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()).filter(|_| !in_place(var)) else { continue };
            let next = adamw_composed(var.as_tensor(), &self.m[i], &self.v[i], g, &step)?;
            var.set(&next.theta)?;
            self.m[i] = next.m;
            self.v[i] = next.v;
        }
        let updates: Vec<[&Tensor; 4]> = (self.params.iter().enumerate())
            .filter(|(_, (_, var))| in_place(var))
            .filter_map(|(i, (_, var))| Some([var.as_tensor(), &self.m[i], &self.v[i], grads.get(var.as_tensor())?]))
            .collect();
        Ok(adamw_in_place_all(&updates, &step)?)
    }

    /// A copy of the moments as named tensors (`m.<name>`, `v.<name>`) for a checkpoint.
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].copy()?);
            out.insert(format!("v.{name}"), self.v[i].copy()?);
        }
        Ok(out)
    }

    /// Restores moments and step count saved by [`AdamW::state_tensors`].
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: u64, path: &std::path::Path) -> Result<()> {
        for (i, (name, var)) in self.params.iter().enumerate() {
            for (kind, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let key = format!("{kind}.{name}");
                let t = tensors.get(&key).ok_or_else(|| Error::checkpoint(path, format!("missing tensor {key}")))?;
                if t.dims() != var.dims() {
                    return Err(Error::checkpoint(
                        path,
                        format!("{key}: expected {:?}, found {:?}", var.dims(), t.dims()),
                    ));
                }
                // A copy: the moments are updated in place and must not alias the caller's tensors.
                *slot = t.to_device(var.device())?.to_dtype(var.dtype())?.copy()?;
            }
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_pytorch_adamw() {
        // Reference run: three steps of lr 0.1, wd 0.01 on loss = Σ|w| from [1, −2, 3] gave
        // [0.69730288, −1.69430590, 2.69130921] in torch.optim.AdamW.
        let w = Var::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap();
        let mut opt =
            AdamW::new(vec![("w".into(), w.clone())], AdamWConfig { weight_decay: 0.01, ..Default::default() })
                .unwrap();
        for _ in 0..3 {
            let grads = w.as_tensor().abs().unwrap().sum_all().unwrap().backward().unwrap();
            opt.step(&grads, 0.1).unwrap();
        }
        // both in f32: agreement to a few ulps
        // no step keeps a graph: moments and weights are plain values
        assert!(opt.state_tensors().unwrap().values().all(|t| !t.track_op()));
        let got = w.as_tensor().to_vec1::<f32>().unwrap();
        let want: [f64; 3] = [0.69730288, -1.69430590, 2.69130921];
        for (g, want) in got.iter().zip(want) {
            assert!((*g as f64 - want).abs() < 5e-7, "{got:?}");
        }
    }

    #[test]
    fn inplace_update_matches_the_composed_one() {
        // Two optimizers on identical f64 parameters, five steps of a non-trivial loss: the
        // in-place CPU kernels and the composed candle ops agree to rounding.
        let start = [[0.3f64, -1.2, 2.0], [0.0, 0.7, -0.4]];
        let run = |allow_inplace: bool| {
            let w = Var::new(&start, &Device::Cpu).unwrap();
            let mut opt = AdamW::new(vec![("w".into(), w.clone())], AdamWConfig::default()).unwrap();
            for step in 0..5 {
                let loss =
                    (w.as_tensor().sqr().unwrap() * (step as f64 + 1.0)).unwrap().sin().unwrap().sum_all().unwrap();
                opt.step_with(&loss.backward().unwrap(), 0.05, allow_inplace).unwrap();
            }
            let state = opt.state_tensors().unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            [flat(w.as_tensor()), flat(&state["m.w"]), flat(&state["v.w"])]
        };
        let (inplace, composed) = (run(true), run(false));
        for (a, b) in inplace.iter().flatten().zip(composed.iter().flatten()) {
            assert!((a - b).abs() <= 1e-14 * b.abs().max(1e-3), "{inplace:?} vs {composed:?}");
        }
        assert_ne!(inplace[0], start.concat(), "the parameters moved");
    }
}
