//! `zr-bench` under `zrun`: every benchmark reports every size it was asked for, in each
//! output format, with validated data; bad usage fails with a clear message. Small runs:
//! the timings are read back, never judged.

#[path = "../../mpi-shim/tests/common/mod.rs"]
mod common;
use common::*;
use std::process::{Command, Output};
use std::time::Duration;
use zerorank_benches::report::{self, Record};
use zerorank_benches::size;

const LIMIT: Duration = Duration::from_secs(120);

fn zr_bench(ranks: usize, args: &[&str]) -> Output {
    let mut cmd = Command::new(zrun());
    cmd.arg("-n")
        .arg(ranks.to_string())
        .arg(env!("CARGO_BIN_EXE_zr-bench"))
        .args(args);
    run_bounded(cmd, LIMIT)
}

fn ok_stdout(out: &Output, what: &str) -> String {
    assert_ok(out, what);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The records are one per size in `sizes`, of `test` at `ranks`, with sane percentiles.
fn check_records(rs: &[Record], test: &str, ranks: usize, sizes: &[usize], iters: u64) {
    let got: Vec<usize> = rs.iter().map(|r| r.size).collect();
    assert_eq!(got, sizes, "{test}: sizes");
    for r in rs {
        assert_eq!((r.test.as_str(), r.ranks), (test, ranks), "{r:?}");
        assert_eq!(r.implementation, "zerorank");
        assert_eq!(r.iterations, iters, "{r:?}");
        assert!(r.p50_us > 0.0, "{r:?}");
        assert!(
            r.p50_us <= r.p90_us && r.p90_us <= r.p99_us && r.p99_us <= r.p999_us,
            "{r:?}"
        );
        assert!(r.p999_us <= r.max_us * 1.001, "{r:?}");
        assert_eq!(report::is_bandwidth(test), r.mb_per_s.is_some(), "{r:?}");
        if let Some(bw) = r.mb_per_s {
            assert!(bw > 0.0 || r.size == 0, "{r:?}");
        }
    }
}

#[test]
fn zr_bench_point_to_point_reports_every_size_in_json_csv_and_table() {
    let out = zr_bench(
        2,
        &[
            "latency",
            "-M",
            "1K",
            "-i",
            "50",
            "-x",
            "5",
            "--validate",
            "--json",
        ],
    );
    let rs = report::from_json(&ok_stdout(&out, "latency --json")).expect("JSON");
    check_records(&rs, "latency", 2, &size::list(0, 1024), 50);

    let out = zr_bench(
        2,
        &[
            "bw",
            "-m",
            "1K",
            "-M",
            "256K",
            "-i",
            "4",
            "-W",
            "8",
            "--validate",
            "--csv",
        ],
    );
    let rs = report::from_csv(&ok_stdout(&out, "bw --csv")).expect("CSV");
    check_records(&rs, "bw", 2, &size::list(1024, 256 << 10), 4);

    let out = zr_bench(2, &["bibw", "-M", "64", "-i", "3", "-W", "4", "--validate"]);
    let text = ok_stdout(&out, "bibw");
    assert!(text.contains("Bandwidth(MB/s)"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let sizes: Vec<usize> = rows
        .iter()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(sizes, size::list(0, 64), "{text}");
}

#[test]
fn zr_bench_collectives_validate_their_results_at_3_ranks() {
    for test in [
        "bcast",
        "allreduce",
        "reduce",
        "allgather",
        "alltoall",
        "barrier",
    ] {
        let out = zr_bench(
            3,
            &[
                test,
                "-M",
                "8K",
                "-i",
                "20",
                "-x",
                "2",
                "--validate",
                "--json",
            ],
        );
        let rs = report::from_json(&ok_stdout(&out, test)).expect("JSON");
        let sizes = match test {
            "barrier" => vec![0],
            "allreduce" | "reduce" => size::list(4, 8 << 10),
            _ => size::list(0, 8 << 10),
        };
        check_records(&rs, test, 3, &sizes, 20);
    }
}

/// Hundreds of streamed collectives in a row, as a benchmark runs them: a correct
/// program never fails. (A publisher that looked at its readers' call words while they
/// released and finished took the area back as unread and failed the call with
/// MPI_ERR_TRUNCATE: `Node::reclaim` now checks the release again.)
#[test]
fn zr_bench_long_runs_of_streamed_collectives_never_fail() {
    for test in ["bcast", "reduce", "allgather"] {
        let out = zr_bench(
            2,
            &[
                test,
                "-m",
                "8K",
                "-M",
                "256K",
                "-i",
                "500",
                "-x",
                "10",
                "--validate",
                "--json",
            ],
        );
        let rs = report::from_json(&ok_stdout(&out, test)).expect("JSON");
        check_records(&rs, test, 2, &size::list(8 << 10, 256 << 10), 500);
    }
}

#[test]
fn zr_bench_bad_usage_fails_with_a_clear_message() {
    let out = zr_bench(3, &["latency", "-M", "8"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("zrun -n 2"), "{err}");
    let out = zr_bench(2, &["bw", "--window", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--window"), "{err}");
    // Argument errors come from every rank before any message moves.
    for args in [&["latency", "-M", "lots"][..], &["frobnicate"][..]] {
        let out = zr_bench(2, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("error:"),
            "{args:?}: {err}"
        );
    }
    let out = zr_bench(2, &["allreduce", "-m", "1", "-M", "3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("4-byte"), "{err}");
}

#[test]
fn zr_bench_help_names_every_benchmark() {
    let out = run_bounded(
        {
            let mut c = Command::new(env!("CARGO_BIN_EXE_zr-bench"));
            c.arg("--help");
            c
        },
        Duration::from_secs(30),
    );
    let text = ok_stdout(&out, "zr-bench --help");
    for t in [
        "latency",
        "bw",
        "bibw",
        "bcast",
        "allreduce",
        "reduce",
        "allgather",
        "alltoall",
        "barrier",
        "--json",
        "--csv",
        "--validate",
        "--window",
    ] {
        assert!(text.contains(t), "--help lacks {t}:\n{text}");
    }
}
