//! Matched probes: `MPI_Mprobe`, `MPI_Improbe`, `MPI_Mrecv`, `MPI_Imrecv`.
//!
//! A matched probe finds a message as `MPI_Probe` does and takes it out of matching at
//! once, so no other receive can have it: it posts a receive for exactly that message
//! (its source and tag) into a staging buffer of the message's size. That receive
//! matches this very message: the probe found the first message its pattern accepts,
//! and every earlier message from the same source with the same tag would have been
//! accepted first (MPI keeps each sender's messages in order). `MPI_Mrecv` and
//! `MPI_Imrecv` then complete that receive and unpack the staging buffer into the
//! program's; a message longer than the receive is `MPI_ERR_TRUNCATE`, as for any
//! receive.

use crate::abi::*;
use crate::error::{finish, raise, MpiError};
use crate::p2p::{self, Peer};
use crate::raw;
use crate::state::{self, CRequest, Unpack};
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use zerorank::Communicator;
use zerorank_transport::fabric::userbuf::RecvBufRef;
use zerorank_transport::fabric::ReqId;
use zerorank_transport::matching::Pattern;

/// `MPI_MESSAGE_NULL` and `MPI_MESSAGE_NO_PROC` (a message from `MPI_PROC_NULL`).
const MESSAGE_NULL: c_int = 0x2c00_0000;
const MESSAGE_NO_PROC: c_int = 0x6c00_0000;
/// First message handle.
const MESSAGE_BASE: c_int = 0xac00_0000u32 as c_int;

/// A matched message: the receive that has it, into `staging`.
struct Message {
    comm_h: c_int,
    comm: Communicator,
    id: ReqId,
    staging: Vec<u8>,
}

thread_local! {
    static MESSAGES: RefCell<Vec<Option<Message>>> = const { RefCell::new(Vec::new()) };
}

fn index(h: c_int) -> Option<usize> {
    usize::try_from(h.checked_sub(MESSAGE_BASE)?).ok()
}

fn add(m: Message) -> c_int {
    MESSAGES.with(|t| MESSAGE_BASE + state::fill_slot(&mut t.borrow_mut(), 0, m) as c_int)
}

fn take(h: c_int) -> Result<Message, MpiError> {
    MESSAGES.with(|t| {
        index(h)
            .and_then(|i| t.borrow_mut().get_mut(i).and_then(Option::take))
            .ok_or_else(|| {
                let what = if h == MESSAGE_NULL {
                    "MPI_MESSAGE_NULL is not a message".to_string()
                } else {
                    format!("invalid message handle {h:#x}")
                };
                MpiError::new(MPI_ERR_REQUEST, what)
            })
    })
}

/// Probe (waiting if `block`) and match: the message handle and its status.
fn mprobe(
    source: c_int,
    tag: c_int,
    comm: c_int,
    block: bool,
) -> Result<Option<(c_int, MpiStatus)>, MpiError> {
    let a = p2p::check(comm, 0, MPI_BYTE, source, tag, true)?;
    let Peer::Rank(src) = a.peer else {
        return Ok(Some((MESSAGE_NO_PROC, MpiStatus::proc_null())));
    };
    let f = a.comm.comm.fabric();
    let pat = p2p::pattern(&a, src);
    let found = if block {
        Some(f.probe(&pat).map_err(p2p::op_error)?)
    } else {
        f.iprobe(&pat).map_err(p2p::op_error)?
    };
    let Some((env, len)) = found else {
        return Ok(None);
    };
    let mut staging = vec![0u8; len];
    let exact = Pattern {
        comm: env.comm,
        src: Some(env.src),
        tag: Some(env.tag),
    };
    // SAFETY: the staging vector moves into the message, which keeps it (its heap block
    // does not move) until the receive completes in MPI_Mrecv/MPI_Imrecv.
    let id = unsafe { f.irecv(exact, RecvBufRef::from_slice(&mut staging)) };
    let source = a.comm.comm.rank_of_world(env.src).unwrap_or(MPI_ANY_SOURCE);
    let st = MpiStatus::new(source, env.tag, len, false);
    let h = add(Message {
        comm_h: comm,
        comm: a.comm.comm.clone(),
        id,
        staging,
    });
    Ok(Some((h, st)))
}

