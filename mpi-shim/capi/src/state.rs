//! The library's per-process state: the rank's universe, the table behind `MPI_Comm` and
//! `MPI_Group` handles (with each communicator's error handler, name and topology), and
//! the table behind `MPI_Request` handles.
//!
//! MPI calls come from the thread that initialized (`MPI_THREAD_FUNNELED` is what
//! `MPI_Init_thread` reports), so the state is thread-local; a call from another thread
//! finds it missing and fails with a clear error.
//!
//! No borrow of the state is held while a call communicates: a call copies what it needs
//! (communicators are cheap `Rc` clones) and releases the state first, so a user reduction
//! function that calls MPI from inside a collective finds the state free.

use crate::abi::*;
use crate::error::MpiError;
use crate::topo::Topology;
use std::cell::RefCell;
use std::ffi::c_int;
use std::rc::Rc;
use zerorank::collective::CollRequest;
use zerorank::group::Group;
use zerorank::{Communicator, Universe};
use zerorank_transport::fabric::ReqId;

/// A communicator the C program holds a handle to.
#[derive(Clone)]
pub(crate) struct CommEntry {
    pub comm: Communicator,
    pub errhandler: c_int,
    pub name: Rc<str>,
    pub topo: Option<Rc<Topology>>,
}

impl CommEntry {
    /// Tell the communicator how its collectives end when the ranks disagree on sizes:
    /// under `MPI_ERRORS_ARE_FATAL` at once (the job ends on the error), under
    /// `MPI_ERRORS_RETURN` after running the schedule to its end (see
    /// `Communicator::set_finish_on_disagreement`).
    pub fn follow_errhandler(&self) {
        self.comm
            .set_finish_on_disagreement(crate::errhandler::returns_errors(self.errhandler));
    }
}

/// What to do with a receive's bytes when it completes: unpack a staging buffer into the
/// user's non-contiguous datatype.
pub(crate) struct Unpack {
    pub staging: Vec<u8>,
    pub ty: crate::datatype::TypeInfo,
    pub base: *mut u8,
    pub count: usize,
}

/// Steps a collective runs after its communication completes (unpacking into
/// non-contiguous receive buffers), and the staging buffers it keeps alive until then.
pub(crate) type AfterColl = Box<dyn FnOnce() -> Result<(), MpiError>>;

/// What an `MPI_Request` handle stands for.
pub(crate) enum CRequest {
    /// A send in the transport; `keep` is the packed copy of a non-contiguous buffer.
    Send {
        id: ReqId,
        /// The communicator's handle (its error handler reports failures) and itself.
        comm_h: c_int,
        comm: Communicator,
        keep: Option<Vec<u8>>,
    },
    /// A receive in the transport.
    Recv {
        id: ReqId,
        comm_h: c_int,
        comm: Communicator,
        unpack: Option<Unpack>,
    },
    /// A non-blocking collective. Boxed: its schedule's state is large (232 bytes), and
    /// every request (the small sends and receives too) moves into and out of the request
    /// table by value, so inline it made each `MPI_Isend`/`MPI_Irecv` and each completion
    /// copy the whole enum (about 280 bytes; 80 boxed). Measured: that `memcpy` was 15% of
    /// an 8-byte `osu_bw`-style stream.
    Coll {
        req: Box<CollRequest>,
        comm_h: c_int,
        after: Option<AfterColl>,
        keep: Vec<Vec<u8>>,
    },
    /// Completed already (an operation on `MPI_PROC_NULL`, a cancelled receive).
    Done(MpiStatus),
    /// Completed already with an error that `MPI_Request_get_status` reported; the wait
    /// that frees it reports it again.
    Failed {
        comm_h: c_int,
        status: MpiStatus,
        error: Box<MpiError>,
    },
    /// A generalized request (`grequest.rs`).
    Generalized(Box<crate::grequest::Grequest>),
    /// A persistent send or receive (`MPI_Send_init`, `MPI_Recv_init`, ...): inactive,
    /// or started and running the operation it holds.
    Persistent(Box<crate::persistent::Persistent>),
}

