//! Errors: classes and their strings, and what a communicator's error handler does with
//! an error (`MPI_ERRORS_ARE_FATAL` by default: say what failed and end the job;
//! `MPI_ERRORS_RETURN`: return the class to the caller; a user handler, see
//! `errhandler.rs`: call it, then return the class).

use crate::abi::*;
use crate::raw;
use crate::state;
use std::ffi::{c_char, c_int};

/// An error of an MPI call: its class and what exactly went wrong.
#[derive(Debug, Clone)]
pub(crate) struct MpiError {
    pub class: c_int,
    pub what: String,
}

impl MpiError {
    pub fn new(class: c_int, what: impl Into<String>) -> Self {
        MpiError {
            class,
            what: what.into(),
        }
    }
}

/// The text of every error class.
const CLASSES: &[(c_int, &str)] = &[
    (MPI_SUCCESS, "MPI_SUCCESS: no errors"),
    (MPI_ERR_BUFFER, "MPI_ERR_BUFFER: invalid buffer pointer"),
    (MPI_ERR_COUNT, "MPI_ERR_COUNT: invalid count argument"),
    (MPI_ERR_TYPE, "MPI_ERR_TYPE: invalid datatype"),
    (MPI_ERR_TAG, "MPI_ERR_TAG: invalid tag"),
    (MPI_ERR_COMM, "MPI_ERR_COMM: invalid communicator"),
    (MPI_ERR_RANK, "MPI_ERR_RANK: invalid rank"),
    (MPI_ERR_ROOT, "MPI_ERR_ROOT: invalid root"),
    (MPI_ERR_GROUP, "MPI_ERR_GROUP: invalid group"),
    (MPI_ERR_OP, "MPI_ERR_OP: invalid reduce operation"),
    (MPI_ERR_TOPOLOGY, "MPI_ERR_TOPOLOGY: invalid topology"),
    (MPI_ERR_DIMS, "MPI_ERR_DIMS: invalid dimension argument"),
    (
        MPI_ERR_ARG,
        "MPI_ERR_ARG: invalid argument of some other kind",
    ),
    (MPI_ERR_UNKNOWN, "MPI_ERR_UNKNOWN: unknown error"),
    (MPI_ERR_TRUNCATE, "MPI_ERR_TRUNCATE: message truncated"),
    (MPI_ERR_OTHER, "MPI_ERR_OTHER: known error not in this list"),
    (MPI_ERR_INTERN, "MPI_ERR_INTERN: internal error"),
    (
        MPI_ERR_IN_STATUS,
        "MPI_ERR_IN_STATUS: error code is in status",
    ),
    (MPI_ERR_PENDING, "MPI_ERR_PENDING: pending request"),
    (MPI_ERR_REQUEST, "MPI_ERR_REQUEST: invalid request"),
    (MPI_ERR_ACCESS, "MPI_ERR_ACCESS: error: access"),
    (MPI_ERR_AMODE, "MPI_ERR_AMODE: error: amode"),
    (MPI_ERR_BAD_FILE, "MPI_ERR_BAD_FILE: error: bad file"),
    (MPI_ERR_CONVERSION, "MPI_ERR_CONVERSION: error: conversion"),
    (
        MPI_ERR_DUP_DATAREP,
        "MPI_ERR_DUP_DATAREP: error: dup datarep",
    ),
    (
        MPI_ERR_FILE_EXISTS,
        "MPI_ERR_FILE_EXISTS: error: file exists",
    ),
    (
        MPI_ERR_FILE_IN_USE,
        "MPI_ERR_FILE_IN_USE: error: file in use",
    ),
    (MPI_ERR_FILE, "MPI_ERR_FILE: error: file"),
    (MPI_ERR_INFO, "MPI_ERR_INFO: error: info"),
    (MPI_ERR_INFO_KEY, "MPI_ERR_INFO_KEY: error: info key"),
    (MPI_ERR_INFO_VALUE, "MPI_ERR_INFO_VALUE: error: info value"),
    (MPI_ERR_INFO_NOKEY, "MPI_ERR_INFO_NOKEY: error: info nokey"),
    (MPI_ERR_IO, "MPI_ERR_IO: error: io"),
    (MPI_ERR_NAME, "MPI_ERR_NAME: error: name"),
    (MPI_ERR_NO_MEM, "MPI_ERR_NO_MEM: out of memory"),
    (MPI_ERR_NOT_SAME, "MPI_ERR_NOT_SAME: error: not same"),
    (MPI_ERR_NO_SPACE, "MPI_ERR_NO_SPACE: error: no space"),
    (
        MPI_ERR_NO_SUCH_FILE,
        "MPI_ERR_NO_SUCH_FILE: error: no such file",
    ),
    (MPI_ERR_PORT, "MPI_ERR_PORT: error: port"),
    (MPI_ERR_QUOTA, "MPI_ERR_QUOTA: error: quota"),
    (MPI_ERR_READ_ONLY, "MPI_ERR_READ_ONLY: error: read only"),
    (MPI_ERR_SERVICE, "MPI_ERR_SERVICE: error: service"),
    (MPI_ERR_SPAWN, "MPI_ERR_SPAWN: error: spawn"),
    (
        MPI_ERR_UNSUPPORTED_DATAREP,
        "MPI_ERR_UNSUPPORTED_DATAREP: error: unsupported datarep",
    ),
    (
        MPI_ERR_UNSUPPORTED_OPERATION,
        "MPI_ERR_UNSUPPORTED_OPERATION: operation not supported by zerorank",
    ),
    (MPI_ERR_WIN, "MPI_ERR_WIN: error: win"),
    (MPI_ERR_BASE, "MPI_ERR_BASE: error: base"),
    (MPI_ERR_LOCKTYPE, "MPI_ERR_LOCKTYPE: error: locktype"),
    (MPI_ERR_KEYVAL, "MPI_ERR_KEYVAL: invalid attribute key"),
    (
        MPI_ERR_RMA_CONFLICT,
        "MPI_ERR_RMA_CONFLICT: error: rma conflict",
    ),
    (MPI_ERR_RMA_SYNC, "MPI_ERR_RMA_SYNC: error: rma sync"),
    (MPI_ERR_SIZE, "MPI_ERR_SIZE: error: size"),
    (MPI_ERR_DISP, "MPI_ERR_DISP: error: disp"),
    (MPI_ERR_ASSERT, "MPI_ERR_ASSERT: error: assert"),
    (MPI_ERR_RMA_RANGE, "MPI_ERR_RMA_RANGE: error: rma range"),
    (MPI_ERR_RMA_ATTACH, "MPI_ERR_RMA_ATTACH: error: rma attach"),
    (MPI_ERR_RMA_SHARED, "MPI_ERR_RMA_SHARED: error: rma shared"),
    (MPI_ERR_RMA_FLAVOR, "MPI_ERR_RMA_FLAVOR: error: rma flavor"),
    (MPI_T_ERR_MEMORY, "MPI_T_ERR_MEMORY: mpi t err memory"),
    (
        MPI_T_ERR_NOT_INITIALIZED,
        "MPI_T_ERR_NOT_INITIALIZED: mpi t err not initialized",
    ),
    (
        MPI_T_ERR_CANNOT_INIT,
        "MPI_T_ERR_CANNOT_INIT: mpi t err cannot init",
    ),
    (
        MPI_T_ERR_INVALID_INDEX,
        "MPI_T_ERR_INVALID_INDEX: mpi t err invalid index",
    ),
    (
        MPI_T_ERR_INVALID_ITEM,
        "MPI_T_ERR_INVALID_ITEM: mpi t err invalid item",
    ),
    (
        MPI_T_ERR_INVALID_HANDLE,
        "MPI_T_ERR_INVALID_HANDLE: mpi t err invalid handle",
    ),
    (
        MPI_T_ERR_OUT_OF_HANDLES,
        "MPI_T_ERR_OUT_OF_HANDLES: mpi t err out of handles",
    ),
    (
        MPI_T_ERR_OUT_OF_SESSIONS,
        "MPI_T_ERR_OUT_OF_SESSIONS: mpi t err out of sessions",
    ),
    (
        MPI_T_ERR_INVALID_SESSION,
        "MPI_T_ERR_INVALID_SESSION: mpi t err invalid session",
    ),
    (
        MPI_T_ERR_CVAR_SET_NOT_NOW,
        "MPI_T_ERR_CVAR_SET_NOT_NOW: mpi t err cvar set not now",
    ),
    (
        MPI_T_ERR_CVAR_SET_NEVER,
        "MPI_T_ERR_CVAR_SET_NEVER: mpi t err cvar set never",
    ),
    (
        MPI_T_ERR_PVAR_NO_STARTSTOP,
        "MPI_T_ERR_PVAR_NO_STARTSTOP: mpi t err pvar no startstop",
    ),
    (
        MPI_T_ERR_PVAR_NO_WRITE,
        "MPI_T_ERR_PVAR_NO_WRITE: mpi t err pvar no write",
    ),
    (
        MPI_T_ERR_PVAR_NO_ATOMIC,
        "MPI_T_ERR_PVAR_NO_ATOMIC: mpi t err pvar no atomic",
    ),
    (
        MPI_T_ERR_INVALID_NAME,
        "MPI_T_ERR_INVALID_NAME: mpi t err invalid name",
    ),
    (MPI_T_ERR_INVALID, "MPI_T_ERR_INVALID: mpi t err invalid"),
    (MPI_ERR_SESSION, "MPI_ERR_SESSION: error: session"),
    (
        MPI_ERR_PROC_ABORTED,
        "MPI_ERR_PROC_ABORTED: error: proc aborted",
    ),
    (
        MPI_ERR_VALUE_TOO_LARGE,
        "MPI_ERR_VALUE_TOO_LARGE: error: value too large",
    ),
    (
        MPI_T_ERR_NOT_SUPPORTED,
        "MPI_T_ERR_NOT_SUPPORTED: mpi t err not supported",
    ),
];

