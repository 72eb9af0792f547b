//! Reduction operations: the predefined ops (MPICH's handles) and the user's
//! (`MPI_Op_create`), and [`reducer`], which makes the combining step a collective runs
//! on the packed bytes of a datatype.
//!
//! Predefined ops run the kernels of `zerorank::op` on the type's one element kind (a
//! derived type qualifies when its signature is one kind repeated, e.g. a vector of
//! doubles). A pair type with padding (`MPI_DOUBLE_INT` packs to 12 bytes, its struct
//! has 16) is widened to the struct layout for the kernel and narrowed back.
//!
//! A user function is called as `f(invec, inoutvec, &len, &datatype)` with the handle the
//! program passed to the reduction. Packed data equals the memory layout of a contiguous
//! type, so the function runs on the packed bytes directly (when they are aligned as the
//! type needs); for any other type both operands are first unpacked into aligned scratch
//! memory laid out as the type says, and the result packed back.
//!
//! Handles: predefined ops `0x58000001..=0x5800000e`; user ops `0x98000000 + slot`.

use crate::abi::*;
use crate::datatype::{self, mem, TypeInfo};
use crate::error::{finish, MpiError};
use crate::raw;
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::rc::Rc;
use zerorank::collective::Reducer;
use zerorank::op::{kernel_fn, Elem, KernelFn, Op};

/// `MPI_OP_NULL`.
pub(crate) const MPI_OP_NULL: c_int = 0x1800_0000;

/// The predefined ops and their handles.
const PREDEFINED: [(c_int, Op); 14] = [
    (0x5800_0001, Op::Max),
    (0x5800_0002, Op::Min),
    (0x5800_0003, Op::Sum),
    (0x5800_0004, Op::Prod),
    (0x5800_0005, Op::Land),
    (0x5800_0006, Op::Band),
    (0x5800_0007, Op::Lor),
    (0x5800_0008, Op::Bor),
    (0x5800_0009, Op::Lxor),
    (0x5800_000a, Op::Bxor),
    (0x5800_000b, Op::Minloc),
    (0x5800_000c, Op::Maxloc),
    (0x5800_000d, Op::Replace),
    (0x5800_000e, Op::NoOp),
];

/// First handle of user ops.
const USER_BASE: u32 = 0x9800_0000;
/// Most user ops alive at once.
const MAX_USER: usize = 1 << 26;

/// `MPI_User_function`: `void f(void *invec, void *inoutvec, int *len, MPI_Datatype *dt)`.
pub(crate) type UserFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_int, *mut c_int);

/// An op made by `MPI_Op_create`.
#[derive(Debug)]
struct UserOp {
    f: UserFn,
    commute: bool,
}

/// What an op handle stands for.
#[derive(Debug, Clone)]
enum Kind {
    Predefined(Op),
    User(Rc<UserOp>),
}

#[derive(Default)]
struct Table {
    user: Vec<Option<Rc<UserOp>>>,
    free: Vec<usize>,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
}

fn user_index(h: c_int) -> Option<usize> {
    let i = (h as u32).checked_sub(USER_BASE)? as usize;
    (i < MAX_USER).then_some(i)
}

fn invalid(h: c_int) -> MpiError {
    let what = if h == MPI_OP_NULL {
        "MPI_OP_NULL is not an operation".to_string()
    } else {
        format!("invalid operation handle {h:#x} (never created, or freed)")
    };
    MpiError::new(MPI_ERR_OP, what)
}

/// The position of predefined op `h` in [`PREDEFINED`] (whose handles are consecutive).
fn predefined_position(h: c_int) -> Option<usize> {
    let i = (h as u32).wrapping_sub(PREDEFINED[0].0 as u32) as usize;
    (i < PREDEFINED.len()).then_some(i)
}

const _: () = {
    let mut i = 0;
    while i < PREDEFINED.len() {
        assert!(PREDEFINED[i].0 == PREDEFINED[0].0 + i as c_int);
        i += 1;
    }
};

/// The op behind handle `h`.
fn resolve(h: c_int) -> Result<Kind, MpiError> {
    if let Some(i) = predefined_position(h) {
        return Ok(Kind::Predefined(PREDEFINED[i].1));
    }
    let i = user_index(h).ok_or_else(|| invalid(h))?;
    TABLE
        .with(|t| t.borrow().user.get(i).cloned().flatten())
        .map(Kind::User)
        .ok_or_else(|| invalid(h))
}

