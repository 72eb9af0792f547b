//! Aligned, pooled receive buffers.
//!
//! Frames are received into [`RecvBuf`]s whose start is aligned for in-place rkyv access.
//! A [`BufferPool`] keeps freed buffers by size class and hands them out again, so that in
//! steady state receiving allocates nothing. The pool is bounded: past
//! [`BufferPool::MAX_CACHED_PER_CLASS`] a freed buffer is dropped instead of kept.
//!
//! A buffer whose contents outlive the receive (zero-copy payloads handed to the
//! application) becomes a [`SharedBuf`]: it can cross threads and be the owner of a
//! `bytes::Bytes`, and when the last user drops it, it goes back to its pool through a
//! lock-free return lane, so receiving into shared buffers allocates nothing in steady
//! state either.

use crossbeam::queue::ArrayQueue;
use rkyv::util::AlignedVec;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// Alignment of every receive buffer (one cache line).
pub const BUF_ALIGN: usize = 64;

/// Where a buffer's bytes live.
enum Storage {
    /// The heap: the smaller classes, and buffers outside any pool.
    Heap(AlignedVec<BUF_ALIGN>),
    /// A piece of a chunk of huge pages: the classes from [`HUGE_MIN_SHIFT`] up.
    Huge(Piece),
}

/// Buffers of this size class and up (1 MiB) come from chunks of transparent huge pages.
/// A frame of a MiB (a batch of broadcasts, a large message's piece) spreads over 256
/// pages of 4 KiB, and a process that keeps many of them (payloads handed on without a
/// copy) misses the TLB on most of the kernel's copies into them: in a virtual machine
/// each miss is a two-level page walk. With huge pages the ring broadcast delivered up
/// to 21% more at 64 KiB (alternating pairs of 3-member runs; see the README).
///
/// A chunk is freed only once all its pieces are: a piece the pool lets go (its class's
/// list is full) while its sibling stays cached keeps a dead MiB, so the 1 MiB class may
/// hold up to twice [`BufferPool::MAX_CACHED_PER_CLASS`] MiB. Smaller classes, where a
/// chunk would hold more pieces and could pin more, stay on the heap.
const HUGE_MIN_SHIFT: u32 = 20;

/// Size and alignment of a huge page (x86-64 and aarch64 with 4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// A run of huge pages, shared by the pieces cut from it (at least one huge page).
struct Chunk {
    /// The mapping, a huge page longer than the chunk, so that it holds an aligned run
    /// (only kept: dropping it unmaps the chunk).
    _map: memmap2::MmapRaw,
    /// The aligned run inside `map`, and its length.
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is Send and Sync already; `base` points into it, and lives as long
// as the chunk does; the chunk hands out nothing but disjoint pieces, each owned by one
// buffer (`Piece`), so sharing the chunk across threads shares no bytes.
unsafe impl Send for Chunk {}
// SAFETY: as for `Send`: nothing in a chunk is reached through `&Chunk` but the
// disjoint pieces, each through the one buffer that owns it.
unsafe impl Sync for Chunk {}

impl Chunk {
    /// A chunk of `len` bytes (a multiple of [`HUGE_PAGE`]), advised to be backed by huge
    /// pages, zero-filled (by the kernel, at first touch); `None` if it cannot be mapped.
    fn new(len: usize) -> Option<Arc<Chunk>> {
        debug_assert_eq!(len % HUGE_PAGE, 0);
        let map = memmap2::MmapOptions::new()
            .len(len + HUGE_PAGE)
            .map_anon()
            .ok()?;
        let map = memmap2::MmapRaw::from(map);
        let start = map.as_mut_ptr() as usize;
        let skip = start.next_multiple_of(HUGE_PAGE) - start;
        // A kernel without transparent huge pages refuses the advice: the chunk still
        // works, on base pages.
        let _ = map.advise_range(memmap2::Advice::HugePage, skip, len);
        // SAFETY: `skip + len <= len + HUGE_PAGE`, the mapping's length.
        let base = unsafe { map.as_mut_ptr().add(skip) };
        Some(Arc::new(Chunk {
            _map: map,
            base,
            len,
        }))
    }
}

/// `cap` bytes at `off` in a chunk, owned by one buffer (of which `len` are in use).
struct Piece {
    chunk: Arc<Chunk>,
    off: usize,
    cap: usize,
    len: usize,
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        debug_assert!(self.len <= self.cap && self.off + self.cap <= self.chunk.len);
        // SAFETY: the piece lies inside the chunk's mapping, which `self.chunk` keeps
        // alive; the mapping is initialised (zero-filled by the kernel, then written
        // only through slices like this one); no other piece overlaps it, and this one
        // is reached only through its owner, so no `&mut` to it exists meanwhile.
        unsafe { std::slice::from_raw_parts(self.chunk.base.add(self.off), self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        debug_assert!(self.len <= self.cap && self.off + self.cap <= self.chunk.len);
        // SAFETY: as in `bytes`, and `&mut self` makes this the only reference to the
        // piece's bytes.
        unsafe { std::slice::from_raw_parts_mut(self.chunk.base.add(self.off), self.len) }
    }
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Heap(v) => v,
            Storage::Huge(p) => p.bytes(),
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Storage::Heap(v) => v,
            Storage::Huge(p) => p.bytes_mut(),
        }
    }

