//! Point-to-point: blocking and immediate sends and receives, completion and probes, on
//! contiguous buffers of basic datatypes.

use crate::abi::*;
use crate::comm::Comm;
use crate::datatype;
use crate::error::{finish, MpiError};
use crate::raw;
use crate::state::{self, CRequest, State};
use std::ffi::{c_int, c_void};
use zerorank_transport::fabric::userbuf::{RecvBufRef, SendBuf};
use zerorank_transport::fabric::{OpError, SendMode, Status};
use zerorank_transport::matching::Pattern;

/// Where a message goes or comes from, after checking the arguments.
enum Peer {
    /// `MPI_PROC_NULL`: the operation completes at once and moves nothing.
    Null,
    /// A world rank (`None`: any source).
    Rank(Option<u32>),
}

/// Checked arguments of a send or receive.
struct Args {
    comm: Comm,
    bytes: usize,
    peer: Peer,
    tag: Option<i32>,
}

fn check(
    s: &State,
    comm: c_int,
    count: c_int,
    datatype: c_int,
    rank: c_int,
    tag: c_int,
    recv: bool,
) -> Result<Args, MpiError> {
    let f = s.fabric()?;
    let c = Comm::checked(comm)?;
    if count < 0 {
        return Err(MpiError::new(
            MPI_ERR_COUNT,
            format!("negative count {count}"),
        ));
    }
    let ty = datatype::basic(datatype).ok_or_else(|| {
        MpiError::new(
            MPI_ERR_TYPE,
            format!("invalid or unsupported datatype {datatype:#x}"),
        )
    })?;
    let size = c.size(f.size());
    let peer = match rank {
        MPI_PROC_NULL => Peer::Null,
        MPI_ANY_SOURCE if recv => Peer::Rank(None),
        r if (0..size as c_int).contains(&r) => Peer::Rank(Some(c.to_world(r as u32, f.rank()))),
        r => {
            return Err(MpiError::new(
                MPI_ERR_RANK,
                format!("rank {r} is not in the communicator of {size} ranks"),
            ))
        }
    };
    let tag = match tag {
        MPI_ANY_TAG if recv => None,
        t if t >= 0 => Some(t),
        t => return Err(MpiError::new(MPI_ERR_TAG, format!("invalid tag {t}"))),
    };
    Ok(Args {
        comm: c,
        bytes: count as usize * ty.size,
        peer,
        tag,
    })
}

fn op_error(e: OpError) -> MpiError {
    MpiError::new(MPI_ERR_OTHER, e.to_string())
}

/// The MPI status of a completed receive on `comm`; truncation is an error.
fn recv_status(comm: Comm, st: &Status) -> Result<MpiStatus, (MpiStatus, MpiError)> {
    let mut s = MpiStatus::new(comm.rank_of_world(st.source), st.tag, st.len, st.cancelled);
    if st.truncated() {
        s.error = MPI_ERR_TRUNCATE;
        let e = MpiError::new(
            MPI_ERR_TRUNCATE,
            format!(
                "rank {} sent {} bytes with tag {}, the receive buffer holds {}",
                s.source, st.sent, st.tag, st.len
            ),
        );
        return Err((s, e));
    }
    Ok(s)
}

fn bad_buffer() -> MpiError {
    MpiError::new(MPI_ERR_BUFFER, "null buffer with a non-zero count")
}

fn start_send(s: &mut State, a: &Args, buf: *const c_void, ssend: bool) -> Result<c_int, MpiError> {
    let Peer::Rank(Some(dst)) = a.peer else {
        return Ok(s.add_request(CRequest::Done(MpiStatus::proc_null())));
    };
    let bytes = raw::bytes(buf.cast(), a.bytes).ok_or_else(bad_buffer)?;
    let mode = if ssend {
        SendMode::Synchronous
    } else {
        SendMode::Standard
    };
    let tag = a.tag.expect("a send has a tag");
    // SAFETY (the caller's, under MPI): the buffer stays valid and unmodified until the
    // request completes.
    let id = unsafe {
        s.fabric()?
            .isend(dst, a.comm.context(), tag, SendBuf::from_slice(bytes), mode)
    };
    Ok(s.add_request(CRequest::Live {
        id,
        recv: false,
        comm: 0,
    }))
}