/// The name of op `h` for messages.
fn describe(h: c_int) -> String {
    match resolve(h) {
        Ok(Kind::Predefined(op)) => op.name().to_string(),
        _ => format!("user operation {h:#x}"),
    }
}

/// The combining step of a reduction with op `op` on datatype `dtype` (committed): for
/// the collectives, over packed bytes of `dtype` (`elem_size()`: a predefined op's basic
/// element, a user op's whole datatype).
/// `MPI_ERR_TYPE` for a bad type, `MPI_ERR_OP` for a bad op or an op MPI does not
/// define on the type.
pub(crate) fn reducer(op: c_int, dtype: c_int) -> Result<Rc<dyn Reducer>, MpiError> {
    // A predefined op on a predefined type never changes: build its kernel once, and find
    // it again by (op position, type index) without hashing.
    let slot = predefined_position(op)
        .zip(datatype::builtin_index(dtype))
        .map(|(o, t)| o * datatype::BUILTIN_COUNT + t);
    if let Some(i) = slot {
        if let Some(r) = KERNELS.with(|k| k.borrow().get(i).cloned().flatten()) {
            return Ok(r);
        }
    }
    let info = datatype::lookup(dtype)?;
    let r: Rc<dyn Reducer> = match resolve(op)? {
        Kind::Predefined(o) => Rc::new(kernel(o, op, dtype, info)?),
        Kind::User(u) => Rc::new(User { op: u, dtype, info }),
    };
    if let Some(i) = slot {
        KERNELS.with(|k| {
            let mut k = k.borrow_mut();
            if k.is_empty() {
                k.resize(PREDEFINED.len() * datatype::BUILTIN_COUNT, None);
            }
            k[i] = Some(r.clone());
        });
    }
    Ok(r)
}

/// The reducer of predefined op `op` on predefined type `dtype` when it was built
/// before ([`reducer`] keeps them); `None` otherwise. For the fast entries of small
/// collectives: no lookup that can fail, no error to build.
pub(crate) fn predefined_reducer(op: c_int, dtype: c_int) -> Option<Rc<dyn Reducer>> {
    let i = predefined_position(op)? * datatype::BUILTIN_COUNT + datatype::builtin_index(dtype)?;
    KERNELS.with(|k| k.borrow().get(i).cloned().flatten())
}

thread_local! {
    /// Kernels of predefined ops on predefined types, at `op position * BUILTIN_COUNT +
    /// type index`.
    static KERNELS: RefCell<Vec<Option<Rc<dyn Reducer>>>> = const { RefCell::new(Vec::new()) };
}

/// Is op `op` commutative? (`MPI_ERR_OP` for a bad handle.)
#[allow(dead_code)] // for the collectives
pub(crate) fn commutative(op: c_int) -> Result<bool, MpiError> {
    Ok(match resolve(op)? {
        Kind::Predefined(o) => o.is_commutative(),
        Kind::User(u) => u.commute,
    })
}

// ---------------------------------------------------------------------------------------
// Predefined ops

/// A predefined op on packed units of one element kind.
#[derive(Debug)]
struct Kernel {
    op: Op,
    elem: Elem,
    /// The kernel of (`op`, `elem`) (`zerorank::op::kernel_fn`).
    f: KernelFn,
    /// Packed bytes of one basic element (of one pair, for the pair types; of one byte
    /// for REPLACE and NO_OP): the op combines the operands basic element by basic
    /// element, whatever datatype holds them, so the collectives may split at any
    /// multiple of this. Two ranks whose datatypes differ but whose type signatures match
    /// (`MPI_Type_contiguous(4, MPI_INT)` once, and `MPI_INT` 4 times), as MPI allows,
    /// then split and fold alike.
    unit: usize,
    /// Set for a pair type whose packed unit is narrower than its struct.
    pair: Option<Pair>,
}

/// A pair type's packed unit (value, then index) against its struct layout.
#[derive(Debug, Clone, Copy)]
struct Pair {
    value: usize,
    index_at: usize,
    packed: usize,
    full: usize,
}

