//! The loss of a run: `--objective` labels and `w_std·L_std + w_cdl·L_cdl` over a Gaussian base.

use anyhow::{Result, bail};
use cdm_core::{GaussianBase, Itd};
use cdm_objectives::{Cdl, CdlMode, ItdLoss, Mse, Objective, WeightedSum, ZetaDistribution};

use crate::config::{CdlConfig, ObjectiveConfig, StandardLoss};

/// Parses an `--objective` value; CDL settings not implied by the label come from `base`.
pub fn parse_objective(label: &str, base: &ObjectiveConfig) -> Result<ObjectiveConfig> {
    let cdl = |mode| match mode {
        // the authors' setting: K = batch size, 2 instances
        CdlMode::Faithful => {
            Some(CdlConfig { mode, points: 0, instances: None, ..base.cdl.clone().unwrap_or_default() })
        }
        CdlMode::Improved => Some(CdlConfig { mode, ..base.cdl.clone().unwrap_or_default() }),
    };
    let (standard, cdl) = match label {
        "mse" => (StandardLoss::Mse, None),
        "itd" => (StandardLoss::Itd, None),
        "cdl" => (StandardLoss::None, cdl(CdlMode::Improved)),
        "mse+cdl" => (StandardLoss::Mse, cdl(CdlMode::Improved)),
        "itd+cdl" => (StandardLoss::Itd, cdl(CdlMode::Improved)),
        "mse+cdl-faithful" => (StandardLoss::Mse, cdl(CdlMode::Faithful)),
        "itd+cdl-faithful" => (StandardLoss::Itd, cdl(CdlMode::Faithful)),
        other => bail!(
            "unknown objective {other:?}: expected mse, itd, cdl, mse+cdl, itd+cdl, mse+cdl-faithful or itd+cdl-faithful"
        ),
    };
    Ok(ObjectiveConfig { standard, cdl, ..base.clone() })
}

/// `w_std·L_std + w_cdl·L_cdl` over a Gaussian `base`; `default_zeta` picks ζ's distribution
/// when the config leaves it unset. The rows per denoiser call are capped by training a
/// `Chunked` network (see `train::train_run`).
pub fn assemble_objective(
    cfg: &ObjectiveConfig,
    base: GaussianBase,
    batch_size: usize,
    default_zeta: fn(&Itd) -> ZetaDistribution,
) -> Result<WeightedSum> {
    let mut parts: Vec<(f64, Box<dyn Objective + Send + Sync>)> = Vec::new();
    match cfg.standard {
        StandardLoss::Mse => parts.push((cfg.standard_weight, Box::new(Mse::new(cdm_core::DiscreteSchedule::ddpm())))),
        StandardLoss::Itd => {
            let itd = Itd::from_base_heuristic(base.clone(), 3.0, 1)?;
            parts.push((cfg.standard_weight, Box::new(ItdLoss::new(itd))));
        }
        StandardLoss::None => {}
    }
    if let Some(c) = &cfg.cdl {
        let points = if c.points == 0 { batch_size } else { c.points };
        let itd = c.itd(base, points)?;
        let p = itd.config().proposal;
        tracing::info!(loc = p.loc, scale = p.scale, clip = p.clip, points, "CDL log-SNR proposal");
        let zeta = c.zeta.unwrap_or_else(|| default_zeta(&itd));
        parts.push((c.weight, Box::new(Cdl::new(itd, zeta, c.mode, c.instances)?)));
    }
    if parts.is_empty() {
        bail!("the objective has no part: choose a standard loss or a CDL");
    }
    Ok(WeightedSum::new(parts))
}