fn start_recv(s: &mut State, a: &Args, buf: *mut c_void, comm: c_int) -> Result<c_int, MpiError> {
    let Peer::Rank(src) = a.peer else {
        return Ok(s.add_request(CRequest::Done(MpiStatus::proc_null())));
    };
    let bytes = raw::bytes_mut(buf.cast(), a.bytes).ok_or_else(bad_buffer)?;
    let pat = Pattern {
        comm: a.comm.context(),
        src,
        tag: a.tag,
    };
    // SAFETY (the caller's, under MPI): the buffer stays valid and untouched until the
    // request completes.
    let id = unsafe { s.fabric()?.irecv(pat, RecvBufRef::from_slice(bytes)) };
    Ok(s.add_request(CRequest::Live {
        id,
        recv: true,
        comm,
    }))
}

/// Complete request `handle` (waiting if `block`); `None` if not done yet. The handle is
/// released when it completes.
fn complete(s: &mut State, handle: c_int, block: bool) -> Result<Option<MpiStatus>, MpiError> {
    let r = s.request(handle)?;
    let out = match r {
        CRequest::Done(st) => Ok(st),
        CRequest::Live { id, recv, comm } => {
            let f = s.fabric()?;
            let outcome = if block {
                f.wait(id)
            } else {
                match f.test(id) {
                    Some(o) => o,
                    None => return Ok(None),
                }
            };
            match outcome {
                Err(e) => Err(op_error(e)),
                Ok(st) if recv => {
                    let c = Comm::from_handle(comm).expect("checked when posted");
                    match recv_status(c, &st) {
                        Ok(ms) => Ok(ms),
                        Err((_, e)) => Err(e),
                    }
                }
                Ok(st) => Ok(MpiStatus::new(MPI_PROC_NULL, MPI_ANY_TAG, st.len, false)),
            }
        }
    };
    s.remove_request(handle);
    out.map(Some)
}

/// `MPI_Send`.
#[no_mangle]
pub extern "C" fn MPI_Send(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
) -> c_int {
    let r = state::with(|s| {
        let a = check(s, comm, count, datatype, dest, tag, false)?;
        let Peer::Rank(Some(dst)) = a.peer else {
            return Ok(());
        };
        let bytes = raw::bytes(buf.cast(), a.bytes).ok_or_else(bad_buffer)?;
        s.fabric()?
            .send(dst, a.comm.context(), tag, bytes, SendMode::Standard)
            .map_err(op_error)
    });
    finish("MPI_Send", comm, r)
}

/// `MPI_Ssend`.
#[no_mangle]
pub extern "C" fn MPI_Ssend(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
) -> c_int {
    let r = state::with(|s| {
        let a = check(s, comm, count, datatype, dest, tag, false)?;
        let h = start_send(s, &a, buf, true)?;
        complete(s, h, true).map(|_| ())
    });
    finish("MPI_Ssend", comm, r)
}

/// `MPI_Recv`.
#[no_mangle]
pub extern "C" fn MPI_Recv(
    buf: *mut c_void,
    count: c_int,
    datatype: c_int,
    source: c_int,
    tag: c_int,
    comm: c_int,
    status: *mut MpiStatus,
) -> c_int {
    let r = state::with(|s| {
        let a = check(s, comm, count, datatype, source, tag, true)?;
        let Peer::Rank(src) = a.peer else {
            raw::put_status(status, MpiStatus::proc_null());
            return Ok(());
        };
        let bytes = raw::bytes_mut(buf.cast(), a.bytes).ok_or_else(bad_buffer)?;
        let pat = Pattern {
            comm: a.comm.context(),
            src,
            tag: a.tag,
        };
        let st = s.fabric()?.recv(pat, bytes).map_err(op_error)?;
        match recv_status(a.comm, &st) {
            Ok(ms) => {
                raw::put_status(status, ms);
                Ok(())
            }
            Err((ms, e)) => {
                raw::put_status(status, ms);
                Err(e)
            }
        }
    });
    finish("MPI_Recv", comm, r)
}

/// `MPI_Isend`.
#[no_mangle]
pub extern "C" fn MPI_Isend(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let r = state::with(|s| {
        let a = check(s, comm, count, datatype, dest, tag, false)?;
        let h = start_send(s, &a, buf, false)?;
        raw::put(request, h);
        Ok(())
    });
    finish("MPI_Isend", comm, r)
}