fn kernel(op: Op, oph: c_int, dtype: c_int, info: TypeInfo) -> Result<Kernel, MpiError> {
    let size = info.size();
    if matches!(op, Op::Replace | Op::NoOp) {
        // Defined on every type: on the packed bytes as they are.
        return Ok(Kernel {
            op,
            elem: Elem::Byte,
            f: kernel_fn(op, Elem::Byte).expect("REPLACE and NO_OP are defined on bytes"),
            unit: 1,
            pair: None,
        });
    }
    let not_defined = |why: String| {
        MpiError::new(
            MPI_ERR_OP,
            format!(
                "{} is not defined on {}{why}",
                describe(oph),
                datatype::describe(dtype)
            ),
        )
    };
    let Some((elem, per)) = info.basic_elem() else {
        return Err(not_defined(
            " (predefined ops apply to types whose elements are all of one basic type \
             MPI defines the op on)"
                .into(),
        ));
    };
    let Some(f) = kernel_fn(op, elem) else {
        return Err(not_defined(format!(" (elements of C type {elem})")));
    };
    let unit = size / per.max(1);
    let pair = match elem.pair_index_offset() {
        Some(index_at) if unit != elem.size() => Some(Pair {
            value: unit - 4,
            index_at,
            packed: unit,
            full: elem.size(),
        }),
        _ => None,
    };
    Ok(Kernel {
        op,
        elem,
        f,
        unit,
        pair,
    })
}

impl Kernel {
    fn run(&self, input: &[u8], inout: &mut [u8]) {
        // The collectives pass whole elements of equal length: a bug if not.
        assert!(
            input.len() == inout.len() && input.len().is_multiple_of(self.elem.size()),
            "zerorank: internal error in a reduction: {} and {} bytes of {}-byte elements",
            input.len(),
            inout.len(),
            self.elem.size()
        );
        (self.f)(input, inout);
    }
}

impl Reducer for Kernel {
    fn reduce(&self, input: &[u8], inout: &mut [u8]) {
        let Some(p) = self.pair else {
            return self.run(input, inout);
        };
        // Widen batches of pairs to the struct layout, reduce, narrow the result back.
        const BATCH: usize = 64;
        let mut a = [0u8; BATCH * 32];
        let mut b = [0u8; BATCH * 32];
        for (ci, co) in input
            .chunks(BATCH * p.packed)
            .zip(inout.chunks_mut(BATCH * p.packed))
        {
            let n = ci.len() / p.packed;
            let (a, b) = (&mut a[..n * p.full], &mut b[..n * p.full]);
            for (k, (wa, wb)) in a
                .chunks_exact_mut(p.full)
                .zip(b.chunks_exact_mut(p.full))
                .enumerate()
            {
                let (ua, ub) = (
                    &ci[k * p.packed..][..p.packed],
                    &co[k * p.packed..][..p.packed],
                );
                wa[..p.value].copy_from_slice(&ua[..p.value]);
                wa[p.index_at..p.index_at + 4].copy_from_slice(&ua[p.value..]);
                wb[..p.value].copy_from_slice(&ub[..p.value]);
                wb[p.index_at..p.index_at + 4].copy_from_slice(&ub[p.value..]);
            }
            self.run(a, b);
            for (k, wb) in b.chunks_exact(p.full).enumerate() {
                let ub = &mut co[k * p.packed..][..p.packed];
                ub[..p.value].copy_from_slice(&wb[..p.value]);
                ub[p.value..].copy_from_slice(&wb[p.index_at..p.index_at + 4]);
            }
        }
    }

    fn commutative(&self) -> bool {
        self.op.is_commutative()
    }

    fn elem_size(&self) -> usize {
        self.unit.max(1)
    }
}

// ---------------------------------------------------------------------------------------
// User ops

/// A user function on a datatype.
struct User {
    op: Rc<UserOp>,
    /// The handle the program passed (the function may compare it).
    dtype: c_int,
    info: TypeInfo,
}

/// Scratch memory per call of a user function on a non-contiguous type (elements are
/// processed in pieces of about this size).
const SCRATCH_BYTES: usize = 1 << 20;

