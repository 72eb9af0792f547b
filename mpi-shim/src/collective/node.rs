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
//! # Large allgather blocks
//! From [`DIRECT_MIN`] an allgather block does not go through the slots at all: each rank
//! publishes only where its block is, and the others read it from its memory with one
//! kernel copy (`process_vm_readv`), when the kernel allows that here.
//!
//! # Chunks
//! Buffers larger than a slot go in chunks of at most [`DATA_BYTES`] (cut at whole
//! elements); each chunk is one publication with its own token.

use super::{CollError, CollOp, RawBuf, Reducer};
use std::rc::Rc;
use zerorank_transport::fabric::Fabric;
use zerorank_transport::shm::collslot::{token, CollSlot, DATA_BYTES, INLINE_BYTES};
use zerorank_transport::shm::copy::copy;

/// Largest broadcast, reduction operand or allgather block that takes the slots.
///
/// Measured at 2 ranks, each call after a barrier as in `benches/c/coll_bench.c`, the
/// slowest rank's median, 3 runs each: up to 4 KiB the slots win or tie against the
/// point-to-point schedules (bcast 1 KiB 0.30-0.39 against 0.64-0.71 us, allreduce 2 KiB
/// 0.66-0.71 against 1.47-1.80, reduce 4 KiB 0.70-1.06 against 1.09-1.32, allgather
/// 4 KiB 3.1-4.5 against 3.6-5.2). Above that a publication is written whole and then
/// read whole, while the schedules stream large messages in pieces that sender and
/// receiver copy at the same time: a 16 KiB broadcast is 10 us for the reader through a
/// slot and 1.7 us through the schedules. (Those figures predate `shm::copy`, which made
/// reading a slot several times faster; measured again after it, 8-16 KiB are mixed and
/// noisy, see [`EXCHANGE_MAX`].) `ZR_NODE_BCAST_MAX` and `ZR_NODE_REDUCE_MAX` (bytes, for
/// reductions and allgather) override the limits, for measurements.
pub const SLOT_MAX: usize = 4 << 10;

/// [`SLOT_MAX`] for the ops where every rank both publishes and reads (allreduce,
/// allgather): their point-to-point schedules exchange messages both ways at once, and
/// at 8 KiB the slots are still ahead (allreduce 1.9-4.8 against 7.5-9.8 us, allgather
/// 1.6-4.5 against 6.7-8.9; a broadcast or a reduce of 8 KiB is faster through the
/// schedules: bcast 1.2-1.5 against 1.5-4.9).
pub const EXCHANGE_MAX: usize = 8 << 10;

fn env_bytes(var: &str) -> Option<usize> {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map(|v| v.min(DATA_BYTES))
}

/// [`SLOT_MAX`] for broadcasts, or `ZR_NODE_BCAST_MAX`.
fn bcast_max() -> usize {
    static CELL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CELL.get_or_init(|| env_bytes("ZR_NODE_BCAST_MAX").unwrap_or(SLOT_MAX))
}

/// [`SLOT_MAX`] for reduce operands, or `ZR_NODE_REDUCE_MAX`.
fn reduce_max() -> usize {
    static CELL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CELL.get_or_init(|| env_bytes("ZR_NODE_REDUCE_MAX").unwrap_or(SLOT_MAX))
}

/// [`EXCHANGE_MAX`] for allreduce operands and allgather blocks, or `ZR_NODE_REDUCE_MAX`.
fn exchange_max() -> usize {
    static CELL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CELL.get_or_init(|| env_bytes("ZR_NODE_REDUCE_MAX").unwrap_or(EXCHANGE_MAX))
}

