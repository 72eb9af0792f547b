//! On-node collectives through shared memory: when every rank of a communicator is on
//! this node, `Barrier`, `Bcast`, `Reduce`, `Allreduce` and `Allgather` (up to a slot's
//! size) go through the node's
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

use super::{CollCtx, CollError, CollOp, RawBuf, Reducer};
use std::rc::Rc;
use zerorank_transport::shm::collslot::{token, CollSlot, DATA_BYTES};

/// Largest broadcast that takes the shared-memory path; larger ones are faster as a
/// pipelined point-to-point stream (sender and receiver copy at the same time).
pub const BCAST_MAX: usize = DATA_BYTES;

/// Largest reduction, and largest allgather block, that takes the shared-memory path.
/// Measured at 2 ranks (benches/coll.sh): up to 1 KiB the slots win; from 4 KiB the
/// point-to-point schedules are faster (allreduce 16 KiB: 5.2 against 10.4 us, reduce
/// 64 KiB: 7.8 against 38 us), so the default is 1 KiB. `ZR_NODE_REDUCE_MAX` overrides
/// it (bytes), for measurements.
static REDUCE_MAX_CELL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

fn reduce_max() -> usize {
    *REDUCE_MAX_CELL.get_or_init(|| {
        std::env::var("ZR_NODE_REDUCE_MAX")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1024)
            .min(DATA_BYTES)
    })
}

/// The slots of a communicator whose ranks all share this node.
pub(crate) struct Node {
    ctx: CollCtx,
    slots: Vec<CollSlot>,
    /// Local index of every rank (for the fabric's look-first hints).
    locals: Vec<usize>,
    /// World ranks of the others (whose failure ends a wait).
    peers: Vec<u32>,
}

impl Node {
    /// The on-node view of `ctx`, if `op` should take it: every rank local, at least two
    /// ranks, and an operation this path implements.
    pub(crate) fn for_op(ctx: &CollCtx, op: &CollOp) -> Option<Node> {
        let n = ctx.ranks.len();
        if n < 2 {
            return None;
        }
        // Arguments this path does not check itself go to the schedules, which report them.
        let small = |b: Option<&RawBuf>| b.is_none_or(|b| b.len() <= reduce_max());
        match op {
            CollOp::Barrier => {}
            CollOp::Allreduce { recv, .. } if small(Some(recv)) => {}
            CollOp::Reduce {
                root, send, recv, ..
            } if (*root as usize) < n && small(send.as_ref()) && small(recv.as_ref()) => {}
            CollOp::Bcast { buf, root } if buf.len() <= BCAST_MAX && (*root as usize) < n => {}
            CollOp::Allgather { recv, block, .. }
                if *block <= reduce_max() && Some(recv.len()) == block.checked_mul(n) => {}
            _ => return None,
        }
        let f = &ctx.fabric;
        let locals = ctx
            .ranks
            .iter()
            .map(|&w| f.local_index(w))
            .collect::<Option<Vec<_>>>()?;
        let slots = locals
            .iter()
            .map(|&l| f.coll_slot(l))
            .collect::<Option<Vec<_>>>()?;
        let peers = (0..n)
            .filter(|&r| r != ctx.rank as usize)
            .map(|r| ctx.ranks[r])
            .collect();
        Some(Node {
            locals,
            peers,
            ctx: CollCtx {
                fabric: ctx.fabric.clone(),
                ranks: ctx.ranks.clone(),
                rank: ctx.rank,
                context: ctx.context,
                tag: ctx.tag,
            },
            slots,
        })
    }

    fn n(&self) -> usize {
        self.slots.len()
    }

    fn me(&self) -> usize {
        self.ctx.rank as usize
    }

    fn token(&self, chunk: usize) -> u64 {
        token(self.ctx.context, self.ctx.tag as u32, chunk as u32)
    }

    fn wait(&self, mut cond: impl FnMut() -> bool) -> Result<(), CollError> {
        let me = self.me();
        self.ctx
            .fabric
            .wait_for(&self.peers, &mut cond)
            .map_err(|source| {
                let world = match &source {
                    zerorank_transport::fabric::OpError::PeerFailed { rank, .. } => *rank,
                    _ => self.ctx.ranks[me],
                };
                let peer = self
                    .ctx
                    .ranks
                    .iter()
                    .position(|&w| w == world)
                    .unwrap_or(me) as u32;
                CollError::Transport {
                    peer,
                    world,
                    source,
                }
            })
    }

    /// Publish `data` (at most a slot) in this rank's slot as chunk `chunk`, to be read by
    /// `readers` ranks.
    fn publish(&self, chunk: usize, data: &[u8], readers: usize) -> Result<(), CollError> {
        assert!(data.len() <= DATA_BYTES, "a chunk fits in a slot");
        let mine = self.slots[self.me()];
        let p = self.ctx.fabric.coll_publisher();
        let (half, asked) = p.next();
        self.wait(|| mine.writable(half, asked))?;
        // SAFETY: this rank owns its slot, and every reader of this half's last
        // publication released it.
        unsafe { mine.write(half, data) };
        mine.publish(half, self.token(chunk));
        p.published(half, readers as u64);
        Ok(())
    }

