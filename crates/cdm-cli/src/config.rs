//! The resolved configuration of a training run (TOML in, `config.json` out).

use cdm_core::{GaussianBase, Itd, ItdConfig, TruncatedLogistic};
use cdm_models::{MlpConfig, PlainMlpConfig, UnetConfig};
use cdm_objectives::{CdlMode, ZetaDistribution};
use cdm_train::TrainConfig;
use serde::{Deserialize, Serialize};

/// Everything a `cdm train` run needs; every field has a default (the README's main job).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Run name (default: `<dataset>-<objective>-<UTC time>`).
    pub name: Option<String>,
    /// `cpu`, `cuda`, `cuda:N` or `metal`.
    pub device: String,
    /// Training data.
    pub data: DataConfig,
    /// The denoiser.
    pub model: ModelSpec,
    /// The loss.
    pub objective: ObjectiveConfig,
    /// The optimisation loop.
    pub train: TrainConfig,
    /// Samples drawn after training for the plot and the MMD.
    pub sample: SampleConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: None,
            device: "cpu".into(),
            data: DataConfig::default(),
            // the paper's residual MLP plus input Fourier features, so the Dino appears in minutes
            model: ModelSpec::Mlp(MlpConfig { input_frequencies: 16, ..MlpConfig::default() }),
            objective: ObjectiveConfig::default(),
            train: TrainConfig { steps: 10_000, batch_size: 128, lr: 2e-3, warmup_steps: 100, ..Default::default() },
            sample: SampleConfig::default(),
        }
    }
}

/// Which points to train on.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// A toy name (`dino`, `moons`, …, `gmm1d`), `csv:PATH`, or an image data set: `digits`,
    /// `mnist:DIR`, `fashion-mnist:DIR` (IDX files), `cifar10:DIR` (binary batches), `folder:DIR`.
    pub dataset: String,
    /// Training points drawn from a toy (ignored for CSV).
    pub n_train: usize,
    /// Held-out points for validation and the MMD (from a toy: fresh draws; from CSV: a split).
    pub n_validation: usize,
    /// Standardise columns with the training statistics (the model then works in those units).
    pub standardize: bool,
    /// Seed of the data draws.
    pub seed: u64,
    /// Images: the side images are resized to when read (`folder:` only; default 32).
    pub image_size: Option<usize>,
    /// Images: channels read from a `folder:` (3: RGB, 1: grayscale; default 3).
    pub channels: Option<usize>,
    /// Images: nearest-neighbour upsampling factor applied after loading (default 1).
    pub upsample: Option<usize>,
    /// Images: pad (centred, black) to this side after upsampling (default: no padding).
    pub pad_to: Option<usize>,
    /// Images: random horizontal flips of training batches (default: on for CIFAR-10 and
    /// folders, off for digits and the MNIST family).
    pub random_flip: Option<bool>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: "dino".into(),
            n_train: 100_000,
            n_validation: 2000,
            standardize: true,
            seed: 42,
            image_size: None,
            channels: None,
            upsample: None,
            pad_to: None,
            random_flip: None,
        }
    }
}

/// The network, tagged by `kind`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // a config, built and cloned a handful of times per run
pub enum ModelSpec {
    /// The paper's residual MLP.
    Mlp(MlpConfig),
    /// The small plain MLP of the 1-D experiment.
    PlainMlp(PlainMlpConfig),
    /// An image UNet (diffusers `UNet2DModel` config and parameter names).
    Unet(UnetConfig),
}

impl ModelSpec {
    /// Sets the data dimension (point models; a UNet keeps its config).
    pub fn with_dim(self, dim: usize) -> Self {
        match self {
            ModelSpec::Mlp(c) => ModelSpec::Mlp(MlpConfig { dim, ..c }),
            ModelSpec::PlainMlp(c) => ModelSpec::PlainMlp(PlainMlpConfig { dim, ..c }),
            ModelSpec::Unet(c) => ModelSpec::Unet(c),
        }
    }

    /// The small UNet of the CPU digits recipe: 2 levels of 32 and 64 channels, one ResNet
    /// block per level, attention at the lower level, GroupNorm with 8 groups.
    pub fn tiny_unet(channels: usize) -> Self {
        let strings = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
        ModelSpec::Unet(UnetConfig {
            in_channels: channels,
            out_channels: channels,
            down_block_types: strings(&["DownBlock2D", "AttnDownBlock2D"]),
            up_block_types: strings(&["AttnUpBlock2D", "UpBlock2D"]),
            block_out_channels: vec![32, 64],
            layers_per_block: 1,
            attention_head_dim: Some(8),
            norm_num_groups: 8,
            dropout: 0.0,
            ..Default::default()
        })
    }
}

