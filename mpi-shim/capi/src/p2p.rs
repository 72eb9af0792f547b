//! Point-to-point: blocking and immediate sends and receives on any communicator and
//! any committed datatype, completion (`Wait*`, `Test*`), cancellation and probes.
//! Completion covers persistent requests (`persistent.rs`) too: completing one makes it
//! inactive and leaves its handle, and an inactive one counts as `MPI_REQUEST_NULL`.
//!
//! A contiguous datatype travels straight from and into the user's buffer. A
//! non-contiguous one is packed into a staging buffer before sending, and received into
//! one and unpacked when the receive completes.

use crate::abi::*;
use crate::datatype::{self, TypeInfo};
use crate::error::{finish, raise, MpiError};
use crate::grequest::Grequest;
use crate::raw;
use crate::state::{self, CRequest, CommEntry, Unpack};
use std::ffi::{c_int, c_void};
use zerorank::Communicator;
use zerorank_transport::fabric::userbuf::{RecvBufRef, SendBuf};
use zerorank_transport::fabric::{OpError, ReqId, SendMode, Status};
use zerorank_transport::matching::Pattern;

/// Where a message goes or comes from, after checking the arguments.
#[derive(Clone, Copy)]
pub(crate) enum Peer {
    /// `MPI_PROC_NULL`: the operation completes at once and moves nothing.
    Null,
    /// A world rank (`None`: any source).
    Rank(Option<u32>),
}

/// Checked arguments of a send or receive.
#[derive(Clone)]
pub(crate) struct Args {
    pub comm: CommEntry,
    pub ty: TypeInfo,
    pub count: usize,
    pub peer: Peer,
    pub tag: Option<i32>,
}

/// Check the arguments of a send (`recv` false) or receive.
pub(crate) fn check(
    comm: c_int,
    count: c_int,
    datatype: c_int,
    rank: c_int,
    tag: c_int,
    recv: bool,
) -> Result<Args, MpiError> {
    let c = state::comm(comm)?;
    if count < 0 {
        return Err(MpiError::new(
            MPI_ERR_COUNT,
            format!("negative count {count}"),
        ));
    }
    let ty = datatype::lookup(datatype)?;
    let size = c.comm.size();
    let peer = match rank {
        MPI_PROC_NULL => Peer::Null,
        MPI_ANY_SOURCE if recv => Peer::Rank(None),
        r if (0..size).contains(&r) => Peer::Rank(c.comm.world_rank(r)),
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
        ty,
        count: count as usize,
        peer,
        tag,
    })
}

pub(crate) fn op_error(e: OpError) -> MpiError {
    MpiError::new(MPI_ERR_OTHER, e.to_string())
}

fn bad_buffer() -> MpiError {
    MpiError::new(MPI_ERR_BUFFER, "null buffer with a non-zero count")
}

/// The MPI status of a completed receive on `comm`; truncation is an error.
fn recv_status(comm: &Communicator, st: &Status) -> Result<MpiStatus, (MpiStatus, MpiError)> {
    if st.cancelled {
        return Ok(MpiStatus::new(MPI_ANY_SOURCE, MPI_ANY_TAG, 0, true));
    }
    let source = comm.rank_of_world(st.source).unwrap_or(MPI_ANY_SOURCE);
    let mut s = MpiStatus::new(source, st.tag, st.len, false);
    if st.truncated() {
        s.error = MPI_ERR_TRUNCATE;
        let e = MpiError::new(
            MPI_ERR_TRUNCATE,
            format!(
                "rank {source} sent {} bytes with tag {}, the receive buffer holds {}",
                st.sent, st.tag, st.len
            ),
        );
        return Err((s, e));
    }
    Ok(s)
}

/// The bytes to send: the user's buffer itself for a contiguous type, else a packed copy.
pub(crate) enum SendData<'a> {
    Direct(&'a [u8]),
    Packed(Vec<u8>),
}

impl SendData<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            SendData::Direct(b) => b,
            SendData::Packed(v) => v,
        }
    }
}

/// What `count` elements of `ty` at `buf` send.
pub(crate) fn send_data<'a>(
    buf: *const c_void,
    count: usize,
    ty: &TypeInfo,
) -> Result<SendData<'a>, MpiError> {
    let len = count * ty.size();
    if len == 0 {
        return Ok(SendData::Direct(&[]));
    }
    if ty.is_contiguous() {
        let p = buf.cast::<u8>().wrapping_offset(ty.lb());
        return raw::bytes(p, len)
            .map(SendData::Direct)
            .ok_or_else(bad_buffer);
    }
    let mut v = vec![0u8; len];
    // SAFETY (the caller's, under MPI): `buf` holds `count` elements of `ty`.
    unsafe { ty.pack(buf.cast(), count, &mut v) };
    Ok(SendData::Packed(v))
}

/// Where a receive of `count` elements of `ty` at `buf` lands: the user's buffer itself
/// for a contiguous type, else a staging buffer unpacked on completion.
pub(crate) fn recv_target(
    buf: *mut c_void,
    count: usize,
    ty: &TypeInfo,
) -> Result<(RecvBufRef, Option<Unpack>), MpiError> {
    let len = count * ty.size();
    if ty.is_contiguous() || len == 0 {
        let p = buf
            .cast::<u8>()
            .wrapping_offset(if len == 0 { 0 } else { ty.lb() });
        let bytes = raw::bytes_mut(p, len).ok_or_else(bad_buffer)?;
        // SAFETY (the caller's, under MPI): the buffer stays valid and untouched until the
        // request completes.
        return Ok((unsafe { RecvBufRef::from_slice(bytes) }, None));
    }
    let mut staging = vec![0u8; len];
    // SAFETY: the staging vector moves into the request, which keeps it (its heap block
    // does not move) until the receive completes.
    let r = unsafe { RecvBufRef::from_slice(&mut staging) };
    Ok((
        r,
        Some(Unpack {
            staging,
            ty: ty.clone(),
            base: buf.cast(),
            count,
        }),
    ))
}

