//! On-node collectives through shared memory: when every rank of a communicator is on
//! this node, every blocking collective goes through the node's collective slots
//! (`zerorank_transport::shm::collslot`) instead of point-to-point messages. Each rank
//! publishes in its own slot; the others read the publication in place and release it.
//!
//! | collective | how |
//! |---|---|
//! | Barrier | every rank waits until the others' call words show them in the call ([`Node::barrier`]) |
//! | Bcast of no bytes | nothing: every rank returns at once |
//! | Bcast up to [`SLOT_MAX`] | the root publishes the data in one publication |
//! | Bcast above | the root streams it in chunks ([`exposure`]), or lets the others copy it from its buffer ([`direct`]), whichever has lately been faster ([`choice`]) |
//! | Reduce, Allreduce up to [`EXCHANGE_MAX`], Scan, Exscan, Reduce_scatter | every rank publishes its operand chunk by chunk; each rank folds its share of the result straight from the published chunks ([`fold`]) |
//! | Reduce from [`REDUCE_DIRECT_MIN`] | as above, or each non-root publishes where its operand is and the root reads it from its memory, whichever that rank has lately timed faster ([`choice`], [`direct`]) |
//! | Allreduce above [`EXCHANGE_MAX`] | each rank folds one segment (a reduce-scatter through the slots), then the segments are exchanged as an Allgatherv |
//! | Allgather from [`DIRECT_MIN`] per block | every rank publishes where its block is and the others copy it from its memory with one kernel copy (`process_vm_readv`, when the kernel allows that), or the blocks go through the slots as below, whichever rank 0 has lately timed faster ([`choice`]); the others follow rank 0 |
//! | Allgather up to [`EXCHANGE_MAX`] per block, below [`DIRECT_MIN`] or without kernel copies | every rank publishes its block, the others copy it out |
//! | Gather(v), Scatter(v), Allgather(v), Alltoall(v), other sizes | every publishing rank streams a table and its blocks; each reader reads the chunks its block is in ([`exposure`]) |
//!
//! A block or a result crosses between cores once (into a slot and out of it, in a
//! pipeline `collslot::AREAS` chunks deep), not `log n` times as in a tree of point-to-point
//! messages.
//!
//! The non-blocking collectives (`Ibarrier`, `Ibcast`, `Iallreduce`) do not use the
//! slots: a publication occupies one of the publisher's `collslot::AREAS` areas until every reader
//! has read it, and a reader reads only once it has started the same collective. MPI lets
//! ranks start non-blocking collectives on different communicators in different orders,
//! so a rank could wait for an area held by a publication whose reader first waits for
//! that rank: a deadlock no buffering on the reader's side would undo without making it a
//! point-to-point message again. They run the point-to-point schedules over the node's
//! shared-memory rings, whose unexpected messages are buffered by the receiver.
//!
//! # Agreement
//! Every rank must take the same path for a call ([`Node::accepts`] looks only at what
//! the ranks know alike). When ranks pass inconsistent sizes (an erroneous program) they
//! may still publish differently; every publication says what it holds
//! (`collslot::Kind`) and how long it is, and a reader that finds something other than
//! what it expected reports [`CollError::Truncated`] after reading and releasing what the
//! publisher counts on it for, so nobody is left waiting. Reductions go further, since a
//! rank folds chunks of operands it may otherwise never look at the start of: every
//! fold publication carries the shape of the whole call (operand length, element size,
//! Reduce_scatter's counts), every rank checks it on the first chunk of each operand it
//! folds, and a rank whose own arguments fail a check still takes part, with a shape
//! nobody else has (`fold::Node::refuse`); see [`fold`].
//!
//! Ranks may also disagree about the call itself: name different roots, a root outside
//! the communicator, or call different collectives at the same point. Each rank says in
//! its slot's call word which call it is in (sequence number and a signature of the
//! collective and its root), then that it finished or failed it
//! (`zerorank_transport::shm::callword`), and a publication carries its call's signature
//! in its shape word. A rank never reads or releases a publication of another
//! signature. A waiting rank looks at the call words every [`LOOK_EVERY`] polls:
//! - a reader whose publisher is in the call with another signature, or has finished
//!   it, fails the call ([`CollError::Abandoned`]);
//! - a publisher whose area's readers have all finished the call or are in it with
//!   another signature takes the area back ([`Node::reclaim`]; the call fails with
//!   [`CollError::Unread`] if it is the current one);
//! - a publisher that waits for its readers while another rank has failed the call
//!   (its failure word, which outlasts its next calls) fails it too, since the read
//!   count does not say whether the failed rank was one of the readers it waits for.
//!
//! Ranks that guessed right may complete (a reader whose root agrees with it); every
//! other rank fails the call, and nobody waits forever.
//!
//! # Determinism
//! Every rank that computes a byte of a reduction folds the same operands in the same
//! fixed order, from the right: `a0 op (a1 op (... op a(n-1)))` (the [`Reducer`]
//! contract: `reduce(input, inout)` is `inout = input op inout`). That is rank order,
//! which non-commutative ops need, and it is the same expression on every rank and in
//! every run, so all ranks get bitwise identical results.

mod blocks;
mod choice;
mod direct;
mod exposure;
mod fold;
mod small;

use super::plan::{at_least, exact, per_rank};
use super::{CollError, CollOp, RawBuf, Reducer};
use blocks::Layout;
use std::cell::Cell;
use std::rc::Rc;
use zerorank_transport::fabric::Fabric;
use zerorank_transport::shm::callword::{self, Progress, Stage};
use zerorank_transport::shm::collslot::{token, CollSlot, Kind, DATA_BYTES, INLINE_BYTES};
use zerorank_transport::shm::copy::{copy, copy_local};

/// Largest broadcast sent as one publication; above, the root streams it in chunks.
///
/// Measured at 2 ranks (benches/c/coll_bench.c, slowest rank's median, fastest of 6
/// alternating runs): one publication is faster up to 1 KiB (0.33 against 0.48 us), level
/// at 4 KiB (0.92 against 0.91), and a stream is faster from 16 KiB (2.0 against 2.3).
/// `ZR_NODE_BCAST_MAX` (bytes) overrides it, for measurements.
pub const SLOT_MAX: usize = 4 << 10;

/// Largest allreduce operand that every rank folds whole, and largest allgather block
/// sent as one publication; above, an allreduce is a reduce-scatter and an allgather
/// through the slots, and an allgather block is streamed (or, from [`DIRECT_MIN`], read
/// from its owner's memory). Measured as for [`SLOT_MAX`]: allreduce 4 KiB 1.14 us
/// folded whole against 1.35 split, 16 KiB 3.06 against 3.03; allgather 16 KiB 2.9 as
/// one publication, 3.3 streamed. `ZR_NODE_REDUCE_MAX` (bytes) overrides it.
pub const EXCHANGE_MAX: usize = 8 << 10;