/// Allgather blocks at least this large are read by each rank straight from the owner's
/// buffer with one kernel copy (`process_vm_readv`), when the kernel allows it here,
/// instead of going through the point-to-point schedules, which copy every block twice
/// (into a ring and out of it) on both cores at once. Measured at 2 ranks in one session
/// (benches/coll.sh, 5 rounds): 64 KiB 13.3 against 22.3 us, 1 MiB 175 against 346 us
/// (Open MPI 14.4 and 173); the schedules' time swings with the machine (107-346 us at
/// 1 MiB), the direct read's much less. At 16 KiB the schedules are faster (2.6-7 against
/// 5.5 us). `ZR_NODE_DIRECT_MIN` (bytes) overrides it, for measurements.
const DIRECT_MIN: usize = 64 << 10;

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
            direct: fabric.can_read_local_peers(),
        })
    }

    /// Should `op` take this path? An operation it implements, within a slot's size.
    /// Arguments this path does not check itself go to the schedules, which report them.
    pub(crate) fn accepts(&self, op: &CollOp) -> bool {
        let n = self.n();
        let small = |b: Option<&RawBuf>| b.is_none_or(|b| b.len() <= reduce_max());
        match op {
            CollOp::Barrier => true,
            CollOp::Allreduce { recv, .. } => recv.len() <= exchange_max(),
            CollOp::Reduce {
                root, send, recv, ..
            } => (*root as usize) < n && small(send.as_ref()) && small(recv.as_ref()),
            CollOp::Bcast { buf, root } => buf.len() <= bcast_max() && (*root as usize) < n,
            CollOp::Allgather { recv, block, .. } => {
                Some(recv.len()) == block.checked_mul(n)
                    && (*block <= exchange_max() || (self.direct && *block >= direct_min()))
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
    /// `readers` ranks; the half it went to.
    fn publish(
        &self,
        tag: u32,
        chunk: usize,
        data: &[u8],
        readers: usize,
    ) -> Result<usize, CollError> {
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
        Ok(half)
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

    /// [`Node::await_chunk`], then start fetching the chunk's `len` bytes (see
    /// `CollSlot::prefetch_data`); for chunks read from another rank's slot.
    fn await_data(&self, tag: u32, r: usize, chunk: usize, len: usize) -> Result<usize, CollError> {
        let h = self.await_chunk(tag, r, chunk)?;
        if len > INLINE_BYTES && r != self.me {
            self.slots[r].prefetch_data(h, len);
        }
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
            CollOp::Allgather { send, recv, block } if block <= exchange_max() => {
                self.allgather(tag, send, recv, block)
            }
            CollOp::Allgather { send, recv, block } => {
                self.allgather_direct(tag, send, recv, block)
            }
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
            return self.publish(tag, 0, data, n - 1).map(drop);
        }
        let h = self.await_data(tag, root, 0, buf.len())?;
        let s = self.slots[root];
        // SAFETY: the root published chunk 0 and this rank has not released it; the
        // receive buffer is valid and ours alone (RawBuf contract).
        unsafe {
            let out = std::slice::from_raw_parts_mut(buf.as_ptr() as *mut u8, buf.len());
            copy(out, s.data(h, buf.len()));
        }
        self.release(root, h, n - 1);
        Ok(())
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
                copy(
                    std::slice::from_raw_parts_mut(at, block),
                    std::slice::from_raw_parts(s.as_ptr(), block),
                )
            };
        }
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
        let mine = self.own_block(send, recv, block)?;
        if block == 0 {
            return Ok(());
        }
        let base = recv.as_ptr() as *mut u8;
        // SAFETY: `own_block` points at `block` valid bytes (RawBuf contract).
        let data = unsafe { std::slice::from_raw_parts(mine, block) };
        self.publish(tag, 0, data, n - 1)?;
        self.place_own_block(send, recv, block);
        for r in (0..n).filter(|&r| r != me) {
            let h = self.await_data(tag, r, 0, block)?;
            // SAFETY: rank r published its block and this rank has not released it; block
            // r of the receive buffer is ours alone.
            unsafe {
                let theirs = self.slots[r].data(h, block);
                copy(
                    std::slice::from_raw_parts_mut(base.add(r * block), block),
                    theirs,
                );
            }
            self.release(r, h, n - 1);
        }
        Ok(())
    }

    /// Allgather of large blocks, one copy each: every rank publishes where its block is
    /// (address and length, inline in its slot), reads every other rank's block straight
    /// from that rank's memory into place, and releases the publication; it returns only
    /// once all the others released its own, since until then they may still be reading
    /// its buffer. A failed read is reported after this rank has released every
    /// publication, so no peer is left waiting for it.
    fn allgather_direct(
        &self,
        tag: u32,
        send: Option<RawBuf>,
        recv: RawBuf,
        block: usize,
    ) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        let mine = self.own_block(send, recv, block)?;
        let base = recv.as_ptr() as *mut u8;
        let mut desc = [0u8; 16];
        desc[..8].copy_from_slice(&(mine as u64).to_ne_bytes());
        desc[8..].copy_from_slice(&(block as u64).to_ne_bytes());
        let half = self.publish(tag, 0, &desc, n - 1)?;
        self.place_own_block(send, recv, block);
        let mut failed = None;
        for r in (0..n).filter(|&r| r != me) {
            let h = self.await_chunk(tag, r, 0)?;
            // SAFETY: rank r published chunk 0 and this rank has not released it.
            let d = unsafe { self.slots[r].data(h, desc.len()) };
            let addr = u64::from_ne_bytes(d[..8].try_into().expect("8 bytes"));
            let len = u64::from_ne_bytes(d[8..].try_into().expect("8 bytes"));
            // SAFETY: block r of the receive buffer is ours alone (RawBuf contract).
            let dst = unsafe { std::slice::from_raw_parts_mut(base.add(r * block), block) };
            let read = if len != block as u64 {
                Err(CollError::SizeMismatch {
                    what: "allgather block of another rank",
                    expected: block,
                    got: len as usize,
                })
            } else {
                let world = self.ranks[r];
                self.fabric
                    .read_local_peer(world, addr, dst)
                    .map_err(|source| CollError::Transport {
                        peer: r as u32,
                        world,
                        source,
                    })
            };
            self.release(r, h, n - 1);
            if let Err(e) = read {
                failed.get_or_insert(e);
            }
        }
        let (slot, p) = (self.slots[me], self.fabric.coll_publisher());
        self.wait(|| slot.writable(half, p.asked(half)))?;
        failed.map_or(Ok(()), Err)
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
                        let h = self.await_data(tag, r, k, m)?;
                        held = Some(h);
                        // SAFETY: rank r published chunk k and this rank has not released
                        // it.
                        unsafe { self.slots[r].data(h, m) }
                    };
                    if r == n - 1 {
                        copy(acc, theirs);
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