/// The text of a predefined error class.
pub(crate) fn class_string(class: c_int) -> Option<&'static str> {
    CLASSES.iter().find(|(c, _)| *c == class).map(|(_, s)| *s)
}

/// Is `code` an error code: a predefined class, or a user class or code?
pub(crate) fn is_code(code: c_int) -> bool {
    class_string(code).is_some() || crate::error_codes::class_of(code).is_some()
}

/// Hand the outcome of MPI call `name` on `comm` to the communicator's error handler.
pub(crate) fn finish(name: &str, comm: c_int, r: Result<(), MpiError>) -> c_int {
    let Err(e) = r else {
        return MPI_SUCCESS;
    };
    raise(name, comm, e)
}

/// Hand error `e` of call `name` on `comm` to the communicator's error handler: return its
/// class (`MPI_ERRORS_RETURN`), call the user's handler and return the class, or end the
/// job (`MPI_ERRORS_ARE_FATAL`, the default). Errors on an invalid communicator go to
/// `MPI_COMM_WORLD`'s handler.
pub(crate) fn raise(name: &str, comm: c_int, e: MpiError) -> c_int {
    let (target, handler) = state::with(|s| match s.errhandler(comm) {
        Some(h) => (comm, h),
        None => (
            MPI_COMM_WORLD,
            s.errhandler(MPI_COMM_WORLD).unwrap_or(MPI_ERRORS_ARE_FATAL),
        ),
    });
    if crate::errhandler::returns_errors(handler) {
        tracing::debug!(call = name, class = e.class, what = %e.what, "MPI error returned");
        LAST_REASON.with(|l| {
            l.borrow_mut()
                .insert(e.class, format!("{name}: {}", e.what));
        });
        if let Some(f) = crate::errhandler::function(handler) {
            crate::errhandler::call(f, target, e.class);
        }
        return e.class;
    }
    let class = match class_string(e.class) {
        Some(s) => s.to_string(),
        None => match crate::error_codes::text(e.class) {
            Some(t) if !t.is_empty() => format!("user error code {} ({t})", e.class),
            Some(_) => format!("user error code {}", e.class),
            None => format!("unknown error code {}", e.class),
        },
    };
    let rank = state::with(|s| s.comm(MPI_COMM_WORLD).map(|w| w.comm.rank()).ok());
    let who = rank.map_or(String::new(), |r| format!(" (rank {r})"));
    eprintln!("zerorank{who}: {name}: {class}: {}", e.what);
    eprintln!("zerorank{who}: the error handler is MPI_ERRORS_ARE_FATAL; ending the job");
    raw::exit_now(1);
}

