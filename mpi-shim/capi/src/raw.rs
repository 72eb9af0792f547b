//! Every dereference of a pointer the C caller passed in. The functions here are the only
//! `unsafe` of the crate; each trusts the caller for what the MPI standard makes the
//! caller responsible for (valid buffers of the stated size), and checks what it can
//! (null pointers).

use crate::abi::MpiStatus;
use std::ffi::{c_char, c_int, c_void};

/// `MPI_STATUS_IGNORE` (and `MPI_STATUSES_IGNORE`): the pointer value 1.
pub(crate) const STATUS_IGNORE: usize = 1;

/// Write `v` through the out-parameter `p`; false if `p` is null.
pub(crate) fn put<T>(p: *mut T, v: T) -> bool {
    if p.is_null() {
        return false;
    }
    // SAFETY: the MPI standard requires out-parameters to point to writable objects of
    // their type; `p` is not null.
    unsafe { p.write(v) };
    true
}

/// Read the object `p` points to, if `p` is not null.
pub(crate) fn get<T: Copy>(p: *const T) -> Option<T> {
    // SAFETY: as for `put`: in-parameters point to valid objects of their type.
    (!p.is_null()).then(|| unsafe { p.read() })
}

/// Write a status unless the caller passed `MPI_STATUS_IGNORE` (or null).
pub(crate) fn put_status(p: *mut MpiStatus, s: MpiStatus) {
    if p as usize != STATUS_IGNORE {
        put(p, s);
    }
}

/// The `i`-th element of an array of statuses, or null when they are ignored.
pub(crate) fn status_at(p: *mut MpiStatus, i: usize) -> *mut MpiStatus {
    if p as usize == STATUS_IGNORE || p.is_null() {
        std::ptr::null_mut()
    } else {
        p.wrapping_add(i)
    }
}

/// A send buffer of `len` bytes at `p` (empty when `len` is 0, whatever `p` is).
///
/// The slice's lifetime is the caller's promise: MPI requires the buffer to stay valid
/// and untouched until the operation completes.
pub(crate) fn bytes<'a>(p: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    // SAFETY: a non-null send buffer of `count` elements of the datatype is valid for
    // `len` bytes (the caller's obligation under MPI).
    (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, len) })
}

/// A receive buffer of `len` bytes at `p` (empty when `len` is 0).
pub(crate) fn bytes_mut<'a>(p: *mut u8, len: usize) -> Option<&'a mut [u8]> {
    if len == 0 {
        return Some(&mut []);
    }
    // SAFETY: as for `bytes`, for a writable receive buffer that nothing else touches
    // until the operation completes.
    (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// An array of `n` handles (requests) at `p`.
pub(crate) fn array_mut<'a, T>(p: *mut T, n: usize) -> Option<&'a mut [T]> {
    if n == 0 {
        return Some(&mut []);
    }
    // SAFETY: the caller passes an array of `n` elements.
    (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts_mut(p, n) })
}

/// Copy `s` as a NUL-terminated C string into `out` (capacity `cap` bytes, including the
/// NUL), truncating if needed; writes the length (without NUL) to `len`.
pub(crate) fn put_cstr(out: *mut c_char, cap: usize, len: *mut c_int, s: &str) -> bool {
    put_cbytes(out, cap, len, s.as_bytes())
}

/// [`put_cstr`] for bytes that need not be UTF-8.
pub(crate) fn put_cbytes(out: *mut c_char, cap: usize, len: *mut c_int, s: &[u8]) -> bool {
    let Some(dst) = bytes_mut(out.cast(), cap) else {
        return false;
    };
    let n = s.len().min(cap.saturating_sub(1));
    dst[..n].copy_from_slice(&s[..n]);
    if cap > 0 {
        dst[n] = 0;
    }
    put(len, n as c_int);
    true
}

/// The host name (`gethostname`), or "localhost" if it cannot be read.
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// `size` bytes from the C allocator (at least one), or `None` when it has none.
pub(crate) fn c_alloc(size: usize) -> Option<*mut c_void> {
    // SAFETY: malloc of a non-zero size; a null result is returned as None.
    let p = unsafe { libc::malloc(size.max(1)) };
    (!p.is_null()).then_some(p)
}

/// Give memory back to the C allocator.
pub(crate) fn c_free(p: *mut c_void) {
    // SAFETY: `p` came from `c_alloc` (MPI_Alloc_mem), as the standard requires of
    // MPI_Free_mem's argument, or is null.
    unsafe { libc::free(p) };
}

/// A read-only array of `n` elements at `p`.
pub(crate) fn slice<'a, T>(p: *const T, n: usize) -> Option<&'a [T]> {
    if n == 0 {
        return Some(&[]);
    }
    // SAFETY: the caller passes an array of `n` elements.
    (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, n) })
}

/// The NUL-terminated C string at `p`, cut to at most `max` bytes.
pub(crate) fn cstr(p: *const c_char, max: usize) -> Option<String> {
    cstr_bytes(p, max).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The bytes of the NUL-terminated C string at `p`, cut to at most `max`, as they are
/// (not necessarily UTF-8).
pub(crate) fn cstr_bytes(p: *const c_char, max: usize) -> Option<Vec<u8>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: MPI string arguments are NUL-terminated C strings.
    let s = unsafe { std::ffi::CStr::from_ptr(p) };
    let b = s.to_bytes();
    Some(b[..b.len().min(max)].to_vec())
}

/// Is `p` the `MPI_IN_PLACE` sentinel?
pub(crate) fn in_place<T>(p: *const T) -> bool {
    p as usize == crate::abi::MPI_IN_PLACE
}

/// End this process at once with `code`: flush C's and Rust's standard streams, then
/// `_exit`, so no exit handler (such as the destructor of the thread-local state, which
/// would finalize and wait for ranks that may never come) runs.
pub(crate) fn exit_now(code: c_int) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: fflush(NULL) flushes every C output stream; _exit never returns.
    unsafe {
        libc::fflush(std::ptr::null_mut());
        libc::_exit(code)
    }
}
