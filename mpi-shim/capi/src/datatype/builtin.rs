//! The predefined datatypes of the MPICH ABI: handle, name (as MPICH prints it), size,
//! extent, alignment, the element kind the reduction kernels know it as, and where its
//! data lies inside one element (one part, or two for the value-index pairs).

use std::ffi::c_int;
use zerorank::op::Elem;

/// A predefined datatype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Basic {
    /// The handle (MPICH's value).
    pub handle: c_int,
    /// The name MPICH gives it (`MPI_Type_get_name`).
    pub name: &'static str,
    /// Bytes of data per element (`MPI_Type_size`).
    pub size: usize,
    /// Extent in bytes (`sizeof` the C type, padding included).
    pub extent: usize,
    /// Alignment of the C type (pads the extent of structs that contain it).
    pub align: usize,
    /// What the reduction kernels of `zerorank::op` call it; `None` when no predefined
    /// reduction applies (`MPI_PACKED`, Fortran `LOGICAL`, `CHARACTER`, ...).
    pub elem: Option<Elem>,
    /// (offset, length) of each data part of an element: one part, or value and index of
    /// a pair type. `MPI_Get_elements` counts parts.
    pub parts: &'static [(usize, usize)],
}

const fn b(
    handle: u32,
    name: &'static str,
    size: usize,
    align: usize,
    elem: Option<Elem>,
) -> Basic {
    Basic {
        handle: handle as c_int,
        name,
        size,
        extent: size,
        align,
        elem,
        parts: match size {
            1 => &[(0, 1)],
            2 => &[(0, 2)],
            4 => &[(0, 4)],
            8 => &[(0, 8)],
            16 => &[(0, 16)],
            _ => &[(0, 32)],
        },
    }
}

/// A value-index pair: `struct { value; int index; }`.
const fn pair(
    handle: u32,
    name: &'static str,
    extent: usize,
    align: usize,
    elem: Option<Elem>,
    parts: &'static [(usize, usize)],
) -> Basic {
    Basic {
        handle: handle as c_int,
        name,
        size: parts[0].1 + parts[1].1,
        extent,
        align,
        elem,
        parts,
    }
}

use Elem as E;

