//! Communicators: a group of ranks, its own matching contexts, and the collective
//! operations over it.
//!
//! Every communicator has a [`Group`] (its members, in rank order) and two context ids: one
//! for point-to-point messages and one for the traffic of its collectives, so neither ever
//! matches the other's messages nor those of another communicator. Ranks in the API are
//! always ranks of the communicator; they are translated to world ranks for the transport.
//!
//! New communicators ([`Communicator::dup`], [`Communicator::split`],
//! [`Communicator::split_shared`], [`Communicator::create`]) are made collectively: every
//! member of the parent calls the constructor, in the same order as its other
//! collectives.
//!
//! # Collectives
//!
//! ```no_run
//! use zerorank::operation::SystemOperation;
//!
//! let universe = zerorank::initialize().unwrap();
//! let world = universe.world();
//! let (rank, size) = (world.rank(), world.size());
//! world.barrier().unwrap();
//!
//! // Broadcast from rank 0.
//! let mut data = if rank == 0 { [1u32, 2, 3] } else { [0; 3] };
//! world.process_at_rank(0).broadcast_into(&mut data[..]).unwrap();
//!
//! // Sum over all ranks, on every rank.
//! let mut sum = 0i64;
//! world.all_reduce_into(&(rank as i64), &mut sum, SystemOperation::sum()).unwrap();
//! assert_eq!(sum, (size as i64) * (size as i64 - 1) / 2);
//!
//! // Gather one value per rank at the root.
//! let root = world.process_at_rank(0);
//! if rank == 0 {
//!     let mut all = vec![0i32; size as usize];
//!     root.gather_into_root(&rank, &mut all[..]).unwrap();
//! } else {
//!     root.gather_into(&rank).unwrap();
//! }
//!
//! // Split into even and odd ranks; the new communicator has its own ranks.
//! let half = world.split(Some(rank % 2), rank).unwrap().unwrap();
//! assert_eq!(half.rank(), rank / 2);
//!
//! // A non-blocking barrier overlapping other work.
//! zerorank::request::scope(|scope| {
//!     let req = world.immediate_barrier(scope).unwrap();
//!     req.wait().unwrap();
//! });
//! ```

use crate::coll::{self, CollCtx, CollOp, CollRequest, RawBuf, Reducer};
use crate::datatype::{Buffer, BufferMut, Equivalence};
use crate::error::{Error, Result};
use crate::group::{Group, GroupComparison};
use crate::operation::{Elements, ElementsMut, Operation};
use crate::point_to_point::{AnyProcess, Process, Source, Status};
use crate::request::{CollectiveRequest, Scope};
use std::cell::{Cell, OnceCell};
use std::rc::Rc;
use zerorank_transport::fabric::{Fabric, SendMode};
use zerorank_transport::matching::Pattern;

/// A rank number within a communicator.
pub type Rank = i32;
/// A message tag.
pub type Tag = i32;

/// The bit that turns a communicator's context into its collective context.
pub const COLLECTIVE_BIT: u32 = 1 << 31;
/// Context of the world communicator.
pub const WORLD_CONTEXT: u32 = 0;
/// Context of the self communicator.
pub const SELF_CONTEXT: u32 = 1;

/// How two communicators compare (`MPI_Comm_compare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommComparison {
    /// The same communicator (`MPI_IDENT`).
    Ident,
    /// Same members in the same order, different contexts (`MPI_CONGRUENT`).
    Congruent,
    /// Same members in another order (`MPI_SIMILAR`).
    Similar,
    /// Different members (`MPI_UNEQUAL`).
    Unequal,
}

/// What every communicator of a process shares.
pub(crate) struct ProcessState {
    /// The smallest context id no communicator of this process uses.
    next_context: Cell<u32>,
    /// The collective sequence of the self communicator.
    self_seq: Rc<Cell<u32>>,
    /// Which call words of this rank's collective slot communicators hold
    /// (`zerorank_transport::shm::callword`); the world's is 0.
    call_words: std::cell::RefCell<Vec<bool>>,
}

impl ProcessState {
    /// A free call word of this rank's slot, for a communicator being made; `None` when
    /// all are taken (that communicator then runs its collectives as schedules).
    fn lease_call_word(self: &Rc<Self>) -> Option<CallWordLease> {
        let mut used = self.call_words.borrow_mut();
        let index = used.iter().position(|&u| !u)?;
        used[index] = true;
        Some(CallWordLease {
            process: self.clone(),
            index: u16::try_from(index).expect("CALL_WORDS fits 16 bits"),
        })
    }
}

/// A call word of this rank's collective slot, held by one communicator while it lives
/// (and given back when it is freed: the other ranks then see another communicator's
/// words there, which tells them this rank is done with it).
pub(crate) struct CallWordLease {
    process: Rc<ProcessState>,
    index: u16,
}

impl Drop for CallWordLease {
    fn drop(&mut self) {
        self.process.call_words.borrow_mut()[usize::from(self.index)] = false;
    }
}

/// The exchange word of a rank that has no call word to give.
const NO_CALL_WORD: u32 = u32::MAX;

pub(crate) struct Inner {
    pub(crate) fabric: Rc<Fabric>,
    process: Rc<ProcessState>,
    pub(crate) group: Group,
    /// This process's rank in `group`.
    pub(crate) rank: u32,
    /// Point-to-point context (below 2^31).
    pub(crate) context: u32,
    /// Tag of the next collective call; shared by clones.
    seq: Rc<Cell<u32>>,
    /// The on-node collective slots of the members, if all are on this node (built at the
    /// first collective that could use them).
    node: OnceCell<Option<coll::node::Node>>,
    /// See [`Communicator::set_finish_on_disagreement`].
    finish_on_disagreement: Cell<bool>,
    /// Every member's call-word index for this communicator, if each had one to give.
    call_words: Option<Rc<[u16]>>,
    /// This rank's call word for it.
    _call_word: Option<CallWordLease>,
}

/// A set of ranks that exchange messages in their own contexts. Cheap to clone; clones are
/// the same communicator (they share the sequence of collective calls).
#[derive(Clone)]
pub struct Communicator {
    pub(crate) inner: Rc<Inner>,
}

impl std::fmt::Debug for Communicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Communicator")
            .field("context", &self.inner.context)
            .field("rank", &self.inner.rank)
            .field("group", &self.inner.group)
            .finish()
    }
}

/// Words each member contributes to a constructor's exchange.
const WORDS: usize = 5;
/// The member's next free context.
const NEXT: usize = 3;
/// The member's call word for the new communicator, or [`NO_CALL_WORD`].
const CALL_WORD: usize = 4;

