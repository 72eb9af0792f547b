//! Communicators: `MPI_COMM_WORLD` and `MPI_COMM_SELF` so far, each with its own matching
//! context for point-to-point messages and another for collective traffic, so the two
//! never match each other.

use crate::abi::*;
use crate::error::{finish, MpiError};
use crate::raw;
use crate::state;
use std::ffi::c_int;

/// Context bit of collective traffic.
const COLLECTIVE: u32 = 1 << 31;

/// A communicator the library knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comm {
    World,
    SelfComm,
}

impl Comm {
    pub fn from_handle(h: c_int) -> Option<Comm> {
        match h {
            MPI_COMM_WORLD => Some(Comm::World),
            MPI_COMM_SELF => Some(Comm::SelfComm),
            _ => None,
        }
    }

    /// The communicator `h`, or `MPI_ERR_COMM`.
    pub fn checked(h: c_int) -> Result<Comm, MpiError> {
        Comm::from_handle(h).ok_or_else(|| {
            let what = if h == MPI_COMM_NULL {
                "MPI_COMM_NULL is not a communicator".to_string()
            } else {
                format!("invalid communicator handle {h:#x}")
            };
            MpiError::new(MPI_ERR_COMM, what)
        })
    }

    /// Index of the communicator's per-communicator state.
    pub fn index(self) -> usize {
        match self {
            Comm::World => 0,
            Comm::SelfComm => 1,
        }
    }

    /// The transport context of point-to-point messages.
    pub fn context(self) -> u32 {
        self.index() as u32
    }

    /// The transport context of collective traffic.
    pub fn coll_context(self) -> u32 {
        self.context() | COLLECTIVE
    }

    /// Number of ranks, given the job size.
    pub fn size(self, world: u32) -> u32 {
        match self {
            Comm::World => world,
            Comm::SelfComm => 1,
        }
    }

    /// This process's rank in the communicator.
    pub fn rank(self, world_rank: u32) -> u32 {
        match self {
            Comm::World => world_rank,
            Comm::SelfComm => 0,
        }
    }

    /// The world rank of communicator rank `r` (in range).
    pub fn to_world(self, r: u32, world_rank: u32) -> u32 {
        match self {
            Comm::World => r,
            Comm::SelfComm => world_rank,
        }
    }

    /// The communicator rank of world rank `w` (a member).
    pub fn rank_of_world(self, w: u32) -> c_int {
        match self {
            Comm::World => w as c_int,
            Comm::SelfComm => 0,
        }
    }
}

/// `MPI_Comm_size`.
#[no_mangle]
pub extern "C" fn MPI_Comm_size(comm: c_int, size: *mut c_int) -> c_int {
    let r = state::with(|s| {
        let c = Comm::checked(comm)?;
        let n = c.size(s.fabric()?.size());
        raw::put(size, n as c_int)
            .then_some(())
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "size is a null pointer"))
    });
    finish("MPI_Comm_size", comm, r)
}

/// `MPI_Comm_rank`.
#[no_mangle]
pub extern "C" fn MPI_Comm_rank(comm: c_int, rank: *mut c_int) -> c_int {
    let r = state::with(|s| {
        let c = Comm::checked(comm)?;
        let me = c.rank(s.fabric()?.rank());
        raw::put(rank, me as c_int)
            .then_some(())
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "rank is a null pointer"))
    });
    finish("MPI_Comm_rank", comm, r)
}