/// Largest operand of an on-node reduction (its chunks, and those of the gather phase of
/// a large allreduce after them, are numbered in 16 bits of the publication token): with
/// chunks of at least `DATA_BYTES - FOLD_ELEM_MAX + 1` bytes, 1 GiB is at most 37,449
/// fold chunks plus 16,385 of the gather phase. Larger operands take the schedules.
const FOLD_MAX: usize = 1 << 30;

const _: () = {
    let chunk = DATA_BYTES - FOLD_ELEM_MAX + 1;
    let fold = FOLD_MAX.div_ceil(chunk);
    let gather = (FOLD_MAX / 2 + 32).div_ceil(DATA_BYTES) + 1;
    assert!(
        fold + gather <= 0xffff,
        "fold chunks must fit the token's 16 bits"
    );
};

/// Reduce operands at least this large may be read by the root straight from the other
/// ranks' memory (see [`choice`]). At 2 ranks, in the machine's slow state, folding from
/// the slots took 7.0 us at 16 KiB and 243-282 at 1 MiB against Open MPI's 6.2 and 169;
/// reading the operand from the other rank's memory (256 KiB per kernel copy) and folding
/// took 218-231 at 1 MiB in either state; in the fast state the slots take 85-94.
const REDUCE_DIRECT_MIN: usize = 16 << 10;

/// Largest element of an on-node reduction (a chunk holds whole elements, at least 15).
const FOLD_ELEM_MAX: usize = 4096;

fn env_bytes(var: &str) -> Option<usize> {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map(|v| v.min(DATA_BYTES))
}

/// [`SLOT_MAX`], or `ZR_NODE_BCAST_MAX`.
fn bcast_max() -> usize {
    static CELL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CELL.get_or_init(|| env_bytes("ZR_NODE_BCAST_MAX").unwrap_or(SLOT_MAX))
}

/// [`EXCHANGE_MAX`], or `ZR_NODE_REDUCE_MAX`.
fn exchange_max() -> usize {
    static CELL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CELL.get_or_init(|| env_bytes("ZR_NODE_REDUCE_MAX").unwrap_or(EXCHANGE_MAX))
}

/// Allgather blocks at least this large may be read by each rank straight from the
/// owner's buffer with one kernel copy (`process_vm_readv`), when the kernel allows it
/// here, instead of going through the slots (one publication up to [`EXCHANGE_MAX`], a
/// stream above: two copies, into the slot and out): rank 0 times both ways
/// (`Node::allgather_chosen`). On 2026-12-04, on another machine of this kind, the slots
/// were the faster at every size measured (16 KiB 1.1-1.4 us against 3.1-3.9, 1 MiB 66-75
/// against 108-118).
///
/// Measured at 2 ranks (zr-bench allgather, p50, 2026-12-03): 8 KiB 1.77 us direct against
/// 2.30 as one publication, 4 KiB 1.47 against 1.29, 16 KiB 2.85-2.99 against 7.5-7.7
/// streamed (4.6 as one publication), 32 KiB 4.3 against 6.1 streamed. Earlier, on
/// another machine of this kind, streams were as fast or faster than the kernel copy in its
/// fast periods and three times slower in its slow ones, from 64 KiB. `ZR_NODE_DIRECT_MIN`
/// (bytes) overrides it.
const DIRECT_MIN: usize = 8 << 10;

fn direct_min() -> usize {
    static CELL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CELL.get_or_init(|| {
        std::env::var("ZR_NODE_DIRECT_MIN")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DIRECT_MIN)
    })
}

/// The slots of a communicator whose ranks all share this node. Built once per
/// communicator (see `Communicator`) and used by every call; a call is identified by its
/// collective tag, which goes into each publication's token.
pub(crate) struct Node {
    fabric: Rc<Fabric>,
    /// World rank of every communicator rank.
    ranks: Rc<[u32]>,
    /// This rank's communicator rank.
    me: usize,
    /// The communicator's collective context.
    context: u32,
    slots: Vec<CollSlot>,
    /// Local index of every rank (for the fabric's look-first hints).
    locals: Vec<usize>,
    /// World ranks of the others (whose failure ends a wait).
    peers: Vec<u32>,
    /// Can this rank read the others' memory (see [`DIRECT_MIN`])?
    direct: bool,
    /// How this rank, as a root, sends large broadcasts (see [`choice`]).
    bcast_way: choice::Chooser,
    /// How this rank, not the root, sends its operand of a large reduce.
    reduce_way: choice::Chooser,
    /// How rank 0 has every rank move the blocks of a large allgather.
    allgather_way: choice::Chooser,
    /// Every rank's call-word index for this communicator (`callword`).
    words: Rc<[u16]>,
    /// The other ranks' slots and call-word indices (for `collslot::Owner`).
    others: Rc<[(CollSlot, u16)]>,
    /// The call this rank is in: its tag and signature (`callword::signature`).
    call: Cell<(u32, u32)>,
    /// Did this rank take back a publication of the current call that no reader read?
    unread: Cell<bool>,
    /// The last earlier call whose unread publication this rank logged (context, seq).
    warned: Cell<Option<(u32, u32)>>,
}

/// Polls of a wait between looks at the other ranks' call words (each look may be a
/// cache miss on a line another core writes; a wait this long is already slow).
const LOOK_EVERY: u32 = 256;

/// Where a publication's shape word holds its call's signature (16 bits, 45 to 60): a
/// reader takes a publication only with its own call's signature, so ranks that disagree
/// about the root or the collective never read (or release) each other's publications.
const SIG_SHIFT: u32 = 45;
const SIG_MASK: u64 = 0xffff << SIG_SHIFT;

/// What a slow wait finds when it looks at one of this rank's areas (`Node::look_at_area`).
enum AreaLook {
    Free,
    Busy,
    Failed(usize),
}

/// The collective kinds of call signatures (`callword::signature`).
mod kind {
    pub const BARRIER: u8 = 1;
    pub const BCAST: u8 = 2;
    pub const REDUCE: u8 = 3;
    pub const ALLREDUCE: u8 = 4;
    pub const GATHER: u8 = 5;
    pub const SCATTER: u8 = 6;
    pub const ALLGATHER: u8 = 7;
    pub const ALLTOALL: u8 = 8;
    pub const REDUCE_SCATTER: u8 = 9;
    pub const SCAN: u8 = 10;
    pub const EXSCAN: u8 = 11;
    /// A reduction run as a schedule ([`super::Node::hand_to_schedule`]).
    pub const SCHEDULED: u8 = 12;
}