/// The call-word indices of the members `members` (ranks here) from an exchange; `None`
/// if one had none to give.
fn call_words(all: &[[u32; WORDS]], members: impl Iterator<Item = usize>) -> Option<Rc<[u16]>> {
    members
        .map(|r| u16::try_from(all[r][CALL_WORD]).ok())
        .collect::<Option<Vec<u16>>>()
        .map(Rc::from)
}

impl Communicator {
    /// The world communicator of a fresh process.
    pub(crate) fn world(fabric: Rc<Fabric>) -> Self {
        let (me, size) = (fabric.rank(), fabric.size());
        let mut call_words = vec![false; zerorank_transport::shm::callword::CALL_WORDS];
        call_words[0] = true;
        let process = Rc::new(ProcessState {
            next_context: Cell::new(2),
            self_seq: Rc::new(Cell::new(0)),
            call_words: std::cell::RefCell::new(call_words),
        });
        Communicator {
            inner: Rc::new(Inner {
                fabric,
                process,
                group: Group::world(size, me),
                rank: me,
                context: WORLD_CONTEXT,
                seq: Rc::new(Cell::new(0)),
                node: OnceCell::new(),
                finish_on_disagreement: Cell::new(true),
                // Word 0 on every rank (taken for the world when the table was made).
                call_words: Some(vec![0u16; size as usize].into()),
                _call_word: None,
            }),
        }
    }

    fn derived(
        &self,
        group: Group,
        rank: u32,
        context: u32,
        seq: Rc<Cell<u32>>,
        call_words: Option<Rc<[u16]>>,
        call_word: Option<CallWordLease>,
    ) -> Self {
        Communicator {
            inner: Rc::new(Inner {
                fabric: self.inner.fabric.clone(),
                process: self.inner.process.clone(),
                group,
                rank,
                context,
                seq,
                node: OnceCell::new(),
                finish_on_disagreement: Cell::new(self.inner.finish_on_disagreement.get()),
                call_words,
                _call_word: call_word,
            }),
        }
    }

    /// A call word of this rank's slot for a communicator being made, and the word that
    /// says which in the constructor's exchange.
    fn lease_call_word(&self) -> (Option<CallWordLease>, u32) {
        let lease = self.inner.process.lease_call_word();
        if let Some(l) = &lease {
            // The word still says where this rank was in the last communicator that had
            // it, and a word of another context reads as "freed after its last call"
            // (`callword::progress`): a peer that looked at it for the new communicator
            // before this rank's first call there would take this rank for gone. Clear it
            // (no call yet: "before") before the constructor's exchange tells anyone the
            // index; the exchange orders the store before their loads.
            let fabric = &self.inner.fabric;
            if let Some(slot) = fabric
                .local_index(fabric.rank())
                .and_then(|me| fabric.coll_slot(me))
            {
                slot.set_call(usize::from(l.index), 0);
            }
        }
        let word = lease.as_ref().map_or(NO_CALL_WORD, |l| u32::from(l.index));
        (lease, word)
    }

    /// The communicator of this process alone (`MPI_COMM_SELF`): the same one (context 1,
    /// one shared collective sequence) whichever communicator it is asked of.
    pub fn self_comm(&self) -> Communicator {
        let me = self.inner.fabric.rank();
        self.derived(
            Group::new_unchecked(Rc::from([me]), me),
            0,
            SELF_CONTEXT,
            self.inner.process.self_seq.clone(),
            None,
            None,
        )
    }

    /// This rank's number.
    pub fn rank(&self) -> Rank {
        self.inner.rank as Rank
    }

    /// Number of ranks.
    pub fn size(&self) -> Rank {
        self.inner.group.size()
    }

    /// The members (`MPI_Comm_group`).
    pub fn group(&self) -> Group {
        self.inner.group.clone()
    }

    /// The world rank of rank `rank`, if there is such a rank.
    pub fn world_rank(&self, rank: Rank) -> Option<u32> {
        self.inner.group.world_rank(rank)
    }

    /// The rank in this communicator of the process of world rank `world`, if a member.
    pub fn rank_of_world(&self, world: u32) -> Option<Rank> {
        self.inner.group.rank_of_world(world)
    }

    /// The point-to-point context id (below 2^31; world is 0, self 1).
    pub fn context(&self) -> u32 {
        self.inner.context
    }

    /// The context id of this communicator's collective traffic (`context | 1 << 31`).
    pub fn collective_context(&self) -> u32 {
        self.inner.context | COLLECTIVE_BIT
    }