/// `MPI_Error_class`: every code zerorank returns is a class; a user code has the class
/// it was added to.
#[no_mangle]
pub extern "C" fn MPI_Error_class(code: c_int, class: *mut c_int) -> c_int {
    let of = if class_string(code).is_some() {
        Some(code)
    } else {
        crate::error_codes::class_of(code)
    };
    let r = if let Some(of) = of {
        if raw::put(class, of) {
            Ok(())
        } else {
            Err(MpiError::new(MPI_ERR_ARG, "errorclass is a null pointer"))
        }
    } else {
        Err(MpiError::new(
            MPI_ERR_ARG,
            format!("{code} is not an error code"),
        ))
    };
    finish("MPI_Error_class", MPI_COMM_WORLD, r)
}

thread_local! {
    /// Per error class, the call and the reason of the latest error of that class this
    /// rank returned (`MPI_ERRORS_RETURN`): what `MPI_Error_string` adds to the class's
    /// text, since every code zerorank returns is a class.
    static LAST_REASON: std::cell::RefCell<std::collections::HashMap<c_int, String>> =
        Default::default();
}

/// `MPI_Error_string`: the class's text and, if this rank has returned an error of that
/// class, the call and reason of the latest one ("MPI_ERR_COUNT: invalid count
/// argument (latest: MPIX_Ring_bcast: a broadcast of ... bytes: at most ...)").
#[no_mangle]
pub extern "C" fn MPI_Error_string(code: c_int, out: *mut c_char, len: *mut c_int) -> c_int {
    if let Some(text) = crate::error_codes::text(code) {
        let r = if raw::put_cstr(out, MPI_MAX_ERROR_STRING, len, &text) {
            Ok(())
        } else {
            Err(MpiError::new(MPI_ERR_ARG, "string is a null pointer"))
        };
        return finish("MPI_Error_string", MPI_COMM_WORLD, r);
    }
    let r = match class_string(code) {
        None => Err(MpiError::new(
            MPI_ERR_ARG,
            format!("{code} is not an error code"),
        )),
        Some(s) => {
            let text = match LAST_REASON.with(|l| l.borrow().get(&code).cloned()) {
                Some(why) => format!("{s} (latest: {why})"),
                None => s.to_string(),
            };
            if raw::put_cstr(out, MPI_MAX_ERROR_STRING, len, &text) {
                Ok(())
            } else {
                Err(MpiError::new(MPI_ERR_ARG, "string is a null pointer"))
            }
        }
    };
    finish("MPI_Error_string", MPI_COMM_WORLD, r)
}

