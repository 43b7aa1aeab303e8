//! Seeded, reproducible parameter initialisation.
//!
//! candle cannot seed its CPU RNG, so [`candle_nn::VarBuilder::from_varmap`] draws different
//! weights on every run. [`SeededInit`] is a [`SimpleBackend`] that creates each parameter the first
//! time a model asks for it, from a ChaCha8 stream chosen by `(seed, parameter name)`, and stores
//! it as a trainable [`Var`] in a [`VarMap`]. A parameter's initial value therefore depends only on
//! the seed and its name, not on the order in which layers are built, nor on the device.
//!
//! The initialiser follows candle's [`Init`] hints exactly. The layers in [`crate::layers`] pass
//! PyTorch's defaults as hints: `U(±1/√fan_in)` for linear and convolution weights and biases,
//! ones and zeros for norm scales and shifts.

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A [`SimpleBackend`] that creates missing parameters from a seeded RNG and keeps them in a
/// [`VarMap`]; existing entries are returned as they are, so they stay trainable (a request for
/// another shape, dtype or device is an error).
#[derive(Clone)]
pub struct SeededInit {
    vars: VarMap,
    seed: u64,
}

impl SeededInit {
    /// A backend that fills `vars` with parameters drawn from `seed`.
    pub fn new(vars: VarMap, seed: u64) -> Self {
        Self { vars, seed }
    }

    /// The map the parameters are stored in.
    pub fn vars(&self) -> &VarMap {
        &self.vars
    }

    /// The host values of a new parameter `name` of `shape`, following the hint `init`.
    fn draw(&self, shape: &Shape, name: &str, init: Init) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(fnv1a(name));
        let n = shape.elem_count();
        let uniform = |rng: &mut ChaCha8Rng, lo: f64, up: f64| (0..n).map(|_| rng.random_range(lo..up)).collect();
        let normal = |rng: &mut ChaCha8Rng, mean: f64, std: f64| {
            (0..n)
                .map(|_| {
                    let e: f64 = StandardNormal.sample(rng);
                    mean + std * e
                })
                .collect::<Vec<f64>>()
        };
        match init {
            Init::Const(value) => vec![value; n],
            Init::Uniform { lo, up } if lo < up => uniform(&mut rng, lo, up),
            Init::Uniform { lo, .. } => vec![lo; n],
            Init::Randn { mean, stdev } => normal(&mut rng, mean, stdev),
            Init::Kaiming { dist, fan, non_linearity } => {
                let std = non_linearity.gain() / (fan.for_shape(shape).max(1) as f64).sqrt();
                match dist {
                    candle_nn::init::NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        uniform(&mut rng, -bound, bound)
                    }
                    candle_nn::init::NormalOrUniform::Normal => normal(&mut rng, 0.0, std),
                }
            }
        }
    }
}

impl SimpleBackend for SeededInit {
    fn get(&self, shape: Shape, name: &str, init: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let mut vars = self.vars.data().lock().map_err(|_| candle_core::Error::Msg("poisoned VarMap lock".into()))?;
        if let Some(var) = vars.get(name) {
            if var.shape() != &shape || var.dtype() != dtype || !var.device().same_device(dev) {
                candle_core::bail!(
                    "parameter {name}: requested {shape:?} {dtype:?} on {dev:?}, stored {:?} {:?} on {:?}",
                    var.shape(),
                    var.dtype(),
                    var.device()
                );
            }
            return Ok(var.as_tensor().clone());
        }
        let values = self.draw(&shape, name, init);
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)?.to_device(dev)?)?;
        let tensor = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let vars = self.vars.data().lock().map_err(|_| candle_core::Error::Msg("poisoned VarMap lock".into()))?;
        match vars.get(name) {
            Some(var) if var.dtype() == dtype && var.device().same_device(dev) => Ok(var.as_tensor().clone()),
            Some(var) => candle_core::bail!("parameter {name} is {:?} on {:?}", var.dtype(), var.device()),
            None => candle_core::bail!("parameter {name} has no shape to initialise it with"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.vars.data().lock().is_ok_and(|vars| vars.contains_key(name))
    }
}

/// A fresh [`VarMap`] and a [`VarBuilder`] that fills it from `seed` (see [`SeededInit`]).
///
/// Build a model with the builder, then train `vars.all_vars()`.
pub fn seeded_var_builder(seed: u64, dtype: DType, device: &Device) -> (VarMap, VarBuilder<'static>) {
    let vars = VarMap::new();
    let backend: Box<dyn SimpleBackend> = Box::new(SeededInit::new(vars.clone(), seed));
    (vars, VarBuilder::from_backend(backend, dtype, device.clone()))
}

/// 64-bit FNV-1a: a stable hash of a parameter name (std's hashers are not stable across releases).
fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_name_give_the_same_values_whatever_the_order() {
        let draw = |names: &[&str], seed| {
            let (vars, vb) = seeded_var_builder(seed, DType::F32, &Device::Cpu);
            for name in names {
                vb.get_with_hints((3, 4), name, Init::Uniform { lo: -1.0, up: 1.0 }).unwrap();
            }
            let data = vars.data().lock().unwrap();
            data["b"].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert_eq!(draw(&["a", "b"], 7), draw(&["b", "a"], 7));
        assert_ne!(draw(&["a", "b"], 7), draw(&["a", "b"], 8));
    }

    #[test]
    fn hints_are_followed() {
        let (_, vb) = seeded_var_builder(0, DType::F64, &Device::Cpu);
        let ones = vb.get_with_hints(5, "ones", Init::Const(1.0)).unwrap();
        assert_eq!(ones.to_vec1::<f64>().unwrap(), vec![1.0; 5]);
        let u = vb.get_with_hints(1000, "u", Init::Uniform { lo: -0.5, up: 0.5 }).unwrap().to_vec1::<f64>().unwrap();
        assert!(u.iter().all(|v| (-0.5..0.5).contains(v)));
        assert!(u.iter().any(|v| *v > 0.4) && u.iter().any(|v| *v < -0.4));
        let n = vb.get_with_hints(4000, "n", Init::Randn { mean: 1.0, stdev: 2.0 }).unwrap().to_vec1::<f64>().unwrap();
        let mean = n.iter().sum::<f64>() / n.len() as f64;
        let std = (n.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n.len() as f64).sqrt();
        assert!((mean - 1.0).abs() < 0.1 && (std - 2.0).abs() < 0.1, "{mean} {std}");
        // a second request returns the stored parameter, a shape change is refused
        assert_eq!(vb.get_with_hints(5, "ones", Init::Const(0.0)).unwrap().to_vec1::<f64>().unwrap(), vec![1.0; 5]);
        assert!(vb.get_with_hints(6, "ones", Init::Const(1.0)).is_err());
    }
}
