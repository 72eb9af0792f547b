//! The single-producer single-consumer ring between two local ranks.
//!
//! Memory of one ring (inside the shared segment, or on the heap in loom tests):
//!
//! ```text
//! RingCtl { head: CachePadded<AtomicU64>, tail: CachePadded<AtomicU64> }   (padded)
//! slot 0: [SlotCtl (16 B: seq, len, tag)][frame: slot_size - 16 bytes]
//! slot 1: ...
//! ```
//!
//! The frame starts right after the 16-byte control words, in the same cache line: a frame
//! of up to 48 bytes arrives with the flag that publishes it, so the consumer takes one
//! cache miss for it instead of two in a row (the flag, then the frame). The `tag` word
//! travels with the frame, uninterpreted (the fabric says with it which header the frame
//! carries).
//!
//! Protocol (Vyukov-style per-slot sequence, Lamport-style cached head):
//!
//! * Positions are monotonically increasing `u64`s; position `p` lives in slot `p % slots`.
//! * The producer may write position `p` once `p - head < slots`. It keeps a cached copy of
//!   `head` and reloads the shared `head` (Acquire) only when the cache says "full", so in
//!   steady state it never touches the consumer's cache line.
//! * The producer writes the frame, then the length (Relaxed) and finally `seq = p + 1`
//!   (Release) into the slot's control line.
//! * The consumer at position `h` polls only the slot's control line: the slot is full
//!   exactly when `seq == h + 1` (Acquire). It never reads the producer's `tail`, so the
//!   flag and the length arrive in the same cache line as a signal, adjacent to the data.
//! * After handing the bytes to the caller it publishes `head = h + 1` (Release), which
//!   gives the slot back to the producer.
//!
//! A zeroed ring is a valid empty ring (no slot holds `seq == 1` for position 0).
//! `tail` in shared memory is informational (debugging, restart of an endpoint); the
//! protocol does not read it across processes.
//!
//! The lengths in slots are untrusted (another process wrote them): they are clamped to the
//! slot's frame area before any slice is formed.

use crossbeam_utils::CachePadded;
use std::cell::Cell;

/// Atomics used by the ring: loom's under `cfg(loom)`, std's otherwise.
pub(crate) mod sync {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
}
use sync::{AtomicU32, AtomicU64, Ordering};

/// Bytes reserved at the start of every slot for its control words; the frame starts right
/// after them, 16-byte aligned (slots are 64-byte aligned).
pub const SLOT_HDR: usize = if cfg!(loom) { LOOM_SLOT_HDR } else { 16 };
/// Under loom the control words are loom's (larger) tracked atomics.
const LOOM_SLOT_HDR: usize = 64;

/// Indices of one ring, each on its own (padded) cache line.
#[repr(C)]
pub(crate) struct RingCtl {
    /// Next position the consumer will read (written by the consumer only).
    pub head: CachePadded<AtomicU64>,
    /// Next position the producer will write (written by the producer only; informational).
    pub tail: CachePadded<AtomicU64>,
}

/// The control words at the start of each slot.
#[repr(C)]
pub(crate) struct SlotCtl {
    /// `position + 1` once the frame at `position` is complete.
    pub seq: AtomicU64,
    /// Length of the frame in bytes (untrusted on the consumer side).
    pub len: AtomicU32,
    /// The producer's word about the frame, passed through (untrusted).
    pub tag: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<SlotCtl>() == SLOT_HDR);

/// Bytes of a [`RingCtl`], rounded so that slot 0 starts 128-byte aligned.
pub(crate) const RING_CTL_BYTES: usize = {
    let s = std::mem::size_of::<RingCtl>();
    (s + 127) & !127
};

/// Raw view of one ring: where it is and its geometry. Copyable; holds no state.
#[derive(Clone, Copy)]
pub(crate) struct RingRef {
    ctl: *const RingCtl,
    slots_base: *mut u8,
    /// Number of slots (a power of two).
    slots: u64,
    /// Bytes per slot, including the [`SLOT_HDR`] control line (multiple of 64).
    slot_size: usize,
    /// Loom only: one tracked cell per slot so loom checks the frame bytes are accessed
    /// without a data race.
    #[cfg(loom)]
    track: *const loom::cell::UnsafeCell<()>,
}

