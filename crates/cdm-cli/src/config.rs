//! The resolved configuration of a training run (TOML in, `config.json` out).

use anyhow::Context;
use cdm_core::{GaussianBase, Itd, ItdConfig, TruncatedLogistic};
use cdm_models::{MlpConfig, PlainMlpConfig, UnetConfig};
use cdm_objectives::{CdlMode, ZetaDistribution};
use cdm_train::TrainConfig;
use serde::{Deserialize, Serialize};

use crate::dataset::{DataKind, DatasetSpec};

/// Everything a `cdm train` run needs. Every field has a default that depends on the data kind:
/// [`RunConfig::default`] is the README's main job (points), [`RunConfig::image_defaults`] the
/// CPU digits recipe; [`RunConfig::from_toml`] lays a TOML file over the right one.
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
            // The ITD loss in place of the ε-MSE, and 40 000 steps: the quick reproduction
            // (docs/results/dino-quick.md) gave ITD-trained models a sequential MMD² of 0.0006
            // against 0.0031 for ε-MSE + CDL at 10 000 steps (resolved at > 9 σ); at 40 000 steps
            // ITD + CDL scores 0.00031 ± 0.00033 over 8 fresh reference draws and resolves the
            // dino's single dots, where ε-MSE + CDL (0.00051 ± 0.00041) smears its strokes.
            objective: ObjectiveConfig { standard: StandardLoss::Itd, ..ObjectiveConfig::default() },
            train: TrainConfig { steps: 40_000, batch_size: 128, lr: 2e-3, warmup_steps: 100, ..Default::default() },
            sample: SampleConfig::default(),
        }
    }
}

impl RunConfig {
    /// The defaults of a data kind.
    pub fn defaults_for(kind: DataKind) -> Self {
        match kind {
            DataKind::Points => Self::default(),
            DataKind::Images => Self::image_defaults(),
        }
    }

    /// The defaults of an image data set: the tiny UNet with the DDPM ε-MSE (about 0.5 s a step
    /// on 8×8 digits on 2 CPU cores), and a 64-image grid sampled after training.
    pub fn image_defaults() -> Self {
        let points = Self::default();
        Self {
            data: DataConfig { dataset: DatasetSpec::Digits, ..points.data },
            model: ModelSpec::tiny_unet(1),
            objective: ObjectiveConfig { standard: StandardLoss::Mse, standard_weight: 1.0, cdl: None },
            train: TrainConfig {
                steps: 700,
                batch_size: 64,
                lr: 1e-3,
                warmup_steps: 50,
                ema_decay: 0.999,
                log_every: 10,
                validate_every: 100,
                checkpoint_every: 100,
                ..TrainConfig::default()
            },
            sample: SampleConfig { n: 64, ..points.sample },
            ..points
        }
    }

    /// A TOML run file laid over the defaults of its data kind (the kind of `dataset` if given,
    /// else of the file's `data.dataset`, else points). Tables merge field by field, except
    /// `[model]` and `[objective]`, which replace the default whole: a model of another kind
    /// shares no fields, and an `[objective]` without `[objective.cdl]` means no CDL.
    pub fn from_toml(text: &str, dataset: Option<&DatasetSpec>) -> anyhow::Result<Self> {
        let user: toml::Table = toml::from_str(text)?;
        // config.json cannot hold NaN or ±inf (JSON writes them as null), so a run started with
        // one could never be read back to resume or evaluate it
        reject_non_finite(&toml::Value::Table(user.clone()), "")?;
        let kind = match dataset {
            Some(d) => d.kind(),
            None => match user.get("data").and_then(|d| d.get("dataset")) {
                Some(v) => {
                    let text = v.as_str().context("data.dataset: expected a string")?;
                    text.parse::<DatasetSpec>().context("data.dataset")?.kind()
                }
                None => DataKind::Points,
            },
        };
        let mut merged = toml::Table::try_from(Self::defaults_for(kind))?;
        for (key, value) in user {
            match (merged.get_mut(&key), value) {
                (Some(toml::Value::Table(base)), toml::Value::Table(over)) if key != "model" && key != "objective" => {
                    base.extend(over)
                }
                (_, value) => {
                    merged.insert(key, value);
                }
            }
        }
        Ok(merged.try_into()?)
    }
}

/// Fails on the first NaN or infinite float under `value`, naming its dotted path.
fn reject_non_finite(value: &toml::Value, path: &str) -> anyhow::Result<()> {
    let at = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match value {
        toml::Value::Float(v) if !v.is_finite() => anyhow::bail!("{path} = {v}: must be a finite number"),
        toml::Value::Table(table) => table.iter().try_for_each(|(k, v)| reject_non_finite(v, &at(k))),
        toml::Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, v)| reject_non_finite(v, &format!("{path}[{i}]")))
        }
        _ => Ok(()),
    }
}

