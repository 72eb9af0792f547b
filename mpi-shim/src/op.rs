//! Reduction operations: the predefined MPI ops over the basic element types, applied to
//! byte buffers (the element kernels of every reduction, for the Rust API and the C ABI).
//!
//! [`reduce_local`] is `MPI_Reduce_local`: `inout[i] = input[i] (op) inout[i]` for every
//! element `i`, strictly element by element, so a result depends only on its two operands
//! and is bit-identical wherever and however often it is computed. The collective
//! algorithms (reduce, allreduce, scan, reduce_scatter) are built from it.
//!
//! # Which op applies to which type (MPI-3.1 §5.9.2)
//!
//! | op | defined on ([`TypeGroup`]) |
//! |---|---|
//! | `MAX`, `MIN` | C integer, floating point |
//! | `SUM`, `PROD` | C integer, floating point, complex |
//! | `LAND`, `LOR`, `LXOR` | C integer, logical (`_Bool`) |
//! | `BAND`, `BOR`, `BXOR` | C integer, byte |
//! | `MINLOC`, `MAXLOC` | the (value, index) pair types |
//! | `REPLACE`, `NO_OP` | every type |
//!
//! `wchar_t` ([`Elem::WChar`]) is a printable character, not an integer: MPI forbids it in
//! reductions, so only `REPLACE` and `NO_OP` apply to it. [`defined`] is this table.
//!
//! # Semantics
//!
//! With `a` the `input` element and `b` the `inout` element (MPICH's conventions):
//!
//! - Integer `SUM`/`PROD` wrap (two's complement), they never panic.
//! - `MAX` is `b > a ? b : a` and `MIN` is `b < a ? b : a`, as C. So when the two compare
//!   equal (`+0.0` and `-0.0`) or unordered (either is NaN), the result is `a`, the input:
//!   a NaN in `input` always wins, a NaN in `inout` wins only against another NaN.
//!   (This is exactly x86's `maxps`/`minps`, so these loops vectorize.) `MAX`/`MIN` copy
//!   the chosen operand's bits.
//! - Floating `SUM`/`PROD` are IEEE 754 round-to-nearest; the complex product is the
//!   textbook `(ar*br - ai*bi) + (ar*bi + ai*br)i` with each product rounded (no fused
//!   multiply-add, no C99 Annex G infinity recovery), as MPICH's.
//! - Logical ops treat nonzero as true and store 1 or 0 in the element's own type.
//! - `MINLOC` takes the input pair if its value is smaller (`MAXLOC`: larger); if the two
//!   values are equal it keeps the inout value and the smaller of the two indices
//!   (compared as `int`); otherwise (greater, or unordered because of a NaN) it keeps the
//!   inout pair.
//! - `REPLACE` copies input into inout (all bytes); `NO_OP` leaves inout as it is.
//!
//! Kernels write only the value bytes of an element: struct padding of the pair types and
//! the 6 unused bytes of an 80-bit `long double` keep what inout held (as C does).
//!
//! # Layout
//!
//! Elements are in native byte order with the C layout of x86_64 Linux (see
//! [`Elem::size`]); buffers need not be aligned. `long double` is the 80-bit x87 extended
//! type in 16 bytes; Rust has no such type, so its kernels are a few loops of C
//! (`op_long_double.c`, built by `build.rs`), computed by the C compiler exactly as C
//! programs compute them.
//!
//! # Performance
//!
//! The op and type are dispatched once per call; each (op, type) pair is its own tight
//! loop over `chunks_exact`, which rustc vectorizes for the integer, float and complex
//! kinds.

use std::fmt;
use std::ops::{Add, BitAnd, BitOr, BitXor, Mul, Sub};

/// A predefined reduction operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `MPI_MAX`: maximum.
    Max,
    /// `MPI_MIN`: minimum.
    Min,
    /// `MPI_SUM`: sum (wrapping for integers).
    Sum,
    /// `MPI_PROD`: product (wrapping for integers).
    Prod,
    /// `MPI_LAND`: logical and.
    Land,
    /// `MPI_BAND`: bit-wise and.
    Band,
    /// `MPI_LOR`: logical or.
    Lor,
    /// `MPI_BOR`: bit-wise or.
    Bor,
    /// `MPI_LXOR`: logical exclusive or.
    Lxor,
    /// `MPI_BXOR`: bit-wise exclusive or.
    Bxor,
    /// `MPI_MINLOC`: minimum value and its (smallest) index.
    Minloc,
    /// `MPI_MAXLOC`: maximum value and its (smallest) index.
    Maxloc,
    /// `MPI_REPLACE`: the result is the input.
    Replace,
    /// `MPI_NO_OP`: the result is the inout operand, unchanged.
    NoOp,
}

impl Op {
    /// Every predefined op.
    pub const ALL: [Op; 14] = [
        Op::Max,
        Op::Min,
        Op::Sum,
        Op::Prod,
        Op::Land,
        Op::Band,
        Op::Lor,
        Op::Bor,
        Op::Lxor,
        Op::Bxor,
        Op::Minloc,
        Op::Maxloc,
        Op::Replace,
        Op::NoOp,
    ];

    /// The MPI name, e.g. `"MPI_SUM"`.
    pub const fn name(self) -> &'static str {
        match self {
            Op::Max => "MPI_MAX",
            Op::Min => "MPI_MIN",
            Op::Sum => "MPI_SUM",
            Op::Prod => "MPI_PROD",
            Op::Land => "MPI_LAND",
            Op::Band => "MPI_BAND",
            Op::Lor => "MPI_LOR",
            Op::Bor => "MPI_BOR",
            Op::Lxor => "MPI_LXOR",
            Op::Bxor => "MPI_BXOR",
            Op::Minloc => "MPI_MINLOC",
            Op::Maxloc => "MPI_MAXLOC",
            Op::Replace => "MPI_REPLACE",
            Op::NoOp => "MPI_NO_OP",
        }
    }

    /// Whether `a op b == b op a` (up to floating-point rounding, which MPI treats as
    /// commutative too). True for every op except `REPLACE` (whose result is the input)
    /// and `NO_OP` (whose result is the inout operand).
    pub const fn is_commutative(self) -> bool {
        !matches!(self, Op::Replace | Op::NoOp)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An element type predefined ops work on (the basic C types of MPI), with the layout of
/// x86_64 Linux.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem {
    /// `int8_t`, `signed char`.
    I8,
    /// `uint8_t`, `unsigned char`.
    U8,
    /// `int16_t`, `short`.
    I16,
    /// `uint16_t`, `unsigned short`.
    U16,
    /// `int32_t`, `int`.
    I32,
    /// `uint32_t`, `unsigned`.
    U32,
    /// `int64_t`, `long`, `long long`.
    I64,
    /// `uint64_t`, `unsigned long`, `unsigned long long`.
    U64,
    /// `float`.
    F32,
    /// `double`.
    F64,
    /// `long double`: 80-bit x87 extended precision stored in 16 bytes.
    LongDouble,
    /// C `_Bool`, 1 byte.
    Bool,
    /// `wchar_t` (an `i32` on Linux); a character, so not reducible.
    WChar,
    /// `float _Complex`: real then imaginary part.
    ComplexF32,
    /// `double _Complex`.
    ComplexF64,
    /// `long double _Complex`.
    ComplexLongDouble,
    /// `MPI_BYTE`: uninterpreted bytes.
    Byte,
    /// `MPI_FLOAT_INT`: `struct { float value; int index; }`.
    FloatInt,
    /// `MPI_DOUBLE_INT`: `struct { double value; int index; }` (4 bytes of tail padding).
    DoubleInt,
    /// `MPI_LONG_INT`: `struct { long value; int index; }` (4 bytes of tail padding).
    LongInt,
    /// `MPI_2INT`: `struct { int value; int index; }`.
    TwoInt,
    /// `MPI_SHORT_INT`: `struct { short value; int index; }` (2 bytes of padding after the
    /// value).
    ShortInt,
    /// `MPI_LONG_DOUBLE_INT`: `struct { long double value; int index; }` (index at byte
    /// 16, 12 bytes of tail padding).
    LongDoubleInt,
}

/// The type groups of MPI-3.1 §5.9.2 (a [`Elem`] belongs to exactly one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TypeGroup {
    /// C integer.
    Integer,
    /// Floating point.
    Floating,
    /// Complex.
    Complex,
    /// Logical (`_Bool`).
    Logical,
    /// Byte.
    Byte,
    /// The (value, index) pairs of `MINLOC`/`MAXLOC`.
    Pair,
    /// Characters (`wchar_t`): in no reduction group.
    Character,
}

impl Elem {
    /// Every element type.
    pub const ALL: [Elem; 23] = [
        Elem::I8,
        Elem::U8,
        Elem::I16,
        Elem::U16,
        Elem::I32,
        Elem::U32,
        Elem::I64,
        Elem::U64,
        Elem::F32,
        Elem::F64,
        Elem::LongDouble,
        Elem::Bool,
        Elem::WChar,
        Elem::ComplexF32,
        Elem::ComplexF64,
        Elem::ComplexLongDouble,
        Elem::Byte,
        Elem::FloatInt,
        Elem::DoubleInt,
        Elem::LongInt,
        Elem::TwoInt,
        Elem::ShortInt,
        Elem::LongDoubleInt,
    ];

    /// Size in bytes, padding included: `sizeof` the C type on x86_64 Linux.
    pub const fn size(self) -> usize {
        match self {
            Elem::I8 | Elem::U8 | Elem::Bool | Elem::Byte => 1,
            Elem::I16 | Elem::U16 => 2,
            Elem::I32 | Elem::U32 | Elem::F32 | Elem::WChar => 4,
            Elem::I64 | Elem::U64 | Elem::F64 => 8,
            Elem::ComplexF32 | Elem::FloatInt | Elem::TwoInt | Elem::ShortInt => 8,
            Elem::LongDouble | Elem::ComplexF64 | Elem::DoubleInt | Elem::LongInt => 16,
            Elem::ComplexLongDouble | Elem::LongDoubleInt => 32,
        }
    }