/// The signature of `op` (`callword::signature`): which collective and its root. The
/// `v` variants share their collective's: MPI lets their counts differ per rank anyway,
/// and the publications say what they hold.
fn signature(op: &CollOp) -> u32 {
    let (kind, root) = match op {
        CollOp::Barrier => (kind::BARRIER, None),
        CollOp::Bcast { root, .. } => (kind::BCAST, Some(*root)),
        CollOp::Reduce { root, .. } => (kind::REDUCE, Some(*root)),
        CollOp::Allreduce { .. } => (kind::ALLREDUCE, None),
        CollOp::Gather { root, .. } | CollOp::Gatherv { root, .. } => (kind::GATHER, Some(*root)),
        CollOp::Scatter { root, .. } | CollOp::Scatterv { root, .. } => {
            (kind::SCATTER, Some(*root))
        }
        CollOp::Allgather { .. } | CollOp::Allgatherv { .. } => (kind::ALLGATHER, None),
        CollOp::Alltoall { .. } | CollOp::Alltoallv { .. } => (kind::ALLTOALL, None),
        CollOp::ReduceScatter { .. } => (kind::REDUCE_SCATTER, None),
        CollOp::Scan { .. } => (kind::SCAN, None),
        CollOp::Exscan { .. } => (kind::EXSCAN, None),
    };
    callword::signature(kind, root)
}

/// The root of `op`, for the collectives that have one.
fn root_of(op: &CollOp) -> Option<u32> {
    match op {
        CollOp::Bcast { root, .. }
        | CollOp::Reduce { root, .. }
        | CollOp::Gather { root, .. }
        | CollOp::Gatherv { root, .. }
        | CollOp::Scatter { root, .. }
        | CollOp::Scatterv { root, .. } => Some(*root),
        _ => None,
    }
}

impl Node {
    /// The on-node view of a communicator (`ranks`, this rank `me`, collective context
    /// `context`, each rank's call-word index `words`), if it has one: at least two ranks,
    /// all on this node.
    pub(crate) fn new(
        fabric: &Rc<Fabric>,
        ranks: &Rc<[u32]>,
        me: u32,
        context: u32,
        words: Rc<[u16]>,
    ) -> Option<Node> {
        let n = ranks.len();
        if !(2..=exposure::MAX_ENTRIES).contains(&n) {
            return None;
        }
        assert!((me as usize) < n, "this rank is in the communicator");
        let locals = ranks
            .iter()
            .map(|&w| fabric.local_index(w))
            .collect::<Option<Vec<_>>>()?;
        let slots = locals
            .iter()
            .map(|&l| fabric.coll_slot(l))
            .collect::<Option<Vec<_>>>()?;
        let peers = (0..n)
            .filter(|&r| r != me as usize)
            .map(|r| ranks[r])
            .collect();
        assert_eq!(words.len(), n, "a call-word index per rank");
        let others = (0..n)
            .filter(|&r| r != me as usize)
            .map(|r| (slots[r], words[r]))
            .collect();
        Some(Node {
            fabric: fabric.clone(),
            ranks: ranks.clone(),
            me: me as usize,
            context,
            slots,
            locals,
            peers,
            direct: fabric.can_read_local_peers(),
            bcast_way: choice::Chooser::default(),
            reduce_way: choice::Chooser::default(),
            allgather_way: choice::Chooser::default(),
            words,
            others,
            call: Cell::new((0, 0)),
            unread: Cell::new(false),
            warned: Cell::new(None),
        })
    }

    /// Should `op` take this path? Every operation does, unless its reduction's elements
    /// or operands are too large for the chunks (see [`FOLD_MAX`]); such a reduction
    /// runs a schedule after [`Node::hand_to_schedule`], which fails the call on every
    /// rank when the ranks decided differently (an erroneous program, whose ranks pass
    /// different sizes or datatypes). A root outside the communicator is reported by
    /// [`Node::run`], after it said so in its call word (the others may name a valid
    /// root, and wait for this rank).
    pub(crate) fn accepts(&self, op: &CollOp) -> bool {
        // Chunks are whole elements of at most a slot, and 16 bits number them.
        let foldable =
            |len: usize, op: &Rc<dyn Reducer>| len <= FOLD_MAX && op.elem_size() <= FOLD_ELEM_MAX;
        match op {
            CollOp::Barrier | CollOp::Allgather { .. } => true,
            CollOp::Allgatherv { .. } | CollOp::Alltoall { .. } | CollOp::Alltoallv { .. } => true,
            CollOp::Bcast { .. }
            | CollOp::Gather { .. }
            | CollOp::Gatherv { .. }
            | CollOp::Scatter { .. }
            | CollOp::Scatterv { .. } => true,
            CollOp::Reduce { send, recv, op, .. } => {
                send.is_none_or(|b| foldable(b.len(), op))
                    && recv.is_none_or(|b| foldable(b.len(), op))
            }
            CollOp::Allreduce { recv, op, .. } => foldable(recv.len(), op),
            CollOp::ReduceScatter { counts, op, .. } => counts
                .iter()
                .try_fold(0usize, |a, &c| a.checked_add(c))
                .is_some_and(|t| foldable(t, op)),
            CollOp::Scan { recv, op, .. } | CollOp::Exscan { recv, op, .. } => {
                foldable(recv.len(), op)
            }
        }
    }

    fn n(&self) -> usize {
        self.slots.len()
    }

    fn me(&self) -> usize {
        self.me
    }

    fn token(&self, tag: u32, chunk: usize) -> u64 {
        token(self.context, tag, chunk as u32)
    }

    fn wait(&self, mut cond: impl FnMut() -> bool) -> Result<(), CollError> {
        let me = self.me();
        self.fabric
            .wait_for(&self.peers, &mut cond)
            .map_err(|source| {
                let world = match &source {
                    zerorank_transport::fabric::OpError::PeerFailed { rank, .. } => *rank,
                    _ => self.ranks[me],
                };
                let peer = self.ranks.iter().position(|&w| w == world).unwrap_or(me) as u32;
                CollError::Transport {
                    peer,
                    world,
                    source,
                }
            })
    }

    /// Publish `data` (at most a slot) in this rank's slot as chunk `chunk`, to be read by
    /// `readers` ranks; the area it went to.
    fn publish(
        &self,
        tag: u32,
        chunk: usize,
        data: &[u8],
        readers: usize,
    ) -> Result<usize, CollError> {
        self.publish_as(tag, chunk, &[data], readers, Kind::Data, 0)
    }

    /// [`Node::publish`] of the concatenation of `parts`, as a publication of kind `kind`
    /// with shape word `shape` (`CollSlot::published_shape`).
    fn publish_as(
        &self,
        tag: u32,
        chunk: usize,
        parts: &[&[u8]],
        readers: usize,
        kind: Kind,
        shape: u64,
    ) -> Result<usize, CollError> {
        let mine = self.slots[self.me()];
        let p = self.fabric.coll_publisher();
        let (area, asked) = p.next();
        self.wait_writable(area)?;
        // SAFETY: this rank owns its slot, and every reader of this area's last
        // publication released it (or never will: `Node::reclaim`).
        unsafe { mine.write_parts(area, parts, kind, shape | self.sig_bits()) };
        mine.publish(area, self.token(tag, chunk), asked + readers as u64);
        p.published(area, readers as u64);
        self.set_owner(area);
        Ok(area)
    }

