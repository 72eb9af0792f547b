//! Persistent point-to-point requests: `MPI_Send_init`, `MPI_Ssend_init`,
//! `MPI_Rsend_init`, `MPI_Bsend_init`, `MPI_Recv_init`, `MPI_Start` and `MPI_Startall`.
//!
//! An `*_init` call checks its arguments as the immediate call would and makes an
//! inactive request that holds them. `MPI_Start` runs the operation (a send or receive
//! exactly as `MPI_Isend`/`MPI_Irecv` start it) inside the request. The completion calls
//! (`p2p.rs`) complete that operation and make the request inactive again, leaving its
//! handle; they treat an inactive request as `MPI_REQUEST_NULL`. `MPI_Request_free`
//! frees it (an operation it is running goes on). A ready send is a standard send, as in
//! `MPI_Rsend`. A buffered one is buffered when started (`bsend.rs`), and so complete.

use crate::abi::*;
use crate::error::{finish, MpiError};
use crate::p2p::{self, Args};
use crate::raw;
use crate::state::{self, CRequest};
use std::ffi::{c_int, c_void};
use zerorank_transport::fabric::SendMode;

/// What a persistent request does each time it is started.
#[derive(Clone, Copy)]
enum Kind {
    Send(SendMode),
    Bsend,
    Recv,
}

/// A persistent request: its checked arguments, and the operation it runs while active.
pub(crate) struct Persistent {
    kind: Kind,
    /// The user's buffer (MPI requires it to stay valid until the request is freed).
    buf: *mut c_void,
    args: Args,
    comm_h: c_int,
    /// The started operation, until a completion call completes it.
    pub active: Option<CRequest>,
}

impl Persistent {
    /// The handle of the communicator whose error handler reports its errors.
    pub fn comm_handle(&self) -> c_int {
        self.comm_h
    }
}

/// Make an inactive persistent request with the arguments of the immediate call.
fn init(
    name: &str,
    kind: Kind,
    buf: *mut c_void,
    count: c_int,
    datatype: c_int,
    peer: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let r =
        p2p::check(comm, count, datatype, peer, tag, matches!(kind, Kind::Recv)).and_then(|args| {
            if request.is_null() {
                return Err(MpiError::new(MPI_ERR_ARG, "request is a null pointer"));
            }
            // A null buffer (MPI_BOTTOM) is fine for a type of absolute addresses; only a
            // contiguous one would be read at address lb.
            let bytes = args.count * args.ty.size();
            if bytes > 0
                && args.ty.is_contiguous()
                && buf.wrapping_byte_offset(args.ty.lb()).is_null()
            {
                return Err(MpiError::new(
                    MPI_ERR_BUFFER,
                    "null buffer with a non-zero count",
                ));
            }
            let h = state::add_request(CRequest::Persistent(Box::new(Persistent {
                kind,
                buf,
                args,
                comm_h: comm,
                active: None,
            })));
            raw::put(request, h);
            Ok(())
        });
    finish(name, comm, r)
}

/// `MPI_Send_init`.
#[no_mangle]
pub extern "C" fn MPI_Send_init(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let kind = Kind::Send(SendMode::Standard);
    init(
        "MPI_Send_init",
        kind,
        buf.cast_mut(),
        count,
        datatype,
        dest,
        tag,
        comm,
        request,
    )
}

/// `MPI_Ssend_init`.
#[no_mangle]
pub extern "C" fn MPI_Ssend_init(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let kind = Kind::Send(SendMode::Synchronous);
    init(
        "MPI_Ssend_init",
        kind,
        buf.cast_mut(),
        count,
        datatype,
        dest,
        tag,
        comm,
        request,
    )
}

/// `MPI_Rsend_init` (a standard send, see `MPI_Rsend`).
#[no_mangle]
pub extern "C" fn MPI_Rsend_init(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let kind = Kind::Send(SendMode::Standard);
    init(
        "MPI_Rsend_init",
        kind,
        buf.cast_mut(),
        count,
        datatype,
        dest,
        tag,
        comm,
        request,
    )
}

/// `MPI_Bsend_init`.
#[no_mangle]
pub extern "C" fn MPI_Bsend_init(
    buf: *const c_void,
    count: c_int,
    datatype: c_int,
    dest: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    init(
        "MPI_Bsend_init",
        Kind::Bsend,
        buf.cast_mut(),
        count,
        datatype,
        dest,
        tag,
        comm,
        request,
    )
}

