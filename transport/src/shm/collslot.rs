//! Collective slots: where each rank of a node publishes its operand of an on-node
//! collective, for the other ranks to read in place.
//!
//! Every local rank owns one slot in the segment: a control block and [`DATA_BYTES`] of
//! data. A collective step on one node is "publish, then read the others' slots":
//!
//! 1. The **publisher** waits until every reader of its previous publication has released
//!    it ([`CollSlot::writable`]: the slot's cumulative read count reached the number of
//!    reads it has asked for so far), writes its data, and stores a **token** naming the
//!    step (`Release`).
//! 2. A **reader** waits until the publisher's token equals the token of the step it is
//!    in (`Acquire`), reads the data in place, and releases the slot by adding one to its
//!    read count (`Release`).
//!
//! Tokens name (communicator context, collective sequence, chunk), so a reader can tell
//! the publication it waits for from the previous one, whichever communicator that was
//! on. A publisher cannot publish again before all readers of the last publication
//! released it, so a reader never sees the data change under it. The read count only
//! grows (no reset), so there is no window where a late release could be lost.
//!
//! Nothing here waits: the caller polls `ready`/`writable` inside its own wait loop
//! (which also makes progress on other traffic, yields when ranks share cores, and
//! notices dead peers).

use super::ring::sync::{AtomicU64, Ordering};

/// Bytes of one slot's data area.
pub const DATA_BYTES: usize = 64 << 10;
/// Bytes of the control block before the data (a page, so the data is page aligned).
pub const CTL_BYTES: usize = 4096;
/// Bytes of one slot in the segment.
pub const SLOT_BYTES: usize = CTL_BYTES + DATA_BYTES;

/// The control words of a slot: the token the readers poll, and the read count they
/// bump, on separate cache lines.
#[repr(C, align(128))]
pub(crate) struct SlotCtl {
    token: AtomicU64,
    _pad: [u8; 120],
    reads: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<SlotCtl>() <= CTL_BYTES);

/// The token of a step: (context, sequence, chunk), with the top bit set so that no token
/// is the all-zero value of a fresh slot.
pub fn token(context: u32, seq: u32, chunk: u32) -> u64 {
    (1 << 63)
        | (u64::from(context & 0x7f_ffff) << 40)
        | (u64::from(seq & 0xff_ffff) << 16)
        | u64::from(chunk & 0xffff)
}

/// A view of one collective slot (in the segment, or on the heap in loom tests).
#[derive(Clone, Copy)]
pub struct CollSlot {
    ctl: *const SlotCtl,
    data: *mut u8,
}

impl std::fmt::Debug for CollSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollSlot").field("ctl", &self.ctl).finish()
    }
}

impl CollSlot {
    /// # Safety
    /// `base` points to [`SLOT_BYTES`] of zero-initialized (or previously used) shared
    /// memory, 128-byte aligned, that outlives the view.
    pub(crate) unsafe fn new(base: *mut u8) -> Self {
        debug_assert_eq!(base as usize % 128, 0);
        CollSlot {
            ctl: base as *const SlotCtl,
            // SAFETY: CTL_BYTES < SLOT_BYTES, inside the caller's block.
            data: unsafe { base.add(CTL_BYTES) },
        }
    }

    fn ctl(&self) -> &SlotCtl {
        // SAFETY: `ctl` points to a SlotCtl in memory that outlives the view (`new`); its
        // fields are atomics, valid for any bit pattern and shared through atomics only.
        unsafe { &*self.ctl }
    }

    /// Publisher: have all `reads_asked` reads asked for so far been released?
    pub fn writable(&self, reads_asked: u64) -> bool {
        let done = self.ctl().reads.load(Ordering::Acquire);
        assert!(
            done <= reads_asked,
            "collective slot released {done} times, only {reads_asked} reads were asked"
        );
        done == reads_asked
    }

    /// Publisher: copy `data` into the slot, before [`CollSlot::publish`].
    ///
    /// # Safety
    /// Only the slot's owner calls it, after [`CollSlot::writable`] returned true.
    pub unsafe fn write(&self, data: &[u8]) {
        assert!(
            data.len() <= DATA_BYTES,
            "{} bytes do not fit in a slot",
            data.len()
        );
        // SAFETY: no reader touches the data between its release and the next token
        // (caller's contract); the area is DATA_BYTES long and does not overlap `data`
        // (the caller's memory is not in any slot).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.data, data.len()) };
    }

    /// Publisher: announce the data under `token`.
    pub fn publish(&self, token: u64) {
        debug_assert!(token >> 63 == 1, "tokens have the top bit set");
        self.ctl().token.store(token, Ordering::Release);
    }

    /// Reader: is the publication `token` there?
    pub fn ready(&self, token: u64) -> bool {
        self.ctl().token.load(Ordering::Acquire) == token
    }