/// Requests move by value through the table on every non-blocking call (see `Coll`).
const _: () = assert!(std::mem::size_of::<CRequest>() <= 96, "keep CRequest small");

impl CRequest {
    /// The handle of the communicator whose error handler reports this request's errors.
    pub fn comm_handle(&self) -> c_int {
        match self {
            CRequest::Send { comm_h, .. }
            | CRequest::Recv { comm_h, .. }
            | CRequest::Coll { comm_h, .. }
            | CRequest::Failed { comm_h, .. } => *comm_h,
            CRequest::Persistent(p) => p.comm_handle(),
            CRequest::Done(_) | CRequest::Generalized(_) => MPI_COMM_WORLD,
        }
    }
}

/// The library's state in the initializing thread.
pub(crate) struct State {
    pub universe: Option<Universe>,
    pub finalized: bool,
    /// Communicators by table index: 0 is `MPI_COMM_WORLD`, 1 `MPI_COMM_SELF`.
    comms: Vec<Option<CommEntry>>,
    groups: Vec<Option<Group>>,
}

thread_local! {
    static STATE: RefCell<State> = const {
        RefCell::new(State {
            universe: None,
            finalized: false,
            comms: Vec::new(),
            groups: Vec::new(),
        })
    };
    static REQUESTS: RefCell<Slab> = const { RefCell::new(Slab { slots: Vec::new(), free: Vec::new() }) };
}

/// Run `f` on the state. `f` must not communicate (see the module docs).
pub(crate) fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

/// Why MPI cannot be used now.
fn not_running(finalized: bool) -> MpiError {
    if finalized {
        MpiError::new(
            MPI_ERR_OTHER,
            "MPI was finalized; no MPI call may follow MPI_Finalize",
        )
    } else {
        MpiError::new(
            MPI_ERR_OTHER,
            "MPI is not initialized in this thread (call MPI_Init first; zerorank \
             provides MPI_THREAD_FUNNELED: only the thread that initialized may call MPI)",
        )
    }
}

/// First handle of user communicators (MPICH's "direct" communicator handles).
const COMM_BASE: c_int = 0x8400_0000u32 as c_int;
/// First handle of user groups.
const GROUP_BASE: c_int = 0x8800_0000u32 as c_int;
/// Handles of requests: `MPI_REQUEST_NULL` plus one plus the table index.
const REQUEST_BASE: c_int = MPI_REQUEST_NULL + 1;

fn comm_index(h: c_int) -> Option<usize> {
    match h {
        MPI_COMM_WORLD => Some(0),
        MPI_COMM_SELF => Some(1),
        h if (COMM_BASE..COMM_BASE + 0x0100_0000).contains(&h) => {
            Some((h - COMM_BASE) as usize + 2)
        }
        _ => None,
    }
}

fn comm_handle(i: usize) -> c_int {
    match i {
        0 => MPI_COMM_WORLD,
        1 => MPI_COMM_SELF,
        i => COMM_BASE + (i - 2) as c_int,
    }
}

impl State {
    /// Start: the universe is up; the predefined communicators get their entries.
    pub fn start(&mut self, u: Universe) {
        let world = u.world();
        let selfc = world.self_comm();
        // MPI_ERRORS_ARE_FATAL: a collective fails at once (`CommEntry::follow_errhandler`).
        world.set_finish_on_disagreement(false);
        selfc.set_finish_on_disagreement(false);
        self.comms = vec![
            Some(CommEntry {
                comm: world,
                errhandler: MPI_ERRORS_ARE_FATAL,
                name: Rc::from("MPI_COMM_WORLD"),
                topo: None,
            }),
            Some(CommEntry {
                comm: selfc,
                errhandler: MPI_ERRORS_ARE_FATAL,
                name: Rc::from("MPI_COMM_SELF"),
                topo: None,
            }),
        ];
        self.universe = Some(u);
    }