/// `MPI_Recv_init`.
#[no_mangle]
pub extern "C" fn MPI_Recv_init(
    buf: *mut c_void,
    count: c_int,
    datatype: c_int,
    source: c_int,
    tag: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    init(
        "MPI_Recv_init",
        Kind::Recv,
        buf,
        count,
        datatype,
        source,
        tag,
        comm,
        request,
    )
}

/// Why handle `h` cannot be started, if it cannot: not a request, not a persistent one,
/// or one that is active already.
fn startable(h: c_int) -> Result<(), MpiError> {
    let kind = state::peek_request(h, |r| match r {
        CRequest::Persistent(p) if p.active.is_some() => Err(MpiError::new(
            MPI_ERR_REQUEST,
            format!("request {h:#x} is active already (complete it before starting it again)"),
        )),
        CRequest::Persistent(_) => Ok(()),
        _ => Err(MpiError::new(
            MPI_ERR_REQUEST,
            format!("request {h:#x} is not a persistent request"),
        )),
    });
    match kind {
        Some(r) => r,
        None if h == MPI_REQUEST_NULL => Err(MpiError::new(
            MPI_ERR_REQUEST,
            "MPI_REQUEST_NULL cannot be started",
        )),
        None => Err(state::bad_request(h)),
    }
}

/// Start persistent request `h`, which [`startable`] has accepted.
fn start(h: c_int) -> Result<(), MpiError> {
    // The arguments are copied out (reference-counted handles), so that no borrow of the
    // request table is held while the operation starts.
    let (kind, buf, args, comm_h) = state::peek_request(h, |r| match r {
        CRequest::Persistent(p) => (p.kind, p.buf, p.args.clone(), p.comm_h),
        _ => unreachable!("startable() accepted request {h:#x}"),
    })
    .expect("startable() accepted the handle");
    let op = match kind {
        Kind::Send(mode) => p2p::send_request(&args, comm_h, buf, mode)?,
        Kind::Bsend => {
            crate::bsend::bsend(&args, buf)?;
            CRequest::Done(MpiStatus::new(MPI_PROC_NULL, MPI_ANY_TAG, 0, false))
        }
        Kind::Recv => p2p::recv_request(&args, comm_h, buf)?,
    };
    state::peek_request(h, |r| match r {
        CRequest::Persistent(p) => {
            assert!(p.active.is_none(), "request {h:#x} started twice");
            p.active = Some(op);
        }
        _ => unreachable!("request {h:#x} changed kind while starting"),
    })
    .expect("the request is still in the table");
    Ok(())
}

/// The communicator whose error handler reports errors of request `h`.
fn request_comm(h: c_int) -> c_int {
    state::peek_request(h, |r| r.comm_handle()).unwrap_or(MPI_COMM_WORLD)
}

/// `MPI_Start`.
#[no_mangle]
pub extern "C" fn MPI_Start(request: *mut c_int) -> c_int {
    let Some(h) = raw::get(request) else {
        return finish(
            "MPI_Start",
            MPI_COMM_WORLD,
            Err(MpiError::new(MPI_ERR_REQUEST, "null request pointer")),
        );
    };
    let r = state::with(|s| s.running()).and_then(|()| {
        startable(h)?;
        start(h)
    });
    finish("MPI_Start", request_comm(h), r)
}

/// `MPI_Startall`: every request is checked before any starts, so a bad one starts none.
#[no_mangle]
pub extern "C" fn MPI_Startall(count: c_int, requests: *mut c_int) -> c_int {
    let checked = (|| {
        state::with(|s| s.running())?;
        let n = usize::try_from(count)
            .map_err(|_| MpiError::new(MPI_ERR_COUNT, format!("negative count {count}")))?;
        let hs = raw::array_mut(requests, n)
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "null request array"))?;
        for (i, &h) in hs.iter().enumerate() {
            startable(h)
                .map_err(|e| MpiError::new(e.class, format!("requests[{i}]: {}", e.what)))?;
            if hs[..i].contains(&h) {
                return Err(MpiError::new(
                    MPI_ERR_REQUEST,
                    format!("requests[{i}] is request {h:#x} again"),
                ));
            }
        }
        Ok(hs.to_vec())
    })();
    let hs = match checked {
        Ok(hs) => hs,
        Err(e) => return finish("MPI_Startall", MPI_COMM_WORLD, Err(e)),
    };
    for h in hs {
        let r = start(h);
        if r.is_err() {
            return finish("MPI_Startall", request_comm(h), r);
        }
    }
    MPI_SUCCESS
}
