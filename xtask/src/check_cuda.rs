//! `cargo xtask check-cuda`: shows that `--features cuda` compiles and links, on a machine with
//! neither a GPU nor a CUDA toolkit.
//!
//! NVIDIA publishes the CUDA compiler as PyPI wheels. This task runs `python3 -m pip install
//! --target <cache>/cuda/pip` for nvcc, its C runtime headers, NVVM (cicc, libdevice), the CUDA
//! runtime and CCCL, once (`<cache>` as for `fetch-fid`: `$XDG_CACHE_HOME/cdm`, else
//! `~/.cache/cdm`). They unpack to `nvidia/cu13/{bin,include,lib,nvvm}`, the layout of a toolkit,
//! which becomes `CUDA_HOME`. The libraries that the `cdm` binary links to dynamically (the
//! driver's libcuda, NVRTC, cuRAND, cuBLAS, cuBLASLt) are not among the wheels: `lib/stubs` gets
//! stub libraries that define the functions cudarc declares and nothing else, as the toolkit's
//! own `lib/stubs/libcuda.so` does, so the link succeeds and the binary runs nowhere.
//!
//! Then `cargo check -p cdm-dist --all-targets --features nccl` (the NCCL collectives; checked,
//! not linked: libnccl is not among the wheels), `cargo check --workspace --all-targets
//! --features cuda` and `cargo build -p cdm-cli --features cuda` run in `<target>/cuda-check`,
//! with `CUDA_COMPUTE_CAP` naming the architecture that candle-kernels' nvcc builds for (there is
//! no `nvidia-smi` to ask).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use cargo_metadata::{CargoOpt, MetadataCommand};
use cdm_metrics::fid;

use crate::project_root;

/// The wheels and their versions. CUDA 13.4 is the newest release cudarc 0.19.10 knows: candle
/// turns on its `cuda-version-from-build-system`, whose build script reads `nvcc --version` and
/// panics on a release it does not list. CCCL's wheels carry their own version (3.4 for 13.4).
const WHEELS: [(&str, &str); 5] = [
    ("nvidia-cuda-nvcc", "13.4.92"),
    ("nvidia-cuda-crt", "13.4.92"),
    ("nvidia-nvvm", "13.4.92"),
    ("nvidia-cuda-runtime", "13.4.92"),
    ("nvidia-cuda-cccl", "13.3.4.3.1"),
];
/// Where the wheels put the toolkit, under pip's target directory.
const TOOLKIT: &str = "nvidia/cu13";
/// The libraries cudarc links to, as (its module, the library's name): the functions to stub are
/// the names its `<module>/sys/mod.rs` loads with `load::<_F>("…")`.
const STUBS: [(&str, &str); 5] =
    [("driver", "cuda"), ("nvrtc", "nvrtc"), ("curand", "curand"), ("cublas", "cublas"), ("cublaslt", "cublasLt")];

#[derive(clap::Args)]
pub struct CheckCudaArgs {
    /// Compute capability that candle-kernels compiles for (`CUDA_COMPUTE_CAP`; 90 is Hopper).
    #[arg(long, default_value_t = 90)]
    compute_cap: u32,
}

pub fn check(args: &CheckCudaArgs) -> Result<()> {
    let cache = fid::cache_dir().context("neither XDG_CACHE_HOME nor HOME is set")?.join("cuda");
    let home = install(&cache.join("pip"))?;
    link_libraries(&home)?;
    let target = crate::release::target_dir()?.join("cuda-check");
    let path = std::env::join_paths(
        std::iter::once(home.join("bin")).chain(std::env::var_os("PATH").iter().flat_map(std::env::split_paths)),
    )
    .context("the toolkit's path cannot go into PATH")?;
    [
        vec!["check", "-p", "cdm-dist", "--all-targets", "--features", "nccl"],
        vec!["check", "--workspace", "--all-targets", "--features", "cuda"],
        vec!["build", "-p", "cdm-cli", "--features", "cuda"],
    ]
    .into_iter()
    .try_for_each(|cargo_args| {
        let mut cmd = crate::cargo();
        cmd.args(cargo_args)
            .env("CARGO_TARGET_DIR", &target)
            .env("PATH", &path)
            .env("CUDA_COMPUTE_CAP", args.compute_cap.to_string());
        for var in ["CUDA_HOME", "CUDA_PATH", "CUDA_ROOT"] {
            cmd.env(var, &home);
        }
        crate::run(cmd)
    })?;
    println!("CUDA build checked with {} (target directory {})", home.display(), target.display());
    Ok(())
}