    /// Is MPI usable now? (Between `MPI_Init` and `MPI_Finalize`.)
    pub fn running(&self) -> Result<(), MpiError> {
        if self.universe.is_some() {
            Ok(())
        } else {
            Err(not_running(self.finalized))
        }
    }

    /// The communicator behind handle `h`, or `MPI_ERR_COMM`.
    pub fn comm(&self, h: c_int) -> Result<&CommEntry, MpiError> {
        self.running()?;
        comm_index(h)
            .and_then(|i| self.comms.get(i))
            .and_then(Option::as_ref)
            .ok_or_else(|| bad_comm(h))
    }

    /// The communicator behind handle `h`, to change its entry.
    pub fn comm_mut(&mut self, h: c_int) -> Result<&mut CommEntry, MpiError> {
        self.running()?;
        comm_index(h)
            .and_then(|i| self.comms.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or_else(|| bad_comm(h))
    }

    /// The error handler of communicator `h`, if it is one.
    pub fn errhandler(&self, h: c_int) -> Option<c_int> {
        comm_index(h)
            .and_then(|i| self.comms.get(i))
            .and_then(Option::as_ref)
            .map(|e| e.errhandler)
    }

    /// Store a new communicator; its handle.
    pub fn add_comm(&mut self, e: CommEntry) -> c_int {
        e.follow_errhandler();
        comm_handle(fill_slot(&mut self.comms, 2, e))
    }

    /// Remove user communicator `h` (`MPI_Comm_free`).
    pub fn remove_comm(&mut self, h: c_int) -> Result<(), MpiError> {
        match comm_index(h) {
            Some(0 | 1) => Err(MpiError::new(
                MPI_ERR_COMM,
                "MPI_COMM_WORLD and MPI_COMM_SELF cannot be freed",
            )),
            Some(i) if self.comms.get(i).is_some_and(Option::is_some) => {
                self.comms[i] = None;
                Ok(())
            }
            _ => Err(bad_comm(h)),
        }
    }

    /// The group behind handle `h`, or `MPI_ERR_GROUP`.
    pub fn group(&self, h: c_int) -> Result<Group, MpiError> {
        self.running()?;
        if h == MPI_GROUP_EMPTY {
            return Ok(Group::empty());
        }
        h.checked_sub(GROUP_BASE)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.groups.get(i))
            .and_then(Clone::clone)
            .ok_or_else(|| {
                let what = if h == MPI_GROUP_NULL {
                    "MPI_GROUP_NULL is not a group".to_string()
                } else {
                    format!("invalid group handle {h:#x}")
                };
                MpiError::new(MPI_ERR_GROUP, what)
            })
    }

    /// Store a group; its handle (`MPI_GROUP_EMPTY` for an empty one).
    pub fn add_group(&mut self, g: Group) -> c_int {
        if g.size() == 0 {
            return MPI_GROUP_EMPTY;
        }
        GROUP_BASE + fill_slot(&mut self.groups, 0, g) as c_int
    }

    /// Free group `h` (`MPI_Group_free`; `MPI_GROUP_EMPTY` may be freed and stays).
    pub fn remove_group(&mut self, h: c_int) -> Result<(), MpiError> {
        if h == MPI_GROUP_EMPTY {
            return Ok(());
        }
        self.group(h)?;
        self.groups[(h - GROUP_BASE) as usize] = None;
        Ok(())
    }

    /// Drop every communicator and group (at finalize).
    pub fn clear(&mut self) {
        self.comms.clear();
        self.groups.clear();
    }
}

fn bad_comm(h: c_int) -> MpiError {
    let what = if h == MPI_COMM_NULL {
        "MPI_COMM_NULL is not a communicator".to_string()
    } else {
        format!("invalid communicator handle {h:#x}")
    };
    MpiError::new(MPI_ERR_COMM, what)
}