    /// Alignment in bytes of the C type on x86_64 Linux (buffers passed to
    /// [`reduce_local`] need not be aligned; this is for laying out C structs).
    pub const fn align(self) -> usize {
        match self {
            Elem::I8 | Elem::U8 | Elem::Bool | Elem::Byte => 1,
            Elem::I16 | Elem::U16 => 2,
            Elem::I32 | Elem::U32 | Elem::F32 | Elem::WChar => 4,
            Elem::ComplexF32 | Elem::FloatInt | Elem::TwoInt | Elem::ShortInt => 4,
            Elem::I64 | Elem::U64 | Elem::F64 => 8,
            Elem::ComplexF64 | Elem::DoubleInt | Elem::LongInt => 8,
            Elem::LongDouble | Elem::ComplexLongDouble | Elem::LongDoubleInt => 16,
        }
    }

    /// The MPI type group.
    pub const fn group(self) -> TypeGroup {
        match self {
            Elem::I8
            | Elem::U8
            | Elem::I16
            | Elem::U16
            | Elem::I32
            | Elem::U32
            | Elem::I64
            | Elem::U64 => TypeGroup::Integer,
            Elem::F32 | Elem::F64 | Elem::LongDouble => TypeGroup::Floating,
            Elem::ComplexF32 | Elem::ComplexF64 | Elem::ComplexLongDouble => TypeGroup::Complex,
            Elem::Bool => TypeGroup::Logical,
            Elem::Byte => TypeGroup::Byte,
            Elem::WChar => TypeGroup::Character,
            Elem::FloatInt
            | Elem::DoubleInt
            | Elem::LongInt
            | Elem::TwoInt
            | Elem::ShortInt
            | Elem::LongDoubleInt => TypeGroup::Pair,
        }
    }

    /// For a pair type, the byte offset of its `int` index (the value is at offset 0).
    pub const fn pair_index_offset(self) -> Option<usize> {
        match self {
            Elem::FloatInt | Elem::TwoInt | Elem::ShortInt => Some(4),
            Elem::DoubleInt | Elem::LongInt => Some(8),
            Elem::LongDoubleInt => Some(16),
            _ => None,
        }
    }

    /// The C type, e.g. `"int32_t"` or `"struct { double, int }"`.
    pub const fn c_name(self) -> &'static str {
        match self {
            Elem::I8 => "int8_t",
            Elem::U8 => "uint8_t",
            Elem::I16 => "int16_t",
            Elem::U16 => "uint16_t",
            Elem::I32 => "int32_t",
            Elem::U32 => "uint32_t",
            Elem::I64 => "int64_t",
            Elem::U64 => "uint64_t",
            Elem::F32 => "float",
            Elem::F64 => "double",
            Elem::LongDouble => "long double",
            Elem::Bool => "_Bool",
            Elem::WChar => "wchar_t",
            Elem::ComplexF32 => "float _Complex",
            Elem::ComplexF64 => "double _Complex",
            Elem::ComplexLongDouble => "long double _Complex",
            Elem::Byte => "MPI_BYTE",
            Elem::FloatInt => "struct { float, int }",
            Elem::DoubleInt => "struct { double, int }",
            Elem::LongInt => "struct { long, int }",
            Elem::TwoInt => "struct { int, int }",
            Elem::ShortInt => "struct { short, int }",
            Elem::LongDoubleInt => "struct { long double, int }",
        }
    }
}

impl fmt::Display for Elem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.c_name())
    }
}

/// Why a reduction could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The MPI standard does not define `op` on `elem`.
    #[error("{op} is not defined on {elem}")]
    NotDefined {
        /// The op.
        op: Op,
        /// The element type.
        elem: Elem,
    },
    /// The buffers differ in length, or do not hold a whole number of elements.
    #[error(
        "reduction buffers must hold the same whole number of {elem} elements \
         ({} bytes each): input has {input} bytes, inout {inout}",
        elem.size()
    )]
    Length {
        /// The element type.
        elem: Elem,
        /// Length of the input buffer, in bytes.
        input: usize,
        /// Length of the inout buffer, in bytes.
        inout: usize,
    },
}

/// Is `op` defined on `elem` by the MPI standard? (See the table in the [module
/// docs](self).)
pub const fn defined(op: Op, elem: Elem) -> bool {
    use TypeGroup as G;
    let g = elem.group();
    match op {
        Op::Replace | Op::NoOp => true,
        Op::Max | Op::Min => matches!(g, G::Integer | G::Floating),
        Op::Sum | Op::Prod => matches!(g, G::Integer | G::Floating | G::Complex),
        Op::Land | Op::Lor | Op::Lxor => matches!(g, G::Integer | G::Logical),
        Op::Band | Op::Bor | Op::Bxor => matches!(g, G::Integer | G::Byte),
        Op::Minloc | Op::Maxloc => matches!(g, G::Pair),
    }
}

/// `inout[i] = input[i] (op) inout[i]`, element by element (the semantics of
/// `MPI_Reduce_local(inbuf = input, inoutbuf = inout)`).
///
/// Both slices must hold the same whole number of `elem` elements; they may be unaligned.
/// On error `inout` is unchanged. Checks `op` on `elem` first ([`OpError::NotDefined`]),
/// then the lengths ([`OpError::Length`]).
pub fn reduce_local(op: Op, elem: Elem, input: &[u8], inout: &mut [u8]) -> Result<(), OpError> {
    if !defined(op, elem) {
        return Err(OpError::NotDefined { op, elem });
    }
    if input.len() != inout.len() || !input.len().is_multiple_of(elem.size()) {
        return Err(OpError::Length {
            elem,
            input: input.len(),
            inout: inout.len(),
        });
    }
    if kernel(op, elem, input, inout) {
        Ok(())
    } else {
        // Unreachable while `defined` and `kernel` agree (a test checks every pair).
        Err(OpError::NotDefined { op, elem })
    }
}

/// A kernel of one (op, element) pair: `inout[i] = input[i] op inout[i]`, over slices of
/// the same whole number of elements (at any alignment), which the caller checked.
pub type KernelFn = fn(&[u8], &mut [u8]);

/// The kernel of `op` on `elem` as a function of its own, for a reduction that runs it
/// many times: no checks and no dispatch on the op and element per call, which
/// [`reduce_local`] does (measured with callgrind: 150 instructions for a 4-float sum
/// through `reduce_local`). `None` where MPI does not define `op` on `elem`.
///
/// It computes what [`reduce_local`] computes, byte for byte: both run `kernel`.
pub fn kernel_fn(op: Op, elem: Elem) -> Option<KernelFn> {
    defined(op, elem).then(|| KERNELS[op as usize][elem as usize])
}

/// [`kernel`] of `Op::ALL[OP]` on `Elem::ALL[ELEM]`: the constants fold its matches away.
fn fixed<const OP: u8, const ELEM: u8>(input: &[u8], inout: &mut [u8]) {
    let done = kernel(Op::ALL[OP as usize], Elem::ALL[ELEM as usize], input, inout);
    debug_assert!(done, "kernel_fn gives only defined pairs");
}

/// The kernels of op `OP` on every element, in `Elem::ALL`'s order.
const fn row<const OP: u8>() -> [KernelFn; Elem::ALL.len()] {
    [
        fixed::<OP, 0>,
        fixed::<OP, 1>,
        fixed::<OP, 2>,
        fixed::<OP, 3>,
        fixed::<OP, 4>,
        fixed::<OP, 5>,
        fixed::<OP, 6>,
        fixed::<OP, 7>,
        fixed::<OP, 8>,
        fixed::<OP, 9>,
        fixed::<OP, 10>,
        fixed::<OP, 11>,
        fixed::<OP, 12>,
        fixed::<OP, 13>,
        fixed::<OP, 14>,
        fixed::<OP, 15>,
        fixed::<OP, 16>,
        fixed::<OP, 17>,
        fixed::<OP, 18>,
        fixed::<OP, 19>,
        fixed::<OP, 20>,
        fixed::<OP, 21>,
        fixed::<OP, 22>,
    ]
}

/// Every (op, element) kernel, at `[op as usize][elem as usize]`.
static KERNELS: [[KernelFn; Elem::ALL.len()]; Op::ALL.len()] = [
    row::<0>(),
    row::<1>(),
    row::<2>(),
    row::<3>(),
    row::<4>(),
    row::<5>(),
    row::<6>(),
    row::<7>(),
    row::<8>(),
    row::<9>(),
    row::<10>(),
    row::<11>(),
    row::<12>(),
    row::<13>(),
];

// `ALL` lists each enum in declaration order, which `fixed` and `KERNELS` index by.
const _: () = {
    let mut i = 0;
    while i < Op::ALL.len() {
        assert!(Op::ALL[i] as usize == i);
        i += 1;
    }
    let mut i = 0;
    while i < Elem::ALL.len() {
        assert!(Elem::ALL[i] as usize == i);
        i += 1;
    }
};

/// Run the kernel of (`op`, `elem`); false if there is none. The lengths are checked.
#[inline(always)]
fn kernel(op: Op, elem: Elem, input: &[u8], inout: &mut [u8]) -> bool {
    match op {
        Op::Replace => {
            inout.copy_from_slice(input);
            true
        }
        Op::NoOp => true,
        _ => match elem {
            Elem::I8 => integer::<i8>(op, input, inout),
            Elem::U8 => integer::<u8>(op, input, inout),
            Elem::I16 => integer::<i16>(op, input, inout),
            Elem::U16 => integer::<u16>(op, input, inout),
            Elem::I32 => integer::<i32>(op, input, inout),
            Elem::U32 => integer::<u32>(op, input, inout),
            Elem::I64 => integer::<i64>(op, input, inout),
            Elem::U64 => integer::<u64>(op, input, inout),
            Elem::F32 => floating::<f32>(op, input, inout),
            Elem::F64 => floating::<f64>(op, input, inout),
            Elem::ComplexF32 => complex::<f32>(op, input, inout),
            Elem::ComplexF64 => complex::<f64>(op, input, inout),
            Elem::Bool => logical::<u8>(op, input, inout),
            Elem::Byte => bitwise::<u8>(op, input, inout),
            Elem::WChar => false,
            Elem::FloatInt => loc::<f32, 4, 8>(op, input, inout),
            Elem::DoubleInt => loc::<f64, 8, 16>(op, input, inout),
            Elem::LongInt => loc::<i64, 8, 16>(op, input, inout),
            Elem::TwoInt => loc::<i32, 4, 8>(op, input, inout),
            Elem::ShortInt => loc::<i16, 4, 8>(op, input, inout),
            Elem::LongDouble | Elem::ComplexLongDouble | Elem::LongDoubleInt => {
                long_double::reduce(op, elem, input, inout)
            }
        },
    }
}

