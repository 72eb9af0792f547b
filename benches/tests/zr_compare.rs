//! The comparison harness end to end, on a small run: it builds the C benchmark with each
//! implementation it finds, runs the alternating rounds, reads every implementation's
//! output, and writes the report, its plots and the raw records. Timings are reported by
//! the tool, never judged here.

#[path = "../../mpi-shim/tests/common/mod.rs"]
mod common;
use common::*;
use std::process::Command;
use std::time::Duration;
use zerorank_benches::report;

/// zrcc and libmpi of this test's profile (zrun comes from `common::zrun`).
fn build_zerorank_c_layer() {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", "zerorank-mpi", "--lib", "--bins"]);
    if target_dir().ends_with("release") {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().expect("run cargo build").success(),
        "building zrcc and libmpi failed"
    );
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn zr_compare_bench_quick_run_reads_every_implementation_and_writes_the_report() {
    let _ = zrun();
    build_zerorank_c_layer();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let rep = tmp.path().join("RESULTS.md");
    let root = env!("CARGO_MANIFEST_DIR").to_string() + "/..";
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zr-compare"));
    cmd.current_dir(&root)
        .args([
            "--quick",
            "--rounds",
            "2",
            "--max-size",
            "64",
            "--no-install",
        ])
        .args(["--tests", "latency,bw,bcast,allreduce"])
        .arg("--out")
        .arg(&out)
        .arg("--report")
        .arg(&rep)
        .arg("--zerorank-dir")
        .arg(target_dir());
    let o = run_bounded(cmd, Duration::from_secs(240));
    let (so, se) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        o.status.success(),
        "zr-compare failed\nstdout:\n{so}\nstderr:\n{se}"
    );
    assert!(so.contains("8 B latency") && so.contains("report:"), "{so}");

    let mut impls = vec!["zerorank"];
    if have("mpicc.openmpi") && have("mpirun.openmpi") {
        impls.push("openmpi");
    } else {
        eprintln!("SKIPPED part: Open MPI is not installed; only zerorank's output is read");
    }
    if have("mpicc.mpich") && have("mpiexec.mpich") {
        impls.push("mpich");
    } else {
        eprintln!("SKIPPED part: MPICH is not installed");
    }
    let json = std::fs::read_to_string(out.join("records.json")).unwrap();
    let rs = report::from_json(&json).unwrap();
    for imp in &impls {
        for test in ["latency", "bw", "bcast", "allreduce"] {
            // Two rounds of each size.
            let n = rs
                .iter()
                .filter(|r| r.implementation == *imp && r.test == test)
                .count();
            let sizes = if test == "allreduce" { 5 } else { 8 }; // 4..64, or 0..64
            assert_eq!(n, 2 * sizes, "{imp} {test}: {n} records\n{se}");
        }
    }
    let md = std::fs::read_to_string(&rep).unwrap();
    for want in [
        "## Machine",
        "## Versions",
        "## Method",
        "## Targets",
        "## Where zerorank is behind",
    ] {
        assert!(md.contains(want), "report lacks {want}:\n{md}");
    }
    for test in ["latency", "bw", "bcast", "allreduce"] {
        assert!(md.contains(&format!("## {test} at 2 ranks")), "{md}");
        let svg = tmp.path().join(format!("results/{test}-np2.svg"));
        let text =
            std::fs::read_to_string(&svg).unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
        assert!(
            text.starts_with("<svg") && text.contains("zerorank"),
            "{}",
            svg.display()
        );
    }
    for imp in &impls {
        assert!(
            md.contains(&format!("| {imp} |")) || md.contains(&format!(" {imp} |")),
            "{imp} missing:\n{md}"
        );
    }
}