/// Unpack a completed receive's staging buffer (the bytes received).
fn finish_unpack(u: Unpack, received: usize) {
    // SAFETY (the caller's, under MPI): `base` holds `count` elements of the type.
    unsafe {
        u.ty.unpack(&u.staging[..received.min(u.staging.len())], u.base, u.count)
    };
}

fn start_send(
    a: &Args,
    comm_h: c_int,
    buf: *const c_void,
    mode: SendMode,
) -> Result<c_int, MpiError> {
    send_request(a, comm_h, buf, mode).map(state::add_request)
}

/// Start a send with checked arguments `a`: the request that completes it.
pub(crate) fn send_request(
    a: &Args,
    comm_h: c_int,
    buf: *const c_void,
    mode: SendMode,
) -> Result<CRequest, MpiError> {
    let Peer::Rank(Some(dst)) = a.peer else {
        return Ok(CRequest::Done(MpiStatus::proc_null()));
    };
    let data = send_data(buf, a.count, &a.ty)?;
    let tag = a.tag.expect("a send has a tag");
    let fabric = a.comm.comm.fabric();
    let (id, keep) = match data {
        // SAFETY (the caller's, under MPI): the buffer stays valid and unmodified until
        // the request completes.
        SendData::Direct(b) => (
            unsafe {
                fabric.isend(
                    dst,
                    a.comm.comm.context(),
                    tag,
                    SendBuf::from_slice(b),
                    mode,
                )
            },
            None,
        ),
        // SAFETY: the packed vector moves into the request, which keeps it (the heap block
        // does not move) until the send completes.
        SendData::Packed(v) => (
            unsafe {
                fabric.isend(
                    dst,
                    a.comm.comm.context(),
                    tag,
                    SendBuf::from_slice(&v),
                    mode,
                )
            },
            Some(v),
        ),
    };
    Ok(CRequest::Send {
        id,
        comm_h,
        comm: a.comm.comm.clone(),
        keep,
    })
}

pub(crate) fn pattern(a: &Args, src: Option<u32>) -> Pattern {
    Pattern {
        comm: a.comm.comm.context(),
        src,
        tag: a.tag,
    }
}

fn start_recv(a: &Args, comm_h: c_int, buf: *mut c_void) -> Result<c_int, MpiError> {
    recv_request(a, comm_h, buf).map(state::add_request)
}

/// Start a receive with checked arguments `a`: the request that completes it.
pub(crate) fn recv_request(
    a: &Args,
    comm_h: c_int,
    buf: *mut c_void,
) -> Result<CRequest, MpiError> {
    let Peer::Rank(src) = a.peer else {
        return Ok(CRequest::Done(MpiStatus::proc_null()));
    };
    let (target, unpack) = recv_target(buf, a.count, &a.ty)?;
    // SAFETY: see recv_target.
    let id = unsafe { a.comm.comm.fabric().irecv(pattern(a, src), target) };
    Ok(CRequest::Recv {
        id,
        comm_h,
        comm: a.comm.comm.clone(),
        unpack,
    })
}

/// The outcome of completing a request: its status, or the error with the status that
/// reports it.
type Outcome = Result<MpiStatus, (MpiStatus, MpiError)>;

fn failed(e: MpiError) -> (MpiStatus, MpiError) {
    (
        MpiStatus {
            error: e.class,
            ..MpiStatus::default()
        },
        e,
    )
}

/// The outcome of transfer `id` on `comm`'s fabric: waited for if `block`, else `None`
/// while it is still running.
fn transfer_outcome(
    comm: &Communicator,
    id: ReqId,
    block: bool,
) -> Option<Result<Status, OpError>> {
    let f = comm.fabric();
    if block {
        Some(f.wait(id))
    } else {
        f.test(id)
    }
}

/// Complete request `r` (waiting if `block`); gives it back if it has not completed.
#[allow(clippy::result_large_err)] // the request is handed back by value on purpose
fn complete(r: CRequest, block: bool) -> Result<Outcome, CRequest> {
    match r {
        CRequest::Done(st) => Ok(Ok(st)),
        CRequest::Failed { status, error, .. } => Ok(Err((status, *error))),
        CRequest::Generalized(g) => {
            if g.complete {
                Ok(g.finish())
            } else if block {
                // Only this thread could complete it (see grequest.rs).
                Ok(Err(failed(crate::grequest::Grequest::never_completes())))
            } else {
                Err(CRequest::Generalized(g))
            }
        }
        CRequest::Persistent(_) => unreachable!("complete_handle completes what one holds"),
        CRequest::Send {
            id,
            comm,
            keep,
            comm_h,
        } => {
            let Some(outcome) = transfer_outcome(&comm, id, block) else {
                return Err(CRequest::Send {
                    id,
                    comm,
                    keep,
                    comm_h,
                });
            };
            drop(keep);
            Ok(match outcome {
                Ok(st) => Ok(MpiStatus::new(MPI_PROC_NULL, MPI_ANY_TAG, st.len, false)),
                Err(e) => Err(failed(op_error(e))),
            })
        }
        CRequest::Recv {
            id,
            comm,
            unpack,
            comm_h,
        } => {
            let Some(outcome) = transfer_outcome(&comm, id, block) else {
                return Err(CRequest::Recv {
                    id,
                    comm,
                    unpack,
                    comm_h,
                });
            };
            Ok(match outcome {
                Err(e) => Err(failed(op_error(e))),
                Ok(mut st) => {
                    if let Some(u) = unpack {
                        // A matched receive (`mprobe.rs`) stages the whole message, which
                        // may be more than the receive holds: that is a truncation.
                        let holds = u.count * u.ty.size();
                        if st.len > holds {
                            st.sent = st.sent.max(st.len);
                            st.len = holds;
                        }
                        finish_unpack(u, st.len);
                    }
                    recv_status(&comm, &st)
                }
            })
        }
        CRequest::Coll {
            mut req,
            comm_h,
            after,
            keep,
        } => {
            let done = if block {
                req.wait_mut().map(|()| true)
            } else {
                req.test()
            };
            match done {
                Ok(false) => Err(CRequest::Coll {
                    req,
                    comm_h,
                    after,
                    keep,
                }),
                Err(e) => Ok(Err(failed(crate::coll::coll_error(e)))),
                Ok(true) => {
                    let r = after.map_or(Ok(()), |f| f());
                    drop(keep);
                    Ok(match r {
                        Ok(()) => Ok(MpiStatus::new(MPI_ANY_SOURCE, MPI_ANY_TAG, 0, false)),
                        Err(e) => Err(failed(e)),
                    })
                }
            }
        }
    }
}

