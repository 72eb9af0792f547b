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
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
