//! Buffered sends: `MPI_Buffer_attach`, `MPI_Buffer_detach`, `MPI_Bsend`, `MPI_Ibsend`
//! (and `MPI_Bsend_init` through `persistent.rs`).
//!
//! A buffered send completes at once, whether or not the receive is posted: the message
//! is copied and sent from the copy. The buffer the program attached bounds how much may
//! be in flight: each message counts its packed size plus `MPI_BSEND_OVERHEAD` against
//! it until its send completes, and a message that does not fit (after the completed
//! sends are counted off) is `MPI_ERR_BUFFER`. The copies are the library's own, so the
//! program's buffer is never written, and it cannot fragment. `MPI_Buffer_detach` (and
//! `MPI_Finalize`) wait until every buffered message has gone.

use crate::abi::*;
use crate::error::{finish, MpiError};
use crate::p2p::{self, Args, Peer};
use crate::raw;
use crate::state;
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use zerorank::Communicator;
use zerorank_transport::fabric::userbuf::SendBuf;
use zerorank_transport::fabric::{ReqId, SendMode};

/// A buffered message in flight.
struct Pending {
    comm: Communicator,
    id: ReqId,
    /// The copy the send reads; kept until it completes.
    _copy: Vec<u8>,
    /// What it counts against the attached buffer.
    charge: usize,
}

/// The attached buffer and what is in flight against it.
struct Attached {
    base: *mut c_void,
    size: usize,
    used: usize,
    pending: Vec<Pending>,
}

thread_local! {
    static BUFFER: RefCell<Option<Attached>> = const { RefCell::new(None) };
}

/// Log a buffered send that failed: nobody waits for it.
fn report(e: zerorank_transport::fabric::OpError) {
    tracing::warn!(error = %e, "a buffered send (MPI_Bsend) failed after it was buffered");
}

/// Count off the buffered sends that have completed.
fn reap() {
    let pending = BUFFER.with(|b| {
        b.borrow_mut()
            .as_mut()
            .map(|a| std::mem::take(&mut a.pending))
            .unwrap_or_default()
    });
    let mut freed = 0;
    let mut still = Vec::with_capacity(pending.len());
    for p in pending {
        match p.comm.fabric().test(p.id) {
            None => still.push(p),
            Some(r) => {
                if let Err(e) = r {
                    report(e);
                }
                freed += p.charge;
            }
        }
    }
    BUFFER.with(|b| {
        let mut b = b.borrow_mut();
        let a = b
            .as_mut()
            .expect("the buffer stays attached while a send is buffered");
        assert!(a.used >= freed, "buffered sends freed more than they used");
        a.used -= freed;
        still.append(&mut a.pending);
        a.pending = still;
    });
}

/// Wait until every buffered send has completed.
fn drain() {
    let pending = BUFFER.with(|b| {
        b.borrow_mut()
            .as_mut()
            .map(|a| std::mem::take(&mut a.pending))
            .unwrap_or_default()
    });
    for p in pending {
        if let Err(e) = p.comm.fabric().wait(p.id) {
            report(e);
        }
        BUFFER.with(|b| {
            if let Some(a) = b.borrow_mut().as_mut() {
                a.used -= p.charge;
            }
        });
    }
}

