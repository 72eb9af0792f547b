//! Checks that broadcasts a rank queued before it computed too long are not lost, run
//! under `zrun -n 3`: rank 2 queues broadcasts (`RingGroup::broadcast` returned for each)
//! and then computes for 3 s with no group call, three times the failure detector's
//! bound, so ranks 0 and 1 leave it out. Its next call must find that out before it
//! hands the queue to its member (a member that has stopped keeps the queue, and
//! `RingGroup::rejoin` sends it as the new member's first broadcasts); handed to the
//! stopped member, the queue was lost. After the rejoin every rank must deliver each
//! queued broadcast exactly once. Prints `ring_group_queued_out ok` on every rank, or
//! fails with the reason. Every wait is bounded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use zerorank::RingGroup;

#[path = "support/ring_view.rs"]
mod ring_view;

/// Broadcasts rank 2 queues before it computes.
const QUEUED: usize = 3;

fn fail(what: String) -> ! {
    eprintln!("ring_group_queued_out: {what}");
    std::process::exit(1);
}

/// Wait up to 30 s for a view whose members, as ranks, `pred` accepts.
fn await_view(group: &RingGroup, what: &str, pred: impl Fn(&[i32]) -> bool) {
    ring_view::await_view(group, what, pred).unwrap_or_else(|e| fail(e));
}

/// Take deliveries for up to 30 s until every queued broadcast came; each must come
/// once.
fn await_queued(group: &RingGroup, got: &mut BTreeMap<Vec<u8>, u32>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < QUEUED {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            fail(format!(
                "{} of rank 2's {QUEUED} queued broadcasts delivered in 30 s: {got:?}",
                got.len()
            ));
        }
        if let Some(d) = group
            .next_delivery(left.min(Duration::from_millis(100)))
            .unwrap_or_else(|e| fail(format!("waiting for the queued broadcasts: {e}")))
        {
            if d.origin == 2 && d.payload.starts_with(b"kept:") {
                *got.entry(d.payload.to_vec()).or_default() += 1;
            }
        }
    }
    if let Some((p, n)) = got.iter().find(|(_, &n)| n != 1) {
        fail(format!(
            "{:?} delivered {n} times",
            String::from_utf8_lossy(p)
        ));
    }
}

fn main() {
    let universe = zerorank::initialize().unwrap_or_else(|e| fail(e.to_string()));
    let world = universe.world();
    let (me, n) = (world.rank(), world.size());
    if n != 3 {
        fail(format!("run it at 3 ranks, not {n}"));
    }
    let group = world.ring_group().unwrap_or_else(|e| fail(e.to_string()));
    await_view(&group, "of all three", |r| r.len() == 3);
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    let mut got = BTreeMap::new();
    if me == 2 {
        // The member has just run, so these stay queued (a call hands the queue over
        // only after 10 ms without it running).
        group.running().unwrap_or_else(|e| fail(e.to_string()));
        for k in 0..QUEUED {
            group
                .broadcast(format!("kept:{k}").as_bytes())
                .unwrap_or_else(|e| fail(e.to_string()));
        }
        if group.queued() != QUEUED {
            fail(format!(
                "{} of {QUEUED} queued: this rank went 10 ms between two calls (descheduled?), so the test checks nothing",
                group.queued()
            ));
        }
        // Computing, with no group call: the others leave this rank out.
        std::thread::sleep(Duration::from_secs(3));
        // Its next call says it stopped.
        let deadline = Instant::now() + Duration::from_secs(30);
        let why = loop {
            if Instant::now() > deadline {
                fail("still a member 30 s after computing 3 s".into());
            }
            match group.next_delivery(Duration::from_millis(100)) {
                Ok(Some(d)) if d.origin == 2 && d.payload.starts_with(b"kept:") => {
                    *got.entry(d.payload.to_vec()).or_default() += 1;
                }
                Ok(_) => {}
                Err(e) => break e.to_string(),
            }
        };
        if !got.is_empty() || group.queued() != QUEUED {
            fail(format!(
                "after {why:?}: {} of the {QUEUED} queued broadcasts still queued ({} delivered): handed to a member already left out, they are lost",
                group.queued(),
                got.len()
            ));
        }
        group
            .rejoin(Duration::from_secs(20))
            .unwrap_or_else(|e| fail(format!("rejoin after {why:?}: {e}")));
        await_queued(&group, &mut got);
    } else {
        await_view(&group, "without rank 2", |r| !r.contains(&2));
        await_view(&group, "with rank 2 back", |r| r.contains(&2));
        await_queued(&group, &mut got);
    }
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    println!("ring_group_queued_out ok: rank {me} of {n}");
}
