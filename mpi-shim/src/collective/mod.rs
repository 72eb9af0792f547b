//! Collective operations: the byte-level engine behind every collective of a communicator.
//!
//! The engine works on raw byte buffers ([`RawBuf`]): the C ABI packs derived datatypes
//! into contiguous bytes first, and the Rust API hands over its slices. Every count here is
//! in bytes. A collective is described by a [`CollOp`] and run with [`run`] (blocking) or
//! [`start`] (non-blocking, completed by [`CollRequest::test`] / [`CollRequest::wait`]) on a
//! [`CollCtx`]: the fabric, the world rank of every communicator rank, this rank, the
//! communicator's collective context and the call's sequence tag.
//!
//! # Schedules
//!
//! A collective is first turned into a *schedule* by a pure function of (this rank, the
//! rank count, the byte sizes, the op's commutativity and element size) — it never looks at
//! the data or at the network. A schedule is a list of *rounds*; a round is a set of
//! transfers (send or receive of `len` bytes at `off` of a buffer, to or from one peer)
//! followed by local steps (`reduce(input, inout)` and `copy`) over three kinds of buffer:
//! the user's send buffer (only ever read), the user's receive buffer, and temporaries the
//! schedule owns. The executor posts a round's receives, then its sends, on
//! `(world rank of peer, collective context, tag)` with the standard send mode, waits for
//! all of them (blocking) or tests them one call at a time (non-blocking), checks that
//! every receive got exactly the bytes it expected (a longer or shorter message means the
//! ranks disagree on counts and is a [`CollError::Truncated`]), runs the local steps, and
//! moves on. A round never reads a region it receives into, nor receives twice into one
//! region; messages between one pair of ranks are matched in posting order (the fabric is
//! FIFO per sender and all messages of one call share its tag), so the k-th message one
//! rank sends another is the k-th receive that rank posts from it.
//!
//! Because schedules are pure, the tests run the schedules of all n ranks of a job in
//! memory over a simulated network that delivers messages in a random order (FIFO per
//! pair), with sends that complete at once (eager) or only once matched (rendezvous, which
//! finds schedules that could deadlock), and compare every result with a serial
//! computation; they also check that no round receives into a region it sends or receives
//! elsewhere.
//!
//! # Agreement first
//!
//! Each rank chooses its schedule from its own arguments, so ranks that disagree on them
//! (an erroneous program) could choose different algorithms and wait forever for each
//! other. So every schedule over several ranks (except a blocking barrier's, which has no
//! arguments) starts with the ranks' agreement on the call (`agreement`): a fixed
//! dissemination exchange of 32-byte words, `ceil(log2 n)` rounds, that tells every rank
//! alike whether all ranks passed the same root and sizes and whether one refused its own
//! arguments; if not, every rank ends the call there with [`CollError::Disagree`] before
//! any transfer of the algorithm. A rank whose arguments fail its checks refuses
//! (`refuse`) without waiting. The cost is one more exchange per call: measured at 2
//! nodes x 1 rank over veth TCP, small bcast and allreduce go from ~10-20 us to ~30-40 us;
//! `ZR_COLL_AGREE=0` turns it off (then ranks that disagree may wait forever).
//!
//! The blocking executor sends a round's single send with `Fabric::send` (which puts a
//! small message straight into its ring) and receives a lone receive with `Fabric::recv`,
//! so a small broadcast between two ranks costs one send and one receive plus building a
//! short schedule (one allocation).
//!
//! # Algorithms
//!
//! `L` is the message size in bytes, `n` the rank count; thresholds are in [`Tuning`].
//!
//! | collective | algorithm |
//! |---|---|
//! | barrier | dissemination (⌈log2 n⌉ rounds of zero-byte messages) |
//! | bcast | binomial tree; `L >= 64 KiB` and `n > 2`: binomial scatter + ring allgather |
//! | reduce | binomial tree (children's results received in one round, combined in rank order); commutative, `L >= 64 KiB`, `n > 2`: ring reduce-scatter + gather |
//! | allreduce | recursive doubling with the usual fold of the `n - 2^k` extra ranks; commutative and `L >= 64 KiB`: ring reduce-scatter + ring allgather; non-commutative and large: reduce to rank 0 + bcast |
//! | gather, scatter | binomial tree when `n * block < 32 KiB`, else linear |
//! | gatherv, scatterv | linear |
//! | allgather | recursive doubling (`n` a power of two) or Bruck (otherwise) when `n * block < 64 KiB`, else ring |
//! | allgatherv | ring |
//! | alltoall(v) | all messages in one round when small, else pairwise exchange (XOR partner for a power of two) |
//! | reduce_scatter | commutative and `L >= 64 KiB`: ring reduce-scatter; else reduce to rank 0 + linear scatterv |
//! | scan, exscan | recursive doubling keeping rank order |
//!
//! # Determinism
//!
//! Every rank must end with bitwise identical results, run after run, for a given rank
//! count, even for ops whose result depends on operand order in the last bit (floating
//! sums, `MAX` with NaNs or signed zeros, `MINLOC` ties). So:
//!
//! - the order of combination is fixed by rank numbers alone: a rank combines its
//!   partners' partial results in an order the schedule fixes, never in arrival order (all
//!   receives of a round complete before any of its local steps run);
//! - a combination is always `reduce(lower ranks' operand, higher ranks' operand)` for the
//!   tree, recursive-doubling and scan algorithms, so non-commutative ops give
//!   `a0 op a1 op ... op a(n-1)`, and the two partners of a recursive-doubling step compute
//!   the same function of the same bytes;
//! - when a commutative op is reordered (ring reduce-scatter), each chunk of the result is
//!   computed on exactly one rank, in an order fixed by rank numbers, and then copied to
//!   the others.
//!
//! # In place (MPI 3.1)
//!
//! `send: None` is `MPI_IN_PLACE`: Reduce (root only): the root's input is in `recv`;
//! Allreduce, Scan, Exscan: the input is in `recv`; Gather(v): the root's block is already
//! at its place in `recv`; Scatter(v): the root keeps its block in `send` and receives
//! nothing (its `recv` is `None`); Allgather(v): every rank's block is already at its place
//! in `recv`; Alltoall(v): `recv` holds the data to send, laid out as the receive;
//! ReduceScatter: the input is `recv` with the full count, the result goes to its start.
//! Buffers a rank does not use (the receive buffer of a non-root in Gather, ...) are
//! ignored.

