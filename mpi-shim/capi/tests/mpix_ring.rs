//! zerorank's `MPIX_Ring_*` C functions (a ring atomic-broadcast group on a
//! communicator): `tests/mpix/ring.c` and `tests/mpix/ring_dup.c`, built with `zrcc`,
//! under `zrun` at 1 to 4 ranks. `ring.c` checks one total order on every rank,
//! per-sender sequence, truncation and the error codes of bad calls; `ring_dup.c` makes
//! groups on one communicator after another; `ring_finalize.c` finalizes with broadcasts
//! queued; `ring_rejoin.c` stops a rank until the others go on without it, then it
//! rejoins.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{release_dir, run_bounded, zrcc_build};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Build `tests/mpix/<name>.c` with `zrcc` and run it under `zrun` at 1 to 4 ranks; each
/// run must print `OK <name>`.
fn run_at_1_to_4_ranks(name: &str) {
    run_at(name, 1..=4);
}

/// The same at each count of `ranks`.
fn run_at(name: &str, ranks: std::ops::RangeInclusive<usize>) {
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/mpix/{name}.c"));
    zrcc_build(&src, &exe);
    for n in ranks {
        let mut cmd = Command::new(release_dir().join("zrun"));
        cmd.arg("-n").arg(n.to_string()).arg(&exe);
        // The program's RUNPATH names the release library; cargo's LD_LIBRARY_PATH
        // would load another.
        cmd.env_remove("LD_LIBRARY_PATH");
        let out = run_bounded(cmd, Duration::from_secs(120));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(&format!("OK {name}")),
            "{name}.c at {n} ranks failed ({:?})\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn mpix_ring_delivers_one_order_at_1_to_4_ranks() {
    run_at_1_to_4_ranks("ring");
}

/// `tests/mpix/ring_dup.c`: groups on one communicator after another (the world, then four
/// `MPI_Comm_dup`s, each freed before the next), each delivering a last broadcast of
/// one rank before it is freed. Against the library before 449ac25 (a freed group kept
/// its listener, connections and timer) it failed 4 runs in 4 at 2 ranks:
/// `MPIX_Ring_create` of the second or third dup failed after a handshake was reset.
/// Then a communicator freed without `MPIX_Ring_free` (its group used to live on, and
/// pass to a communicator made later under the same handle: a one-rank split saw a view
/// of three and their deliveries), and a broadcast over the largest (`MPI_ERR_COUNT`).
#[test]
fn mpix_ring_groups_on_one_communicator_after_another() {
    run_at_1_to_4_ranks("ring_dup");
}

/// `tests/mpix/ring_finalize.c`: rank 0 finalizes with broadcasts queued and nothing after
/// them that sends; the others must deliver them. Before `MPI_Finalize` sent them it only
/// warned, and the others waited 20 s for nothing.
#[test]
fn mpix_ring_broadcasts_queued_at_finalize_still_go_out() {
    run_at_1_to_4_ranks("ring_finalize");
}

/// `tests/mpix/ring_rejoin.c` at 3 ranks: a rank stopped (`SIGSTOP`) while the others
/// go on without it is told so once continued (`MPI_ERR_OTHER` from
/// `MPIX_Ring_progress`) and comes back with `MPIX_Ring_rejoin`, with the application's
/// state (`MPIX_Ring_replicate`: a digest of every delivery, the same everywhere at the
/// end; with a `restore` that does nothing it fails, "rejoined with deliveries applied:
/// 0 21").
#[test]
fn mpix_ring_a_rank_left_out_rejoins() {
    run_at("ring_rejoin", 3..=3);
}
