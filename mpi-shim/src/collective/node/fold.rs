//! Reductions through the slots: Reduce, Allreduce, Reduce_scatter, Scan and Exscan are
//! one fold, which differs only in which ranks' operands each rank combines and which
//! part of the result it keeps.
//!
//! Every rank cuts its operand into the same chunks of whole elements (at most a slot
//! each) and, chunk by chunk, publishes the chunk if another rank needs it, then folds the
//! chunk's part of its own result straight from the published operands. A rank's
//! slot areas let it publish chunk `k + 1` while the others still read chunk `k`.
//!
//! A rank's [`Share`] says what it computes: the operand bytes `range` of the result, from
//! the operands of the ranks `ranks`, written to its output at `at`. The readers of a
//! publication are the other ranks whose share covers bytes of that chunk and includes
//! the publisher, so the publisher knows how many releases to wait for.
//!
//! The fold order is fixed, from the right: `a(first) op (... op a(last))`, as in the
//! parent module's docs, so every rank that computes a byte computes it from the same
//! operands in the same order.

use super::super::{CollError, RawBuf, Reducer};
use super::Node;
use std::ops::Range;
use zerorank_transport::shm::collslot::{Kind, DATA_BYTES};
use zerorank_transport::shm::copy::copy;

/// What one rank computes in a fold.
#[derive(Clone, Debug)]
pub(super) struct Share {
    /// Operand bytes of the result this rank computes (empty: none).
    pub range: Range<usize>,
    /// Ranks whose operands it combines, in rank order (empty: none).
    pub ranks: Range<usize>,
    /// Where byte `range.start` of the result goes in its output buffer.
    pub at: usize,
}

impl Share {
    fn covers(&self, lo: usize, hi: usize) -> bool {
        !self.ranks.is_empty() && self.range.start < hi && lo < self.range.end
    }
}

/// Chunks of at most a slot, cut at whole `elem`-byte elements.
pub(super) fn chunk_bytes(elem: usize) -> usize {
    DATA_BYTES / elem * elem
}

/// The element size of `op`, and `len` checked to be whole elements.
pub(super) fn elements(
    what: &'static str,
    len: usize,
    op: &dyn Reducer,
) -> Result<usize, CollError> {
    let elem = op.elem_size().max(1);
    if len.is_multiple_of(elem) {
        Ok(elem)
    } else {
        Err(CollError::NotMultiple { what, len, elem })
    }
}