mod agreement;
mod exec;
pub(crate) mod node;
mod plan;
mod reducer;
mod refusal;
mod schedule;
pub(crate) mod solo;
#[cfg(test)]
mod tests;

pub use exec::CollRequest;
pub use plan::Tuning;
pub use reducer::Reducer;
pub use refusal::Refused;

use std::fmt;
use std::rc::Rc;
use zerorank_transport::fabric::{Fabric, OpError};

/// Where and as whom a collective runs.
#[derive(Clone)]
pub struct CollCtx {
    /// This rank's fabric.
    pub fabric: Rc<Fabric>,
    /// The world rank of every communicator rank.
    pub ranks: Rc<[u32]>,
    /// This rank's communicator rank.
    pub rank: u32,
    /// The communicator's collective context (bit 31 already set).
    pub context: u32,
    /// This call's sequence tag.
    pub tag: i32,
    /// Run the schedule to its end when a message has another size than expected (see
    /// `Communicator::set_finish_on_disagreement`).
    pub finish_on_disagreement: bool,
    /// Start with the ranks' agreement on the call (see `agreement`; [`agreement_enabled`]).
    pub agree: bool,
}

/// Do schedule-run collectives start with the ranks' agreement on the call? Yes unless
/// `ZR_COLL_AGREE=0`.
pub fn agreement_enabled() -> bool {
    agreement::enabled()
}

pub use agreement::{mode as agreement_mode, Mode as AgreementMode};

/// No operand of a small call (`Communicator::all_reduce_small`) is larger: one
/// publication of the shared-memory slots.
pub const SMALL_BYTES: usize = zerorank_transport::shm::collslot::DATA_BYTES;

/// The digest of what every rank must pass alike to `op` (see `agreement`).
pub(crate) fn agreement_digest(op: &CollOp) -> u64 {
    agreement::digest(op)
}

/// The agreement of a blocking call on one node (`AgreementMode::All`; see `agreement`).
pub(crate) fn agree_on_node(
    node: &node::Node,
    tag: i32,
    me: u32,
    n: usize,
    vote: Option<u64>,
) -> Result<(), CollError> {
    agreement::on_node(node, tag, me, n, vote)
}

/// A caller's byte buffer: `len` bytes at `ptr`, valid until the collective completes.
#[derive(Clone, Copy, Debug)]
pub struct RawBuf {
    ptr: *mut u8,
    len: usize,
}

impl RawBuf {
    /// `len` bytes at `ptr`.
    ///
    /// # Safety
    /// The bytes must stay valid, and not be accessed by anyone else, until the collective
    /// using them completes (or fails). `ptr` may be dangling when `len` is 0.
    pub unsafe fn new(ptr: *mut u8, len: usize) -> RawBuf {
        RawBuf { ptr, len }
    }

