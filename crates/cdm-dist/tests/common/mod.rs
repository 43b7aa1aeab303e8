//! Starting this test binary as an MPI job.

/// Runs `mpirun -np ranks` on the ignored test `entry` of the current test binary and returns
/// its standard output after asserting that every rank succeeded; `None` (after saying so)
/// when `mpirun` is not installed.
pub fn mpirun_entry(entry: &str, ranks: usize) -> Option<String> {
    let out = std::process::Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", &ranks.to_string()])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", entry, "--ignored", "--nocapture", "--test-threads", "1"])
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)");
            return None;
        }
        Err(e) => panic!("mpirun: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    Some(stdout)
}
