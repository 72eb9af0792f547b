//! The MPI profiling interface: `tests/pmpi/tool.c` defines `MPI_Send`, `MPI_Recv`,
//! `MPI_Allreduce` and `MPI_Wtime` itself and forwards them to the `PMPI_` names, the way
//! a profiling tool does. Built with `zrcc` and run under `zrun` at 1 to 3 ranks, and
//! built with MPICH's `mpicc.mpich` and run on zerorank's `libmpich.so.12` through
//! `LD_LIBRARY_PATH`. Without `-Bsymbolic-functions` the `PMPI_` jump went back to the
//! tool's function through the PLT and the program never finished.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{release_dir, run_bounded, target_dir, zrcc_build};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn source() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pmpi/tool.c")
}

fn run(exe: &Path, n: usize, lib: Option<&Path>, what: &str) {
    let mut cmd = Command::new(release_dir().join("zrun"));
    cmd.arg("-n").arg(n.to_string()).arg(exe);
    match lib {
        Some(dir) => cmd.env("LD_LIBRARY_PATH", dir),
        // The program's RUNPATH names the release library; cargo's LD_LIBRARY_PATH
        // would load another.
        None => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    let out = run_bounded(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout.contains(&format!("OK pmpi {n} ranks"))
            && stdout.contains("library: zerorank"),
        "{what} at {n} ranks failed ({:?})\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_tool_in_front_of_the_library_reaches_it_through_the_pmpi_names() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("tool");
    zrcc_build(&source(), &exe);
    for n in 1..=3 {
        run(&exe, n, None, "tool.c built with zrcc");
    }
}

#[test]
fn an_mpich_built_tool_reaches_zerorank_through_the_pmpi_names() {
    let have = Command::new("mpicc.mpich")
        .arg("-show")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("SKIPPED LOUDLY: mpicc.mpich is missing (install mpich)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(target_dir().join("libmpi.so"), lib.join("libmpi.so.12")).unwrap();
    std::os::unix::fs::symlink("libmpi.so.12", lib.join("libmpich.so.12")).unwrap();
    let exe = tmp.path().join("tool");
    let mut cc = Command::new("mpicc.mpich");
    cc.args(["-std=c99", "-O2", "-o"]).arg(&exe).arg(source());
    let out = run_bounded(cc, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "mpicc.mpich failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    run(
        &exe,
        2,
        Some(&lib),
        "tool.c built with mpicc.mpich, on zerorank's libmpich.so.12",
    );
}