    /// The bytes of `s`.
    ///
    /// # Safety
    /// As for [`RawBuf::new`]: `s` must outlive the collective and not be touched by anyone
    /// else meanwhile.
    pub unsafe fn from_slice(s: &mut [u8]) -> RawBuf {
        RawBuf {
            ptr: s.as_mut_ptr(),
            len: s.len(),
        }
    }

    /// `len` read-only bytes at `ptr`, for data that is only sent (a `send` buffer).
    ///
    /// # Safety
    /// As for [`RawBuf::new`], except that others may read the bytes meanwhile. The engine
    /// never writes through a `send` buffer; such a buffer must not be given as a buffer
    /// the collective writes (`recv`, `Bcast`'s `buf`).
    pub unsafe fn from_const(ptr: *const u8, len: usize) -> RawBuf {
        RawBuf {
            ptr: ptr as *mut u8,
            len,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The start address.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }
}

/// A collective operation; all sizes, counts and displacements are in bytes.
///
/// Kept at most 128 bytes (the size of a move the compiler inlines: a larger one is a
/// `memmove` call at every hand-over, which showed as a third of a one-rank barrier).
///
/// `send: None` means `MPI_IN_PLACE` (see the module docs for what that means for each
/// collective). Vectors of counts and displacements have one entry per communicator rank.
pub enum CollOp {
    /// Wait until every rank has entered.
    Barrier,
    /// `buf` of `root` to every rank's `buf`.
    Bcast {
        /// The rank that has the data.
        root: u32,
        /// The data (root) or where it goes (the others).
        buf: RawBuf,
    },
    /// `recv` of `root` = the reduction of every rank's `send`.
    Reduce {
        /// The rank that gets the result.
        root: u32,
        /// This rank's operand; `None` (root only) = in place, the root's operand is `recv`.
        send: Option<RawBuf>,
        /// The result (root only; ignored elsewhere).
        recv: Option<RawBuf>,
        /// The operation.
        op: Rc<dyn Reducer>,
    },
    /// Every rank's `recv` = the reduction of every rank's `send`.
    Allreduce {
        /// This rank's operand; `None` = in place, in `recv`.
        send: Option<RawBuf>,
        /// The result.
        recv: RawBuf,
        /// The operation.
        op: Rc<dyn Reducer>,
    },
    /// Block `i` of `root`'s `recv` = `send` of rank `i`.
    Gather {
        /// The rank that collects.
        root: u32,
        /// This rank's block; `None` (root only) = in place, already in `recv`.
        send: Option<RawBuf>,
        /// `size * block` bytes (root only; ignored elsewhere).
        recv: Option<RawBuf>,
        /// Bytes per rank.
        block: usize,
    },
    /// `recv[displs[i]..][..counts[i]]` of `root` = `send` of rank `i`.
    Gatherv {
        /// The rank that collects.
        root: u32,
        /// This rank's block; `None` (root only) = in place, already in `recv`.
        send: Option<RawBuf>,
        /// Where the blocks go (root only; ignored elsewhere).
        recv: Option<RawBuf>,
        /// Bytes from each rank (root only; ignored elsewhere).
        counts: Vec<usize>,
        /// Where each rank's bytes go in `recv` (root only; ignored elsewhere).
        displs: Vec<usize>,
    },
    /// `recv` of rank `i` = block `i` of `root`'s `send`.
    Scatter {
        /// The rank that has the data.
        root: u32,
        /// `size * block` bytes (root only; ignored elsewhere).
        send: Option<RawBuf>,
        /// This rank's block; `None` (root only) = in place, the root's block stays in `send`.
        recv: Option<RawBuf>,
        /// Bytes per rank.
        block: usize,
    },
    /// `recv` of rank `i` = `send[displs[i]..][..counts[i]]` of `root`.
    Scatterv {
        /// The rank that has the data.
        root: u32,
        /// The data (root only; ignored elsewhere).
        send: Option<RawBuf>,
        /// Bytes for each rank (root only; ignored elsewhere).
        counts: Vec<usize>,
        /// Where each rank's bytes are in `send` (root only; ignored elsewhere).
        displs: Vec<usize>,
        /// This rank's bytes; `None` (root only) = in place.
        recv: Option<RawBuf>,
    },
    /// Block `i` of every rank's `recv` = `send` of rank `i`.
    Allgather {
        /// This rank's block; `None` = in place, already in `recv`.
        send: Option<RawBuf>,
        /// `size * block` bytes.
        recv: RawBuf,
        /// Bytes per rank.
        block: usize,
    },
    /// `recv[displs[i]..][..counts[i]]` of every rank = `send` of rank `i`.
    Allgatherv {
        /// This rank's block; `None` = in place, already in `recv`.
        send: Option<RawBuf>,
        /// Where the blocks go.
        recv: RawBuf,
        /// Bytes from each rank.
        counts: Vec<usize>,
        /// Where each rank's bytes go in `recv`.
        displs: Vec<usize>,
    },
    /// Block `j` of rank `i`'s `recv` = block `i` of rank `j`'s `send`.
    Alltoall {
        /// `size * block` bytes; `None` = in place, the data is in `recv`.
        send: Option<RawBuf>,
        /// `size * block` bytes.
        recv: RawBuf,
        /// Bytes per pair of ranks.
        block: usize,
    },
    /// Rank `i`'s `recv[rdispls[j]..][..rcounts[j]]` = rank `j`'s
    /// `send[sdispls[i]..][..scounts[i]]`.
    Alltoallv {
        /// The data; `None` = in place: the data is in `recv` with the receive layout
        /// (`scounts` and `sdispls` are then ignored).
        send: Option<RawBuf>,
        /// Bytes for each rank.
        scounts: Box<[usize]>,
        /// Where each rank's bytes are in `send`.
        sdispls: Box<[usize]>,
        /// Where the data goes.
        recv: RawBuf,
        /// Bytes from each rank.
        rcounts: Box<[usize]>,
        /// Where each rank's bytes go in `recv`.
        rdispls: Box<[usize]>,
    },
    /// The reduction of every rank's `send` (`sum(counts)` bytes), of which rank `i` gets
    /// the `counts[i]` bytes after the first `counts[0] + ... + counts[i-1]` in `recv`.
    /// `Reduce_scatter_block` is this with equal counts.
    ReduceScatter {
        /// `sum(counts)` bytes; `None` = in place: the input is `recv` with the full count,
        /// and the result goes to its start.
        send: Option<RawBuf>,
        /// `counts[rank]` bytes (in place: `sum(counts)`).
        recv: RawBuf,
        /// Bytes of the result for each rank.
        counts: Vec<usize>,
        /// The operation.
        op: Rc<dyn Reducer>,
    },
    /// `recv` of rank `i` = `send` of ranks `0..=i` reduced.
    Scan {
        /// This rank's operand; `None` = in place, in `recv`.
        send: Option<RawBuf>,
        /// The result.
        recv: RawBuf,
        /// The operation.
        op: Rc<dyn Reducer>,
    },
    /// `recv` of rank `i > 0` = `send` of ranks `0..i` reduced; rank 0's `recv` is left
    /// as it is.
    Exscan {
        /// This rank's operand; `None` = in place, in `recv`.
        send: Option<RawBuf>,
        /// The result.
        recv: RawBuf,
        /// The operation.
        op: Rc<dyn Reducer>,
    },
}

const _: () = assert!(std::mem::size_of::<CollOp>() <= 128, "see CollOp's docs");

impl CollOp {
    /// The collective's name, as in MPI (e.g. `"Allreduce"`).
    pub fn name(&self) -> &'static str {
        match self {
            CollOp::Barrier => "Barrier",
            CollOp::Bcast { .. } => "Bcast",
            CollOp::Reduce { .. } => "Reduce",
            CollOp::Allreduce { .. } => "Allreduce",
            CollOp::Gather { .. } => "Gather",
            CollOp::Gatherv { .. } => "Gatherv",
            CollOp::Scatter { .. } => "Scatter",
            CollOp::Scatterv { .. } => "Scatterv",
            CollOp::Allgather { .. } => "Allgather",
            CollOp::Allgatherv { .. } => "Allgatherv",
            CollOp::Alltoall { .. } => "Alltoall",
            CollOp::Alltoallv { .. } => "Alltoallv",
            CollOp::ReduceScatter { .. } => "Reduce_scatter",
            CollOp::Scan { .. } => "Scan",
            CollOp::Exscan { .. } => "Exscan",
        }
    }
}