/// `MPI_Issend`.
#[no_mangle]
pub extern "C" fn MPI_Issend(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let r = state::with(|s| {
        let a = check(s, comm, count, datatype, dest, tag, false)?;
        let h = start_send(s, &a, buf, true)?;
        raw::put(request, h);
        Ok(())
    });
    finish("MPI_Issend", comm, r)
}

/// `MPI_Irecv`.
#[no_mangle]
pub extern "C" fn MPI_Irecv(
    buf: *mut c_void,
    count: c_int,
    datatype: c_int,
    source: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let r = state::with(|s| {
        let a = check(s, comm, count, datatype, source, tag, true)?;
        let h = start_recv(s, &a, buf, comm)?;
        raw::put(request, h);
        Ok(())
    });
    finish("MPI_Irecv", comm, r)
}

/// `MPI_Wait`.
#[no_mangle]
pub extern "C" fn MPI_Wait(request: *mut c_int, status: *mut MpiStatus) -> c_int {
    let Some(h) = raw::get(request) else {
        return finish(
            "MPI_Wait",
            MPI_COMM_WORLD,
            Err(MpiError::new(MPI_ERR_REQUEST, "null request pointer")),
        );
    };
    if h == MPI_REQUEST_NULL {
        raw::put_status(
            status,
            MpiStatus::new(MPI_ANY_SOURCE, MPI_ANY_TAG, 0, false),
        );
        return MPI_SUCCESS;
    }
    let comm = state::with(|s| match s.request(h) {
        Ok(CRequest::Live {
            comm, recv: true, ..
        }) => comm,
        _ => MPI_COMM_WORLD,
    });
    let r = state::with(|s| complete(s, h, true)).map(|st| {
        raw::put(request, MPI_REQUEST_NULL);
        raw::put_status(status, st.expect("a wait completes"));
    });
    finish("MPI_Wait", comm, r)
}

/// `MPI_Test`.
#[no_mangle]
pub extern "C" fn MPI_Test(request: *mut c_int, flag: *mut c_int, status: *mut MpiStatus) -> c_int {
    let Some(h) = raw::get(request) else {
        return finish(
            "MPI_Test",
            MPI_COMM_WORLD,
            Err(MpiError::new(MPI_ERR_REQUEST, "null request pointer")),
        );
    };
    if h == MPI_REQUEST_NULL {
        raw::put(flag, 1);
        raw::put_status(
            status,
            MpiStatus::new(MPI_ANY_SOURCE, MPI_ANY_TAG, 0, false),
        );
        return MPI_SUCCESS;
    }
    let r = state::with(|s| complete(s, h, false)).map(|st| match st {
        Some(st) => {
            raw::put(flag, 1);
            raw::put(request, MPI_REQUEST_NULL);
            raw::put_status(status, st);
        }
        None => {
            raw::put(flag, 0);
        }
    });
    finish("MPI_Test", MPI_COMM_WORLD, r)
}

/// `MPI_Waitall`: on an error, the statuses say which requests failed
/// (`MPI_ERR_IN_STATUS`).
#[no_mangle]
pub extern "C" fn MPI_Waitall(
    count: c_int,
    requests: *mut c_int,
    statuses: *mut MpiStatus,
) -> c_int {
    let Some(reqs) = raw::array_mut(requests, count.max(0) as usize) else {
        return finish(
            "MPI_Waitall",
            MPI_COMM_WORLD,
            Err(MpiError::new(MPI_ERR_ARG, "null request array")),
        );
    };
    let mut failed = None;
    for (i, h) in reqs.iter_mut().enumerate() {
        let sp = raw::status_at(statuses, i);
        if *h == MPI_REQUEST_NULL {
            raw::put(sp, MpiStatus::new(MPI_ANY_SOURCE, MPI_ANY_TAG, 0, false));
            continue;
        }
        match state::with(|s| complete(s, *h, true)) {
            Ok(st) => {
                raw::put(sp, st.expect("a wait completes"));
                *h = MPI_REQUEST_NULL;
            }
            Err(e) => {
                raw::put(
                    sp,
                    MpiStatus {
                        error: e.class,
                        ..MpiStatus::default()
                    },
                );
                *h = MPI_REQUEST_NULL;
                failed.get_or_insert(e);
            }
        }
    }
    let r = match failed {
        None => Ok(()),
        Some(e) if !statuses.is_null() && statuses as usize != raw::STATUS_IGNORE => {
            Err(MpiError::new(MPI_ERR_IN_STATUS, e.what))
        }
        Some(e) => Err(e),
    };
    finish("MPI_Waitall", MPI_COMM_WORLD, r)
}

