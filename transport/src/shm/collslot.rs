//! Collective slots: where each rank of a node publishes its operand of an on-node
//! collective, for the other ranks to read in place.
//!
//! Every local rank owns one slot in the segment: [`AREAS`] areas, each a control block
//! and [`DATA_BYTES`] of data. Publications go round the areas in turn, so a rank can
//! publish again while the readers of its previous publications are still reading them:
//! back-to-back collectives do not run in lockstep, and a stream of chunks (a large
//! broadcast) is a pipeline [`AREAS`] chunks deep. A collective step on one node is
//! "publish, then read the others' slots":
//!
//! 1. The **publisher** takes its next area in turn, waits until every reader of that
//!    area's previous publication has released it ([`CollSlot::writable`]: the
//!    area's cumulative read count reached the number of reads asked of it so far),
//!    writes its data, and stores a **token** naming the step (`Release`).
//! 2. A **reader** waits until one of the publisher's areas holds the token of the step
//!    it is in (`Acquire`; [`CollSlot::ready`] says which), reads the data in place, and
//!    releases that area by adding one to its read count (`Release`).
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

#[cfg(not(loom))]
use super::callword::CALL_WORDS;
use super::ring::sync::{AtomicU64, Ordering};
use std::rc::Rc;

/// Bytes of one area's data (the most one publication holds).
///
/// Areas and their size, measured at 2 ranks with benches/c/coll_bench.c (fastest of 8
/// alternating runs, slowest rank's median, us; 2 x 64 KiB was the layout before streams):
///
/// | layout | bcast 64 KiB | bcast 1 MiB | allreduce 1 MiB | reduce 1 MiB |
/// |---|---|---|---|---|
/// | 2 x 64 KiB | 6.1 | 86 | 160 | 89 |
/// | 4 x 64 KiB | 5.7 | 58 | 131 | 73 |
/// | 8 x 32 KiB | 5.6 | 59 | 127 | 72 |
/// | 8 x 64 KiB | 5.3 | 49 | 120 | 87 |
///
/// 8 x 32 KiB keeps most of the gain at half the memory of 8 x 64 KiB (the segment's
/// budget is shared with the rings, see `ShmConfig::for_local_size`).
pub const DATA_BYTES: usize = 32 << 10;
/// Bytes of the control blocks and call-word tables before the data (two pages, so the
/// data is page aligned).
pub const CTL_BYTES: usize = 8192;
/// Areas of a slot (publications in flight per rank).
#[cfg(not(loom))]
pub const AREAS: usize = 8;
/// Areas of a slot: two under loom, where three publications already reuse one (the
/// protocol does not depend on the count, and eight would make the model far larger).
#[cfg(loom)]
pub const AREAS: usize = 2;
/// Bytes of one slot in the segment.
pub const SLOT_BYTES: usize = CTL_BYTES + AREAS * DATA_BYTES;

/// What a publication holds. Publisher and readers of a step normally agree on it; when
/// the ranks passed inconsistent sizes they may not, and a reader must then notice (and,
/// for a stream, still read the chunks it is counted on for, or the publisher would wait
/// for it forever).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The data itself.
    Data = 0,
    /// A chunk of a stream (a table and blocks, see the collective engine's exposures).
    Stream = 1,
    /// Where the data is in the publisher's memory, for the readers to copy from there.
    Address = 2,
}

/// Where the kind sits in the length word.
const KIND_SHIFT: u32 = 62;

/// Publications up to this many bytes are stored right after the token, in the cache
/// lines the readers poll, so a reader that sees the token has the data without another
/// cache miss. Larger ones go to the area's data.
pub const INLINE_BYTES: usize = 96;

/// The control words of a slot: the token the readers poll (with the publication's length
/// and small publications right after it), and the read count they bump, on separate
/// cache lines.
#[repr(C, align(128))]
pub(crate) struct SlotCtl {
    token: AtomicU64,
    /// Bytes of the publication, stored before the token (so a reader that acquired the
    /// token sees it): a reader that does not know the length from its own arguments (the
    /// `v` collectives) or that must check it (ranks passing different counts) reads it.
    len: AtomicU64,
    /// The read count once every reader of this publication has released it, stored
    /// before the token: a sole reader releases by storing it (see
    /// [`CollSlot::release_sole`]) instead of loading the count first, which would be a
    /// cache miss on the publisher's line.
    done: AtomicU64,
    /// A word the publisher's collective defines, stored before the token, for readers
    /// to check that publisher and reader agree on more than the length of this
    /// publication (the on-node fold: a digest of the whole operation's operand layout,
    /// and whether this is the publisher's last chunk of it). 0 unless the publisher set
    /// it.
    shape: AtomicU64,
    inline: std::cell::UnsafeCell<[u8; INLINE_BYTES]>,
    reads: AtomicU64,
}

