//! The Fashion-MNIST section of report.md: FID and KID per recipe and sampler (mean ± SD over
//! draws and fine-tune seeds) beside the data's own floor, the CDL fine-tune against MSE
//! continued with paired and Welch 95 % intervals and verdicts, and what the budget can resolve.

use cdm_metrics::{Difference, Spread};

use super::fashion::{FashionDraw, FashionPlan, Floor, grid_file};
use super::report::{LEVEL, RecipeRuns, cell, interval, lower_is_claimed, spread};
use super::runs::Trained;

/// KID is printed in units of 10⁻³.
const KID_SCALE: f64 = 1e3;

/// The fine-tunes' runs with the base run and the floor.
pub struct FashionRuns<'r> {
    /// `mse+cdl-ft` and `mse-cont`: one entry per (fine-tune seed, draw).
    pub runs: Vec<RecipeRuns<'r, FashionDraw>>,
    /// Training images against the reference.
    pub floor: Floor,
    /// How the base `mse` run trained.
    pub base: Trained,
}

/// Sampler names in report order (the order of [`FashionPlan::samplers`]).
fn sampler_names(plan: &FashionPlan) -> [String; 3] {
    [
        format!("DDIM-{}", plan.ddim_steps),
        format!("ParaDiGMS over DDIM-{}, p = S, τ = 0.1, B = {}", plan.ddim_steps, plan.group),
        format!("EDM Heun, {} steps", plan.edm_steps),
    ]
}

fn fid(i: usize) -> impl Fn(&FashionDraw) -> f64 + Copy {
    move |d| d.samplers[i].score.fid
}

fn kid(i: usize) -> impl Fn(&FashionDraw) -> f64 + Copy {
    move |d| d.samplers[i].score.kid * KID_SCALE
}

/// `a − b` on `metric`: the paired and the Welch interval, when both sides have two values. Entry `i` of both
/// recipes is the same (fine-tune seed, draw): the same training seed and sampler noise.
fn differences(
    a: &RecipeRuns<FashionDraw>,
    b: &RecipeRuns<FashionDraw>,
    metric: impl Fn(&FashionDraw) -> f64 + Copy,
) -> Option<(Difference, Difference)> {
    let values = |r: &RecipeRuns<FashionDraw>| r.seeds.iter().map(|(_, d)| metric(d)).collect::<Vec<_>>();
    let paired = Difference::paired(&values(a), &values(b), LEVEL).ok()?;
    let welch = Difference::welch(&spread(a, metric)?, &spread(b, metric)?, LEVEL).ok()?;
    Some((paired, welch))
}

