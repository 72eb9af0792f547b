//! Small calls: an Allreduce or Reduce whose operands the ranks fold whole (up to
//! [`super::EXCHANGE_MAX`]: one publication each), a Bcast of one publication and an
//! Allgather of one publication a block, run straight from the fast entry
//! (`Communicator::all_reduce_small` and its siblings) without building a `CollOp`, and
//! folded without the general fold's bookkeeping ([`Node::fold_whole`], which the
//! general path's one-chunk Allreduce and Reduce use too).
//!
//! The publications are the general path's, byte for byte: for a fold, one chunk
//! published for the ranks that fold it, with the call's shape and [`fold::LAST`], each
//! operand folded from the right and each publication released as the general fold does;
//! a Bcast and an Allgather publish and read as `Node::run` does. So a rank here and a
//! rank on the general path meet in the same call, and a rank whose shape differs (an
//! erroneous program) is found on the same words and reported with the same errors
//! (`mpi-shim/capi/tests/failure/coll_small.c`).
//!
//! Why a path of its own: measured with callgrind at 2 ranks, a 16-byte `MPI_Allreduce`
//! cost about 2,000 instructions a call besides its waits: about 500 in the C layer
//! (staging, building the operation), 500 in the dispatch to the fold and 700 in the
//! general fold (closures over every rank's share, the chunk loop's state, the
//! address-read machinery), which a one-chunk call of equal operands needs none of. It
//! now costs about 1,200.

use super::super::{CollError, Reducer};
use super::fold::{self, fold_one, Origin};
use super::Node;
use zerorank_transport::shm::collslot::{Kind, INLINE_BYTES};

impl Node {
    /// Allreduce of `send` (`None`: in place, the operand is `recv`) into `recv`, run as
    /// the call with collective tag `tag`, when every rank folds the operands whole: at
    /// most `exchange_max()` bytes, a whole number of `op`'s elements. `None` (nothing
    /// done, the tag unused) when it is not, or when `send` and `recv` overlap: the
    /// general path then runs it (and reports the overlap).
    ///
    /// What [`Node::run`] does with the same Allreduce, without building it first.
    pub(crate) fn allreduce_small(
        &self,
        tag: i32,
        send: Option<&[u8]>,
        recv: &mut [u8],
        op: &dyn Reducer,
    ) -> Option<Result<(), CollError>> {
        let len = recv.len();
        let elem = op.elem_size().max(1);
        let separate = send.is_none_or(|s| s.len() == len && apart(s, recv));
        if len > super::exchange_max() || !len.is_multiple_of(elem) || !separate {
            return None;
        }
        let sig = super::callword::signature(super::kind::ALLREDUCE, None);
        Some(self.in_call(tag as u32, sig, None, |tag| {
            let shape = fold::shape(len, elem, &[]);
            self.fold_whole(tag, send, Some(recv), op, shape, None)
        }))
    }

    /// Fold the operands of every rank whole, as chunk 0 of call `tag` with shape word
    /// `shape` (`fold::shape`): `a0 op (a1 op (...))`, computed by every rank into its
    /// `out` (Allreduce: `root` is `None`) or by the root alone (Reduce). This rank's
    /// operand is `send`, or in place (`None`, the root of a Reduce or any rank of an
    /// Allreduce) `out`. The operands are at most a slot, a whole number of `op`'s
    /// elements; `send` does not overlap `out`.
    pub(super) fn fold_whole(
        &self,
        tag: u32,
        send: Option<&[u8]>,
        out: Option<&mut [u8]>,
        op: &dyn Reducer,
        shape: u64,
        root: Option<usize>,
    ) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        let elem = op.elem_size().max(1);
        // The readers of every rank's operand: every other rank, or the root.
        let readers_of = |r: usize| match root {
            None => n - 1,
            Some(root) => usize::from(r != root),
        };
        let folds = root.is_none_or(|root| root == me);
        assert_eq!(
            folds,
            out.is_some(),
            "a rank that folds has a result buffer"
        );
        let input = match (send, out.as_deref()) {
            (Some(s), _) => s,
            (None, Some(o)) => o,
            (None, None) => unreachable!("in place only where the rank folds"),
        };
        let len = input.len();
        assert!(
            out.as_deref().is_none_or(|o| o.len() == len),
            "operand and result have one length"
        );
        // In place the fold overwrites the operand: this rank folds its own from its
        // publication (which nobody changes before every reader released it, and this
        // rank is not one of them).
        let area = if readers_of(me) > 0 || send.is_none() {
            let word = shape | fold::LAST;
            Some(self.publish_as(tag, 0, &[input], readers_of(me), Kind::Data, word)?)
        } else {
            None
        };
        let Some(out) = out else {
            return Ok(());
        };
        let call = fold::Call {
            shape,
            len,
            elem,
            mutual: root.is_none(),
        };
        let mut failed = None;
        // Publishers whose shape differs (stays empty, unallocated, while all agree).
        let mut odd = Vec::new();
        let mut fresh = true;
        for r in (0..n).rev() {
            if r == me {
                let own = match (send, area) {
                    (Some(input), _) => input,
                    // SAFETY: this rank published it in `area` just now.
                    (None, Some(area)) => unsafe { self.slots[me].data(area, len) },
                    (None, None) => unreachable!("in place, this rank published its operand"),
                };
                fold_one(op, own, out, std::mem::take(&mut fresh), Origin::Local);
                continue;
            }
            let h = self.await_chunk(tag, r, 0)?;
            if !call.agrees(self, r, h, &mut odd, &mut failed) {
                continue;
            }
            let slot = self.slots[r];
            let got = slot.published_len(h);
            if got == len && slot.published_kind(h) == Kind::Data {
                if len > INLINE_BYTES {
                    slot.prefetch_data(h, len);
                }
                // SAFETY: rank r published this chunk and this rank has not released it.
                let theirs = unsafe { slot.data(h, len) };
                fold_one(op, theirs, out, std::mem::take(&mut fresh), Origin::Slot);
            } else {
                failed.get_or_insert(CollError::Truncated {
                    peer: r as u32,
                    expected: len,
                    got,
                });
            }
            self.release(r, h, readers_of(r));
        }
        // A Reduce's root reads on the chunks of a publisher with a longer operand: it
        // counts on the root for each of them.
        let mut k = 1;
        while odd.iter().any(|o| matches!(o, fold::Odd::Draining { .. })) {
            self.drain(tag, 0, k, &mut odd)?;
            k += 1;
        }
        failed.map_or(Ok(()), Err)
    }
}