    fn capacity(&self) -> usize {
        match self {
            Storage::Heap(v) => v.capacity(),
            Storage::Huge(p) => p.cap,
        }
    }

    /// Shorten (without writing) or lengthen (zero-filling the new bytes) within the
    /// capacity. Only `RecvBuf::resize` lengthens, off the hot path.
    fn set_len_within(&mut self, len: usize) {
        assert!(
            len <= self.capacity(),
            "{len} bytes in a {}-byte buffer",
            self.capacity()
        );
        match self {
            Storage::Heap(v) => v.resize(len, 0),
            Storage::Huge(p) => {
                let old = std::mem::replace(&mut p.len, len);
                if len > old {
                    p.bytes_mut()[old..].fill(0);
                }
            }
        }
    }
}

/// An aligned byte buffer taken from a [`BufferPool`]; it goes back to the pool when dropped.
pub struct RecvBuf {
    data: Storage,
    pool: Option<Rc<RefCell<PoolInner>>>,
}

impl RecvBuf {
    /// A buffer outside any pool.
    pub fn unpooled(len: usize) -> Self {
        let mut data = AlignedVec::with_capacity(len.max(1));
        data.resize(len, 0);
        RecvBuf {
            data: Storage::Heap(data),
            pool: None,
        }
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        self.data.bytes()
    }

    /// The bytes, writable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.data.bytes_mut()
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This buffer as a [`SharedBuf`], which goes back to the pool (if it came from
    /// one) when dropped, on whatever thread that happens.
    pub fn into_shared(mut self) -> SharedBuf {
        let lane = self.pool.take().map(|p| p.borrow().returns.clone());
        SharedBuf {
            data: Some(self.take()),
            lane,
        }
    }

    /// The storage, leaving an empty one behind (for `Drop`).
    fn take(&mut self) -> Storage {
        std::mem::replace(&mut self.data, Storage::Heap(AlignedVec::new()))
    }

    /// Change the length (new bytes are zero) within capacity, or grow (which allocates
    /// and copies).
    pub fn resize(&mut self, len: usize) {
        if len <= self.data.capacity() {
            return self.data.set_len_within(len);
        }
        // Past the capacity: onto the heap, out of the pool's classes (`give_back`
        // drops a buffer whose capacity is no class).
        let mut v = AlignedVec::with_capacity(len);
        v.extend_from_slice(self.as_slice());
        // Keep every byte up to the capacity initialised, which the pool relies on
        // (`PoolInner::give_back`) when a grown buffer comes back.
        v.resize(v.capacity(), 0);
        v.resize(len, 0);
        self.data = Storage::Heap(v);
    }
}

impl std::fmt::Debug for RecvBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBuf").field("len", &self.len()).finish()
    }
}

impl Drop for RecvBuf {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let data = self.take();
            pool.borrow_mut().give_back(data);
        }
    }
}

/// A received buffer shared beyond its receive (see the module docs); it derefs to the
/// bytes received. `Send`, so it can own a `bytes::Bytes`.
pub struct SharedBuf {
    /// `None` only while being dropped.
    data: Option<Storage>,
    lane: Option<Arc<ArrayQueue<Storage>>>,
}

impl AsRef<[u8]> for SharedBuf {
    fn as_ref(&self) -> &[u8] {
        self.data.as_ref().map_or(&[], Storage::bytes)
    }
}

impl std::ops::Deref for SharedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_ref()
    }
}

impl Drop for SharedBuf {
    fn drop(&mut self) {
        if let (Some(lane), Some(data)) = (self.lane.take(), self.data.take()) {
            // A full lane (the pool has not taken buffers back for a while): free it.
            let _ = lane.push(data);
        }
    }
}

