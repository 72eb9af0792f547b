//! A ring-broadcast group stays whole while its ranks are busy elsewhere for 3 s, three
//! times the group's default failure detector (1 s), run under `zrun -n N` (N >= 2).
//! The first argument says how:
//! - `barrier` (the default): rank 0 keeps to group calls while the others wait for it
//!   in `MPI_Barrier`;
//! - `progress`: rank 0 computes, calling `RingGroup::progress` every 200 ms, while
//!   the others keep to group calls;
//! - `compute`: rank 0 computes with no call at all (for `ZR_RING_SUSPECT_MS` above
//!   3000).
//!
//! A rank whose member fell silent meanwhile would be left out, and the view would
//! change. Afterwards no rank may have seen a view change, and every rank's broadcast
//! must reach every rank. Prints `ring_group_barrier ok` on every rank, or fails with
//! the reason. Every wait is bounded.

use std::time::{Duration, Instant};

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
    match (mode.as_str(), me) {
        // Rank 0 in group calls; the others go on to the barrier and wait there.
        ("barrier", 0) | ("progress" | "compute", 1..) => {
            while three_s() {
                if let Some(d) = group
                    .next_delivery(Duration::from_millis(50))
                    .unwrap_or_else(|e| fail(e.to_string()))
                {
                    fail(format!("a delivery nobody sent: {d:?}"));
                }
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
            "unknown mode {mode:?} (barrier, progress or compute)"
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
    for _ in 0..n {
        let d = group
            .next_delivery(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|e| fail(e.to_string()))
            .unwrap_or_else(|| fail(format!("only {seen:?} delivered in 20 s")));
        if d.payload != format!("{}", d.origin).into_bytes() || seen[d.origin as usize] {
            fail(format!("unexpected delivery {d:?}"));
        }
        seen[d.origin as usize] = true;
    }
    // Everyone delivered everything before anyone leaves.
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    println!("ring_group_barrier ok: rank {me} of {n}");
}
