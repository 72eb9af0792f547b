//! Predefined datatypes: which handles are basic types, and their sizes and names.

use std::ffi::c_int;

/// A predefined basic datatype of the MPICH ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Basic {
    /// The handle.
    pub handle: c_int,
    /// Bytes per element.
    pub size: usize,
    /// The name MPICH gives it.
    pub name: &'static str,
}

macro_rules! basics {
    ($($name:literal = $h:literal, $size:literal;)*) => {
        /// Every predefined basic datatype supported so far.
        pub const BASICS: &[Basic] = &[$(Basic { handle: $h as u32 as c_int, size: $size, name: $name }),*];
    };
}

basics! {
    "MPI_CHAR" = 0x4c00_0101, 1;
    "MPI_SIGNED_CHAR" = 0x4c00_0118, 1;
    "MPI_UNSIGNED_CHAR" = 0x4c00_0102, 1;
    "MPI_BYTE" = 0x4c00_010d, 1;
    "MPI_WCHAR" = 0x4c00_040e, 4;
    "MPI_SHORT" = 0x4c00_0203, 2;
    "MPI_UNSIGNED_SHORT" = 0x4c00_0204, 2;
    "MPI_INT" = 0x4c00_0405, 4;
    "MPI_UNSIGNED" = 0x4c00_0406, 4;
    "MPI_LONG" = 0x4c00_0807, 8;
    "MPI_UNSIGNED_LONG" = 0x4c00_0808, 8;
    "MPI_FLOAT" = 0x4c00_040a, 4;
    "MPI_DOUBLE" = 0x4c00_080b, 8;
    "MPI_LONG_DOUBLE" = 0x4c00_100c, 16;
    "MPI_LONG_LONG_INT" = 0x4c00_0809, 8;
    "MPI_UNSIGNED_LONG_LONG" = 0x4c00_0819, 8;
    "MPI_PACKED" = 0x4c00_010f, 1;
    "MPI_INT8_T" = 0x4c00_0137, 1;
    "MPI_INT16_T" = 0x4c00_0238, 2;
    "MPI_INT32_T" = 0x4c00_0439, 4;
    "MPI_INT64_T" = 0x4c00_083a, 8;
    "MPI_UINT8_T" = 0x4c00_013b, 1;
    "MPI_UINT16_T" = 0x4c00_023c, 2;
    "MPI_UINT32_T" = 0x4c00_043d, 4;
    "MPI_UINT64_T" = 0x4c00_083e, 8;
    "MPI_C_BOOL" = 0x4c00_013f, 1;
    "MPI_AINT" = 0x4c00_0843, 8;
    "MPI_OFFSET" = 0x4c00_0844, 8;
    "MPI_COUNT" = 0x4c00_0845, 8;
}

/// The basic datatype `handle` names, if it is one.
pub fn basic(handle: c_int) -> Option<&'static Basic> {
    BASICS.iter().find(|b| b.handle == handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_size_bits_of_the_handles() {
        // MPICH encodes a builtin type's size in bits 8-15 of its handle.
        for b in BASICS {
            assert_eq!(b.size, ((b.handle >> 8) & 0xff) as usize, "{}", b.name);
        }
        assert!(basic(0x0c00_0000).is_none());
    }
}
