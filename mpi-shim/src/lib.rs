//! # zerorank
//!
//! An MPI-like rank layer for Rust programs, on a zero-copy thread-per-core runtime. Each
//! rank is one process with one glommio executor pinned to its own core; ranks on a node
//! talk through shared memory, ranks on different nodes over io_uring TCP.
//!
//! The API follows rsmpi where it fits:
//!
//! ```no_run
//! use zerorank::traits::*;
//!
//! let universe = zerorank::initialize().expect("start zerorank");
//! let world = universe.world();
//! let (rank, size) = (world.rank(), world.size());
//! if rank == 0 {
//!     world.process_at_rank(1 % size).send(&42u64).unwrap();
//! } else if rank == 1 {
//!     let (x, status) = world.process_at_rank(0).receive::<u64>().unwrap();
//!     assert_eq!((x, status.source_rank()), (42, 0));
//! }
//! // Non-blocking operations borrow their buffers for a scope.
//! let mut buf = [0i32; 4];
//! zerorank::request::scope(|scope| {
//!     let r = world.any_process().immediate_receive_into(scope, &mut buf[..]).unwrap();
//!     let s = world.this_process().immediate_send(scope, &[1i32, 2, 3, 4][..]).unwrap();
//!     s.wait().unwrap();
//!     r.wait().unwrap();
//! });
//! // Dropping the universe finalizes.
//! ```
//!
//! Run it with `zrun -n 2 ./program` (or `srun`, or MPICH's `mpiexec`).

pub mod collective;
pub mod communicator;
pub mod datatype;
pub mod environment;
pub mod error;
pub mod group;
pub mod op;
pub mod operation;
pub mod point_to_point;
pub mod request;
pub mod ring_group;

/// The collective engine, as the communicator layer uses it.
pub(crate) use collective as coll;

pub use communicator::{CommComparison, Communicator, Rank, Tag};
pub use environment::{initialize, Universe};
pub use error::{Error, Result};
pub use group::{Group, GroupComparison};
pub use operation::{SystemOperation, UserOperation};
pub use ring_group::{Delivery, Replicated, RingGroup};
pub use zerorank_derive::Equivalence;

/// Largest tag value.
pub const TAG_UB: Tag = i32::MAX;

/// The traits a program imports: `use zerorank::traits::*;`.
pub mod traits {
    pub use crate::datatype::{Buffer, BufferMut, Equivalence};
    pub use crate::operation::{Elements, ElementsMut, Operation, Reducible};
    pub use crate::point_to_point::Source;
    pub use zerorank_derive::Equivalence;
}
