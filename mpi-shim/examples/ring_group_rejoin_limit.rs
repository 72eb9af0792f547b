//! Checks that a rank can [`rejoin`](zerorank::RingGroup::rejoin) a ring group again and
//! again, up to [`REJOINS_MAX`](zerorank::RingGroup::REJOINS_MAX) times, and that the
//! rejoin after that is refused with an error that says why, while the others go on.
//! Run under `zrun -n 3` with a short failure detector (`ZR_RING_SUSPECT_MS=300`, say).
//!
//! Each round, rank 0 stops rank 2's process (`SIGSTOP`) until ranks 0 and 1 install a
//! view without it, broadcasts once, and continues it (`SIGCONT`). Rank 2 learns that the
//! group went on without it and rejoins under its next member id; it must come back
//! with the broadcast it missed applied to its replicated state, and its first
//! broadcast as the new member must reach everyone. After `REJOINS_MAX` rounds the next
//! rejoin must fail, naming the limit; rank 2 tells the others so over MPI, and ranks 0
//! and 1 check that their group still delivers. Prints `ring_group_rejoin_limit ok` on
//! every rank, or fails with the reason. Every wait is bounded.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use zerorank::traits::*;
use zerorank::{Delivery, Replicated, RingGroup};

#[path = "support/ring_view.rs"]
mod ring_view;
#[path = "support/three_ranks.rs"]
mod three_ranks;

/// The replicated state: the plain deliveries applied so far.
struct Count(Rc<Cell<u64>>);

impl Replicated for Count {
    fn apply(&mut self, _: &Delivery) {
        self.0.set(self.0.get() + 1);
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.get().to_le_bytes().to_vec()
    }

    fn restore(&mut self, state: &[u8]) {
        let word: [u8; 8] = state.try_into().expect("a Count snapshot is 8 bytes");
        self.0.set(u64::from_le_bytes(word));
    }
}

fn fail(what: String) -> ! {
    eprintln!("ring_group_rejoin_limit: {what}");
    std::process::exit(1);
}

/// Wait up to 30 s for a view whose members, as ranks, `pred` accepts.
fn await_view(group: &RingGroup, what: &str, pred: impl Fn(&[i32]) -> bool) {
    ring_view::await_view(group, what, pred).unwrap_or_else(|e| fail(e));
}

/// Wait up to 30 s for the delivery of `payload`; the deliveries taken on the way are
/// dropped.
fn await_delivery(group: &RingGroup, payload: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            fail(format!(
                "{:?} not delivered in 30 s",
                String::from_utf8_lossy(payload)
            ));
        }
        let d = group
            .next_delivery(left.min(Duration::from_millis(100)))
            .unwrap_or_else(|e| {
                fail(format!(
                    "waiting for {:?}: {e}",
                    String::from_utf8_lossy(payload)
                ))
            });
        if d.is_some_and(|d| &d.payload[..] == payload) {
            return;
        }
    }
}

/// Rank 2: wait until this member learns that the group went on without it; the error.
fn await_left_out(group: &RingGroup, round: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if Instant::now() > deadline {
            fail(format!(
                "round {round}: still a member 30 s on: never stopped or never told"
            ));
        }
        if let Err(e) = group.next_delivery(Duration::from_millis(100)) {
            return e.to_string();
        }
    }
}

