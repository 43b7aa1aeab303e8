//! What `cdm reproduce` trains at each budget: the recipes compared, their training steps,
//! the seeds, and how many samples and reference points score each model.

use serde::{Deserialize, Serialize};

use cdm_objectives::CdlMode;

use crate::config::{CdlConfig, ModelSpec, ObjectiveConfig, RunConfig, StandardLoss};

/// How much compute to spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// About 20 minutes on 2 CPU cores: shows the pipeline end to end; its report says which
    /// gaps it can resolve.
    Quick,
    /// About 1 hour on 2 idle CPU cores: resolves a gap the size of the paper's at ≥ 3 σ.
    Standard,
    /// The paper's training length (782 000 steps) and network: GPU-sized.
    Paper,
    /// Seconds: checks the pipeline in tests (50-step chains, a few dozen samples).
    #[value(hide = true)]
    Smoke,
}

/// The settings of one budget.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// The network of the Dino models.
    pub model: ModelSpec,
    /// Training steps from scratch.
    pub steps: u64,
    /// Extra steps of the fine-tunes and of their continued-training control.
    pub finetune_steps: u64,
    /// Training seeds per recipe.
    pub seeds: u64,
    /// Samples per draw.
    pub samples: usize,
    /// Fresh reference points each draw is scored against.
    pub references: usize,
    /// Independent draws of the sequential sampler per model (each with fresh references).
    pub sequential_draws: usize,
    /// Held-out points of the NLL column.
    pub nll_points: usize,
    /// Training steps of the 1-D models of Figure 1.
    pub gmm1d_steps: u64,
    /// Steps of the DDPM chain the samplers run (the paper's 1000).
    pub chain_steps: usize,
}

impl Plan {
    /// The plan of `budget`; `seeds` overrides its number of training seeds.
    pub fn new(budget: Budget, seeds: Option<u64>) -> Self {
        let main_job = RunConfig::default().model;
        let plan = match budget {
            Budget::Quick => Plan {
                model: main_job,
                steps: 10_000,
                finetune_steps: 3_000,
                seeds: 3,
                samples: 1000,
                references: 4000,
                sequential_draws: 3,
                nll_points: 500,
                gmm1d_steps: 5_000,
                chain_steps: 1000,
            },
            Budget::Standard => Plan {
                model: main_job,
                steps: 40_000,
                finetune_steps: 10_000,
                seeds: 3,
                samples: 2000,
                references: 8000,
                sequential_draws: 4,
                nll_points: 2000,
                gmm1d_steps: 15_000,
                chain_steps: 1000,
            },
            // the authors' 2-D network and training length; their 1-D CDL checkpoint had 23 460 steps
            Budget::Paper => Plan {
                model: ModelSpec::Mlp(Default::default()),
                steps: 782_000,
                finetune_steps: 78_200,
                seeds: 3,
                samples: 2000,
                references: 8000,
                sequential_draws: 4,
                nll_points: 2000,
                gmm1d_steps: 23_460,
                chain_steps: 1000,
            },
            Budget::Smoke => Plan {
                model: main_job,
                steps: 30,
                finetune_steps: 10,
                seeds: 2,
                samples: 24,
                references: 96,
                sequential_draws: 2,
                nll_points: 8,
                gmm1d_steps: 30,
                chain_steps: 50,
            },
        };
        Plan { seeds: seeds.unwrap_or(plan.seeds), ..plan }
    }
}

/// One training recipe of the comparison.
#[derive(Clone, Debug)]
pub struct Recipe {
    /// Short name, also the run directory's (`itd+cdl`).
    pub key: &'static str,
    /// What it is, for the report.
    pub label: &'static str,
    /// The loss.
    pub objective: ObjectiveConfig,
    /// The recipe whose trained weights (same seed) it starts from: a fine-tune of that many
    /// `finetune_steps` at a quarter of the learning rate.
    pub init: Option<&'static str>,
}

/// The DDPM baseline's key; every other recipe is compared with it.
pub const BASELINE: &str = "ddpm";

/// The Dino recipes, in training order (a fine-tune after the recipe it starts from).
pub fn dino_recipes() -> Vec<Recipe> {
    let mse = ObjectiveConfig { standard: StandardLoss::Mse, standard_weight: 1.0, cdl: None };
    let itd = ObjectiveConfig { standard: StandardLoss::Itd, ..mse.clone() };
    vec![
        Recipe { key: BASELINE, label: "DDPM ε-MSE (the paper's baseline)", objective: mse.clone(), init: None },
        Recipe { key: "itd", label: "ITD loss alone", objective: itd, init: None },
        Recipe {
            key: "itd+cdl",
            label: "ITD + faithful CDL, weight 1 (the paper's CDL model)",
            objective: authors_cdl(),
            init: None,
        },
        Recipe {
            key: "mse+cdl", label: "ε-MSE + ½·improved CDL", objective: ObjectiveConfig::default(), init: None
        },
        Recipe {
            key: "mse+cdl-ft",
            label: "ε-MSE + ½·improved CDL, fine-tuned from DDPM",
            objective: ObjectiveConfig::default(),
            init: Some(BASELINE),
        },
        Recipe {
            key: "ddpm-cont",
            label: "DDPM continued (control of the fine-tune)",
            objective: mse,
            init: Some(BASELINE),
        },
    ]
}

/// The recipes of Figure 1 (the 1-D mixture).
pub fn gmm1d_recipes() -> Vec<Recipe> {
    dino_recipes().into_iter().filter(|r| matches!(r.key, BASELINE | "itd+cdl" | "mse+cdl")).collect()
}

/// The comparisons of the report: `(a, b)` reads "a against b".
pub fn comparisons() -> Vec<(&'static str, &'static str)> {
    vec![
        ("itd", BASELINE),
        ("itd+cdl", BASELINE),
        ("itd+cdl", "itd"),
        ("mse+cdl", BASELINE),
        ("mse+cdl-ft", BASELINE),
        ("mse+cdl-ft", "ddpm-cont"),
    ]
}

/// The authors' CDL setting: ITD standard loss + faithful CDL (2 instances, K = batch size),
/// weight 1 (docs/math.md §9.2).
fn authors_cdl() -> ObjectiveConfig {
    let cdl = CdlConfig { mode: CdlMode::Faithful, weight: 1.0, points: 0, instances: None, ..Default::default() };
    ObjectiveConfig { standard: StandardLoss::Itd, standard_weight: 1.0, cdl: Some(cdl) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_start_after_what_they_fine_tune() {
        let recipes = dino_recipes();
        for (i, r) in recipes.iter().enumerate() {
            if let Some(from) = r.init {
                assert!(recipes[..i].iter().any(|p| p.key == from), "{} before {from}", r.key);
            }
        }
        let keys: Vec<&str> = recipes.iter().map(|r| r.key).collect();
        for (a, b) in comparisons() {
            assert!(keys.contains(&a) && keys.contains(&b), "{a} vs {b}");
        }
    }

    #[test]
    fn the_paper_model_is_itd_plus_faithful_cdl_at_weight_one() {
        let o = authors_cdl();
        assert_eq!(o.standard, StandardLoss::Itd);
        let cdl = o.cdl.unwrap();
        assert_eq!((cdl.mode, cdl.weight, cdl.points, cdl.instances), (CdlMode::Faithful, 1.0, 0, None));
    }
}