    /// The current call's signature, where a shape word holds it.
    fn sig_bits(&self) -> u64 {
        u64::from(self.call.get().1) << SIG_SHIFT
    }

    /// The shape word of rank `r`'s publication in area `h`, without the signature.
    fn shape_at(&self, r: usize, h: usize) -> u64 {
        self.slots[r].published_shape(h) & !SIG_MASK
    }

    /// Record that this rank's publication in `area` belongs to the current call
    /// (`Publisher::set_owner`).
    fn set_owner(&self, area: usize) {
        let (seq, signature) = self.call.get();
        let p = self.fabric.coll_publisher();
        p.set_owner(area, &self.others, self.context, seq, signature);
    }

    /// Where rank `r` is, by its call word, relative to the current call.
    fn progress_of(&self, r: usize) -> Progress {
        let (seq, signature) = self.call.get();
        let word = self.slots[r].call(usize::from(self.words[r]));
        callword::progress(word, self.context, seq, signature)
    }

    /// Will rank `r` never publish anything more this call needs (it is in it with
    /// another root or collective, or has finished it)?
    fn abandoned_by(&self, r: usize) -> bool {
        self.progress_of(r).gone()
    }

    /// A rank other than this one that has left the current call with parts of it undone
    /// (see `Node::run`), if any.
    /// A publisher that waits for its readers fails the call when there is one (the
    /// read count does not say which readers are missing, and a failed one never comes);
    /// the ranks that wait for that publisher then find it failed ([`Node::abandoned_by`]).
    fn failed_peer(&self) -> Option<usize> {
        let seq = self.call.get().0;
        (0..self.n()).find(|&r| {
            r != self.me && {
                let i = usize::from(self.words[r]);
                callword::failed(self.slots[r].failure(i), self.context, seq)
            }
        })
    }

    /// Wait until this rank's `area` may be written: its last publication's readers all
    /// released it, or none that has not will ever do so ([`Node::reclaim`]).
    ///
    /// A rank that left the current call with an error ([`Node::failed_peer`]) ends the
    /// wait with [`CollError::Abandoned`]: a reader of this area may be that rank, which
    /// will never release it, while the others wait for this rank's next publication.
    /// The area stays as it is, to be taken back in a later call.
    fn wait_writable(&self, area: usize) -> Result<(), CollError> {
        let (mine, p) = (self.slots[self.me()], self.fabric.coll_publisher());
        if mine.writable(area, p.asked(area)) {
            return Ok(());
        }
        let mut polls = 0u32;
        let mut failed = None;
        self.wait(|| {
            let asked = p.asked(area);
            if mine.writable(area, asked) {
                return true;
            }
            polls = polls.wrapping_add(1);
            if !polls.is_multiple_of(LOOK_EVERY) {
                return false;
            }
            match self.look_at_area(area, asked) {
                AreaLook::Free => true,
                AreaLook::Busy => false,
                AreaLook::Failed(r) => {
                    failed = Some(r);
                    true
                }
            }
        })?;
        match failed {
            Some(r) => Err(CollError::Abandoned { peer: r as u32 }),
            None => Ok(()),
        }
    }

    /// A slow wait's look at this rank's `area`, which is not writable yet (`asked` reads
    /// asked of it): free after all ([`Node::reclaim`]), still busy, or waited for in
    /// vain because rank `r` failed the call ([`Node::failed_peer`]).
    fn look_at_area(&self, area: usize, asked: u64) -> AreaLook {
        if self.reclaim(area, asked) {
            return AreaLook::Free;
        }
        match self.failed_peer() {
            // As in `reclaim`: the failed rank may have released this area before it
            // failed the call.
            Some(_) if self.slots[self.me()].writable(area, asked) => AreaLook::Free,
            Some(r) => AreaLook::Failed(r),
            None => AreaLook::Busy,
        }
    }

    /// Take `area` back if its last publication is one that no rank that has not released
    /// it will ever read: each other rank of its communicator has finished that call, or
    /// is in it with another signature (it named another root, or called another
    /// collective) and so never takes this publication. True when the area is free: taken
    /// back, or found released after all. A
    /// publication of the current call taken back makes the call fail
    /// ([`CollError::Unread`]); one of an earlier call (which this rank finished, as the
    /// root of a broadcast nobody else thought it was the root of) is logged.
    fn reclaim(&self, area: usize, asked: u64) -> bool {
        let p = self.fabric.coll_publisher();
        let Some(o) = p.owner(area) else {
            return false;
        };
        let gone = o.others.iter().all(|&(slot, i)| {
            let word = slot.call(usize::from(i));
            callword::progress(word, o.context, o.seq, o.signature).gone()
        });
        if !gone {
            return false;
        }
        // A reader releases before it says it finished (both with release ordering), so
        // one that released and finished between the caller's check and the look above
        // shows up here: then the area was read, and is simply free.
        let mine = self.slots[self.me()];
        if mine.writable(area, asked) {
            return true;
        }
        mine.reclaim(area, asked);
        if (o.context, o.seq) == (self.context, self.call.get().0) {
            self.unread.set(true);
        } else if self.warned.replace(Some((o.context, o.seq))) != Some((o.context, o.seq)) {
            // Once per call, not once per area.
            tracing::warn!(
                "collective call {} on context {:#x}: the other ranks finished it without \
                 reading this rank's publication (they passed another root, or called another \
                 collective); its slot area is taken back",
                o.seq,
                o.context
            );
        }
        true
    }

    /// Wait for rank `r`'s chunk `chunk`; the area of its slot that holds it.
    fn await_chunk(&self, tag: u32, r: usize, chunk: usize) -> Result<usize, CollError> {
        let s = self.slots[r];
        let t = self.token(tag, chunk);
        let f = &self.fabric;
        let first = f.coll_hint(self.locals[r]);
        // Most often the publication is already there, or is in the hinted area.
        if let Some(h) = s.ready(t, first) {
            f.set_coll_hint(self.locals[r], h);
            self.check_signature(r, h)?;
            return Ok(h);
        }
        let mut area = None;
        let mut polls = 0u32;
        let mut abandoned = false;
        self.wait(|| {
            area = s.ready(t, first);
            if area.is_some() {
                return true;
            }
            polls = polls.wrapping_add(1);
            if !polls.is_multiple_of(LOOK_EVERY) {
                return false;
            }
            if self.abandoned_by(r) {
                // It may have published just before it moved on: look once more.
                area = s.ready(t, first);
                abandoned = area.is_none();
                return true;
            }
            false
        })?;
        if abandoned {
            return Err(CollError::Abandoned { peer: r as u32 });
        }
        let h = area.expect("the wait ended because the token is there");
        f.set_coll_hint(self.locals[r], h);
        self.check_signature(r, h)?;
        Ok(h)
    }

