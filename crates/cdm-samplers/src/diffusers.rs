//! diffusers' DDPM and DDIM schedulers (`scheduler_config.json`) as this crate's step maps
//! (`docs/samplers.md` §12).
//!
//! A [`SchedulerConfig`] deserialises the file as `save_pretrained` writes it, with the defaults
//! of diffusers 0.42 for absent keys, and [`SchedulerConfig::chain`] turns it into the schedule,
//! the network's [`Prediction`] and ready [`DdpmConfig`] / [`DdimConfig`] templates (set `steps`,
//! and `eta` for DDIM). Every setting either maps exactly or is refused with
//! [`Error::InvalidArgument`] naming the key:
//!
//! | key | supported values | maps to |
//! |---|---|---|
//! | `_class_name` | `DDPMScheduler`, `DDIMScheduler`, `DDPMParallelScheduler`, `DDIMParallelScheduler` | [`SchedulerFamily`] |
//! | `num_train_timesteps`, `beta_start`, `beta_end` | any valid | the [`DiscreteSchedule`] |
//! | `beta_schedule` | `linear`, `scaled_linear`, `squaredcos_cap_v2` | linear, scaled linear, cosine (s = 0.008) |
//! | `prediction_type` | `epsilon`, `sample`, `v_prediction` | [`Prediction`] |
//! | `clip_sample`, `clip_sample_range` | any | `clip_sample: Some(range)` when on |
//! | `set_alpha_to_one` (DDIM) | any | [`DdimConfig::set_alpha_to_one`] |
//! | `variance_type` (DDPM) | `fixed_small`, `fixed_small_log`, `fixed_large` | [`DdpmVariance`] |
//! | `timestep_spacing` | `leading`, `trailing`, `linspace` | [`TimestepSpacing`] |
//! | `steps_offset` | 0 | — |
//! | `trained_betas`, `thresholding`, `rescale_betas_zero_snr` | null / false | — |
//!
//! One difference is deliberate: diffusers steps from `t` to `t − ⌊T/S⌋`, whereas these maps step
//! to the next timestep of the list (`cdm_core::spacing`). The two agree whenever the visited
//! timesteps are evenly spaced by ⌊T/S⌋ — always for `leading`, and for `trailing` when S
//! divides T — and otherwise diffusers skips or repeats part of the schedule.

use cdm_core::{DiscreteSchedule, Prediction, TimestepSpacing};

use crate::{DdimConfig, DdpmConfig, DdpmVariance, Error, Result};

/// Which of diffusers' scheduler classes a config names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerFamily {
    /// `DDPMScheduler` or `DDPMParallelScheduler`: ancestral DDPM (their pipelines take 1000 steps).
    Ddpm,
    /// `DDIMScheduler` or `DDIMParallelScheduler`: DDIM (their pipelines take 50 steps).
    Ddim,
}

/// `scheduler_config.json` of a diffusers DDPM or DDIM scheduler; absent keys take diffusers'
/// defaults, unknown keys are ignored.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    /// The scheduler class.
    #[serde(rename = "_class_name")]
    pub class_name: String,
    /// T.
    pub num_train_timesteps: usize,
    /// β_0.
    pub beta_start: f64,
    /// β_{T−1}.
    pub beta_end: f64,
    /// `linear`, `scaled_linear` or `squaredcos_cap_v2`.
    pub beta_schedule: String,
    /// An explicit β table (not supported).
    pub trained_betas: Option<Vec<f64>>,
    /// `epsilon`, `sample` or `v_prediction`.
    pub prediction_type: String,
    /// Whether x̂₀ is clamped to `[−clip_sample_range, clip_sample_range]`.
    pub clip_sample: bool,
    /// The clamp of `clip_sample`.
    pub clip_sample_range: f64,
    /// DDIM: whether ᾱ after the last step is 1 (else ᾱ_0).
    pub set_alpha_to_one: bool,
    /// DDPM: `fixed_small`, `fixed_small_log` or `fixed_large`.
    pub variance_type: String,
    /// `leading`, `trailing` or `linspace`.
    pub timestep_spacing: String,
    /// Added to every `leading` timestep (only 0 is supported).
    pub steps_offset: usize,
    /// Dynamic thresholding of x̂₀ (not supported).
    pub thresholding: bool,
    /// Rescaling β to zero terminal SNR (not supported).
    pub rescale_betas_zero_snr: bool,
}