/// Put `x` in the first free slot of `slots` from index `from` on (or in a new one at the
/// end); its index. The tables behind handles reuse the slots of freed objects.
pub(crate) fn fill_slot<T>(slots: &mut Vec<Option<T>>, from: usize, x: T) -> usize {
    match slots.iter().skip(from).position(Option::is_none) {
        Some(j) => {
            slots[from + j] = Some(x);
            from + j
        }
        None => {
            slots.push(Some(x));
            slots.len() - 1
        }
    }
}

/// A copy of communicator `h`'s entry (to communicate without holding the state).
pub(crate) fn comm(h: c_int) -> Result<CommEntry, MpiError> {
    with(|s| s.comm(h).cloned())
}

/// Communicator `h` (a reference-counted handle: to communicate without holding the state).
pub(crate) fn communicator(h: c_int) -> Result<zerorank::Communicator, MpiError> {
    with(|s| s.comm(h).map(|e| e.comm.clone()))
}

/// The table of requests: slots reused through a free list.
pub(crate) struct Slab {
    slots: Vec<Option<CRequest>>,
    free: Vec<usize>,
}

/// Store `r`; its handle.
pub(crate) fn add_request(r: CRequest) -> c_int {
    REQUESTS.with(|t| {
        let mut t = t.borrow_mut();
        let i = match t.free.pop() {
            Some(i) => {
                t.slots[i] = Some(r);
                i
            }
            None => {
                t.slots.push(Some(r));
                t.slots.len() - 1
            }
        };
        REQUEST_BASE + i as c_int
    })
}

fn request_index(h: c_int) -> Option<usize> {
    usize::try_from(h.checked_sub(REQUEST_BASE)?).ok()
}

/// The error for `h`, which is not a request in the table.
pub(crate) fn bad_request(h: c_int) -> MpiError {
    MpiError::new(MPI_ERR_REQUEST, format!("invalid request handle {h:#x}"))
}

/// Take request `h` out of the table (to complete it without holding the table); put it
/// back with [`put_back`] if it has not completed.
pub(crate) fn take_request(h: c_int) -> Result<CRequest, MpiError> {
    REQUESTS.with(|t| {
        let mut t = t.borrow_mut();
        let i = request_index(h).ok_or_else(|| bad_request(h))?;
        let r = t
            .slots
            .get_mut(i)
            .and_then(Option::take)
            .ok_or_else(|| bad_request(h))?;
        t.free.push(i);
        Ok(r)
    })
}

/// Put a request taken by [`take_request`] back under the same handle.
pub(crate) fn put_back(h: c_int, r: CRequest) {
    REQUESTS.with(|t| {
        let mut t = t.borrow_mut();
        let i = request_index(h).expect("a handle that was taken");
        let pos = t.free.iter().rposition(|&f| f == i).expect("slot is free");
        t.free.swap_remove(pos);
        assert!(t.slots[i].is_none(), "request slot {i} reused while taken");
        t.slots[i] = Some(r);
    })
}

/// Is `h` a request handle in the table?
pub(crate) fn is_request(h: c_int) -> bool {
    REQUESTS.with(|t| {
        let t = t.borrow();
        request_index(h).is_some_and(|i| t.slots.get(i).is_some_and(Option::is_some))
    })
}

/// Look at request `h` without taking it.
pub(crate) fn peek_request<R>(h: c_int, f: impl FnOnce(&mut CRequest) -> R) -> Option<R> {
    REQUESTS.with(|t| {
        let mut t = t.borrow_mut();
        let i = request_index(h)?;
        t.slots.get_mut(i).and_then(Option::as_mut).map(f)
    })
}

/// Requests still in the table (for the warning at finalize).
pub(crate) fn live_requests() -> usize {
    REQUESTS.with(|t| t.borrow().slots.iter().flatten().count())
}
