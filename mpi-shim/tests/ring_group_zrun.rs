//! A ring-broadcast group on a communicator (`Communicator::ring_group`) under `zrun`: at
//! 1 to 4 ranks, every rank delivers every broadcast in one order, decides the same value
//! and applies the same history (`examples/ring_group_check.rs` checks and says ok).

mod common;

use common::{assert_ok, zrun_example};
use std::time::Duration;

#[test]
fn ring_group_delivers_agrees_and_transacts_alike_at_1_to_4_ranks() {
    for n in 1..=4 {
        let out = zrun_example(n, "ring_group_check", &[], Duration::from_secs(120));
        assert_ok(&out, &format!("ring_group_check at {n} ranks"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let oks = stdout.matches("ring_group_check ok").count();
        assert_eq!(oks, n, "every rank says ok at {n} ranks:\n{stdout}");
    }
}

/// `RingGroup::rejoin`: a rank stopped (`SIGSTOP`) longer than the failure detector
/// waits is left out, learns so once continued, and rejoins with the group's state
/// (`examples/ring_group_rejoin.rs` checks and says ok). Run twice: with rank 2 stopped
/// about 1 s, and about 4 s.
#[test]
fn a_rank_left_out_while_stopped_rejoins_with_the_groups_state() {
    for wait_ms in ["20", "3000"] {
        let out = zrun_example(3, "ring_group_rejoin", &[wait_ms], Duration::from_secs(120));
        let what = format!("ring_group_rejoin {wait_ms} at 3 ranks");
        assert_ok(&out, &what);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let oks = stdout.matches("ring_group_rejoin ok").count();
        assert_eq!(oks, 3, "{what}: every rank says ok:\n{stdout}");
    }
}