    /// Is rank `r`'s publication in area `h` one of this call (the same signature)? If
    /// not, it is not this rank's to read or release: the ranks disagree about the root or
    /// the collective.
    fn check_signature(&self, r: usize, h: usize) -> Result<(), CollError> {
        if self.slots[r].published_shape(h) & SIG_MASK == self.sig_bits() {
            Ok(())
        } else {
            Err(CollError::Abandoned { peer: r as u32 })
        }
    }

    /// [`Node::await_chunk`], then start fetching the chunk's `len` bytes (see
    /// `CollSlot::prefetch_data`); for chunks read from another rank's slot.
    fn await_data(&self, tag: u32, r: usize, chunk: usize, len: usize) -> Result<usize, CollError> {
        let h = self.await_chunk(tag, r, chunk)?;
        if len > INLINE_BYTES && r != self.me {
            self.slots[r].prefetch_data(h, len);
        }
        Ok(h)
    }

    /// Release area `h` of rank `r`'s slot, published for `readers` readers.
    fn release(&self, r: usize, h: usize, readers: usize) {
        if readers == 1 {
            self.slots[r].release_sole(h);
        } else {
            self.slots[r].release(h);
        }
    }

    /// Run `op` (which [`Node::accepts`]) as the call with collective tag `tag`.
    ///
    /// Around the call this rank says in its call word which call it is in and with which
    /// signature, then that it finished it, or failed it (`callword`): a rank that waits
    /// for another that disagrees about the call, has left it, or failed it, then fails
    /// instead of waiting.
    pub(crate) fn run(&self, tag: i32, op: CollOp) -> Result<(), CollError> {
        let (sig, root) = (signature(&op), root_of(&op));
        self.in_call(tag as u32, sig, root, |tag| self.run_op(tag, op))
    }

    /// Say, as the call with collective tag `tag`, that this rank runs `op` (a reduction
    /// it does not [`Node::accepts`]) as a point-to-point schedule instead; `Ok` when
    /// every rank says the same, and the caller then runs the schedule.
    ///
    /// The ranks decide alike in a correct program, but not in one whose ranks pass
    /// different sizes or datatypes: then some would fold through the slots and the others
    /// wait in the schedule for messages that never come. So this is a barrier through
    /// the slots ([`Node::token_barrier`]) under a signature of its own ([`kind::SCHEDULED`]
    /// and the root): a rank that
    /// folds finds this one in its call with another signature and fails the call
    /// ([`CollError::Abandoned`]), and this one finds the same of it, instead of waiting.
    pub(crate) fn hand_to_schedule(&self, tag: i32, op: &CollOp) -> Result<(), CollError> {
        debug_assert!(!self.accepts(op), "only for what the slots do not take");
        let root = root_of(op);
        let sig = callword::signature(kind::SCHEDULED, root);
        self.in_call(tag as u32, sig, root, |tag| self.token_barrier(tag))
    }

    /// Run `body` as the call `tag` with signature `sig` (and `root`, checked first).
    fn in_call(
        &self,
        tag: u32,
        sig: u32,
        root: Option<u32>,
        body: impl FnOnce(u32) -> Result<(), CollError>,
    ) -> Result<(), CollError> {
        let n = self.n();
        let (mine, word) = (self.slots[self.me], usize::from(self.words[self.me]));
        self.call.set((tag, sig));
        self.unread.set(false);
        mine.set_call(
            word,
            callword::encode(self.context, tag, sig, Stage::Entered),
        );
        let r = match root {
            Some(root) if root as usize >= n => Err(CollError::InvalidRoot {
                root,
                size: n as u32,
            }),
            _ => body(tag),
        };
        let r = match r {
            Ok(()) if self.unread.get() => Err(CollError::Unread),
            r => r,
        };
        // A rank that left the call with parts of it undone (it gave up waiting for a
        // rank that will not publish, so it may not have read what others published for
        // it; or it refused a root outside the communicator and took no part) says so in
        // its failure word, for the publishers that may be waiting for its reads. A rank
        // that found a disagreement did its whole part first (`Node::exchange`, the
        // fold's drain), and says nothing there: its peers may still complete.
        let undone = matches!(
            r,
            Err(CollError::Abandoned { .. } | CollError::InvalidRoot { .. })
        );
        if undone {
            mine.set_failure(word, callword::failure(self.context, tag));
        }
        let stage = if r.is_ok() {
            Stage::Finished
        } else {
            Stage::Failed
        };
        mine.set_call(word, callword::encode(self.context, tag, sig, stage));
        // The readers of the area this rank publishes in next have most likely released
        // it by now (they took part in this call): bring its read count in early.
        self.slots[self.me].prefetch_reads(self.fabric.coll_publisher().next().0);
        r
    }