/// A completed request's outcome, and what became of its handle.
struct Completion {
    outcome: Outcome,
    /// A persistent request: it is inactive now and keeps its handle. Any other is gone
    /// from the table, and its handle becomes `MPI_REQUEST_NULL`.
    persistent: bool,
}

impl Completion {
    /// The outcome; sets the caller's handle `h` to `MPI_REQUEST_NULL` unless it stays.
    fn settle(self, h: &mut c_int) -> Outcome {
        if !self.persistent {
            *h = MPI_REQUEST_NULL;
        }
        self.outcome
    }
}

/// Wait for request `r`, which is in no table; its outcome.
pub(crate) fn wait_for(r: CRequest) -> Result<MpiStatus, (MpiStatus, MpiError)> {
    match complete(r, true) {
        Ok(o) => o,
        Err(_) => unreachable!("a blocking completion completes"),
    }
}

/// Complete request handle `h`; `Ok(None)` when a test finds it still running. An
/// inactive persistent request completes at once with an empty status.
fn complete_handle(h: c_int, block: bool) -> Result<Option<Completion>, MpiError> {
    let r = state::take_request(h)?;
    let CRequest::Persistent(mut p) = r else {
        return match complete(r, block) {
            Ok(outcome) => Ok(Some(Completion {
                outcome,
                persistent: false,
            })),
            Err(r) => {
                state::put_back(h, r);
                Ok(None)
            }
        };
    };
    // A persistent request goes back under its handle; only the operation it runs
    // completes (no program code runs meanwhile, so nothing can take its slot).
    let outcome = match p.active.take() {
        None => Some(Ok(empty_status())),
        Some(op) => match complete(op, block) {
            Ok(o) => Some(o),
            Err(op) => {
                p.active = Some(op);
                None
            }
        },
    };
    state::put_back(h, CRequest::Persistent(p));
    Ok(outcome.map(|outcome| Completion {
        outcome,
        persistent: true,
    }))
}

/// Is `h` `MPI_REQUEST_NULL` or an inactive persistent request? (MPI treats both alike
/// in the completion calls.)
fn inactive(h: c_int) -> bool {
    h == MPI_REQUEST_NULL
        || state::peek_request(
            h,
            |r| matches!(r, CRequest::Persistent(p) if p.active.is_none()),
        )
        .unwrap_or(false)
}

/// The status of an inactive (`MPI_REQUEST_NULL`) request: empty.
fn empty_status() -> MpiStatus {
    MpiStatus::new(MPI_ANY_SOURCE, MPI_ANY_TAG, 0, false)
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
    let r = check(comm, count, datatype, dest, tag, false).and_then(|a| {
        let Peer::Rank(Some(dst)) = a.peer else {
            return Ok(());
        };
        let data = send_data(buf, a.count, &a.ty)?;
        a.comm
            .comm
            .fabric()
            .send(
                dst,
                a.comm.comm.context(),
                tag,
                data.bytes(),
                SendMode::Standard,
            )
            .map_err(op_error)
    });
    finish("MPI_Send", comm, r)
}

/// A blocking send through a request (synchronous mode).
fn send_via_request(
    name: &str,
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
    mode: SendMode,
) -> c_int {
    let r = check(comm, count, datatype, dest, tag, false).and_then(|a| {
        let h = start_send(&a, comm, buf, mode)?;
        match complete_handle(h, true)?.map(|c| c.outcome) {
            Some(Ok(_)) => Ok(()),
            Some(Err((_, e))) => Err(e),
            None => unreachable!("a blocking completion completes"),
        }
    });
    finish(name, comm, r)
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
    send_via_request(
        "MPI_Ssend",
        buf,
        count,
        datatype,
        dest,
        tag,
        comm,
        SendMode::Synchronous,
    )
}