/// The standard (denoising) part of the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StandardLoss {
    /// DDPM ε-MSE, uniform timesteps.
    Mse,
    /// The importance-weighted ITD loss (the authors' CDL models).
    Itd,
    /// No standard loss (CDL alone).
    None,
}

/// `w_std·L_std + w_cdl·L_cdl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectiveConfig {
    /// The standard loss.
    pub standard: StandardLoss,
    /// Its weight.
    pub standard_weight: f64,
    /// The contrastive loss, if any. A TOML `[objective]` table without `[objective.cdl]`
    /// means no CDL (the field's default is `None`, not the main job's CDL).
    #[serde(default)]
    pub cdl: Option<CdlConfig>,
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        // the main job's default: improved CDL on 32 instances of each batch, K = 8, weight 1/4
        // (Dino, 10k steps: weight 1 gave MMD 0.0074, MSE alone 0.0042, weight 1/4 0.0033)
        Self {
            standard: StandardLoss::Mse,
            standard_weight: 1.0,
            cdl: Some(CdlConfig { instances: Some(32), weight: 0.25, ..Default::default() }),
        }
    }
}

impl ObjectiveConfig {
    /// A short label such as `mse+cdl`.
    pub fn label(&self) -> String {
        let std = match self.standard {
            StandardLoss::Mse => Some("mse"),
            StandardLoss::Itd => Some("itd"),
            StandardLoss::None => None,
        };
        let cdl = self.cdl.as_ref().map(|c| match c.mode {
            CdlMode::Improved => "cdl",
            CdlMode::Faithful => "cdl-faithful",
        });
        [std, cdl].into_iter().flatten().collect::<Vec<_>>().join("+")
    }
}

/// The contrastive diffusion loss.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CdlConfig {
    /// `improved` (common random numbers, every instance) or `faithful` (the authors' code).
    pub mode: CdlMode,
    /// Weight w_cdl.
    pub weight: f64,
    /// Integration points K per log-density (0: the batch size, as the authors).
    pub points: usize,
    /// Contrastive instances per batch (unset: 2 faithful, all improved).
    pub instances: Option<usize>,
    /// Clip of the log-SNR integration window.
    pub clip: f64,
    /// ζ distribution (default: the integration's own logistic, as the authors' 2-D code; for
    /// images logistic(10.5, 1.5) clipped at 3, ζ ∈ [6, 15]).
    pub zeta: Option<ZetaDistribution>,
    /// The log-SNR proposal `{ loc, scale, clip }` (default: the authors' heuristic from the
    /// Gaussian base with `clip`; their CIFAR-10 fine-tuning used loc = scale = 4, clip 3).
    #[serde(default)]
    pub proposal: Option<TruncatedLogistic>,
}

impl Default for CdlConfig {
    fn default() -> Self {
        Self { mode: CdlMode::Improved, weight: 1.0, points: 8, instances: None, clip: 3.0, zeta: None, proposal: None }
    }
}

impl CdlConfig {
    /// The ITD estimator of the CDL: `proposal` if set, else the heuristic from `base`.
    pub fn itd(&self, base: GaussianBase, points: usize) -> cdm_core::Result<Itd> {
        match self.proposal {
            Some(proposal) => Itd::new(base, ItdConfig { points, proposal }),
            None => Itd::from_base_heuristic(base, self.clip, points),
        }
    }
}

/// Sampling after training.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    /// Samples drawn (0: skip).
    pub n: usize,
    /// DDPM steps.
    pub steps: usize,
    /// MMD bandwidth b (a variance; 0.03 is the paper's for standardised Dino).
    pub mmd_bandwidth: f64,
    /// Seed of the sampler's noise.
    pub seed: u64,
    /// Images: held-out images the MMD compares with (0: all of the validation set).
    pub mmd_reference: usize,
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self { n: 2000, steps: 1000, mmd_bandwidth: 0.03, seed: 1, mmd_reference: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_objective_table_without_cdl_means_no_cdl() {
        let mse: RunConfig = toml::from_str("[objective]\nstandard = \"mse\"\n").unwrap();
        assert!(mse.objective.cdl.is_none());
        assert_eq!(mse.objective.label(), "mse");
        let default: RunConfig = toml::from_str("").unwrap();
        assert_eq!(default.objective.label(), "mse+cdl");
        let faithful: RunConfig =
            toml::from_str("[objective]\nstandard = \"itd\"\n[objective.cdl]\nmode = \"faithful\"\n").unwrap();
        assert_eq!(faithful.objective.label(), "itd+cdl-faithful");
        assert!(toml::from_str::<RunConfig>("[objective]\nstandard = \"l2\"\n").is_err());
    }
}
