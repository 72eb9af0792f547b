//! On-node collectives through shared memory: when every rank of a communicator is on
//! this node, `Barrier`, `Bcast`, `Reduce`, `Allreduce` and `Allgather` (up to the sizes
//! below) go through the node's
//! collective slots (`zerorank_transport::shm::collslot`) instead of point-to-point
//! messages. Each rank publishes its operand in its own slot; the others read it in
//! place. A reduction is computed by every rank that needs the result directly from the
//! published operands, so a message crosses between cores once, not `log n` times.
//!
//! # Determinism
//! Every rank that computes a reduction folds the operands in the same fixed order, from
//! the right: `a0 op (a1 op (... op a(n-1)))` (the [`Reducer`] contract: `reduce(input,
//! inout)` is `inout = input op inout`). That is rank order, which non-commutative ops
//! need, and it is the same expression on every rank and in every run, so all ranks get
//! bitwise identical results.
//!
//! # Chunks
//! Buffers larger than a slot go in chunks of at most [`DATA_BYTES`] (cut at whole
//! elements); each chunk is one publication with its own token.

use super::{CollError, CollOp, RawBuf, Reducer};
use std::rc::Rc;
use zerorank_transport::fabric::Fabric;
use zerorank_transport::shm::collslot::{token, CollSlot, DATA_BYTES};

/// Largest broadcast that takes the shared-memory path; larger ones are faster as a
/// pipelined point-to-point stream (sender and receiver copy at the same time).
pub const BCAST_MAX: usize = DATA_BYTES;

/// Largest `Reduce` operand, and largest `Allgather` block, that takes the shared-memory
/// path; [`ALLREDUCE_MAX`] for `Allreduce`. Measured at 2 ranks with a barrier before each
/// call (benches/coll.sh): up to 1 KiB the slots win everywhere; at 4 KiB a reduce or an
/// allgather is level or faster over the point-to-point schedules (reduce 1.0-2.8 against
/// 0.9-2.8 us, allgather 1.5 against 2.1 us), while an allreduce of 4-8 KiB is 2-4x faster
/// through the slots (8 KiB: 1.7-4.7 against 7-10 us); from 16 KiB the schedules win
/// (their large messages are pipelined, sender and receiver copying at once).
/// `ZR_NODE_REDUCE_MAX` (bytes) overrides both, for measurements.
const REDUCE_MAX: usize = 1 << 10;
/// See [`REDUCE_MAX`].
const ALLREDUCE_MAX: usize = 8 << 10;

static REDUCE_MAX_CELL: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();

/// The `ZR_NODE_REDUCE_MAX` override, if set (at most a slot).
fn reduce_max_override() -> Option<usize> {
    *REDUCE_MAX_CELL.get_or_init(|| {
        std::env::var("ZR_NODE_REDUCE_MAX")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map(|v| v.min(DATA_BYTES))
    })
}

fn reduce_max() -> usize {
    reduce_max_override().unwrap_or(REDUCE_MAX)
}

fn allreduce_max() -> usize {
    reduce_max_override().unwrap_or(ALLREDUCE_MAX)
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
}