// ---------------------------------------------------------------------------------------
// Element access and the one loop every kernel is.

/// An element read from / written to native-endian bytes at any alignment.
trait Scalar: Copy {
    /// Bytes per element.
    const SIZE: usize;
    /// Read from `b` (`b.len() == SIZE`).
    fn load(b: &[u8]) -> Self;
    /// Write the value bytes into `b` (`b.len() == SIZE`); padding is not touched.
    fn store(self, b: &mut [u8]);
}

/// `inout[i] = f(input[i], inout[i])` for every element: the loop of every kernel, one
/// monomorphized copy per (op, type). `f` gets (input, inout).
///
/// Blocks of [`LANES`] elements go through a loop of fixed length, which the compiler
/// unrolls and vectorizes (each element is still combined on its own, so the result is
/// the same as one element at a time); the rest goes one by one.
#[inline(always)]
fn zip_with<T: Scalar>(input: &[u8], inout: &mut [u8], f: impl Fn(T, T) -> T) {
    let block = T::SIZE * LANES;
    let mut ins = input.chunks_exact(block);
    let mut outs = inout.chunks_exact_mut(block);
    for (a, b) in (&mut ins).zip(&mut outs) {
        for j in 0..LANES {
            let at = j * T::SIZE..(j + 1) * T::SIZE;
            f(T::load(&a[at.clone()]), T::load(&b[at.clone()])).store(&mut b[at]);
        }
    }
    for (a, b) in ins
        .remainder()
        .chunks_exact(T::SIZE)
        .zip(outs.into_remainder().chunks_exact_mut(T::SIZE))
    {
        f(T::load(a), T::load(b)).store(b);
    }
}

/// Elements per block of [`zip_with`].
const LANES: usize = 16;

macro_rules! primitive {
    ($($t:ty),*) => { $(
        impl Scalar for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn load(b: &[u8]) -> Self {
                <$t>::from_ne_bytes(b.try_into().expect("a chunk of the element size"))
            }
            #[inline(always)]
            fn store(self, b: &mut [u8]) {
                b.copy_from_slice(&self.to_ne_bytes());
            }
        }
    )* };
}
primitive!(i8, u8, i16, u16, i32, u32, i64, u64, f32, f64);

// ---------------------------------------------------------------------------------------
// Integers, logical and bit-wise.

/// A C integer type.
trait Int: Scalar + Ord + BitAnd<Output = Self> + BitOr<Output = Self> + BitXor<Output = Self> {
    const ZERO: Self;
    const ONE: Self;
    fn wrapping_add(self, other: Self) -> Self;
    fn wrapping_mul(self, other: Self) -> Self;
}

macro_rules! int {
    ($($t:ty),*) => { $(
        impl Int for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            #[inline(always)]
            fn wrapping_add(self, other: Self) -> Self {
                <$t>::wrapping_add(self, other)
            }
            #[inline(always)]
            fn wrapping_mul(self, other: Self) -> Self {
                <$t>::wrapping_mul(self, other)
            }
        }
    )* };
}
int!(i8, u8, i16, u16, i32, u32, i64, u64);

/// The C integer kernels: MAX, MIN, SUM, PROD, the logical and the bit-wise ops.
#[inline(always)]
fn integer<T: Int>(op: Op, input: &[u8], inout: &mut [u8]) -> bool {
    match op {
        Op::Max => zip_with(input, inout, |a: T, b: T| if b > a { b } else { a }),
        Op::Min => zip_with(input, inout, |a: T, b: T| if b < a { b } else { a }),
        Op::Sum => zip_with(input, inout, |a: T, b: T| a.wrapping_add(b)),
        Op::Prod => zip_with(input, inout, |a: T, b: T| a.wrapping_mul(b)),
        _ => return logical::<T>(op, input, inout) || bitwise::<T>(op, input, inout),
    }
    true
}

/// LAND, LOR, LXOR: nonzero is true; the result is 1 or 0.
#[inline(always)]
fn logical<T: Int>(op: Op, input: &[u8], inout: &mut [u8]) -> bool {
    #[inline(always)]
    fn truth<T: Int>(t: bool) -> T {
        if t {
            T::ONE
        } else {
            T::ZERO
        }
    }
    match op {
        Op::Land => zip_with(input, inout, |a: T, b: T| {
            truth((a != T::ZERO) & (b != T::ZERO))
        }),
        Op::Lor => zip_with(input, inout, |a: T, b: T| {
            truth((a != T::ZERO) | (b != T::ZERO))
        }),
        Op::Lxor => zip_with(input, inout, |a: T, b: T| {
            truth((a != T::ZERO) ^ (b != T::ZERO))
        }),
        _ => return false,
    }
    true
}

