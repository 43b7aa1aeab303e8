//! Pointwise nonlinearities, named as in configs.

use candle_core::Tensor;

/// A nonlinearity, serialised in lower case (`"relu"`, `"silu"`, `"gelu"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`.
    #[default]
    Relu,
    /// `x·σ(x)` (swish).
    Silu,
    /// Exact GELU `x·Φ(x)` (erf form, PyTorch's `nn.GELU()` default).
    Gelu,
}

impl Activation {
    /// diffusers' `act_fn` names: `silu`/`swish`, `relu`, `gelu`; `None` for anything else.
    pub fn from_diffusers(name: &str) -> Option<Self> {
        match name {
            "silu" | "swish" => Some(Self::Silu),
            "relu" => Some(Self::Relu),
            "gelu" => Some(Self::Gelu),
            _ => None,
        }
    }

    /// Applies the nonlinearity elementwise.
    pub fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Relu => x.relu(),
            Self::Silu => x.silu(),
            Self::Gelu => x.gelu_erf(),
        }
    }
}