    /// The process at `rank`, to send to or receive from.
    ///
    /// # Panics
    /// If `rank` is not in the communicator (use [`Communicator::checked_process_at_rank`]
    /// to get an error instead).
    pub fn process_at_rank(&self, rank: Rank) -> Process<'_> {
        self.checked_process_at_rank(rank)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The process at `rank`, or an error if there is none.
    pub fn checked_process_at_rank(&self, rank: Rank) -> Result<Process<'_>> {
        match self.world_rank(rank) {
            Some(w) => Ok(Process::new(self, rank as u32, w)),
            None => Err(Error::InvalidRank {
                rank,
                size: self.size(),
            }),
        }
    }

    /// A receive source that matches any rank of this communicator.
    pub fn any_process(&self) -> AnyProcess<'_> {
        AnyProcess::new(self)
    }

    /// This rank as a process.
    pub fn this_process(&self) -> Process<'_> {
        Process::new(self, self.inner.rank, self.inner.fabric.rank())
    }

    /// Send `send` to `dest` and receive from `source` into `recv`, without deadlock
    /// whatever order the peers call it in.
    pub fn sendrecv_into<S, R>(
        &self,
        send: &S,
        dest: Rank,
        send_tag: Tag,
        recv: &mut R,
        source: Rank,
        recv_tag: Tag,
    ) -> Result<Status>
    where
        S: Buffer + ?Sized,
        R: BufferMut + ?Sized,
    {
        let dest = self.checked_process_at_rank(dest)?;
        let source = self.checked_process_at_rank(source)?;
        crate::request::scope(|scope| {
            let r = source.immediate_receive_into_with_tag(scope, recv, recv_tag)?;
            let s = dest.immediate_send_with_tag(scope, send, send_tag)?;
            let status = r.wait()?;
            s.wait()?;
            Ok(status)
        })
    }

    /// The transport below (statistics, job info).
    pub fn fabric(&self) -> &Fabric {
        &self.inner.fabric
    }

    /// The transport below, shared.
    pub fn fabric_rc(&self) -> &Rc<Fabric> {
        &self.inner.fabric
    }

    /// Compare with `other` (`MPI_Comm_compare`).
    pub fn compare(&self, other: &Communicator) -> CommComparison {
        let g = self.inner.group.compare(&other.inner.group);
        match g {
            GroupComparison::Ident if self.inner.context == other.inner.context => {
                CommComparison::Ident
            }
            GroupComparison::Ident => CommComparison::Congruent,
            GroupComparison::Similar => CommComparison::Similar,
            GroupComparison::Unequal => CommComparison::Unequal,
        }
    }

    /// The tag of the next collective call (each call on any clone takes the next one).
    fn next_tag(&self) -> Tag {
        let t = self.inner.seq.get();
        self.inner
            .seq
            .set(if t >= i32::MAX as u32 { 0 } else { t + 1 });
        t as Tag
    }

    /// What the collective engine needs for the next collective call on this
    /// communicator; takes the next tag of the collective sequence.
    pub fn coll_ctx(&self) -> CollCtx {
        CollCtx {
            fabric: self.inner.fabric.clone(),
            ranks: self.inner.group.world_ranks_rc(),
            rank: self.inner.rank,
            context: self.collective_context(),
            tag: self.next_tag(),
            finish_on_disagreement: self.inner.finish_on_disagreement.get(),
            agree: coll::agreement_enabled(),
        }
    }

    /// How a collective that runs a point-to-point schedule (ranks on several nodes) ends
    /// when a rank gets a message of another size than it expects (the ranks passed
    /// inconsistent counts):
    /// - `true` (the default): that rank runs the rest of its schedule, so the ranks it
    ///   forwards to are not left waiting, and then fails with the mismatch. For a caller
    ///   that goes on after an error (the Rust API, `MPI_ERRORS_RETURN`).
    /// - `false`: it fails at once. For a caller that ends the job on an error
    ///   (`MPI_ERRORS_ARE_FATAL`): if the ranks chose different algorithms (sizes on either
    ///   side of a threshold), running on could wait forever instead.
    pub fn set_finish_on_disagreement(&self, on: bool) {
        self.inner.finish_on_disagreement.set(on);
    }

    /// Run the collective `op` over this communicator and wait for it (byte level: the
    /// typed methods below and the C layer are built on it).
    ///
    /// A one-rank communicator copies, and one whose ranks are all on this node takes the
    /// shared-memory slots when the operation and size suit them; everything else runs a
    /// point-to-point schedule.
    pub fn collective(&self, op: CollOp) -> Result<()> {
        let op = match self.size() {
            1 => match coll::solo::run(op) {
                Ok(()) => {
                    self.next_tag();
                    return Ok(());
                }
                Err(op) => op,
            },
            _ => op,
        };
        if let Some(node) = self.node_view() {
            if coll::agreement_mode() == coll::AgreementMode::All && !matches!(op, CollOp::Barrier)
            {
                // (A call the slots do not take then agrees again in its schedule, where a
                // rank whose arguments fail the planner's checks can still refuse.)
                let d = coll::agreement_digest(&op);
                let (me, n) = (self.inner.rank, self.size() as usize);
                coll::agree_on_node(node, self.next_tag(), me, n, Some(d))?;
            }
            if node.accepts(&op) {
                return node.run(self.next_tag(), op).map_err(Error::from);
            }
            node.hand_to_schedule(self.next_tag(), &op)?;
        }
        coll::run(self.coll_ctx(), op).map_err(Error::from)
    }

    /// [`Communicator::collective`] of an Allreduce of `send` (`None`: in place, the
    /// operand is `recv`) into `recv` with `op`, without building it, when it is small.
    /// `None` when it is not (nothing done): run it with [`Communicator::collective`].
    ///
    /// The small calls are the fast entry of small collectives (the C layer's): on one
    /// node, every rank's data one publication of the shared-memory slots, run straight
    /// through them (a 16-byte `MPI_Allreduce` at 2 ranks costs about 1,200 instructions
    /// a call this way besides the wait for the other ranks, about 2,000 through the
    /// general path). A rank on this path and a rank on the general one meet in the same
    /// call.
    pub fn all_reduce_small(
        &self,
        send: Option<&[u8]>,
        recv: &mut [u8],
        op: &dyn Reducer,
    ) -> Option<Result<()>> {
        self.small(|node, tag| node.allreduce_small(tag, send, recv, op))
    }

    /// A small Reduce to `root` of `send` (`None`: in place at the root, the operand is
    /// `recv`) into the root's `recv` (`None` on the other ranks), as
    /// [`Communicator::all_reduce_small`].
    pub fn reduce_small(
        &self,
        root: Rank,
        send: Option<&[u8]>,
        recv: Option<&mut [u8]>,
        op: &dyn Reducer,
    ) -> Option<Result<()>> {
        let root = u32::try_from(root).ok()?;
        self.small(|node, tag| node.reduce_small(tag, root, send, recv, op))
    }

    /// A small Bcast of `buf` from `root`, as [`Communicator::all_reduce_small`].
    pub fn broadcast_small(&self, root: Rank, buf: &mut [u8]) -> Option<Result<()>> {
        let root = u32::try_from(root).ok()?;
        self.small(|node, tag| node.bcast_small(tag, root, buf))
    }

    /// A small Allgather of `send` (`None`: in place, this rank's block of `recv`) into
    /// `recv` (every rank's block in rank order), as [`Communicator::all_reduce_small`].
    pub fn all_gather_small(&self, send: Option<&[u8]>, recv: &mut [u8]) -> Option<Result<()>> {
        self.small(|node, tag| node.allgather_small(tag, send, recv))
    }

    /// Run the small call `f` on this communicator's on-node view with the next
    /// collective tag, taking the tag only when `f` ran it.
    fn small(
        &self,
        f: impl FnOnce(&coll::node::Node, Tag) -> Option<std::result::Result<(), coll::CollError>>,
    ) -> Option<Result<()>> {
        if coll::agreement_mode() == coll::AgreementMode::All {
            return None;
        }
        let node = self.node_view()?;
        let r = f(node, self.inner.seq.get() as Tag)?;
        self.next_tag();
        Some(r.map_err(Error::from))
    }

    /// Take part in a blocking collective call `r` whose arguments failed this rank's
    /// checks, so that the other ranks do not wait for it; the caller then returns its own
    /// error. On one node, with nothing to send or receive through the shared-memory
    /// slots (see `collective::Refused`), or with `ZR_COLL_AGREE=all` by refusing in the
    /// on-node agreement; across nodes, by refusing in the ranks' agreement on the call
    /// (`collective::refuse`), which ends it on every rank. False (nothing done) when that
    /// cannot end the call on every rank: with the agreement turned off
    /// (`ZR_COLL_AGREE=0`) when the call runs a schedule.
    pub fn refuse_collective(&self, r: coll::Refused) -> bool {
        let n = self.size() as u32;
        if n == 1 {
            return false;
        }
        match self.node_view() {
            Some(node)
                if coll::agreement_mode() == coll::AgreementMode::All
                    && r != coll::Refused::Barrier =>
            {
                let me = self.inner.rank;
                let _ = coll::agree_on_node(node, self.next_tag(), me, n as usize, None);
                true
            }
            Some(node) => {
                // A root outside the communicator too: the call word says so (`Node::run`).
                let op = r.op(n as usize, self.inner.rank);
                if node.accepts(&op) {
                    // The others' disagreement is the expected outcome.
                    let _ = node.run(self.next_tag(), op);
                    true
                } else {
                    coll::refuse(&self.coll_ctx())
                }
            }
            None => coll::refuse(&self.coll_ctx()),
        }
    }

    /// Take part in a non-blocking collective call whose arguments failed this rank's
    /// checks (it runs a schedule on every rank, which starts with the agreement): refuse
    /// in the agreement, which ends the call on every rank, and return at once. False when
    /// the agreement is turned off (`ZR_COLL_AGREE=0`).
    pub fn refuse_started_collective(&self) -> bool {
        self.size() > 1 && coll::refuse(&self.coll_ctx())
    }

    /// `r`; when it is an error (this rank's arguments failed its checks), after taking
    /// part in the blocking collective `refused` with nothing to send or receive
    /// ([`Communicator::refuse_collective`]): the other ranks may be waiting for it.
    fn checked<T>(&self, refused: coll::Refused, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.refuse_collective(refused);
        }
        r
    }

    fn node_view(&self) -> Option<&coll::node::Node> {
        let i = &*self.inner;
        i.node
            .get_or_init(|| {
                coll::node::Node::new(
                    &i.fabric,
                    &i.group.world_ranks_rc(),
                    i.rank,
                    self.collective_context(),
                    i.call_words.clone()?,
                )
            })
            .as_ref()
    }

    /// Start the collective `op`; the request completes it.
    pub fn start_collective(&self, op: CollOp) -> Result<CollRequest> {
        coll::start(self.coll_ctx(), op).map_err(Error::from)
    }

    // ---- Making communicators -------------------------------------------------------

    /// Every member's `WORDS` words, in rank order: a binomial gather to rank 0, then a
    /// binomial broadcast, on the collective context with the next collective tag.
    /// Independent of the collective engine.
    fn exchange(&self, mine: [u32; WORDS]) -> Result<Vec<[u32; WORDS]>> {
        let n = self.size() as usize;
        let me = self.inner.rank as usize;
        let tag = self.next_tag();
        let ctx = self.collective_context();
        let f = &self.inner.fabric;
        let world = |r: usize| self.inner.group.world_ranks()[r];
        let mut all = vec![[0u32; WORDS]; n];
        all[me] = mine;
        let recv = |from: usize, into: &mut [[u32; WORDS]]| -> Result<()> {
            let pat = Pattern {
                comm: ctx,
                src: Some(world(from)),
                tag: Some(tag),
            };
            let buf = crate::datatype::bytes_of_mut(into);
            let want = buf.len();
            let st = f.recv(pat, buf)?;
            if st.len != want || st.sent != want {
                return Err(Error::Count {
                    expected: want,
                    got: st.sent,
                    element: WORDS * 4,
                });
            }
            Ok(())
        };
        let send = |to: usize, from: &[[u32; WORDS]]| -> Result<()> {
            let bytes = crate::datatype::bytes_of(from);
            f.send(world(to), ctx, tag, bytes, SendMode::Standard)?;
            Ok(())
        };
        // Gather: rank r holds the entries of ranks r..r+held.
        let mut mask = 1;
        while mask < n {
            if me & mask != 0 {
                let held = mask.min(n - me);
                send(me - mask, &all[me..me + held])?;
                break;
            }
            if me + mask < n {
                let end = (me + 2 * mask).min(n);
                recv(me + mask, &mut all[me + mask..end])?;
            }
            mask <<= 1;
        }
        // Broadcast of the whole table from rank 0.
        let mut mask = 1;
        while mask < n {
            if me & mask != 0 {
                recv(me - mask, &mut all)?;
                break;
            }
            mask <<= 1;
        }
        mask >>= 1;
        while mask > 0 {
            if me + mask < n {
                send(me + mask, &all)?;
            }
            mask >>= 1;
        }
        Ok(all)
    }

    /// The new context agreed on from an exchange: the largest next-free context of the
    /// members; every member's next free context becomes the one after it.
    fn agree_context(&self, all: &[[u32; WORDS]]) -> Result<u32> {
        let max = all.iter().map(|e| e[NEXT]).max().unwrap_or(0);
        if max >= COLLECTIVE_BIT {
            return Err(Error::ContextsExhausted);
        }
        let p = &self.inner.process;
        p.next_context.set(p.next_context.get().max(max + 1));
        Ok(max)
    }

    fn next_free(&self) -> u32 {
        self.inner.process.next_context.get()
    }

    /// A new communicator with the same members and order, and its own contexts
    /// (`MPI_Comm_dup`). Collective.
    pub fn dup(&self) -> Result<Communicator> {
        let (lease, word) = self.lease_call_word();
        let all = self.exchange([0, 0, 0, self.next_free(), word])?;
        let context = self.agree_context(&all)?;
        Ok(self.derived(
            self.inner.group.clone(),
            self.inner.rank,
            context,
            Rc::new(Cell::new(0)),
            call_words(&all, 0..all.len()),
            lease,
        ))
    }

    /// Split into disjoint communicators, one per `color` (`MPI_Comm_split`); ranks in
    /// each are ordered by `key`, then by their rank here. A rank passing `None`
    /// (`MPI_UNDEFINED`) gets `None`. Colours must be non-negative. Collective.
    pub fn split(&self, color: Option<i32>, key: i32) -> Result<Option<Communicator>> {
        let bad = matches!(color, Some(c) if c < 0);
        let (has, c) = match color {
            Some(c) if c >= 0 => (1, c as u32),
            _ => (0, 0),
        };
        // Exchange even with a bad colour, so that no other rank waits forever.
        let (lease, word) = self.lease_call_word();
        let all = self.exchange([has, c, key as u32, self.next_free(), word])?;
        let context = self.agree_context(&all)?;
        if bad {
            return Err(Error::InvalidColor(color.unwrap_or(0)));
        }
        if has == 0 {
            return Ok(None);
        }
        let mut members: Vec<(i32, usize)> = all
            .iter()
            .enumerate()
            .filter(|(_, e)| e[0] == 1 && e[1] == c)
            .map(|(r, e)| (e[2] as i32, r))
            .collect();
        members.sort_unstable();
        let me = self.inner.rank as usize;
        let new_rank = members
            .iter()
            .position(|&(_, r)| r == me)
            .expect("this rank is in its colour") as u32;
        let ranks: Vec<u32> = members
            .iter()
            .map(|&(_, r)| self.inner.group.world_ranks()[r])
            .collect();
        let group = Group::new_unchecked(ranks.into(), self.inner.fabric.rank());
        let words = call_words(&all, members.iter().map(|&(_, r)| r));
        Ok(Some(self.derived(
            group,
            new_rank,
            context,
            Rc::new(Cell::new(0)),
            words,
            lease,
        )))
    }

    /// Split into one communicator per node, ordered by `key` then rank
    /// (`MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)`). Collective.
    pub fn split_shared(&self, key: i32) -> Result<Communicator> {
        let node = self.inner.fabric.info().node_id as i32;
        Ok(self
            .split(Some(node), key)?
            .expect("every rank has a colour"))
    }

    /// A communicator of the members of `group`, in its order (`MPI_Comm_create`), for the
    /// ranks in `group`; `None` for the others. Every rank of this communicator calls it;
    /// the groups passed must be the same, or disjoint (each member of a group passing
    /// that group), and made of members of this communicator. Collective.
    pub fn create(&self, group: &Group) -> Result<Option<Communicator>> {
        let stranger = group
            .world_ranks()
            .iter()
            .copied()
            .find(|&w| !self.inner.group.contains_world(w));
        let me_world = self.inner.fabric.rank();
        let member = group.contains_world(me_world);
        let flags = u32::from(member) | (u32::from(stranger.is_some()) << 1);
        let fp = group.fingerprint();
        let (lease, word) = self.lease_call_word();
        let all = self.exchange([fp, flags, 0, self.next_free(), word])?;
        let context = self.agree_context(&all)?;
        if let Some(w) = stranger {
            return Err(Error::NotSubgroup { world_rank: w });
        }
        if all.iter().any(|e| e[1] & 2 != 0) {
            // Another rank's group has a stranger: every rank fails alike.
            return Err(Error::Mismatch {
                what: "groups (one is not a subgroup of the communicator)",
            });
        }
        if !member {
            return Ok(None);
        }
        // Every member of my group must have passed the same group.
        for &w in group.world_ranks() {
            let r = self.inner.group.rank_of_world(w).expect("checked") as usize;
            if all[r][0] != fp || all[r][1] & 1 == 0 {
                return Err(Error::Mismatch { what: "groups" });
            }
        }
        let rank = group.rank().expect("member") as u32;
        let words = call_words(
            &all,
            group
                .world_ranks()
                .iter()
                .map(|&w| self.inner.group.rank_of_world(w).expect("checked") as usize),
        );
        let group = Group::new_unchecked(group.world_ranks_rc(), me_world);
        Ok(Some(self.derived(
            group,
            rank,
            context,
            Rc::new(Cell::new(0)),
            words,
            lease,
        )))
    }

    // ---- Typed collectives ----------------------------------------------------------

    /// Wait until every rank has called it (`MPI_Barrier`).
    pub fn barrier(&self) -> Result<()> {
        self.collective(CollOp::Barrier)
    }

    /// `recv = send[0] op send[1] op ... op send[n-1]` (element-wise, rank order) on
    /// every rank (`MPI_Allreduce`). The result is bitwise identical on every rank.
    pub fn all_reduce_into<S, R, O>(&self, send: &S, recv: &mut R, op: O) -> Result<()>
    where
        S: Elements + ?Sized,
        R: ElementsMut<Item = S::Item> + ?Sized,
        O: Operation<S::Item>,
    {
        self.reduce_elementwise(
            coll::Refused::Allreduce,
            "all_reduce_into: recv",
            send.elements(),
            recv.elements_mut(),
            op,
            |send, recv, op| CollOp::Allreduce { send, recv, op },
        )
    }

    /// An element-wise reduction of `send` into `recv` of the same length, as the
    /// collective `kind` builds it (allreduce, scan, exscan).
    #[allow(clippy::too_many_arguments)]
    fn reduce_elementwise<T: Equivalence, O: Operation<T>>(
        &self,
        refused: coll::Refused,
        what: &'static str,
        s: &[T],
        r: &mut [T],
        op: O,
        kind: fn(Option<RawBuf>, RawBuf, Rc<dyn Reducer>) -> CollOp,
    ) -> Result<()> {
        let op = self.checked(refused, same_len(what, s, r).and_then(|()| op.reducer()))?;
        self.collective(kind(Some(raw(s)), raw_mut(r), op))
    }

    /// [`Communicator::all_reduce_into`] with the operand in `buf`, replaced by the result
    /// (`MPI_IN_PLACE`).
    pub fn all_reduce_in_place<B, O>(&self, buf: &mut B, op: O) -> Result<()>
    where
        B: ElementsMut + ?Sized,
        O: Operation<B::Item>,
    {
        let op = self.checked(coll::Refused::Allreduce, op.reducer())?;
        self.collective(CollOp::Allreduce {
            send: None,
            recv: raw_mut(buf.elements_mut()),
            op,
        })
    }

    /// Every rank's `send` (all of the same length), in rank order, into `recv` on every
    /// rank (`MPI_Allgather`); `recv` holds `size` times `send`.
    pub fn all_gather_into<S, R>(&self, send: &S, recv: &mut R) -> Result<()>
    where
        S: Buffer + ?Sized,
        R: BufferMut + ?Sized,
    {
        let (s, r) = (send.as_bytes(), recv.as_bytes_mut());
        let block = s.len();
        let checks = expect_len(
            "all_gather_into: recv",
            r.len(),
            block * self.size() as usize,
        );
        self.checked(coll::Refused::Allgather, checks)?;
        self.collective(CollOp::Allgather {
            send: Some(raw(s)),
            recv: raw_mut(r),
            block,
        })
    }

    /// Every rank's `send` of `counts[rank]` elements into `recv` at element
    /// `displs[rank]`, on every rank (`MPI_Allgatherv`).
    pub fn all_gather_varcount_into<S, R>(
        &self,
        send: &S,
        recv: &mut R,
        counts: &[usize],
        displs: &[usize],
    ) -> Result<()>
    where
        S: Elements + ?Sized,
        R: ElementsMut<Item = S::Item> + ?Sized,
    {
        let (s, r) = (send.elements(), recv.elements_mut());
        let checks = || {
            let (counts, displs) = self.layout("all_gather_varcount_into", r, counts, displs)?;
            expect_len(
                "all_gather_varcount_into: send",
                std::mem::size_of_val(s),
                counts[self.inner.rank as usize],
            )?;
            Ok((counts, displs))
        };
        let (counts, displs) = self.checked(coll::Refused::Allgatherv, checks())?;
        self.collective(CollOp::Allgatherv {
            send: Some(raw(s)),
            recv: raw_mut(r),
            counts,
            displs,
        })
    }

    /// Block `j` of `send` goes to rank `j`, into block `i` of its `recv` for the sender
    /// `i` (`MPI_Alltoall`); both buffers hold `size` equal blocks.
    pub fn all_to_all_into<S, R>(&self, send: &S, recv: &mut R) -> Result<()>
    where
        S: Buffer + ?Sized,
        R: BufferMut + ?Sized,
    {
        let (s, r) = (send.as_bytes(), recv.as_bytes_mut());
        let n = self.size() as usize;
        let checks = || {
            expect_len("all_to_all_into: recv", r.len(), s.len())?;
            if !s.len().is_multiple_of(n) {
                return Err(Error::Layout {
                    what: "all_to_all_into: send",
                    why: format!("{} bytes do not split into {n} equal blocks", s.len()),
                });
            }
            Ok(())
        };
        self.checked(coll::Refused::Alltoall, checks())?;
        self.collective(CollOp::Alltoall {
            send: Some(raw(s)),
            recv: raw_mut(r),
            block: s.len() / n,
        })
    }

    /// `scounts[j]` elements of `send` from `sdispls[j]` go to rank `j`, into its `recv`
    /// at `rdispls[i]` (`rcounts[i]` elements) for the sender `i` (`MPI_Alltoallv`).
    pub fn all_to_all_varcount_into<S, R>(
        &self,
        send: &S,
        scounts: &[usize],
        sdispls: &[usize],
        recv: &mut R,
        rcounts: &[usize],
        rdispls: &[usize],
    ) -> Result<()>
    where
        S: Elements + ?Sized,
        R: ElementsMut<Item = S::Item> + ?Sized,
    {
        let (s, r) = (send.elements(), recv.elements_mut());
        let checks = || {
            let sl = self.layout("all_to_all_varcount_into: send", s, scounts, sdispls)?;
            let rl = self.layout("all_to_all_varcount_into: recv", r, rcounts, rdispls)?;
            Ok((sl, rl))
        };
        let ((scounts, sdispls), (rcounts, rdispls)) =
            self.checked(coll::Refused::Alltoallv, checks())?;
        self.collective(CollOp::Alltoallv {
            send: Some(raw(s)),
            scounts: scounts.into(),
            sdispls: sdispls.into(),
            recv: raw_mut(r),
            rcounts: rcounts.into(),
            rdispls: rdispls.into(),
        })
    }

    /// Inclusive prefix reduction: rank `i` gets `send[0] op ... op send[i]` (`MPI_Scan`).
    pub fn scan_into<S, R, O>(&self, send: &S, recv: &mut R, op: O) -> Result<()>
    where
        S: Elements + ?Sized,
        R: ElementsMut<Item = S::Item> + ?Sized,
        O: Operation<S::Item>,
    {
        self.reduce_elementwise(
            coll::Refused::Scan,
            "scan_into: recv",
            send.elements(),
            recv.elements_mut(),
            op,
            |send, recv, op| CollOp::Scan { send, recv, op },
        )
    }

    /// Exclusive prefix reduction: rank `i > 0` gets `send[0] op ... op send[i-1]`
    /// (`MPI_Exscan`); rank 0's `recv` is left as it was.
    pub fn exscan_into<S, R, O>(&self, send: &S, recv: &mut R, op: O) -> Result<()>
    where
        S: Elements + ?Sized,
        R: ElementsMut<Item = S::Item> + ?Sized,
        O: Operation<S::Item>,
    {
        self.reduce_elementwise(
            coll::Refused::Exscan,
            "exscan_into: recv",
            send.elements(),
            recv.elements_mut(),
            op,
            |send, recv, op| CollOp::Exscan { send, recv, op },
        )
    }

    /// Reduce `send` (`size` blocks of `recv.len()` elements) over all ranks and leave
    /// block `i` of the result on rank `i` (`MPI_Reduce_scatter_block`).
    pub fn reduce_scatter_block_into<S, R, O>(&self, send: &S, recv: &mut R, op: O) -> Result<()>
    where
        S: Elements + ?Sized,
        R: ElementsMut<Item = S::Item> + ?Sized,
        O: Operation<S::Item>,
    {
        let (s, r) = (send.elements(), recv.elements_mut());
        let n = self.size() as usize;
        let checks = expect_len(
            "reduce_scatter_block_into: send",
            std::mem::size_of_val(s),
            std::mem::size_of_val(r) * n,
        )
        .and_then(|()| op.reducer());
        let op = self.checked(coll::Refused::ReduceScatter, checks)?;
        let block = std::mem::size_of_val(r);
        self.collective(CollOp::ReduceScatter {
            send: Some(raw(s)),
            recv: raw_mut(r),
            counts: vec![block; n],
            op,
        })
    }

    /// Reduce `send` over all ranks and leave `counts[i]` elements of the result (the
    /// `i`-th consecutive piece) on rank `i` (`MPI_Reduce_scatter`).
    pub fn reduce_scatter_into<S, R, O>(
        &self,
        send: &S,
        recv: &mut R,
        counts: &[usize],
        op: O,
    ) -> Result<()>
    where
        S: Elements + ?Sized,
        R: ElementsMut<Item = S::Item> + ?Sized,
        O: Operation<S::Item>,
    {
        let (s, r) = (send.elements(), recv.elements_mut());
        let n = self.size() as usize;
        let checks = || {
            if counts.len() != n {
                return Err(Error::Layout {
                    what: "reduce_scatter_into: counts",
                    why: format!("{} counts for {n} ranks", counts.len()),
                });
            }
            let total: usize = counts.iter().sum();
            expect_len("reduce_scatter_into: send", s.len(), total)?;
            expect_len(
                "reduce_scatter_into: recv",
                r.len(),
                counts[self.inner.rank as usize],
            )?;
            op.reducer()
        };
        let op = self.checked(coll::Refused::ReduceScatter, checks())?;
        let size = std::mem::size_of::<S::Item>();
        self.collective(CollOp::ReduceScatter {
            send: Some(raw(s)),
            recv: raw_mut(r),
            counts: counts.iter().map(|c| c * size).collect(),
            op,
        })
    }

    /// Start a barrier (`MPI_Ibarrier`).
    pub fn immediate_barrier<'a, 's>(
        &self,
        scope: &'s Scope<'a>,
    ) -> Result<CollectiveRequest<'a, 's>> {
        let req = self.start_collective(CollOp::Barrier)?;
        Ok(CollectiveRequest::new(req, scope))
    }

    /// Start an all-reduce (`MPI_Iallreduce`); the buffers are lent for the scope.
    pub fn immediate_all_reduce_into<'a, 's, S, R, O>(
        &self,
        scope: &'s Scope<'a>,
        send: &'a S,
        recv: &'a mut R,
        op: O,
    ) -> Result<CollectiveRequest<'a, 's>>
    where
        S: Elements + ?Sized,
        R: ElementsMut<Item = S::Item> + ?Sized,
        O: Operation<S::Item>,
    {
        let (s, r) = (send.elements(), recv.elements_mut());
        let checks = same_len("immediate_all_reduce_into: recv", s, r).and_then(|()| op.reducer());
        let op = checks.inspect_err(|_| {
            self.refuse_started_collective();
        })?;
        let req = self.start_collective(CollOp::Allreduce {
            send: Some(raw(s)),
            recv: raw_mut(r),
            op,
        })?;
        Ok(CollectiveRequest::new(req, scope))
    }

    /// Byte counts and displacements of a varcount layout over `buf`, checked.
    fn layout<T: Equivalence>(
        &self,
        what: &'static str,
        buf: &[T],
        counts: &[usize],
        displs: &[usize],
    ) -> Result<(Vec<usize>, Vec<usize>)> {
        let n = self.size() as usize;
        if counts.len() != n || displs.len() != n {
            return Err(Error::Layout {
                what,
                why: format!(
                    "{} counts and {} displacements for {n} ranks",
                    counts.len(),
                    displs.len()
                ),
            });
        }
        for (i, (&c, &d)) in counts.iter().zip(displs).enumerate() {
            if d.checked_add(c).is_none_or(|end| end > buf.len()) {
                return Err(Error::Layout {
                    what,
                    why: format!(
                        "block {i} ({c} elements at {d}) is outside the buffer of {} elements",
                        buf.len()
                    ),
                });
            }
        }
        let size = std::mem::size_of::<T>();
        Ok((
            counts.iter().map(|c| c * size).collect(),
            displs.iter().map(|d| d * size).collect(),
        ))
    }
}