/// BAND, BOR, BXOR.
#[inline(always)]
fn bitwise<T: Int>(op: Op, input: &[u8], inout: &mut [u8]) -> bool {
    match op {
        Op::Band => zip_with(input, inout, |a: T, b: T| a & b),
        Op::Bor => zip_with(input, inout, |a: T, b: T| a | b),
        Op::Bxor => zip_with(input, inout, |a: T, b: T| a ^ b),
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------------------------------
// Floating point and complex.

/// `f32` or `f64`.
trait Float:
    Scalar + PartialOrd + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self>
{
}
impl Float for f32 {}
impl Float for f64 {}

/// The floating-point kernels: MAX, MIN (C's `?:`, see the module docs for NaN), SUM, PROD.
#[inline(always)]
fn floating<T: Float>(op: Op, input: &[u8], inout: &mut [u8]) -> bool {
    match op {
        Op::Max => zip_with(input, inout, |a: T, b: T| if b > a { b } else { a }),
        Op::Min => zip_with(input, inout, |a: T, b: T| if b < a { b } else { a }),
        Op::Sum => zip_with(input, inout, |a: T, b: T| a + b),
        Op::Prod => zip_with(input, inout, |a: T, b: T| a * b),
        _ => return false,
    }
    true
}

/// A C complex number: real part, then imaginary part.
#[derive(Clone, Copy)]
struct Complex<T> {
    re: T,
    im: T,
}

impl<T: Float> Scalar for Complex<T> {
    const SIZE: usize = 2 * T::SIZE;
    #[inline(always)]
    fn load(b: &[u8]) -> Self {
        let (re, im) = b.split_at(T::SIZE);
        Complex {
            re: T::load(re),
            im: T::load(im),
        }
    }
    #[inline(always)]
    fn store(self, b: &mut [u8]) {
        let (re, im) = b.split_at_mut(T::SIZE);
        self.re.store(re);
        self.im.store(im);
    }
}

/// The complex kernels: SUM, PROD.
#[inline(always)]
fn complex<T: Float>(op: Op, input: &[u8], inout: &mut [u8]) -> bool {
    match op {
        Op::Sum => zip_with(input, inout, |a: Complex<T>, b: Complex<T>| Complex {
            re: a.re + b.re,
            im: a.im + b.im,
        }),
        Op::Prod => zip_with(input, inout, |a: Complex<T>, b: Complex<T>| Complex {
            re: a.re * b.re - a.im * b.im,
            im: a.re * b.im + a.im * b.re,
        }),
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------------------------------
// MINLOC / MAXLOC.

/// A `struct { V value; int index; }` of `SIZE` bytes with the index at byte `IDX`.
#[derive(Clone, Copy)]
struct Loc<V, const IDX: usize, const SIZE: usize> {
    value: V,
    index: i32,
}

impl<V: Scalar, const IDX: usize, const SIZE: usize> Scalar for Loc<V, IDX, SIZE> {
    const SIZE: usize = SIZE;
    #[inline(always)]
    fn load(b: &[u8]) -> Self {
        Loc {
            value: V::load(&b[..V::SIZE]),
            index: i32::load(&b[IDX..IDX + 4]),
        }
    }
    #[inline(always)]
    fn store(self, b: &mut [u8]) {
        self.value.store(&mut b[..V::SIZE]);
        self.index.store(&mut b[IDX..IDX + 4]);
    }
}

/// MINLOC, MAXLOC on a pair type (ties: the smaller index; NaN: keep inout).
#[inline(always)]
fn loc<V: Scalar + PartialOrd, const IDX: usize, const SIZE: usize>(
    op: Op,
    input: &[u8],
    inout: &mut [u8],
) -> bool {
    type L<V, const I: usize, const S: usize> = Loc<V, I, S>;
    #[inline(always)]
    fn tie<V: Copy, const I: usize, const S: usize>(a: L<V, I, S>, b: L<V, I, S>) -> L<V, I, S> {
        Loc {
            value: b.value,
            index: a.index.min(b.index),
        }
    }
    match op {
        Op::Minloc => zip_with(input, inout, |a: L<V, IDX, SIZE>, b| {
            if a.value < b.value {
                a
            } else if a.value == b.value {
                tie(a, b)
            } else {
                b
            }
        }),
        Op::Maxloc => zip_with(input, inout, |a: L<V, IDX, SIZE>, b| {
            if a.value > b.value {
                a
            } else if a.value == b.value {
                tie(a, b)
            } else {
                b
            }
        }),
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------------------------------
// long double, through C.

/// The `long double` kernels, in `op_long_double.c`.
mod long_double {
    use super::{Elem, Op};
    use std::ffi::c_int;

    // Op codes of op_long_double.c.
    const MAX: c_int = 0;
    const MIN: c_int = 1;
    const SUM: c_int = 2;
    const PROD: c_int = 3;
    const MINLOC: c_int = 4;
    const MAXLOC: c_int = 5;

    /// A C kernel: `inout[i] = in[i] op inout[i]` for `n` elements; 0, or -1 if it does
    /// not do `op` (then it has not touched `inout`).
    type Kernel = unsafe extern "C" fn(c_int, *const u8, *mut u8, usize) -> c_int;

    extern "C" {
        fn zr_long_double_reduce(op: c_int, input: *const u8, inout: *mut u8, n: usize) -> c_int;
        fn zr_complex_long_double_reduce(
            op: c_int,
            input: *const u8,
            inout: *mut u8,
            n: usize,
        ) -> c_int;
        fn zr_long_double_int_reduce(
            op: c_int,
            input: *const u8,
            inout: *mut u8,
            n: usize,
        ) -> c_int;
        /// The C `sizeof`/`_Alignof` of the long double types, for the layout test.
        #[cfg(test)]
        pub(super) fn zr_long_double_layout(
            ld_size: *mut usize,
            ld_align: *mut usize,
            ldi_size: *mut usize,
            ldi_index_offset: *mut usize,
            mant_dig: *mut c_int,
        );
    }

    /// The kernel of (`op`, `elem`) for the three long double types; false if none.
    pub(super) fn reduce(op: Op, elem: Elem, input: &[u8], inout: &mut [u8]) -> bool {
        let code = match op {
            Op::Max => MAX,
            Op::Min => MIN,
            Op::Sum => SUM,
            Op::Prod => PROD,
            Op::Minloc => MINLOC,
            Op::Maxloc => MAXLOC,
            _ => return false,
        };
        let kernel: Kernel = match elem {
            Elem::LongDouble => zr_long_double_reduce,
            Elem::ComplexLongDouble => zr_complex_long_double_reduce,
            Elem::LongDoubleInt => zr_long_double_int_reduce,
            _ => return false,
        };
        assert!(
            input.len() == inout.len() && input.len().is_multiple_of(elem.size()),
            "long double kernel called with unchecked lengths"
        );
        let n = input.len() / elem.size();
        // SAFETY: the C kernel reads `n * elem.size()` bytes from `input` and reads and
        // writes that many bytes of `inout`, through `memcpy` (no alignment needed), and
        // keeps no pointer. Both slices are exactly that long (asserted above), `inout` is
        // exclusively borrowed so the two do not overlap, every bit pattern is a valid
        // `u8`, and `elem.size()` is the C `sizeof` of the element (checked by a test
        // against the C compiler). When `n == 0` the (dangling) pointers are not used.
        let status = unsafe { kernel(code, input.as_ptr(), inout.as_mut_ptr(), n) };
        status == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// All (op, elem) pairs.
    fn pairs() -> impl Iterator<Item = (Op, Elem)> {
        Op::ALL
            .into_iter()
            .flat_map(|op| Elem::ALL.into_iter().map(move |e| (op, e)))
    }

    /// Deterministic pseudo-random bytes (xorshift), for tests that need no proptest.
    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn kernel_fn_is_reduce_local_for_every_pair() {
        for (op, elem) in pairs() {
            let Some(f) = kernel_fn(op, elem) else {
                assert!(
                    !defined(op, elem),
                    "{op:?} on {elem:?} is defined: a kernel"
                );
                continue;
            };
            let n = elem.size() * 37;
            let (input, inout) = (bytes(1, n), bytes(2, n));
            let mut got = inout.clone();
            f(&input, &mut got);
            assert_eq!(got, run(op, elem, &input, &inout), "{op:?} on {elem:?}");
        }
    }

    fn run(op: Op, elem: Elem, input: &[u8], inout: &[u8]) -> Vec<u8> {
        let mut out = inout.to_vec();
        reduce_local(op, elem, input, &mut out).unwrap();
        out
    }

    // -- x87 long double helpers --------------------------------------------------------

    /// An 80-bit long double in its 16 bytes (padding zero).
    fn ld(sign_exp: u16, mant: u64) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&mant.to_le_bytes());
        b[8..10].copy_from_slice(&sign_exp.to_le_bytes());
        b
    }

    /// The long double of an integer (exact: 64-bit significand).
    fn ld_int(v: i64) -> [u8; 16] {
        if v == 0 {
            return ld(0, 0);
        }
        let sign = if v < 0 { 0x8000 } else { 0 };
        let m = v.unsigned_abs();
        let shift = m.leading_zeros();
        ld(sign | (0x3FFF + 63 - shift) as u16, m << shift)
    }

    /// The integer a long double holds, if it is one that fits an i128.
    fn ld_to_int(b: &[u8]) -> Option<i128> {
        let mant = u64::from_le_bytes(b[..8].try_into().unwrap());
        let se = u16::from_le_bytes(b[8..10].try_into().unwrap());
        let (neg, exp) = (se & 0x8000 != 0, i32::from(se & 0x7FFF));
        if exp == 0 && mant == 0 {
            return Some(0);
        }
        let e = exp - 0x3FFF - 63; // value = mant * 2^e
        let v = if e >= 0 {
            i128::from(mant).checked_shl(e as u32)?
        } else {
            let s = (-e) as u32;
            if s >= 64 || mant & ((1u64 << s) - 1) != 0 {
                return None;
            }
            i128::from(mant >> s)
        };
        Some(if neg { -v } else { v })
    }

    // -- a scalar reference, written independently of the kernels -----------------------

    fn int_info(elem: Elem) -> Option<(usize, bool)> {
        Some(match elem {
            Elem::I8 => (1, true),
            Elem::U8 | Elem::Bool | Elem::Byte => (1, false),
            Elem::I16 => (2, true),
            Elem::U16 => (2, false),
            Elem::I32 | Elem::WChar => (4, true),
            Elem::U32 => (4, false),
            Elem::I64 => (8, true),
            Elem::U64 => (8, false),
            _ => return None,
        })
    }

    fn get_int(b: &[u8], signed: bool) -> i128 {
        let mut w = [0u8; 16];
        w[..b.len()].copy_from_slice(b);
        let u = i128::from_le_bytes(w);
        let bits = 8 * b.len() as u32;
        if signed && (u >> (bits - 1)) & 1 == 1 {
            u - (1i128 << bits)
        } else {
            u
        }
    }

    fn put_int(v: i128, out: &mut [u8]) {
        let n = out.len();
        out.copy_from_slice(&v.to_le_bytes()[..n]); // truncation = wrapping
    }

    /// One element of `op` on (a = input, b = inout), or None where the reference does not
    /// compute (long double arithmetic). Padding bytes come from `b`.
    fn reference_elem(op: Op, elem: Elem, a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
        let mut out = b.to_vec();
        match op {
            Op::Replace => return Some(a.to_vec()),
            Op::NoOp => return Some(out),
            _ => {}
        }
        if let Some((_, signed)) = int_info(elem) {
            let (x, y) = (get_int(a, signed), get_int(b, signed));
            let r = match op {
                Op::Max => x.max(y),
                Op::Min => x.min(y),
                Op::Sum => x + y,
                Op::Prod => x.wrapping_mul(y),
                Op::Land => i128::from(x != 0 && y != 0),
                Op::Lor => i128::from(x != 0 || y != 0),
                Op::Lxor => i128::from((x != 0) != (y != 0)),
                Op::Band => x & y,
                Op::Bor => x | y,
                Op::Bxor => x ^ y,
                _ => unreachable!(),
            };
            put_int(r, &mut out);
            return Some(out);
        }
        let f32_at =
            |s: &[u8], i: usize| f64::from(f32::from_le_bytes(s[i..i + 4].try_into().unwrap()));
        let f64_at = |s: &[u8], i: usize| f64::from_le_bytes(s[i..i + 8].try_into().unwrap());
        // C's `b > a ? b : a`, spelled with partial_cmp.
        let pick = |x: f64, y: f64, want: std::cmp::Ordering| y.partial_cmp(&x) == Some(want);
        match elem {
            Elem::F32 | Elem::F64 => {
                let narrow = elem == Elem::F32;
                let (x, y) = if narrow {
                    (f32_at(a, 0), f32_at(b, 0))
                } else {
                    (f64_at(a, 0), f64_at(b, 0))
                };
                let r = match op {
                    Op::Max | Op::Min => {
                        let want = if op == Op::Max {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Less
                        };
                        return Some(if pick(x, y, want) {
                            b.to_vec()
                        } else {
                            a.to_vec()
                        });
                    }
                    // f32 ops done in f64 and rounded once are correctly rounded.
                    Op::Sum => x + y,
                    Op::Prod => x * y,
                    _ => unreachable!(),
                };
                if narrow {
                    out.copy_from_slice(&(r as f32).to_le_bytes());
                } else {
                    out.copy_from_slice(&r.to_le_bytes());
                }
                Some(out)
            }
            Elem::ComplexF32 | Elem::ComplexF64 => {
                let w = if elem == Elem::ComplexF32 { 4 } else { 8 };
                let get = |s: &[u8], i| if w == 4 { f32_at(s, i) } else { f64_at(s, i) };
                let (ar, ai, br, bi) = (get(a, 0), get(a, w), get(b, 0), get(b, w));
                let round = |v: f64| if w == 4 { f64::from(v as f32) } else { v };
                let (re, im) = match op {
                    Op::Sum => (ar + br, ai + bi),
                    Op::Prod => (
                        round(round(ar * br) - round(ai * bi)),
                        round(round(ar * bi) + round(ai * br)),
                    ),
                    _ => unreachable!(),
                };
                if w == 4 {
                    out[..4].copy_from_slice(&(re as f32).to_le_bytes());
                    out[4..].copy_from_slice(&(im as f32).to_le_bytes());
                } else {
                    out[..8].copy_from_slice(&re.to_le_bytes());
                    out[8..].copy_from_slice(&im.to_le_bytes());
                }
                Some(out)
            }
            Elem::FloatInt | Elem::DoubleInt | Elem::LongInt | Elem::TwoInt | Elem::ShortInt => {
                let idx = elem.pair_index_offset().unwrap();
                let (x, y) = match elem {
                    Elem::FloatInt => (f32_at(a, 0), f32_at(b, 0)),
                    Elem::DoubleInt => (f64_at(a, 0), f64_at(b, 0)),
                    // i64 and smaller compared exactly through i128 -> sign, then magnitude.
                    _ => {
                        let w = if elem == Elem::LongInt {
                            8
                        } else if elem == Elem::TwoInt {
                            4
                        } else {
                            2
                        };
                        let (x, y) = (get_int(&a[..w], true), get_int(&b[..w], true));
                        let ord = x.cmp(&y);
                        return Some(loc_ref(op, ord.into(), a, b, idx, w));
                    }
                };
                let w = if elem == Elem::FloatInt { 4 } else { 8 };
                Some(loc_ref(op, x.partial_cmp(&y), a, b, idx, w))
            }
            _ => None,
        }
    }

    /// MINLOC/MAXLOC given how input's value compares with inout's.
    fn loc_ref(
        op: Op,
        ord: Option<std::cmp::Ordering>,
        a: &[u8],
        b: &[u8],
        idx: usize,
        w: usize,
    ) -> Vec<u8> {
        use std::cmp::Ordering::*;
        let mut out = b.to_vec();
        let ia = i32::from_le_bytes(a[idx..idx + 4].try_into().unwrap());
        let ib = i32::from_le_bytes(b[idx..idx + 4].try_into().unwrap());
        let take_input = match (op, ord) {
            (Op::Minloc, Some(Less)) | (Op::Maxloc, Some(Greater)) => true,
            (_, Some(Equal)) => {
                out[idx..idx + 4].copy_from_slice(&ia.min(ib).to_le_bytes());
                false
            }
            _ => false,
        };
        if take_input {
            out[..w].copy_from_slice(&a[..w]);
            out[idx..idx + 4].copy_from_slice(&a[idx..idx + 4]);
        }
        out
    }

    /// Compare a kernel result with the reference, element by element; a NaN matches any
    /// NaN when arithmetic produced it (its payload is the hardware's choice).
    fn same(elem: Elem, op: Op, got: &[u8], want: &[u8]) -> bool {
        if got == want {
            return true;
        }
        if !matches!(op, Op::Sum | Op::Prod) {
            return false;
        }
        let lanes: Vec<(usize, usize)> = match elem {
            Elem::F32 | Elem::ComplexF32 => (0..elem.size()).step_by(4).map(|i| (i, 4)).collect(),
            Elem::F64 | Elem::ComplexF64 => (0..elem.size()).step_by(8).map(|i| (i, 8)).collect(),
            _ => return false,
        };
        got.chunks_exact(elem.size())
            .zip(want.chunks_exact(elem.size()))
            .all(|(g, w)| {
                lanes.iter().all(|&(i, n)| {
                    let nan = |s: &[u8]| {
                        if n == 4 {
                            f32::from_le_bytes(s[i..i + 4].try_into().unwrap()).is_nan()
                        } else {
                            f64::from_le_bytes(s[i..i + 8].try_into().unwrap()).is_nan()
                        }
                    };
                    g[i..i + n] == w[i..i + n] || (nan(g) && nan(w))
                })
            })
    }

    fn reference(op: Op, elem: Elem, input: &[u8], inout: &[u8]) -> Option<Vec<u8>> {
        let s = elem.size();
        let mut out = Vec::with_capacity(inout.len());
        for (a, b) in input.chunks_exact(s).zip(inout.chunks_exact(s)) {
            out.extend(reference_elem(op, elem, a, b)?);
        }
        Some(out)
    }

    // -- the table -----------------------------------------------------------------------

    #[test]
    fn defined_table() {
        let count = pairs().filter(|&(op, e)| defined(op, e)).count();
        assert_eq!(count, 162);
        for e in Elem::ALL {
            let d = |op| defined(op, e);
            assert!(d(Op::Replace) && d(Op::NoOp), "{e:?}");
        }
        use Elem::*;
        assert!(defined(Op::Sum, I8) && defined(Op::Prod, ComplexLongDouble));
        assert!(defined(Op::Max, LongDouble) && !defined(Op::Max, ComplexF32));
        assert!(!defined(Op::Sum, Bool) && defined(Op::Lxor, Bool) && !defined(Op::Band, Bool));
        assert!(defined(Op::Bxor, Byte) && !defined(Op::Lor, Byte) && !defined(Op::Max, Byte));
        assert!(defined(Op::Band, U64) && defined(Op::Land, I16) && !defined(Op::Band, F64));
        assert!(!defined(Op::Sum, WChar) && !defined(Op::Max, WChar) && !defined(Op::Bor, WChar));
        assert!(defined(Op::Minloc, ShortInt) && !defined(Op::Minloc, I32));
        assert!(!defined(Op::Max, DoubleInt) && !defined(Op::Sum, TwoInt));
    }

    #[test]
    fn every_pair_has_a_kernel_iff_defined() {
        for (op, elem) in pairs() {
            let input = bytes(1, 3 * elem.size());
            let mut inout = bytes(2, 3 * elem.size());
            assert_eq!(
                kernel(op, elem, &input, &mut inout),
                defined(op, elem),
                "{op} on {elem}"
            );
        }
    }

    #[test]
    fn undefined_pairs_error_and_leave_inout() {
        let mut n = 0;
        for (op, elem) in pairs().filter(|&(op, e)| !defined(op, e)) {
            n += 1;
            let input = bytes(3, 2 * elem.size());
            let before = bytes(4, 2 * elem.size());
            let mut inout = before.clone();
            assert_eq!(
                reduce_local(op, elem, &input, &mut inout),
                Err(OpError::NotDefined { op, elem })
            );
            assert_eq!(inout, before);
            // Undefined wins over a bad length.
            assert!(matches!(
                reduce_local(op, elem, &input[1..], &mut inout),
                Err(OpError::NotDefined { .. })
            ));
        }
        assert_eq!(n, 14 * 23 - 162);
    }

    #[test]
    fn layout_matches_c() {
        #[repr(C)]
        struct P<V>(V, i32);
        fn check<T>(e: Elem) {
            assert_eq!(
                (e.size(), e.align()),
                (std::mem::size_of::<T>(), std::mem::align_of::<T>()),
                "{e:?}"
            );
        }
        check::<i8>(Elem::I8);
        check::<u8>(Elem::U8);
        check::<i16>(Elem::I16);
        check::<u16>(Elem::U16);
        check::<i32>(Elem::I32);
        check::<u32>(Elem::U32);
        check::<i64>(Elem::I64);
        check::<u64>(Elem::U64);
        check::<f32>(Elem::F32);
        check::<f64>(Elem::F64);
        check::<bool>(Elem::Bool);
        check::<libc::wchar_t>(Elem::WChar);
        check::<[f32; 2]>(Elem::ComplexF32);
        check::<[f64; 2]>(Elem::ComplexF64);
        check::<u8>(Elem::Byte);
        check::<P<f32>>(Elem::FloatInt);
        check::<P<f64>>(Elem::DoubleInt);
        check::<P<libc::c_long>>(Elem::LongInt);
        check::<P<i32>>(Elem::TwoInt);
        check::<P<i16>>(Elem::ShortInt);
        assert_eq!(std::mem::offset_of!(P<f32>, 1), 4);
        assert_eq!(
            std::mem::offset_of!(P<f64>, 1),
            Elem::DoubleInt.pair_index_offset().unwrap()
        );
        assert_eq!(
            std::mem::offset_of!(P<i16>, 1),
            Elem::ShortInt.pair_index_offset().unwrap()
        );
        let (mut lds, mut lda, mut ldis, mut ldio, mut dig) = (0, 0, 0, 0, 0);
        // SAFETY: the C function writes one value through each pointer, all valid locals.
        unsafe {
            long_double::zr_long_double_layout(&mut lds, &mut lda, &mut ldis, &mut ldio, &mut dig)
        };
        assert_eq!(dig, 64, "long double is not x87 extended");
        assert_eq!(
            (lds, lda),
            (Elem::LongDouble.size(), Elem::LongDouble.align())
        );
        assert_eq!(2 * lds, Elem::ComplexLongDouble.size());
        assert_eq!(ldis, Elem::LongDoubleInt.size());
        assert_eq!(Some(ldio), Elem::LongDoubleInt.pair_index_offset());
        for e in Elem::ALL {
            assert_eq!(e.size() % e.align(), 0, "{e:?}");
            assert_eq!(
                e.pair_index_offset().is_some(),
                e.group() == TypeGroup::Pair
            );
        }
    }

    // -- lengths -------------------------------------------------------------------------

    #[test]
    fn length_errors() {
        for elem in Elem::ALL {
            let s = elem.size();
            let input = bytes(5, 4 * s);
            let before = bytes(6, 4 * s);
            let mut inout = before.clone();
            let op = Op::Replace;
            let want = |i: usize, o: usize| {
                Err(OpError::Length {
                    elem,
                    input: i,
                    inout: o,
                })
            };
            // Mismatched lengths.
            assert_eq!(
                reduce_local(op, elem, &input[..3 * s], &mut inout),
                want(3 * s, 4 * s)
            );
            assert_eq!(
                reduce_local(op, elem, &input, &mut inout[..2 * s]),
                want(4 * s, 2 * s)
            );
            if s > 1 {
                // Ragged: the same length but not a whole number of elements.
                assert_eq!(
                    reduce_local(op, elem, &input[1..], &mut inout[1..]),
                    want(4 * s - 1, 4 * s - 1)
                );
            }
            assert_eq!(inout, before);
            // Empty is fine, for every defined op.
            for op in Op::ALL.into_iter().filter(|&op| defined(op, elem)) {
                reduce_local(op, elem, &[], &mut []).unwrap();
            }
        }
        let e = OpError::Length {
            elem: Elem::DoubleInt,
            input: 16,
            inout: 24,
        };
        assert!(e.to_string().contains("16 bytes each"), "{e}");
        let e = OpError::NotDefined {
            op: Op::Sum,
            elem: Elem::Bool,
        };
        assert_eq!(e.to_string(), "MPI_SUM is not defined on _Bool");
    }

    // -- every defined pair against the reference -----------------------------------------

    #[test]
    fn every_defined_pair_matches_reference() {
        let mut checked = 0;
        for (op, elem) in pairs().filter(|&(op, e)| defined(op, e)) {
            for seed in 0..4 {
                let n = 37;
                let input = bytes(10 + seed, n * elem.size());
                let mut inout = bytes(20 + seed, n * elem.size());
                // Some equal elements, for ties.
                for i in (0..n).step_by(5) {
                    let r = i * elem.size()..(i + 1) * elem.size();
                    inout[r.clone()].copy_from_slice(&input[r]);
                }
                let Some(want) = reference(op, elem, &input, &inout) else {
                    continue;
                };
                let got = run(op, elem, &input, &inout);
                assert!(
                    same(elem, op, &got, &want),
                    "{op} on {elem}: {got:?} != {want:?}"
                );
                checked += 1;
            }
        }
        // Everything but the 8 long double arithmetic pairs (tested below).
        assert_eq!(checked, 4 * (162 - 8));
    }

    #[test]
    fn unaligned_buffers() {
        for (op, elem) in pairs().filter(|&(op, e)| defined(op, e)) {
            let n = 19;
            let len = n * elem.size();
            let input = bytes(30, len);
            let inout = bytes(31, len);
            let aligned = run(op, elem, &input, &inout);
            for (da, db) in [(1, 3), (3, 0), (7, 5)] {
                let mut a = vec![0u8; len + da];
                let mut b = vec![0u8; len + db];
                a[da..].copy_from_slice(&input);
                b[db..].copy_from_slice(&inout);
                reduce_local(op, elem, &a[da..], &mut b[db..]).unwrap();
                assert!(
                    same(elem, op, &b[db..], &aligned),
                    "{op} on {elem} at +{da}/+{db}"
                );
            }
        }
    }

    // -- specific semantics ----------------------------------------------------------------

    fn ints<T: Copy>(v: &[T], f: impl Fn(T) -> Vec<u8>) -> Vec<u8> {
        v.iter().flat_map(|&x| f(x)).collect()
    }

    #[test]
    fn wrapping_integer_sums_and_products() {
        let a = ints(&[i32::MAX, i32::MIN, -1, 7], |x| x.to_ne_bytes().to_vec());
        let b = ints(&[1, -1, i32::MIN, -3], |x| x.to_ne_bytes().to_vec());
        let want = ints(&[i32::MIN, i32::MAX, i32::MAX, 4], |x| {
            x.to_ne_bytes().to_vec()
        });
        assert_eq!(run(Op::Sum, Elem::I32, &a, &b), want);
        let want = ints(&[i32::MAX.wrapping_mul(1), i32::MIN, i32::MIN, -21], |x| {
            x.to_ne_bytes().to_vec()
        });
        assert_eq!(run(Op::Prod, Elem::I32, &a, &b), want);
        assert_eq!(run(Op::Sum, Elem::U8, &[200, 255], &[100, 1]), vec![44, 0]);
        assert_eq!(run(Op::Prod, Elem::U8, &[16, 255], &[16, 255]), vec![0, 1]);
        let a = u64::MAX.to_ne_bytes();
        assert_eq!(run(Op::Prod, Elem::U64, &a, &a), 1u64.to_ne_bytes());
        assert_eq!(
            run(
                Op::Sum,
                Elem::I64,
                &i64::MAX.to_ne_bytes(),
                &1i64.to_ne_bytes()
            ),
            i64::MIN.to_ne_bytes()
        );
        assert_eq!(
            run(
                Op::Sum,
                Elem::I16,
                &i16::MIN.to_ne_bytes(),
                &(-1i16).to_ne_bytes()
            ),
            i16::MAX.to_ne_bytes()
        );
    }

    #[test]
    fn signed_and_unsigned_compare_differently() {
        let a = [0x80u8, 0x01];
        let b = [0x01u8, 0xFF];
        assert_eq!(run(Op::Max, Elem::I8, &a, &b), vec![0x01, 0x01]);
        assert_eq!(run(Op::Max, Elem::U8, &a, &b), vec![0x80, 0xFF]);
        assert_eq!(run(Op::Min, Elem::I8, &a, &b), vec![0x80, 0xFF]);
        assert_eq!(run(Op::Min, Elem::U8, &a, &b), vec![0x01, 0x01]);
    }

    #[test]
    fn logical_ops_normalize() {
        let a = [0u8, 0, 7, 0x80];
        let b = [0u8, 3, 0, 0xFF];
        for elem in [Elem::Bool, Elem::U8, Elem::I8] {
            assert_eq!(run(Op::Land, elem, &a, &b), vec![0, 0, 0, 1]);
            assert_eq!(run(Op::Lor, elem, &a, &b), vec![0, 1, 1, 1]);
            assert_eq!(run(Op::Lxor, elem, &a, &b), vec![0, 1, 1, 0]);
        }
        // Wider types: a value whose low byte is zero is still true.
        let a = ints(&[0x100u32, 0, 0x8000_0000], |x| x.to_ne_bytes().to_vec());
        let b = ints(&[0x1_0000u32, 0x200, 0x8000_0000], |x| {
            x.to_ne_bytes().to_vec()
        });
        let want = |v: [u32; 3]| ints(&v, |x| x.to_ne_bytes().to_vec());
        assert_eq!(run(Op::Land, Elem::U32, &a, &b), want([1, 0, 1]));
        assert_eq!(run(Op::Lor, Elem::U32, &a, &b), want([1, 1, 1]));
        assert_eq!(run(Op::Lxor, Elem::U32, &a, &b), want([0, 1, 0]));
        let a = ints(&[i64::MIN, 0], |x| x.to_ne_bytes().to_vec());
        let b = ints(&[-1i64, 0], |x| x.to_ne_bytes().to_vec());
        assert_eq!(
            run(Op::Land, Elem::I64, &a, &b),
            ints(&[1i64, 0], |x| x.to_ne_bytes().to_vec())
        );
    }

    #[test]
    fn bitwise_ops() {
        let a = [0b1100u8, 0xF0];
        let b = [0b1010u8, 0x0F];
        for elem in [Elem::Byte, Elem::U8, Elem::I8] {
            assert_eq!(run(Op::Band, elem, &a, &b), vec![0b1000, 0x00]);
            assert_eq!(run(Op::Bor, elem, &a, &b), vec![0b1110, 0xFF]);
            assert_eq!(run(Op::Bxor, elem, &a, &b), vec![0b0110, 0xFF]);
        }
    }

    fn f64s(v: &[f64]) -> Vec<u8> {
        ints(v, |x| x.to_ne_bytes().to_vec())
    }

    #[test]
    fn float_min_max_nan_and_zero() {
        let nan_a = f64::from_bits(0x7FF8_0000_0000_0001);
        let nan_b = f64::from_bits(0x7FF8_0000_0000_0002);
        let a = f64s(&[1.0, nan_a, 2.0, nan_a, 0.0, -0.0]);
        let b = f64s(&[2.0, 3.0, nan_b, nan_b, -0.0, 0.0]);
        // Ties and unordered pairs give the input (a), bit for bit.
        let max = run(Op::Max, Elem::F64, &a, &b);
        let want: Vec<u64> = vec![
            2f64.to_bits(),
            nan_a.to_bits(),
            2f64.to_bits(),
            nan_a.to_bits(),
            0,
            1 << 63,
        ];
        let got: Vec<u64> = max
            .chunks(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, want);
        let min = run(Op::Min, Elem::F64, &a, &b);
        let want: Vec<u64> = vec![
            1f64.to_bits(),
            nan_a.to_bits(),
            2f64.to_bits(),
            nan_a.to_bits(),
            0,
            1 << 63,
        ];
        let got: Vec<u64> = min
            .chunks(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, want);
        // f32 likewise.
        let a: Vec<u8> = [f32::NAN, 1.0, -1.0]
            .iter()
            .flat_map(|x| x.to_ne_bytes())
            .collect();
        let b: Vec<u8> = [5.0f32, f32::NAN, -2.0]
            .iter()
            .flat_map(|x| x.to_ne_bytes())
            .collect();
        let got: Vec<f32> = run(Op::Max, Elem::F32, &a, &b)
            .chunks(4)
            .map(|c| f32::from_ne_bytes(c.try_into().unwrap()))
            .collect();
        assert!(got[0].is_nan() && got[1] == 1.0 && got[2] == -1.0);
    }

    #[test]
    fn float_sums_are_not_reassociated() {
        // Each element on its own: (1e16 + 1) in f64 is 1e16, per element.
        let a = f64s(&[1e16, 0.1, f64::INFINITY]);
        let b = f64s(&[1.0, 0.2, f64::NEG_INFINITY]);
        let got = run(Op::Sum, Elem::F64, &a, &b);
        assert_eq!(&got[..16], &f64s(&[1e16, 0.1 + 0.2])[..]);
        assert!(f64::from_ne_bytes(got[16..].try_into().unwrap()).is_nan());
    }

    #[test]
    fn complex_products() {
        let c32 = |v: &[(f32, f32)]| -> Vec<u8> {
            v.iter()
                .flat_map(|&(r, i)| [r.to_ne_bytes(), i.to_ne_bytes()])
                .flatten()
                .collect()
        };
        let c64 = |v: &[(f64, f64)]| -> Vec<u8> {
            v.iter()
                .flat_map(|&(r, i)| [r.to_ne_bytes(), i.to_ne_bytes()])
                .flatten()
                .collect()
        };
        // (1+2i)(3+4i) = -5+10i; i*i = -1; (2-1i)(0.5+0i) = 1-0.5i
        let a = [(1.0, 2.0), (0.0, 1.0), (2.0, -1.0)];
        let b = [(3.0, 4.0), (0.0, 1.0), (0.5, 0.0)];
        let want = [(-5.0, 10.0), (-1.0, 0.0), (1.0, -0.5)];
        assert_eq!(
            run(Op::Prod, Elem::ComplexF64, &c64(&a), &c64(&b)),
            c64(&want)
        );
        let f = |v: [(f64, f64); 3]| v.map(|(r, i)| (r as f32, i as f32));
        assert_eq!(
            run(Op::Prod, Elem::ComplexF32, &c32(&f(a)), &c32(&f(b))),
            c32(&f(want))
        );
        assert_eq!(
            run(Op::Sum, Elem::ComplexF64, &c64(&a), &c64(&b)),
            c64(&[(4.0, 6.0), (0.0, 2.0), (2.5, -1.0)])
        );
        // Rounding per product: (1+e)(1-e) with e = 2^-30 in f32 rounds each product.
        let e = (2.0f32).powi(-30);
        let got = run(
            Op::Prod,
            Elem::ComplexF32,
            &c32(&[(1.0 + e * 4096.0, e)]),
            &c32(&[(1.0, -e)]),
        );
        let want_re = (1.0 + e * 4096.0) * 1.0 - e * -e;
        let want_im = (1.0 + e * 4096.0) * -e + e * 1.0;
        assert_eq!(got, c32(&[(want_re, want_im)]));
    }

    #[test]
    fn minloc_maxloc_ties_and_padding() {
        // struct { double, int }: value, index, 4 padding bytes.
        let di = |v: f64, i: i32, pad: u8| -> Vec<u8> {
            let mut b = v.to_ne_bytes().to_vec();
            b.extend(i.to_ne_bytes());
            b.extend([pad; 4]);
            b
        };
        let a: Vec<u8> = [
            di(1.0, 5, 0x11),
            di(2.0, 1, 0x11),
            di(3.0, 9, 0x11),
            di(f64::NAN, 0, 0x11),
            di(4.0, 4, 0x11),
        ]
        .concat();
        let b: Vec<u8> = [
            di(1.0, 2, 0xEE),
            di(2.0, 3, 0xEE),
            di(0.5, 7, 0xEE),
            di(1.0, 8, 0xEE),
            di(f64::NAN, 6, 0xEE),
        ]
        .concat();
        let min = run(Op::Minloc, Elem::DoubleInt, &a, &b);
        let want: Vec<u8> = [
            di(1.0, 2, 0xEE),
            di(2.0, 1, 0xEE),
            di(0.5, 7, 0xEE),
            di(1.0, 8, 0xEE),
            di(f64::NAN, 6, 0xEE),
        ]
        .concat();
        assert_eq!(min, want);
        let max = run(Op::Maxloc, Elem::DoubleInt, &a, &b);
        let want: Vec<u8> = [
            di(1.0, 2, 0xEE),
            di(2.0, 1, 0xEE),
            di(3.0, 9, 0xEE),
            di(1.0, 8, 0xEE),
            di(f64::NAN, 6, 0xEE),
        ]
        .concat();
        assert_eq!(max, want);
        // struct { short, int }: padding between value and index is kept.
        let si = |v: i16, i: i32| -> Vec<u8> {
            [
                v.to_ne_bytes().to_vec(),
                vec![0xAB; 2],
                i.to_ne_bytes().to_vec(),
            ]
            .concat()
        };
        let a = [si(-3, 4), si(7, -1), si(7, 2)].concat();
        let mut b = [si(-3, 6), si(7, 1), si(-8, 0)].concat();
        b[2] = 0xCD;
        let got = run(Op::Minloc, Elem::ShortInt, &a, &b);
        let mut want = [si(-3, 4), si(7, -1), si(-8, 0)].concat();
        want[2] = 0xCD;
        assert_eq!(got, want);
        let got = run(
            Op::Maxloc,
            Elem::TwoInt,
            &ints(&[5, 1, 5, 9], |x: i32| x.to_ne_bytes().to_vec()),
            &ints(&[5, 0, 6, 3], |x: i32| x.to_ne_bytes().to_vec()),
        );
        assert_eq!(got, ints(&[5, 0, 6, 3], |x: i32| x.to_ne_bytes().to_vec()));
        // long int: compares all 64 bits.
        let li = |v: i64, i: i32| -> Vec<u8> {
            [
                v.to_ne_bytes().to_vec(),
                i.to_ne_bytes().to_vec(),
                vec![0; 4],
            ]
            .concat()
        };
        let got = run(
            Op::Maxloc,
            Elem::LongInt,
            &li(1 << 40, 3),
            &li((1 << 40) - 1, 0),
        );
        assert_eq!(got, li(1 << 40, 3));
        let got = run(
            Op::Minloc,
            Elem::FloatInt,
            &ints(&[(-0.0f32).to_bits() as i32, 9], |x| {
                x.to_ne_bytes().to_vec()
            }),
            &ints(&[0, 4], |x: i32| x.to_ne_bytes().to_vec()),
        );
        // -0.0 == +0.0: inout's value, the smaller index.
        assert_eq!(got, ints(&[0, 4], |x: i32| x.to_ne_bytes().to_vec()));
    }

    #[test]
    fn replace_and_no_op() {
        for elem in Elem::ALL {
            let input = bytes(40, 5 * elem.size());
            let inout = bytes(41, 5 * elem.size());
            assert_eq!(run(Op::Replace, elem, &input, &inout), input);
            assert_eq!(run(Op::NoOp, elem, &input, &inout), inout);
        }
        assert!(
            !Op::Replace.is_commutative() && !Op::NoOp.is_commutative() && Op::Sum.is_commutative()
        );
    }

    // -- long double ------------------------------------------------------------------------

    /// Results computed by gcc 12 on x86_64 (`long double` arithmetic, printed as
    /// sign/exponent and significand).
    #[test]
    fn long_double_known_bits() {
        let one = ld(0x3FFF, 1 << 63);
        type Case = (Op, [u8; 16], [u8; 16], [u8; 16]);
        let cases: &[Case] = &[
            // 1 + 2^-63: exact in 64 bits, not in a double.
            (
                Op::Sum,
                one,
                ld(0x3FC0, 1 << 63),
                ld(0x3FFF, 0x8000_0000_0000_0001),
            ),
            // 1 + 2^-64: a tie, to even.
            (Op::Sum, one, ld(0x3FBF, 1 << 63), one),
            // 1 + 3*2^-65: rounds up.
            (
                Op::Sum,
                one,
                ld(0x3FBF, 0xC000_0000_0000_0000),
                ld(0x3FFF, 0x8000_0000_0000_0001),
            ),
            // (1 + 2^-63)^2 = 1 + 2^-62 + 2^-126 -> 1 + 2^-62.
            (
                Op::Prod,
                ld(0x3FFF, 0x8000_0000_0000_0001),
                ld(0x3FFF, 0x8000_0000_0000_0001),
                ld(0x3FFF, 0x8000_0000_0000_0002),
            ),
            // (2 - 2^-63)^2
            (
                Op::Prod,
                ld(0x3FFF, u64::MAX),
                ld(0x3FFF, u64::MAX),
                ld(0x4000, 0xFFFF_FFFF_FFFF_FFFE),
            ),
            // 1/3 * 3 = 1; 1/3 + 1/3
            (
                Op::Prod,
                ld(0x3FFD, 0xAAAA_AAAA_AAAA_AAAB),
                ld(0x4000, 0xC000_0000_0000_0000),
                one,
            ),
            (
                Op::Sum,
                ld(0x3FFD, 0xAAAA_AAAA_AAAA_AAAB),
                ld(0x3FFD, 0xAAAA_AAAA_AAAA_AAAB),
                ld(0x3FFE, 0xAAAA_AAAA_AAAA_AAAB),
            ),
            // 0.1L * 0.1L
            (
                Op::Prod,
                ld(0x3FFB, 0xCCCC_CCCC_CCCC_CCCD),
                ld(0x3FFB, 0xCCCC_CCCC_CCCC_CCCD),
                ld(0x3FF8, 0xA3D7_0A3D_70A3_D70B),
            ),
            // LDBL_MAX + LDBL_MAX = inf
            (
                Op::Sum,
                ld(0x7FFE, u64::MAX),
                ld(0x7FFE, u64::MAX),
                ld(0x7FFF, 1 << 63),
            ),
            // inf * 0 = the x87 default NaN (negative, "real indefinite")
            (
                Op::Prod,
                ld(0x7FFF, 1 << 63),
                ld(0, 0),
                ld(0xFFFF, 0xC000_0000_0000_0000),
            ),
            // LDBL_MIN * 0.5: a denormal; LDBL_TRUE_MIN * 0.5 -> 0 (tie to even); * 1.5 -> 2 ulp
            (
                Op::Prod,
                ld(0x0001, 1 << 63),
                ld(0x3FFE, 1 << 63),
                ld(0, 0x4000_0000_0000_0000),
            ),
            (Op::Prod, ld(0, 1), ld(0x3FFE, 1 << 63), ld(0, 0)),
            (
                Op::Prod,
                ld(0, 1),
                ld(0x3FFF, 0xC000_0000_0000_0000),
                ld(0, 2),
            ),
            // MAX/MIN: C's ?:, ties and NaN give the input, bit for bit.
            (
                Op::Max,
                ld(0x4000, 0xC000_0000_0000_0000),
                ld(0xC000, 0xA000_0000_0000_0000),
                ld(0x4000, 0xC000_0000_0000_0000),
            ),
            (
                Op::Min,
                ld(0x4000, 0xC000_0000_0000_0000),
                ld(0xC000, 0xA000_0000_0000_0000),
                ld(0xC000, 0xA000_0000_0000_0000),
            ),
            (Op::Max, ld(0x8000, 0), ld(0, 0), ld(0x8000, 0)),
            (Op::Min, ld(0, 0), ld(0x8000, 0), ld(0, 0)),
            (
                Op::Max,
                ld(0x7FFF, 0xC000_0000_0000_0001),
                one,
                ld(0x7FFF, 0xC000_0000_0000_0001),
            ),
            (Op::Min, one, ld(0x7FFF, 0xC000_0000_0000_0001), one),
        ];
        for (k, &(op, a, b, want)) in cases.iter().enumerate() {
            assert_eq!(run(op, Elem::LongDouble, &a, &b), want, "case {k}: {op}");
        }
        // Padding (bytes 10..16) of inout is kept, as C's 10-byte store does.
        let mut b = ld(0x3FC0, 1 << 63);
        b[10..].fill(0x5A);
        let got = run(Op::Sum, Elem::LongDouble, &one, &b);
        assert_eq!(&got[..10], &ld(0x3FFF, 0x8000_0000_0000_0001)[..10]);
        assert_eq!(&got[10..], &[0x5A; 6]);
        let got = run(Op::Max, Elem::LongDouble, &one, &b);
        assert_eq!((&got[..10], &got[10..]), (&one[..10], &[0x5A; 6][..]));
    }

    #[test]
    fn complex_long_double_known_bits() {
        let third = ld(0x3FFD, 0xAAAA_AAAA_AAAA_AAAB);
        let tenth = ld(0x3FFB, 0xCCCC_CCCC_CCCC_CCCD);
        let three = ld(0x4000, 0xC000_0000_0000_0000);
        let m2_5 = ld(0xC000, 0xA000_0000_0000_0000);
        let a = [third, tenth].concat();
        let b = [three, m2_5].concat();
        // (1/3 + 0.1i)(3 - 2.5i), computed by gcc with the same formula.
        let want = [
            ld(0x3FFF, 0xA000_0000_0000_0000),
            ld(0xBFFE, 0x8888_8888_8888_8889),
        ]
        .concat();
        assert_eq!(run(Op::Prod, Elem::ComplexLongDouble, &a, &b), want);
        let want = [
            ld(0x4000, 0xD555_5555_5555_5555),
            ld(0xC000, 0x9999_9999_9999_999A),
        ]
        .concat();
        assert_eq!(run(Op::Sum, Elem::ComplexLongDouble, &a, &b), want);
    }

    #[test]
    fn long_double_int_minloc_maxloc() {
        let ldi = |v: [u8; 16], i: i32, pad: u8| -> Vec<u8> {
            let mut b = v.to_vec();
            b.extend(i.to_ne_bytes());
            b.extend([pad; 12]);
            b
        };
        let nan = ld(0x7FFF, 0xC000_0000_0000_0000);
        // Differ only beyond double precision.
        let x = ld(0x3FFF, 0x8000_0000_0000_0001);
        let y = ld(0x3FFF, 0x8000_0000_0000_0000);
        let a = [
            ldi(x, 1, 0),
            ldi(y, 9, 0),
            ldi(nan, 0, 0),
            ldi(ld_int(-4), 3, 0),
        ]
        .concat();
        let b = [ldi(y, 2, 7), ldi(y, 4, 7), ldi(x, 5, 7), ldi(nan, 6, 7)].concat();
        let got = run(Op::Minloc, Elem::LongDoubleInt, &a, &b);
        let want = [ldi(y, 2, 7), ldi(y, 4, 7), ldi(x, 5, 7), ldi(nan, 6, 7)].concat();
        assert_eq!(got, want);
        let got = run(Op::Maxloc, Elem::LongDoubleInt, &a, &b);
        let want = [ldi(x, 1, 7), ldi(y, 4, 7), ldi(x, 5, 7), ldi(nan, 6, 7)].concat();
        assert_eq!(got, want);
        let got = run(
            Op::Maxloc,
            Elem::LongDoubleInt,
            &ldi(ld_int(5), -3, 0),
            &ldi(ld_int(5), 2, 0),
        );
        assert_eq!(got, ldi(ld_int(5), -3, 0));
    }

    #[test]
    fn long_double_helpers_round_trip() {
        for v in [0i64, 1, -1, 3, -2, 1 << 40, i64::MAX, i64::MIN + 1] {
            assert_eq!(ld_to_int(&ld_int(v)), Some(i128::from(v)), "{v}");
        }
        assert_eq!(ld_int(1), ld(0x3FFF, 1 << 63));
        assert_eq!(ld_int(3), ld(0x4000, 0xC000_0000_0000_0000));
        assert_eq!(ld_to_int(&ld(0x3FFD, 1 << 63)), None); // 0.25
    }

    // -- property tests ---------------------------------------------------------------------

    fn any_op() -> impl Strategy<Value = Op> {
        prop::sample::select(Op::ALL.to_vec())
    }

    fn any_elem() -> impl Strategy<Value = Elem> {
        prop::sample::select(Elem::ALL.to_vec())
    }

    /// (op, elem, input, inout) with random bytes, some elements equal.
    fn case() -> impl Strategy<Value = (Op, Elem, Vec<u8>, Vec<u8>)> {
        (any_op(), any_elem(), 0usize..40).prop_flat_map(|(op, elem, n)| {
            let len = n * elem.size();
            (
                Just(op),
                Just(elem),
                prop::collection::vec(any::<u8>(), len),
                prop::collection::vec(any::<u8>(), len),
                prop::collection::vec(any::<bool>(), n),
            )
                .prop_map(move |(op, elem, a, mut b, eq)| {
                    let s = elem.size();
                    for i in (0..eq.len()).filter(|&i| eq[i]) {
                        b[i * s..(i + 1) * s].copy_from_slice(&a[i * s..(i + 1) * s]);
                    }
                    (op, elem, a, b)
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn prop_matches_reference((op, elem, input, inout) in case()) {
            let mut got = inout.clone();
            let r = reduce_local(op, elem, &input, &mut got);
            if !defined(op, elem) {
                prop_assert_eq!(r, Err(OpError::NotDefined { op, elem }));
                prop_assert_eq!(got, inout);
            } else {
                prop_assert!(r.is_ok());
                if let Some(want) = reference(op, elem, &input, &inout) {
                    prop_assert!(same(elem, op, &got, &want), "{} on {}", op, elem);
                }
                // Deterministic: the same inputs give the same bits.
                let mut again = inout.clone();
                reduce_local(op, elem, &input, &mut again).unwrap();
                prop_assert_eq!(got, again);
            }
        }

        #[test]
        fn prop_ragged_lengths_error(elem in any_elem(), a in 0usize..100, b in 0usize..100) {
            let s = elem.size();
            prop_assume!(a != b || a % s != 0);
            let input = vec![0u8; a];
            let mut inout = vec![1u8; b];
            prop_assert_eq!(
                reduce_local(Op::Replace, elem, &input, &mut inout),
                Err(OpError::Length { elem, input: a, inout: b })
            );
            prop_assert!(inout.iter().all(|&x| x == 1));
        }

        /// Integer-valued long doubles are exact, so sums, products and comparisons have an
        /// exact integer reference.
        #[test]
        fn prop_long_double_integers(v in prop::collection::vec((-(1i64 << 30)..(1i64 << 30), -(1i64 << 30)..(1i64 << 30)), 0..20)) {
            let a: Vec<u8> = v.iter().flat_map(|&(x, _)| ld_int(x)).collect();
            let b: Vec<u8> = v.iter().flat_map(|&(_, y)| ld_int(y)).collect();
            let check = |op: Op, f: &dyn Fn(i128, i128) -> i128| -> Result<(), TestCaseError> {
                let got = run(op, Elem::LongDouble, &a, &b);
                for (g, &(x, y)) in got.chunks_exact(16).zip(&v) {
                    prop_assert_eq!(ld_to_int(g), Some(f(i128::from(x), i128::from(y))), "{} {} {}", op, x, y);
                }
                Ok(())
            };
            check(Op::Sum, &|x, y| x + y)?;
            check(Op::Prod, &|x, y| x * y)?;
            check(Op::Max, &|x, y| x.max(y))?;
            check(Op::Min, &|x, y| x.min(y))?;
            // Complex: (x + y i)(y + x i) = (xy - yx) + (x^2 + y^2) i, and the sum.
            let ca: Vec<u8> = v.iter().flat_map(|&(x, y)| [ld_int(x), ld_int(y)]).flatten().collect();
            let cb: Vec<u8> = v.iter().flat_map(|&(x, y)| [ld_int(y), ld_int(x)]).flatten().collect();
            let got = run(Op::Prod, Elem::ComplexLongDouble, &ca, &cb);
            for (g, &(x, y)) in got.chunks_exact(32).zip(&v) {
                let (x, y) = (i128::from(x), i128::from(y));
                prop_assert_eq!(ld_to_int(&g[..16]), Some(0));
                prop_assert_eq!(ld_to_int(&g[16..]), Some(x * x + y * y));
            }
            let got = run(Op::Sum, Elem::ComplexLongDouble, &ca, &cb);
            for (g, &(x, y)) in got.chunks_exact(32).zip(&v) {
                let s = i128::from(x) + i128::from(y);
                prop_assert_eq!((ld_to_int(&g[..16]), ld_to_int(&g[16..])), (Some(s), Some(s)));
            }
            // MINLOC/MAXLOC on struct { long double, int }, with small values for ties.
            let ldi = |x: i64, i: i32| -> Vec<u8> { [ld_int(x % 4).to_vec(), i.to_ne_bytes().to_vec(), vec![0; 12]].concat() };
            let la: Vec<u8> = v.iter().enumerate().flat_map(|(i, &(x, _))| ldi(x, i as i32 * 7 % 5)).collect();
            let lb: Vec<u8> = v.iter().enumerate().flat_map(|(i, &(_, y))| ldi(y, i as i32 * 3 % 5)).collect();
            for op in [Op::Minloc, Op::Maxloc] {
                let got = run(op, Elem::LongDoubleInt, &la, &lb);
                for ((g, a), b) in got.chunks_exact(32).zip(la.chunks_exact(32)).zip(lb.chunks_exact(32)) {
                    let ord = ld_to_int(a).unwrap().cmp(&ld_to_int(b).unwrap());
                    prop_assert_eq!(g, &loc_ref(op, Some(ord), a, b, 16, 10)[..]);
                }
            }
        }
    }
}