/// `MPI_Rsend`: a ready send is a standard send (the receive is posted already, as the
/// caller promises; a standard send is correct whether or not it is).
#[no_mangle]
pub extern "C" fn MPI_Rsend(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
) -> c_int {
    MPI_Send(buf, count, datatype, dest, tag, comm)
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
    let r = check(comm, count, datatype, source, tag, true).and_then(|a| {
        let Peer::Rank(src) = a.peer else {
            raw::put_status(status, MpiStatus::proc_null());
            return Ok(());
        };
        let f = a.comm.comm.fabric();
        let outcome = if a.ty.is_contiguous() || a.count * a.ty.size() == 0 {
            let len = a.count * a.ty.size();
            let p = buf
                .cast::<u8>()
                .wrapping_offset(if len == 0 { 0 } else { a.ty.lb() });
            let bytes = raw::bytes_mut(p, len).ok_or_else(bad_buffer)?;
            let st = f.recv(pattern(&a, src), bytes).map_err(op_error)?;
            recv_status(&a.comm.comm, &st)
        } else {
            let (target, unpack) = recv_target(buf, a.count, &a.ty)?;
            // SAFETY: see recv_target; the request completes inside this call.
            let id = unsafe { f.irecv(pattern(&a, src), target) };
            let st = f.wait(id).map_err(op_error)?;
            if let Some(u) = unpack {
                finish_unpack(u, st.len);
            }
            recv_status(&a.comm.comm, &st)
        };
        match outcome {
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

fn immediate_send(
    name: &str,
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
    mode: SendMode,
) -> c_int {
    let r = check(comm, count, datatype, dest, tag, false).and_then(|a| {
        if request.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "request is a null pointer"));
        }
        let h = start_send(&a, comm, buf, mode)?;
        raw::put(request, h);
        Ok(())
    });
    finish(name, comm, r)
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
    immediate_send(
        "MPI_Isend",
        buf,
        count,
        datatype,
        dest,
        tag,
        comm,
        request,
        SendMode::Standard,
    )
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
    immediate_send(
        "MPI_Issend",
        buf,
        count,
        datatype,
        dest,
        tag,
        comm,
        request,
        SendMode::Synchronous,
    )
}

/// `MPI_Irsend` (a standard send, see `MPI_Rsend`).
#[no_mangle]
pub extern "C" fn MPI_Irsend(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    immediate_send(
        "MPI_Irsend",
        buf,
        count,
        datatype,
        dest,
        tag,
        comm,
        request,
        SendMode::Standard,
    )
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
    let r = check(comm, count, datatype, source, tag, true).and_then(|a| {
        if request.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "request is a null pointer"));
        }
        let h = start_recv(&a, comm, buf)?;
        raw::put(request, h);
        Ok(())
    });
    finish("MPI_Irecv", comm, r)
}

/// The communicator whose error handler reports errors of request `h`.
fn request_comm(h: c_int) -> c_int {
    state::peek_request(h, |r| r.comm_handle()).unwrap_or(MPI_COMM_WORLD)
}

fn null_request_arg(name: &str) -> c_int {
    finish(
        name,
        MPI_COMM_WORLD,
        Err(MpiError::new(MPI_ERR_REQUEST, "null request pointer")),
    )
}

/// Complete one request through its pointer (`Wait`/`Test`).
fn wait_or_test(
    name: &str,
    request: *mut c_int,
    flag: *mut c_int,
    status: *mut MpiStatus,
    block: bool,
) -> c_int {
    let Some(h) = raw::get(request) else {
        return null_request_arg(name);
    };
    if h == MPI_REQUEST_NULL {
        raw::put(flag, 1);
        raw::put_status(status, empty_status());
        return MPI_SUCCESS;
    }
    let comm = request_comm(h);
    match complete_handle(h, block) {
        Err(e) => finish(name, MPI_COMM_WORLD, Err(e)),
        Ok(None) => {
            raw::put(flag, 0);
            MPI_SUCCESS
        }
        Ok(Some(c)) => {
            raw::put(flag, 1);
            if !c.persistent {
                raw::put(request, MPI_REQUEST_NULL);
            }
            match c.outcome {
                Ok(st) => {
                    raw::put_status(status, st);
                    MPI_SUCCESS
                }
                Err((st, e)) => {
                    raw::put_status(status, st);
                    raise(name, comm, e)
                }
            }
        }
    }
}

/// `MPI_Wait`.
#[no_mangle]
pub extern "C" fn MPI_Wait(request: *mut c_int, status: *mut MpiStatus) -> c_int {
    wait_or_test("MPI_Wait", request, std::ptr::null_mut(), status, true)
}

/// `MPI_Test`.
#[no_mangle]
pub extern "C" fn MPI_Test(request: *mut c_int, flag: *mut c_int, status: *mut MpiStatus) -> c_int {
    wait_or_test("MPI_Test", request, flag, status, false)
}

/// Make progress once, so that a test over many requests sees new arrivals.
fn progress() {
    if let Ok(w) = state::comm(MPI_COMM_WORLD) {
        w.comm.fabric().progress();
    }
}

/// `Waitall`/`Testall`: complete every request (`Testall`: only if all have completed).
/// On an error the statuses say which requests failed (`MPI_ERR_IN_STATUS`).
fn all(
    name: &str,
    count: c_int,
    requests: *mut c_int,
    flag: *mut c_int,
    statuses: *mut MpiStatus,
    block: bool,
) -> c_int {
    if count < 0 {
        return finish(
            name,
            MPI_COMM_WORLD,
            Err(MpiError::new(
                MPI_ERR_COUNT,
                format!("negative count {count}"),
            )),
        );
    }
    let Some(reqs) = raw::array_mut(requests, count as usize) else {
        return finish(
            name,
            MPI_COMM_WORLD,
            Err(MpiError::new(MPI_ERR_ARG, "null request array")),
        );
    };
    if !block {
        progress();
        // Testall completes nothing unless everything has completed.
        let all_done = reqs.iter().all(|&h| {
            h == MPI_REQUEST_NULL || state::peek_request(h, request_done).unwrap_or(true)
        });
        if !all_done {
            raw::put(flag, 0);
            return MPI_SUCCESS;
        }
    }
    raw::put(flag, 1);
    let mut first_error = None;
    for (i, h) in reqs.iter_mut().enumerate() {
        let sp = raw::status_at(statuses, i);
        if *h == MPI_REQUEST_NULL {
            raw::put(sp, empty_status());
            continue;
        }
        let comm = request_comm(*h);
        let o = complete_now(h);
        match o {
            Ok(st) => {
                raw::put(sp, st);
            }
            Err((st, e)) => {
                raw::put(sp, st);
                first_error.get_or_insert((comm, e));
            }
        }
    }
    match first_error {
        None => MPI_SUCCESS,
        Some((comm, e)) if !statuses.is_null() && statuses as usize != raw::STATUS_IGNORE => {
            raise(name, comm, MpiError::new(MPI_ERR_IN_STATUS, e.what))
        }
        Some((comm, e)) => raise(name, comm, e),
    }
}

