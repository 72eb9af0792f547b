//! Reduction operations for the collectives of the Rust API, and typed element views.
//!
//! A reduction (`all_reduce_into`, `reduce_into_root`, `scan_into`, ...) takes an
//! [`Operation`] on the element type of its buffers:
//!
//! - a [`SystemOperation`]: one of MPI's predefined ops (`sum`, `max`, `bitwise_xor`, ...),
//!   on any [`Reducible`] primitive (the integers and floats), computed by the kernels of
//!   [`crate::op`];
//! - a [`UserOperation`]: a Rust closure `Fn(&[T], &mut [T])` computing
//!   `inout[i] = input[i] op inout[i]`, on any [`Equivalence`] type, commutative or not.
//!
//! ```no_run
//! use zerorank::operation::{SystemOperation, UserOperation};
//!
//! let universe = zerorank::initialize().unwrap();
//! let world = universe.world();
//! let mut sum = 0u64;
//! world.all_reduce_into(&(world.rank() as u64), &mut sum, SystemOperation::sum()).unwrap();
//! // A non-commutative op: 2x2 integer matrix products in rank order.
//! let matmul = UserOperation::non_commutative(|a: &[[u64; 4]], b: &mut [[u64; 4]]| {
//!     for (x, y) in a.iter().zip(b.iter_mut()) {
//!         *y = [
//!             x[0] * y[0] + x[1] * y[2],
//!             x[0] * y[1] + x[1] * y[3],
//!             x[2] * y[0] + x[3] * y[2],
//!             x[2] * y[1] + x[3] * y[3],
//!         ];
//!     }
//! });
//! let mine = [[1u64, 1, 0, 1]];
//! let mut product = [[0u64; 4]];
//! world.all_reduce_into(&mine[..], &mut product[..], &matmul).unwrap();
//! ```

use crate::collective::Reducer;
use crate::datatype::{bytes_of, bytes_of_mut, zeroed_vec, Equivalence};
use crate::error::{Error, Result};
use crate::op::{self, Elem, Op, OpError};
use std::marker::PhantomData;
use std::rc::Rc;

/// A primitive type the predefined ops apply to: the Rust integers and floats.
pub trait Reducible: Equivalence {
    /// Its element type for [`crate::op`].
    const ELEM: Elem;
}

macro_rules! reducible {
    ($($t:ty => $e:ident),*) => { $(
        impl Reducible for $t { const ELEM: Elem = Elem::$e; }
    )* };
}
reducible!(i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, i64 => I64,
    u64 => U64, f32 => F32, f64 => F64);
#[cfg(target_pointer_width = "64")]
reducible!(isize => I64, usize => U64);
#[cfg(target_pointer_width = "32")]
reducible!(isize => I32, usize => U32);

/// A predefined op on one element type, as the collective engine takes it (also usable
/// by the C layer for predefined ops on basic types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElemReducer {
    op: Op,
    elem: Elem,
}

impl ElemReducer {
    /// `op` on `elem`; an error if MPI does not define it there.
    pub fn new(op: Op, elem: Elem) -> Result<Self> {
        if !op::defined(op, elem) {
            return Err(Error::Reduction(OpError::NotDefined { op, elem }));
        }
        Ok(ElemReducer { op, elem })
    }

    /// The op.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The element type.
    pub fn elem(&self) -> Elem {
        self.elem
    }
}

impl Reducer for ElemReducer {
    fn reduce(&self, input: &[u8], inout: &mut [u8]) {
        let r = op::reduce_local(self.op, self.elem, input, inout);
        debug_assert!(r.is_ok(), "{r:?}");
    }
    fn commutative(&self) -> bool {
        self.op.is_commutative()
    }
    fn elem_size(&self) -> usize {
        self.elem.size()
    }
}

/// One of MPI's predefined reduction ops, applicable to any [`Reducible`] type it is
/// defined on (`MAX` on floats, `BXOR` on integers, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SystemOperation(Op);

