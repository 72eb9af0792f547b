//! How a rank waits for an operation: spin, then yield, then sleep.
//!
//! Spinning gives the lowest latency when every rank has its own core; the spin polls
//! shared memory and the TCP ring in the same pass, with no system call unless the kernel
//! has news. When ranks outnumber cores (4 ranks on 2 cores), a spinning rank would
//! starve the peer it waits for, so after a short spin the waiter yields the CPU, and then
//! sleeps: on the TCP ring (a completion wakes it) or on the shared-memory doorbell (a
//! futex a sender rings only when the flag says someone sleeps). A waiter with both kinds
//! of peers sleeps on the ring in short naps, since shared memory cannot wake it there.
//! While sleeping it checks that its shared-memory peers live, so a dead peer turns into
//! an error instead of a hang, and it lets glommio run connection management (refusing
//! stray connections) now and then.

use super::engine::Engine;
use glommio::LocalExecutor;
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Polls before a waiter starts yielding.
pub const SPIN_ROUNDS: u32 = 1 << 14;
/// Polls before a waiter starts yielding when the node's ranks share cores.
pub const SHARED_CORE_SPIN_ROUNDS: u32 = 64;
/// Polls of the incoming rings' control lines per spinning round, when nothing but an
/// incoming shared-memory frame can make progress.
pub const IDLE_POLLS: u32 = 16;
/// Yields before a waiter goes to sleep.
pub const YIELD_ROUNDS: u32 = 256;
/// Longest single sleep.
pub const MAX_NAP: Duration = Duration::from_millis(1);
/// Longest sleep on the TCP ring when shared-memory peers exist (they cannot wake it).
pub const SHM_NAP_WITH_TCP: Duration = Duration::from_micros(50);
/// How often sleeping waiters check that their shared-memory peers still live.
pub const LIVENESS_PERIOD: Duration = Duration::from_millis(100);
/// How often a sleeping waiter lets glommio run its connection-management tasks.
pub const RUNTIME_PERIOD: Duration = Duration::from_millis(20);

/// When one wait last checked that its shared-memory peers and the launcher live.
#[derive(Default)]
pub(crate) struct Liveness {
    /// Set at the first call, so a wait that ends while spinning (the common case, a
    /// fraction of a microsecond) never reads the clock.
    last_check: Option<Instant>,
}

impl Liveness {
    /// Check that shared-memory peers and the launcher still live, when that is due
    /// ([`LIVENESS_PERIOD`] after the last check; the first call only starts the clock).
    pub(crate) fn check_if_due(&mut self, e: &mut Engine) {
        match self.last_check {
            None => self.last_check = Some(Instant::now()),
            Some(t) if t.elapsed() >= LIVENESS_PERIOD => {
                e.check_local_peers();
                e.check_launcher();
                self.last_check = Some(Instant::now());
            }
            Some(_) => {}
        }
    }
}

/// The state of one wait: how long nothing has moved, and when shared-memory peers were
/// last checked.
struct Waiter {
    idle: u32,
    liveness: Liveness,
}

impl Waiter {
    fn new() -> Self {
        Waiter {
            idle: 0,
            liveness: Liveness::default(),
        }
    }

    /// Make progress and test `cond`; counts the rounds in which nothing moved.
    fn round(&mut self, e: &mut Engine, cond: &mut impl FnMut(&mut Engine) -> bool) -> bool {
        if e.progress() {
            self.idle = 0;
        }
        if cond(e) {
            return true;
        }
        self.idle = self.idle.saturating_add(1);
        e.wait_rounds = e.wait_rounds.wrapping_add(1);
        false
    }

    /// Check that shared-memory peers still live, when that is due.
    fn check_peers(&mut self, e: &mut Engine) {
        self.liveness.check_if_due(e);
    }
}

/// Wait outside the runtime until `cond` holds.
pub(crate) fn wait_sync(
    engine: &RefCell<Engine>,
    ex: &LocalExecutor,
    mut cond: impl FnMut(&mut Engine) -> bool,
) {
    let mut w = Waiter::new();
    loop {
        {
            let mut e = engine.borrow_mut();
            if w.round(&mut e, &mut cond) {
                return;
            }
            if w.idle < e.spin_limit {
                // No `pause` (`spin_loop`) here: a round of progress already takes tens of
                // nanoseconds, and in a virtual machine a run of pauses triggers a
                // pause-loop exit to the hypervisor. Measured with the `shm_pingpong`
                // example on this project's 2-vCPU KVM guest: 8 B one-way 320 ns with a
                // pause per poll, 70 ns without.
                // When only a shared-memory frame can move things, watch the rings'
                // control lines alone for a while: a tighter loop than a round of progress,
                // so a frame is seen sooner after it lands.
                e.spin_for_incoming(IDLE_POLLS);
                // Check the clock now and then (counted across operations, so a busy rank
                // whose waits are all short still gets there).
                if !e.wait_rounds.is_multiple_of(1024) {
                    continue;
                }
            } else if w.idle < e.spin_limit + YIELD_ROUNDS {
                std::thread::yield_now();
                continue;
            } else {
                e.sleep(MAX_NAP);
                w.check_peers(&mut e);
            }
        }
        run_runtime_if_due(engine, ex);
    }
}

/// Let glommio run its tasks for a moment if it last did [`RUNTIME_PERIOD`] ago or more
/// (the waits call this between their rounds).
pub(crate) fn run_runtime_if_due(engine: &RefCell<Engine>, ex: &LocalExecutor) {
    let due = engine.borrow().last_runtime.elapsed() >= RUNTIME_PERIOD;
    if due {
        run_runtime_briefly(ex);
        engine.borrow_mut().last_runtime = Instant::now();
    }
}

/// Let glommio run its tasks (connection management) for a moment. It reaps io_uring
/// completions only when it parks, so park it on a timer rather than just yield; the
/// timer is zero-length, so the park reaps what is there and does not sleep.
fn run_runtime_briefly(ex: &LocalExecutor) {
    tracing::trace!("runtime tick");
    ex.run(glommio::timer::sleep(RUNTIME_TICK));
}

/// How long a runtime tick parks glommio. Zero: a tick that really slept (10 us had been
/// used) let the virtual CPU halt, and waking it cost milliseconds. Measured with
/// `zr-pingpong` at 8 B, 3 alternating rounds: mean one-way 0.146-0.177 us with a 10 us
/// tick, 0.118-0.123 us with a zero tick, 0.106-0.124 us with no tick at all (p50 barely
/// moves; the ticks made a tail of stalls).
pub const RUNTIME_TICK: Duration = Duration::ZERO;

/// Wait inside the glommio runtime (for `async` code): other tasks run while it naps.
pub(crate) async fn wait_in_runtime(
    engine: &RefCell<Engine>,
    mut cond: impl FnMut(&mut Engine) -> bool,
) {
    let mut w = Waiter::new();
    loop {
        {
            let mut e = engine.borrow_mut();
            if w.round(&mut e, &mut cond) {
                return;
            }
            w.check_peers(&mut e);
        }
        if w.idle < 64 {
            // Back to glommio's loop so its other tasks run, then on.
            glommio::executor().yield_task_queue_now().await;
            continue;
        }
        glommio::timer::sleep(SHM_NAP_WITH_TCP).await;
    }
}