/// Do `a` and `b` share no byte?
fn apart(a: &[u8], b: &[u8]) -> bool {
    let (x, y) = (a.as_ptr() as usize, b.as_ptr() as usize);
    x + a.len() <= y || y + b.len() <= x
}

impl Node {
    /// Reduce of `send` (`None`: in place at the root, the operand is `recv`) into the
    /// root's `recv` (`None` on the other ranks), run as the call with collective tag
    /// `tag`, when the root folds the operands whole: what [`Node::run`] does with the
    /// same Reduce. `None` (nothing done) when it is not small, or when the arguments are
    /// wrong (the general path then reports them).
    pub(crate) fn reduce_small(
        &self,
        tag: i32,
        root: u32,
        send: Option<&[u8]>,
        recv: Option<&mut [u8]>,
        op: &dyn Reducer,
    ) -> Option<Result<(), CollError>> {
        let (n, me) = (self.n(), self.me());
        let at_root = root as usize == me;
        let len = send.map(<[u8]>::len).or(recv.as_deref().map(<[u8]>::len))?;
        let elem = op.elem_size().max(1);
        let fits = (root as usize) < n
            && at_root == recv.is_some()
            && len <= super::exchange_max()
            && len.is_multiple_of(elem)
            && match (send, recv.as_deref()) {
                (Some(s), Some(r)) => r.len() == len && apart(s, r),
                (s, _) => s.is_some() || at_root,
            };
        if !fits {
            return None;
        }
        let sig = super::callword::signature(super::kind::REDUCE, Some(root));
        Some(self.in_call(tag as u32, sig, Some(root), |tag| {
            let shape = fold::shape(len, elem, &[]);
            self.fold_whole(tag, send, recv, op, shape, Some(root as usize))
        }))
    }

    /// Bcast of `buf` from `root`, run as the call with collective tag `tag`, when it is
    /// one publication: what [`Node::run`] does with the same Bcast. `None` (nothing
    /// done) when it is not, or `root` is not a rank (the general path reports it).
    pub(crate) fn bcast_small(
        &self,
        tag: i32,
        root: u32,
        buf: &mut [u8],
    ) -> Option<Result<(), CollError>> {
        let (n, me) = (self.n(), self.me());
        if root as usize >= n || buf.is_empty() || buf.len() > super::bcast_max() {
            return None;
        }
        let sig = super::callword::signature(super::kind::BCAST, Some(root));
        Some(self.in_call(tag as u32, sig, Some(root), |tag| {
            if root as usize == me {
                self.publish(tag, 0, buf, n - 1).map(drop)
            } else {
                self.read_one(tag, root as usize, buf, n - 1)?
                    .map_or(Ok(()), Err)
            }
        }))
    }

    /// Allgather of `send` (`None`: in place, this rank's block of `recv`) into `recv`,
    /// run as the call with collective tag `tag`, when every block is one publication
    /// through the slots: what [`Node::run`] does with the same Allgather. `None` (nothing
    /// done) when it is not, or the buffers do not fit (the general path reports them).
    pub(crate) fn allgather_small(
        &self,
        tag: i32,
        send: Option<&[u8]>,
        recv: &mut [u8],
    ) -> Option<Result<(), CollError>> {
        let n = self.n();
        let block = recv.len() / n;
        let fits = block > 0
            && recv.len() == n * block
            && block <= super::exchange_max()
            && !(self.direct && block >= super::direct_min())
            && send.is_none_or(|s| s.len() == block && apart(s, recv));
        if !fits {
            return None;
        }
        // SAFETY: the buffers are the caller's, valid until the call returns; the receive
        // buffer is ours alone meanwhile.
        let (send, recv) = unsafe {
            (
                send.map(|s| super::RawBuf::from_const(s.as_ptr(), s.len())),
                super::RawBuf::from_slice(recv),
            )
        };
        let sig = super::callword::signature(super::kind::ALLGATHER, None);
        Some(self.in_call(tag as u32, sig, None, |tag| {
            self.allgather(tag, send, recv, block, false)
        }))
    }
}