impl SystemOperation {
    /// The predefined op `op`.
    pub const fn new(op: Op) -> Self {
        SystemOperation(op)
    }
    /// The op inside.
    pub const fn op(&self) -> Op {
        self.0
    }
    /// `MPI_MAX`.
    pub const fn max() -> Self {
        Self(Op::Max)
    }
    /// `MPI_MIN`.
    pub const fn min() -> Self {
        Self(Op::Min)
    }
    /// `MPI_SUM` (wrapping for integers).
    pub const fn sum() -> Self {
        Self(Op::Sum)
    }
    /// `MPI_PROD` (wrapping for integers).
    pub const fn product() -> Self {
        Self(Op::Prod)
    }
    /// `MPI_LAND` (integers: nonzero is true, the result is 1 or 0).
    pub const fn logical_and() -> Self {
        Self(Op::Land)
    }
    /// `MPI_LOR`.
    pub const fn logical_or() -> Self {
        Self(Op::Lor)
    }
    /// `MPI_LXOR`.
    pub const fn logical_xor() -> Self {
        Self(Op::Lxor)
    }
    /// `MPI_BAND`.
    pub const fn bitwise_and() -> Self {
        Self(Op::Band)
    }
    /// `MPI_BOR`.
    pub const fn bitwise_or() -> Self {
        Self(Op::Bor)
    }
    /// `MPI_BXOR`.
    pub const fn bitwise_xor() -> Self {
        Self(Op::Bxor)
    }
}

/// A reduction op written in Rust: `f(input, inout)` sets `inout[i] = input[i] op
/// inout[i]`, where `input` holds the operand of the lower ranks. Cheap to clone.
pub struct UserOperation<T> {
    reducer: Rc<dyn Reducer>,
    _t: PhantomData<fn(T)>,
}

impl<T> Clone for UserOperation<T> {
    fn clone(&self) -> Self {
        UserOperation {
            reducer: self.reducer.clone(),
            _t: PhantomData,
        }
    }
}

struct Closure<T, F> {
    f: F,
    commutative: bool,
    _t: PhantomData<fn(T)>,
}

/// `bytes` as `&[T]` if aligned, else `None`.
fn view<T: Equivalence>(bytes: &[u8]) -> Option<&[T]> {
    let size = std::mem::size_of::<T>();
    if size == 0 || bytes.as_ptr().align_offset(std::mem::align_of::<T>()) != 0 {
        return None;
    }
    // SAFETY: aligned, `len / size` whole elements in bounds, and every bit pattern is a
    // valid `T` (`Equivalence`).
    Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) })
}

fn view_mut<T: Equivalence>(bytes: &mut [u8]) -> Option<&mut [T]> {
    let size = std::mem::size_of::<T>();
    if size == 0 || bytes.as_ptr().align_offset(std::mem::align_of::<T>()) != 0 {
        return None;
    }
    // SAFETY: as in `view`, and the borrow is exclusive.
    Some(unsafe {
        std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<T>(), bytes.len() / size)
    })
}

impl<T: Equivalence, F: Fn(&[T], &mut [T])> Reducer for Closure<T, F> {
    fn reduce(&self, input: &[u8], inout: &mut [u8]) {
        let size = std::mem::size_of::<T>();
        if size == 0 {
            return;
        }
        let n = inout.len() / size;
        let input = &input[..n * size];
        let inout = &mut inout[..n * size];
        match (view::<T>(input), view_mut::<T>(inout)) {
            (Some(a), Some(b)) => (self.f)(a, b),
            (a, b) => {
                // Unaligned temporaries: work on aligned copies.
                let own_a;
                let a = match a {
                    Some(a) => a,
                    None => {
                        let mut v = zeroed_vec::<T>(n);
                        bytes_of_mut(&mut v).copy_from_slice(input);
                        own_a = v;
                        &own_a[..]
                    }
                };
                match b {
                    Some(b) => (self.f)(a, b),
                    None => {
                        let mut v = zeroed_vec::<T>(n);
                        bytes_of_mut(&mut v).copy_from_slice(inout);
                        (self.f)(a, &mut v);
                        inout.copy_from_slice(bytes_of(&v));
                    }
                }
            }
        }
    }
    fn commutative(&self) -> bool {
        self.commutative
    }
    fn elem_size(&self) -> usize {
        std::mem::size_of::<T>().max(1)
    }
}

impl<T: Equivalence> UserOperation<T> {
    /// An op that may combine operands in any order.
    pub fn commutative(f: impl Fn(&[T], &mut [T]) + 'static) -> Self {
        Self::new(true, f)
    }

    /// An op whose operands combine in rank order only.
    pub fn non_commutative(f: impl Fn(&[T], &mut [T]) + 'static) -> Self {
        Self::new(false, f)
    }

