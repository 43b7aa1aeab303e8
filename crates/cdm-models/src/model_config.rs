//! [`ModelConfig`]: a serialisable config that builds its model.

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

use crate::Result;
use crate::init::seeded_var_builder;

/// A config (saved as JSON beside the weights) that knows how to build its model.
///
/// Implemented by [`crate::MlpConfig`], [`crate::PlainMlpConfig`] and [`crate::UnetConfig`];
/// [`crate::checkpoint`] uses it to save and load any of them.
pub trait ModelConfig: serde::Serialize + serde::de::DeserializeOwned + Clone + std::fmt::Debug {
    /// The model this config describes.
    type Model;

    /// Checks the config, then builds the model, taking every parameter from `vb`.
    fn build(&self, vb: VarBuilder) -> Result<Self::Model>;

    /// The parameter a tensor stored under `stored` in a weights file fills.
    ///
    /// The default is `stored` itself; [`crate::UnetConfig`] also accepts diffusers' deprecated
    /// attention names.
    fn parameter_name(&self, stored: &str) -> String {
        stored.to_string()
    }

    /// Builds the model with fresh parameters drawn from `seed` (see [`crate::init`]).
    ///
    /// Returns the model and the map holding its trainable parameters.
    fn init(&self, seed: u64, dtype: DType, device: &Device) -> Result<(Self::Model, VarMap)> {
        let (vars, vb) = seeded_var_builder(seed, dtype, device);
        let model = self.build(vb)?;
        Ok((model, vars))
    }
}
