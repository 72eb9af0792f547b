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

/// An aligned byte buffer taken from a [`BufferPool`]; it goes back to the pool when dropped.
pub struct RecvBuf {
    data: AlignedVec<BUF_ALIGN>,
    pool: Option<Rc<RefCell<PoolInner>>>,
}

impl RecvBuf {
    /// A buffer outside any pool.
    pub fn unpooled(len: usize) -> Self {
        let mut data = AlignedVec::with_capacity(len.max(1));
        data.resize(len, 0);
        RecvBuf { data, pool: None }
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }

    /// The bytes, writable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// This buffer as a [`SharedBuf`], which goes back to the pool (if it came from
    /// one) when dropped, on whatever thread that happens.
    pub fn into_shared(mut self) -> SharedBuf {
        let lane = self.pool.take().map(|p| p.borrow().returns.clone());
        SharedBuf {
            data: std::mem::take(&mut self.data),
            lane,
        }
    }

    /// Change the length within capacity, or grow (which may allocate).
    pub fn resize(&mut self, len: usize) {
        self.data.resize(len, 0);
        // Keep every byte up to the capacity initialised, which the pool relies on
        // (`PoolInner::give_back`) when a grown buffer comes back.
        self.data.resize(self.data.capacity(), 0);
        self.data.resize(len, 0);
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
            let data = std::mem::take(&mut self.data);
            pool.borrow_mut().give_back(data);
        }
    }
}

/// A received buffer shared beyond its receive (see the module docs); it derefs to the
/// bytes received. `Send`, so it can own a `bytes::Bytes`.
pub struct SharedBuf {
    data: AlignedVec<BUF_ALIGN>,
    lane: Option<Arc<ArrayQueue<AlignedVec<BUF_ALIGN>>>>,
}

impl AsRef<[u8]> for SharedBuf {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl std::ops::Deref for SharedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for SharedBuf {
    fn drop(&mut self) {
        if let Some(lane) = self.lane.take() {
            // A full lane (the pool has not taken buffers back for a while): free it.
            let _ = lane.push(std::mem::take(&mut self.data));
        }
    }
}

struct PoolInner {
    classes: Vec<Vec<AlignedVec<BUF_ALIGN>>>,
    /// Shared buffers on their way back (from any thread); taken in by `get`.
    returns: Arc<ArrayQueue<AlignedVec<BUF_ALIGN>>>,
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
    fn give_back(&mut self, mut data: AlignedVec<BUF_ALIGN>) {
        let cap = data.capacity();
        if !cap.is_power_of_two() {
            return;
        }
        if let Some(c) = class_of(cap) {
            let list = &mut self.classes[c];
            if list.len() < BufferPool::MAX_CACHED_PER_CLASS {
                // SAFETY: pooled buffers are zero-filled to their whole capacity when first
                // allocated (`BufferPool::get`) and bytes never become uninitialised again,
                // so every byte up to the capacity is initialised. Keeping the full length
                // lets the next `get` shorten it instead of zero-filling it again.
                unsafe { data.set_len(cap) };
                list.push(data);
            }
        }
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
        let data = match inner.classes[c].pop() {
            Some(mut d) => {
                inner.reused += 1;
                debug_assert_eq!(
                    d.len(),
                    d.capacity(),
                    "pooled buffers keep their full length"
                );
                d.resize(len, 0); // shortens without writing
                d
            }
            None => {
                inner.allocated += 1;
                let cap = 1 << (c as u32 + MIN_CLASS_SHIFT);
                let mut d = AlignedVec::with_capacity(cap);
                // Zero-fill the whole capacity once; see `give_back`.
                d.resize(d.capacity(), 0);
                d.resize(len, 0); // shortens without writing
                d
            }
        };
        debug_assert_eq!(data.as_ptr() as usize % BUF_ALIGN, 0);
        RecvBuf {
            data,
            pool: Some(self.inner.clone()),
        }
    }

    /// (buffers allocated, buffers reused) since the pool was made.
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
    fn huge_buffers_are_not_cached() {
        let pool = BufferPool::new();
        let b = pool.get(64 << 20);
        assert_eq!(b.len(), 64 << 20);
        drop(b);
        assert_eq!(pool.stats(), (0, 0));
    }
}