/// `pip install`s the wheels into `dir` unless all of them are there, and returns the toolkit.
fn install(dir: &Path) -> Result<PathBuf> {
    let home = dir.join(TOOLKIT);
    let installed =
        |(name, version): &(&str, &str)| dir.join(format!("{}-{version}.dist-info", name.replace('-', "_"))).is_dir();
    if WHEELS.iter().all(installed) {
        return Ok(home);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--upgrade", "--no-deps", "--target"]).arg(dir);
    pip.args(WHEELS.iter().map(|(name, version)| format!("{name}=={version}")));
    eprintln!("installing the CUDA {} compiler with pip into {} (about 130 MB)", WHEELS[0].1, dir.display());
    crate::run(pip).with_context(|| format!("pip install failed; is pip installed for {python}?"))?;
    let nvcc = home.join("bin/nvcc");
    if !nvcc.is_file() {
        bail!("pip did not leave {} behind", nvcc.display());
    }
    Ok(home)
}

/// Adds what the link of `cdm` needs to the toolkit `home`: `lib/libcudart.so` (the wheel has
/// only `libcudart.so.13`) and the stub libraries in `lib/stubs`, where cudarc's build script
/// looks, each made once.
fn link_libraries(home: &Path) -> Result<()> {
    let cudart = home.join("lib/libcudart.so");
    if !cudart.exists() {
        std::os::unix::fs::symlink("libcudart.so.13", &cudart)
            .with_context(|| format!("linking {} to libcudart.so.13", cudart.display()))?;
    }
    let stubs = home.join("lib/stubs");
    if STUBS.iter().all(|(_, lib)| stubs.join(format!("lib{lib}.so")).is_file()) {
        return Ok(());
    }
    std::fs::create_dir_all(&stubs).with_context(|| format!("creating {}", stubs.display()))?;
    let cudarc = cudarc_source()?;
    for (module, lib) in STUBS {
        let bindings = cudarc.join(module).join("sys/mod.rs");
        let text = std::fs::read_to_string(&bindings).with_context(|| format!("reading {}", bindings.display()))?;
        let functions = loaded_functions(&text);
        if functions.is_empty() {
            bail!("{} loads no functions with load::<_F>(\"…\")", bindings.display());
        }
        let source = stubs.join(format!("{lib}.c"));
        let body: String = functions.iter().map(|f| format!("void {f}(void) {{}}\n")).collect();
        std::fs::write(&source, body).with_context(|| format!("writing {}", source.display()))?;
        let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
        cc.args(["-shared", "-fPIC", "-o"]).arg(stubs.join(format!("lib{lib}.so"))).arg(&source);
        crate::run(cc).with_context(|| format!("compiling the stub library {}", source.display()))?;
    }
    Ok(())
}

/// cudarc's `src` directory, from `cargo metadata` with the `cuda` feature on.
fn cudarc_source() -> Result<PathBuf> {
    let metadata = MetadataCommand::new()
        .current_dir(project_root())
        .features(CargoOpt::SomeFeatures(vec!["cdm-cli/cuda".into()]))
        .exec()
        .context("`cargo metadata --features cdm-cli/cuda` failed")?;
    let cudarc = metadata.packages.iter().find(|p| p.name.as_str() == "cudarc").context("no cudarc under cuda")?;
    Ok(cudarc.manifest_path.parent().context("cudarc's manifest has no directory")?.join("src").into())
}

/// The names in `load::<_F>("name")` calls, sorted and each once.
fn loaded_functions(bindings: &str) -> BTreeSet<&str> {
    bindings.split("load::<_F>(\"").skip(1).filter_map(|rest| rest.split_once('"').map(|(name, _)| name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaded_functions_are_the_quoted_names_once_each() {
        let text = r#"fn load<F>(name: &str) -> F { todo!() }
            let _f = _S.get_or_init(|| unsafe { load::<_F>("cuInit") });
            let _f = _S.get_or_init(|| unsafe { load::<_F>("cuMemAlloc_v2") });
            let _f = _S.get_or_init(|| unsafe { load::<_F>("cuInit") });"#;
        assert_eq!(loaded_functions(text).into_iter().collect::<Vec<_>>(), ["cuInit", "cuMemAlloc_v2"]);
    }
}