impl User {
    /// May the function run on the packed bytes at `p` (the contiguous case)?
    fn direct(&self, p: *const u8) -> bool {
        let base = (p as usize).wrapping_sub(self.info.lb() as usize);
        self.info.is_contiguous() && base.is_multiple_of(self.info.align().min(16))
    }
}

impl Reducer for User {
    fn reduce(&self, input: &[u8], inout: &mut [u8]) {
        let size = self.info.size();
        assert_eq!(
            input.len(),
            inout.len(),
            "zerorank: reduction operands differ in length"
        );
        if size == 0 || input.is_empty() {
            return;
        }
        let n = input.len() / size;
        if self.direct(input.as_ptr()) && self.direct(inout.as_ptr()) {
            let lb = self.info.lb();
            let per = c_int::MAX as usize;
            for (ci, co) in input.chunks(per * size).zip(inout.chunks_mut(per * size)) {
                let len = (ci.len() / size) as c_int;
                // The buffer base is `lb` before the data (element 0 is at base + lb).
                let inv = ci.as_ptr().wrapping_offset(-lb);
                let io = co.as_mut_ptr().wrapping_offset(-lb);
                // SAFETY: `len` contiguous elements of the type at `inv` / `io` are
                // exactly the bytes of `ci` / `co` (is_contiguous), aligned as the type
                // needs; `co` is exclusively ours.
                unsafe { call(self.op.f, inv, io, len, self.dtype) };
            }
            return;
        }
        let stride = (self.info.extent().unsigned_abs()).max(size);
        let per = (SCRATCH_BYTES / stride).clamp(1, c_int::MAX as usize);
        let mut done = 0;
        while done < n {
            let k = per.min(n - done);
            let bytes = done * size..(done + k) * size;
            let (lo, hi) = self.info.span(k);
            let lo = lo.div_euclid(16) * 16; // keep the base 16-byte aligned
            let len = (hi - lo) as usize;
            let (mut sa, mut sb) = (mem::Scratch::new(len), mem::Scratch::new(len));
            let (ba, bb) = (
                sa.as_mut_ptr().wrapping_offset(-lo),
                sb.as_mut_ptr().wrapping_offset(-lo),
            );
            // SAFETY: the data of `k` elements at `ba` / `bb` lies in [base + lo, base +
            // hi), inside the scratch memory of `hi - lo` bytes each; nothing else
            // accesses the scratch memory; the packed bytes do not overlap it.
            unsafe {
                self.info.unpack(&input[bytes.clone()], ba, k);
                self.info.unpack(&inout[bytes.clone()], bb, k);
                call(self.op.f, ba, bb, k as c_int, self.dtype);
                self.info.pack(bb, k, &mut inout[bytes]);
            }
            done += k;
        }
    }

    fn commutative(&self) -> bool {
        self.op.commute
    }

    fn elem_size(&self) -> usize {
        self.info.size().max(1)
    }
}

/// Call the user function on `len` elements of `dtype` at `invec` and `inoutvec`.
///
/// # Safety
/// `invec` and `inoutvec` must each be the base of `len` elements of the type (valid,
/// not overlapping, `inoutvec` writable); `f` must be an `MPI_User_function` (which
/// `MPI_Op_create` required).
unsafe fn call(f: UserFn, invec: *const u8, inoutvec: *mut u8, len: c_int, dtype: c_int) {
    let (mut len, mut dt) = (len, dtype);
    // SAFETY: as the caller promises; `len` and `dt` are live locals. The function only
    // reads `invec` (MPI's contract for the input operand).
    unsafe { f(invec.cast_mut().cast(), inoutvec.cast(), &mut len, &mut dt) };
}

// ---------------------------------------------------------------------------------------
// The MPI functions

/// `MPI_Op_create`.
#[no_mangle]
pub extern "C" fn MPI_Op_create(user_fn: Option<UserFn>, commute: c_int, op: *mut c_int) -> c_int {
    let r = (|| {
        let f = user_fn.ok_or_else(|| MpiError::new(MPI_ERR_ARG, "user_fn is a null pointer"))?;
        if op.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "op is a null pointer"));
        }
        let u = Rc::new(UserOp {
            f,
            commute: commute != 0,
        });
        let i = TABLE.with(|t| {
            let mut t = t.borrow_mut();
            match t.free.pop() {
                Some(i) => {
                    t.user[i] = Some(u);
                    Ok(i)
                }
                None if t.user.len() < MAX_USER => {
                    t.user.push(Some(u));
                    Ok(t.user.len() - 1)
                }
                None => Err(MpiError::new(
                    MPI_ERR_INTERN,
                    "too many user operations alive",
                )),
            }
        })?;
        raw::put(op, (USER_BASE + i as u32) as c_int);
        Ok(())
    })();
    finish("MPI_Op_create", MPI_COMM_WORLD, r)
}