impl SlotCtl {
    /// A fresh control block (as zeroed shared memory is).
    #[cfg(loom)]
    fn new() -> Self {
        SlotCtl {
            token: AtomicU64::new(0),
            len: AtomicU64::new(0),
            done: AtomicU64::new(0),
            shape: AtomicU64::new(0),
            inline: std::cell::UnsafeCell::new([0; INLINE_BYTES]),
            reads: AtomicU64::new(0),
        }
    }
}

const _: () = assert!(AREAS * std::mem::size_of::<SlotCtl>() <= CTL_BYTES);
// The call words and the failure words (`super::callword`) follow.
#[cfg(not(loom))]
const _: () = assert!(AREAS * std::mem::size_of::<SlotCtl>() + 2 * CALL_WORDS * 8 <= CTL_BYTES);
// The token, the length and the inline bytes share the first 128 bytes; the read count is
// apart.
const _: () = assert!(std::mem::offset_of!(SlotCtl, reads) == 128);

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

    #[inline]
    fn ctl(&self, area: usize) -> &SlotCtl {
        assert!(area < AREAS, "a slot has {AREAS} areas, not {}", area + 1);
        // SAFETY: the AREAS control blocks lie at the start of the slot (`new`), in
        // memory that outlives the view; their fields are atomics, valid for any bit
        // pattern and shared through atomics only.
        unsafe { &*self.ctl.add(area) }
    }

    /// Where a publication of `len` bytes in `area` lives: inline after the token when it
    /// is small, else in the area's data.
    #[inline]
    fn data_ptr(&self, area: usize, len: usize) -> *mut u8 {
        if len <= INLINE_BYTES {
            self.ctl(area).inline.get().cast()
        } else {
            assert!(area < AREAS);
            self.data.wrapping_add(area * DATA_BYTES)
        }
    }

    /// Word table `k` after the areas' control blocks (`super::callword`): 0 the call
    /// words, 1 the failure words.
    #[cfg(not(loom))]
    fn words(&self, k: usize) -> &[std::sync::atomic::AtomicU64; CALL_WORDS] {
        assert!(k < 2);
        // SAFETY: the two tables lie right after the AREAS control blocks, inside the
        // control pages (asserted above), in memory that outlives the view; 8-byte aligned
        // (the blocks are 128-byte aligned); atomics are valid for any bit pattern.
        unsafe {
            &*self
                .ctl
                .add(AREAS)
                .cast::<std::sync::atomic::AtomicU64>()
                .add(k * CALL_WORDS)
                .cast::<[std::sync::atomic::AtomicU64; CALL_WORDS]>()
        }
    }

    /// Owner: say `word` (`callword::failure`) in failure word `i`: the last call this
    /// rank failed on the communicator that uses index `i`. Stored before the call word
    /// that says the next call, so it outlasts it.
    #[cfg(not(loom))]
    #[inline]
    pub fn set_failure(&self, i: usize, word: u64) {
        self.words(1)[i].store(word, std::sync::atomic::Ordering::Release);
    }

    /// Another rank: this slot's owner's failure word `i`.
    #[cfg(not(loom))]
    #[inline]
    pub fn failure(&self, i: usize) -> u64 {
        self.words(1)[i].load(std::sync::atomic::Ordering::Acquire)
    }

    /// Owner: say `word` (`callword::encode`) in call word `i`: stored after everything
    /// this rank did in the call it describes, so a rank that reads it finished sees
    /// that too.
    #[cfg(not(loom))]
    #[inline]
    pub fn set_call(&self, i: usize, word: u64) {
        self.words(0)[i].store(word, std::sync::atomic::Ordering::Release);
    }

    /// Another rank: this slot's owner's call word `i`.
    #[cfg(not(loom))]
    #[inline]
    pub fn call(&self, i: usize) -> u64 {
        self.words(0)[i].load(std::sync::atomic::Ordering::Acquire)
    }

    /// Publisher: take `area` back although not every reader released its publication,
    /// when none of them ever will (each has finished the call: `callword`); `reads_asked`
    /// as for [`CollSlot::writable`].
    pub fn reclaim(&self, area: usize, reads_asked: u64) {
        let c = self.ctl(area);
        assert!(
            c.reads.load(Ordering::Acquire) <= reads_asked,
            "collective slot area {area} released more often than asked"
        );
        c.reads.store(reads_asked, Ordering::Release);
    }

    /// Publisher: have all `reads_asked` reads asked of `area` so far been released?
    #[inline]
    pub fn writable(&self, area: usize, reads_asked: u64) -> bool {
        let done = self.ctl(area).reads.load(Ordering::Acquire);
        assert!(
            done <= reads_asked,
            "collective slot area {area} released {done} times, only {reads_asked} reads were asked"
        );
        done == reads_asked
    }

    /// Publisher: start loading `area`'s read count into this core's cache, so the
    /// [`CollSlot::writable`] check of the next publication in it finds the line there
    /// instead of waiting for it. The readers last wrote that line when they released the
    /// area, usually long before; without the hint the check costs a cross-core miss at
    /// the start of every collective. Only a hint: no effect on what is loaded or stored.
    #[inline]
    pub fn prefetch_reads(&self, area: usize) {
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        {
            let p: *const AtomicU64 = &self.ctl(area).reads;
            // SAFETY: a prefetch never faults and changes no memory; `p` is a valid
            // address anyway.
            unsafe {
                core::arch::x86_64::_mm_prefetch(p.cast::<i8>(), core::arch::x86_64::_MM_HINT_T0)
            };
        }
        #[cfg(not(all(target_arch = "x86_64", not(loom))))]
        let _ = area;
    }

    /// Publisher: copy `data` into `area`, before [`CollSlot::publish`].
    ///
    /// # Safety
    /// Only the slot's owner calls it, after [`CollSlot::writable`] returned true for
    /// `area`.
    pub unsafe fn write(&self, area: usize, data: &[u8]) {
        // SAFETY: the caller's contract is this one's.
        unsafe { self.write_parts(area, &[data], Kind::Data, 0) }
    }

    /// Publisher: copy the concatenation of `parts` into `area`, before
    /// [`CollSlot::publish`] (a header and the data it describes, without building the
    /// whole in a buffer first), as a publication of kind `kind` with shape word `shape`
    /// (see [`CollSlot::published_shape`]).
    ///
    /// # Safety
    /// As for [`CollSlot::write`].
    #[inline]
    pub unsafe fn write_parts(&self, area: usize, parts: &[&[u8]], kind: Kind, shape: u64) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        assert!(len <= DATA_BYTES, "{len} bytes do not fit in a slot");
        let base = self.data_ptr(area, len);
        let mut at = 0;
        for p in parts {
            // SAFETY: no reader touches the area between its release and the next token
            // (caller's contract); the area holds `len` bytes (DATA_BYTES, the inline one
            // INLINE_BYTES, used up to that length), of which this part takes
            // `at..at + p.len()`; it does not overlap `p` (the caller's memory is not in
            // any slot).
            let dst = unsafe { std::slice::from_raw_parts_mut(base.add(at), p.len()) };
            // The source is this process's memory: `copy_local` (measured at 2 ranks,
            // benches/c/coll_bench.c: allgather 4 KiB 1.26-1.30 us against 1.41-1.58 with
            // `copy`, allreduce 64 KiB 13.7-14.4 against 16.4-17.8).
            super::copy::copy_local(dst, p);
            at += p.len();
        }
        let word = len as u64 | (kind as u64) << KIND_SHIFT;
        let c = self.ctl(area);
        c.len.store(word, Ordering::Relaxed);
        c.shape.store(shape, Ordering::Relaxed);
    }

    /// Reader: the length of the publication in `area` (after [`CollSlot::ready`] gave
    /// `area`; the token's acquire makes it visible).
    #[inline]
    pub fn published_len(&self, area: usize) -> usize {
        (self.ctl(area).len.load(Ordering::Relaxed) & ((1 << KIND_SHIFT) - 1)) as usize
    }

    /// Reader: the kind of the publication in `area` (after [`CollSlot::ready`] gave it).
    #[inline]
    pub fn published_kind(&self, area: usize) -> Kind {
        match self.ctl(area).len.load(Ordering::Relaxed) >> KIND_SHIFT {
            0 => Kind::Data,
            1 => Kind::Stream,
            _ => Kind::Address,
        }
    }

    /// Reader: the shape word of the publication in `area` (after [`CollSlot::ready`] gave
    /// it): what its publisher passed to [`CollSlot::write_parts`], 0 for
    /// [`CollSlot::write`].
    #[inline]
    pub fn published_shape(&self, area: usize) -> u64 {
        self.ctl(area).shape.load(Ordering::Relaxed)
    }

    /// Publisher: announce the data in `area` under `token`; `reads_when_done` is the
    /// area's read count once every reader of this publication has released it (the
    /// reads asked of it so far, this publication's included).
    #[inline]
    pub fn publish(&self, area: usize, token: u64, reads_when_done: u64) {
        debug_assert!(token >> 63 == 1, "tokens have the top bit set");
        let c = self.ctl(area);
        c.done.store(reads_when_done, Ordering::Relaxed);
        c.token.store(token, Ordering::Release);
    }

    /// Reader: the area that holds publication `token`, if it is there. `first` is the
    /// area to look at first (a publisher goes round its areas, so the area after the one its last
    /// publication was found in is the likely one; looking there first saves a cache
    /// miss on the other areas' control lines).
    #[inline]
    pub fn ready(&self, token: u64, first: usize) -> Option<usize> {
        (0..AREAS)
            .map(|i| (first + i) % AREAS)
            .find(|&h| self.ctl(h).token.load(Ordering::Acquire) == token)
    }

    /// Reader: start loading the `len` bytes published in `area` into this core's cache,
    /// all at once. The publisher has just written them, so they sit in its core's cache;
    /// read in order, each cache line would be fetched from there only when the one before
    /// has arrived (measured: 4 KiB took about 45 ns a line, the cross-core latency). With
    /// the whole range requested first, the fetches overlap. Only a hint: no effect on
    /// what is loaded.
    pub fn prefetch_data(&self, area: usize, len: usize) {
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        {
            let p = self.data_ptr(area, len.min(DATA_BYTES));
            for off in (0..len.min(DATA_BYTES)).step_by(64) {
                // SAFETY: a prefetch never faults and changes no memory; the address lies
                // inside the area anyway.
                unsafe {
                    core::arch::x86_64::_mm_prefetch(
                        p.wrapping_add(off).cast::<i8>(),
                        core::arch::x86_64::_MM_HINT_T0,
                    )
                };
            }
        }
        #[cfg(not(all(target_arch = "x86_64", not(loom))))]
        let _ = (area, len);
    }

    /// Reader: the `len` bytes published in `area` (`len` as written: publisher and
    /// readers of a step agree on it, and it decides where the bytes are).
    ///
    /// # Safety
    /// Only after [`CollSlot::ready`] gave `area` for the step's token and before this
    /// reader's [`CollSlot::release`] of it.
    #[inline]
    pub unsafe fn data(&self, area: usize, len: usize) -> &[u8] {
        assert!(len <= DATA_BYTES, "{len} bytes do not fit in a slot");
        // SAFETY: the publisher does not write the area until every reader released it
        // (contract); the inline area holds INLINE_BYTES, the data area DATA_BYTES.
        unsafe { std::slice::from_raw_parts(self.data_ptr(area, len), len) }
    }

    /// Reader: done with the publication in `area`.
    #[inline]
    pub fn release(&self, area: usize) {
        self.ctl(area).reads.fetch_add(1, Ordering::Release);
    }

    /// Reader: done with the publication in `area`, of which this rank is the only reader.
    ///
    /// A plain store of the count the publisher expects once this publication is released
    /// (stored beside the token, so already in this core's cache), instead of a locked
    /// add, or a load and a store: both would wait until this core holds the publisher's
    /// line, a store alone does not (it drains from the store buffer). No other release of
    /// this area can race with it: the next one is for a later publication, which the
    /// publisher makes only after it saw this one (`writable`).
    #[inline]
    pub fn release_sole(&self, area: usize) {
        let c = self.ctl(area);
        let done = c.done.load(Ordering::Relaxed);
        debug_assert_eq!(
            c.reads.load(Ordering::Relaxed) + 1,
            done,
            "release_sole of a publication with other readers"
        );
        c.reads.store(done, Ordering::Release);
    }
}