/// `MPI_Sendrecv`.
#[no_mangle]
pub extern "C" fn MPI_Sendrecv(
    sendbuf: *const c_void,
    sendcount: c_int,
    sendtype: c_int,
    dest: c_int,
    sendtag: c_int,
    recvbuf: *mut c_void,
    recvcount: c_int,
    recvtype: c_int,
    source: c_int,
    recvtag: c_int,
    comm: c_int,
    status: *mut MpiStatus,
) -> c_int {
    let r = state::with(|s| {
        let sa = check(s, comm, sendcount, sendtype, dest, sendtag, false)?;
        let ra = check(s, comm, recvcount, recvtype, source, recvtag, true)?;
        let rh = start_recv(s, &ra, recvbuf, comm)?;
        let sh = start_send(s, &sa, sendbuf, false)?;
        let st = complete(s, rh, true);
        complete(s, sh, true)?;
        raw::put_status(status, st?.expect("a wait completes"));
        Ok(())
    });
    finish("MPI_Sendrecv", comm, r)
}

fn probe(
    s: &State,
    comm: c_int,
    source: c_int,
    tag: c_int,
    block: bool,
) -> Result<Option<MpiStatus>, MpiError> {
    let a = check(s, comm, 0, 0x4c00_010d, source, tag, true)?;
    let Peer::Rank(src) = a.peer else {
        return Ok(Some(MpiStatus::proc_null()));
    };
    let pat = Pattern {
        comm: a.comm.context(),
        src,
        tag: a.tag,
    };
    let f = s.fabric()?;
    let found = if block {
        Some(f.probe(&pat).map_err(op_error)?)
    } else {
        f.iprobe(&pat).map_err(op_error)?
    };
    Ok(found.map(|(env, len)| MpiStatus::new(a.comm.rank_of_world(env.src), env.tag, len, false)))
}

/// `MPI_Probe`.
#[no_mangle]
pub extern "C" fn MPI_Probe(
    source: c_int,
    tag: c_int,
    comm: c_int,
    status: *mut MpiStatus,
) -> c_int {
    let r = state::with(|s| probe(s, comm, source, tag, true)).map(|st| {
        raw::put_status(status, st.expect("a blocking probe finds a message"));
    });
    finish("MPI_Probe", comm, r)
}

/// `MPI_Iprobe`.
#[no_mangle]
pub extern "C" fn MPI_Iprobe(
    source: c_int,
    tag: c_int,
    comm: c_int,
    flag: *mut c_int,
    status: *mut MpiStatus,
) -> c_int {
    let r = state::with(|s| probe(s, comm, source, tag, false)).map(|st| {
        raw::put(flag, c_int::from(st.is_some()));
        if let Some(st) = st {
            raw::put_status(status, st);
        }
    });
    finish("MPI_Iprobe", comm, r)
}

/// `MPI_Get_count`: whole elements of `datatype` in the status, or `MPI_UNDEFINED`.
#[no_mangle]
pub extern "C" fn MPI_Get_count(
    status: *const MpiStatus,
    datatype: c_int,
    count: *mut c_int,
) -> c_int {
    let r = (|| {
        let st = raw::get(status).ok_or_else(|| MpiError::new(MPI_ERR_ARG, "null status"))?;
        let ty = datatype::basic(datatype).ok_or_else(|| {
            MpiError::new(MPI_ERR_TYPE, format!("invalid datatype {datatype:#x}"))
        })?;
        let bytes = st.bytes();
        let n = if bytes % ty.size as u64 == 0 {
            c_int::try_from(bytes / ty.size as u64).unwrap_or(MPI_UNDEFINED)
        } else {
            MPI_UNDEFINED
        };
        raw::put(count, n);
        Ok(())
    })();
    finish("MPI_Get_count", MPI_COMM_WORLD, r)
}