struct PoolInner {
    classes: Vec<Vec<Storage>>,
    /// Shared buffers on their way back (from any thread); taken in by `get`.
    returns: Arc<ArrayQueue<Storage>>,
    allocated: u64,
    reused: u64,
}

const MIN_CLASS_SHIFT: u32 = 8; // 256 B
const MAX_CLASS_SHIFT: u32 = 22; // 4 MiB

fn class_of(len: usize) -> Option<usize> {
    let need = len
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
        .max(MIN_CLASS_SHIFT);
    (need <= MAX_CLASS_SHIFT).then(|| (need - MIN_CLASS_SHIFT) as usize)
}

impl PoolInner {
    fn give_back(&mut self, mut data: Storage) {
        let cap = data.capacity();
        if !cap.is_power_of_two() {
            return;
        }
        if let Some(c) = class_of(cap) {
            let list = &mut self.classes[c];
            if list.len() < BufferPool::MAX_CACHED_PER_CLASS {
                match &mut data {
                    // SAFETY: pooled heap buffers are zero-filled to their whole capacity
                    // when first allocated (`BufferPool::get`) and bytes never become
                    // uninitialised again, so every byte up to the capacity is
                    // initialised. Keeping the full length lets the next `get` shorten
                    // it instead of zero-filling it again.
                    Storage::Heap(v) => unsafe { v.set_len(cap) },
                    Storage::Huge(p) => p.len = cap,
                }
                list.push(data);
            }
        }
    }

    /// A new buffer of class `c`; the other pieces of a new huge-page chunk go to the
    /// class's free list.
    fn allocate(&mut self, c: usize) -> Storage {
        self.allocated += 1;
        let shift = c as u32 + MIN_CLASS_SHIFT;
        let cap = 1usize << shift;
        if shift >= HUGE_MIN_SHIFT {
            let len = cap.max(HUGE_PAGE);
            if let Some(chunk) = Chunk::new(len) {
                for off in (cap..len).step_by(cap) {
                    if self.classes[c].len() < BufferPool::MAX_CACHED_PER_CLASS {
                        self.classes[c].push(Storage::Huge(Piece {
                            chunk: chunk.clone(),
                            off,
                            cap,
                            len: cap,
                        }));
                    }
                }
                return Storage::Huge(Piece {
                    chunk,
                    off: 0,
                    cap,
                    len: cap,
                });
            }
        }
        let mut d = AlignedVec::with_capacity(cap);
        // Zero-fill the whole capacity once; see `give_back`.
        d.resize(d.capacity(), 0);
        Storage::Heap(d)
    }
}

/// A per-rank pool of aligned buffers, by power-of-two size class.
#[derive(Clone)]
pub struct BufferPool {
    inner: Rc<RefCell<PoolInner>>,
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (allocated, reused) = self.stats();
        f.debug_struct("BufferPool")
            .field("allocated", &allocated)
            .field("reused", &reused)
            .finish()
    }
}

impl Default for BufferPool {
    fn default() -> Self {
        Self::new()
    }
}

impl BufferPool {
    /// Most buffers kept per size class.
    pub const MAX_CACHED_PER_CLASS: usize = 64;

    /// Most shared buffers on their way back at once (past it, one is freed instead).
    pub const MAX_RETURNING: usize = 256;

    /// An empty pool.
    pub fn new() -> Self {
        let classes = (MIN_CLASS_SHIFT..=MAX_CLASS_SHIFT)
            .map(|_| Vec::new())
            .collect();
        BufferPool {
            inner: Rc::new(RefCell::new(PoolInner {
                classes,
                returns: Arc::new(ArrayQueue::new(Self::MAX_RETURNING)),
                allocated: 0,
                reused: 0,
            })),
        }
    }

    /// A buffer of exactly `len` bytes (contents unspecified but initialised).
    pub fn get(&self, len: usize) -> RecvBuf {
        let Some(c) = class_of(len) else {
            // Larger than the largest class: allocate, never cache.
            return RecvBuf::unpooled(len);
        };
        let mut inner = self.inner.borrow_mut();
        while let Some(d) = inner.returns.pop() {
            inner.give_back(d);
        }
        let mut data = match inner.classes[c].pop() {
            Some(d) => {
                inner.reused += 1;
                debug_assert_eq!(
                    d.bytes().len(),
                    d.capacity(),
                    "pooled buffers keep their full length"
                );
                d
            }
            None => inner.allocate(c),
        };
        data.set_len_within(len); // shortens without writing
        debug_assert_eq!(data.bytes().as_ptr() as usize % BUF_ALIGN, 0);
        RecvBuf {
            data,
            pool: Some(self.inner.clone()),
        }
    }

