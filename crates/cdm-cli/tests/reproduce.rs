//! `cdm reproduce` end to end at the smoke budget: every recipe trained on two seeds, scored,
//! compared with intervals in report.md, and cached on a second invocation.

mod common;

use common::{cdm, stderr};

#[test]
fn reproduce_reports_every_recipe_with_intervals_and_caches_its_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("reproduce");
    let args = ["reproduce", "all", "--budget", "smoke", "--out", out.to_str().unwrap(), "--no-progress"];
    let first = cdm(&args);
    assert!(first.status.success(), "{}", stderr(&first));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for recipe in ["ddpm", "itd", "itd+cdl", "mse+cdl", "mse+cdl-ft", "ddpm-cont"] {
        assert!(report.contains(&format!("| {recipe} |")), "no row for {recipe}:\n{report}");
        for seed in 0..2 {
            let dir = out.join("dino").join(recipe).join(format!("seed{seed}"));
            assert!(dir.join("eval-reproduce.json").is_file(), "{}", dir.display());
        }
    }
    // two seeds per recipe: every comparison has an interval and a verdict
    for comparison in ["itd+cdl vs ddpm", "mse+cdl-ft vs ddpm-cont", "itd+cdl vs itd"] {
        let row = report.lines().find(|l| l.starts_with(&format!("| {comparison} |"))).unwrap_or_default();
        assert!(row.contains("resolved"), "{comparison}: {row}");
    }
    assert!(report.contains("*paper, itd+cdl"), "{report}");
    assert!(report.contains("git revision"), "{report}");
    for png in ["dino-mmd-per-round.png", "gmm1d-ddpm-map.png", "gmm1d-itd-cdl-map.png", "gmm1d-mse-cdl-map.png"] {
        assert!(out.join(png).is_file(), "{png}");
    }
    assert!(out.join("dino/ddpm/seed0/samples.png").is_file());
    assert!(report.contains("CDL lowers the error away from the paths"), "{report}");

    // a second invocation retrains and rescores nothing
    let weights = out.join("dino/itd+cdl/seed1/ema.safetensors");
    let eval = out.join("dino/itd+cdl/seed1/eval-reproduce.json");
    let stamp = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before = (stamp(&weights), stamp(&eval));
    let second = cdm(&args);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!((stamp(&weights), stamp(&eval)), before);
    let again = std::fs::read_to_string(out.join("report.md")).unwrap();
    let table = |r: &str| r.lines().filter(|l| l.starts_with("| ")).collect::<Vec<_>>().join("\n");
    assert_eq!(table(&again), table(&report));
}
