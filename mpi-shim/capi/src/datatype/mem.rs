//! Every memory access of the datatype engine and of the op module (the counterpart of
//! `crate::raw` for them): gathering and scattering the blocks of a type map, reading C
//! strings and arrays, exposing addresses (`MPI_Get_address`, `MPI_BOTTOM`), and aligned
//! scratch memory.

use super::layout::Block;
use std::ffi::{c_char, CStr};

/// The address `off` bytes from `base`. A null `base` is `MPI_BOTTOM`: `off` is then an
/// absolute address, obtained from `MPI_Get_address` (which exposed its provenance).
pub(crate) fn at(base: *const u8, off: isize) -> *const u8 {
    if base.is_null() {
        std::ptr::with_exposed_provenance(off as usize)
    } else {
        base.wrapping_offset(off)
    }
}

/// The address of `p`, as `MPI_Get_address` gives it (its provenance exposed, so that
/// `MPI_BOTTOM` plus the address can be dereferenced later).
pub(crate) fn address_of<T>(p: *const T) -> isize {
    p.expose_provenance() as isize
}

/// Copy the data of `count` elements at `base` (`extent` apart, each made of `blocks`)
/// into `out`, in order, until `out` is full.
///
/// # Safety
/// Every block of the elements whose bytes go to `out` must be readable memory (the
/// caller's buffer of `count` elements of the type, as MPI requires), not overlapping
/// `out`.
pub(super) unsafe fn gather(
    base: *const u8,
    extent: isize,
    count: usize,
    blocks: &[Block],
    out: &mut [u8],
) {
    let mut pos = 0;
    for i in 0..count {
        let elem = (i as isize).wrapping_mul(extent);
        for b in blocks {
            if pos == out.len() {
                return;
            }
            let n = b.len.min(out.len() - pos);
            let src = at(base, elem.wrapping_add(b.off));
            // SAFETY: `src` is `n` readable bytes of the caller's buffer (see above);
            // `out[pos..pos + n]` is in bounds; the two do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(src, out.as_mut_ptr().add(pos), n) };
            pos += n;
        }
    }
}

/// Copy `inp` into the blocks of `count` elements at `base`, in order, until `inp` is
/// used up (a short `inp` fills a prefix of the type map; nothing else is written).
///
/// # Safety
/// Every block that receives bytes must be writable memory of the caller's buffer, not
/// overlapping `inp` and not aliased by a live Rust reference.
pub(super) unsafe fn scatter(
    inp: &[u8],
    base: *mut u8,
    extent: isize,
    count: usize,
    blocks: &[Block],
) {
    let mut pos = 0;
    for i in 0..count {
        let elem = (i as isize).wrapping_mul(extent);
        for b in blocks {
            if pos == inp.len() {
                return;
            }
            let n = b.len.min(inp.len() - pos);
            let dst = at(base, elem.wrapping_add(b.off)).cast_mut();
            // SAFETY: `dst` is `n` writable bytes of the caller's buffer (see above);
            // `inp[pos..pos + n]` is in bounds; the two do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(inp.as_ptr().add(pos), dst, n) };
            pos += n;
        }
    }
}

/// The NUL-terminated C string at `p`, cut to `max` bytes (`None` if `p` is null).
pub(crate) fn cstr(p: *const c_char, max: usize) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null string argument of MPI is a NUL-terminated C string.
    let s = unsafe { CStr::from_ptr(p) }.to_bytes();
    let mut n = s.len().min(max);
    // Cut at a character boundary if the name is UTF-8; other bytes are kept lossily.
    while n > 0 && n < s.len() && (s[n] & 0xc0) == 0x80 {
        n -= 1;
    }
    Some(String::from_utf8_lossy(&s[..n]).into_owned())
}

/// The array of `n` elements at `p` (an empty slice when `n` is 0, whatever `p` is).
pub(crate) fn array<'a, T>(p: *const T, n: usize) -> Option<&'a [T]> {
    if n == 0 {
        return Some(&[]);
    }
    // SAFETY: an array argument of MPI with `n` entries points to `n` valid elements.
    (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, n) })
}

/// Zeroed scratch memory aligned to 16 bytes (enough for every C type MPI knows).
pub(crate) struct Scratch(Vec<Align16>);

#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Align16([u8; 16]);

impl Scratch {
    /// `len` zeroed bytes.
    pub fn new(len: usize) -> Scratch {
        Scratch(vec![Align16([0; 16]); len.div_ceil(16)])
    }

    /// The start of the memory (16-byte aligned); the memory stays valid while `self`
    /// lives and is not accessed through anything else meanwhile.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr().cast()
    }
}

/// The bytes `[p, p + len)` of a buffer the caller owns, for reading.
///
/// # Safety
/// `[p, p + len)` must be readable and not written while the slice lives.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: as the caller promises.
    unsafe { std::slice::from_raw_parts(p, len) }
}

/// The bytes `[p, p + len)` of a buffer the caller owns, for writing.
///
/// # Safety
/// `[p, p + len)` must be writable and not accessed otherwise while the slice lives.
pub(crate) unsafe fn bytes_mut<'a>(p: *mut u8, len: usize) -> &'a mut [u8] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: as the caller promises.
    unsafe { std::slice::from_raw_parts_mut(p, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_then_scatter_moves_exactly_the_blocks() {
        let src: Vec<u8> = (0..64).collect();
        let blocks = [Block { off: 8, len: 3 }, Block { off: 0, len: 2 }];
        let mut out = [0u8; 10];
        // SAFETY: 2 elements of extent 16 with blocks inside [0, 11) lie in `src`.
        unsafe { gather(src.as_ptr(), 16, 2, &blocks, &mut out) };
        assert_eq!(out, [8, 9, 10, 0, 1, 24, 25, 26, 16, 17]);
        let mut dst = vec![0xeeu8; 32];
        // SAFETY: the same shape, in `dst`; a 7-byte input stops inside element 1.
        unsafe { scatter(&out[..7], dst.as_mut_ptr(), 16, 2, &blocks) };
        let mut want = vec![0xeeu8; 32];
        want[8..11].copy_from_slice(&[8, 9, 10]);
        want[0..2].copy_from_slice(&[0, 1]);
        want[24..26].copy_from_slice(&[24, 25]);
        assert_eq!(dst, want);
    }

    #[test]
    fn bottom_plus_an_exposed_address_is_the_object() {
        let x = [5u8, 6, 7];
        let a = address_of(x.as_ptr());
        let mut out = [0u8; 2];
        // SAFETY: MPI_BOTTOM (null) plus the address of x[1], 2 bytes.
        unsafe {
            gather(
                std::ptr::null(),
                0,
                1,
                &[Block { off: a + 1, len: 2 }],
                &mut out,
            )
        };
        assert_eq!(out, [6, 7]);
    }

    #[test]
    fn cstr_cuts_at_the_limit() {
        let s = c"hello world";
        assert_eq!(cstr(s.as_ptr(), 5).as_deref(), Some("hello"));
        assert_eq!(cstr(std::ptr::null(), 5), None);
    }
}