impl fmt::Debug for CollOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a collective failed.
#[derive(Debug, thiserror::Error)]
pub enum CollError {
    /// The root is not a rank of the communicator.
    #[error("root {root} is not a rank of this communicator of {size} ranks")]
    InvalidRoot {
        /// The root given.
        root: u32,
        /// The communicator size.
        size: u32,
    },
    /// A buffer has the wrong size.
    #[error("{what}: {got} bytes where {expected} are needed")]
    SizeMismatch {
        /// Which buffer.
        what: &'static str,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A size is not a whole number of the op's elements.
    #[error("{what}: {len} bytes is not a whole number of {elem}-byte elements")]
    NotMultiple {
        /// Which size.
        what: &'static str,
        /// The size.
        len: usize,
        /// The element size.
        elem: usize,
    },
    /// A buffer this rank needs was not given (or `MPI_IN_PLACE` where it is not allowed).
    #[error("{0}")]
    MissingBuffer(&'static str),
    /// A vector of counts or displacements does not fit.
    #[error("{0}")]
    BadCounts(String),
    /// The send and receive buffers overlap.
    #[error("the send and receive buffers overlap")]
    Aliased,
    /// A peer sent a message of another length (longer or shorter) than this rank
    /// expected: the ranks passed inconsistent counts (`MPI_ERR_TRUNCATE`).
    #[error("rank {peer} sent {got} bytes where {expected} were expected (the ranks disagree on the counts)")]
    Truncated {
        /// The peer (communicator rank).
        peer: u32,
        /// Bytes expected.
        expected: usize,
        /// Bytes the peer sent.
        got: usize,
    },
    /// Rank `peer` passed other arguments (counts, datatype, root) to this collective than
    /// this rank did, or refused its own arguments (`MPI_ERR_TRUNCATE`, as for
    /// [`Self::Truncated`]).
    #[error("rank {peer} passed other counts, another datatype or another root to this collective, or refused its own arguments (the ranks disagree)")]
    Disagree {
        /// The peer (communicator rank).
        peer: u32,
    },
    /// Rank `peer` is in this collective call with another root or as another
    /// collective, or left it without the data this rank waited for (on one node:
    /// `MPI_ERR_TRUNCATE`, as for [`Self::Disagree`]).
    #[error("rank {peer} named another root or called another collective, or left this call without sending what this rank waited for (the ranks disagree about the call)")]
    Abandoned {
        /// The peer (communicator rank).
        peer: u32,
    },
    /// The other ranks finished this call without reading what this rank published for
    /// them: they named another root or called another collective (on one node).
    #[error("the other ranks finished this collective call without reading this rank's data (they named another root or called another collective)")]
    Unread,
    /// A send to or receive from `peer` failed.
    #[error("with rank {peer} (world rank {world}): {source}")]
    Transport {
        /// The peer (communicator rank).
        peer: u32,
        /// Its world rank.
        world: u32,
        /// What the fabric reported.
        #[source]
        source: OpError,
    },
    /// The request already failed (the error was returned before).
    #[error("the collective already failed")]
    Failed,
}

/// Run `op` to completion with a schedule (point-to-point messages). `Communicator`
/// first tries the on-node and one-rank paths, which need state it keeps per communicator.
pub fn run(mut ctx: CollCtx, op: CollOp) -> Result<(), CollError> {
    // A blocking barrier has no arguments to disagree on or to refuse.
    ctx.agree &= !matches!(op, CollOp::Barrier);
    let planned = planned(&ctx, op)?;
    exec::Exec::new(ctx, planned)?.run()
}

/// Start `op`; complete it with [`CollRequest::test`] or [`CollRequest::wait`].
pub fn start(ctx: CollCtx, op: CollOp) -> Result<CollRequest, CollError> {
    let planned = planned(&ctx, op)?;
    Ok(CollRequest::new(exec::Exec::new(ctx, planned)?))
}

/// The schedule of `op`; when its arguments fail this rank's checks, after refusing the
/// call in the ranks' agreement (if they agree first), so that nobody waits for this rank.
fn planned(ctx: &CollCtx, op: CollOp) -> Result<plan::Planned, CollError> {
    let size = ctx.ranks.len() as u32;
    plan::plan(ctx.rank, size, op, &Tuning::default(), ctx.agree).inspect_err(|_| {
        if ctx.agree {
            agreement::refuse(ctx);
        }
    })
}

/// Take part in the schedule-run call `ctx` as a rank whose arguments failed its checks
/// before it could describe the call (a bad datatype or op): the ranks' agreement then
/// ends the call on every rank (see `agreement`). False when the ranks do not agree first
/// (`ZR_COLL_AGREE=0`), and so may wait for this rank.
pub fn refuse(ctx: &CollCtx) -> bool {
    if ctx.agree {
        agreement::refuse(ctx);
    }
    ctx.agree
}