/// Complete request `*h`, which has completed or may be waited for; `*h` becomes
/// `MPI_REQUEST_NULL` unless it is persistent. A bad handle is the outcome's error.
fn complete_now(h: &mut c_int) -> Outcome {
    match complete_handle(*h, true) {
        Ok(c) => c.expect("a blocking completion completes").settle(h),
        Err(e) => {
            *h = MPI_REQUEST_NULL;
            Err(failed(e))
        }
    }
}

/// Has request `r` completed? (Without completing it.) An inactive persistent request
/// has.
fn request_done(r: &mut CRequest) -> bool {
    match r {
        CRequest::Done(_) | CRequest::Failed { .. } => true,
        CRequest::Generalized(g) => g.complete,
        CRequest::Persistent(p) => p.active.as_mut().is_none_or(request_done),
        CRequest::Send { id, comm, .. } | CRequest::Recv { id, comm, .. } => {
            comm.fabric().is_done_now(*id)
        }
        CRequest::Coll { req, .. } => req.test().unwrap_or(true),
    }
}

/// `MPI_Waitall`.
#[no_mangle]
pub extern "C" fn MPI_Waitall(
    count: c_int,
    requests: *mut c_int,
    statuses: *mut MpiStatus,
) -> c_int {
    all(
        "MPI_Waitall",
        count,
        requests,
        std::ptr::null_mut(),
        statuses,
        true,
    )
}

/// `MPI_Testall`.
#[no_mangle]
pub extern "C" fn MPI_Testall(
    count: c_int,
    requests: *mut c_int,
    flag: *mut c_int,
    statuses: *mut MpiStatus,
) -> c_int {
    all("MPI_Testall", count, requests, flag, statuses, false)
}

/// `Waitany`/`Testany`: complete one request that has completed (waiting for one if
/// `block`). `index` is `MPI_UNDEFINED` when every request is inactive.
fn any(
    name: &str,
    count: c_int,
    requests: *mut c_int,
    index: *mut c_int,
    flag: *mut c_int,
    status: *mut MpiStatus,
    block: bool,
) -> c_int {
    if count < 0 {
        return finish(
            name,
            MPI_COMM_WORLD,
            Err(MpiError::new(
                MPI_ERR_COUNT,
                format!("negative count {count}"),
            )),
        );
    }
    let Some(reqs) = raw::array_mut(requests, count as usize) else {
        return finish(
            name,
            MPI_COMM_WORLD,
            Err(MpiError::new(MPI_ERR_ARG, "null request array")),
        );
    };
    if reqs.iter().all(|&h| inactive(h)) {
        raw::put(index, MPI_UNDEFINED);
        raw::put(flag, 1);
        raw::put_status(status, empty_status());
        return MPI_SUCCESS;
    }
    let mut first = true;
    loop {
        if !first || !block {
            progress();
        }
        first = false;
        for (i, h) in reqs.iter_mut().enumerate() {
            if inactive(*h) {
                continue;
            }
            let done = state::peek_request(*h, request_done);
            if done == Some(false) {
                continue;
            }
            let comm = request_comm(*h);
            let o = complete_now(h);
            raw::put(index, i as c_int);
            raw::put(flag, 1);
            return match o {
                Ok(st) => {
                    raw::put_status(status, st);
                    MPI_SUCCESS
                }
                Err((st, e)) => {
                    raw::put_status(status, st);
                    raise(name, comm, e)
                }
            };
        }
        if !block {
            raw::put(flag, 0);
            raw::put(index, MPI_UNDEFINED);
            return MPI_SUCCESS;
        }
        if all_stuck(reqs) {
            raw::put(index, MPI_UNDEFINED);
            return finish(name, MPI_COMM_WORLD, Err(Grequest::never_completes()));
        }
        wait_a_little();
    }
}

/// Is every active request among `reqs` a generalized one that has not completed, which
/// only this thread could complete (see grequest.rs)? Then a wait would never end.
fn all_stuck(reqs: &[c_int]) -> bool {
    reqs.iter().filter(|&&h| !inactive(h)).all(|&h| {
        state::peek_request(h, |r| matches!(r, CRequest::Generalized(g) if !g.complete))
            .unwrap_or(false)
    })
}

/// Between rounds of a wait over several requests: let the runtime progress (and sleep
/// briefly when nothing happens, so that ranks sharing a core make progress).
fn wait_a_little() {
    if let Ok(w) = state::comm(MPI_COMM_WORLD) {
        w.comm.fabric().idle_round();
    }
}

/// `MPI_Waitany`.
#[no_mangle]
pub extern "C" fn MPI_Waitany(
    count: c_int,
    requests: *mut c_int,
    index: *mut c_int,
    status: *mut MpiStatus,
) -> c_int {
    any(
        "MPI_Waitany",
        count,
        requests,
        index,
        std::ptr::null_mut(),
        status,
        true,
    )
}

