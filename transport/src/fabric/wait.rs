//! How a rank waits for an operation: spin, then yield, then sleep.
//!
//! Spinning gives the lowest latency when every rank has its own core. When ranks
//! outnumber cores (4 ranks on 2 cores), a spinning rank would starve the peer it waits
//! for, so after a short spin the waiter yields the CPU, and then sleeps: on the
//! shared-memory doorbell (a futex a sender rings only when the flag says someone sleeps)
//! or, when TCP peers exist, inside glommio until a TCP task has news or a short timer
//! fires. Liveness of shared-memory peers is checked while sleeping, so a dead peer turns
//! into an error instead of a hang.

use super::engine::Engine;
use super::tcplink::TcpShared;
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Polls before a shared-memory-only waiter starts yielding.
pub const SPIN_ROUNDS: u32 = 1 << 14;
/// Yields before a waiter goes to sleep.
pub const YIELD_ROUNDS: u32 = 256;
/// Longest single sleep.
pub const MAX_NAP: Duration = Duration::from_millis(1);
/// Longest sleep inside glommio when shared-memory peers exist (they cannot wake it).
pub const SHM_NAP_IN_RUNTIME: Duration = Duration::from_micros(50);
/// How often sleeping waiters check that their shared-memory peers still live.
pub const LIVENESS_PERIOD: Duration = Duration::from_millis(100);

/// Wait outside the runtime on shared memory only.
pub(crate) fn wait_shm(engine: &RefCell<Engine>, mut cond: impl FnMut(&mut Engine) -> bool) {
    let mut e = engine.borrow_mut();
    let mut idle: u32 = 0;
    let mut last_check = Instant::now();
    loop {
        if e.progress() {
            idle = 0;
        }
        if cond(&mut e) {
            return;
        }
        idle = idle.saturating_add(1);
        if idle < SPIN_ROUNDS {
            std::hint::spin_loop();
            continue;
        }
        if idle < SPIN_ROUNDS + YIELD_ROUNDS {
            std::thread::yield_now();
            continue;
        }
        match e.shm.as_ref() {
            Some(shm) => shm.wait(MAX_NAP),
            None => std::thread::sleep(MAX_NAP),
        }
        if last_check.elapsed() >= LIVENESS_PERIOD {
            e.check_local_peers();
            last_check = Instant::now();
        }
    }
}

/// Wait inside the glommio runtime: TCP tasks run while this future sleeps.
pub(crate) async fn wait_in_runtime(
    engine: &RefCell<Engine>,
    tcp: &TcpShared,
    mut cond: impl FnMut(&mut Engine) -> bool,
) {
    let mut idle: u32 = 0;
    let mut last_check = Instant::now();
    loop {
        let has_shm = {
            let mut e = engine.borrow_mut();
            if e.progress() {
                idle = 0;
            }
            if cond(&mut e) {
                return;
            }
            if last_check.elapsed() >= LIVENESS_PERIOD {
                e.check_local_peers();
                last_check = Instant::now();
            }
            e.shm.is_some()
        };
        idle = idle.saturating_add(1);
        if idle < 64 {
            // Back to glommio's loop so it polls io_uring, then on.
            glommio::executor().yield_task_queue_now().await;
            continue;
        }
        let nap = if has_shm {
            SHM_NAP_IN_RUNTIME
        } else {
            MAX_NAP * 10
        };
        futures_lite::future::or(tcp.progress.notified(), async {
            glommio::timer::sleep(nap).await;
        })
        .await;
    }
}
