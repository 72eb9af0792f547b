//! Aligned, pooled receive buffers.
//!
//! Frames are received into [`RecvBuf`]s whose start is aligned for in-place rkyv access.
//! A [`BufferPool`] keeps freed buffers by size class and hands them out again, so that in
//! steady state receiving allocates nothing. The pool is bounded: past
//! [`BufferPool::MAX_CACHED_PER_CLASS`] a freed buffer is dropped instead of kept.

use rkyv::util::AlignedVec;
use std::cell::RefCell;
use std::rc::Rc;

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

    /// Change the length within capacity, or grow (which may allocate).
    pub fn resize(&mut self, len: usize) {
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

struct PoolInner {
    classes: Vec<Vec<AlignedVec<BUF_ALIGN>>>,
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

    /// An empty pool.
    pub fn new() -> Self {
        let classes = (MIN_CLASS_SHIFT..=MAX_CLASS_SHIFT)
            .map(|_| Vec::new())
            .collect();
        BufferPool {
            inner: Rc::new(RefCell::new(PoolInner {
                classes,
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
    fn huge_buffers_are_not_cached() {
        let pool = BufferPool::new();
        let b = pool.get(64 << 20);
        assert_eq!(b.len(), 64 << 20);
        drop(b);
        assert_eq!(pool.stats(), (0, 0));
    }
}