    /// Wait for rank `r`'s chunk `chunk`; the half of its slot that holds it.
    fn await_chunk(&self, r: usize, chunk: usize) -> Result<usize, CollError> {
        let s = self.slots[r];
        let t = self.token(chunk);
        let f = &self.ctx.fabric;
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

    /// Run `op` (which [`Node::for_op`] accepted).
    pub(crate) fn run(&self, op: CollOp) -> Result<(), CollError> {
        match op {
            CollOp::Barrier => self.barrier(),
            CollOp::Bcast { root, buf } => self.bcast(root as usize, buf),
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
                self.reduce(Some(root), input, recv, op)
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
                self.reduce(None, input, Some(recv), op)
            }
            CollOp::Allgather { send, recv, block } => self.allgather(send, recv, block),
            _ => unreachable!("Node::for_op accepts only the operations above"),
        }
    }

    fn barrier(&self) -> Result<(), CollError> {
        let n = self.n();
        self.publish(0, &[], n - 1)?;
        for r in (0..n).filter(|&r| r != self.me()) {
            let h = self.await_chunk(r, 0)?;
            self.slots[r].release(h);
        }
        Ok(())
    }

    fn bcast(&self, root: usize, buf: RawBuf) -> Result<(), CollError> {
        let n = self.n();
        assert!(buf.len() <= DATA_BYTES, "Node::for_op bounds broadcasts");
        if self.me() == root {
            // SAFETY: the caller's buffer is valid for its length (RawBuf contract).
            let data = unsafe { std::slice::from_raw_parts(buf.as_ptr(), buf.len()) };
            return self.publish(0, data, n - 1);
        }
        let h = self.await_chunk(root, 0)?;
        let s = self.slots[root];
        // SAFETY: the root published chunk 0 and this rank has not released it; the
        // receive buffer is valid and ours alone (RawBuf contract).
        unsafe {
            let out = std::slice::from_raw_parts_mut(buf.as_ptr() as *mut u8, buf.len());
            out.copy_from_slice(&s.data(h)[..buf.len()]);
        }
        s.release(h);
        Ok(())
    }

    /// Every rank publishes its block; every rank copies the others' blocks into place.
    fn allgather(&self, send: Option<RawBuf>, recv: RawBuf, block: usize) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        debug_assert_eq!(recv.len(), n * block, "Node::for_op checked the size");
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
        self.publish(0, mine, n - 1)?;
        if send.is_some() {
            // SAFETY: block `me` of the receive buffer is ours alone and does not overlap
            // the send buffer (MPI forbids it).
            unsafe { std::ptr::copy_nonoverlapping(mine.as_ptr(), base.add(me * block), block) };
        }
        for r in (0..n).filter(|&r| r != me) {
            let h = self.await_chunk(r, 0)?;
            // SAFETY: rank r published its block and this rank has not released it; block
            // r of the receive buffer is ours alone.
            unsafe {
                let theirs = &self.slots[r].data(h)[..block];
                std::ptr::copy_nonoverlapping(theirs.as_ptr(), base.add(r * block), block);
            }
            self.slots[r].release(h);
        }
        Ok(())
    }

    /// `Reduce` to `root` (`Some`) or `Allreduce` (`None`): every rank publishes `input`
    /// chunk by chunk; the ranks that need the result fold the published chunks into
    /// `out`.
    fn reduce(
        &self,
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
        let mut off = 0;
        let mut k = 0;
        while off < len {
            let m = chunk.min(len - off);
            // SAFETY: the input is valid for `len` bytes (RawBuf contract); with
            // MPI_IN_PLACE it is the output buffer, which this rank writes only after it
            // published (copied) this chunk.
            let data = unsafe { std::slice::from_raw_parts(input.as_ptr().add(off), m) };
            // The root of a reduce reads its own slot too; it releases nothing of its own.
            let my_readers = if root == Some(me) { 0 } else { readers };
            self.publish(k, data, my_readers)?;
            if computes {
                let out = out.expect("a rank that computes has an output buffer");
                // SAFETY: the output buffer is valid for `len` bytes and ours alone.
                let acc = unsafe {
                    std::slice::from_raw_parts_mut((out.as_ptr() as *mut u8).add(off), m)
                };
                for r in (0..n).rev() {
                    let h = self.await_chunk(r, k)?;
                    // SAFETY: rank r published chunk k and this rank has not released it.
                    let theirs = unsafe { &self.slots[r].data(h)[..m] };
                    if r == n - 1 {
                        acc.copy_from_slice(theirs);
                    } else {
                        op.reduce(theirs, acc);
                    }
                    if r != me {
                        self.slots[r].release(h);
                    }
                }
            }
            off += m;
            k += 1;
        }
        Ok(())
    }
}
