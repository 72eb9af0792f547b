//! The handshake by which a consumer that found its ring empty goes to sleep without
//! missing a frame, and a producer learns that it must wake it (Dekker-style, one word
//! in shared memory).
//!
//! * Consumer: [`WakeFlag::announce_sleep`] stores 1, issues a SeqCst fence, and the
//!   caller then looks at the ring once more; only if it is still empty does it sleep.
//! * Producer: after publishing a frame (a Release store of the slot's sequence word),
//!   [`WakeFlag::take_wake`] issues a SeqCst fence and reads the word; if it is 1 it
//!   swaps it to 0 and the caller rings the doorbell (one wake per sleep).
//!
//! The two fences order each side's store before its load, so at least one side sees
//! the other's store: either the consumer sees the frame and does not sleep, or the
//! producer sees the flag and wakes it (the loom test below checks every interleaving).

use super::ring::sync::{AtomicU32, Ordering};

#[cfg(loom)]
use loom::sync::atomic::fence;
#[cfg(not(loom))]
use std::sync::atomic::fence;

/// The consumer's "I am going to sleep" word.
#[repr(transparent)]
pub(crate) struct WakeFlag(AtomicU32);

impl WakeFlag {
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        WakeFlag(AtomicU32::new(0))
    }

    /// Consumer: about to sleep. The caller must check the ring again afterwards.
    #[inline]
    pub(crate) fn announce_sleep(&self) {
        self.0.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Consumer: not sleeping after all (the re-check found a frame). A producer may
    /// still have taken the flag and ring once for nothing, which is harmless.
    #[inline]
    pub(crate) fn cancel_sleep(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// Producer, after publishing: whether the consumer sleeps and must be woken (true
    /// once per announced sleep).
    #[inline]
    pub(crate) fn take_wake(&self) -> bool {
        fence(Ordering::SeqCst);
        self.0.load(Ordering::Relaxed) != 0 && self.0.swap(0, Ordering::AcqRel) != 0
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::AtomicU64;
    use loom::sync::Arc;

    /// If the consumer decides to sleep, the producer decides to wake it.
    #[test]
    fn loom_a_sleeping_consumer_is_always_woken() {
        loom::model(|| {
            let shared = Arc::new((AtomicU64::new(0), WakeFlag::new()));
            let s2 = shared.clone();
            let producer = loom::thread::spawn(move || {
                // The slot's sequence word, published as the ring does.
                s2.0.store(1, Ordering::Release);
                s2.1.take_wake()
            });
            shared.1.announce_sleep();
            let sleeps = shared.0.load(Ordering::Acquire) == 0;
            if !sleeps {
                shared.1.cancel_sleep();
            }
            let woken = producer.join().unwrap();
            assert!(!sleeps || woken, "the consumer sleeps and nobody wakes it");
        });
    }
}
