//! A ring-broadcast group stays whole while its ranks are busy elsewhere for 3 s, three
//! times the group's default failure detector (1 s), run under `zrun -n N` (N >= 2).
//! The first argument says how:
//! - `barrier` (the default): rank 0 keeps to group calls while the others wait for it
//!   in `MPI_Barrier`;
//! - `progress`: rank 0 computes, calling `RingGroup::progress` every 200 ms, while
//!   the others keep to group calls;
//! - `compute`: rank 0 computes with no call at all (for `ZR_RING_SUSPECT_MS` above
//!   3000);
//! - `queue`: rank 0 computes, queueing one broadcast every 120 ms (25 of them, fewer
//!   than fill the queue), while the others keep to group calls;
//! - `read`: rank 1 broadcasts 25 messages at once; rank 0 takes them in and then reads
//!   one every 120 ms, computing between its calls, while the others keep to group
//!   calls.
//!
//! In `queue` and `read` every call of rank 0's finds what it wants at once, with no
//! need to run the member; each must let it run all the same.
//!
//! A rank whose member fell silent meanwhile would be left out, and the view would
//! change. Afterwards no rank may have seen a view change, and every rank's broadcast
//! must reach every rank. Prints `ring_group_barrier ok` on every rank, or fails with
//! the reason. Every wait is bounded.

use std::time::{Duration, Instant};

/// Broadcasts of the `queue` and `read` modes.
const EXTRA: u64 = 25;

fn fail(what: String) -> ! {
    eprintln!("ring_group_barrier: {what}");
    std::process::exit(1);
}

fn main() {
    let universe = zerorank::initialize().unwrap_or_else(|e| fail(e.to_string()));
    let world = universe.world();
    let (me, n) = (world.rank(), world.size());
    let group = world.ring_group().unwrap_or_else(|e| fail(e.to_string()));
    let first = group
        .next_view(Duration::from_secs(10))
        .unwrap_or_else(|e| fail(e.to_string()))
        .unwrap_or_else(|| fail("no initial view".into()));
    let mode = std::env::args().nth(1).unwrap_or_else(|| "barrier".into());
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    let start = Instant::now();
    let three_s = || start.elapsed() < Duration::from_secs(3);
    // The broadcasts of `queue` and `read` (origin, payload), and how many came in.
    let extra = match mode.as_str() {
        "queue" => Some((0, &b"q"[..])),
        "read" => Some((1, &b"r"[..])),
        _ => None,
    };
    let extras = std::cell::Cell::new(0);
    let is_extra = |d: &zerorank::Delivery| {
        let yes = extra.is_some_and(|(o, p)| d.origin == o && d.payload == p);
        extras.set(extras.get() + u64::from(yes));
        yes
    };
    // Keep to group calls for the 3 s, taking only the deliveries expected.
    let in_group_calls = || {
        while three_s() {
            if let Some(d) = group
                .next_delivery(Duration::from_millis(50))
                .unwrap_or_else(|e| fail(e.to_string()))
            {
                if !is_extra(&d) {
                    fail(format!("a delivery nobody sent: {d:?}"));
                }
            }
        }
    };
    match (mode.as_str(), me) {
        // Rank 0 in group calls; the others go on to the barrier and wait there.
        ("barrier", 0) | ("progress" | "compute" | "queue", 1..) | ("read", 2..) => {
            in_group_calls()
        }
        ("queue", 0) => {
            for _ in 0..EXTRA {
                std::thread::sleep(Duration::from_millis(120));
                group
                    .broadcast(b"q")
                    .unwrap_or_else(|e| fail(e.to_string()));
            }
            if group.queued() == EXTRA as usize {
                fail(format!("all {EXTRA} broadcasts still queued"));
            }
        }
        ("read", 1) => {
            for _ in 0..EXTRA {
                group
                    .broadcast(b"r")
                    .unwrap_or_else(|e| fail(e.to_string()));
            }
            group.flush().unwrap_or_else(|e| fail(e.to_string()));
            in_group_calls();
        }
        ("read", 0) => {
            // Take them all in (waiting in a group call), then read them slowly.
            if let Some(v) = group
                .next_view(Duration::from_millis(500))
                .unwrap_or_else(|e| fail(e.to_string()))
            {
                fail(format!("the view changed from {first:?} to {v:?} ({mode})"));
            }
            while extras.get() < EXTRA {
                let d = group
                    .next_delivery(Duration::from_secs(5))
                    .unwrap_or_else(|e| fail(e.to_string()))
                    .unwrap_or_else(|| {
                        fail(format!("{} of rank 1's {EXTRA} in 5 s", extras.get()))
                    });
                if !is_extra(&d) {
                    fail(format!("a delivery nobody sent: {d:?}"));
                }
                std::thread::sleep(Duration::from_millis(120));
            }
        }
        ("barrier", _) => {}
        ("progress", 0) => {
            while three_s() {
                std::thread::sleep(Duration::from_millis(200));
                group.progress().unwrap_or_else(|e| fail(e.to_string()));
            }
        }
        ("compute", 0) => std::thread::sleep(Duration::from_secs(3)),
        _ => fail(format!(
            "unknown mode {mode:?} (barrier, progress, compute, queue or read)"
        )),
    }
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    if let Some(v) = group
        .next_view(Duration::ZERO)
        .unwrap_or_else(|e| fail(format!("after the barrier: {e}")))
    {
        fail(format!("the view changed from {first:?} to {v:?} ({mode})"));
    }
    group
        .broadcast(format!("{me}").as_bytes())
        .unwrap_or_else(|e| fail(e.to_string()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = vec![false; n as usize];
    let want_extras = if extra.is_some() { EXTRA } else { 0 };
    while seen.contains(&false) || extras.get() < want_extras {
        let d = group
            .next_delivery(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|e| fail(e.to_string()))
            .unwrap_or_else(|| {
                fail(format!(
                    "only {seen:?} and {} of {want_extras} others delivered in 20 s",
                    extras.get()
                ))
            });
        if is_extra(&d) {
            continue;
        }
        if d.payload != format!("{}", d.origin).into_bytes() || seen[d.origin as usize] {
            fail(format!("unexpected delivery {d:?}"));
        }
        seen[d.origin as usize] = true;
    }
    if extras.get() != want_extras {
        fail(format!(
            "{} of {want_extras} {mode} broadcasts delivered",
            extras.get()
        ));
    }
    // Everyone delivered everything before anyone leaves.
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    println!("ring_group_barrier ok: rank {me} of {n}");
}
