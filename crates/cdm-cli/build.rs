//! Records the git revision the binary is built from (`CDM_GIT_REVISION`), with `-dirty` when
//! tracked files differed from it, so run directories and reports name the code that made them
//! rather than whatever the checkout holds when they are written.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let revision = match git(&["rev-parse", "HEAD"]) {
        Some(head) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{head}-dirty") } else { head }
        }
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=CDM_GIT_REVISION={revision}");
    // rebuilt on a commit, a checkout or a staged change, and when this crate's sources change
    for path in ["HEAD", "index"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    println!("cargo:rerun-if-changed=src");
}