/// `MPI_Testany`.
#[no_mangle]
pub extern "C" fn MPI_Testany(
    count: c_int,
    requests: *mut c_int,
    index: *mut c_int,
    flag: *mut c_int,
    status: *mut MpiStatus,
) -> c_int {
    any("MPI_Testany", count, requests, index, flag, status, false)
}

/// `Waitsome`/`Testsome`: complete every request that has completed (waiting for at
/// least one if `block`).
fn some(
    name: &str,
    incount: c_int,
    requests: *mut c_int,
    outcount: *mut c_int,
    indices: *mut c_int,
    statuses: *mut MpiStatus,
    block: bool,
) -> c_int {
    if incount < 0 {
        return finish(
            name,
            MPI_COMM_WORLD,
            Err(MpiError::new(
                MPI_ERR_COUNT,
                format!("negative count {incount}"),
            )),
        );
    }
    let n = incount as usize;
    let (Some(reqs), Some(idx)) = (raw::array_mut(requests, n), raw::array_mut(indices, n)) else {
        return finish(
            name,
            MPI_COMM_WORLD,
            Err(MpiError::new(MPI_ERR_ARG, "null request or index array")),
        );
    };
    if reqs.iter().all(|&h| inactive(h)) {
        raw::put(outcount, MPI_UNDEFINED);
        return MPI_SUCCESS;
    }
    loop {
        progress();
        let mut k = 0;
        let mut first_error = None;
        for (i, h) in reqs.iter_mut().enumerate() {
            if inactive(*h) || state::peek_request(*h, request_done) == Some(false) {
                continue;
            }
            let comm = request_comm(*h);
            let o = complete_now(h);
            idx[k] = i as c_int;
            let sp = raw::status_at(statuses, k);
            match o {
                Ok(st) => {
                    raw::put(sp, st);
                }
                Err((st, e)) => {
                    raw::put(sp, st);
                    first_error.get_or_insert((comm, e));
                }
            }
            k += 1;
        }
        if k > 0 || !block {
            raw::put(outcount, k as c_int);
            return match first_error {
                None => MPI_SUCCESS,
                Some((comm, e))
                    if !statuses.is_null() && statuses as usize != raw::STATUS_IGNORE =>
                {
                    raise(name, comm, MpiError::new(MPI_ERR_IN_STATUS, e.what))
                }
                Some((comm, e)) => raise(name, comm, e),
            };
        }
        if all_stuck(reqs) {
            raw::put(outcount, 0);
            return finish(name, MPI_COMM_WORLD, Err(Grequest::never_completes()));
        }
        wait_a_little();
    }
}

/// `MPI_Waitsome`.
#[no_mangle]
pub extern "C" fn MPI_Waitsome(
    incount: c_int,
    requests: *mut c_int,
    outcount: *mut c_int,
    indices: *mut c_int,
    statuses: *mut MpiStatus,
) -> c_int {
    some(
        "MPI_Waitsome",
        incount,
        requests,
        outcount,
        indices,
        statuses,
        true,
    )
}

/// `MPI_Testsome`.
#[no_mangle]
pub extern "C" fn MPI_Testsome(
    incount: c_int,
    requests: *mut c_int,
    outcount: *mut c_int,
    indices: *mut c_int,
    statuses: *mut MpiStatus,
) -> c_int {
    some(
        "MPI_Testsome",
        incount,
        requests,
        outcount,
        indices,
        statuses,
        false,
    )
}

/// `MPI_Request_get_status`: like `MPI_Test`, but the request stays.
#[no_mangle]
pub extern "C" fn MPI_Request_get_status(
    request: c_int,
    flag: *mut c_int,
    status: *mut MpiStatus,
) -> c_int {
    if inactive(request) {
        raw::put(flag, 1);
        raw::put_status(status, empty_status());
        return MPI_SUCCESS;
    }
    if !state::is_request(request) {
        return finish(
            "MPI_Request_get_status",
            MPI_COMM_WORLD,
            Err(MpiError::new(
                MPI_ERR_REQUEST,
                format!("invalid request handle {request:#x}"),
            )),
        );
    }
    // A generalized request that completed: its status from the query callback (run on a
    // copy, with no borrow held), and it stays until a wait frees it.
    let generalized = state::peek_request(request, |r| match r {
        CRequest::Generalized(g) => Some((**g).clone()),
        _ => None,
    })
    .flatten();
    if let Some(g) = generalized {
        raw::put(flag, c_int::from(g.complete));
        if !g.complete {
            return MPI_SUCCESS;
        }
        return match g.query() {
            Ok(st) => {
                raw::put_status(status, st);
                MPI_SUCCESS
            }
            Err((st, e)) => {
                raw::put_status(status, st);
                raise("MPI_Request_get_status", MPI_COMM_WORLD, e)
            }
        };
    }
    progress();
    if state::peek_request(request, request_done) != Some(true) {
        raw::put(flag, 0);
        return MPI_SUCCESS;
    }
    // Complete it, keep the outcome as an already-done request under the same handle (in
    // a persistent request, as the operation it runs: a wait still makes it inactive).
    let comm = request_comm(request);
    let o = match complete_handle(request, true) {
        Ok(c) => c.expect("a blocking completion completes"),
        Err(e) => Completion {
            outcome: Err(failed(e)),
            persistent: false,
        },
    };
    raw::put(flag, 1);
    let (st, err) = match o.outcome {
        Ok(st) => (st, None),
        Err((st, e)) => (st, Some(e)),
    };
    // What the wait that frees (or deactivates) the request will report.
    let kept = match &err {
        None => CRequest::Done(st),
        Some(e) => CRequest::Failed {
            comm_h: comm,
            status: st,
            error: Box::new(e.clone()),
        },
    };
    if o.persistent {
        state::peek_request(request, |r| match r {
            CRequest::Persistent(p) => p.active = Some(kept),
            _ => unreachable!("request {request:#x} changed kind"),
        });
    } else {
        let h = state::add_request(kept);
        assert_eq!(h, request, "the freed slot is reused at once");
    }
    raw::put_status(status, st);
    match err {
        None => MPI_SUCCESS,
        Some(e) => raise("MPI_Request_get_status", comm, e),
    }
}

