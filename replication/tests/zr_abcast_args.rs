//! `zr-abcast` refuses arguments that cannot make a working member, before it listens or
//! connects, naming the argument and why: each case must exit with an error whose
//! message holds the given words. A well-formed command gets past the checks (it runs
//! until its `--until`, 3 s away).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest a refused command may take before the test calls it hung.
const LIMIT: Duration = Duration::from_secs(20);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// Run zr-abcast with `args` (and a valid secret), bounded by [`LIMIT`].
fn run(args: &[String]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zr-abcast"))
        .args(args)
        .env("ZR_GROUP_SECRET", "ab".repeat(32))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zr-abcast");
    let deadline = Instant::now() + LIMIT;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "zr-abcast {args:?} still running after {LIMIT:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A member 1 of a group of 1 and 2 on loopback, with `extra` appended (later flags of a
/// single-valued kind are not allowed twice, so the base leaves out what cases change).
fn base(extra: &[&str]) -> Vec<String> {
    // (Far off: refused before it matters, and a slow start must not make it the past.)
    let until = (unix_ms() + 60_000).to_string();
    let mut v: Vec<String> = [
        "--id",
        "1",
        "--listen",
        "127.0.0.1:7301",
        "--until",
        &until,
        "--peer",
        "1=127.0.0.1:7301",
        "--peer",
        "2=127.0.0.1:7302",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[test]
fn bad_arguments_are_refused_by_name() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--found", "2"],
            &["--found 2", "a founder is one of the members"],
        ),
        (&["--found", "1,3"], &["no --peer address for member 3"]),
        (&["--join", "1"], &["--join 1", "member 1 is this process"]),
        (&["--found", "1,1"], &["--found: member 1 given twice"]),
        (
            &["--found", "1,2", "--peer", "2=127.0.0.1:7309"],
            &["member 2 given twice"],
        ),
        (
            &["--found", "1,2", "--size", "8"],
            &["--size 8", "at least 16"],
        ),
        (
            &["--found", "1,2", "--size", "16777217"],
            &["--size 16777217", "at most 16777216"],
        ),
        (&["--found", "1,2", "--window", "0"], &["at least 1"]),
        // Under another id after a rejoin, the others must find it too.
        (
            &["--found", "1,2", "--rejoin-as", "7"],
            &["--rejoin-as 7", "no --peer address for member 7"],
        ),
        (
            &[
                "--found",
                "1,2",
                "--rejoin-as",
                "7",
                "--peer",
                "7=127.0.0.1:7399",
            ],
            &["--peer 7=127.0.0.1:7399", "member 7 is this process"],
        ),
    ];
    for (extra, words) in cases {
        let args = base(extra);
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} was accepted:\n{err}");
        for w in *words {
            assert!(
                err.contains(w),
                "{extra:?}: the error must say {w:?}:\n{err}"
            );
        }
    }
}

/// `--peer` naming this member at another port than `--listen`: the others would dial
/// the wrong place and the member would be left out, so it is refused.
#[test]
fn its_own_address_must_be_where_it_listens() {
    let until = (unix_ms() + 60_000).to_string();
    let args: Vec<String> = [
        "--id",
        "1",
        "--listen",
        "127.0.0.1:7311",
        "--until",
        &until,
        "--peer",
        "1=127.0.0.1:7312",
        "--peer",
        "2=127.0.0.1:7313",
        "--found",
        "1,2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted:\n{err}");
    assert!(
        err.contains("--peer 1=127.0.0.1:7312") && err.contains("listens on 127.0.0.1:7311"),
        "{err}"
    );
}

/// A well-formed lone founder gets past every check and runs until `--until`.
#[test]
fn a_well_formed_member_is_not_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // (Time to start on a loaded machine: a --until already past is refused.)
    let until = (unix_ms() + 3_000).to_string();
    let me = format!("127.0.0.1:{port}");
    let peer = format!("1={me}");
    let args: Vec<String> = [
        "--id", "1", "--listen", &me, "--until", &until, "--peer", &peer, "--found", "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run(&args);
    assert!(
        out.status.success(),
        "{args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