/// The publisher's side of this rank's own slot: which area comes next, and how many
/// releases each area has been asked for.
#[derive(Debug, Default)]
pub struct Publisher {
    next: std::cell::Cell<usize>,
    asked: [std::cell::Cell<u64>; AREAS],
    /// Each area's last publication's (context, seq, signature); see [`Owner`].
    calls: [std::cell::Cell<(u32, u32, u32)>; AREAS],
    /// Each area's last publication's communicator: the other ranks (kept while
    /// publications of the same communicator follow, so recording a call is three stores).
    others: [std::cell::RefCell<Option<Others>>; AREAS],
}

/// The other ranks of a communicator: each one's slot and its call-word index.
pub type Others = Rc<[(CollSlot, u16)]>;

/// The call an area's last publication belongs to, and who could still read it: what
/// its publisher needs to take the area back when no reader ever will (see
/// [`CollSlot::reclaim`]).
#[derive(Clone, Debug)]
pub struct Owner {
    /// The other ranks of the communicator: each one's slot and its call-word index.
    pub others: Others,
    /// The communicator's collective context.
    pub context: u32,
    /// The call's sequence number (its collective tag).
    pub seq: u32,
    /// The call's signature (`callword::signature`).
    pub signature: u32,
}

impl Publisher {
    /// The area the next publication goes to, and the reads asked of it so far.
    #[inline]
    pub fn next(&self) -> (usize, u64) {
        let h = self.next.get();
        (h, self.asked[h].get())
    }