/// `MPI_Mprobe`.
#[no_mangle]
pub extern "C" fn MPI_Mprobe(
    source: c_int,
    tag: c_int,
    comm: c_int,
    message: *mut c_int,
    status: *mut MpiStatus,
) -> c_int {
    let r = (|| {
        if message.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "message is a null pointer"));
        }
        let (h, st) = mprobe(source, tag, comm, true)?.expect("a blocking probe finds one");
        raw::put(message, h);
        raw::put_status(status, st);
        Ok(())
    })();
    finish("MPI_Mprobe", comm, r)
}

/// `MPI_Improbe`.
#[no_mangle]
pub extern "C" fn MPI_Improbe(
    source: c_int,
    tag: c_int,
    comm: c_int,
    flag: *mut c_int,
    message: *mut c_int,
    status: *mut MpiStatus,
) -> c_int {
    let r = (|| {
        if message.is_null() || flag.is_null() {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                "flag or message is a null pointer",
            ));
        }
        match mprobe(source, tag, comm, false)? {
            None => {
                raw::put(flag, 0);
            }
            Some((h, st)) => {
                raw::put(flag, 1);
                raw::put(message, h);
                raw::put_status(status, st);
            }
        }
        Ok(())
    })();
    finish("MPI_Improbe", comm, r)
}

/// The receive of matched message `*message` into `count` elements of `datatype` at
/// `buf`; `*message` becomes `MPI_MESSAGE_NULL`. The communicator's handle comes too.
fn receive(
    buf: *mut c_void,
    count: c_int,
    datatype: c_int,
    message: *mut c_int,
) -> Result<(CRequest, c_int), MpiError> {
    let h =
        raw::get(message).ok_or_else(|| MpiError::new(MPI_ERR_ARG, "message is a null pointer"))?;
    if h == MESSAGE_NO_PROC {
        raw::put(message, MESSAGE_NULL);
        return Ok((CRequest::Done(MpiStatus::proc_null()), MPI_COMM_WORLD));
    }
    let count = usize::try_from(count)
        .map_err(|_| MpiError::new(MPI_ERR_COUNT, format!("negative count {count}")))?;
    let ty = crate::datatype::lookup(datatype)?;
    // MPI_BOTTOM is fine for a type of absolute addresses (see persistent.rs).
    if count * ty.size() > 0 && ty.is_contiguous() && buf.wrapping_byte_offset(ty.lb()).is_null() {
        return Err(MpiError::new(
            MPI_ERR_BUFFER,
            "null buffer with a non-zero count",
        ));
    }
    let m = take(h)?;
    raw::put(message, MESSAGE_NULL);
    let r = CRequest::Recv {
        id: m.id,
        comm_h: m.comm_h,
        comm: m.comm,
        unpack: Some(Unpack {
            staging: m.staging,
            ty,
            base: buf.cast(),
            count,
        }),
    };
    Ok((r, m.comm_h))
}

/// The communicator a message's errors go to (before it is received).
fn message_comm(message: *const c_int) -> c_int {
    raw::get(message)
        .and_then(|h| {
            MESSAGES.with(|t| index(h).and_then(|i| t.borrow().get(i)?.as_ref().map(|m| m.comm_h)))
        })
        .unwrap_or(MPI_COMM_WORLD)
}

/// `MPI_Mrecv`.
#[no_mangle]
pub extern "C" fn MPI_Mrecv(
    buf: *mut c_void,
    count: c_int,
    datatype: c_int,
    message: *mut c_int,
    status: *mut MpiStatus,
) -> c_int {
    let comm = message_comm(message);
    let (r, comm) = match receive(buf, count, datatype, message) {
        Ok(rc) => rc,
        Err(e) => return finish("MPI_Mrecv", comm, Err(e)),
    };
    match p2p::wait_for(r) {
        Ok(st) => {
            raw::put_status(status, st);
            MPI_SUCCESS
        }
        Err((st, e)) => {
            raw::put_status(status, st);
            raise("MPI_Mrecv", comm, e)
        }
    }
}

/// `MPI_Imrecv`.
#[no_mangle]
pub extern "C" fn MPI_Imrecv(
    buf: *mut c_void,
    count: c_int,
    datatype: c_int,
    message: *mut c_int,
    request: *mut c_int,
) -> c_int {
    let comm = message_comm(message);
    let r = (|| {
        if request.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "request is a null pointer"));
        }
        let (r, _) = receive(buf, count, datatype, message)?;
        raw::put(request, state::add_request(r));
        Ok(())
    })();
    finish("MPI_Imrecv", comm, r)
}