/// Every predefined datatype (`MPI_LB` and `MPI_UB`, removed in MPI 3.0, are not).
/// Synonyms (`MPI_LONG_LONG`, `MPI_C_FLOAT_COMPLEX`) have the handle of the type they
/// stand for, so they are not listed twice.
pub const BASICS: &[Basic] = &[
    // C integers and characters. `char` is signed on x86_64 Linux; MPICH reduces it too.
    b(0x4c00_0101, "MPI_CHAR", 1, 1, Some(E::I8)),
    b(0x4c00_0118, "MPI_SIGNED_CHAR", 1, 1, Some(E::I8)),
    b(0x4c00_0102, "MPI_UNSIGNED_CHAR", 1, 1, Some(E::U8)),
    b(0x4c00_040e, "MPI_WCHAR", 4, 4, Some(E::WChar)),
    b(0x4c00_0203, "MPI_SHORT", 2, 2, Some(E::I16)),
    b(0x4c00_0204, "MPI_UNSIGNED_SHORT", 2, 2, Some(E::U16)),
    b(0x4c00_0405, "MPI_INT", 4, 4, Some(E::I32)),
    b(0x4c00_0406, "MPI_UNSIGNED", 4, 4, Some(E::U32)),
    b(0x4c00_0807, "MPI_LONG", 8, 8, Some(E::I64)),
    b(0x4c00_0808, "MPI_UNSIGNED_LONG", 8, 8, Some(E::U64)),
    b(0x4c00_0809, "MPI_LONG_LONG_INT", 8, 8, Some(E::I64)),
    b(0x4c00_0819, "MPI_UNSIGNED_LONG_LONG", 8, 8, Some(E::U64)),
    // C floating point
    b(0x4c00_040a, "MPI_FLOAT", 4, 4, Some(E::F32)),
    b(0x4c00_080b, "MPI_DOUBLE", 8, 8, Some(E::F64)),
    b(0x4c00_100c, "MPI_LONG_DOUBLE", 16, 16, Some(E::LongDouble)),
    // untyped
    b(0x4c00_010d, "MPI_BYTE", 1, 1, Some(E::Byte)),
    b(0x4c00_010f, "MPI_PACKED", 1, 1, None),
    // <stdint.h>
    b(0x4c00_0137, "MPI_INT8_T", 1, 1, Some(E::I8)),
    b(0x4c00_0238, "MPI_INT16_T", 2, 2, Some(E::I16)),
    b(0x4c00_0439, "MPI_INT32_T", 4, 4, Some(E::I32)),
    b(0x4c00_083a, "MPI_INT64_T", 8, 8, Some(E::I64)),
    b(0x4c00_013b, "MPI_UINT8_T", 1, 1, Some(E::U8)),
    b(0x4c00_023c, "MPI_UINT16_T", 2, 2, Some(E::U16)),
    b(0x4c00_043d, "MPI_UINT32_T", 4, 4, Some(E::U32)),
    b(0x4c00_083e, "MPI_UINT64_T", 8, 8, Some(E::U64)),
    // C99 _Bool and _Complex
    b(0x4c00_013f, "MPI_C_BOOL", 1, 1, Some(E::Bool)),
    b(0x4c00_0840, "MPI_C_COMPLEX", 8, 4, Some(E::ComplexF32)),
    b(
        0x4c00_1041,
        "MPI_C_DOUBLE_COMPLEX",
        16,
        8,
        Some(E::ComplexF64),
    ),
    b(
        0x4c00_2042,
        "MPI_C_LONG_DOUBLE_COMPLEX",
        32,
        16,
        Some(E::ComplexLongDouble),
    ),
    // MPI's integer typedefs (long on x86_64 Linux)
    b(0x4c00_0843, "MPI_AINT", 8, 8, Some(E::I64)),
    b(0x4c00_0844, "MPI_OFFSET", 8, 8, Some(E::I64)),
    b(0x4c00_0845, "MPI_COUNT", 8, 8, Some(E::I64)),
    // C++
    b(0x4c00_0133, "MPI_CXX_BOOL", 1, 1, Some(E::Bool)),
    b(
        0x4c00_0834,
        "MPI_CXX_FLOAT_COMPLEX",
        8,
        4,
        Some(E::ComplexF32),
    ),
    b(
        0x4c00_1035,
        "MPI_CXX_DOUBLE_COMPLEX",
        16,
        8,
        Some(E::ComplexF64),
    ),
    b(
        0x4c00_2036,
        "MPI_CXX_LONG_DOUBLE_COMPLEX",
        32,
        16,
        Some(E::ComplexLongDouble),
    ),
    // value-index pairs, as the C structs lay them out
    pair(
        0x8c00_0000,
        "MPI_FLOAT_INT",
        8,
        4,
        Some(E::FloatInt),
        &[(0, 4), (4, 4)],
    ),
    pair(
        0x8c00_0001,
        "MPI_DOUBLE_INT",
        16,
        8,
        Some(E::DoubleInt),
        &[(0, 8), (8, 4)],
    ),
    pair(
        0x8c00_0002,
        "MPI_LONG_INT",
        16,
        8,
        Some(E::LongInt),
        &[(0, 8), (8, 4)],
    ),
    pair(
        0x8c00_0003,
        "MPI_SHORT_INT",
        8,
        4,
        Some(E::ShortInt),
        &[(0, 2), (4, 4)],
    ),
    pair(
        0x8c00_0004,
        "MPI_LONG_DOUBLE_INT",
        32,
        16,
        Some(E::LongDoubleInt),
        &[(0, 16), (16, 4)],
    ),
    pair(
        0x4c00_0816,
        "MPI_2INT",
        8,
        4,
        Some(E::TwoInt),
        &[(0, 4), (4, 4)],
    ),
    // Fortran types (for C code that handles Fortran data)
    b(0x4c00_011a, "MPI_CHARACTER", 1, 1, None),
    b(0x4c00_041d, "MPI_LOGICAL", 4, 4, None),
    b(0x4c00_041b, "MPI_INTEGER", 4, 4, Some(E::I32)),
    b(0x4c00_041c, "MPI_REAL", 4, 4, Some(E::F32)),
    b(0x4c00_081f, "MPI_DOUBLE_PRECISION", 8, 8, Some(E::F64)),
    b(0x4c00_081e, "MPI_COMPLEX", 8, 4, Some(E::ComplexF32)),
    b(
        0x4c00_1022,
        "MPI_DOUBLE_COMPLEX",
        16,
        8,
        Some(E::ComplexF64),
    ),
    pair(
        0x4c00_0820,
        "MPI_2INTEGER",
        8,
        4,
        Some(E::TwoInt),
        &[(0, 4), (4, 4)],
    ),
    pair(0x4c00_0821, "MPI_2REAL", 8, 4, None, &[(0, 4), (4, 4)]),
    pair(
        0x4c00_1023,
        "MPI_2DOUBLE_PRECISION",
        16,
        8,
        None,
        &[(0, 8), (8, 8)],
    ),
    b(0x4c00_012d, "MPI_INTEGER1", 1, 1, Some(E::I8)),
    b(0x4c00_022f, "MPI_INTEGER2", 2, 2, Some(E::I16)),
    b(0x4c00_0430, "MPI_INTEGER4", 4, 4, Some(E::I32)),
    b(0x4c00_0831, "MPI_INTEGER8", 8, 8, Some(E::I64)),
    b(0x4c00_0427, "MPI_REAL4", 4, 4, Some(E::F32)),
    b(0x4c00_0829, "MPI_REAL8", 8, 8, Some(E::F64)),
    b(0x4c00_102b, "MPI_REAL16", 16, 16, None),
    b(0x4c00_0828, "MPI_COMPLEX8", 8, 4, Some(E::ComplexF32)),
    b(0x4c00_102a, "MPI_COMPLEX16", 16, 8, Some(E::ComplexF64)),
    b(0x4c00_202c, "MPI_COMPLEX32", 32, 16, None),
];