/// Which points to train on.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// A toy name (`dino`, `moons`, …, `gmm1d`), `csv:PATH`, or an image data set: `digits`,
    /// `mnist:DIR`, `fashion-mnist:DIR` (IDX files), `cifar10:DIR` (binary batches), `folder:DIR`.
    pub dataset: DatasetSpec,
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
            dataset: DatasetSpec::default(),
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
        // ε-MSE + improved CDL on 32 instances of each batch, K = 8, weight 1/2 relative to the
        // standard loss summed over the 2 dimensions (the main job swaps in the ITD loss) (tuned as weight 1/4 against the
        // per-dimension mean: Dino, 10k steps, weight 1/4 gave MMD 0.0033, 1 gave 0.0074, MSE
        // alone 0.0042)
        Self {
            standard: StandardLoss::Mse,
            standard_weight: 1.0,
            cdl: Some(CdlConfig { instances: Some(32), weight: 0.5, ..Default::default() }),
        }
    }
}

impl ObjectiveConfig {
    /// Checks the weights (finite, non-negative) and the CDL's clip (finite, positive), naming
    /// the config field and its flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        let weight_ok = |w: f64| w.is_finite() && w >= 0.0;
        if !weight_ok(self.standard_weight) {
            anyhow::bail!("objective.standard_weight = {}: must be finite and non-negative", self.standard_weight);
        }
        if let Some(c) = &self.cdl {
            if !weight_ok(c.weight) {
                anyhow::bail!("objective.cdl.weight (--cdl-weight) = {}: must be finite and non-negative", c.weight);
            }
            if !(c.clip.is_finite() && c.clip > 0.0) {
                anyhow::bail!("objective.cdl.clip = {}: must be finite and positive", c.clip);
            }
        }
        Ok(())
    }

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

    fn parse(text: &str) -> RunConfig {
        RunConfig::from_toml(text, None).unwrap()
    }

    fn json(c: &RunConfig) -> serde_json::Value {
        serde_json::to_value(c).unwrap()
    }

    #[test]
    fn an_objective_table_without_cdl_means_no_cdl() {
        let mse = parse("[objective]\nstandard = \"mse\"\n");
        assert!(mse.objective.cdl.is_none());
        assert_eq!(mse.objective.label(), "mse");
        assert_eq!(parse("").objective.label(), "itd+cdl");
        let faithful = parse("[objective]\nstandard = \"itd\"\n[objective.cdl]\nmode = \"faithful\"\n");
        assert_eq!(faithful.objective.label(), "itd+cdl-faithful");
        assert!(RunConfig::from_toml("[objective]\nstandard = \"l2\"\n", None).is_err());
    }

    #[test]
    fn defaults_survive_the_toml_round_trip() {
        for kind in [DataKind::Points, DataKind::Images] {
            let defaults = RunConfig::defaults_for(kind);
            let text = toml::to_string(&defaults).unwrap();
            assert_eq!(json(&RunConfig::from_toml(&text, None).unwrap()), json(&defaults), "{kind:?}");
        }
        assert_eq!(json(&parse("")), json(&RunConfig::default()));
    }

    #[test]
    fn the_digits_recipe_spells_out_the_image_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/digits-mse.toml");
        let recipe = parse(&std::fs::read_to_string(path).unwrap());
        let defaults = RunConfig::image_defaults();
        assert_eq!(json(&RunConfig { data: defaults.data.clone(), ..recipe }), json(&defaults));
    }

    #[test]
    fn an_image_data_set_brings_image_defaults_under_the_file() {
        let cfg = parse("[data]\ndataset = \"digits\"\n[train]\nsteps = 5\n");
        let images = RunConfig::image_defaults();
        assert!(matches!(cfg.model, ModelSpec::Unet(_)));
        assert_eq!(cfg.objective.label(), "mse");
        assert_eq!(cfg.train, TrainConfig { steps: 5, ..images.train });
        assert_eq!(cfg.sample.n, 64);
        // the flag's data set decides the kind, whatever the file says
        let flagged = RunConfig::from_toml("[train]\nsteps = 5\n", Some(&DatasetSpec::Digits)).unwrap();
        assert_eq!(flagged.train, cfg.train);
        assert!(RunConfig::from_toml("[data]\ndataset = \"imagenet:/x\"\n", None).is_err());
        assert!(RunConfig::from_toml("[train]\nstepz = 5\n", None).is_err());
    }

    #[test]
    fn non_finite_numbers_are_refused_by_their_path() {
        // found by the property tests: `dropout = nan` was accepted and written to config.json as
        // null, which no later command could read
        let err = RunConfig::from_toml("[model]\nkind = \"unet\"\ndropout = nan\n", None).unwrap_err();
        assert_eq!(err.to_string(), "model.dropout = NaN: must be a finite number");
        let err = RunConfig::from_toml("[sample]\nmmd_bandwidth = -inf\n", None).unwrap_err();
        assert!(err.to_string().starts_with("sample.mmd_bandwidth = -inf"), "{err}");
    }
}
