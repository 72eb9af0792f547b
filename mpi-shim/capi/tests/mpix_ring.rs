//! zerorank's `MPIX_Ring_*` C functions (a ring atomic-broadcast group on a
//! communicator): `tests/mpix/ring.c`, built with `zrcc`, under `zrun` at 1 to 4 ranks.
//! It checks one total order on every rank, per-sender sequence, truncation and the
//! error codes of bad calls, and prints `OK ring`.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{release_dir, run_bounded};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn mpix_ring_delivers_one_order_at_1_to_4_ranks() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("ring");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mpix/ring.c");
    let mut cc = Command::new(release_dir().join("zrcc"));
    cc.args(["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(&src);
    let out = run_bounded(cc, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "zrcc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in 1..=4 {
        let mut cmd = Command::new(release_dir().join("zrun"));
        cmd.arg("-n").arg(n.to_string()).arg(&exe);
        // The program's RUNPATH names the release library; cargo's LD_LIBRARY_PATH
        // would load another.
        cmd.env_remove("LD_LIBRARY_PATH");
        let out = run_bounded(cmd, Duration::from_secs(120));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("OK ring"),
            "ring.c at {n} ranks failed ({:?})\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