// ---- Rooted collectives ---------------------------------------------------------------

impl Process<'_> {
    /// This process as the root of a collective.
    fn root(&self) -> u32 {
        self.rank() as u32
    }

    /// [`Communicator::checked`] on this process's communicator.
    fn checked<T>(&self, refused: coll::Refused, r: Result<T>) -> Result<T> {
        self.communicator_ref().checked(refused, r)
    }

    fn root_check(&self, what: &'static str, at_root: bool) -> Result<()> {
        let me = self.communicator_ref().rank();
        match (at_root, me == self.rank()) {
            (true, false) => Err(Error::NotRoot {
                what,
                root: self.rank(),
                rank: me,
            }),
            (false, true) => Err(Error::IsRoot {
                what,
                root: self.rank(),
            }),
            _ => Ok(()),
        }
    }

    /// Broadcast `buf` from this process, the root, to every rank (`MPI_Bcast`): the
    /// root's `buf` is sent, the others' receive it. Every rank passes a buffer of the
    /// same length.
    pub fn broadcast_into<B: BufferMut + ?Sized>(&self, buf: &mut B) -> Result<()> {
        self.communicator_ref().collective(CollOp::Bcast {
            root: self.rank() as u32,
            buf: raw_mut(buf.as_bytes_mut()),
        })
    }

    /// Start a broadcast from this process (`MPI_Ibcast`); `buf` is lent for the scope.
    pub fn immediate_broadcast_into<'a, 's, B: BufferMut + ?Sized>(
        &self,
        scope: &'s Scope<'a>,
        buf: &'a mut B,
    ) -> Result<CollectiveRequest<'a, 's>> {
        let req = self.communicator_ref().start_collective(CollOp::Bcast {
            root: self.rank() as u32,
            buf: raw_mut(buf.as_bytes_mut()),
        })?;
        Ok(CollectiveRequest::new(req, scope))
    }

    /// Contribute `send` to a reduction whose result goes to this process, the root
    /// (`MPI_Reduce` on a non-root rank). The root calls [`Process::reduce_into_root`].
    pub fn reduce_into<S, O>(&self, send: &S, op: O) -> Result<()>
    where
        S: Elements + ?Sized,
        O: Operation<S::Item>,
    {
        let checks = self
            .root_check("reduce_into", false)
            .and_then(|()| op.reducer());
        let op = self.checked(coll::Refused::Reduce { root: self.root() }, checks)?;
        self.communicator_ref().collective(CollOp::Reduce {
            root: self.rank() as u32,
            send: Some(raw(send.elements())),
            recv: None,
            op,
        })
    }

    /// At the root: `recv = send[0] op ... op send[n-1]` (`MPI_Reduce`).
    pub fn reduce_into_root<S, R, O>(&self, send: &S, recv: &mut R, op: O) -> Result<()>
    where
        S: Elements + ?Sized,
        R: ElementsMut<Item = S::Item> + ?Sized,
        O: Operation<S::Item>,
    {
        let (s, r) = (send.elements(), recv.elements_mut());
        let checks = self
            .root_check("reduce_into_root", true)
            .and_then(|()| same_len("reduce_into_root: recv", s, r))
            .and_then(|()| op.reducer());
        let op = self.checked(coll::Refused::Reduce { root: self.root() }, checks)?;
        self.communicator_ref().collective(CollOp::Reduce {
            root: self.rank() as u32,
            send: Some(raw(s)),
            recv: Some(raw_mut(r)),
            op,
        })
    }

    /// Send `send` to this process, the root, which gathers every rank's in rank order
    /// (`MPI_Gather` on a non-root rank).
    pub fn gather_into<S: Buffer + ?Sized>(&self, send: &S) -> Result<()> {
        let checks = self.root_check("gather_into", false);
        self.checked(coll::Refused::Gather { root: self.root() }, checks)?;
        let s = send.as_bytes();
        self.communicator_ref().collective(CollOp::Gather {
            root: self.rank() as u32,
            send: Some(raw(s)),
            recv: None,
            block: s.len(),
        })
    }

    /// At the root: every rank's `send`, in rank order, into `recv` (`size` times as long).
    pub fn gather_into_root<S, R>(&self, send: &S, recv: &mut R) -> Result<()>
    where
        S: Buffer + ?Sized,
        R: BufferMut + ?Sized,
    {
        let (s, r) = (send.as_bytes(), recv.as_bytes_mut());
        let n = self.communicator_ref().size() as usize;
        let checks = self
            .root_check("gather_into_root", true)
            .and_then(|()| expect_len("gather_into_root: recv", r.len(), s.len() * n));
        self.checked(coll::Refused::Gather { root: self.root() }, checks)?;
        self.communicator_ref().collective(CollOp::Gather {
            root: self.rank() as u32,
            send: Some(raw(s)),
            recv: Some(raw_mut(r)),
            block: s.len(),
        })
    }

    /// Send `send` to the root of a varcount gather (`MPI_Gatherv` on a non-root rank).
    pub fn gather_varcount_into<S: Elements + ?Sized>(&self, send: &S) -> Result<()> {
        let checks = self.root_check("gather_varcount_into", false);
        self.checked(coll::Refused::Gatherv { root: self.root() }, checks)?;
        let n = self.communicator_ref().size() as usize;
        let s = send.elements();
        self.communicator_ref().collective(CollOp::Gatherv {
            root: self.rank() as u32,
            send: Some(raw(s)),
            recv: None,
            counts: vec![std::mem::size_of_val(s); n],
            displs: vec![0; n],
        })
    }

    /// At the root: rank `i`'s `send` (`counts[i]` elements) into `recv` at element
    /// `displs[i]` (`MPI_Gatherv`).
    pub fn gather_varcount_into_root<S, R>(
        &self,
        send: &S,
        recv: &mut R,
        counts: &[usize],
        displs: &[usize],
    ) -> Result<()>
    where
        S: Elements + ?Sized,
        R: ElementsMut<Item = S::Item> + ?Sized,
    {
        let comm = self.communicator_ref();
        let (s, r) = (send.elements(), recv.elements_mut());
        let checks = || {
            self.root_check("gather_varcount_into_root", true)?;
            let (counts, displs) = comm.layout("gather_varcount_into_root", r, counts, displs)?;
            expect_len(
                "gather_varcount_into_root: send",
                std::mem::size_of_val(s),
                counts[self.rank() as usize],
            )?;
            Ok((counts, displs))
        };
        let (counts, displs) =
            self.checked(coll::Refused::Gatherv { root: self.root() }, checks())?;
        comm.collective(CollOp::Gatherv {
            root: self.rank() as u32,
            send: Some(raw(s)),
            recv: Some(raw_mut(r)),
            counts,
            displs,
        })
    }

    /// Receive this rank's block of a scatter from the root (`MPI_Scatter` on a non-root
    /// rank).
    pub fn scatter_into<R: BufferMut + ?Sized>(&self, recv: &mut R) -> Result<()> {
        let checks = self.root_check("scatter_into", false);
        self.checked(coll::Refused::Scatter { root: self.root() }, checks)?;
        let r = recv.as_bytes_mut();
        let block = r.len();
        self.communicator_ref().collective(CollOp::Scatter {
            root: self.rank() as u32,
            send: None,
            recv: Some(raw_mut(r)),
            block,
        })
    }

    /// At the root: block `i` of `send` (`size` equal blocks) to rank `i`; its own block
    /// into `recv` (`MPI_Scatter`).
    pub fn scatter_into_root<S, R>(&self, send: &S, recv: &mut R) -> Result<()>
    where
        S: Buffer + ?Sized,
        R: BufferMut + ?Sized,
    {
        let (s, r) = (send.as_bytes(), recv.as_bytes_mut());
        let n = self.communicator_ref().size() as usize;
        let checks = self
            .root_check("scatter_into_root", true)
            .and_then(|()| expect_len("scatter_into_root: send", s.len(), r.len() * n));
        self.checked(coll::Refused::Scatter { root: self.root() }, checks)?;
        let block = r.len();
        self.communicator_ref().collective(CollOp::Scatter {
            root: self.rank() as u32,
            send: Some(raw(s)),
            recv: Some(raw_mut(r)),
            block,
        })
    }

    /// Receive this rank's piece of a varcount scatter (`MPI_Scatterv` on a non-root
    /// rank).
    pub fn scatter_varcount_into<R: ElementsMut + ?Sized>(&self, recv: &mut R) -> Result<()> {
        let checks = self.root_check("scatter_varcount_into", false);
        self.checked(coll::Refused::Scatterv { root: self.root() }, checks)?;
        let n = self.communicator_ref().size() as usize;
        let r = recv.elements_mut();
        let bytes = std::mem::size_of_val(r);
        self.communicator_ref().collective(CollOp::Scatterv {
            root: self.rank() as u32,
            send: None,
            counts: vec![bytes; n],
            displs: vec![0; n],
            recv: Some(raw_mut(r)),
        })
    }

    /// At the root: `counts[i]` elements of `send` from element `displs[i]` to rank `i`
    /// (`MPI_Scatterv`).
    pub fn scatter_varcount_into_root<S, R>(
        &self,
        send: &S,
        counts: &[usize],
        displs: &[usize],
        recv: &mut R,
    ) -> Result<()>
    where
        S: Elements + ?Sized,
        R: ElementsMut<Item = S::Item> + ?Sized,
    {
        let comm = self.communicator_ref();
        let (s, r) = (send.elements(), recv.elements_mut());
        let checks = || {
            self.root_check("scatter_varcount_into_root", true)?;
            let (counts, displs) = comm.layout("scatter_varcount_into_root", s, counts, displs)?;
            expect_len(
                "scatter_varcount_into_root: recv",
                std::mem::size_of_val(r),
                counts[self.rank() as usize],
            )?;
            Ok((counts, displs))
        };
        let (counts, displs) =
            self.checked(coll::Refused::Scatterv { root: self.root() }, checks())?;
        comm.collective(CollOp::Scatterv {
            root: self.rank() as u32,
            send: Some(raw(s)),
            counts,
            displs,
            recv: Some(raw_mut(r)),
        })
    }
}

fn same_len<T>(what: &'static str, s: &[T], r: &[T]) -> Result<()> {
    expect_len(what, std::mem::size_of_val(r), std::mem::size_of_val(s))
}

fn expect_len(what: &'static str, got: usize, expected: usize) -> Result<()> {
    if got != expected {
        return Err(Error::BufferLength {
            what,
            expected,
            got,
        });
    }
    Ok(())
}

/// A read-only buffer for the engine (which never writes through a send buffer).
fn raw<T: Equivalence>(s: &[T]) -> RawBuf {
    let b = crate::datatype::bytes_of(s);
    // SAFETY: blocking collectives finish while `s` is borrowed; non-blocking ones borrow
    // it for the scope, which waits for them. The engine only reads send buffers.
    unsafe { RawBuf::new(b.as_ptr() as *mut u8, b.len()) }
}

/// A writable buffer for the engine.
fn raw_mut<T: Equivalence>(s: &mut [T]) -> RawBuf {
    let b = crate::datatype::bytes_of_mut(s);
    // SAFETY: as in `raw`; the borrow is exclusive.
    unsafe { RawBuf::new(b.as_mut_ptr(), b.len()) }
}
