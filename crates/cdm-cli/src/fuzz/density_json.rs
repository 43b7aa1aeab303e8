//! Density JSON (`--density`): generated mixtures, mutated, load to a density whose log-density
//! and Gaussian base are numbers, or to an error naming the field.

use proptest::prelude::*;

use super::{apply, config, edits};
use crate::exact_spec::{DensitySpec, build};

/// A mixture of `k` components in `d` dimensions, diagonal or (one component) full covariance.
fn spec_text() -> impl Strategy<Value = String> {
    (
        1usize..4,
        1usize..4,
        any::<bool>(),
        prop::collection::vec(-10.0f64..10.0, 12),
        prop::collection::vec(0.1f64..5.0, 12),
    )
        .prop_map(|(k, d, full, means, vars)| {
            let list = |v: &[f64]| v.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(", ");
            let components: Vec<String> = (0..k)
                .map(|c| {
                    let mean = list(&means[c * d..c * d + d]);
                    let cov = if full && k == 1 {
                        let rows: Vec<String> = (0..d)
                            .map(|i| {
                                format!(
                                    "[{}]",
                                    list(&(0..d).map(|j| if i == j { vars[i] } else { 0.1 }).collect::<Vec<_>>())
                                )
                            })
                            .collect();
                        format!("\"covariance\": [{}]", rows.join(", "))
                    } else {
                        format!("\"variance\": [{}]", list(&vars[c * d..c * d + d]))
                    };
                    format!("{{\"weight\": {}, \"mean\": [{mean}], {cov}}}", 0.5 + c as f64)
                })
                .collect();
            format!("{{\"components\": [{}]}}", components.join(",\n  "))
        })
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn mutated_densities_load_to_numbers_or_name_the_field(text in spec_text(), e in edits()) {
        let text = apply(&text, &e);
        let Ok(spec) = serde_json::from_str::<DensitySpec>(&text) else { return Ok(()) };
        match build(&spec) {
            Ok(d) => {
                prop_assert!(d.base.log_eigenvalues().iter().all(|l| l.is_finite()), "{:?}", d.base.log_eigenvalues());
                let at = &spec.components[0].mean;
                let log_p = d.model.density().log_prob(at, f64::INFINITY);
                prop_assert!(!log_p.is_nan(), "log p at components[0].mean is NaN for {}", text);
            }
            Err(err) => {
                let message = format!("{err:#}");
                prop_assert!(message.contains("components"), "{}", message);
            }
        }
    }
}