impl Default for SchedulerConfig {
    /// diffusers 0.42's defaults (shared by the four classes).
    fn default() -> Self {
        Self {
            class_name: String::new(),
            num_train_timesteps: 1000,
            beta_start: 1e-4,
            beta_end: 0.02,
            beta_schedule: "linear".into(),
            trained_betas: None,
            prediction_type: "epsilon".into(),
            clip_sample: true,
            clip_sample_range: 1.0,
            set_alpha_to_one: true,
            variance_type: "fixed_small".into(),
            timestep_spacing: "leading".into(),
            steps_offset: 0,
            thresholding: false,
            rescale_betas_zero_snr: false,
        }
    }
}

/// A diffusers scheduler as step-map templates; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct DiffusersChain {
    /// The scheduler's family.
    pub family: SchedulerFamily,
    /// The training schedule.
    pub schedule: DiscreteSchedule,
    /// What the network predicts.
    pub prediction: Prediction,
    /// DDPM with the scheduler's spacing, variance and clipping (set `steps`).
    pub ddpm: DdpmConfig,
    /// DDIM with the scheduler's spacing, clipping and final ᾱ (set `steps` and `eta`).
    pub ddim: DdimConfig,
}

impl SchedulerConfig {
    /// Validates the config and builds its [`DiffusersChain`].
    pub fn chain(&self) -> Result<DiffusersChain> {
        let family = match self.class_name.as_str() {
            "DDPMScheduler" | "DDPMParallelScheduler" => SchedulerFamily::Ddpm,
            "DDIMScheduler" | "DDIMParallelScheduler" => SchedulerFamily::Ddim,
            other => {
                return Err(Error::invalid(
                    "_class_name",
                    format!("{other:?}"),
                    "must be DDPMScheduler, DDIMScheduler, DDPMParallelScheduler or DDIMParallelScheduler",
                ));
            }
        };
        let refuse = |field: &'static str, value: &dyn std::fmt::Display, reason: &'static str| {
            Err(Error::invalid(field, value, reason))
        };
        if self.trained_betas.is_some() {
            return refuse("trained_betas", &"[…]", "an explicit β table is not supported");
        }
        if self.thresholding {
            return refuse("thresholding", &true, "dynamic thresholding is not supported");
        }
        if self.rescale_betas_zero_snr {
            return refuse("rescale_betas_zero_snr", &true, "zero-terminal-SNR rescaling is not supported");
        }
        if self.steps_offset != 0 {
            return refuse("steps_offset", &self.steps_offset, "only 0 is supported");
        }
        let (t, b0, b1) = (self.num_train_timesteps, self.beta_start, self.beta_end);
        let schedule = match self.beta_schedule.as_str() {
            "linear" => DiscreteSchedule::linear(t, b0, b1)?,
            "scaled_linear" => DiscreteSchedule::scaled_linear(t, b0, b1)?,
            "squaredcos_cap_v2" => DiscreteSchedule::cosine(t, 0.008)?,
            other => {
                return refuse("beta_schedule", &quoted(other), "must be linear, scaled_linear or squaredcos_cap_v2");
            }
        };
        let prediction = match self.prediction_type.as_str() {
            "epsilon" => Prediction::Epsilon,
            "sample" => Prediction::Sample,
            "v_prediction" => Prediction::Velocity,
            other => return refuse("prediction_type", &quoted(other), "must be epsilon, sample or v_prediction"),
        };
        let spacing = match self.timestep_spacing.as_str() {
            "leading" => TimestepSpacing::Leading,
            "trailing" => TimestepSpacing::Trailing,
            "linspace" => TimestepSpacing::Linspace,
            other => return refuse("timestep_spacing", &quoted(other), "must be leading, trailing or linspace"),
        };
        let variance = match (family, self.variance_type.as_str()) {
            (SchedulerFamily::Ddpm, "fixed_small" | "fixed_small_log") | (SchedulerFamily::Ddim, _) => {
                DdpmVariance::FixedSmall
            }
            (SchedulerFamily::Ddpm, "fixed_large") => DdpmVariance::FixedLarge,
            (SchedulerFamily::Ddpm, other) => {
                return refuse("variance_type", &quoted(other), "must be fixed_small, fixed_small_log or fixed_large");
            }
        };
        let range = self.clip_sample_range;
        if self.clip_sample && !(range > 0.0 && range.is_finite()) {
            return refuse("clip_sample_range", &range, "must be positive and finite");
        }
        let clip_sample = self.clip_sample.then_some(range);
        let ddpm = DdpmConfig { steps: t, spacing, variance, clip_sample };
        let ddim = DdimConfig { spacing, clip_sample, set_alpha_to_one: self.set_alpha_to_one, ..Default::default() };
        Ok(DiffusersChain { family, schedule, prediction, ddpm, ddim })
    }
}

