//! `--dataset` strings: any text parses to a spec that prints back to itself, or to an error that
//! lists what is expected.

use proptest::prelude::*;

use super::config;
use crate::dataset::DatasetSpec;

fn spec_text() -> impl Strategy<Value = String> {
    static PREFIXES: [&str; 11] =
        ["csv", "mnist", "fashion-mnist", "cifar10", "folder", "hub", "dino", "digits", "gmm1d", "", "imagenet"];
    prop_oneof![
        any::<String>(),
        (prop::sample::select(&PREFIXES[..]), prop::option::of("[ -~]{0,12}"), "[ \t]{0,2}").prop_map(
            |(p, path, pad)| {
                match path {
                    Some(path) => format!("{pad}{p}:{path}{pad}"),
                    None => format!("{pad}{p}{pad}"),
                }
            }
        ),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn dataset_strings_parse_and_print_back_or_say_what_is_expected(text in spec_text()) {
        match text.parse::<DatasetSpec>() {
            Ok(spec) => {
                let printed = spec.to_string();
                prop_assert_eq!(printed.parse::<DatasetSpec>().ok(), Some(spec.clone()), "{}", printed);
                let json = serde_json::to_string(&spec).unwrap();
                prop_assert_eq!(serde_json::from_str::<DatasetSpec>(&json).ok(), Some(spec));
            }
            Err(e) => {
                let message = format!("{e:#}");
                let helpful = message.contains("digits") || message.contains("prefix") || message.contains("empty");
                prop_assert!(helpful, "{}", message);
            }
        }
    }
}
