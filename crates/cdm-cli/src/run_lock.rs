//! One writer per run directory: `run.lock`, created exclusively and held for the run's life.
//!
//! The lock file holds the owner's process id and host, and appears with them in one step
//! (written beside it, then hard-linked into place), so a process racing for the directory
//! always reads who owns it. A second `cdm train` on the same directory (a new run of the same
//! name, or a `--resume`) fails at once with a typed error naming the owner. A lock left by a process that no longer runs (killed, machine rebooted) is
//! recognised as stale — same host, and no such process — reported, and taken over; on another
//! host, or where liveness cannot be checked, the lock is respected and the message says which
//! file to remove.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = "run.lock";

/// A held run directory; the lock file is removed when this is dropped.
#[derive(Debug)]
pub struct RunLock {
    dir: PathBuf,
}

/// Who holds a lock, as its file says.
#[derive(Debug, PartialEq, Eq)]
struct Owner {
    pid: u32,
    host: String,
}

impl RunLock {
    /// Claims `dir` (which must exist) for this process.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let me = Owner { pid: std::process::id(), host: host_name() };
        for _ in 0..2 {
            if create_lock(&path, &me)? {
                return Ok(Self { dir: dir.to_path_buf() });
            }
            let owner = read_owner(&path)?;
            if owner.host != me.host || process_alive(owner.pid) != Some(false) {
                bail!(
                    "{} is being written by process {} on {} ({}); if that process is gone, remove the file",
                    dir.display(),
                    owner.pid,
                    owner.host,
                    path.display()
                );
            }
            tracing::warn!(lock = %path.display(), pid = owner.pid, "stale lock of a process that no longer runs: taking it over");
            std::fs::remove_file(&path).with_context(|| format!("removing stale {}", path.display()))?;
        }
        bail!("{}: another process claimed the stale lock first", path.display())
    }

    /// The locked run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join(LOCK_FILE));
    }
}

/// Creates the lock file `path` naming `owner`, atomically: written beside it, then hard-linked
/// into place, so the lock never exists half-written and a process racing for it always reads
/// its owner. `false` when the lock exists already. On a file system without hard links it is
/// created in place.
fn create_lock(path: &Path, owner: &Owner) -> Result<bool> {
    let text = format!("{}\n{}\n", owner.pid, owner.host);
    static STAGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = STAGED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let staged = path.with_extension(format!("lock.{}.{n}", owner.pid));
    std::fs::write(&staged, &text).with_context(|| format!("writing {}", staged.display()))?;
    let linked = std::fs::hard_link(&staged, path);
    let _ = std::fs::remove_file(&staged);
    let exists = |e: &std::io::Error| e.kind() == std::io::ErrorKind::AlreadyExists;
    match linked {
        Ok(()) => Ok(true),
        Err(e) if exists(&e) => Ok(false),
        Err(_) => match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(mut file) => {
                file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
                Ok(true)
            }
            Err(e) if exists(&e) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
        },
    }
}

fn read_owner(path: &Path) -> Result<Owner> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let pid = lines.next().and_then(|l| l.trim().parse().ok());
    match pid {
        Some(pid) => Ok(Owner { pid, host: lines.next().unwrap_or("").trim().to_string() }),
        None => bail!("{}: not a run lock (expected a process id on its first line)", path.display()),
    }
}

/// This machine's name (Linux: the kernel's host name; elsewhere `$HOSTNAME`).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether process `pid` runs on this machine, where the system says (Linux's `/proc`).
fn process_alive(pid: u32) -> Option<bool> {
    let proc = Path::new("/proc");
    proc.join("self").exists().then(|| proc.join(pid.to_string()).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_a_second_owner_and_a_dead_owners_lock_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(tmp.path()).unwrap();
        let second = RunLock::acquire(tmp.path()).unwrap_err().to_string();
        assert!(second.contains("is being written by process") && second.contains(LOCK_FILE), "{second}");
        drop(first);
        assert!(!tmp.path().join(LOCK_FILE).exists());

        // a lock written by a process id that does not exist on this host
        let dead = Owner { pid: u32::MAX - 1, host: host_name() };
        std::fs::write(tmp.path().join(LOCK_FILE), format!("{}\n{}\n", dead.pid, dead.host)).unwrap();
        if process_alive(dead.pid) == Some(false) {
            let taken = RunLock::acquire(tmp.path()).unwrap();
            assert_eq!(read_owner(&tmp.path().join(LOCK_FILE)).unwrap().pid, std::process::id());
            drop(taken);
        }

        // another host's lock is respected whatever its process id
        std::fs::write(tmp.path().join(LOCK_FILE), format!("{}\nsome-other-host\n", dead.pid)).unwrap();
        let err = RunLock::acquire(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("some-other-host"), "{err}");
        std::fs::write(tmp.path().join(LOCK_FILE), "not a pid\n").unwrap();
        assert!(RunLock::acquire(tmp.path()).unwrap_err().to_string().contains("not a run lock"));
    }

    #[test]
    fn claimants_racing_for_a_directory_see_one_owner_and_never_a_half_written_lock() {
        for _ in 0..20 {
            let tmp = tempfile::tempdir().unwrap();
            let start = std::sync::Barrier::new(8);
            let results: Vec<_> = std::thread::scope(|s| {
                let claims: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            RunLock::acquire(tmp.path()).map_err(|e| e.to_string())
                        })
                    })
                    .collect();
                claims.into_iter().map(|c| c.join().unwrap()).collect()
            });
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
            for err in results.iter().filter_map(|r| r.as_ref().err()) {
                assert!(err.contains("is being written by process"), "{err}");
            }
            drop(results);
            let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert!(left.is_empty(), "staged files or the lock left behind: {left:?}");
        }
    }
}