/// Send with the checked arguments `a` through the attached buffer.
pub(crate) fn bsend(a: &Args, buf: *const c_void) -> Result<(), MpiError> {
    let Peer::Rank(Some(dst)) = a.peer else {
        return Ok(());
    };
    let copy = match p2p::send_data(buf, a.count, &a.ty)? {
        p2p::SendData::Direct(b) => b.to_vec(),
        p2p::SendData::Packed(v) => v,
    };
    let charge = copy.len() + MPI_BSEND_OVERHEAD;
    let fits = |reap_first: bool| -> Result<bool, MpiError> {
        if reap_first {
            reap();
        }
        BUFFER.with(|b| match b.borrow().as_ref() {
            None => Err(MpiError::new(
                MPI_ERR_BUFFER,
                "no buffer is attached (MPI_Buffer_attach) for a buffered send",
            )),
            Some(at) => Ok(at.used + charge <= at.size),
        })
    };
    if !fits(false)? && !fits(true)? {
        let (size, used) = BUFFER.with(|b| {
            let b = b.borrow();
            let at = b.as_ref().expect("checked above");
            (at.size, at.used)
        });
        return Err(MpiError::new(
            MPI_ERR_BUFFER,
            format!(
                "the attached buffer of {size} bytes has {} free; this message needs {} \
                 ({} bytes + MPI_BSEND_OVERHEAD)",
                size - used,
                charge,
                copy.len()
            ),
        ));
    }
    let tag = a.tag.expect("a send has a tag");
    let comm = a.comm.comm.clone();
    // SAFETY: the copy moves into the pending list, which keeps it (its heap block does
    // not move) until the send completes.
    let id = unsafe {
        comm.fabric().isend(
            dst,
            comm.context(),
            tag,
            SendBuf::from_slice(&copy),
            SendMode::Standard,
        )
    };
    BUFFER.with(|b| {
        let mut b = b.borrow_mut();
        let at = b.as_mut().expect("checked above");
        at.used += charge;
        at.pending.push(Pending {
            comm,
            id,
            _copy: copy,
            charge,
        });
    });
    Ok(())
}

/// Wait for every buffered send (at `MPI_Finalize`).
pub(crate) fn flush() {
    drain();
}

/// `MPI_Buffer_attach`.
#[no_mangle]
pub extern "C" fn MPI_Buffer_attach(buffer: *mut c_void, size: c_int) -> c_int {
    let r = state::with(|s| s.running()).and_then(|()| {
        let size = usize::try_from(size)
            .map_err(|_| MpiError::new(MPI_ERR_ARG, format!("negative size {size}")))?;
        if buffer.is_null() && size > 0 {
            return Err(MpiError::new(
                MPI_ERR_BUFFER,
                "null buffer with a non-zero size",
            ));
        }
        BUFFER.with(|b| {
            let mut b = b.borrow_mut();
            if let Some(at) = b.as_ref() {
                return Err(MpiError::new(
                    MPI_ERR_BUFFER,
                    format!(
                        "a buffer of {} bytes is attached already (detach it first)",
                        at.size
                    ),
                ));
            }
            *b = Some(Attached {
                base: buffer,
                size,
                used: 0,
                pending: Vec::new(),
            });
            Ok(())
        })
    });
    finish("MPI_Buffer_attach", MPI_COMM_WORLD, r)
}

/// `MPI_Buffer_detach`: waits for the buffered sends, then gives back the buffer's
/// address (through `buffer_addr`, a `void **`) and size. With no buffer attached: a null
/// address and size 0.
#[no_mangle]
pub extern "C" fn MPI_Buffer_detach(buffer_addr: *mut c_void, size: *mut c_int) -> c_int {
    let r = state::with(|s| s.running()).and_then(|()| {
        if buffer_addr.is_null() || size.is_null() {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                "buffer_addr or size is a null pointer",
            ));
        }
        drain();
        let at = BUFFER.with(|b| b.borrow_mut().take());
        let (base, n) = at.map_or((std::ptr::null_mut(), 0), |a| {
            assert!(
                a.pending.is_empty() && a.used == 0,
                "detached with sends in flight"
            );
            (a.base, a.size)
        });
        raw::put(buffer_addr.cast::<*mut c_void>(), base);
        raw::put(size, c_int::try_from(n).expect("the size came as an int"));
        Ok(())
    });
    finish("MPI_Buffer_detach", MPI_COMM_WORLD, r)
}

/// `MPI_Bsend`.
#[no_mangle]
pub extern "C" fn MPI_Bsend(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
) -> c_int {
    let r = p2p::check(comm, count, datatype, dest, tag, false).and_then(|a| bsend(&a, buf));
    finish("MPI_Bsend", comm, r)
}

/// `MPI_Ibsend`: the message is buffered at once, so the request is complete.
#[no_mangle]
pub extern "C" fn MPI_Ibsend(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let r = p2p::check(comm, count, datatype, dest, tag, false).and_then(|a| {
        if request.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "request is a null pointer"));
        }
        bsend(&a, buf)?;
        let st = MpiStatus::new(MPI_PROC_NULL, MPI_ANY_TAG, 0, false);
        raw::put(request, state::add_request(state::CRequest::Done(st)));
        Ok(())
    });
    finish("MPI_Ibsend", comm, r)
}