fn main() {
    let universe = three_ranks::initialize().unwrap_or_else(|e| fail(e));
    let world = universe.world();
    let me = world.rank();
    let group = world.ring_group().unwrap_or_else(|e| fail(e.to_string()));
    let count = Rc::new(Cell::new(0u64));
    group.replicate(Count(count.clone()));
    let pid = std::process::id() as i32;
    let mut pids = [0i32; 3];
    world
        .all_gather_into(&pid, &mut pids[..])
        .unwrap_or_else(|e| fail(e.to_string()));
    await_view(&group, "of all three", |r| r.len() == 3);
    for round in 1..=RingGroup::REJOINS_MAX + 1 {
        let missed = format!("missed {round}");
        let back = format!("back {round}");
        // Every rank has taken last round's deliveries (rank 2 its own "back", which it
        // may deliver after the others) before rank 2 is stopped again.
        world.barrier().unwrap_or_else(|e| fail(e.to_string()));
        if me == 2 {
            let why = await_left_out(&group, round);
            if !why.contains("stopped") {
                fail(format!(
                    "round {round}: left out, but the error does not say it stopped: {why}"
                ));
            }
            let rejoined = group.rejoin(Duration::from_secs(20));
            if round > RingGroup::REJOINS_MAX {
                let Err(e) = rejoined else {
                    fail(format!(
                        "rejoin number {round} succeeded (at most {} allowed)",
                        RingGroup::REJOINS_MAX
                    ));
                };
                let e = e.to_string();
                if !e.contains("rejoined 7 times already") {
                    fail(format!("rejoin past the limit failed, not saying why: {e}"));
                }
                // Still stopped, and saying so.
                if group.broadcast(b"past the limit").is_ok() {
                    fail("a member refused a rejoin took a broadcast".into());
                }
                world
                    .process_at_rank(0)
                    .send(&1i32)
                    .unwrap_or_else(|e| fail(e.to_string()));
                break;
            }
            if let Err(e) = rejoined {
                fail(format!("rejoin number {round} (after {why:?}): {e}"));
            }
            // What the group delivered while it was out came with the state: this
            // round's "missed" and the rounds before's "missed" and "back".
            let want = 2 * u64::from(round) - 1;
            if count.get() != want {
                fail(format!(
                    "rejoin number {round}: {} deliveries applied, not {want}",
                    count.get()
                ));
            }
            group
                .broadcast(back.as_bytes())
                .unwrap_or_else(|e| fail(e.to_string()));
            await_delivery(&group, back.as_bytes());
        } else {
            if me == 0 {
                kill(Pid::from_raw(pids[2]), Signal::SIGSTOP)
                    .unwrap_or_else(|e| fail(format!("round {round}: SIGSTOP rank 2: {e}")));
            }
            await_view(&group, &format!("without rank 2 ({round})"), |r| {
                r == [0, 1]
            });
            if me == 0 {
                group
                    .broadcast(missed.as_bytes())
                    .unwrap_or_else(|e| fail(e.to_string()));
            }
            await_delivery(&group, missed.as_bytes());
            if me == 0 {
                kill(Pid::from_raw(pids[2]), Signal::SIGCONT)
                    .unwrap_or_else(|e| fail(format!("round {round}: SIGCONT rank 2: {e}")));
            }
            if round > RingGroup::REJOINS_MAX {
                if me == 0 {
                    let (refused, _) = world
                        .process_at_rank(2)
                        .receive::<i32>()
                        .unwrap_or_else(|e| fail(e.to_string()));
                    if refused != 1 {
                        fail(format!("rank 2 reported {refused}"));
                    }
                }
                break;
            }
            await_view(&group, &format!("with rank 2 back ({round})"), |r| {
                r.len() == 3 && r.contains(&2)
            });
            await_delivery(&group, back.as_bytes());
        }
    }
    // Ranks 0 and 1 go on as a group of two.
    if me != 2 {
        group
            .broadcast(format!("after {me}").as_bytes())
            .unwrap_or_else(|e| fail(e.to_string()));
        let mut seen = [false; 2];
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen != [true; 2] {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                fail(format!("the group of two delivered only {seen:?} in 30 s"));
            }
            let d = group
                .next_delivery(left.min(Duration::from_millis(100)))
                .unwrap_or_else(|e| fail(format!("the group of two: {e}")));
            if let Some(d) = d {
                for (r, s) in seen.iter_mut().enumerate() {
                    *s |= d.payload[..] == *format!("after {r}").as_bytes();
                }
            }
        }
    }
    world.barrier().unwrap_or_else(|e| fail(e.to_string()));
    println!("ring_group_rejoin_limit ok: rank {me}");
}
