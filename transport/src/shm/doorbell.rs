//! Futex sleep/wake for a rank waiting on its incoming rings.
//!
//! Each local rank owns one doorbell word in the segment. Protocol (Dekker style):
//!
//! * Sleeper: `word = SLEEPING`; SeqCst fence; re-check the rings; if empty
//!   `futex_wait(word, SLEEPING, timeout)`; finally `word = AWAKE`.
//! * Waker (after publishing a frame): SeqCst fence; if `word == SLEEPING` and it swaps it to
//!   `AWAKE` first, `futex_wake(word)`.
//!
//! Either the sleeper's re-check sees the frame, or the waker sees `SLEEPING`. If the waker
//! flips the word before the sleeper enters the kernel, `futex_wait` returns at once
//! (`EAGAIN`, the word is no longer `SLEEPING`). The futex is shared (not
//! `FUTEX_PRIVATE_FLAG`) because the word lives in a `MAP_SHARED` mapping used by several
//! processes.

use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::Duration;

const AWAKE: u32 = 0;
const SLEEPING: u32 = 1;

/// One rank's doorbell word, as it lies in the segment.
#[repr(C)]
pub(crate) struct Doorbell {
    word: AtomicU32,
    /// Set once when the rank takes its endpoint (rings are single-producer/consumer, so a
    /// second endpoint of one rank would corrupt them).
    claimed: AtomicU32,
}

impl Doorbell {
    /// Claim the owning rank's endpoint; false if it was already claimed.
    pub(crate) fn claim(&self) -> bool {
        self.claimed.swap(1, Ordering::AcqRel) == 0
    }

    /// Announce that the owner is about to sleep. The caller must re-check its rings after
    /// this and before [`Doorbell::sleep`].
    #[inline]
    pub(crate) fn prepare(&self) {
        self.word.store(SLEEPING, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Sleep until woken, the timeout passes, a signal arrives or a waker already flipped
    /// the word. Spurious returns are possible; the caller re-checks.
    pub(crate) fn sleep(&self, timeout: Duration) {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: FUTEX_WAIT reads the aligned u32 at `word` (valid for the call, it lives in
        // the mapped segment) and compares it with SLEEPING; `ts` is a valid relative
        // timeout. Errors (EAGAIN, ETIMEDOUT, EINTR) all mean "return and re-check".
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.word.as_ptr(),
                libc::FUTEX_WAIT,
                SLEEPING,
                &ts as *const libc::timespec,
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }

    /// The owner is awake again.
    #[inline]
    pub(crate) fn finish(&self) {
        self.word.store(AWAKE, Ordering::Relaxed);
    }

    /// Wake the owner if it announced sleeping. Call after publishing a frame. No syscall
    /// unless the owner is (about to be) asleep.
    #[inline]
    pub(crate) fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.word.load(Ordering::Relaxed) == SLEEPING
            && self.word.swap(AWAKE, Ordering::Relaxed) == SLEEPING
        {
            self.wake();
        }
    }

    #[cold]
    fn wake(&self) {
        // SAFETY: FUTEX_WAKE on the aligned u32 in the shared mapping; wakes at most one
        // waiter (each doorbell has a single owner). The result is not needed.
        unsafe {
            libc::syscall(libc::SYS_futex, self.word.as_ptr(), libc::FUTEX_WAKE, 1i32);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn sleep_times_out_and_wakes() {
        let d = Doorbell {
            word: AtomicU32::new(0),
            claimed: AtomicU32::new(0),
        };
        assert!(d.claim() && !d.claim());
        d.prepare();
        let t = Instant::now();
        d.sleep(Duration::from_millis(30));
        let e = t.elapsed();
        assert!(e >= Duration::from_millis(25), "woke too early: {e:?}");
        assert!(e < Duration::from_secs(5), "timeout not honoured: {e:?}");
        // A notify before the sleep makes the sleep return at once.
        d.notify();
        d.finish();
        d.prepare();
        d.notify();
        let t = Instant::now();
        d.sleep(Duration::from_secs(10));
        assert!(t.elapsed() < Duration::from_secs(1), "lost wake-up");
        d.finish();
    }
}
