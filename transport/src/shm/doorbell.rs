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
    use std::sync::Arc;

    /// How long a sleep that should end may take before the test calls it hung: far
    /// beyond any scheduling delay, so that it bounds the test without timing it.
    const HANG: Duration = Duration::from_secs(60);

    fn doorbell() -> Arc<Doorbell> {
        Arc::new(Doorbell {
            word: AtomicU32::new(AWAKE),
            claimed: AtomicU32::new(0),
        })
    }

    /// Run `sleep` on `d` in a thread; whether it returned within [`HANG`].
    fn returns(d: &Arc<Doorbell>, sleep: impl FnOnce(&Doorbell) + Send + 'static) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        let d = d.clone();
        std::thread::spawn(move || {
            sleep(&d);
            let _ = tx.send(());
        });
        rx.recv_timeout(HANG).is_ok()
    }

    #[test]
    fn claimed_once() {
        let d = doorbell();
        assert!(d.claim() && !d.claim());
    }

    #[test]
    fn a_sleep_ends_at_its_timeout() {
        let d = doorbell();
        d.prepare();
        assert!(
            returns(&d, |d| d.sleep(Duration::from_millis(30))),
            "a 30 ms sleep, never woken, was still asleep after {HANG:?}"
        );
    }

    #[test]
    fn a_notify_before_the_sleep_is_not_lost() {
        let d = doorbell();
        d.prepare();
        d.notify();
        assert_eq!(
            d.word.load(Ordering::Relaxed),
            AWAKE,
            "notify flips the word"
        );
        assert!(
            returns(&d, |d| d.sleep(Duration::from_secs(3600))),
            "lost wake-up: notified before sleeping, still asleep after {HANG:?}"
        );
    }

    #[test]
    fn a_notify_during_the_sleep_wakes_it() {
        let d = doorbell();
        let (tx, rx) = std::sync::mpsc::channel();
        let sleeper = d.clone();
        std::thread::spawn(move || {
            sleeper.prepare();
            sleeper.sleep(Duration::from_secs(3600));
            sleeper.finish();
            let _ = tx.send(());
        });
        // Once the word says SLEEPING the sleeper is in the futex or about to enter it,
        // where the flipped word makes it return at once.
        let seen = (0..HANG.as_millis())
            .find(|_| {
                let sleeping = d.word.load(Ordering::Relaxed) == SLEEPING;
                if !sleeping {
                    std::thread::sleep(Duration::from_millis(1));
                }
                sleeping
            })
            .is_some();
        assert!(seen, "the sleeper never announced its sleep");
        d.notify();
        assert!(
            rx.recv_timeout(HANG).is_ok(),
            "lost wake-up: notified while sleeping, still asleep after {HANG:?}"
        );
        assert_eq!(d.word.load(Ordering::Relaxed), AWAKE);
    }

    #[test]
    fn a_notify_with_nobody_asleep_leaves_the_word() {
        let d = doorbell();
        d.notify();
        assert_eq!(d.word.load(Ordering::Relaxed), AWAKE);
    }
}