impl Node {
    /// Fold the `len`-byte operands `input` of every rank: rank `j` computes `share(j)`;
    /// this rank writes its share to `out`. Chunk `k` goes out as chunk `first + k` of
    /// call `tag`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fold(
        &self,
        tag: u32,
        first: usize,
        input: RawBuf,
        out: Option<RawBuf>,
        op: &dyn Reducer,
        share: impl Fn(usize) -> Share,
    ) -> Result<(), CollError> {
        let (n, me, len) = (self.n(), self.me(), input.len());
        let elem = op.elem_size().max(1);
        assert!(len.is_multiple_of(elem), "checked by the caller");
        let mine = share(me);
        let computes = !mine.ranks.is_empty() && !mine.range.is_empty();
        assert!(mine.range.end <= len, "a share lies inside the operand");
        let out = if computes {
            let o = out.expect("a rank that computes has an output buffer");
            assert!(
                mine.at + mine.range.len() <= o.len(),
                "the output holds the share"
            );
            Some(o)
        } else {
            None
        };
        // MPI_IN_PLACE (or Reduce_scatter's in-place layout): the output overlaps the
        // operand, which the fold overwrites, so this rank folds its own operand from its
        // published copy.
        let aliased = out.is_some_and(|o| {
            let (a, b) = (input.as_ptr() as usize, o.as_ptr() as usize);
            a < b + o.len() && b < a + len
        });
        // How many ranks other than `r` read `r`'s chunk `lo..hi`.
        let readers_of = |r: usize, lo: usize, hi: usize| {
            (0..n)
                .filter(|&j| {
                    j != r && {
                        let s = share(j);
                        s.covers(lo, hi) && s.ranks.contains(&r)
                    }
                })
                .count()
        };
        let step = chunk_bytes(elem);
        let mut failed: Option<CollError> = None;
        // Ranks that published their operand by address, learnt from their chunk 0, and
        // where their chunks are read to (both empty until one does).
        let mut by_address: Vec<Option<Addressed>> = Vec::new();
        let (mut lo, mut k) = (0, 0);
        while lo < len {
            let hi = (lo + step).min(len);
            let readers = readers_of(me, lo, hi);
            let own_needed = computes && mine.covers(lo, hi) && mine.ranks.contains(&me);
            // SAFETY: the input is valid for `len` bytes (RawBuf contract); when it is
            // aliased this rank writes it only below the chunk it has published, and then
            // reads its own operand only from that copy.
            let data = unsafe { std::slice::from_raw_parts(input.as_ptr().add(lo), hi - lo) };
            if readers > 0 || (aliased && own_needed) {
                self.publish(tag, first + k, data, readers)?;
            }
            if computes && mine.covers(lo, hi) {
                let (x, y) = (lo.max(mine.range.start), hi.min(mine.range.end));
                let o = out.expect("checked above");
                // SAFETY: the output is valid for its length and ours alone; `at + (x -
                // start)..` lies inside it (asserted above). It overlaps `data` only when
                // aliased, and then `data` is not read below.
                let acc = unsafe {
                    std::slice::from_raw_parts_mut(
                        (o.as_ptr() as *mut u8).add(mine.at + x - mine.range.start),
                        y - x,
                    )
                };
                let last = mine.ranks.end - 1;
                for r in mine.ranks.clone().rev() {
                    if r == me && !aliased {
                        fold_one(op, &data[x - lo..y - lo], acc, r == last);
                        continue;
                    }
                    if by_address.get(r).is_none_or(Option::is_none) {
                        let h = self.await_data(tag, r, first + k, hi - lo)?;
                        let slot = self.slots[r];
                        if r == me || k != 0 || slot.published_kind(h) != Kind::Address {
                            let folded =
                                self.fold_published(r, h, lo, hi, (x, y), acc, r == last, op);
                            if let Err(e) = folded {
                                failed.get_or_insert(e);
                            }
                            if r != me {
                                self.release(r, h, readers_of(r, lo, hi));
                            }
                            continue;
                        }
                        // Rank r published where its whole operand is (`Node::reduce`):
                        // read it from its memory, a window at a time, and release the
                        // publication at the end.
                        if by_address.is_empty() {
                            by_address.resize_with(n, || None);
                        }
                        // SAFETY: rank r published chunk 0 in `h` and this rank has not
                        // released it (it does at the end).
                        let (addr, their_len) = unsafe { super::direct::descriptor(slot, h) };
                        let ok = their_len == Some(len);
                        if !ok {
                            failed.get_or_insert(CollError::Truncated {
                                peer: r as u32,
                                expected: len,
                                got: their_len.unwrap_or(0),
                            });
                        }
                        by_address[r] = Some(Addressed {
                            addr,
                            area: h,
                            ok,
                            held: Vec::new(),
                            from: 0,
                        });
                    }
                    let a = by_address[r].as_mut().expect("registered above");
                    match self.window(r, a, x, y, len) {
                        Ok(Some(theirs)) => fold_one(op, theirs, acc, r == last),
                        Ok(None) => {}
                        Err(e) => {
                            failed.get_or_insert(e);
                        }
                    }
                }
            }
            lo = hi;
            k += 1;
        }
        for (r, a) in by_address.iter().enumerate() {
            if let Some(a) = a {
                self.release(r, a.area, readers_of(r, 0, len));
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

/// A rank whose whole operand is read from its memory.
struct Addressed {
    addr: u64,
    /// The area of its address publication, released once the fold is done.
    area: usize,
    /// False once its length disagreed or a read failed: its chunks are skipped.
    ok: bool,
    /// Operand bytes `from..from + held.len()`, read ahead in one kernel copy.
    held: Vec<u8>,
    from: usize,
}

/// Bytes of an operand read from another rank's memory at once: a kernel copy costs a
/// system call and pinning the pages, so reading a slot's worth at a time was slower than
/// folding from the slots (1 MiB reduce at 2 ranks: 284 against 92 us).
const WINDOW: usize = 256 << 10;

impl Node {
    /// Fold bytes `x..y` of rank `r`'s published chunk `lo..hi` (in area `h`) into `acc`
    /// (`first`: copy instead); a disagreement if the publication is not that chunk.
    #[allow(clippy::too_many_arguments)]
    fn fold_published(
        &self,
        r: usize,
        h: usize,
        lo: usize,
        hi: usize,
        (x, y): (usize, usize),
        acc: &mut [u8],
        first: bool,
        op: &dyn Reducer,
    ) -> Result<(), CollError> {
        let slot = self.slots[r];
        let got = slot.published_len(h);
        if got != hi - lo || slot.published_kind(h) != Kind::Data {
            return Err(CollError::Truncated {
                peer: r as u32,
                expected: hi - lo,
                got,
            });
        }
        // SAFETY: rank r published this chunk and this rank has not released it.
        let theirs = unsafe { slot.data(h, got) };
        fold_one(op, &theirs[x - lo..y - lo], acc, first);
        Ok(())
    }

    /// Operand bytes `x..y` of rank `r`, read from its memory (through `a`'s window,
    /// refilled as needed); `None` once `a` failed.
    fn window<'a>(
        &self,
        r: usize,
        a: &'a mut Addressed,
        x: usize,
        y: usize,
        len: usize,
    ) -> Result<Option<&'a [u8]>, CollError> {
        if !a.ok {
            return Ok(None);
        }
        if x < a.from || y > a.from + a.held.len() {
            let end = (x + WINDOW).min(len).max(y);
            a.held.resize(end - x, 0);
            a.from = x;
            if let Err(e) = self.read_peer(r, a.addr + x as u64, &mut a.held) {
                a.ok = false;
                return Err(e);
            }
        }
        Ok(Some(&a.held[x - a.from..y - a.from]))
    }
}

/// The first (rightmost) operand is copied, the others combined into it.
fn fold_one(op: &dyn Reducer, theirs: &[u8], acc: &mut [u8], first: bool) {
    if first {
        copy(acc, theirs);
    } else {
        op.reduce(theirs, acc);
    }
}
