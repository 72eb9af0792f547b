//! The C ABI with real processes: a C program (`tests/smoke/smoke.c`) built against
//! MPICH's `mpi.h` (same ABI; zerorank's own header is checked separately) and linked
//! with zerorank's `libmpi.so.12`, run under `zrun` at 1 to 4 ranks; the same program
//! built by MPICH's `mpicc` and pointed at zerorank through `LD_LIBRARY_PATH`, under
//! `zrun` and under MPICH's `mpiexec` (PMI-1).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{run_bounded, target_dir, zrun};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const MPICH_INCLUDE: &str = "/usr/include/x86_64-linux-gnu/mpich";

/// A directory with zerorank's library under both of its ABI names.
fn libdir(tmp: &Path) -> PathBuf {
    let lib = target_dir().join("libmpi.so");
    assert!(lib.is_file(), "{} was not built", lib.display());
    let dir = tmp.join("lib");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&lib, dir.join("libmpi.so.12")).unwrap();
    std::os::unix::fs::symlink("libmpi.so.12", dir.join("libmpich.so.12")).unwrap();
    std::os::unix::fs::symlink("libmpi.so.12", dir.join("libmpi.so")).unwrap();
    dir
}

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smoke/smoke.c")
}

fn check_ok(out: std::process::Output, what: &str, n: usize) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("OK smoke {n} ranks")),
        "{what} at {n} ranks failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}

#[test]
fn c_program_runs_under_zrun_at_1_to_4_ranks() {
    if !Path::new(MPICH_INCLUDE).join("mpi.h").is_file() {
        eprintln!("SKIPPED LOUDLY: MPICH's mpi.h is missing (install libmpich-dev)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let lib = libdir(tmp.path());
    let exe = tmp.path().join("smoke");
    let st = Command::new("cc")
        .arg(format!("-I{MPICH_INCLUDE}"))
        .arg(source())
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lmpi")
        .status()
        .expect("run cc");
    assert!(st.success(), "compiling smoke.c failed");
    for n in 1..=4 {
        let mut cmd = Command::new(zrun());
        cmd.args(["-n", &n.to_string()]).arg(&exe);
        check_ok(run_bounded(cmd, Duration::from_secs(120)), "zrun", n);
    }
}

#[test]
fn mpich_built_binary_runs_on_zerorank_under_zrun_and_mpiexec() {
    let have = |p: &str| {
        Command::new(p)
            .arg("-show")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("mpicc.mpich") {
        eprintln!("SKIPPED LOUDLY: mpicc.mpich is missing (install mpich)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let lib = libdir(tmp.path());
    let exe = tmp.path().join("smoke-mpich");
    let st = Command::new("mpicc.mpich")
        .arg(source())
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("run mpicc.mpich");
    assert!(st.success(), "mpicc.mpich failed");
    let mut cmd = Command::new(zrun());
    cmd.args(["-n", "3"]).arg(&exe).env("LD_LIBRARY_PATH", &lib);
    check_ok(
        run_bounded(cmd, Duration::from_secs(120)),
        "MPICH binary under zrun",
        3,
    );
    let mut cmd = Command::new("mpiexec.mpich");
    cmd.args(["-n", "2"]).arg(&exe).env("LD_LIBRARY_PATH", &lib);
    check_ok(
        run_bounded(cmd, Duration::from_secs(120)),
        "MPICH binary under mpiexec",
        2,
    );
}