    /// (allocations, buffers reused) since the pool was made. From [`HUGE_MIN_SHIFT`] up
    /// an allocation is a chunk of huge pages; the first use of its other pieces counts
    /// as a reuse.
    pub fn stats(&self) -> (u64, u64) {
        let i = self.inner.borrow();
        (i.allocated, i.reused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_reused() {
        let pool = BufferPool::new();
        for len in [0, 1, 63, 64, 1000, 4096, 70_000] {
            let b = pool.get(len);
            assert_eq!(b.len(), len);
            assert_eq!(b.as_slice().as_ptr() as usize % BUF_ALIGN, 0);
        }
        let before = pool.stats();
        drop(pool.get(1000));
        assert_eq!(
            pool.stats().0,
            before.0,
            "a freed 1 KiB buffer is reused, not allocated"
        );
    }

    #[test]
    fn shared_buffers_come_back_from_other_threads() {
        let pool = BufferPool::new();
        let mut b = pool.get(5000);
        b.as_mut_slice()[..5].copy_from_slice(b"hello");
        let shared = b.into_shared();
        assert_eq!(&shared[..5], b"hello");
        assert_eq!(shared.len(), 5000);
        std::thread::spawn(move || drop(shared)).join().unwrap();
        let before = pool.stats();
        let again = pool.get(5000);
        assert_eq!(
            pool.stats(),
            (before.0, before.1 + 1),
            "the shared buffer dropped on another thread is reused"
        );
        assert_eq!(again.as_slice().as_ptr() as usize % BUF_ALIGN, 0);
        // A buffer outside any pool is simply freed.
        drop(RecvBuf::unpooled(10).into_shared());
    }

    #[test]
    fn large_classes_are_cut_from_huge_page_chunks() {
        let pool = BufferPool::new();
        // The 1 MiB class: one 2 MiB chunk, two pieces.
        let mut a = pool.get(600_000);
        assert_eq!(a.len(), 600_000);
        let base = a.as_slice().as_ptr() as usize;
        assert_eq!(base % HUGE_PAGE, 0, "a chunk starts on a huge page");
        assert!(
            a.as_slice().iter().all(|&b| b == 0),
            "a new chunk is zero-filled"
        );
        let mut b = pool.get(1 << 20);
        assert_eq!(
            pool.stats(),
            (1, 1),
            "one chunk serves two buffers of the class"
        );
        assert_eq!(
            b.as_slice().as_ptr() as usize,
            base + (1 << 20),
            "the pieces tile it"
        );
        // Disjoint: writing one leaves the other as it was.
        a.as_mut_slice().fill(0xaa);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        b.as_mut_slice().fill(0x55);
        assert!(a.as_slice().iter().all(|&x| x == 0xaa));
        // A third buffer of the class: a second chunk.
        let c = pool.get(700_000);
        assert_eq!(pool.stats(), (2, 1));
        assert_eq!(c.as_slice().as_ptr() as usize % HUGE_PAGE, 0);
        // A piece shared and dropped on another thread comes back, with its bytes.
        let shared = b.into_shared();
        assert_eq!(shared.len(), 1 << 20);
        std::thread::spawn(move || drop(shared)).join().unwrap();
        let again = pool.get(900_000);
        assert_eq!(pool.stats(), (2, 2), "the piece is reused");
        assert!(again.as_slice().iter().all(|&x| x == 0x55));
        // Lengthened within its piece, a buffer's new bytes are zero.
        let mut d = again;
        d.resize(1 << 20);
        assert!(d.as_slice()[..900_000].iter().all(|&x| x == 0x55));
        assert!(d.as_slice()[900_000..].iter().all(|&x| x == 0));
        // Grown past its piece, a buffer moves to the heap and keeps its bytes.
        a.resize(3 << 20);
        assert_eq!(a.len(), 3 << 20);
        assert!(a.as_slice()[..600_000].iter().all(|&x| x == 0xaa));
        a.resize(10);
        assert_eq!(a.as_slice(), &[0xaa; 10]);
        // The 4 MiB class: a chunk of its own.
        let e = pool.get(3 << 20);
        assert_eq!(e.as_slice().as_ptr() as usize % HUGE_PAGE, 0);
        assert!(e.as_slice().iter().all(|&x| x == 0));
    }

    #[test]
    fn huge_buffers_are_not_cached() {
        let pool = BufferPool::new();
        let b = pool.get(64 << 20);
        assert_eq!(b.len(), 64 << 20);
        drop(b);
        assert_eq!(pool.stats(), (0, 0));
    }
}
