//! The fast entries of small blocking collectives: a call of predefined types (and a
//! predefined op) whose data fits one publication of the shared-memory slots goes
//! straight to `Communicator::*_small`, without the staging and the operation the
//! general path builds (about 500 instructions of a 16-byte `MPI_Allreduce`'s 2,000,
//! measured with callgrind at 2 ranks).
//!
//! Each entry returns `None` (having done nothing) when the call is not such a call, or
//! when any argument is one the general path would refuse: that path then checks the
//! arguments, reports what is wrong and runs the call. So an entry only ever decides
//! which path a valid call takes, and both paths publish alike (a rank on either meets
//! the others in the same call).

use super::rust_coll_error;
use crate::error::finish;
use crate::{datatype, raw, state};
use std::ffi::{c_int, c_void};
use zerorank::collective::SMALL_BYTES;

/// Bytes of `count` elements of predefined type `ty`, when its elements lie back to back
/// and the call is small and not empty.
fn small_len(count: c_int, ty: c_int) -> Option<usize> {
    let len = usize::try_from(count).ok()? * datatype::packed_builtin_size(ty)?;
    (len > 0 && len <= SMALL_BYTES).then_some(len)
}

/// `len` bytes at `p`, to read.
///
/// # Safety
/// Under MPI, the caller's: `p` holds `len` bytes, valid for the call.
unsafe fn input<'a>(p: *const c_void, len: usize) -> &'a [u8] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(p.cast(), len) }
}

/// `len` bytes at `p`, to write.
///
/// # Safety
/// Under MPI, the caller's: `p` holds `len` bytes, the call's alone until it returns.
unsafe fn output<'a>(p: *mut c_void, len: usize) -> &'a mut [u8] {
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(p.cast(), len) }
}

/// `MPI_Allreduce`'s fast entry.
pub(super) fn allreduce(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    comm: c_int,
) -> Option<c_int> {
    let len = small_len(count, ty)?;
    if send.is_null() || recv.is_null() {
        return None;
    }
    let r = crate::op::predefined_reducer(op, ty)?;
    let c = state::communicator(comm).ok()?;
    // SAFETY: the buffers hold `count` elements of `ty` (MPI); in place, the receive
    // buffer is the operand, read before it is written.
    let (send, recv) = unsafe {
        let s = (!raw::in_place(send)).then(|| input(send, len));
        (s, output(recv, len))
    };
    let r = c.all_reduce_small(send, recv, &*r)?;
    Some(finish("MPI_Allreduce", comm, r.map_err(rust_coll_error)))
}

/// `MPI_Reduce`'s fast entry.
pub(super) fn reduce(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    root: c_int,
    comm: c_int,
) -> Option<c_int> {
    let len = small_len(count, ty)?;
    let r = crate::op::predefined_reducer(op, ty)?;
    let c = state::communicator(comm).ok()?;
    let at_root = c.rank() == root;
    let in_place = raw::in_place(send);
    if send.is_null() || (at_root && recv.is_null()) || (in_place && !at_root) {
        return None;
    }
    // SAFETY: the buffers hold `count` elements of `ty` (MPI); the receive buffer counts
    // at the root only.
    let (send, recv) = unsafe {
        let s = (!in_place).then(|| input(send, len));
        (s, at_root.then(|| output(recv, len)))
    };
    let r = c.reduce_small(root, send, recv, &*r)?;
    Some(finish("MPI_Reduce", comm, r.map_err(rust_coll_error)))
}

/// `MPI_Bcast`'s fast entry.
pub(super) fn bcast(
    buf: *mut c_void,
    count: c_int,
    ty: c_int,
    root: c_int,
    comm: c_int,
) -> Option<c_int> {
    let len = small_len(count, ty)?;
    if buf.is_null() {
        return None;
    }
    let c = state::communicator(comm).ok()?;
    // SAFETY: the buffer holds `count` elements of `ty` (MPI).
    let r = c.broadcast_small(root, unsafe { output(buf, len) })?;
    Some(finish("MPI_Bcast", comm, r.map_err(rust_coll_error)))
}

/// `MPI_Allgather`'s fast entry: blocks of one predefined type and count on both sides.
#[allow(clippy::too_many_arguments)]
pub(super) fn allgather(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    comm: c_int,
) -> Option<c_int> {
    let block = small_len(rcount, rtype)?;
    let in_place = raw::in_place(send);
    if !in_place && (scount != rcount || stype != rtype || send.is_null()) || recv.is_null() {
        return None;
    }
    let c = state::communicator(comm).ok()?;
    let all = block * c.size() as usize;
    // SAFETY: the send buffer holds `scount` elements of `stype` (as many bytes as a
    // block), the receive buffer one block per rank (MPI).
    let (send, recv) = unsafe {
        let s = (!in_place).then(|| input(send, block));
        (s, output(recv, all))
    };
    let r = c.all_gather_small(send, recv)?;
    Some(finish("MPI_Allgather", comm, r.map_err(rust_coll_error)))
}