impl Node {
    /// The on-node view of a communicator (`ranks`, this rank `me`, collective context
    /// `context`), if it has one: at least two ranks, all on this node.
    pub(crate) fn new(
        fabric: &Rc<Fabric>,
        ranks: &Rc<[u32]>,
        me: u32,
        context: u32,
    ) -> Option<Node> {
        let n = ranks.len();
        if n < 2 {
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
        Some(Node {
            fabric: fabric.clone(),
            ranks: ranks.clone(),
            me: me as usize,
            context,
            slots,
            locals,
            peers,
        })
    }

    /// Should `op` take this path? An operation it implements, within a slot's size.
    /// Arguments this path does not check itself go to the schedules, which report them.
    pub(crate) fn accepts(&self, op: &CollOp) -> bool {
        let n = self.n();
        let small = |b: Option<&RawBuf>| b.is_none_or(|b| b.len() <= reduce_max());
        match op {
            CollOp::Barrier => true,
            CollOp::Allreduce { recv, .. } => recv.len() <= allreduce_max(),
            CollOp::Reduce {
                root, send, recv, ..
            } => (*root as usize) < n && small(send.as_ref()) && small(recv.as_ref()),
            CollOp::Bcast { buf, root } => buf.len() <= BCAST_MAX && (*root as usize) < n,
            CollOp::Allgather { recv, block, .. } => {
                *block <= reduce_max() && Some(recv.len()) == block.checked_mul(n)
            }
            _ => false,
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
    /// `readers` ranks.
    fn publish(
        &self,
        tag: u32,
        chunk: usize,
        data: &[u8],
        readers: usize,
    ) -> Result<(), CollError> {
        assert!(data.len() <= DATA_BYTES, "a chunk fits in a slot");
        let mine = self.slots[self.me()];
        let p = self.fabric.coll_publisher();
        let (half, asked) = p.next();
        self.wait(|| mine.writable(half, asked))?;
        // SAFETY: this rank owns its slot, and every reader of this half's last
        // publication released it.
        unsafe { mine.write(half, data) };
        mine.publish(half, self.token(tag, chunk));
        p.published(half, readers as u64);
        Ok(())
    }

    /// Wait for rank `r`'s chunk `chunk`; the half of its slot that holds it.
    fn await_chunk(&self, tag: u32, r: usize, chunk: usize) -> Result<usize, CollError> {
        let s = self.slots[r];
        let t = self.token(tag, chunk);
        let f = &self.fabric;
        let first = f.coll_hint(self.locals[r]);
        let mut half = None;
        self.wait(|| {
            half = s.ready(t, first);
            half.is_some()
        })?;
        let h = half.expect("the wait ended because the token is there");
        f.set_coll_hint(self.locals[r], h);
        Ok(h)
    }

    /// Release half `h` of rank `r`'s slot, published for `readers` readers.
    fn release(&self, r: usize, h: usize, readers: usize) {
        if readers == 1 {
            self.slots[r].release_sole(h);
        } else {
            self.slots[r].release(h);
        }
    }

    /// Run `op` (which [`Node::accepts`]) as the call with collective tag `tag`.
    pub(crate) fn run(&self, tag: i32, op: CollOp) -> Result<(), CollError> {
        let r = self.run_op(tag as u32, op);
        // The readers of the half this rank publishes in next have most likely released
        // it by now (they took part in this call): bring its read count in early.
        self.slots[self.me].prefetch_reads(self.fabric.coll_publisher().next().0);
        r
    }

    fn run_op(&self, tag: u32, op: CollOp) -> Result<(), CollError> {
        match op {
            CollOp::Barrier => self.barrier(tag),
            CollOp::Bcast { root, buf } => self.bcast(tag, root as usize, buf),
            CollOp::Reduce {
                root,
                send,
                recv,
                op,
            } => {
                let root = root as usize;
                let at_root = self.me() == root;
                let recv = if at_root {
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
                self.reduce(tag, Some(root), input, recv, op)
            }
            CollOp::Allreduce { send, recv, op } => {
                let input = send.unwrap_or(recv);
                if input.len() != recv.len() {
                    return Err(CollError::SizeMismatch {
                        what: "allreduce receive buffer",
                        expected: input.len(),
                        got: recv.len(),
                    });
                }
                self.reduce(tag, None, input, Some(recv), op)
            }
            CollOp::Allgather { send, recv, block } => self.allgather(tag, send, recv, block),
            _ => unreachable!("Node::accepts only the operations above"),
        }
    }

    fn barrier(&self, tag: u32) -> Result<(), CollError> {
        let n = self.n();
        self.publish(tag, 0, &[], n - 1)?;
        for r in (0..n).filter(|&r| r != self.me()) {
            let h = self.await_chunk(tag, r, 0)?;
            self.release(r, h, n - 1);
        }
        Ok(())
    }

    fn bcast(&self, tag: u32, root: usize, buf: RawBuf) -> Result<(), CollError> {
        let n = self.n();
        assert!(buf.len() <= DATA_BYTES, "Node::accepts bounds broadcasts");
        if self.me() == root {
            // SAFETY: the caller's buffer is valid for its length (RawBuf contract).
            let data = unsafe { std::slice::from_raw_parts(buf.as_ptr(), buf.len()) };
            return self.publish(tag, 0, data, n - 1);
        }
        let h = self.await_chunk(tag, root, 0)?;
        let s = self.slots[root];
        // SAFETY: the root published chunk 0 and this rank has not released it; the
        // receive buffer is valid and ours alone (RawBuf contract).
        unsafe {
            let out = std::slice::from_raw_parts_mut(buf.as_ptr() as *mut u8, buf.len());
            out.copy_from_slice(s.data(h, buf.len()));
        }
        self.release(root, h, n - 1);
        Ok(())
    }

    /// Every rank publishes its block; every rank copies the others' blocks into place.
    fn allgather(
        &self,
        tag: u32,
        send: Option<RawBuf>,
        recv: RawBuf,
        block: usize,
    ) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        debug_assert_eq!(recv.len(), n * block, "Node::accepts checked the size");
        if let Some(s) = send {
            if s.len() != block {
                return Err(CollError::SizeMismatch {
                    what: "allgather send buffer",
                    expected: block,
                    got: s.len(),
                });
            }
        }
        if block == 0 {
            return Ok(());
        }
        let base = recv.as_ptr() as *mut u8;
        // SAFETY: the send buffer (or, in place, this rank's block of the receive buffer)
        // is valid for `block` bytes (RawBuf contract).
        let mine = unsafe {
            match send {
                Some(s) => std::slice::from_raw_parts(s.as_ptr(), block),
                None => std::slice::from_raw_parts(base.add(me * block), block),
            }
        };
        self.publish(tag, 0, mine, n - 1)?;
        if send.is_some() {
            // SAFETY: block `me` of the receive buffer is ours alone and does not overlap
            // the send buffer (MPI forbids it).
            unsafe { std::ptr::copy_nonoverlapping(mine.as_ptr(), base.add(me * block), block) };
        }
        for r in (0..n).filter(|&r| r != me) {
            let h = self.await_chunk(tag, r, 0)?;
            // SAFETY: rank r published its block and this rank has not released it; block
            // r of the receive buffer is ours alone.
            unsafe {
                let theirs = self.slots[r].data(h, block);
                std::ptr::copy_nonoverlapping(theirs.as_ptr(), base.add(r * block), block);
            }
            self.release(r, h, n - 1);
        }
        Ok(())
    }

    /// `Reduce` to `root` (`Some`) or `Allreduce` (`None`): every rank publishes `input`
    /// chunk by chunk; the ranks that need the result fold the published chunks into
    /// `out`.
    fn reduce(
        &self,
        tag: u32,
        root: Option<usize>,
        input: RawBuf,
        out: Option<RawBuf>,
        op: Rc<dyn Reducer>,
    ) -> Result<(), CollError> {
        let n = self.n();
        let me = self.me();
        let len = input.len();
        let elem = op.elem_size().max(1);
        if !len.is_multiple_of(elem) {
            return Err(CollError::NotMultiple {
                what: "reduction buffer",
                len,
                elem,
            });
        }
        if len == 0 {
            return Ok(());
        }
        let chunk = DATA_BYTES / elem * elem;
        let readers = if root.is_some() { 1 } else { n - 1 };
        let computes = root.is_none_or(|r| r == me);
        // MPI_IN_PLACE: the operand is the output buffer, which the fold overwrites, so
        // this rank folds its own operand from its published copy.
        let aliased = out.is_some_and(|o| o.as_ptr() == input.as_ptr());
        let mut off = 0;
        let mut k = 0;
        while off < len {
            let m = chunk.min(len - off);
            // SAFETY: the input is valid for `len` bytes (RawBuf contract); with
            // MPI_IN_PLACE it is the output buffer, which this rank writes only after it
            // published (copied) this chunk, and then reads only from that copy.
            let data = unsafe { std::slice::from_raw_parts(input.as_ptr().add(off), m) };
            // The root of a reduce has no readers: it publishes only to keep an in-place
            // operand.
            if root != Some(me) {
                self.publish(tag, k, data, readers)?;
            } else if aliased {
                self.publish(tag, k, data, 0)?;
            }
            if computes {
                let out = out.expect("a rank that computes has an output buffer");
                // SAFETY: the output buffer is valid for `len` bytes and ours alone; it
                // overlaps `data` only in place (`aliased`), when `data` is not used below.
                let acc = unsafe {
                    std::slice::from_raw_parts_mut((out.as_ptr() as *mut u8).add(off), m)
                };
                for r in (0..n).rev() {
                    let mut held = None;
                    let theirs: &[u8] = if r == me && !aliased {
                        data
                    } else {
                        let h = self.await_chunk(tag, r, k)?;
                        held = Some(h);
                        // SAFETY: rank r published chunk k and this rank has not released
                        // it.
                        unsafe { self.slots[r].data(h, m) }
                    };
                    if r == n - 1 {
                        acc.copy_from_slice(theirs);
                    } else {
                        op.reduce(theirs, acc);
                    }
                    if let (Some(h), true) = (held, r != me) {
                        self.release(r, h, readers);
                    }
                }
            }
            off += m;
            k += 1;
        }
        Ok(())
    }
}
