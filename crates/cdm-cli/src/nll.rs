//! `cdm nll`: per-point −log p of points under a trained run or an exact density.
//!
//! Inputs are CSV (one point per line, optional header) or `.npy` (N, …) arrays; an array
//! with more than two axes (images) is flattened to N rows. Under `--run`, inputs are in the
//! **data's original units**: the run's `standardizer.json` (if any) maps them to the model's
//! units, and the reported −log p is that of the original-units density (the log-Jacobian
//! Σ_j ln s_j of the standardisation is added). `--standardized` passes inputs as they are and
//! reports the density in model units. Under `--density`, inputs and density share units.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device};
use cdm_core::{Chunked, Denoiser, ExactDensity, GaussianBase, Itd, NoiseSource, bits_per_dim};
use cdm_data::{PointCloud, Standardizer};

use crate::admission;
use crate::data::{POINT_ROWS_PER_CALL as ROWS_PER_CALL, load_points};
use crate::exact_spec::{LoadedDensity, load_density};
use crate::model::Network;
use crate::run_dir::{SavedRun, Weights, read_json};

/// Where the denoiser comes from: a trained run or an exact density file.
#[derive(Clone, Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    /// A run directory written by `cdm train` (its EMA weights).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// A JSON file describing an exact Gaussian mixture:
    /// {"components": [{"weight": 0.5, "mean": [..], "variance": [..] | "covariance": [[..]]}]}.
    #[arg(long)]
    pub density: Option<PathBuf>,
}

/// Options shared by `cdm nll` and `cdm noise-level`.
#[derive(Clone, Debug, clap::Args)]
pub struct InputArgs {
    /// Points as CSV (one per line, optional header) or .npy (N, …).
    #[arg(long)]
    pub input: PathBuf,
    /// Under --run: the inputs are already in the model's (standardised) units; otherwise they are
    /// in the data's units and the run's standardizer.json is applied (noise levels always refer
    /// to noise in the model's units).
    #[arg(long)]
    pub standardized: bool,
    /// Override the run's device (cpu, cuda, cuda:N, metal).
    #[arg(long)]
    pub device: Option<String>,
}

/// A denoiser ready for the estimators, with its Gaussian base.
pub enum Target {
    /// A trained run.
    Run {
        /// The EMA model.
        net: Network,
        /// Diagonal Gaussian fitted to the run's training data (model units).
        base: GaussianBase,
        /// The run's standardisation, if it has one.
        standardizer: Option<Standardizer>,
        /// Where the model runs.
        device: Device,
    },
    /// An exact density.
    Density(LoadedDensity),
}

impl Target {
    /// Loads `--run` or `--density`.
    pub fn load(args: &TargetArgs, device: Option<&str>) -> Result<Self> {
        match (&args.run, &args.density) {
            (Some(dir), None) => {
                let run = SavedRun::open(dir)?;
                let device = run.device(device)?;
                let net = run.network(Weights::Ema, &device)?;
                let base = load_points(&run.config().data)?.base(None)?;
                let path = dir.join("standardizer.json");
                let standardizer = if path.exists() { Some(read_json::<Standardizer>(&path)?) } else { None };
                Ok(Target::Run { net, base, standardizer, device })
            }
            (None, Some(path)) => Ok(Target::Density(load_density(path)?)),
            _ => bail!("give exactly one of --run DIR or --density FILE.json"),
        }
    }

    /// The denoiser.
    pub fn denoiser(&self) -> &dyn Denoiser {
        match self {
            Target::Run { net, .. } => net,
            Target::Density(d) => d.model.denoiser(),
        }
    }

    /// The exact density, for `--density`.
    pub fn exact(&self) -> Option<&dyn ExactDensity> {
        match self {
            Target::Run { .. } => None,
            Target::Density(d) => Some(d.model.density()),
        }
    }

    /// The ITD base.
    pub fn base(&self) -> &GaussianBase {
        match self {
            Target::Run { base, .. } => base,
            Target::Density(d) => &d.base,
        }
    }

    /// A short description for table headers.
    pub fn describe(&self) -> String {
        match self {
            Target::Run { standardizer, .. } => {
                format!("run model{}", if standardizer.is_some() { " (standardised data)" } else { "" })
            }
            Target::Density(d) => format!("exact density, {} component(s), d = {}", d.components, d.dim),
        }
    }

    /// Values per point.
    pub fn dim(&self) -> usize {
        self.base().dim()
    }

    /// Where input tensors live.
    pub fn device(&self) -> Device {
        match self {
            Target::Run { device, .. } => device.clone(),
            Target::Density(_) => Device::Cpu,
        }
    }

    /// The dtype of input tensors (f32 for networks, f64 for exact densities).
    pub fn dtype(&self) -> DType {
        match self {
            Target::Run { .. } => DType::F32,
            Target::Density(_) => DType::F64,
        }
    }

    /// The standardisation applied to inputs (none with `--standardized` or `--density`).
    pub fn input_standardizer(&self, already_standardized: bool) -> Option<&Standardizer> {
        match self {
            Target::Run { standardizer, .. } if !already_standardized => standardizer.as_ref(),
            _ => None,
        }
    }
}