    /// Record a publication in `area` for `readers` readers.
    #[inline]
    pub fn published(&self, area: usize, readers: u64) {
        self.asked[area].set(self.asked[area].get() + readers);
        self.next.set((area + 1) % AREAS);
    }

    /// Record whose call the publication just made in `area` belongs to: call `seq`
    /// with signature `signature` on the communicator of collective context `context`,
    /// whose other ranks are `others`.
    #[inline]
    pub fn set_owner(&self, area: usize, others: &Others, context: u32, seq: u32, signature: u32) {
        self.calls[area].set((context, seq, signature));
        let mut o = self.others[area].borrow_mut();
        if !o.as_ref().is_some_and(|x| Rc::ptr_eq(x, others)) {
            *o = Some(others.clone());
        }
    }

    /// Whose call `area`'s last publication belongs to, if recorded.
    pub fn owner(&self, area: usize) -> Option<Owner> {
        let others = self.others[area].borrow().clone()?;
        let (context, seq, signature) = self.calls[area].get();
        Some(Owner {
            others,
            context,
            seq,
            signature,
        })
    }

    /// The reads asked of `area` so far (with [`CollSlot::writable`]: has every reader of
    /// its last publication released it?).
    #[inline]
    pub fn asked(&self, area: usize) -> u64 {
        self.asked[area].get()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A zeroed slot on the heap, freed on drop.
    struct HeapSlot {
        mem: *mut u8,
        layout: std::alloc::Layout,
    }

    impl HeapSlot {
        fn new() -> Self {
            let layout = std::alloc::Layout::from_size_align(SLOT_BYTES, 4096).unwrap();
            // SAFETY: non-zero size.
            let mem = unsafe { std::alloc::alloc_zeroed(layout) };
            assert!(!mem.is_null());
            HeapSlot { mem, layout }
        }

        fn slot(&self) -> CollSlot {
            // SAFETY: a zeroed, aligned block of SLOT_BYTES that outlives the view (the
            // tests drop it last).
            unsafe { CollSlot::new(self.mem) }
        }
    }

    impl Drop for HeapSlot {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(self.mem, self.layout) };
        }
    }

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
        let heap = HeapSlot::new();
        let s = heap.slot();
        let p = Publisher::default();
        for (i, word) in [b"abc", b"def", b"ghi"].iter().enumerate() {
            let (h, asked) = p.next();
            assert_eq!(h, i % AREAS);
            assert!(s.writable(h, asked));
            // SAFETY: writable, owner.
            unsafe { s.write(h, &word[..]) };
            let t = token(5, i as u32, 0);
            assert_eq!(s.ready(t, 0), None);
            s.publish(h, t, asked + 2);
            p.published(h, 2);
            assert_eq!(s.ready(t, 1), Some(h));
            // SAFETY: ready, not yet released.
            assert_eq!(unsafe { s.data(h, 3) }, &word[..]);
            assert!(!s.writable(h, asked + 2));
            s.release(h);
            assert!(!s.writable(h, asked + 2));
            s.release(h);
            assert!(s.writable(h, asked + 2));
        }
    }
    #[test]
    fn parts_are_written_back_to_back_with_their_kind_length_and_shape() {
        let heap = HeapSlot::new();
        let s = heap.slot();
        let p = Publisher::default();
        let big: Vec<u8> = (0..DATA_BYTES - 10).map(|i| i as u8).collect();
        for (i, (parts, kind)) in [
            (vec![&b"ab"[..], &b"cde"[..]], Kind::Stream),
            (vec![&b"x"[..], &big[..]], Kind::Address),
            (vec![], Kind::Data),
        ]
        .into_iter()
        .enumerate()
        {
            let (h, asked) = p.next();
            assert!(s.writable(h, asked));
            // SAFETY: writable, owner.
            let shape = 0x8000_0000_0000_0001 + i as u64;
            unsafe { s.write_parts(h, &parts, kind, shape) };
            s.publish(h, token(1, i as u32, 0), asked);
            p.published(h, 0);
            let want = parts.concat();
            assert_eq!(s.published_len(h), want.len());
            assert_eq!(s.published_kind(h), kind);
            assert_eq!(s.published_shape(h), shape);
            // SAFETY: published, no reader holds it.
            assert_eq!(unsafe { s.data(h, want.len()) }, &want[..]);
        }
    }

    #[test]
    fn inline_and_data_area_publications() {
        let heap = HeapSlot::new();
        let s = heap.slot();
        let p = Publisher::default();
        for (i, len) in [INLINE_BYTES, INLINE_BYTES + 1, 0, DATA_BYTES, 1]
            .into_iter()
            .enumerate()
        {
            let bytes: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            let (h, asked) = p.next();
            assert!(s.writable(h, asked));
            // SAFETY: writable, owner.
            unsafe { s.write(h, &bytes) };
            let t = token(1, i as u32, 0);
            s.publish(h, t, asked + 1);
            p.published(h, 1);
            assert_eq!(s.ready(t, 0), Some(h));
            assert_eq!(s.published_len(h), len);
            assert_eq!(s.published_kind(h), Kind::Data);
            // SAFETY: ready, not yet released.
            assert_eq!(
                unsafe { s.data(h, len) },
                &bytes[..],
                "publication {i} of {len} bytes"
            );
            s.release(h);
        }
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
        data: [UnsafeCell<u64>; AREAS],
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
                for h in 0..AREAS {
                    std::ptr::write((mem as *mut SlotCtl).add(h), SlotCtl::new())
                }
            };
            Shared {
                mem,
                layout,
                data: [UnsafeCell::new(0), UnsafeCell::new(0)],
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
                for h in 0..AREAS {
                    std::ptr::drop_in_place((self.mem as *mut SlotCtl).add(h));
                }
                std::alloc::dealloc(self.mem, self.layout);
            }
        }
    }

    /// Publications in the model: three, so an area is reused.
    const STEPS: u32 = 3;

    /// One publisher and `readers` readers, [`STEPS`] publications: every reader sees
    /// each value, and the publisher never overwrites data a reader has not released.
    /// `sole`: the readers release with `release_sole` (for one reader only).
    fn model(readers: usize, sole: bool) {
        assert!(!sole || readers == 1);
        let mut b = loom::model::Builder::new();
        b.max_branches = 100_000;
        b.check(move || {
            let shared = loom::sync::Arc::new(Shared::new());
            let readers: Vec<_> = (0..readers)
                .map(|_| {
                    let s = shared.clone();
                    loom::thread::spawn(move || {
                        let slot = s.slot();
                        for step in 1..=STEPS {
                            let t = token(0, step, 0);
                            let h = loop {
                                if let Some(h) = slot.ready(t, step as usize % AREAS) {
                                    break h;
                                }
                                loom::thread::yield_now();
                            };
                            // SAFETY: ready and not yet released (loom checks the access).
                            let v = s.data[h].with(|p| unsafe { *p });
                            assert_eq!(v, u64::from(step) * 10);
                            if sole {
                                slot.release_sole(h);
                            } else {
                                slot.release(h);
                            }
                        }
                    })
                })
                .collect();
            let slot = shared.slot();
            let p = Publisher::default();
            for step in 1..=STEPS {
                let (h, asked) = p.next();
                while !slot.writable(h, asked) {
                    loom::thread::yield_now();
                }
                // SAFETY: every reader released this area's last value (loom checks it).
                shared.data[h].with_mut(|q| unsafe { *q = u64::from(step) * 10 });
                slot.publish(h, token(0, step, 0), asked + readers.len() as u64);
                p.published(h, readers.len() as u64);
            }
            for r in readers {
                r.join().unwrap();
            }
        });
    }

    #[test]
    fn loom_one_reader() {
        model(1, false);
    }

    #[test]
    fn loom_one_reader_sole_release() {
        model(1, true);
    }

    // Two readers (the allreduce case) exceed loom's budget with the publisher's and the
    // readers' spin loops; the one-reader model covers the publish/read/release ordering,
    // and the read count is a plain counter whatever the number of readers.
}
