//! Errors: classes and their strings, and what a communicator's error handler does with
//! an error (`MPI_ERRORS_ARE_FATAL` by default: say what failed and end the job;
//! `MPI_ERRORS_RETURN`: return the class to the caller).

use crate::abi::*;
use crate::comm::Comm;
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

/// The text of an error class.
pub(crate) fn class_string(class: c_int) -> Option<&'static str> {
    Some(match class {
        MPI_SUCCESS => "MPI_SUCCESS: no errors",
        MPI_ERR_BUFFER => "MPI_ERR_BUFFER: invalid buffer pointer",
        MPI_ERR_COUNT => "MPI_ERR_COUNT: invalid count argument",
        MPI_ERR_TYPE => "MPI_ERR_TYPE: invalid datatype",
        MPI_ERR_TAG => "MPI_ERR_TAG: invalid tag",
        MPI_ERR_COMM => "MPI_ERR_COMM: invalid communicator",
        MPI_ERR_RANK => "MPI_ERR_RANK: invalid rank",
        MPI_ERR_ROOT => "MPI_ERR_ROOT: invalid root",
        MPI_ERR_OP => "MPI_ERR_OP: invalid reduce operation",
        MPI_ERR_ARG => "MPI_ERR_ARG: invalid argument of some other kind",
        MPI_ERR_UNKNOWN => "MPI_ERR_UNKNOWN: unknown error",
        MPI_ERR_TRUNCATE => "MPI_ERR_TRUNCATE: message truncated",
        MPI_ERR_OTHER => "MPI_ERR_OTHER: known error not in this list",
        MPI_ERR_INTERN => "MPI_ERR_INTERN: internal error",
        MPI_ERR_IN_STATUS => "MPI_ERR_IN_STATUS: error code is in status",
        MPI_ERR_PENDING => "MPI_ERR_PENDING: pending request",
        MPI_ERR_REQUEST => "MPI_ERR_REQUEST: invalid request",
        MPI_ERR_UNSUPPORTED_OPERATION => {
            "MPI_ERR_UNSUPPORTED_OPERATION: operation not supported by zerorank"
        }
        _ => return None,
    })
}

/// Hand the outcome of MPI call `name` on `comm` to the communicator's error handler.
pub(crate) fn finish(name: &str, comm: c_int, r: Result<(), MpiError>) -> c_int {
    let Err(e) = r else {
        return MPI_SUCCESS;
    };
    let handler = state::with(|s| match Comm::from_handle(comm) {
        Some(c) => s.errhandler[c.index()],
        // Errors on an invalid communicator go to MPI_COMM_WORLD's handler.
        None => s.errhandler[0],
    });
    if handler == MPI_ERRORS_RETURN {
        tracing::debug!(call = name, class = e.class, what = %e.what, "MPI error returned");
        return e.class;
    }
    let class = class_string(e.class).unwrap_or("unknown error class");
    eprintln!("zerorank: {name}: {class}: {}", e.what);
    eprintln!("zerorank: the error handler is MPI_ERRORS_ARE_FATAL; ending the job");
    std::process::exit(1);
}

/// `MPI_Error_class`: every code zerorank returns is a class.
#[no_mangle]
pub extern "C" fn MPI_Error_class(code: c_int, class: *mut c_int) -> c_int {
    if class_string(code).is_none() {
        return MPI_ERR_ARG;
    }
    if !raw::put(class, code) {
        return MPI_ERR_ARG;
    }
    MPI_SUCCESS
}

/// `MPI_Error_string`.
#[no_mangle]
pub extern "C" fn MPI_Error_string(code: c_int, out: *mut c_char, len: *mut c_int) -> c_int {
    let Some(s) = class_string(code) else {
        return MPI_ERR_ARG;
    };
    if !raw::put_cstr(out, MPI_MAX_ERROR_STRING, len, s) {
        return MPI_ERR_ARG;
    }
    MPI_SUCCESS
}

/// `MPI_Comm_set_errhandler`.
#[no_mangle]
pub extern "C" fn MPI_Comm_set_errhandler(comm: c_int, handler: c_int) -> c_int {
    let r = Comm::checked(comm).and_then(|c| {
        if handler != MPI_ERRORS_ARE_FATAL && handler != MPI_ERRORS_RETURN {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                format!("invalid error handler {handler:#x} (zerorank has MPI_ERRORS_ARE_FATAL and MPI_ERRORS_RETURN)"),
            ));
        }
        state::with(|s| s.errhandler[c.index()] = handler);
        Ok(())
    });
    finish("MPI_Comm_set_errhandler", comm, r)
}

/// `MPI_Comm_get_errhandler`.
#[no_mangle]
pub extern "C" fn MPI_Comm_get_errhandler(comm: c_int, handler: *mut c_int) -> c_int {
    let r = Comm::checked(comm).and_then(|c| {
        let h = state::with(|s| s.errhandler[c.index()]);
        raw::put(handler, h)
            .then_some(())
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "errhandler is a null pointer"))
    });
    finish("MPI_Comm_get_errhandler", comm, r)
}

/// `MPI_Errhandler_free`: the predefined handlers may be "freed" (the handle becomes
/// `MPI_ERRHANDLER_NULL`; the handler itself stays).
#[no_mangle]
pub extern "C" fn MPI_Errhandler_free(handler: *mut c_int) -> c_int {
    match raw::get(handler) {
        Some(MPI_ERRORS_ARE_FATAL | MPI_ERRORS_RETURN) => {
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