    fn run_op(&self, tag: u32, op: CollOp) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        if let (Some(a), Some(b)) = self.buffers(&op) {
            let (a0, b0) = (a.as_ptr() as usize, b.as_ptr() as usize);
            if !a.is_empty() && !b.is_empty() && a0 < b0 + b.len() && b0 < a0 + a.len() {
                return Err(match fold_operands(&op) {
                    Some((reducer, operands)) => {
                        self.refuse(tag, reducer, operands, CollError::Aliased)
                    }
                    None => CollError::Aliased,
                });
            }
        }
        match op {
            CollOp::Barrier => self.barrier(),
            // No bytes to move: every rank returns at once, as in Open MPI. A rank that
            // expects bytes from a root that passed none finds the root finished the call
            // and fails it; a root that published for ranks that passed none takes the
            // area back later (`Node::reclaim`).
            CollOp::Bcast { buf, .. } if buf.is_empty() => Ok(()),
            // Every reader takes whatever the root published (`Node::read_one`).
            CollOp::Bcast { root, buf } if root as usize != me => {
                // SAFETY: the buffer is ours alone (RawBuf contract).
                let dst =
                    unsafe { std::slice::from_raw_parts_mut(buf.as_ptr() as *mut u8, buf.len()) };
                self.read_one(tag, root as usize, dst, n - 1)?
                    .map_or(Ok(()), Err)
            }
            CollOp::Bcast { buf, .. } if buf.len() <= bcast_max() => {
                self.publish(tag, 0, buf_bytes(buf), n - 1).map(drop)
            }
            CollOp::Bcast { buf, .. } => self.bcast_large(tag, buf),
            CollOp::Reduce {
                root,
                send,
                recv,
                op,
            } => self.reduce(tag, root as usize, send, recv, &*op),
            CollOp::Allreduce { send, recv, op } => {
                let input = send.unwrap_or(recv);
                if input.len() != recv.len() {
                    let e = CollError::SizeMismatch {
                        what: "allreduce receive buffer",
                        expected: input.len(),
                        got: recv.len(),
                    };
                    return Err(self.refuse(tag, &*op, fold::Operands::All, e));
                }
                self.allreduce(tag, input, recv, &*op)
            }
            CollOp::Allgather { send, recv, block }
                if recv.len() == n * block && self.direct && block >= direct_min() =>
            {
                self.allgather_chosen(tag, send, recv, block)
            }
            CollOp::Allgather { send, recv, block }
                if recv.len() == n * block && block <= exchange_max() =>
            {
                self.allgather(tag, send, recv, block, false)
            }
            CollOp::Allgather { send, recv, block } => {
                self.allgather_blocks(tag, 0, send, recv, Layout::Equal(block))
            }
            CollOp::Allgatherv {
                send,
                recv,
                counts,
                displs,
            } => self.allgather_blocks(tag, 0, send, recv, Layout::Var(&counts, &displs)),
            CollOp::Gather {
                root,
                send,
                recv,
                block,
            } => self.gather(tag, root, send, recv, Layout::Equal(block)),
            CollOp::Gatherv {
                root,
                send,
                recv,
                counts,
                displs,
            } => self.gather(tag, root, send, recv, Layout::Var(&counts, &displs)),
            CollOp::Scatter {
                root,
                send,
                recv,
                block,
            } => self.scatter(tag, root, send, recv, Layout::Equal(block)),
            CollOp::Scatterv {
                root,
                send,
                counts,
                displs,
                recv,
            } => self.scatter(tag, root, send, recv, Layout::Var(&counts, &displs)),
            CollOp::Alltoall { send, recv, block } => {
                let l = Layout::Equal(block);
                self.alltoall(tag, send.map(|s| (s, l)), recv, l)
            }
            CollOp::Alltoallv {
                send,
                scounts,
                sdispls,
                recv,
                rcounts,
                rdispls,
            } => self.alltoall(
                tag,
                send.map(|s| (s, Layout::Var(&scounts, &sdispls))),
                recv,
                Layout::Var(&rcounts, &rdispls),
            ),
            CollOp::ReduceScatter {
                send,
                recv,
                counts,
                op,
            } => self.reduce_scatter(tag, send, recv, &counts, &*op),
            CollOp::Scan { send, recv, op } => self.scan(tag, send, recv, &*op, false),
            CollOp::Exscan { send, recv, op } => self.scan(tag, send, recv, &*op, true),
        }
    }

    /// The send and receive buffers this rank uses in `op` (which must not overlap).
    fn buffers(&self, op: &CollOp) -> (Option<RawBuf>, Option<RawBuf>) {
        let at = |root: &u32| *root as usize == self.me();
        match op {
            CollOp::Barrier | CollOp::Bcast { .. } => (None, None),
            CollOp::Reduce {
                root, send, recv, ..
            }
            | CollOp::Gather {
                root, send, recv, ..
            }
            | CollOp::Gatherv {
                root, send, recv, ..
            } => (*send, recv.filter(|_| at(root))),
            CollOp::Scatter {
                root, send, recv, ..
            }
            | CollOp::Scatterv {
                root, send, recv, ..
            } => (send.filter(|_| at(root)), *recv),
            CollOp::Allreduce { send, recv, .. }
            | CollOp::Allgather { send, recv, .. }
            | CollOp::Allgatherv { send, recv, .. }
            | CollOp::Alltoall { send, recv, .. }
            | CollOp::Alltoallv { send, recv, .. }
            | CollOp::ReduceScatter { send, recv, .. }
            | CollOp::Scan { send, recv, .. }
            | CollOp::Exscan { send, recv, .. } => (*send, Some(*recv)),
        }
    }

    /// Reduce to `root`: every rank's operand (`send`, or in place the root's `recv`) is
    /// folded into the root's `recv`.
    fn reduce(
        &self,
        tag: u32,
        root: usize,
        send: Option<RawBuf>,
        recv: Option<RawBuf>,
        op: &dyn Reducer,
    ) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        let operands = fold::Operands::Root(root);
        let checks = || {
            let recv = if me == root {
                Some(recv.ok_or(CollError::MissingBuffer("the root needs a receive buffer"))?)
            } else {
                None
            };
            let input = match (send, recv) {
                (Some(s), _) => s,
                (None, Some(r)) => r,
                (None, None) => {
                    return Err(CollError::MissingBuffer(
                        "MPI_IN_PLACE is allowed only at the root",
                    ))
                }
            };
            if let Some(r) = recv {
                if r.len() != input.len() {
                    return Err(CollError::SizeMismatch {
                        what: "reduce receive buffer",
                        expected: input.len(),
                        got: r.len(),
                    });
                }
            }
            let elem = fold::elements("Reduce", input.len(), op)?;
            Ok((input, recv, elem))
        };
        let (input, recv, elem) = self.checked(tag, op, operands, checks())?;
        let len = input.len();
        let shape = fold::shape(len, elem, &[]);
        if len <= exchange_max() {
            // In place (the root's operand is its result) when the input is `recv`.
            let send = recv
                .is_none_or(|r| r.as_ptr() != input.as_ptr())
                .then(|| buf_bytes(input));
            return self.fold_whole(tag, send, recv.map(buf_mut), op, shape, Some(root));
        }
        // Only the root folds (the others' shares are empty).
        let share = |j| fold::Share {
            range: if j == root { 0..len } else { 0..0 },
            ranks: operands.of(j, n),
            at: 0,
        };
        if me != root && self.direct && len >= REDUCE_DIRECT_MIN {
            // As for large broadcasts (`choice`): publish the operand chunk by chunk, or
            // only where it is for the root to read, whichever has lately been faster;
            // the root folds either.
            let way = self.reduce_way.pick(len);
            let start = std::time::Instant::now();
            match way {
                choice::Way::Direct => {
                    let word = shape | fold::LAST;
                    let d = self.publish_direct(tag, input.as_ptr(), len, 1, word)?;
                    self.finish_direct(d)?;
                }
                choice::Way::Stream => {
                    self.fold(tag, 0, input, None, op, (shape, operands), share)?;
                    self.wait_last_released()?;
                }
            }
            self.reduce_way.record(len, way, start.elapsed());
            return Ok(());
        }
        if me == root && self.direct && len >= REDUCE_DIRECT_MIN {
            if let Some(done) = self.reduce_from_addresses(tag, input, recv, op, shape)? {
                return done;
            }
        }
        self.fold(tag, 0, input, recv, op, (shape, operands), share)
    }

    /// Allreduce of `input` into `recv` (same length). Up to [`EXCHANGE_MAX`] (or when
    /// the ranks cannot read each other's memory) every rank folds every operand; above,
    /// each rank folds one segment of the result (a reduce-scatter) and the ranks then
    /// gather the segments, so each rank reads about `2 * len` bytes whatever the rank
    /// count instead of `(n - 1) * len`.
    fn allreduce(
        &self,
        tag: u32,
        input: RawBuf,
        recv: RawBuf,
        op: &dyn Reducer,
    ) -> Result<(), CollError> {
        let (n, len) = (self.n(), input.len());
        let all = fold::Operands::All;
        let elem = self.checked(tag, op, all, fold::elements("Allreduce", len, op))?;
        let shape = fold::shape(len, elem, &[]);
        if len <= exchange_max() {
            // (`Node::run_op` refused buffers that overlap but for in place.)
            let send = (input.as_ptr() != recv.as_ptr()).then(|| buf_bytes(input));
            return self.fold_whole(tag, send, Some(buf_mut(recv)), op, shape, None);
        }
        let segs = super::plan::split(len, elem, n as u32);
        self.fold(tag, 0, input, Some(recv), op, (shape, all), |j| {
            fold::Share {
                range: segs[j].0..segs[j].0 + segs[j].1,
                ranks: 0..n,
                at: segs[j].0,
            }
        })?;
        let (displs, counts): (Vec<usize>, Vec<usize>) = segs.into_iter().unzip();
        let first = len.div_ceil(fold::chunk_bytes(elem));
        self.allgather_blocks(tag, first, None, recv, Layout::Var(&counts, &displs))
    }

    /// Reduce_scatter(_block): rank `j` folds bytes `counts[0] + .. + counts[j-1]` on of
    /// every operand into the start of its `recv`.
    fn reduce_scatter(
        &self,
        tag: u32,
        send: Option<RawBuf>,
        recv: RawBuf,
        counts: &[usize],
        op: &dyn Reducer,
    ) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        let checks = || {
            per_rank("Reduce_scatter counts", counts, n as u32)?;
            for &c in counts {
                fold::elements("Reduce_scatter count", c, op)?;
            }
            let total: usize = counts.iter().sum();
            Ok(match send {
                Some(s) => {
                    exact("Reduce_scatter send buffer", &s, total)?;
                    at_least("Reduce_scatter receive buffer", &recv, counts[me])?;
                    s
                }
                None => {
                    at_least("Reduce_scatter receive buffer (in place)", &recv, total)?;
                    // SAFETY: `recv` holds at least `total` bytes (just checked).
                    unsafe { RawBuf::new(recv.as_ptr() as *mut u8, total) }
                }
            })
        };
        let input = self.checked(tag, op, fold::Operands::All, checks())?;
        // Even with no bytes at all the ranks take part: another rank may disagree.
        let shape = fold::shape(input.len(), op.elem_size().max(1), counts);
        let starts: Vec<usize> = counts
            .iter()
            .scan(0, |acc, &c| {
                let s = *acc;
                *acc += c;
                Some(s)
            })
            .collect();
        let all = fold::Operands::All;
        self.fold(tag, 0, input, Some(recv), op, (shape, all), |j| {
            fold::Share {
                range: starts[j]..starts[j] + counts[j],
                ranks: 0..n,
                at: 0,
            }
        })
    }

    /// Scan (`exclusive` false: rank `j` folds ranks `0..=j`) or Exscan (ranks `0..j`;
    /// rank 0's `recv` is left as it is).
    fn scan(
        &self,
        tag: u32,
        send: Option<RawBuf>,
        recv: RawBuf,
        op: &dyn Reducer,
        exclusive: bool,
    ) -> Result<(), CollError> {
        let name = if exclusive { "Exscan" } else { "Scan" };
        let operands = fold::Operands::Prefix {
            inclusive: !exclusive,
        };
        let checks = || {
            let elem = fold::elements(name, recv.len(), op)?;
            if let Some(s) = &send {
                let what = if exclusive {
                    "Exscan send buffer"
                } else {
                    "Scan send buffer"
                };
                exact(what, s, recv.len())?;
            }
            Ok(elem)
        };
        let elem = self.checked(tag, op, operands, checks())?;
        let (n, len) = (self.n(), recv.len());
        let input = send.unwrap_or(recv);
        let shape = fold::shape(len, elem, &[]);
        self.fold(tag, 0, input, Some(recv), op, (shape, operands), |j| {
            fold::Share {
                range: 0..len,
                ranks: operands.of(j, n),
                at: 0,
            }
        })
    }

    /// `MPI_Barrier`: every rank's call word says it entered this call ([`Node::in_call`]
    /// wrote this rank's), so a rank leaves once every other rank's word shows it in the
    /// call with the same signature, or past it. Nothing is published or released: one
    /// read of each other rank's word, where a barrier of tokens ([`Node::token_barrier`])
    /// also takes a miss on its own area's read count and another on each release
    /// (2 ranks, benches/c/coll_bench.c, slowest rank's median, 2026-12-03: 0.18-0.29 us
    /// against 0.36-0.43 with tokens; Open MPI 0.38-0.44 in the same runs).
    ///
    /// A rank past the call (finished it, or in a later one) may have been in another
    /// collective there that did not need this rank (an erroneous program: a root whose
    /// broadcast nobody else called); it is taken as having entered, as the ranks that
    /// guess right in any disagreement may complete. One in the call with another
    /// signature, or that failed it, fails the barrier here ([`CollError::Abandoned`]).
    fn barrier(&self) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        let (mut next, mut odd) = (0, None);
        self.wait(|| {
            while next < n {
                if next != me {
                    match self.progress_of(next) {
                        Progress::In | Progress::Done => {}
                        Progress::Before => return false,
                        Progress::Elsewhere | Progress::Failed => {
                            odd = Some(next);
                            return true;
                        }
                    }
                }
                next += 1;
            }
            true
        })?;
        odd.map_or(Ok(()), |r| Err(CollError::Abandoned { peer: r as u32 }))
    }

    /// A barrier of tokens: every rank publishes an empty token and waits for the
    /// others'. Unlike [`Node::barrier`] it completes only with ranks that took part in
    /// this very call: a rank past it without having published its token here fails it
    /// (`Node::await_chunk`), which [`Node::hand_to_schedule`] needs (a rank past the call
    /// may have finished a fold that did not wait for this one).
    fn token_barrier(&self, tag: u32) -> Result<(), CollError> {
        let n = self.n();
        self.publish(tag, 0, &[], n - 1)?;
        for r in (0..n).filter(|&r| r != self.me()) {
            let h = self.await_chunk(tag, r, 0)?;
            self.release(r, h, n - 1);
        }
        Ok(())
    }

    /// Read rank `r`'s publication of chunk 0 of call `tag` (made for `readers` readers)
    /// into `dst`, which it must fill exactly, and release it, whatever its kind: the data
    /// itself, the first chunk of a stream (read on through [`Node::exchange`]), or where
    /// the data is in `r`'s memory (copied from there, see [`direct`]). As
    /// [`Node::exchange`]: `Err` ends the call, `Ok(Some(e))` is a disagreement or a failed
    /// copy, reported once this rank has done its part. The kinds let ranks that passed
    /// different sizes (and so took different paths) still read what the publisher counts
    /// on them for, so that nobody is left waiting.
    fn read_one(
        &self,
        tag: u32,
        r: usize,
        dst: &mut [u8],
        readers: usize,
    ) -> Result<Option<CollError>, CollError> {
        let h = self.await_chunk(tag, r, 0)?;
        let s = self.slots[r];
        let got = s.published_len(h);
        let res = match s.published_kind(h) {
            Kind::Stream => {
                let mut inc = [exposure::Incoming::new(r, dst, readers == 1)];
                return self.exchange(tag, 0, None, &mut inc);
            }
            Kind::Data if got == dst.len() => {
                if got > INLINE_BYTES {
                    s.prefetch_data(h, got);
                }
                // SAFETY: rank r published chunk 0 and this rank has not released it.
                copy(dst, unsafe { s.data(h, got) });
                Ok(())
            }
            // SAFETY: rank r published chunk 0 in `h` and this rank has not released it.
            Kind::Address => match unsafe { direct::descriptor(s, h) } {
                (addr, Some(len)) if len == dst.len() => self.read_peer(r, addr, dst),
                (_, len) => Err(CollError::Truncated {
                    peer: r as u32,
                    expected: dst.len(),
                    got: len.unwrap_or(0),
                }),
            },
            Kind::Data => Err(CollError::Truncated {
                peer: r as u32,
                expected: dst.len(),
                got,
            }),
        };
        self.release(r, h, readers);
        Ok(res.err())
    }

    /// The start of this rank's allgather block, checked: the send buffer, or in place its
    /// block of the receive buffer (which holds `n * block` bytes).
    fn own_block(
        &self,
        send: Option<RawBuf>,
        recv: RawBuf,
        block: usize,
    ) -> Result<*const u8, CollError> {
        debug_assert_eq!(
            recv.len(),
            self.n() * block,
            "Node::accepts checked the size"
        );
        match send {
            Some(s) if s.len() != block => Err(CollError::SizeMismatch {
                what: "allgather send buffer",
                expected: block,
                got: s.len(),
            }),
            Some(s) => Ok(s.as_ptr()),
            None => Ok(recv.as_ptr().wrapping_add(self.me() * block)),
        }
    }

    /// Copy this rank's block from the send buffer into its place in the receive buffer
    /// (nothing to do in place).
    fn place_own_block(&self, send: Option<RawBuf>, recv: RawBuf, block: usize) {
        if let Some(s) = send {
            let at = (recv.as_ptr() as *mut u8).wrapping_add(self.me() * block);
            // SAFETY: block `me` of the receive buffer is ours alone and does not overlap
            // the send buffer (MPI forbids it); both hold `block` bytes (`own_block`).
            unsafe {
                copy_local(
                    std::slice::from_raw_parts_mut(at, block),
                    std::slice::from_raw_parts(s.as_ptr(), block),
                )
            };
        }
    }

    /// Every rank publishes its block; every rank copies the others' blocks into place.
    /// `direct`: each rank publishes only where its block is, the others copy it from its
    /// memory ([`direct`]), and it returns once they have.
    /// Allgather of blocks from [`DIRECT_MIN`] on, when the ranks can read each other's
    /// memory: each rank copies the others' blocks straight from their buffers, or the
    /// blocks go through the slots (one publication up to [`EXCHANGE_MAX`], streams
    /// above), whichever rank 0 has lately timed faster ([`choice`]; on one machine of
    /// this kind the kernel copy was 2.6x faster at 16 KiB, on another the slots were
    /// 2.8x faster). Only rank 0 chooses: the others first look at how it published its
    /// block (each publication says its kind) and do the same, since a stream through
    /// the slots cannot take a block published by address.
    fn allgather_chosen(
        &self,
        tag: u32,
        send: Option<RawBuf>,
        recv: RawBuf,
        block: usize,
    ) -> Result<(), CollError> {
        let run = |direct: bool| {
            if direct {
                self.allgather(tag, send, recv, block, true)
            } else if block <= exchange_max() {
                self.allgather(tag, send, recv, block, false)
            } else {
                self.allgather_blocks(tag, 0, send, recv, Layout::Equal(block))
            }
        };
        if self.me() != 0 {
            let h = self.await_chunk(tag, 0, 0)?;
            return run(self.slots[0].published_kind(h) == Kind::Address);
        }
        let way = self.allgather_way.pick(block);
        let start = std::time::Instant::now();
        let r = run(way == choice::Way::Direct);
        if r.is_ok() {
            self.allgather_way.record(block, way, start.elapsed());
        }
        r
    }

    fn allgather(
        &self,
        tag: u32,
        send: Option<RawBuf>,
        recv: RawBuf,
        block: usize,
        direct: bool,
    ) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        let mine = self.own_block(send, recv, block)?;
        // Even with empty blocks the ranks take part: another rank may disagree.
        let base = recv.as_ptr() as *mut u8;
        let published = if direct {
            Some(self.publish_direct(tag, mine, block, n - 1, 0)?)
        } else {
            // SAFETY: `own_block` points at `block` valid bytes (RawBuf contract).
            let data = unsafe { std::slice::from_raw_parts(mine, block) };
            self.publish(tag, 0, data, n - 1)?;
            None
        };
        self.place_own_block(send, recv, block);
        let mut failed = None;
        for r in (0..n).filter(|&r| r != me) {
            // SAFETY: block r of the receive buffer is ours alone (RawBuf contract).
            let dst = unsafe { std::slice::from_raw_parts_mut(base.add(r * block), block) };
            if let Some(e) = self.read_one(tag, r, dst, n - 1)? {
                failed.get_or_insert(e);
            }
        }
        if let Some(d) = published {
            self.finish_direct(d)?;
        }
        failed.map_or(Ok(()), Err)
    }
}