    /// Reader: the published data.
    ///
    /// # Safety
    /// Only after [`CollSlot::ready`] returned true for the step's token and before this
    /// reader's [`CollSlot::release`].
    pub unsafe fn data(&self) -> &[u8] {
        // SAFETY: the publisher does not write until every reader released (contract);
        // the area is DATA_BYTES long.
        unsafe { std::slice::from_raw_parts(self.data, DATA_BYTES) }
    }

    /// Reader: done with the publication.
    pub fn release(&self) {
        self.ctl().reads.fetch_add(1, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_never_zero() {
        let a = token(0, 0, 0);
        assert_ne!(a, 0);
        assert_ne!(token(1, 0, 0), a);
        assert_ne!(token(0, 1, 0), a);
        assert_ne!(token(0, 0, 1), a);
        assert_ne!(token(2, 7, 3), token(2, 7, 4));
    }

    #[test]
    fn publish_read_release_cycle() {
        let layout = std::alloc::Layout::from_size_align(SLOT_BYTES, 4096).unwrap();
        // SAFETY: non-zero size.
        let mem = unsafe { std::alloc::alloc_zeroed(layout) };
        // SAFETY: a zeroed, aligned block of SLOT_BYTES that outlives `s`.
        let s = unsafe { CollSlot::new(mem) };
        assert!(s.writable(0));
        // SAFETY: writable, owner.
        unsafe { s.write(b"abc") };
        let t = token(5, 1, 0);
        assert!(!s.ready(t));
        s.publish(t);
        assert!(s.ready(t));
        // SAFETY: ready, not yet released.
        assert_eq!(unsafe { &s.data()[..3] }, b"abc");
        assert!(!s.writable(2));
        s.release();
        assert!(!s.writable(2));
        s.release();
        assert!(s.writable(2));
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(mem, layout) };
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;

    /// A slot on the heap; its data is a loom-tracked cell so loom checks that the
    /// publisher never writes while a reader may read.
    struct Shared {
        mem: *mut u8,
        layout: std::alloc::Layout,
        data: UnsafeCell<u64>,
    }
    // SAFETY: accessed only through the slot protocol under test.
    unsafe impl Send for Shared {}
    // SAFETY: as above.
    unsafe impl Sync for Shared {}

    impl Shared {
        fn new() -> Self {
            let layout = std::alloc::Layout::from_size_align(SLOT_BYTES, 4096).unwrap();
            // SAFETY: non-zero size.
            let mem = unsafe { std::alloc::alloc_zeroed(layout) };
            assert!(!mem.is_null());
            // SAFETY: aligned and large enough; loom atomics are initialized in place.
            unsafe {
                std::ptr::write(
                    mem as *mut SlotCtl,
                    SlotCtl {
                        token: AtomicU64::new(0),
                        _pad: [0; 120],
                        reads: AtomicU64::new(0),
                    },
                )
            };
            Shared {
                mem,
                layout,
                data: UnsafeCell::new(0),
            }
        }
        fn slot(&self) -> CollSlot {
            // SAFETY: the block was laid out by `new` and lives as long as `self`.
            unsafe { CollSlot::new(self.mem) }
        }
    }

    impl Drop for Shared {
        fn drop(&mut self) {
            // SAFETY: drops the loom atomics written in `new`, then frees the block.
            unsafe {
                std::ptr::drop_in_place(self.mem as *mut SlotCtl);
                std::alloc::dealloc(self.mem, self.layout);
            }
        }
    }

    /// One publisher and `READERS` readers, two publications: every reader sees each
    /// value, and the publisher never overwrites data a reader has not released.
    fn model(readers: usize) {
        let mut b = loom::model::Builder::new();
        b.max_branches = 100_000;
        b.check(move || {
            let shared = loom::sync::Arc::new(Shared::new());
            let readers: Vec<_> = (0..readers)
                .map(|_| {
                    let s = shared.clone();
                    loom::thread::spawn(move || {
                        let slot = s.slot();
                        for step in 1..=2u32 {
                            let t = token(0, step, 0);
                            while !slot.ready(t) {
                                loom::thread::yield_now();
                            }
                            // SAFETY: ready and not yet released (loom checks the access).
                            let v = s.data.with(|p| unsafe { *p });
                            assert_eq!(v, u64::from(step) * 10);
                            slot.release();
                        }
                    })
                })
                .collect();
            let slot = shared.slot();
            let mut asked = 0;
            for step in 1..=2u32 {
                while !slot.writable(asked) {
                    loom::thread::yield_now();
                }
                // SAFETY: every reader released the previous value (loom checks it).
                shared
                    .data
                    .with_mut(|p| unsafe { *p = u64::from(step) * 10 });
                slot.publish(token(0, step, 0));
                asked += readers.len() as u64;
            }
            for r in readers {
                r.join().unwrap();
            }
        });
    }

    #[test]
    fn loom_one_reader() {
        model(1);
    }

    // Two readers (the allreduce case) exceed loom's budget with the publisher's and the
    // readers' spin loops; the one-reader model covers the publish/read/release ordering,
    // and the read count is a plain counter whatever the number of readers.
}
