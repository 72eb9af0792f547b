//! Checks [`RingGroup::rejoin`](zerorank::RingGroup::rejoin) under `zrun -n 3`: rank 0
//! stops rank 2's process (`SIGSTOP`) for longer than the failure detector waits, ranks
//! 0 and 1 install a view without it and apply transactions while it is out, then rank 0
//! continues it (`SIGCONT`). Rank 2 learns that the group went on without it (its calls
//! fail), rejoins under a new member id, and must come back with the group's state (the
//! transactions applied while it was out, and the application's replicated state, a
//! digest of every plain delivery, which covers broadcasts ranks 0 and 1 sent meanwhile);
//! its first broadcast after that reaches everyone, and all three decide the same value,
//! end at the same version and hold the same digest. Prints
//! `ring_group_rejoin ok` on every rank, or fails with the reason. Every wait is bounded.
//!
//! The first argument (ms, default 20) is how long ranks 0 and 1 wait for a delivery at
//! a time while they wait for a version: 3000 keeps rank 2 stopped about 4 s instead of
//! about 1 s.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use zerorank::{Delivery, Replicated, RingGroup};

#[path = "support/ring_view.rs"]
mod ring_view;
#[path = "support/three_ranks.rs"]
mod three_ranks;

/// The replicated state: how many plain deliveries were applied, and a digest of them in
/// order. Every rank must end with the same.
struct Digest(Rc<Cell<(u64, u64)>>);

impl Replicated for Digest {
    fn apply(&mut self, d: &Delivery) {
        let (n, mut h) = self.0.get();
        for b in d
            .origin
            .to_le_bytes()
            .iter()
            .chain(&d.seq.to_le_bytes())
            .chain(&d.payload[..])
        {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0.set((n + 1, h));
    }

    fn snapshot(&self) -> Vec<u8> {
        let (n, h) = self.0.get();
        [n.to_le_bytes(), h.to_le_bytes()].concat()
    }

    fn restore(&mut self, state: &[u8]) {
        let word = |i: usize| u64::from_le_bytes(state[i..i + 8].try_into().expect("8 bytes"));
        assert_eq!(state.len(), 16, "a Digest snapshot");
        self.0.set((word(0), word(8)));
    }
}

/// Plain broadcasts ranks 0 and 1 each send while rank 2 is out.
const WHILE_OUT: u64 = 20;

fn fail(what: String) -> ! {
    eprintln!("ring_group_rejoin: {what}");
    std::process::exit(1);
}

/// Apply one transaction of this rank, retrying while others come first.
fn transact_one(group: &RingGroup, change: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if Instant::now() > deadline {
            fail(format!("transaction {change} not applied in 30 s"));
        }
        let applied = group
            .transact(change.as_bytes(), Duration::from_secs(10))
            .unwrap_or_else(|e| fail(format!("transaction {change}: {e}")));
        if applied.is_some() {
            return;
        }
    }
}

/// Wait until the group's version is `want`, waiting up to `step` for a delivery at a
/// time (the deliveries taken go to `taken`: rank 2's broadcast after its rejoin may be
/// among them).
fn await_version(group: &RingGroup, want: u64, step: Duration, taken: &mut Vec<Delivery>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while group.version() < want {
        if Instant::now() > deadline {
            fail(format!("version {} of {want} after 30 s", group.version()));
        }
        if let Some(d) = group
            .next_delivery(step)
            .unwrap_or_else(|e| fail(format!("waiting for version {want}: {e}")))
        {
            taken.push(d);
        }
    }
}

/// Wait up to 30 s for a view whose members, as ranks, `pred` accepts.
fn await_view(group: &RingGroup, what: &str, pred: impl Fn(&[i32]) -> bool) {
    ring_view::await_view(group, what, pred).unwrap_or_else(|e| fail(e));
}

