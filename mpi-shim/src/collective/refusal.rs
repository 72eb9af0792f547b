//! Taking part in a collective without arguments of one's own: a rank whose arguments
//! failed its checks (a bad datatype, a negative count) returns an error, but the other
//! ranks, whose arguments may be fine, wait for it in the call. So it still makes the
//! call, with nothing to send or receive: the ranks that can tell (those that expected
//! bytes from it) report a disagreement (`MPI_ERR_TRUNCATE`), those that publish to it
//! see their publication read and released, and the communicator's sequence of calls
//! stays the same on every rank.
//!
//! This is the refusal on one node, where every reader checks what a publication holds
//! (`node`). Calls that run a schedule (across nodes, and non-blocking ones) are refused in
//! the ranks' agreement instead (`agreement::refuse`; `Communicator::refuse_collective`).

use super::{CollOp, RawBuf, Reducer};
use std::rc::Rc;

/// The collective a rank refuses, with what it shares with the other ranks' calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `MPI_Barrier` (it has no arguments to refuse; here for completeness).
    Barrier,
    /// `MPI_Bcast` from `root`.
    Bcast { root: u32 },
    /// `MPI_Reduce` to `root`.
    Reduce { root: u32 },
    /// `MPI_Allreduce`.
    Allreduce,
    /// `MPI_Scan`.
    Scan,
    /// `MPI_Exscan`.
    Exscan,
    /// `MPI_Gather` to `root`.
    Gather { root: u32 },
    /// `MPI_Gatherv` to `root`.
    Gatherv { root: u32 },
    /// `MPI_Scatter` from `root`.
    Scatter { root: u32 },
    /// `MPI_Scatterv` from `root`.
    Scatterv { root: u32 },
    /// `MPI_Allgather`.
    Allgather,
    /// `MPI_Allgatherv`.
    Allgatherv,
    /// `MPI_Alltoall`.
    Alltoall,
    /// `MPI_Alltoallv`.
    Alltoallv,
    /// `MPI_Reduce_scatter` and `MPI_Reduce_scatter_block`.
    ReduceScatter,
}

/// The reducer of a refused reduction: no element is ever combined (the operand is
/// empty).
struct Nothing;

impl Reducer for Nothing {
    fn reduce(&self, input: &[u8], _: &mut [u8]) {
        assert!(input.is_empty(), "a refused reduction has no operand");
    }
    fn commutative(&self) -> bool {
        true
    }
    fn elem_size(&self) -> usize {
        1
    }
}

impl Refused {
    /// The root, for the collectives that have one.
    pub fn root(self) -> Option<u32> {
        match self {
            Refused::Bcast { root }
            | Refused::Reduce { root }
            | Refused::Gather { root }
            | Refused::Gatherv { root }
            | Refused::Scatter { root }
            | Refused::Scatterv { root } => Some(root),
            _ => None,
        }
    }

    /// The call with nothing to send or receive, for rank `me` of `n`.
    pub fn op(self, n: usize, me: u32) -> CollOp {
        // SAFETY: an empty buffer; no byte of it is read or written.
        let empty = unsafe { RawBuf::new(std::ptr::NonNull::dangling().as_ptr(), 0) };
        let at_root = |root: u32| (root == me).then_some(empty);
        let zeros = || vec![0usize; n];
        let op: Rc<dyn Reducer> = Rc::new(Nothing);
        match self {
            Refused::Barrier => CollOp::Barrier,
            Refused::Bcast { root } => CollOp::Bcast { root, buf: empty },
            Refused::Reduce { root } => CollOp::Reduce {
                root,
                send: Some(empty),
                recv: at_root(root),
                op,
            },
            Refused::Allreduce => CollOp::Allreduce {
                send: Some(empty),
                recv: empty,
                op,
            },
            Refused::Scan => CollOp::Scan {
                send: Some(empty),
                recv: empty,
                op,
            },
            Refused::Exscan => CollOp::Exscan {
                send: Some(empty),
                recv: empty,
                op,
            },
            Refused::Gather { root } => CollOp::Gather {
                root,
                send: Some(empty),
                recv: at_root(root),
                block: 0,
            },
            Refused::Gatherv { root } => CollOp::Gatherv {
                root,
                send: Some(empty),
                recv: at_root(root),
                counts: zeros(),
                displs: zeros(),
            },
            Refused::Scatter { root } => CollOp::Scatter {
                root,
                send: at_root(root),
                recv: Some(empty),
                block: 0,
            },
            Refused::Scatterv { root } => CollOp::Scatterv {
                root,
                send: at_root(root),
                counts: zeros(),
                displs: zeros(),
                recv: Some(empty),
            },
            Refused::Allgather => CollOp::Allgather {
                send: Some(empty),
                recv: empty,
                block: 0,
            },
            Refused::Allgatherv => CollOp::Allgatherv {
                send: Some(empty),
                recv: empty,
                counts: zeros(),
                displs: zeros(),
            },
            Refused::Alltoall => CollOp::Alltoall {
                send: Some(empty),
                recv: empty,
                block: 0,
            },
            Refused::Alltoallv => CollOp::Alltoallv {
                send: Some(empty),
                scounts: zeros().into(),
                sdispls: zeros().into(),
                recv: empty,
                rcounts: zeros().into(),
                rdispls: zeros().into(),
            },
            Refused::ReduceScatter => CollOp::ReduceScatter {
                send: Some(empty),
                recv: empty,
                counts: zeros(),
                op,
            },
        }
    }
}
