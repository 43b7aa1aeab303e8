//! Release builds of the binaries xtask runs, and where cargo puts its outputs.
//!
//! Paths come from cargo, never from an assumed `./target`: an executable from the
//! `compiler-artifact` message of `cargo build --message-format=json-render-diagnostics`, the
//! target directory from `cargo metadata`. Both follow `CARGO_TARGET_DIR`,
//! `CARGO_BUILD_TARGET_DIR` and `build.target-dir` in `.cargo/config.toml`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use cargo_metadata::{Message, MetadataCommand};

use crate::project_root;

/// Builds binary `bin` in release with `build` (a `cargo build` naming the package and any
/// features) and returns the path cargo reports for its executable.
///
/// Says what it builds first, as a first build takes minutes; cargo's progress and its rendered
/// diagnostics go to stderr as usual.
pub fn release_binary(mut build: Command, bin: &str) -> Result<PathBuf> {
    eprintln!("building {bin} in release (first build: several minutes)");
    build.args(["--release", "--bin", bin, "--message-format=json-render-diagnostics"]).stdout(Stdio::piped());
    let mut child = build.spawn().with_context(|| format!("failed to start {build:?}"))?;
    let stdout = child.stdout.take().context("cargo's stdout was not captured")?;
    let exe = executable(BufReader::new(stdout), bin);
    let status = child.wait().with_context(|| format!("waiting for {build:?}"))?;
    if !status.success() {
        bail!("{build:?} failed with {status}");
    }
    exe.with_context(|| format!("reading the JSON messages of {build:?}"))?
        .ok_or_else(|| anyhow!("{build:?} succeeded but reported no executable for binary `{bin}`"))
}

/// The executable of binary `bin` in a stream of cargo's JSON messages, read to its end; lines
/// that are not JSON messages are passed on to stdout.
fn executable(stream: impl BufRead, bin: &str) -> Result<Option<PathBuf>> {
    let mut exe = None;
    for message in Message::parse_stream(stream) {
        match message? {
            Message::CompilerArtifact(artifact) if artifact.target.is_bin() && artifact.target.name == bin => {
                if let Some(path) = artifact.executable {
                    exe = Some(path.into());
                }
            }
            Message::TextLine(line) => println!("{line}"),
            _ => {}
        }
    }
    Ok(exe)
}

/// `cargo metadata` for the workspace, without its dependencies.
fn workspace_metadata() -> MetadataCommand {
    let mut cmd = MetadataCommand::new();
    cmd.current_dir(project_root()).no_deps();
    cmd
}

/// The workspace's target directory, as `cargo metadata` reports it.
pub fn target_dir() -> Result<PathBuf> {
    target_dir_of(&workspace_metadata())
}

fn target_dir_of(metadata: &MetadataCommand) -> Result<PathBuf> {
    let metadata = metadata.exec().context("`cargo metadata` failed, so the target directory is unknown")?;
    Ok(metadata.target_directory.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of a real `cargo build --release --message-format=json-render-diagnostics`
    /// with `CARGO_TARGET_DIR=/elsewhere/target-dir`, of a package `tiny` with a build script, a
    /// library `tiny` and binaries `tiny` and `other` (paths shortened), plus a line that is not
    /// JSON.
    const STREAM: &str = include_str!("../testdata/cargo-messages.jsonl");

    #[test]
    fn executable_is_the_named_binary_s_artifact() {
        let exe = executable(STREAM.as_bytes(), "tiny").unwrap();
        assert_eq!(exe, Some(PathBuf::from("/elsewhere/target-dir/release/tiny")));
        let other = executable(STREAM.as_bytes(), "other").unwrap();
        assert_eq!(other, Some(PathBuf::from("/elsewhere/target-dir/release/other")));
    }

    #[test]
    fn executable_is_none_for_a_binary_cargo_did_not_build() {
        assert_eq!(executable(STREAM.as_bytes(), "cdm").unwrap(), None);
        // the build script is compiled to a program, but it is no binary target
        assert_eq!(executable(STREAM.as_bytes(), "build-script-build").unwrap(), None);
    }

    /// A scratch package `tiny` with one binary, outside the workspace.
    fn tiny_package(dir: &std::path::Path) {
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(dir.join("src/main.rs"), "fn main() { println!(\"tiny ran\"); }\n").unwrap();
    }

    #[test]
    fn release_binary_is_where_cargo_target_dir_says() {
        let scratch = tempfile::tempdir().unwrap();
        let (package, target) = (scratch.path().join("tiny"), scratch.path().join("elsewhere"));
        tiny_package(&package);
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build.current_dir(&package).env("CARGO_TARGET_DIR", &target).arg("build");

        let exe = release_binary(build, "tiny").unwrap();
        assert!(
            exe.canonicalize().unwrap().starts_with(target.canonicalize().unwrap()),
            "{exe:?} is not in {target:?}"
        );
        let out = Command::new(&exe).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "tiny ran\n");
        assert!(!package.join("target").exists(), "cargo built into the package's own target/ too");
    }

    #[test]
    fn target_dir_follows_cargo_target_dir() {
        let elsewhere = tempfile::tempdir().unwrap();
        let mut metadata = workspace_metadata();
        metadata.env("CARGO_TARGET_DIR", elsewhere.path());
        let reported = target_dir_of(&metadata).unwrap();
        assert_eq!(reported.canonicalize().unwrap(), elsewhere.path().canonicalize().unwrap());
    }

    #[test]
    fn target_dir_is_in_the_workspace_by_default() {
        let mut metadata = workspace_metadata();
        metadata.env_remove("CARGO_TARGET_DIR").env_remove("CARGO_BUILD_TARGET_DIR");
        assert_eq!(target_dir_of(&metadata).unwrap(), project_root().join("target"));
    }

    #[test]
    fn a_failed_build_names_the_command() {
        let scratch = tempfile::tempdir().unwrap();
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build.current_dir(scratch.path()).arg("build"); // no Cargo.toml here
        let err = release_binary(build, "tiny").unwrap_err().to_string();
        assert!(err.contains(r#""build" "--release" "--bin" "tiny""#) && err.contains("failed with"), "{err}");
    }
}