fn main() {
    let universe = three_ranks::initialize().unwrap_or_else(|e| fail(e));
    let world = universe.world();
    let me = world.rank();
    // How long ranks 0 and 1 wait for each delivery while they wait for a version (the
    // first argument, in ms; default 20): a longer wait keeps rank 2 stopped longer.
    let step = Duration::from_millis(std::env::args().nth(1).map_or(20, |a| {
        a.parse()
            .unwrap_or_else(|_| fail(format!("bad wait {a:?}")))
    }));
    let group = world.ring_group().unwrap_or_else(|e| fail(e.to_string()));
    let digest = Rc::new(Cell::new((0u64, 0xcbf2_9ce4_8422_2325u64)));
    group.replicate(Digest(digest.clone()));
    let pid = std::process::id() as i32;
    let mut pids = [0i32; 3];
    world
        .all_gather_into(&pid, &mut pids[..])
        .unwrap_or_else(|e| fail(e.to_string()));
    // Some shared history first: one transaction of every rank.
    let mut taken = Vec::new();
    transact_one(&group, &format!("{me}:0"));
    // (Not `step`: a rank that reaches the barrier below long before another leaves its
    // member undriven there, and the others leave it out.)
    await_version(&group, 3, Duration::from_millis(20), &mut taken);
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    if me == 2 {
        // Stopped and continued in here: the calls fail once this member learns that
        // the group went on without it.
        let deadline = Instant::now() + Duration::from_secs(30);
        let why = loop {
            if Instant::now() > deadline {
                fail("still a member 30 s after the barrier: never stopped or never told".into());
            }
            match group.next_delivery(Duration::from_millis(100)) {
                Ok(_) => {}
                Err(e) => break e.to_string(),
            }
        };
        if !why.contains("stopped") {
            fail(format!(
                "left out, but the error does not say it stopped: {why}"
            ));
        }
        if group.broadcast(b"while out").is_ok() {
            fail("a member that stopped took a broadcast".into());
        }
        let view = group
            .rejoin(Duration::from_secs(20))
            .unwrap_or_else(|e| fail(format!("rejoin after {why:?}: {e}")));
        let back: Vec<_> = view
            .members
            .iter()
            .filter(|&&m| group.rank_of_member(m) == 2)
            .collect();
        if back.len() != 1 || *back[0] <= 3 {
            fail(format!("rejoined into {view:?}: not once, under a new id"));
        }
        // The group's state came with it: both transactions applied while it was out,
        // and the replicated digest of the broadcasts it missed.
        let (applied, _) = digest.get();
        if applied < 2 * WHILE_OUT {
            fail(format!(
                "rejoined with {applied} deliveries applied: the application's state did not come"
            ));
        }
        if group.version() < 5 {
            fail(format!(
                "rejoined at version {}: the state did not come",
                group.version()
            ));
        }
        if group.rejoin(Duration::from_secs(1)).is_ok() {
            fail("a second rejoin of a running member succeeded".into());
        }
        let seq = group
            .broadcast(b"back")
            .unwrap_or_else(|e| fail(e.to_string()));
        if seq != 1 {
            fail(format!("first broadcast after the rejoin numbered {seq}"));
        }
    } else {
        if me == 0 {
            std::thread::sleep(Duration::from_millis(200));
            kill(Pid::from_raw(pids[2]), Signal::SIGSTOP)
                .unwrap_or_else(|e| fail(format!("SIGSTOP rank 2: {e}")));
        }
        await_view(&group, "without rank 2", |r| r == [0, 1]);
        for k in 0..WHILE_OUT {
            group
                .broadcast(format!("{me} while out {k}").as_bytes())
                .unwrap_or_else(|e| fail(e.to_string()));
        }
        transact_one(&group, &format!("{me}:1"));
        await_version(&group, 5, step, &mut taken);
        if me == 0 {
            kill(Pid::from_raw(pids[2]), Signal::SIGCONT)
                .unwrap_or_else(|e| fail(format!("SIGCONT rank 2: {e}")));
        }
        await_view(&group, "with rank 2 back", |r| {
            r.len() == 3 && r.contains(&2)
        });
    }
    // Rank 2's first broadcast as the new member reaches every rank, itself included.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut taken = taken.into_iter();
    loop {
        let d = taken.next().unwrap_or_else(|| {
            group
                .next_delivery(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|e| fail(e.to_string()))
                .unwrap_or_else(|| fail("rank 2's broadcast after its rejoin never came".into()))
        });
        if d.origin == 2 && &d.payload[..] == b"back" {
            if d.seq != 1 {
                fail(format!(
                    "rank 2's first broadcast as a new member has seq {}",
                    d.seq
                ));
            }
            break;
        }
    }
    let (winner, _) = group
        .agree(2, &me.to_le_bytes(), Duration::from_secs(20))
        .unwrap_or_else(|e| fail(e.to_string()));
    let version = group.version();
    // Every rank has taken "back", the last plain broadcast: the replicated states agree,
    // as do the decisions and the versions.
    let (applied, hash) = digest.get();
    let mine = [applied, hash, winner as u64, version];
    let mut all = [0u64; 12];
    world
        .all_gather_into(&mine[..], &mut all[..])
        .unwrap_or_else(|e| fail(e.to_string()));
    let theirs: Vec<&[u64]> = all.chunks(4).collect();
    if theirs.iter().any(|t| t[..2] != mine[..2]) {
        fail(format!(
            "replicated states differ: (applied, digest) of each rank {:x?}",
            theirs.iter().map(|t| &t[..2]).collect::<Vec<_>>()
        ));
    }
    if theirs.iter().any(|t| t[2] != mine[2] || t[3] != 5) {
        fail(format!(
            "decisions and versions (want one decision, version 5) of each rank {:?}",
            theirs.iter().map(|t| &t[2..]).collect::<Vec<_>>()
        ));
    }
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    println!("ring_group_rejoin ok: rank {me}, decided {winner}, version {version}");
}
