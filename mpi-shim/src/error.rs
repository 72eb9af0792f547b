//! Errors of the rank layer.

use crate::point_to_point::Status;
use zerorank_transport::fabric::{FabricError, OpError};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rank could not start.
    #[error("zerorank could not start: {0}")]
    Init(#[from] FabricError),
    /// The message was longer than the receive buffer; `status` tells what was received.
    #[error("message truncated: rank {} sent {sent} bytes with tag {}, the buffer holds {capacity}", status.source_rank(), status.tag())]
    Truncated {
        /// What was received (the first `capacity` bytes).
        status: Status,
        /// Bytes sent.
        sent: usize,
        /// Bytes the buffer holds.
        capacity: usize,
    },
    /// A rank is outside the communicator.
    #[error("rank {rank} is not in this communicator of {size} ranks")]
    InvalidRank {
        /// The rank given.
        rank: i32,
        /// The communicator size.
        size: i32,
    },
    /// A tag is negative or above [`crate::TAG_UB`].
    #[error("tag {0} is invalid: tags go from 0 to {ub}", ub = crate::TAG_UB)]
    InvalidTag(i32),
    /// A received message does not hold a whole number of the expected elements.
    #[error(
        "received {got} bytes, expected {expected} (a whole number of {element}-byte elements)"
    )]
    Count {
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        got: usize,
        /// Element size.
        element: usize,
    },
    /// The operation failed (peer failure, queue bounds).
    #[error(transparent)]
    Op(#[from] OpError),
    /// A ring-broadcast group failed, or waited in vain (see [`crate::RingGroup`]).
    #[error("ring group: {0}")]
    RingGroup(String),
    /// A rank is outside a group.
    #[error("rank {rank} is not in this group of {size} ranks")]
    GroupRank {
        /// The rank given.
        rank: i32,
        /// The group size.
        size: i32,
    },
    /// A rank was named twice where ranks must be distinct.
    #[error("rank {0} is named more than once (the ranks of a group must be distinct)")]
    DuplicateRank(i32),
    /// A `(first, last, stride)` triple does not describe ranks of the group.
    #[error(
        "rank range (first {first}, last {last}, stride {stride}) is invalid for a group of \
         {size} ranks: first and last must be ranks of the group and the stride non-zero, \
         leading from first to last"
    )]
    InvalidRange {
        /// First rank.
        first: i32,
        /// Last rank.
        last: i32,
        /// Stride.
        stride: i32,
        /// The group size.
        size: i32,
    },
    /// A communicator was to be made from a group with processes outside the parent.
    #[error("the group has process {world_rank} (world rank), which is not in the communicator")]
    NotSubgroup {
        /// The world rank of the first stranger.
        world_rank: u32,
    },
    /// The members of a communicator passed different arguments to a collective call that
    /// needs the same on all.
    #[error("the ranks of the communicator passed different {what}")]
    Mismatch {
        /// Which argument.
        what: &'static str,
    },
    /// A split colour is negative (use `None` for `MPI_UNDEFINED`).
    #[error("split colour {0} is invalid: colours are non-negative (None leaves the rank out)")]
    InvalidColor(i32),
    /// This process has made as many communicators as there are context ids.
    #[error("no context id left for a new communicator (2^31 used)")]
    ContextsExhausted,
    /// A buffer has the wrong length for a collective operation.
    #[error("{what}: the buffer holds {got} bytes, the operation needs {expected}")]
    BufferLength {
        /// Which buffer of which operation.
        what: &'static str,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A counts/displacements argument does not fit the communicator or the buffer.
    #[error("{what}: {why}")]
    Layout {
        /// Which argument of which operation.
        what: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A root-only variant was called on a rank that is not the root.
    #[error("{what} is the root's variant: rank {rank} is not the root {root} (call the non-root variant)")]
    NotRoot {
        /// The operation.
        what: &'static str,
        /// The root.
        root: i32,
        /// This rank.
        rank: i32,
    },
    /// A non-root variant was called on the root.
    #[error("{what} is for ranks other than the root {root} (the root calls the _root variant)")]
    IsRoot {
        /// The operation.
        what: &'static str,
        /// The root.
        root: i32,
    },
    /// A predefined reduction is not defined on the element type.
    #[error(transparent)]
    Reduction(#[from] crate::op::OpError),
    /// A collective operation failed.
    #[error("collective operation failed: {0}")]
    Collective(#[from] crate::collective::CollError),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