/// `MPI_LB` and `MPI_UB`: in the header, not supported (removed in MPI 3.0).
pub const MPI_LB: c_int = 0x4c00_0010;
/// See [`MPI_LB`].
pub const MPI_UB: c_int = 0x4c00_0011;

/// Index into [`BASICS`] by the low byte of a `0x4c00....` handle (255: none).
const BY_LOW_BYTE: [u8; 256] = {
    let mut t = [255u8; 256];
    let mut i = 0;
    while i < BASICS.len() {
        let h = BASICS[i].handle as u32;
        if h >> 16 == 0x4c00 {
            t[(h & 0xff) as usize] = i as u8;
        }
        i += 1;
    }
    t
};

/// Index into [`BASICS`] of `MPI_FLOAT_INT` (the `0x8c00000k` pairs follow it in order).
const PAIR_BASE: usize = {
    let mut i = 0;
    while BASICS[i].handle as u32 != 0x8c00_0000 {
        i += 1;
    }
    i
};

/// The handle of the predefined datatype called `name`.
pub fn handle_of(name: &str) -> Option<c_int> {
    BASICS.iter().find(|b| b.name == name).map(|b| b.handle)
}

/// The index into [`BASICS`] of predefined datatype `h`.
pub fn index(h: c_int) -> Option<usize> {
    let u = h as u32;
    let i = match u >> 16 {
        0x4c00 => BY_LOW_BYTE[(u & 0xff) as usize] as usize,
        0x8c00 if u & 0xffff <= 4 => PAIR_BASE + (u & 0xffff) as usize,
        _ => return None,
    };
    (i < BASICS.len() && BASICS[i].handle == h).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handle_is_found_at_its_index() {
        for (i, t) in BASICS.iter().enumerate() {
            assert_eq!(index(t.handle), Some(i), "{}", t.name);
        }
        for h in [
            0x0c00_0000,
            MPI_LB,
            MPI_UB,
            0x8c00_0005_u32 as c_int,
            0x8c00_1000_u32 as c_int,
            0,
            -1,
        ] {
            assert_eq!(index(h), None, "{h:#x}");
        }
    }

    #[test]
    fn sizes_match_the_size_bits_of_the_handles() {
        // MPICH encodes a builtin type's extent in bits 8-15 of its 0x4c handle.
        for t in BASICS.iter().filter(|t| (t.handle as u32) >> 16 == 0x4c00) {
            assert_eq!(t.extent, ((t.handle >> 8) & 0xff) as usize, "{}", t.name);
        }
    }

    #[test]
    fn elements_agree_with_the_kernels() {
        for t in BASICS {
            let end = t.parts.last().map_or(0, |p| p.0 + p.1);
            assert!(end <= t.extent && t.extent % t.align == 0, "{}", t.name);
            if let Some(e) = t.elem {
                assert_eq!(e.size(), t.extent, "{}", t.name);
                assert_eq!(e.align(), t.align, "{}", t.name);
                if let Some(io) = e.pair_index_offset() {
                    assert_eq!(t.parts, &[(0, t.parts[0].1), (io, 4)], "{}", t.name);
                }
            }
        }
    }
}
