//! Generalized requests (MPI-3.1 section 12.2): `MPI_Grequest_start` and
//! `MPI_Grequest_complete`, an operation the program runs itself behind an
//! `MPI_Request`.
//!
//! A completion call on one that has completed asks the program's query callback for
//! its status, then (as the request is freed) calls its free callback; an error code
//! either returns is the call's error. `MPI_Cancel` calls the cancel callback with
//! whether the request has completed. `MPI_Request_free` of one not yet completed
//! leaves it to `MPI_Grequest_complete`, which then calls the free callback.
//!
//! zerorank provides `MPI_THREAD_FUNNELED`, so only the thread that waits can complete
//! the request: waiting for one that has not completed would never end, and is an
//! error (`MPI_ERR_REQUEST`) instead. Testing it says "not yet".

use crate::abi::*;
use crate::error::{finish, MpiError};
use crate::raw;
use crate::state::{self, CRequest};
use std::ffi::{c_int, c_void};

/// `MPI_Grequest_query_function`.
pub(crate) type QueryFn = unsafe extern "C" fn(*mut c_void, *mut MpiStatus) -> c_int;
/// `MPI_Grequest_free_function`.
pub(crate) type FreeFn = unsafe extern "C" fn(*mut c_void) -> c_int;
/// `MPI_Grequest_cancel_function`.
pub(crate) type CancelFn = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;

/// A generalized request.
#[derive(Clone)]
pub(crate) struct Grequest {
    query: Option<QueryFn>,
    free: Option<FreeFn>,
    cancel: Option<CancelFn>,
    extra: *mut c_void,
    /// `MPI_Grequest_complete` was called.
    pub complete: bool,
    /// `MPI_Request_free` was called before it completed: completing frees it.
    orphaned: bool,
}

fn callback_error(which: &str, rc: c_int) -> MpiError {
    let class = if crate::error::is_code(rc) {
        rc
    } else {
        MPI_ERR_OTHER
    };
    MpiError::new(
        class,
        format!("the generalized request's {which} callback returned error code {rc}"),
    )
}

impl Grequest {
    /// The status the query callback gives.
    pub fn query(&self) -> Result<MpiStatus, (MpiStatus, MpiError)> {
        let mut st = MpiStatus::new(MPI_ANY_SOURCE, MPI_ANY_TAG, 0, false);
        let Some(f) = self.query else {
            return Ok(st);
        };
        // SAFETY: `f` is the query callback the program gave MPI_Grequest_start, of the type
        // mpi.h declares; it gets the extra state it gave and a status to fill in. No
        // borrow of the library's state is held: it may call MPI.
        let rc = unsafe { f(self.extra, &raw mut st) };
        if rc == MPI_SUCCESS {
            Ok(st)
        } else {
            Err((st, callback_error("query", rc)))
        }
    }

    /// Call the free callback (the request is going away).
    pub fn release(&self) -> Result<(), MpiError> {
        let Some(f) = self.free else {
            return Ok(());
        };
        // SAFETY: as in `query`, for the free callback.
        let rc = unsafe { f(self.extra) };
        if rc == MPI_SUCCESS {
            Ok(())
        } else {
            Err(callback_error("free", rc))
        }
    }

    /// Complete it in a completion call (it has completed): its status, then freed.
    pub fn finish(self) -> Result<MpiStatus, (MpiStatus, MpiError)> {
        let st = self.query()?;
        self.release().map_err(|e| (st, e))?;
        Ok(st)
    }

    /// Waiting for it would never end.
    pub fn never_completes() -> MpiError {
        MpiError::new(
            MPI_ERR_REQUEST,
            "a wait for a generalized request that is not complete would never end: with \
             MPI_THREAD_FUNNELED only this thread can call MPI_Grequest_complete",
        )
    }

    /// `MPI_Cancel`.
    pub fn cancel(&self) -> Result<(), MpiError> {
        let Some(f) = self.cancel else {
            return Ok(());
        };
        // SAFETY: as in `query`, for the cancel callback.
        let rc = unsafe { f(self.extra, c_int::from(self.complete)) };
        if rc == MPI_SUCCESS {
            Ok(())
        } else {
            Err(callback_error("cancel", rc))
        }
    }

    /// `MPI_Request_free` of one not yet complete: `MPI_Grequest_complete` frees it.
    pub fn orphan(&mut self) {
        self.orphaned = true;
    }
}

/// `MPI_Grequest_start`.
#[no_mangle]
pub extern "C" fn MPI_Grequest_start(
    query: Option<QueryFn>,
    free: Option<FreeFn>,
    cancel: Option<CancelFn>,
    extra_state: *mut c_void,
    request: *mut c_int,
) -> c_int {
    let r = state::with(|s| s.running()).and_then(|()| {
        if request.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "request is a null pointer"));
        }
        let g = Grequest {
            query,
            free,
            cancel,
            extra: extra_state,
            complete: false,
            orphaned: false,
        };
        raw::put(
            request,
            state::add_request(CRequest::Generalized(Box::new(g))),
        );
        Ok(())
    });
    finish("MPI_Grequest_start", MPI_COMM_WORLD, r)
}

/// `MPI_Grequest_complete`.
#[no_mangle]
pub extern "C" fn MPI_Grequest_complete(request: c_int) -> c_int {
    let found = state::peek_request(request, |r| match r {
        CRequest::Generalized(g) if !g.complete => {
            g.complete = true;
            Some(g.orphaned)
        }
        _ => None,
    });
    let r = match found {
        Some(Some(false)) => Ok(()),
        // Freed by the program already: it goes now, with its free callback.
        Some(Some(true)) => match state::take_request(request) {
            Ok(CRequest::Generalized(g)) => g.release(),
            _ => unreachable!("request {request:#x} was a generalized one"),
        },
        _ => Err(MpiError::new(
            MPI_ERR_REQUEST,
            format!("request {request:#x} is not a generalized request that is still running"),
        )),
    };
    finish("MPI_Grequest_complete", MPI_COMM_WORLD, r)
}