/// `MPI_Request_free`: the operation goes on; nobody waits for it.
#[no_mangle]
pub extern "C" fn MPI_Request_free(request: *mut c_int) -> c_int {
    let Some(h) = raw::get(request) else {
        return null_request_arg("MPI_Request_free");
    };
    // A generalized request still running stays until MPI_Grequest_complete frees it.
    let orphaned = state::peek_request(h, |r| match r {
        CRequest::Generalized(g) if !g.complete => {
            g.orphan();
            true
        }
        _ => false,
    });
    if orphaned == Some(true) {
        raw::put(request, MPI_REQUEST_NULL);
        return MPI_SUCCESS;
    }
    let r = state::take_request(h).and_then(|r| {
        abandon(r).map_err(|(r, e)| {
            state::put_back(h, r);
            e
        })?;
        raw::put(request, MPI_REQUEST_NULL);
        Ok(())
    });
    finish("MPI_Request_free", MPI_COMM_WORLD, r)
}

/// Let request `r` go on with nobody waiting for it (`MPI_Request_free`); gives it back
/// with the error if it cannot be.
#[allow(clippy::result_large_err)] // the request is handed back by value on purpose
fn abandon(r: CRequest) -> Result<(), (CRequest, MpiError)> {
    match r {
        CRequest::Done(_) | CRequest::Failed { .. } => {}
        // One still running stays in the table (MPI_Request_free marks it first).
        CRequest::Generalized(g) => g
            .release()
            .map_err(|e| (CRequest::Done(empty_status()), e))?,
        CRequest::Send { id, comm, keep, .. } => comm.fabric().adopt(id, Box::new(keep)),
        CRequest::Recv {
            id, comm, unpack, ..
        } => comm.fabric().adopt(id, Box::new(unpack.map(|u| u.staging))),
        r @ CRequest::Coll { .. } => {
            return Err((
                r,
                MpiError::new(
                    MPI_ERR_REQUEST,
                    "a non-blocking collective cannot be freed before it completes (zerorank)",
                ),
            ))
        }
        // A started persistent request's operation goes on; the request itself is gone.
        CRequest::Persistent(mut p) => {
            if let Some(op) = p.active.take() {
                if let Err((op, e)) = abandon(op) {
                    p.active = Some(op);
                    return Err((CRequest::Persistent(p), e));
                }
            }
        }
    }
    Ok(())
}

/// `MPI_Cancel`: a receive that has not matched is cancelled (its wait reports
/// `MPI_Test_cancelled` true); a send, or a receive that matched, completes normally.
#[no_mangle]
pub extern "C" fn MPI_Cancel(request: *mut c_int) -> c_int {
    let Some(h) = raw::get(request) else {
        return null_request_arg("MPI_Cancel");
    };
    let r = state::peek_request(h, |r| {
        let op = match r {
            CRequest::Persistent(p) => p.active.as_ref(),
            CRequest::Generalized(g) => return Some((**g).clone()),
            r => Some(&*r),
        };
        if let Some(CRequest::Recv { id, comm, .. }) = op {
            comm.fabric().cancel(*id);
        }
        None
    })
    .ok_or_else(|| MpiError::new(MPI_ERR_REQUEST, format!("invalid request handle {h:#x}")))
    // A generalized request's cancel callback runs on a copy, with no borrow held.
    .and_then(|g| g.map_or(Ok(()), |g| g.cancel()));
    finish("MPI_Cancel", MPI_COMM_WORLD, r)
}

/// `MPI_Test_cancelled`.
#[no_mangle]
pub extern "C" fn MPI_Test_cancelled(status: *const MpiStatus, flag: *mut c_int) -> c_int {
    let r = raw::get(status)
        .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "null status"))
        .map(|st| {
            raw::put(flag, c_int::from(st.cancelled()));
        });
    finish("MPI_Test_cancelled", MPI_COMM_WORLD, r)
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
    let r = (|| {
        let sa = check(comm, sendcount, sendtype, dest, sendtag, false)?;
        let ra = check(comm, recvcount, recvtype, source, recvtag, true)?;
        let rh = start_recv(&ra, comm, recvbuf)?;
        let sh = start_send(&sa, comm, sendbuf, SendMode::Standard)?;
        let ro = complete_handle(rh, true)?
            .expect("a blocking completion completes")
            .outcome;
        let so = complete_handle(sh, true)?
            .expect("a blocking completion completes")
            .outcome;
        match ro {
            Ok(st) => raw::put_status(status, st),
            Err((st, e)) => {
                raw::put_status(status, st);
                return Err(e);
            }
        }
        so.map(|_| ()).map_err(|(_, e)| e)
    })();
    finish("MPI_Sendrecv", comm, r)
}