/// `MPI_Comm_set_errhandler`.
#[no_mangle]
pub extern "C" fn MPI_Comm_set_errhandler(comm: c_int, handler: c_int) -> c_int {
    let r = state::with(|s| {
        let e = s.comm_mut(comm)?;
        crate::errhandler::check_settable(handler)?;
        e.errhandler = handler;
        e.follow_errhandler();
        Ok(())
    });
    finish("MPI_Comm_set_errhandler", comm, r)
}

/// `MPI_Comm_get_errhandler`.
#[no_mangle]
pub extern "C" fn MPI_Comm_get_errhandler(comm: c_int, handler: *mut c_int) -> c_int {
    let r = state::with(|s| {
        let h = s.comm(comm)?.errhandler;
        raw::put(handler, h)
            .then_some(())
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "errhandler is a null pointer"))?;
        crate::errhandler::add_reference(h);
        Ok(())
    });
    finish("MPI_Comm_get_errhandler", comm, r)
}

/// `MPI_Errhandler_free`: the handle becomes `MPI_ERRHANDLER_NULL`. The predefined
/// handlers stay; a user handler stays on the communicators that have it.
#[no_mangle]
pub extern "C" fn MPI_Errhandler_free(handler: *mut c_int) -> c_int {
    match raw::get(handler) {
        Some(MPI_ERRORS_ARE_FATAL | MPI_ERRORS_RETURN) => {
            raw::put(handler, MPI_ERRHANDLER_NULL);
            MPI_SUCCESS
        }
        Some(h) if crate::errhandler::free(h) => {
            raw::put(handler, MPI_ERRHANDLER_NULL);
            MPI_SUCCESS
        }
        _ => finish(
            "MPI_Errhandler_free",
            MPI_COMM_WORLD,
            Err(MpiError::new(MPI_ERR_ARG, "not an error handler")),
        ),
    }
}