/// The section.
pub fn section(plan: &FashionPlan, budget: &str, f: &FashionRuns) -> String {
    let names = sampler_names(plan);
    let reference = f.floor.draws.first().map_or(0, |s| s.reference);
    let values = f.runs.first().map_or(0, |r| r.seeds.len());
    let mut s = format!(
        "## Fashion-MNIST: CDL fine-tuning against ε-MSE continued ({budget} budget)\n\n\
         A UNet trained {} steps of {} images with the DDPM ε-MSE ({:.0} s), then fine-tuned {} more steps \
         at a quarter of its learning rate by each recipe, {} fine-tune seed(s). Each fine-tune seed is \
         sampled in {} draws of {} images per sampler; FID and KID are taken against {reference} Fashion-MNIST \
         test images (the FID Inception-v3, samples quantised to 8 bits). Cells are mean ± SD over the {values} \
         draws × seeds. FID is biased upwards at {} images (the training images' own FID below is that bias); \
         KID is unbiased.\n\n",
        plan.steps,
        plan.batch_size,
        f.base.seconds,
        plan.finetune_steps,
        plan.seeds,
        plan.draws,
        plan.samples,
        plan.samples,
    );
    s.push_str(
        "| recipe | sampler | FID | KID × 10³ | rounds | NFE / sample | s / draw |\n|---|---|---|---|---|---|---|\n",
    );
    let floor = |m: fn(&crate::image_metrics::ImageScore) -> f64| {
        Spread::of(&f.floor.draws.iter().map(m).collect::<Vec<_>>()).ok()
    };
    s.push_str(&format!(
        "| training images (the data's floor) | – | {} | {} | – | – | – |\n",
        cell(floor(|x| x.fid), 2),
        cell(floor(|x| x.kid * KID_SCALE), 2)
    ));
    for r in &f.runs {
        for (i, name) in names.iter().enumerate() {
            s.push_str(&format!(
                "| {} | {name} | {} | {} | {} | {} | {} |\n",
                r.recipe.key,
                cell(spread(r, fid(i)), 2),
                cell(spread(r, kid(i)), 2),
                cell(spread(r, |d| d.samplers[i].rounds), 1),
                cell(spread(r, |d| d.samplers[i].nfe), 0),
                cell(spread(r, |d| d.samplers[i].seconds), 0),
            ));
        }
    }
    s.push_str("\nRecipes:\n\n- `mse`: DDPM ε-MSE from scratch, the starting point of both fine-tunes (not scored)\n");
    for r in &f.runs {
        s.push_str(&format!("- `{}`: {}\n", r.recipe.key, r.recipe.label));
    }

    let (Some(cdl), Some(control)) = (f.runs.first(), f.runs.get(1)) else { return s };
    s.push_str(&format!(
        "\n### The paper's image claims: {} against {} (95 % intervals over draws × seeds)\n\n\
         Both recipes are sampled from the same noise in each draw, so the verdict is the **paired** \
         interval (the t-interval of the per-draw differences, which cancels the shared noise); \
         Welch's interval, which ignores the pairing, is the conservative check beside it.\n\n",
        cdl.recipe.key, control.recipe.key
    ));
    let claims = [
        (1, "CDL fine-tuning lowers FID under parallel sampling (the paper's ParaDiGMS table)"),
        (2, "CDL fine-tuning lowers FID under deterministic EDM sampling"),
        (0, "CDL fine-tuning lowers FID under sequential sampling"),
    ];
    let mut kid_errors = Vec::new();
    for (i, claim) in claims {
        s.push_str(&format!("- {claim} ({}):\n", names[i]));
        for (metric, ds) in
            [("FID", differences(cdl, control, fid(i))), ("KID × 10³", differences(cdl, control, kid(i)))]
        {
            let Some((paired, welch)) = ds else {
                s.push_str(&format!("  - {metric}: fewer than two draws, no interval\n"));
                continue;
            };
            let (delta, paired_interval) = interval(&paired, 2);
            let (_, welch_interval) = interval(&welch, 2);
            s.push_str(&format!(
                "  - {metric}: Δ = {delta}, paired {paired_interval} {} — {}; Welch {welch_interval} {}\n",
                paired.verdict(),
                lower_is_claimed(&paired),
                welch.verdict()
            ));
            if metric != "FID" {
                kid_errors.push((&names[i], paired));
            }
        }
    }

    s.push_str("\n### What this budget resolves\n\n");
    if let Some(floor_kid) = floor(|x| x.kid * KID_SCALE) {
        s.push_str(&format!(
            "Training images score KID × 10³ = {} against the test images (SD {:.2} over draws): a model cannot \
             be told from the data below that.\n",
            cell(Some(floor_kid), 2),
            floor_kid.sd
        ));
    }
    for (name, d) in kid_errors {
        s.push_str(&format!(
            "- {name}: the paired KID × 10³ difference has SE {:.2} on {} degrees of freedom; gaps larger \
             than {:.2} (the interval's half-width) are resolved at 95 %.\n",
            d.std_err,
            d.dof,
            (d.high - d.low) / 2.0
        ));
    }
    s.push('\n');
    for r in &f.runs {
        for label in ["ddim", "paradigms", "edm"] {
            let file = grid_file(r.recipe.key, label);
            s.push_str(&format!("![{} {label}, seed 0, draw 0]({file}) ", r.recipe.key));
        }
        s.push('\n');
    }
    s
}
