//! Which Rust types travel as messages, and how they become bytes.
//!
//! A message is a value or a slice of values of a plain-data type: one that is
//! [`Equivalence`]. Such a type is sent as its bytes and received by writing bytes into it,
//! so it must have no padding and accept every bit pattern. The primitive integers and
//! floats are `Equivalence`; `#[derive(Equivalence)]` covers `#[repr(C)]` structs of them.

/// A plain-data type: no padding, every bit pattern is a valid value, no pointers.
///
/// # Safety
/// Implement it only for types that meet all three conditions. `#[derive(Equivalence)]`
/// checks them for structs.
pub unsafe trait Equivalence: Copy + 'static {}

macro_rules! plain {
    ($($t:ty),*) => { $(
        // SAFETY: primitive integers and floats have no padding and no invalid bit patterns.
        unsafe impl Equivalence for $t {}
    )* };
}
plain!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

// SAFETY: an array of plain-data elements is plain data (arrays have no padding between
// elements beyond what the element type already has, which is none).
unsafe impl<T: Equivalence, const N: usize> Equivalence for [T; N] {}

/// Something that can be sent: a value, a slice, a vector or an array of plain data.
pub trait Buffer {
    /// The bytes to send.
    fn as_bytes(&self) -> &[u8];
}

/// Something that can be received into.
pub trait BufferMut {
    /// The bytes to fill.
    fn as_bytes_mut(&mut self) -> &mut [u8];
    /// Size of one element, to turn byte counts into element counts.
    fn element_size(&self) -> usize;
}

/// View plain data as bytes.
pub fn bytes_of<T: Equivalence>(s: &[T]) -> &[u8] {
    // SAFETY: `T: Equivalence` has no padding, so all `size_of_val(s)` bytes are
    // initialised; u8 has alignment 1; the lifetime is tied to `s`.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}

/// View plain data as writable bytes.
pub fn bytes_of_mut<T: Equivalence>(s: &mut [T]) -> &mut [u8] {
    // SAFETY: as in `bytes_of`; and any bytes written are a valid `T` because
    // `T: Equivalence` accepts every bit pattern.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
}

impl<T: Equivalence> Buffer for T {
    fn as_bytes(&self) -> &[u8] {
        bytes_of(std::slice::from_ref(self))
    }
}
impl<T: Equivalence> Buffer for [T] {
    fn as_bytes(&self) -> &[u8] {
        bytes_of(self)
    }
}
impl<T: Equivalence> Buffer for Vec<T> {
    fn as_bytes(&self) -> &[u8] {
        bytes_of(self)
    }
}

impl<T: Equivalence> BufferMut for T {
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        bytes_of_mut(std::slice::from_mut(self))
    }
    fn element_size(&self) -> usize {
        std::mem::size_of::<T>()
    }
}
impl<T: Equivalence> BufferMut for [T] {
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        bytes_of_mut(self)
    }
    fn element_size(&self) -> usize {
        std::mem::size_of::<T>()
    }
}
impl<T: Equivalence> BufferMut for Vec<T> {
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        bytes_of_mut(self)
    }
    fn element_size(&self) -> usize {
        std::mem::size_of::<T>()
    }
}

/// A zeroed value of a plain-data type (valid because every bit pattern is).
pub fn zeroed<T: Equivalence>() -> T {
    // SAFETY: `T: Equivalence` accepts every bit pattern, including all zeros.
    unsafe { std::mem::zeroed() }
}

/// A vector of `n` zeroed values.
pub fn zeroed_vec<T: Equivalence>(n: usize) -> Vec<T> {
    vec![zeroed::<T>(); n]
}
