//! Collectives of a one-rank communicator: the result is this rank's own operand, so
//! `Barrier`, `Bcast`, `Reduce`, `Allreduce` and `Allgather` are at most one copy, with
//! no schedule to build. Calls whose arguments are wrong (sizes that disagree, a bad root,
//! a missing buffer) are left to the schedules, which report them.

use super::{CollOp, RawBuf};

/// Run `op` on a one-rank communicator if it is one of the simple cases; otherwise hand
/// it back (`Err`) for the schedules.
pub(crate) fn run(op: CollOp) -> Result<(), CollOp> {
    match &op {
        CollOp::Barrier => Ok(()),
        CollOp::Bcast { root: 0, .. } => Ok(()),
        CollOp::Allreduce {
            send: Some(s),
            recv,
            op: r,
        } if whole(s, recv, r.elem_size()) => {
            copy(s, recv);
            Ok(())
        }
        CollOp::Allreduce {
            send: None,
            recv,
            op: r,
        } if recv.len().is_multiple_of(r.elem_size().max(1)) => Ok(()),
        CollOp::Reduce {
            root: 0,
            send: Some(s),
            recv: Some(recv),
            op: r,
        } if whole(s, recv, r.elem_size()) => {
            copy(s, recv);
            Ok(())
        }
        CollOp::Reduce {
            root: 0,
            send: None,
            recv: Some(recv),
            op: r,
        } if recv.len().is_multiple_of(r.elem_size().max(1)) => Ok(()),
        CollOp::Allgather {
            send: Some(s),
            recv,
            block,
        } if s.len() == *block && recv.len() == *block => {
            copy(s, recv);
            Ok(())
        }
        CollOp::Allgather {
            send: None,
            recv,
            block,
        } if recv.len() == *block => Ok(()),
        _ => Err(op),
    }
}

/// `send` and `recv` have the same length, a whole number of `elem`-byte elements.
fn whole(send: &RawBuf, recv: &RawBuf, elem: usize) -> bool {
    send.len() == recv.len() && send.len().is_multiple_of(elem.max(1))
}

fn copy(from: &RawBuf, to: &RawBuf) {
    if from.is_empty() || from.as_ptr() == to.as_ptr() {
        return;
    }
    // SAFETY: both buffers are valid for their (equal) lengths until the collective
    // completes, and `recv` is not touched by anyone else (RawBuf contract); MPI forbids a
    // send buffer that overlaps the receive buffer except by MPI_IN_PLACE (handled above).
    let (from, to) = unsafe {
        (
            std::slice::from_raw_parts(from.as_ptr(), from.len()),
            std::slice::from_raw_parts_mut(to.as_ptr() as *mut u8, to.len()),
        )
    };
    zerorank_transport::shm::copy::copy(to, from);
}