impl RingRef {
    /// Bytes one ring occupies for this geometry (control + slots), or `None` on overflow.
    pub(crate) fn bytes_for(slots: usize, slot_size: usize) -> Option<usize> {
        slots.checked_mul(slot_size)?.checked_add(RING_CTL_BYTES)
    }

    /// A view of the ring at `base`.
    ///
    /// # Safety
    /// `base` must point to `bytes_for(slots, slot_size)` bytes, 128-byte aligned, that stay
    /// mapped while the view (or anything made from it) is used, and that hold a valid
    /// (possibly zeroed) ring of exactly this geometry. `slots` must be a power of two and
    /// `slot_size` a multiple of 64 greater than [`SLOT_HDR`]. At most one [`Producer`] and
    /// one [`Consumer`] may exist for the ring at any time, across all processes.
    pub(crate) unsafe fn new(base: *mut u8, slots: usize, slot_size: usize) -> Self {
        debug_assert!(slots.is_power_of_two());
        debug_assert!(slot_size & 63 == 0 && slot_size > SLOT_HDR);
        debug_assert!(slot_size - SLOT_HDR <= u32::MAX as usize);
        debug_assert!(base as usize & 127 == 0);
        RingRef {
            ctl: base as *const RingCtl,
            // SAFETY: the caller guarantees the region is at least RING_CTL_BYTES long.
            slots_base: unsafe { base.add(RING_CTL_BYTES) },
            slots: slots as u64,
            slot_size,
            #[cfg(loom)]
            track: std::ptr::null(),
        }
    }

    /// Loom only: track accesses to slot `i` with `track[i]`.
    ///
    /// # Safety
    /// `track` points to `slots` cells that live as long as the view.
    #[cfg(loom)]
    pub(crate) unsafe fn with_track(mut self, track: *const loom::cell::UnsafeCell<()>) -> Self {
        self.track = track;
        self
    }

    /// Largest frame one slot holds.
    #[inline]
    pub(crate) fn max_frame(&self) -> usize {
        self.slot_size - SLOT_HDR
    }

    #[inline]
    fn ctl(&self) -> &RingCtl {
        // SAFETY: `new`'s contract: the control block is mapped and initialized.
        unsafe { &*self.ctl }
    }

    #[inline]
    fn slot_ptr(&self, pos: u64) -> *mut u8 {
        let idx = (pos & (self.slots - 1)) as usize;
        // SAFETY: idx < slots, so the offset stays inside the ring's slot area.
        unsafe { self.slots_base.add(idx * self.slot_size) }
    }

    #[inline]
    fn slot_ctl(&self, pos: u64) -> &SlotCtl {
        // SAFETY: every slot starts with a SlotCtl (zeroed memory is a valid SlotCtl of
        // atomics), the slot is 64-byte aligned (more than SlotCtl needs), and the memory
        // outlives `self`.
        unsafe { &*(self.slot_ptr(pos) as *const SlotCtl) }
    }

    #[inline(always)]
    fn with_slot<R>(&self, _pos: u64, _write: bool, f: impl FnOnce() -> R) -> R {
        #[cfg(loom)]
        if !self.track.is_null() {
            let idx = (_pos & (self.slots - 1)) as usize;
            // SAFETY: `track` has `slots` cells (contract of `new`).
            let cell = unsafe { &*self.track.add(idx) };
            return if _write {
                cell.with_mut(|_| f())
            } else {
                cell.with(|_| f())
            };
        }
        f()
    }

    /// The shared head index (for restart and tests).
    pub(crate) fn head(&self) -> u64 {
        self.ctl().head.load(Ordering::Acquire)
    }