/// `MPI_Op_free`: the handle becomes `MPI_OP_NULL`; pending reductions keep the op.
#[no_mangle]
pub extern "C" fn MPI_Op_free(op: *mut c_int) -> c_int {
    let r = (|| {
        let h = raw::get(op).ok_or_else(|| MpiError::new(MPI_ERR_ARG, "op is a null pointer"))?;
        match resolve(h)? {
            Kind::Predefined(o) => Err(MpiError::new(
                MPI_ERR_OP,
                format!("{o} is predefined and cannot be freed"),
            )),
            Kind::User(_) => {
                let i = user_index(h).ok_or_else(|| invalid(h))?;
                TABLE.with(|t| {
                    let mut t = t.borrow_mut();
                    t.user[i] = None;
                    t.free.push(i);
                });
                raw::put(op, MPI_OP_NULL);
                Ok(())
            }
        }
    })();
    finish("MPI_Op_free", MPI_COMM_WORLD, r)
}

/// `MPI_Op_commutative`.
#[no_mangle]
pub extern "C" fn MPI_Op_commutative(op: c_int, commute: *mut c_int) -> c_int {
    let r = commutative(op).and_then(|c| {
        raw::put(commute, c_int::from(c))
            .then_some(())
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "commute is a null pointer"))
    });
    finish("MPI_Op_commutative", MPI_COMM_WORLD, r)
}

