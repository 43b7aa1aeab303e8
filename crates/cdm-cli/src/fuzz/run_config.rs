//! TOML run configs: the repository's recipes, mutated, parse to a config or an error; a config
//! that parses and validates is written to `config.json` and read back unchanged, so a run that
//! starts can always be resumed and evaluated.

use proptest::prelude::*;

use super::{apply, config, edits};
use crate::config::RunConfig;

/// The recipes in `configs/`, and the empty file (all defaults).
const RECIPES: [&str; 6] = [
    include_str!("../../../../configs/cifar10-cdl-finetune.toml"),
    include_str!("../../../../configs/digits-cdl-finetune.toml"),
    include_str!("../../../../configs/digits-mse.toml"),
    include_str!("../../../../configs/dino-cdl-faithful.toml"),
    include_str!("../../../../configs/dino-mse.toml"),
    "",
];

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn mutated_recipes_parse_and_survive_config_json_or_fail(recipe in 0..RECIPES.len(), e in edits()) {
        let text = apply(RECIPES[recipe], &e);
        let Ok(cfg) = RunConfig::from_toml(&text, None) else { return Ok(()) };
        // what `cdm train` checks before it writes anything
        if cfg.train.validate().is_err() || cfg.objective.validate().is_err() {
            return Ok(());
        }
        let json = serde_json::to_string(&cfg).unwrap();
        let back: RunConfig = serde_json::from_str(&json)
            .map_err(|err| TestCaseError::fail(format!("config.json does not read back: {err}\n{json}")))?;
        prop_assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&cfg).unwrap());
    }
}