    /// The shared tail index (for restart and tests).
    pub(crate) fn tail(&self) -> u64 {
        self.ctl().tail.load(Ordering::Acquire)
    }
}

/// The producing end of a ring (owned by one thread).
pub(crate) struct Producer {
    ring: RingRef,
    tail: Cell<u64>,
    cached_head: Cell<u64>,
    /// The last push failed because the ring was full.
    blocked: Cell<bool>,
}

impl Producer {
    /// Take the producing end, continuing from the positions stored in the ring.
    pub(crate) fn new(ring: RingRef) -> Self {
        let tail = ring.tail();
        let head = ring.head();
        Producer {
            ring,
            tail: Cell::new(tail),
            cached_head: Cell::new(head),
            blocked: Cell::new(false),
        }
    }

    /// Append one frame of `header` followed by `payload_len` bytes written by `fill`, with
    /// `tag` for the consumer. Returns false (and does not call `fill`) when the ring is full.
    ///
    /// The caller guarantees `header.len() + payload_len <= max_frame()`.
    #[inline]
    pub(crate) fn try_push(
        &self,
        tag: u32,
        header: &[u8],
        payload_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> bool {
        let len = header.len() + payload_len;
        assert!(
            len <= self.ring.max_frame(),
            "frame of {len} bytes exceeds the slot"
        );
        let t = self.tail.get();
        if t.wrapping_sub(self.cached_head.get()) >= self.ring.slots {
            let h = self.ring.ctl().head.load(Ordering::Acquire);
            self.cached_head.set(h);
            if t.wrapping_sub(h) >= self.ring.slots {
                self.blocked.set(true);
                return false;
            }
        }
        let slot = self.ring.slot_ptr(t);
        self.ring.with_slot(t, true, || {
            // SAFETY: position t is free (t - head < slots, head loaded with Acquire after
            // the consumer's Release), so the consumer does not read this slot's frame
            // until we publish seq below. The frame area is max_frame() >= len bytes long
            // and starts SLOT_HDR bytes into the slot, after the control words.
            let frame = unsafe { std::slice::from_raw_parts_mut(slot.add(SLOT_HDR), len) };
            frame[..header.len()].copy_from_slice(header);
            fill(&mut frame[header.len()..]);
        });
        let ctl = self.ring.slot_ctl(t);
        ctl.len.store(len as u32, Ordering::Relaxed);
        ctl.tag.store(tag, Ordering::Relaxed);
        ctl.seq.store(t.wrapping_add(1), Ordering::Release);
        self.tail.set(t.wrapping_add(1));
        self.ring
            .ctl()
            .tail
            .store(t.wrapping_add(1), Ordering::Relaxed);
        self.blocked.set(false);
        true
    }

    /// The last push failed for lack of room and room has appeared since (Acquire load of
    /// the shared head). Used to re-check before sleeping.
    #[inline]
    pub(crate) fn unblocked(&self) -> bool {
        self.blocked.get()
            && self
                .tail
                .get()
                .wrapping_sub(self.ring.ctl().head.load(Ordering::Acquire))
                < self.ring.slots
    }
}

/// The consuming end of a ring (owned by one thread).
pub(crate) struct Consumer {
    ring: RingRef,
    head: Cell<u64>,
}

impl Consumer {
    /// Take the consuming end, continuing from the position stored in the ring.
    pub(crate) fn new(ring: RingRef) -> Self {
        let head = ring.head();
        Consumer {
            ring,
            head: Cell::new(head),
        }
    }

    /// Whether the last pop completed a half ring (the consumer then checks whether the
    /// producer sleeps waiting for room, so a blocked producer is woken at least every
    /// `slots / 2` frames).
    #[inline]
    pub(crate) fn crossed_half(&self) -> bool {
        self.head.get() & (self.ring.slots / 2 - 1) == 0
    }

    /// Whether a complete frame is waiting.
    #[inline]
    pub(crate) fn has_data(&self) -> bool {
        let h = self.head.get();
        self.ring.slot_ctl(h).seq.load(Ordering::Acquire) == h.wrapping_add(1)
    }

