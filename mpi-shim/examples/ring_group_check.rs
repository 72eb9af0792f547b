//! Checks a ring-broadcast group on `MPI_COMM_WORLD` (`Communicator::ring_group`), run
//! under `zrun -n N`: every rank broadcasts, every rank must deliver every broadcast in
//! the same order (compared through an allgather of a digest of the order), agree on the
//! same value, and apply the same linear history of transactions; every rank must
//! broadcast two of 16 MiB, take everyone's and then leave, all at once, without error; then broadcasts that
//! rank 0 queued on a second group just before dropping it must reach everyone. Prints
//! `ring_group_check ok` on every rank, or fails with the reason. Every wait is bounded.
//!
//! The first argument (ms, default 0) delays the last rank's `ring_group` call: the
//! others wait for it in the call, their members already running.

use std::time::{Duration, Instant};

/// More than the member's window (256): queueing them must wait out back-pressure.
const PER_RANK: u64 = 600;
const CHANGES_PER_RANK: u64 = 3;
/// Broadcasts rank 0 queues on a second group just before dropping it.
const DROPPED: u64 = 5;
/// A broadcast large enough to keep the links busy while every rank leaves.
const LARGE: usize = 16 << 20;
const LARGE_PER_RANK: i32 = 2;

fn fail(what: String) -> ! {
    eprintln!("ring_group_check: {what}");
    std::process::exit(1);
}