/// `MPI_Sendrecv_replace`: the message sent is copied first, then the buffer receives.
#[no_mangle]
pub extern "C" fn MPI_Sendrecv_replace(
    buf: *mut c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    sendtag: c_int,
    source: c_int,
    recvtag: c_int,
    comm: c_int,
    status: *mut MpiStatus,
) -> c_int {
    let r = (|| {
        let sa = check(comm, count, datatype, dest, sendtag, false)?;
        let ra = check(comm, count, datatype, source, recvtag, true)?;
        let copy = match send_data(buf, sa.count, &sa.ty)? {
            SendData::Direct(b) => b.to_vec(),
            SendData::Packed(v) => v,
        };
        // The copy is in packed form: it goes out as bytes, whatever the datatype.
        let sh = send_bytes_request(&sa, comm, &copy)?;
        let rh = start_recv(&ra, comm, buf)?;
        let ro = complete_handle(rh, true)?
            .expect("a blocking completion completes")
            .outcome;
        let so = complete_handle(sh, true)?
            .expect("a blocking completion completes")
            .outcome;
        drop(copy);
        match ro {
            Ok(st) => raw::put_status(status, st),
            Err((st, e)) => {
                raw::put_status(status, st);
                return Err(e);
            }
        }
        so.map(|_| ()).map_err(|(_, e)| e)
    })();
    finish("MPI_Sendrecv_replace", comm, r)
}

/// Start sending already packed `bytes` with the envelope of `a`.
fn send_bytes_request(a: &Args, comm_h: c_int, bytes: &[u8]) -> Result<c_int, MpiError> {
    let Peer::Rank(Some(dst)) = a.peer else {
        return Ok(state::add_request(CRequest::Done(MpiStatus::proc_null())));
    };
    let keep = bytes.to_vec();
    // SAFETY: `keep` moves into the request, which holds it until the send completes.
    let id = unsafe {
        a.comm.comm.fabric().isend(
            dst,
            a.comm.comm.context(),
            a.tag.expect("a send has a tag"),
            SendBuf::from_slice(&keep),
            SendMode::Standard,
        )
    };
    Ok(state::add_request(CRequest::Send {
        id,
        comm_h,
        comm: a.comm.comm.clone(),
        keep: Some(keep),
    }))
}

fn probe(
    comm: c_int,
    source: c_int,
    tag: c_int,
    block: bool,
) -> Result<Option<MpiStatus>, MpiError> {
    let a = check(comm, 0, MPI_BYTE, source, tag, true)?;
    let Peer::Rank(src) = a.peer else {
        return Ok(Some(MpiStatus::proc_null()));
    };
    let pat = pattern(&a, src);
    let f = a.comm.comm.fabric();
    let found = if block {
        Some(f.probe(&pat).map_err(op_error)?)
    } else {
        f.iprobe(&pat).map_err(op_error)?
    };
    Ok(found.map(|(env, len)| {
        let source = a.comm.comm.rank_of_world(env.src).unwrap_or(MPI_ANY_SOURCE);
        MpiStatus::new(source, env.tag, len, false)
    }))
}

/// `MPI_Probe`.
#[no_mangle]
pub extern "C" fn MPI_Probe(
    source: c_int,
    tag: c_int,
    comm: c_int,
    status: *mut MpiStatus,
) -> c_int {
    let r = probe(comm, source, tag, true).map(|st| {
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
    let r = probe(comm, source, tag, false).map(|st| {
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
        let ty = datatype::lookup(datatype)?;
        let bytes = st.bytes();
        let size = ty.size() as u64;
        let n = if size == 0 {
            if bytes == 0 {
                0
            } else {
                MPI_UNDEFINED
            }
        } else if bytes % size != 0 || bytes / size > c_int::MAX as u64 {
            MPI_UNDEFINED
        } else {
            (bytes / size) as c_int
        };
        raw::put(count, n);
        Ok(())
    })();
    finish("MPI_Get_count", MPI_COMM_WORLD, r)
}

/// Set `status`'s count to `count` items of `datatype` (as MPICH does: `MPI_Get_count`
/// with that type then gives `count`).
fn set_elements(name: &str, status: *mut MpiStatus, datatype: c_int, count: i64) -> c_int {
    let r = (|| {
        let mut st = raw::get(status.cast_const())
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "null status"))?;
        let ty = datatype::lookup_any(datatype)?;
        let n = u64::try_from(count)
            .map_err(|_| MpiError::new(MPI_ERR_COUNT, format!("negative count {count}")))?;
        let bytes = n
            .checked_mul(ty.size() as u64)
            .filter(|&b| b < 1 << 62)
            .ok_or_else(|| MpiError::new(MPI_ERR_COUNT, format!("count {count} is too large")))?;
        let fresh = MpiStatus::new(st.source, st.tag, bytes as usize, st.cancelled());
        st.count_lo = fresh.count_lo;
        st.count_hi_and_cancelled = fresh.count_hi_and_cancelled;
        raw::put(status, st);
        Ok(())
    })();
    finish(name, MPI_COMM_WORLD, r)
}

/// `MPI_Status_set_elements`.
#[no_mangle]
pub extern "C" fn MPI_Status_set_elements(
    status: *mut MpiStatus,
    datatype: c_int,
    count: c_int,
) -> c_int {
    set_elements(
        "MPI_Status_set_elements",
        status,
        datatype,
        i64::from(count),
    )
}

/// `MPI_Status_set_elements_x`.
#[no_mangle]
pub extern "C" fn MPI_Status_set_elements_x(
    status: *mut MpiStatus,
    datatype: c_int,
    count: i64,
) -> c_int {
    set_elements("MPI_Status_set_elements_x", status, datatype, count)
}

/// `MPI_Status_set_cancelled`.
#[no_mangle]
pub extern "C" fn MPI_Status_set_cancelled(status: *mut MpiStatus, flag: c_int) -> c_int {
    let r = raw::get(status.cast_const())
        .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "null status"))
        .map(|mut st| {
            st.count_hi_and_cancelled = (st.count_hi_and_cancelled & !1) | c_int::from(flag != 0);
            raw::put(status, st);
        });
    finish("MPI_Status_set_cancelled", MPI_COMM_WORLD, r)
}
