//! The library's per-process state: the rank's universe, the communicators' error
//! handlers, and the table behind `MPI_Request` handles.
//!
//! MPI calls come from the thread that initialized (`MPI_THREAD_FUNNELED` is what
//! `MPI_Init_thread` reports), so the state is thread-local; a call from another thread
//! finds it missing and fails with a clear error.

use crate::abi::*;
use crate::error::MpiError;
use std::cell::RefCell;
use std::ffi::c_int;
use zerorank::Universe;
use zerorank_transport::fabric::{Fabric, ReqId};

/// What an `MPI_Request` handle stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CRequest {
    /// A send or receive in the transport; `comm` is the communicator it was made on.
    Live { id: ReqId, recv: bool, comm: c_int },
    /// Completed at once (an operation on `MPI_PROC_NULL`).
    Done(MpiStatus),
}

/// The library's state in the initializing thread.
pub(crate) struct State {
    pub universe: Option<Universe>,
    pub finalized: bool,
    /// Error handlers of `MPI_COMM_WORLD` and `MPI_COMM_SELF`.
    pub errhandler: [c_int; 2],
    requests: Vec<Option<CRequest>>,
    free: Vec<usize>,
}

thread_local! {
    static STATE: RefCell<State> = const {
        RefCell::new(State {
            universe: None,
            finalized: false,
            errhandler: [MPI_ERRORS_ARE_FATAL; 2],
            requests: Vec::new(),
            free: Vec::new(),
        })
    };
}

/// Run `f` on the state.
pub(crate) fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

/// Handles of requests: `MPI_REQUEST_NULL` plus one plus the table index.
const REQUEST_BASE: c_int = MPI_REQUEST_NULL + 1;

impl State {
    /// The fabric, or why MPI cannot be used now.
    pub fn fabric(&self) -> Result<&Fabric, MpiError> {
        match &self.universe {
            Some(u) => Ok(u.fabric()),
            None if self.finalized => Err(MpiError::new(
                MPI_ERR_OTHER,
                "MPI was finalized; no MPI call may follow MPI_Finalize",
            )),
            None => Err(MpiError::new(
                MPI_ERR_OTHER,
                "MPI is not initialized in this thread (call MPI_Init first; zerorank \
                 provides MPI_THREAD_FUNNELED: only the thread that initialized may call MPI)",
            )),
        }
    }

    /// Store `r` and give its handle.
    pub fn add_request(&mut self, r: CRequest) -> c_int {
        let i = match self.free.pop() {
            Some(i) => {
                self.requests[i] = Some(r);
                i
            }
            None => {
                self.requests.push(Some(r));
                self.requests.len() - 1
            }
        };
        REQUEST_BASE + i as c_int
    }

    /// The request behind `handle`.
    pub fn request(&self, handle: c_int) -> Result<CRequest, MpiError> {
        self.index(handle)
            .and_then(|i| self.requests[i])
            .ok_or_else(|| {
                MpiError::new(
                    MPI_ERR_REQUEST,
                    format!("invalid request handle {handle:#x}"),
                )
            })
    }

    /// Remove the request behind `handle` (it completed or was freed).
    pub fn remove_request(&mut self, handle: c_int) {
        if let Some(i) = self.index(handle) {
            if self.requests[i].take().is_some() {
                self.free.push(i);
            }
        }
    }

    fn index(&self, handle: c_int) -> Option<usize> {
        let i = usize::try_from(handle.checked_sub(REQUEST_BASE)?).ok()?;
        (i < self.requests.len()).then_some(i)
    }

    /// Requests still in the table (for the warning at finalize).
    pub fn live_requests(&self) -> usize {
        self.requests.iter().flatten().count()
    }
}
