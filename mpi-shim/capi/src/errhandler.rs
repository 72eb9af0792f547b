//! User error handlers on communicators: `MPI_Comm_create_errhandler`,
//! `MPI_Comm_call_errhandler`, and the user handlers' part of `MPI_Errhandler_free`.
//!
//! A communicator's handler is `MPI_ERRORS_ARE_FATAL`, `MPI_ERRORS_RETURN` or one the
//! program made. When a call fails, a user handler is called with the communicator and
//! the error code, and when it returns, so does the call, with the code (as under
//! `MPI_ERRORS_RETURN`). The program holds references to a handler: the one
//! `MPI_Comm_create_errhandler` gives and one more per `MPI_Comm_get_errhandler`, each
//! freed by `MPI_Errhandler_free`. A handler with none left stays in use by the
//! communicators that have it; it just cannot be set on others.

use crate::abi::*;
use crate::error::MpiError;
use std::cell::RefCell;
use std::ffi::c_int;

/// `MPI_Comm_errhandler_function`: `void (MPI_Comm *, int *, ...)`.
pub(crate) type HandlerFn = unsafe extern "C" fn(*mut c_int, *mut c_int, ...);

/// First user handler handle (MPICH's direct error-handler handles).
const HANDLER_BASE: c_int = 0x9400_0000u32 as c_int;

struct UserHandler {
    f: HandlerFn,
    /// References the program holds; at 0, communicators that have it keep it.
    refs: usize,
}

thread_local! {
    static HANDLERS: RefCell<Vec<UserHandler>> = const { RefCell::new(Vec::new()) };
}

fn index(h: c_int) -> Option<usize> {
    usize::try_from(h.checked_sub(HANDLER_BASE)?).ok()
}

/// A new user handler; its handle.
pub(crate) fn create(f: HandlerFn) -> c_int {
    HANDLERS.with(|t| {
        let mut t = t.borrow_mut();
        t.push(UserHandler { f, refs: 1 });
        HANDLER_BASE + (t.len() - 1) as c_int
    })
}

/// The function of user handler `h` (a freed one too), if `h` is one.
pub(crate) fn function(h: c_int) -> Option<HandlerFn> {
    HANDLERS.with(|t| index(h).and_then(|i| t.borrow().get(i).map(|u| u.f)))
}

/// Can `h` be set on a communicator? (A predefined handler, or a user one not freed.)
pub(crate) fn check_settable(h: c_int) -> Result<(), MpiError> {
    if h == MPI_ERRORS_ARE_FATAL || h == MPI_ERRORS_RETURN {
        return Ok(());
    }
    let live = HANDLERS.with(|t| {
        index(h)
            .and_then(|i| t.borrow().get(i).map(|u| u.refs > 0))
            .unwrap_or(false)
    });
    if live {
        Ok(())
    } else {
        Err(MpiError::new(
            MPI_ERR_ARG,
            format!("{h:#x} is not an error handler (or was freed)"),
        ))
    }
}

/// Free a reference to user handler `h`; false if `h` is not one, or the program holds
/// no reference to it.
pub(crate) fn free(h: c_int) -> bool {
    HANDLERS.with(|t| {
        let mut t = t.borrow_mut();
        match index(h).and_then(|i| t.get_mut(i)) {
            Some(u) if u.refs > 0 => {
                u.refs -= 1;
                true
            }
            _ => false,
        }
    })
}

/// The program gets one more reference to `h` (`MPI_Comm_get_errhandler`), if it is a
/// user handler.
pub(crate) fn add_reference(h: c_int) {
    HANDLERS.with(|t| {
        let mut t = t.borrow_mut();
        if let Some(u) = index(h).and_then(|i| t.get_mut(i)) {
            u.refs += 1;
        }
    })
}

/// Does a communicator with handler `h` get errors back (rather than the job ending)?
pub(crate) fn returns_errors(h: c_int) -> bool {
    h != MPI_ERRORS_ARE_FATAL
}

/// Call user handler `f` for error `code` on communicator `comm`.
pub(crate) fn call(f: HandlerFn, comm: c_int, code: c_int) {
    let (mut comm, mut code) = (comm, code);
    // SAFETY: `f` is the function the program gave MPI_Comm_create_errhandler, of the type
    // mpi.h declares (`void (MPI_Comm *, int *, ...)`); it gets pointers to a
    // communicator handle and an error code that live across the call, and no variadic
    // arguments (MPI passes none in C). No borrow of the library's state is held: the
    // handler may call MPI.
    unsafe { f(&raw mut comm, &raw mut code) };
}

// ---------------------------------------------------------------------------------------
// The C functions

use crate::error::finish;
use crate::raw;
use crate::state;

/// `MPI_Comm_create_errhandler`.
#[no_mangle]
pub extern "C" fn MPI_Comm_create_errhandler(
    function: Option<HandlerFn>,
    errhandler: *mut c_int,
) -> c_int {
    let r = state::with(|s| s.running()).and_then(|()| {
        let f =
            function.ok_or_else(|| MpiError::new(MPI_ERR_ARG, "the handler function is null"))?;
        if errhandler.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "errhandler is a null pointer"));
        }
        raw::put(errhandler, create(f));
        Ok(())
    });
    finish("MPI_Comm_create_errhandler", MPI_COMM_WORLD, r)
}

/// `MPI_Comm_call_errhandler`: run `comm`'s handler on `errorcode` as if a call on `comm`
/// had failed with it; `MPI_SUCCESS` once a handler that returns has run.
#[no_mangle]
pub extern "C" fn MPI_Comm_call_errhandler(comm: c_int, errorcode: c_int) -> c_int {
    if let Err(e) = state::comm(comm) {
        return finish("MPI_Comm_call_errhandler", comm, Err(e));
    }
    let e = MpiError::new(errorcode, "raised by the program");
    crate::error::raise("MPI_Comm_call_errhandler", comm, e);
    MPI_SUCCESS
}