    /// An op from `f`; `commutative` says whether operands may be reordered.
    pub fn new(commutative: bool, f: impl Fn(&[T], &mut [T]) + 'static) -> Self {
        UserOperation {
            reducer: Rc::new(Closure {
                f,
                commutative,
                _t: PhantomData,
            }),
            _t: PhantomData,
        }
    }

    /// The byte-level reducer (for [`crate::Communicator::collective`]).
    pub fn reducer(&self) -> Rc<dyn Reducer> {
        self.reducer.clone()
    }
}

/// A reduction op on elements of type `T`.
pub trait Operation<T> {
    /// The byte-level reducer the collective engine runs, or why the op does not apply
    /// to `T`.
    fn reducer(&self) -> Result<Rc<dyn Reducer>>;
}

impl<T: Reducible> Operation<T> for SystemOperation {
    fn reducer(&self) -> Result<Rc<dyn Reducer>> {
        Ok(Rc::new(ElemReducer::new(self.0, T::ELEM)?))
    }
}

impl<T: Equivalence> Operation<T> for UserOperation<T> {
    fn reducer(&self) -> Result<Rc<dyn Reducer>> {
        Ok(self.reducer.clone())
    }
}

impl<T, O: Operation<T> + ?Sized> Operation<T> for &O {
    fn reducer(&self) -> Result<Rc<dyn Reducer>> {
        (**self).reducer()
    }
}

/// A buffer of elements of one type: a value, a slice or a vector (for reductions and
/// the variable-count collectives, which need the element type). Arrays count as one
/// element of the array type; pass `&a[..]` for their elements.
pub trait Elements {
    /// The element type.
    type Item: Equivalence;
    /// The elements.
    fn elements(&self) -> &[Self::Item];
}

/// A writable buffer of elements of one type.
pub trait ElementsMut: Elements {
    /// The elements.
    fn elements_mut(&mut self) -> &mut [Self::Item];
}

impl<T: Equivalence> Elements for T {
    type Item = T;
    fn elements(&self) -> &[T] {
        std::slice::from_ref(self)
    }
}
impl<T: Equivalence> Elements for [T] {
    type Item = T;
    fn elements(&self) -> &[T] {
        self
    }
}
impl<T: Equivalence> Elements for Vec<T> {
    type Item = T;
    fn elements(&self) -> &[T] {
        self
    }
}
impl<T: Equivalence> ElementsMut for T {
    fn elements_mut(&mut self) -> &mut [T] {
        std::slice::from_mut(self)
    }
}
impl<T: Equivalence> ElementsMut for [T] {
    fn elements_mut(&mut self) -> &mut [T] {
        self
    }
}
impl<T: Equivalence> ElementsMut for Vec<T> {
    fn elements_mut(&mut self) -> &mut [T] {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_ops_check_the_type() {
        let r = <SystemOperation as Operation<f64>>::reducer(&SystemOperation::sum()).unwrap();
        assert_eq!(r.elem_size(), 8);
        assert!(r.commutative());
        let a = [1.5f64, 2.0];
        let mut b = [0.25f64, -1.0];
        r.reduce(bytes_of(&a), bytes_of_mut(&mut b));
        assert_eq!(b, [1.75, 1.0]);
        let e = <SystemOperation as Operation<f32>>::reducer(&SystemOperation::bitwise_and());
        assert!(matches!(
            e,
            Err(Error::Reduction(OpError::NotDefined { .. }))
        ));
    }

    #[test]
    fn user_ops_on_unaligned_bytes() {
        let op = UserOperation::non_commutative(|a: &[u32], b: &mut [u32]| {
            for (x, y) in a.iter().zip(b) {
                *y += x * 10;
            }
        });
        let r = <UserOperation<u32> as Operation<u32>>::reducer(&op).unwrap();
        assert!(!r.commutative());
        assert_eq!(r.elem_size(), 4);
        let mut input = [0u8; 9];
        let mut inout = [0u8; 9];
        input[1..].copy_from_slice(bytes_of(&[1u32, 2]));
        inout[1..].copy_from_slice(bytes_of(&[3u32, 4]));
        r.reduce(&input[1..], &mut inout[1..]);
        let mut out = [0u32; 2];
        bytes_of_mut(&mut out).copy_from_slice(&inout[1..]);
        assert_eq!(out, [13, 24]);
        // Aligned.
        let mut b = [5u32, 6];
        r.reduce(bytes_of(&[1u32, 1]), bytes_of_mut(&mut b));
        assert_eq!(b, [15, 16]);
    }
}