/// Reads points from CSV or `.npy`, checks their dimension and maps them to model units.
pub fn read_inputs(path: &Path, target: &Target, already_standardized: bool) -> Result<PointCloud> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let cloud = match ext.as_deref() {
        Some("csv") => cdm_data::read_csv(path)?,
        Some("npy") => {
            let array = cdm_data::read_npy(path)?;
            let Some(&rows) = array.shape.first() else {
                bail!("{}: expected an array of points (N, …), got a scalar", path.display());
            };
            if rows == 0 {
                bail!("{}: no points", path.display());
            }
            let dim = array.values.len() / rows;
            PointCloud::new(array.values, dim).with_context(|| path.display().to_string())?
        }
        _ => bail!("{}: unsupported input format: expected a .csv or .npy file", path.display()),
    };
    if cloud.dim() != target.dim() {
        let what = match target {
            Target::Run { .. } => "the run's model",
            Target::Density(_) => "the density",
        };
        bail!("{}: points have {} values each, but {what} has dimension {}", path.display(), cloud.dim(), target.dim());
    }
    let cloud = match target.input_standardizer(already_standardized) {
        Some(s) => s
            .apply(&cloud)
            .with_context(|| format!("{}: standardising with the run's standardizer.json", path.display()))?,
        None => cloud,
    };
    if target.dtype() == DType::F32 {
        within_f32(&cloud, path)?;
    }
    Ok(cloud)
}

/// Refuses a point a network would see as ±∞ (beyond f32's range once in model units), naming
/// its row and column, instead of answering NaN for it.
fn within_f32(cloud: &PointCloud, path: &Path) -> Result<()> {
    let limit = f64::from(f32::MAX);
    if let Some(i) = cloud.data().iter().position(|v| v.abs() > limit) {
        let (row, col) = (i / cloud.dim(), i % cloud.dim());
        bail!(
            "{}: row {}, column {}: {:e} (in model units) is beyond the f32 range the network computes in",
            path.display(),
            row + 1,
            col + 1,
            cloud.data()[i]
        );
    }
    Ok(())
}

/// Parses `--levels` such as `inf,6,3,1,-1` (`inf`, `+inf`, `∞` or `clean` for clean data).
pub fn parse_levels(text: &str) -> Result<Vec<f64>> {
    let levels = text
        .split(',')
        .map(|s| {
            let s = s.trim();
            match s.to_ascii_lowercase().as_str() {
                "inf" | "+inf" | "infinity" | "∞" | "clean" => Ok(f64::INFINITY),
                "-inf" | "-infinity" => bail!("--levels: -inf (pure noise) is not a usable level"),
                other => match other.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => bail!("--levels: unknown level {s:?}: expected a log-SNR number or inf (clean)"),
                },
            }
        })
        .collect::<Result<Vec<f64>>>()?;
    if levels.len() < 2 {
        bail!("--levels: need at least two candidate levels, got {text:?}");
    }
    Ok(levels)
}

/// A level as text: `inf` or the number.
pub fn level_label(level: f64) -> String {
    if level == f64::INFINITY { "inf".into() } else { format!("{level}") }
}

/// `cdm nll` options.
#[derive(Clone, Debug, clap::Args)]
pub struct NllArgs {
    /// The model.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The points.
    #[command(flatten)]
    pub input: InputArgs,
    /// Integration points K per input (more points: smaller standard errors).
    #[arg(long, default_value_t = 256)]
    pub points: usize,
    /// Clip c of the log-SNR window (the authors use 3; the dropped tails bias −log p slightly).
    #[arg(long, default_value_t = 3.0)]
    pub clip: f64,
    /// Seed of the estimator's random numbers (input i uses stream i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the table as CSV (index, nats, nats_se, bits_per_dim, bpd_se[, exact_nats]).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print at most this many rows (the CSV gets all).
    #[arg(long, default_value_t = 50)]
    pub show: usize,
}

/// Per-point −log p with standard errors.
pub struct NllTable {
    /// −log p̂ in nats.
    pub nats: Vec<f64>,
    /// Monte-Carlo standard errors.
    pub nats_se: Vec<f64>,
    /// Exact −log p, with `--density`.
    pub exact: Option<Vec<f64>>,
    /// Values per point.
    pub dim: usize,
}

/// ITD estimates for every row of `points` (model units), `chunk` inputs per call.
pub fn estimate(itd: &Itd, target: &Target, points: &PointCloud, noise: &NoiseSource) -> Result<(Vec<f64>, Vec<f64>)> {
    let x = points.to_tensor(target.dtype(), &target.device())?;
    let chunk = (ROWS_PER_CALL / itd.config().points).max(1);
    let capped = Chunked::new(target.denoiser(), ROWS_PER_CALL)?;
    let (mut value, mut se) = (Vec::new(), Vec::new());
    for start in (0..points.len()).step_by(chunk) {
        let len = chunk.min(points.len() - start);
        let est = itd.nll(&capped, &x.narrow(0, start, len)?, None, &noise.with_offset(start as u64))?.summary()?;
        value.extend(est.value);
        se.extend(est.std_err);
    }
    Ok((value, se))
}