    /// If a frame is waiting, call `f` with its tag and its bytes in place and release the
    /// slot.
    #[inline]
    pub(crate) fn try_pop<R>(&self, f: impl FnOnce(u32, &[u8]) -> R) -> Option<R> {
        let h = self.head.get();
        let ctl = self.ring.slot_ctl(h);
        if ctl.seq.load(Ordering::Acquire) != h.wrapping_add(1) {
            return None;
        }
        // Untrusted: clamp to the slot's frame area.
        let len = (ctl.len.load(Ordering::Relaxed) as usize).min(self.ring.max_frame());
        let tag = ctl.tag.load(Ordering::Relaxed);
        let slot = self.ring.slot_ptr(h);
        let r = self.ring.with_slot(h, false, || {
            // SAFETY: seq == h + 1 was loaded with Acquire, so the producer's writes of the
            // frame happen-before this read, and it will not overwrite the slot until we
            // publish head = h + 1. `len` is clamped to the frame area.
            let frame = unsafe { std::slice::from_raw_parts(slot.add(SLOT_HDR), len) };
            f(tag, frame)
        });
        self.head.set(h.wrapping_add(1));
        self.ring
            .ctl()
            .head
            .store(h.wrapping_add(1), Ordering::Release);
        Some(r)
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;

    const SLOTS: usize = 2;
    const SLOT_SIZE: usize = 128;
    const FRAMES: u8 = 4;

    struct Shared {
        mem: *mut u8,
        layout: std::alloc::Layout,
        track: Vec<UnsafeCell<()>>,
    }
    // SAFETY: the memory is only accessed through the ring protocol under test.
    unsafe impl Send for Shared {}
    // SAFETY: as above.
    unsafe impl Sync for Shared {}

    impl Shared {
        fn new() -> Self {
            let bytes = RingRef::bytes_for(SLOTS, SLOT_SIZE).unwrap();
            let layout = std::alloc::Layout::from_size_align(bytes, 128).unwrap();
            // SAFETY: non-zero size layout.
            let mem = unsafe { std::alloc::alloc_zeroed(layout) };
            assert!(!mem.is_null());
            assert!(std::mem::size_of::<RingCtl>() <= RING_CTL_BYTES);
            assert!(std::mem::size_of::<SlotCtl>() <= SLOT_HDR);
            // SAFETY: mem is large enough and aligned for the control block and each slot
            // control line; we initialize loom atomics in place.
            unsafe {
                std::ptr::write(
                    mem as *mut RingCtl,
                    RingCtl {
                        head: CachePadded::new(AtomicU64::new(0)),
                        tail: CachePadded::new(AtomicU64::new(0)),
                    },
                );
                for i in 0..SLOTS {
                    std::ptr::write(
                        mem.add(RING_CTL_BYTES + i * SLOT_SIZE) as *mut SlotCtl,
                        SlotCtl {
                            seq: AtomicU64::new(0),
                            len: AtomicU32::new(0),
                            tag: AtomicU32::new(0),
                        },
                    );
                }
            }
            let track = (0..SLOTS).map(|_| UnsafeCell::new(())).collect();
            Shared { mem, layout, track }
        }
        fn ring(&self) -> RingRef {
            // SAFETY: the memory was laid out by `new` and lives as long as `self`.
            unsafe { RingRef::new(self.mem, SLOTS, SLOT_SIZE).with_track(self.track.as_ptr()) }
        }
    }

    impl Drop for Shared {
        fn drop(&mut self) {
            // SAFETY: drops the loom atomics written in `new`, then frees the block.
            unsafe {
                std::ptr::drop_in_place(self.mem as *mut RingCtl);
                for i in 0..SLOTS {
                    std::ptr::drop_in_place(
                        self.mem.add(RING_CTL_BYTES + i * SLOT_SIZE) as *mut SlotCtl
                    );
                }
                std::alloc::dealloc(self.mem, self.layout);
            }
        }
    }

    #[test]
    fn loom_fifo_no_loss_no_dup() {
        loom::model(|| {
            let shared = loom::sync::Arc::new(Shared::new());
            let s2 = shared.clone();
            let producer = loom::thread::spawn(move || {
                let p = Producer::new(s2.ring());
                for i in 0..FRAMES {
                    // Odd frames fill most of the slot.
                    let hdr = [i; 3];
                    let n = if i % 2 == 0 { 2 } else { 48 };
                    while !p.try_push(u32::from(i), &hdr, n, |b| {
                        b.fill(!i);
                    }) {
                        loom::thread::yield_now();
                    }
                }
            });
            let c = Consumer::new(shared.ring());
            let mut next = 0u8;
            while next < FRAMES {
                match c.try_pop(|tag, b| (tag, b.to_vec())) {
                    Some((tag, v)) => {
                        assert_eq!(tag, u32::from(next), "tag of another frame");
                        let n = if next % 2 == 0 { 2 } else { 48 };
                        let mut want = vec![next; 3];
                        want.resize(3 + n, !next);
                        assert_eq!(v, want, "FIFO violated");
                        next += 1;
                    }
                    None => loom::thread::yield_now(),
                }
            }
            producer.join().unwrap();
            assert!(c.try_pop(|_, _| ()).is_none(), "duplicate frame");
            assert!(!c.has_data());
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[repr(C, align(128))]
    struct Mem([u8; 4096]);

    fn mem() -> Box<Mem> {
        Box::new(Mem([0; 4096]))
    }

    #[test]
    fn push_pop_wraps_and_fills() {
        let mut m = mem();
        let slots = 4;
        let slot_size = 256;
        assert!(RingRef::bytes_for(slots, slot_size).unwrap() <= 4096);
        // SAFETY: m is 4096 bytes, 128-aligned, zeroed, and outlives the views.
        let r = unsafe { RingRef::new(m.0.as_mut_ptr(), slots, slot_size) };
        let p = Producer::new(r);
        let c = Consumer::new(r);
        assert_eq!(r.max_frame(), 240);
        for round in 0..10u8 {
            for i in 0..4u8 {
                assert!(p.try_push(u32::from(i) + 7, &[round], 1, |b| b[0] = i));
            }
            assert!(!p.try_push(0, &[round], 1, |_| panic!("fill must not run when full")));
            for i in 0..4u8 {
                let got = c.try_pop(|tag, b| {
                    assert_eq!(b.as_ptr() as usize % 16, 0);
                    (tag, b.to_vec())
                });
                assert_eq!(got, Some((u32::from(i) + 7, vec![round, i])));
            }
            assert!(c.try_pop(|_, _| ()).is_none());
        }
    }

    #[test]
    fn a_frame_starts_in_the_line_of_its_flag() {
        let mut m = mem();
        // SAFETY: as above.
        let r = unsafe { RingRef::new(m.0.as_mut_ptr(), 2, 256) };
        let p = Producer::new(r);
        let c = Consumer::new(r);
        for (pos, len) in [(0u64, 48), (1, 200), (2, 0)] {
            assert!(p.try_push(1, &[], len, |b| b.fill(len as u8)));
            let ctl = r.slot_ptr(pos) as usize;
            let (at, bytes) = c
                .try_pop(|_, b| (b.as_ptr() as usize - ctl, b.to_vec()))
                .unwrap();
            assert_eq!(at, SLOT_HDR);
            assert_eq!(bytes, vec![len as u8; len]);
        }
    }

    #[test]
    fn corrupt_length_is_clamped() {
        let mut m = mem();
        // SAFETY: as above.
        let r = unsafe { RingRef::new(m.0.as_mut_ptr(), 2, 128) };
        let p = Producer::new(r);
        let c = Consumer::new(r);
        assert!(p.try_push(0, &[1, 2, 3], 0, |_| {}));
        r.slot_ctl(0).len.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(c.try_pop(|_, b| b.len()), Some(112));
    }
}