fn main() {
    let universe = zerorank::initialize().unwrap_or_else(|e| fail(e.to_string()));
    let world = universe.world();
    let (me, n) = (world.rank(), world.size());
    let late = std::env::args().nth(1).map_or(0, |a| {
        a.parse()
            .unwrap_or_else(|_| fail(format!("bad delay {a:?}")))
    });
    if me == n - 1 {
        std::thread::sleep(Duration::from_millis(late));
    }
    let group = world.ring_group().unwrap_or_else(|e| fail(e.to_string()));
    let view = group
        .next_view(Duration::from_secs(10))
        .unwrap_or_else(|e| fail(e.to_string()))
        .unwrap_or_else(|| fail("no initial view".into()));
    if view.members.len() != n as usize {
        fail(format!("initial view {view:?} is not the {n} ranks"));
    }
    for k in 0..PER_RANK {
        let seq = group
            .broadcast(format!("{me}:{k}").as_bytes())
            .unwrap_or_else(|e| fail(e.to_string()));
        if seq != k + 1 {
            fail(format!("broadcast {k} got sequence {seq}"));
        }
    }
    // Deliver everything; fold the order into a digest.
    let want = PER_RANK * n as u64;
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let mut next_seq = vec![1u64; n as usize];
    let deadline = Instant::now() + Duration::from_secs(30);
    for got in 0..want {
        let d = group
            .next_delivery(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|e| fail(e.to_string()))
            .unwrap_or_else(|| fail(format!("only {got} of {want} deliveries in 30 s")));
        let o = d.origin as usize;
        if d.seq != next_seq[o] {
            fail(format!(
                "from rank {o}: sequence {} after {}",
                d.seq,
                next_seq[o] - 1
            ));
        }
        next_seq[o] += 1;
        if d.payload != format!("{o}:{}", d.seq - 1).into_bytes() {
            fail(format!("from rank {o}: payload {:?}", d.payload));
        }
        for b in d.origin.to_le_bytes().iter().chain(&d.seq.to_le_bytes()) {
            digest = (digest ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let mut digests = vec![0u64; n as usize];
    world
        .all_gather_into(&digest, &mut digests[..])
        .unwrap_or_else(|e| fail(e.to_string()));
    if digests.iter().any(|&d| d != digest) {
        fail(format!(
            "the delivery orders differ between ranks: {digests:x?}"
        ));
    }
    // Agreement: everyone proposes its own rank; all must decide the same.
    let (winner, value) = group
        .agree(1, &me.to_le_bytes(), Duration::from_secs(20))
        .unwrap_or_else(|e| fail(e.to_string()));
    if value != winner.to_le_bytes() {
        fail(format!(
            "decision {value:?} is not proposer {winner}'s value"
        ));
    }
    let mut winners = vec![0i32; n as usize];
    world
        .all_gather_into(&winner, &mut winners[..])
        .unwrap_or_else(|e| fail(e.to_string()));
    if winners.iter().any(|&w| w != winner) {
        fail(format!("ranks decided differently: {winners:?}"));
    }
    // Transactions: each rank applies CHANGES_PER_RANK changes, retrying aborted ones.
    let mut applied = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while applied < CHANGES_PER_RANK {
        if Instant::now() > deadline {
            fail(format!(
                "only {applied} of {CHANGES_PER_RANK} transactions applied in 30 s"
            ));
        }
        let change = format!("{me}:{applied}");
        if group
            .transact(change.as_bytes(), Duration::from_secs(20))
            .unwrap_or_else(|e| fail(e.to_string()))
            .is_some()
        {
            applied += 1;
        }
    }
    // Every rank ends at the same version, the total of all applied changes.
    let total = CHANGES_PER_RANK * n as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while group.version() < total {
        if Instant::now() > deadline {
            fail(format!("version {} of {total} after 30 s", group.version()));
        }
        let _ = group.next_delivery(Duration::from_millis(20));
    }
    if group.version() != total {
        fail(format!(
            "version {} beyond the {total} changes made",
            group.version()
        ));
    }
    // Every rank broadcasts large ones, takes everyone's and then leaves, all at once:
    // the leaders of the last view changes leave too, and must get the new view out to
    // the others before they go (with 16 MiB just sent, the last rank used to wait 10 s
    // in vain). A broadcast past the queue's bytes goes to the member at once.
    for _ in 0..LARGE_PER_RANK {
        group
            .broadcast(&vec![7u8; LARGE])
            .unwrap_or_else(|e| fail(e.to_string()));
        if group.queued() != 0 {
            fail(format!("a {LARGE}-byte broadcast left queued"));
        }
    }
    let want = LARGE_PER_RANK * n;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = 0;
    while got < want {
        let d = group
            .next_delivery(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|e| fail(format!("waiting for the large broadcast: {e}")))
            .unwrap_or_else(|| {
                fail(format!(
                    "{got} of {want} large broadcasts in 30 s ({} of this rank's undelivered)",
                    group.undelivered()
                ))
            });
        if d.payload.len() == LARGE {
            got += 1;
        }
    }
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    group
        .leave(Duration::from_secs(10))
        .unwrap_or_else(|e| fail(format!("leaving after the large broadcast: {e}")));
    drop(group);
    // A group dropped right after broadcasting: its queued broadcasts still reach
    // everyone (the drop leaves the group, sending them first).
    let comm = world.dup().unwrap_or_else(|e| fail(e.to_string()));
    let second = comm.ring_group().unwrap_or_else(|e| fail(e.to_string()));
    if me == 0 {
        for k in 0..DROPPED {
            second
                .broadcast(format!("last:{k}").as_bytes())
                .unwrap_or_else(|e| fail(e.to_string()));
        }
        if second.queued() != DROPPED as usize {
            fail(format!("{} queued, not {DROPPED}", second.queued()));
        }
        drop(second);
    } else {
        let deadline = Instant::now() + Duration::from_secs(20);
        for k in 0..DROPPED {
            let d = second
                .next_delivery(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|e| fail(format!("waiting for the dropped group's {k}: {e}")))
                .unwrap_or_else(|| {
                    fail(format!(
                        "only {k} of the {DROPPED} broadcasts of a dropped group in 20 s"
                    ))
                });
            if d.origin != 0 || d.payload != format!("last:{k}").into_bytes() {
                fail(format!("from the dropped group: {d:?}"));
            }
        }
        drop(second);
    }
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    println!("ring_group_check ok: rank {me} of {n}, decided {winner}, version {total}");
}