/// Runs `cdm nll`.
pub fn run(args: &NllArgs) -> Result<NllTable> {
    if args.points < 2 {
        bail!("--points: need at least 2 integration points for a standard error (got {})", args.points);
    }
    let target = Target::load(&args.target, args.input.device.as_deref())?;
    let points = read_inputs(&args.input.input, &target, args.input.standardized)?;
    let per_call = (ROWS_PER_CALL / args.points).max(1).min(points.len());
    admission::admit(&format!("--points {}", args.points), admission::itd(per_call, args.points, points.dim(), 1))?;
    let itd = Itd::from_base_heuristic(target.base().clone(), args.clip, args.points).context("--clip")?;
    let (mut nats, nats_se) = estimate(&itd, &target, &points, &NoiseSource::new(args.seed).fork("cdm-nll"))?;
    // back to the original units: −log p_x(x) = −log p_z(z) + Σ ln s_j
    let log_jacobian: f64 =
        target.input_standardizer(args.input.standardized).map_or(0.0, |s| s.std.iter().map(|v| v.ln()).sum());
    nats.iter_mut().for_each(|v| *v += log_jacobian);
    let exact = target.exact().map(|e| points.iter_rows().map(|x| -e.log_prob(x, f64::INFINITY)).collect::<Vec<f64>>());
    let table = NllTable { nats, nats_se, exact, dim: points.dim() };
    print_table(args, &target, &table);
    if let Some(out) = &args.out {
        write_table(out, &table)?;
        println!("wrote {}", out.display());
    }
    Ok(table)
}

fn print_table(args: &NllArgs, target: &Target, t: &NllTable) {
    let units = match target {
        Target::Run { standardizer: Some(_), .. } if args.input.standardized => " (model units)",
        _ => "",
    };
    println!(
        "−log p of {} points under the {} (K = {}, clip {}){units}",
        t.nats.len(),
        target.describe(),
        args.points,
        args.clip
    );
    let exact_header = if t.exact.is_some() { format!(" {:>12} {:>7}", "exact nats", "z") } else { String::new() };
    println!("{:>6} {:>12} {:>10} {:>12} {:>10}{exact_header}", "index", "nats", "± se", "bits/dim", "± se");
    for i in 0..t.nats.len().min(args.show) {
        let (v, se) = (t.nats[i], t.nats_se[i]);
        let exact = match &t.exact {
            Some(e) => format!(" {:>12.5} {:>7.2}", e[i], (v - e[i]) / se.max(f64::MIN_POSITIVE)),
            None => String::new(),
        };
        println!(
            "{i:>6} {v:>12.5} {se:>10.5} {:>12.5} {:>10.5}{exact}",
            bits_per_dim(v, t.dim),
            bits_per_dim(se, t.dim)
        );
    }
    if t.nats.len() > args.show {
        println!("  … {} more (use --out FILE.csv or --show N)", t.nats.len() - args.show);
    }
    let n = t.nats.len() as f64;
    let mean = t.nats.iter().sum::<f64>() / n;
    let mc_se = t.nats_se.iter().map(|s| s * s).sum::<f64>().sqrt() / n;
    print!("mean {mean:.5} nats (± {mc_se:.5} MC) = {:.5} bits/dim", bits_per_dim(mean, t.dim));
    match &t.exact {
        Some(e) => println!(", exact {:.5} nats", e.iter().sum::<f64>() / n),
        None => println!(),
    }
}

fn write_table(path: &Path, t: &NllTable) -> Result<()> {
    let io = || format!("writing {}", path.display());
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).with_context(io)?);
    let exact_header = if t.exact.is_some() { ",exact_nats" } else { "" };
    writeln!(out, "index,nats,nats_se,bits_per_dim,bpd_se{exact_header}").with_context(io)?;
    for i in 0..t.nats.len() {
        let (v, se) = (t.nats[i], t.nats_se[i]);
        write!(out, "{i},{v:?},{se:?},{:?},{:?}", bits_per_dim(v, t.dim), bits_per_dim(se, t.dim)).with_context(io)?;
        if let Some(e) = &t.exact {
            write!(out, ",{:?}", e[i]).with_context(io)?;
        }
        writeln!(out).with_context(io)?;
    }
    out.flush().with_context(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_beyond_f32_are_refused_by_row_and_column() {
        let path = Path::new("x.csv");
        assert!(within_f32(&PointCloud::new(vec![1.0, -3.0e38, 0.0, 2.0], 2).unwrap(), path).is_ok());
        let err = within_f32(&PointCloud::new(vec![1.0, 2.0, 0.0, -1e39], 2).unwrap(), path).unwrap_err().to_string();
        assert!(err.contains("x.csv: row 2, column 2") && err.contains("f32"), "{err}");
    }
}
