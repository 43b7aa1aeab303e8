//! Exponential moving average of the weights, the copy that is sampled from.
//!
//! ```text
//! θ_ema ← β·θ_ema + (1 − β)·θ,      β = min(decay, (1 + n)/(10 + n))   (n = updates so far)
//! ```
//!
//! The warm-up term (as in TensorFlow's `ExponentialMovingAverage` with `num_updates`) lets
//! short runs use the EMA too; with `warmup = false` β is the constant `decay`, as the
//! authors' CIFAR fine-tuning does (decay 0.9999 from the pretrained weights).

use std::collections::HashMap;

use candle_core::{Tensor, Var};

use crate::{Error, Result};

/// EMA weights of a set of named variables.
pub struct Ema {
    decay: f64,
    warmup: bool,
    updates: u64,
    shadow: Vec<(String, Tensor)>,
}

impl Ema {
    /// Starts the average at the current values of `params`.
    pub fn new(params: &[(String, Var)], decay: f64, warmup: bool) -> Result<Self> {
        if !(0.0..1.0).contains(&decay) {
            return Err(Error::invalid("ema_decay", decay, "must lie in [0, 1)"));
        }
        let shadow =
            params.iter().map(|(n, v)| Ok((n.clone(), v.as_tensor().detach().copy()?))).collect::<Result<_>>()?;
        Ok(Self { decay, warmup, updates: 0, shadow })
    }

    /// The decay used for the next update.
    pub fn current_decay(&self) -> f64 {
        if self.warmup { self.decay.min((1 + self.updates) as f64 / (10 + self.updates) as f64) } else { self.decay }
    }

    /// Moves the average towards the current `params` (same order as at construction).
    pub fn update(&mut self, params: &[(String, Var)]) -> Result<()> {
        let beta = self.current_decay();
        for ((_, shadow), (_, var)) in self.shadow.iter_mut().zip(params) {
            // detached: the average must not hold the parameters' graph from step to step
            *shadow = ((&*shadow * beta)? + (var.as_tensor().detach() * (1.0 - beta))?)?;
        }
        self.updates += 1;
        Ok(())
    }

    /// The averaged weights by name.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.shadow.iter().cloned().collect()
    }

    /// Number of updates so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Restores averaged weights and the update count from a checkpoint.
    pub fn load(&mut self, tensors: &HashMap<String, Tensor>, updates: u64, path: &std::path::Path) -> Result<()> {
        for (name, shadow) in &mut self.shadow {
            let t = tensors.get(name).ok_or_else(|| Error::checkpoint(path, format!("missing tensor {name}")))?;
            if t.dims() != shadow.dims() {
                return Err(Error::checkpoint(
                    path,
                    format!("{name}: expected {:?}, found {:?}", shadow.dims(), t.dims()),
                ));
            }
            *shadow = t.to_device(shadow.device())?.to_dtype(shadow.dtype())?;
        }
        self.updates = updates;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn averages_with_warmup_and_keeps_no_graph() {
        let w = Var::new(&[0.0f64, 2.0], &Device::Cpu).unwrap();
        let params = vec![("w".to_string(), w.clone())];
        let mut ema = Ema::new(&params, 0.9, true).unwrap();
        w.set(&Tensor::new(&[1.0f64, 4.0], &Device::Cpu).unwrap()).unwrap();
        // first update: β = min(0.9, 1/10) = 0.1
        ema.update(&params).unwrap();
        let got = ema.tensors()["w"].to_vec1::<f64>().unwrap();
        assert!((got[0] - 0.9).abs() < 1e-12 && (got[1] - 3.8).abs() < 1e-12, "{got:?}");
        // the parameter feeding a graph must not chain the average to it
        let _ = (w.as_tensor() * 2.0).unwrap();
        ema.update(&params).unwrap();
        assert!(!ema.tensors()["w"].track_op());
    }
}