/// The bytes of a buffer the call only reads.
fn buf_bytes<'a>(b: RawBuf) -> &'a [u8] {
    if b.is_empty() {
        return &[];
    }
    // SAFETY: the buffer is valid for its length until the call returns (RawBuf contract),
    // and this rank only reads it.
    unsafe { std::slice::from_raw_parts(b.as_ptr(), b.len()) }
}

/// The bytes of a buffer the call writes (the caller's alone until the call returns).
fn buf_mut<'a>(b: RawBuf) -> &'a mut [u8] {
    if b.is_empty() {
        return &mut [];
    }
    // SAFETY: the buffer is valid for its length until the call returns and nobody else
    // touches it meanwhile (RawBuf contract).
    unsafe { std::slice::from_raw_parts_mut(b.as_ptr() as *mut u8, b.len()) }
}

/// The reducer of `op` and whose operands each rank folds, when `op` is a reduction.
fn fold_operands(op: &CollOp) -> Option<(&dyn Reducer, fold::Operands)> {
    match op {
        CollOp::Reduce { root, op, .. } => Some((&**op, fold::Operands::Root(*root as usize))),
        CollOp::Allreduce { op, .. } | CollOp::ReduceScatter { op, .. } => {
            Some((&**op, fold::Operands::All))
        }
        CollOp::Scan { op, .. } => Some((&**op, fold::Operands::Prefix { inclusive: true })),
        CollOp::Exscan { op, .. } => Some((&**op, fold::Operands::Prefix { inclusive: false })),
        _ => None,
    }
}
