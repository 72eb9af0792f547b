//! Borrowed user buffers that outlive a call: the one place the fabric holds raw pointers.
//!
//! A non-blocking send or receive refers to the caller's memory until the request
//! completes. The layers above guarantee that (the Rust API borrows the buffer for a
//! request scope; the C ABI has MPI's rule that the buffer is not touched until the
//! request completes). This module turns those guarantees into slices.

/// Memory a send reads from.
#[derive(Debug, Clone, Copy)]
pub struct SendBuf {
    ptr: *const u8,
    len: usize,
}

/// Memory a receive writes into.
#[derive(Debug, Clone, Copy)]
pub struct RecvBufRef {
    ptr: *mut u8,
    len: usize,
}

impl SendBuf {
    /// Wrap `len` bytes at `ptr`.
    ///
    /// # Safety
    /// The bytes must stay valid and unmodified until the request using them completes.
    pub unsafe fn new(ptr: *const u8, len: usize) -> Self {
        SendBuf { ptr, len }
    }

    /// Wrap a slice that outlives the request (the caller's promise, see [`SendBuf::new`]).
    ///
    /// # Safety
    /// As for [`SendBuf::new`].
    pub unsafe fn from_slice(s: &[u8]) -> Self {
        SendBuf {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Address, for single-copy reads by a peer process.
    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    /// The bytes `[off, off + n)`.
    pub fn slice(&self, off: usize, n: usize) -> &[u8] {
        assert!(
            off <= self.len && n <= self.len - off,
            "send slice out of range"
        );
        if n == 0 {
            return &[];
        }
        // SAFETY: `new` requires the region to stay valid and unmodified while the request
        // lives, and the range was checked against the length given there.
        unsafe { std::slice::from_raw_parts(self.ptr.add(off), n) }
    }
}

impl RecvBufRef {
    /// Wrap `len` writable bytes at `ptr`.
    ///
    /// # Safety
    /// The bytes must stay valid and not be accessed by anyone else until the request
    /// using them completes.
    pub unsafe fn new(ptr: *mut u8, len: usize) -> Self {
        RecvBufRef { ptr, len }
    }

    /// Wrap a slice that outlives the request.
    ///
    /// # Safety
    /// As for [`RecvBufRef::new`].
    pub unsafe fn from_slice(s: &mut [u8]) -> Self {
        RecvBufRef {
            ptr: s.as_mut_ptr(),
            len: s.len(),
        }
    }

    /// Capacity in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The writable bytes `[off, off + n)`.
    #[allow(clippy::mut_from_ref)]
    pub fn slice_mut(&self, off: usize, n: usize) -> &mut [u8] {
        assert!(
            off <= self.len && n <= self.len - off,
            "receive slice out of range"
        );
        if n == 0 {
            return &mut [];
        }
        // SAFETY: `new` requires exclusive access to the region while the request lives;
        // the fabric writes each request's buffer from one place at a time, and the range
        // was checked against the length given there.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(off), n) }
    }
}
