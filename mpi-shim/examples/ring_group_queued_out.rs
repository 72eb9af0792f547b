//! Checks that broadcasts a rank queued before it computed too long are not lost, run
//! under `zrun -n 3`: rank 2 queues broadcasts (`RingGroup::broadcast` returned for each)
//! and then computes for 3 s with no group call, three times the failure detector's
//! bound, so ranks 0 and 1 leave it out. Its next call must find that out before it
//! hands the queue to its member (a member that has stopped keeps the queue, and
//! `RingGroup::rejoin` sends it as the new member's first broadcasts); handed to the
//! stopped member, the queue was lost. After the rejoin every rank must deliver each
//! queued broadcast exactly once. (A try at queueing that had one handed over, the rank
//! descheduled for 10 ms between its calls, is delivered and tried again.) Prints `ring_group_queued_out ok` on every rank, or
//! fails with the reason. Every wait is bounded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use zerorank::RingGroup;

#[path = "support/ring_view.rs"]
mod ring_view;
#[path = "support/three_ranks.rs"]
mod three_ranks;

/// Broadcasts rank 2 queues before it computes.
const QUEUED: usize = 3;
/// Tries at queueing them with none handed over (see `queue_without_hand_over`).
const TRIES: u32 = 5;

fn fail(what: String) -> ! {
    eprintln!("ring_group_queued_out: {what}");
    std::process::exit(1);
}

/// Wait up to 30 s for a view whose members, as ranks, `pred` accepts.
fn await_view(group: &RingGroup, what: &str, pred: impl Fn(&[i32]) -> bool) {
    ring_view::await_view(group, what, pred).unwrap_or_else(|e| fail(e));
}

/// The `k`-th broadcast of rank 2's `attempt`-th try at queueing.
fn kept(attempt: u32, k: usize) -> Vec<u8> {
    format!("kept:{attempt}:{k}").into_bytes()
}

/// Take deliveries for up to 30 s until every broadcast of rank 2's tries `0..=last`
/// came; each must come once.
fn await_queued(group: &RingGroup, last: u32, got: &mut BTreeMap<Vec<u8>, u32>) {
    let want = QUEUED * (last as usize + 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            fail(format!(
                "{} of rank 2's {want} broadcasts delivered in 30 s: {got:?}",
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
    for a in 0..=last {
        for k in 0..QUEUED {
            if !got.contains_key(&kept(a, k)) {
                fail(format!(
                    "{:?} never delivered: {got:?}",
                    String::from_utf8_lossy(&kept(a, k))
                ));
            }
        }
    }
}

/// Rank 2 queues [`QUEUED`] broadcasts with no hand-over between (none, if the member
/// ran within the last 10 ms); if it was descheduled long enough for one to go, it lets
/// that try's broadcasts be delivered (into `got`) and tries again. The number of the
/// last try.
fn queue_without_hand_over(group: &RingGroup, got: &mut BTreeMap<Vec<u8>, u32>) -> u32 {
    for attempt in 0..TRIES {
        group.running().unwrap_or_else(|e| fail(e.to_string()));
        for k in 0..QUEUED {
            group
                .broadcast(&kept(attempt, k))
                .unwrap_or_else(|e| fail(e.to_string()));
        }
        if group.queued() == QUEUED {
            return attempt;
        }
        group.flush().unwrap_or_else(|e| fail(e.to_string()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while group.undelivered() > 0 {
            if Instant::now() > deadline {
                fail("a try's broadcasts not delivered here in 30 s".into());
            }
            if let Some(d) = group
                .next_delivery(Duration::from_millis(20))
                .unwrap_or_else(|e| fail(e.to_string()))
            {
                *got.entry(d.payload.to_vec()).or_default() += 1;
            }
        }
    }
    fail(format!(
        "{TRIES} tries at queueing {QUEUED} broadcasts each handed one over (descheduled 10 ms each time?)"
    ));
}

fn main() {
    let universe = three_ranks::initialize().unwrap_or_else(|e| fail(e));
    let world = universe.world();
    let (me, n) = (world.rank(), world.size());
    let group = world.ring_group().unwrap_or_else(|e| fail(e.to_string()));
    await_view(&group, "of all three", |r| r.len() == 3);
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    let mut got = BTreeMap::new();
    // Rank 2's tries, numbered from 0: the last is the one whose queue must survive.
    let mut last = [0u32];
    if me == 2 {
        last[0] = queue_without_hand_over(&group, &mut got);
    }
    // (An MPI wait: it runs the members, but hands no group's queue over.)
    world
        .process_at_rank(2)
        .broadcast_into(&mut last[..])
        .unwrap_or_else(|e| fail(e.to_string()));
    let last = last[0];
    if me == 2 {
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
        if (0..QUEUED).any(|k| got.contains_key(&kept(last, k))) || group.queued() != QUEUED {
            fail(format!(
                "after {why:?}: {} of the {QUEUED} queued broadcasts still queued: handed to a member already left out, they are lost",
                group.queued()
            ));
        }
        group
            .rejoin(Duration::from_secs(20))
            .unwrap_or_else(|e| fail(format!("rejoin after {why:?}: {e}")));
        await_queued(&group, last, &mut got);
    } else {
        await_view(&group, "without rank 2", |r| !r.contains(&2));
        await_view(&group, "with rank 2 back", |r| r.contains(&2));
        await_queued(&group, last, &mut got);
    }
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    println!("ring_group_queued_out ok: rank {me} of {n}");
}