fn quoted(value: &str) -> String {
    format!("{value:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> SchedulerConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn ddim_defaults_are_diffusers_defaults() {
        let chain = parse(r#"{"_class_name": "DDIMScheduler", "_diffusers_version": "0.42.1"}"#).chain().unwrap();
        assert_eq!(chain.family, SchedulerFamily::Ddim);
        assert_eq!(chain.prediction, Prediction::Epsilon);
        assert_eq!(chain.ddim.spacing, TimestepSpacing::Leading);
        assert_eq!((chain.ddim.clip_sample, chain.ddim.set_alpha_to_one), (Some(1.0), true));
        let reference = DiscreteSchedule::ddpm();
        assert_eq!(chain.schedule.betas(), reference.betas());
        // leading 50 of 1000: 980, 960, …, 0
        let ddim = DdimConfig { steps: 50, ..chain.ddim }.build(&chain.schedule).unwrap();
        assert_eq!((ddim.timesteps()[0], ddim.timesteps()[49]), (980, 0));
    }

    #[test]
    fn ddpm_settings_map_to_the_step_map() {
        let config = parse(
            r#"{"_class_name": "DDPMParallelScheduler", "beta_schedule": "squaredcos_cap_v2",
                "prediction_type": "v_prediction", "clip_sample": false, "variance_type": "fixed_large",
                "timestep_spacing": "trailing", "num_train_timesteps": 200}"#,
        );
        let chain = config.chain().unwrap();
        assert_eq!(chain.family, SchedulerFamily::Ddpm);
        assert_eq!(chain.prediction, Prediction::Velocity);
        assert_eq!(
            chain.ddpm,
            DdpmConfig {
                steps: 200,
                spacing: TimestepSpacing::Trailing,
                variance: DdpmVariance::FixedLarge,
                clip_sample: None
            }
        );
        assert_eq!(chain.schedule.betas(), DiscreteSchedule::cosine(200, 0.008).unwrap().betas());
    }

    #[test]
    fn unsupported_settings_name_their_key() {
        let field = |json: &str| match parse(json).chain() {
            Err(Error::InvalidArgument { field, .. }) => field,
            Err(Error::Core(cdm_core::Error::InvalidArgument { field, .. })) => field,
            other => panic!("{json}: {other:?}"),
        };
        assert_eq!(field(r#"{"_class_name": "EulerDiscreteScheduler"}"#), "_class_name");
        assert_eq!(field(r#"{"_class_name": "DDIMScheduler", "beta_schedule": "sigmoid"}"#), "beta_schedule");
        assert_eq!(field(r#"{"_class_name": "DDIMScheduler", "prediction_type": "flow"}"#), "prediction_type");
        assert_eq!(field(r#"{"_class_name": "DDPMScheduler", "variance_type": "learned_range"}"#), "variance_type");
        assert_eq!(field(r#"{"_class_name": "DDPMScheduler", "trained_betas": [0.1, 0.2]}"#), "trained_betas");
        assert_eq!(field(r#"{"_class_name": "DDIMScheduler", "steps_offset": 1}"#), "steps_offset");
        assert_eq!(field(r#"{"_class_name": "DDIMScheduler", "thresholding": true}"#), "thresholding");
        assert_eq!(field(r#"{"_class_name": "DDIMScheduler", "clip_sample_range": -1.0}"#), "clip_sample_range");
        assert_eq!(field(r#"{"_class_name": "DDIMScheduler", "beta_end": 1.5}"#), "beta_end");
    }
}