/// `MPI_Reduce_local`: `inoutbuf[i] = inbuf[i] op inoutbuf[i]`.
#[no_mangle]
pub extern "C" fn MPI_Reduce_local(
    inbuf: *const c_void,
    inoutbuf: *mut c_void,
    count: c_int,
    dtype: c_int,
    op: c_int,
) -> c_int {
    let r = (|| {
        let n = usize::try_from(count)
            .map_err(|_| MpiError::new(MPI_ERR_COUNT, format!("negative count {count}")))?;
        let info = datatype::lookup(dtype)?;
        let kind = resolve(op)?;
        let kernel = match &kind {
            Kind::Predefined(o) => Some(kernel(*o, op, dtype, info.clone())?),
            Kind::User(_) => None,
        };
        let len = n
            .checked_mul(info.size())
            .ok_or_else(|| MpiError::new(MPI_ERR_COUNT, format!("count {count} too large")))?;
        if len == 0 {
            return Ok(());
        }
        if datatype::is_predefined(dtype) && (inbuf.is_null() || inoutbuf.is_null()) {
            return Err(MpiError::new(MPI_ERR_BUFFER, "buffer is a null pointer"));
        }
        let (inp, io) = (inbuf.cast::<u8>(), inoutbuf.cast::<u8>());
        match (kind, kernel) {
            (Kind::User(u), _) => {
                // SAFETY: both buffers hold `count` elements of the type (the caller's
                // obligation under MPI), inoutbuf writable and not overlapping inbuf.
                unsafe { call(u.f, inp, io, count, dtype) };
            }
            (_, Some(k)) if info.is_contiguous() => {
                let (a, b) = (
                    inp.wrapping_offset(info.lb()),
                    io.wrapping_offset(info.lb()),
                );
                if (a as usize) < (b as usize) + len && (b as usize) < (a as usize) + len {
                    return Err(MpiError::new(MPI_ERR_BUFFER, "inbuf and inoutbuf overlap"));
                }
                // SAFETY: the data of `count` contiguous elements is the `len` bytes at
                // `a` (resp. `b`) of the caller's buffers, which do not overlap.
                let (a, b) = unsafe { (mem::bytes(a, len), mem::bytes_mut(b, len)) };
                k.reduce(a, b);
            }
            (_, Some(k)) => {
                let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
                // SAFETY: both buffers hold `count` elements of the type (the caller's
                // obligation), inoutbuf writable; the packed copies are ours.
                unsafe {
                    info.pack(inp, n, &mut a);
                    info.pack(io, n, &mut b);
                    k.reduce(&a, &mut b);
                    info.unpack(&b, io, n);
                }
            }
            (Kind::Predefined(_), None) => unreachable!("a predefined op has a kernel"),
        }
        Ok(())
    })();
    finish("MPI_Reduce_local", MPI_COMM_WORLD, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const INT: c_int = 0x4c00_0405;
    const DOUBLE: c_int = 0x4c00_080b;
    const WCHAR: c_int = 0x4c00_040e;
    const DOUBLE_INT: c_int = 0x8c00_0001_u32 as c_int;
    const SHORT_INT: c_int = 0x8c00_0003_u32 as c_int;
    const TWO_INT: c_int = 0x4c00_0816;
    const SUM: c_int = 0x5800_0003;
    const MAX: c_int = 0x5800_0001;
    const MINLOC: c_int = 0x5800_000b;
    const MAXLOC: c_int = 0x5800_000c;
    const REPLACE: c_int = 0x5800_000d;

    fn committed(f: impl FnOnce(*mut c_int) -> c_int) -> c_int {
        let mut h = 0;
        assert_eq!(f(&mut h), MPI_SUCCESS);
        assert_eq!(crate::datatype::ffi::MPI_Type_commit(&mut h), MPI_SUCCESS);
        h
    }

    fn ints(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    fn to_ints(b: &[u8]) -> Vec<i32> {
        b.chunks_exact(4)
            .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
            .collect()
    }

    #[test]
    fn predefined_ops_on_derived_types() {
        let c3 = committed(|p| crate::datatype::ffi::MPI_Type_contiguous(3, INT, p));
        let r = reducer(SUM, c3).unwrap();
        // Split at basic elements, as 3 MPI_INTs are (the same type signature).
        assert_eq!((r.elem_size(), r.commutative()), (4, true));
        let mut io = ints(&[1, 2, 3, 4, 5, 6]);
        r.reduce(&ints(&[10, 20, 30, 40, 50, 60]), &mut io);
        assert_eq!(to_ints(&io), [11, 22, 33, 44, 55, 66]);
        // a non-contiguous vector of doubles: packed data is just doubles
        let v = committed(|p| crate::datatype::ffi::MPI_Type_vector(2, 1, 3, DOUBLE, p));
        let r = reducer(MAX, v).unwrap();
        assert_eq!(r.elem_size(), 8);
        let f = |v: &[f64]| v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>();
        let mut io = f(&[1.0, 5.0]);
        r.reduce(&f(&[2.0, -1.0]), &mut io);
        assert_eq!(io, f(&[2.0, 5.0]));
        let r = reducer(REPLACE, v).unwrap();
        assert!(!r.commutative());
    }

    /// Packed (value, index) pairs of a pair type whose value is `vsize` bytes.
    fn pairs<V: Copy>(v: &[(V, i32)], to: fn(V) -> Vec<u8>) -> Vec<u8> {
        v.iter()
            .flat_map(|&(x, i)| [to(x), i.to_ne_bytes().to_vec()].concat())
            .collect()
    }

    #[test]
    fn minloc_and_maxloc_on_packed_pair_types() {
        let d = |x: f64| x.to_ne_bytes().to_vec();
        let r = reducer(MINLOC, DOUBLE_INT).unwrap();
        assert_eq!(r.elem_size(), 12);
        let input = pairs(&[(1.0, 7), (3.0, 1), (2.0, 5)], d);
        let mut io = pairs(&[(2.0, 0), (3.0, 4), (-1.0, 9)], d);
        r.reduce(&input, &mut io);
        assert_eq!(io, pairs(&[(1.0, 7), (3.0, 1), (-1.0, 9)], d));
        // more than one batch of the widening loop
        let n = 200;
        let a: Vec<(f64, i32)> = (0..n).map(|i| (f64::from(i % 7), i)).collect();
        let b: Vec<(f64, i32)> = (0..n).map(|i| (f64::from(i % 5), n - i)).collect();
        let mut io = pairs(&b, d);
        reducer(MAXLOC, DOUBLE_INT)
            .unwrap()
            .reduce(&pairs(&a, d), &mut io);
        let want: Vec<(f64, i32)> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| match x.0.partial_cmp(&y.0).unwrap() {
                std::cmp::Ordering::Greater => x,
                std::cmp::Ordering::Less => y,
                std::cmp::Ordering::Equal => (x.0, x.1.min(y.1)),
            })
            .collect();
        assert_eq!(io, pairs(&want, d));
        // short_int: value 2 bytes, index at 4 in the struct, 6 bytes packed
        let s = |x: i16| x.to_ne_bytes().to_vec();
        let r = reducer(MINLOC, SHORT_INT).unwrap();
        assert_eq!(r.elem_size(), 6);
        let mut io = pairs(&[(5i16, 1), (-3, 2)], s);
        r.reduce(&pairs(&[(5i16, 0), (-2, 0)], s), &mut io);
        assert_eq!(io, pairs(&[(5i16, 0), (-3, 2)], s));
        // 2int has no padding: the kernel runs on the packed bytes
        let r = reducer(MAXLOC, TWO_INT).unwrap();
        let mut io = ints(&[3, 9]);
        r.reduce(&ints(&[4, 1]), &mut io);
        assert_eq!(to_ints(&io), [4, 1]);
        // a contiguous type of pairs
        let c2 = committed(|p| crate::datatype::ffi::MPI_Type_contiguous(2, SHORT_INT, p));
        let r = reducer(MAXLOC, c2).unwrap();
        // Split at whole pairs: the unit of a type of pairs is one pair.
        assert_eq!(r.elem_size(), 6);
        let mut io = pairs(&[(1i16, 1), (2, 2)], s);
        r.reduce(&pairs(&[(0i16, 0), (3, 3)], s), &mut io);
        assert_eq!(io, pairs(&[(1i16, 1), (3, 3)], s));
    }

    #[test]
    fn undefined_combinations_are_op_errors() {
        let class = |op, t| reducer(op, t).err().map(|e| e.class);
        assert_eq!(class(SUM, WCHAR), Some(MPI_ERR_OP));
        assert_eq!(class(MINLOC, INT), Some(MPI_ERR_OP));
        assert_eq!(class(SUM, DOUBLE_INT), Some(MPI_ERR_OP));
        assert_eq!(class(MPI_OP_NULL, INT), Some(MPI_ERR_OP));
        assert_eq!(class(0x9800_0000_u32 as c_int, INT), Some(MPI_ERR_OP));
        assert_eq!(class(SUM, MPI_DATATYPE_NULL), Some(MPI_ERR_TYPE));
        let e = reducer(SUM, WCHAR).err().unwrap();
        assert!(
            e.what.contains("MPI_SUM") && e.what.contains("MPI_WCHAR"),
            "{}",
            e.what
        );
        // a struct mixing int and double
        let (bl, dp, ty) = ([1, 1], [0isize, 8], [INT, DOUBLE]);
        let s = committed(|p| {
            crate::datatype::ffi::MPI_Type_create_struct(
                2,
                bl.as_ptr(),
                dp.as_ptr(),
                ty.as_ptr(),
                p,
            )
        });
        assert_eq!(class(SUM, s), Some(MPI_ERR_OP));
        assert!(reducer(REPLACE, s).is_ok());
        // uncommitted
        let mut u = 0;
        assert_eq!(crate::datatype::ffi::MPI_Type_contiguous(2, INT, &mut u), 0);
        assert_eq!(class(SUM, u), Some(MPI_ERR_TYPE));
    }

    thread_local! {
        static SEEN: Cell<(c_int, c_int)> = const { Cell::new((0, 0)) };
    }

    /// a op b = a + b + 1 on ints, recording (len, datatype).
    unsafe extern "C" fn plus1(a: *mut c_void, b: *mut c_void, len: *mut c_int, dt: *mut c_int) {
        // SAFETY: called by the op module with `*len` ints at `a` and `b`.
        unsafe {
            SEEN.with(|s| s.set((*len, *dt)));
            let (a, b) = (a.cast::<i32>(), b.cast::<i32>());
            for k in 0..*len as usize {
                *b.add(k) += *a.add(k) + 1;
            }
        }
    }

    /// On a type of `{int, hole, int}` elements (vector(2,1,2,INT)), first - second.
    unsafe extern "C" fn diff(a: *mut c_void, b: *mut c_void, len: *mut c_int, dt: *mut c_int) {
        // SAFETY: `*len` elements of 12 bytes extent (ints at 0 and 8).
        unsafe {
            SEEN.with(|s| s.set((*len, *dt)));
            let (a, b) = (a.cast::<i32>(), b.cast::<i32>());
            for k in 0..*len as usize {
                *b.add(3 * k) = *a.add(3 * k) - *b.add(3 * k);
                *b.add(3 * k + 2) = *a.add(3 * k + 2) - *b.add(3 * k + 2);
                assert_eq!(*b.add(3 * k + 1), 0, "the hole is zero scratch");
            }
        }
    }

    #[test]
    fn user_ops() {
        let mut op = 0;
        assert_eq!(MPI_Op_create(Some(plus1), 1, &mut op), MPI_SUCCESS);
        let mut c = -1;
        assert_eq!(MPI_Op_commutative(op, &mut c), 0);
        assert_eq!(c, 1);
        let r = reducer(op, INT).unwrap();
        let mut io = ints(&[1, 2, 3]);
        r.reduce(&ints(&[10, 20, 30]), &mut io);
        assert_eq!(to_ints(&io), [12, 23, 34]);
        assert_eq!(SEEN.with(|s| s.get()), (3, INT));
        // misaligned packed bytes go through aligned scratch
        let mut a = vec![0u8; 1];
        a.extend(ints(&[1, 1]));
        let mut b = vec![0u8; 1];
        b.extend(ints(&[5, 6]));
        r.reduce(&a[1..], &mut b[1..]);
        assert_eq!(to_ints(&b[1..]), [7, 8]);
        // Reduce_local
        let (x, mut y) = ([1i32, 2], [3i32, 4]);
        let rc = MPI_Reduce_local(x.as_ptr().cast(), y.as_mut_ptr().cast(), 2, INT, op);
        assert_eq!((rc, y), (0, [5, 7]));
        // freeing keeps it for the reducer
        let mut f = op;
        assert_eq!(MPI_Op_free(&mut f), 0);
        assert_eq!(f, MPI_OP_NULL);
        r.reduce(&ints(&[0, 0, 0]), &mut io);
        assert_eq!(to_ints(&io), [13, 24, 35]);
        assert_eq!(reducer(op, INT).err().map(|e| e.class), Some(MPI_ERR_OP));

        // non-commutative on a non-contiguous type: unpacked, called, packed back
        let v = committed(|p| crate::datatype::ffi::MPI_Type_vector(2, 1, 2, INT, p));
        let mut op = 0;
        assert_eq!(MPI_Op_create(Some(diff), 0, &mut op), 0);
        let r = reducer(op, v).unwrap();
        assert_eq!((r.elem_size(), r.commutative()), (8, false));
        let mut io = ints(&[1, 2, 3, 4]);
        r.reduce(&ints(&[10, 20, 30, 40]), &mut io);
        assert_eq!(to_ints(&io), [9, 18, 27, 36]);
        assert_eq!(SEEN.with(|s| s.get()), (2, v));
        let mut f = op;
        assert_eq!(MPI_Op_free(&mut f), 0);
    }

    #[test]
    fn reduce_local_on_a_non_contiguous_type() {
        let v = committed(|p| crate::datatype::ffi::MPI_Type_vector(2, 1, 2, INT, p));
        let (a, mut b) = ([1i32, -1, 2, -1, 3, -1], [10i32, 7, 20, 7, 30, 7]);
        // two elements of extent 12 bytes: ints 0, 2 and 3, 5
        let rc = MPI_Reduce_local(a.as_ptr().cast(), b.as_mut_ptr().cast(), 2, v, SUM);
        assert_eq!(rc, 0);
        assert_eq!(b, [11, 7, 22, -1 + 7, 30, 6]);
        let rc = MPI_Reduce_local(a.as_ptr().cast(), b.as_mut_ptr().cast(), 0, INT, SUM);
        assert_eq!((rc, b[0]), (0, 11));
    }
}
