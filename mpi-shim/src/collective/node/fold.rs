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
use zerorank_transport::shm::copy::{copy, copy_local};

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

/// Whose operands each rank folds.
#[derive(Clone, Copy, Debug)]
pub(super) enum Operands {
    /// The root every rank's, the others none (Reduce).
    Root(usize),
    /// Every rank every rank's (Allreduce, Reduce_scatter).
    All,
    /// Rank `j` those of ranks `0..=j` (Scan), or `0..j` (Exscan).
    Prefix { inclusive: bool },
}

impl Operands {
    /// The ranks whose operands rank `j` of `n` folds.
    pub(super) fn of(self, j: usize, n: usize) -> Range<usize> {
        match self {
            Operands::Root(root) if j == root => 0..n,
            Operands::Root(_) => 0..0,
            Operands::All => 0..n,
            Operands::Prefix { inclusive } => 0..j + usize::from(inclusive),
        }
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

/// The shape word's top bit: this is the publisher's last chunk of the call.
pub(super) const LAST: u64 = 1 << 63;
/// Shape words with this bit are digests (of a layout as well as the length and
/// element); below it, an exact length and element size.
const DIGEST: u64 = 1 << 61;
/// The shape word of a rank that refused its own arguments ([`Node::refuse`]): it matches
/// no other rank's shape but another refusing rank's.
const REFUSED: u64 = 1 << 62;

/// The shape of a fold, which every rank must pass alike (each reader checks it on every
/// publisher's chunk 0): `len`-byte operands of `elem`-byte elements whose shares also
/// depend on `layout` (Reduce_scatter's counts; empty for the others). Exact without a
/// layout (the length and element size, which then name what the ranks disagree on), a
/// digest with one.
pub(super) fn shape(len: usize, elem: usize, layout: &[usize]) -> u64 {
    // Bits 45 to 60 are the call's signature (`Node::publish_as`).
    assert!(len < 1 << 32 && elem < 1 << 13, "checked by Node::accepts");
    if layout.is_empty() {
        len as u64 | (elem as u64) << 32
    } else {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        (len, elem, layout).hash(&mut h);
        h.finish() & ((1 << 45) - 1) | DIGEST
    }
}

/// What this rank knows of a publisher whose call's shape differs from its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Odd {
    /// Its shape matches (the default).
    No,
    /// It disagrees; nothing more of it is read.
    Left,
    /// It disagrees and counts on this rank for every chunk of its operand, so this rank
    /// still reads (without folding) and releases each, up to its last one.
    Draining { next: usize },
}

/// What this rank's fold checks the other ranks' chunk 0 against.
pub(super) struct Call {
    pub shape: u64,
    pub len: usize,
    pub elem: usize,
    /// Does every rank fold something of every operand (see [`Node::fold`])?
    pub mutual: bool,
}

impl Call {
    /// Does rank `r`'s chunk 0, in area `h` of its slot, have this call's shape? If not,
    /// record `r` in `odd`, note the error in `failed` and release the chunk.
    pub(super) fn agrees(
        &self,
        node: &Node,
        r: usize,
        h: usize,
        odd: &mut Vec<Odd>,
        failed: &mut Option<CollError>,
    ) -> bool {
        let theirs = node.shape_at(r, h);
        if theirs & !LAST == self.shape {
            return true;
        }
        failed.get_or_insert(self.disagreement(r, theirs));
        if odd.is_empty() {
            odd.resize(node.n(), Odd::No);
        }
        odd[r] = if !self.mutual && theirs & LAST == 0 {
            Odd::Draining { next: 1 }
        } else {
            Odd::Left
        };
        // This rank does not know the publisher's count of readers: a counted release,
        // not a sole one.
        node.slots[r].release(h);
        false
    }

    /// The error for a publisher `peer` whose shape word `theirs` differs.
    fn disagreement(&self, peer: usize, theirs: u64) -> CollError {
        let theirs = theirs & !LAST;
        let peer = peer as u32;
        if theirs & (DIGEST | REFUSED) == 0 && (theirs >> 32) as usize == self.elem {
            CollError::Truncated {
                peer,
                expected: self.len,
                got: (theirs & 0xffff_ffff) as usize,
            }
        } else {
            CollError::Disagree { peer }
        }
    }
}

impl Node {
    /// Fold the `len`-byte operands `input` of every rank: rank `j` computes `share(j)`;
    /// this rank writes its share to `out`. Chunk `k` goes out as chunk `first + k` of
    /// call `tag`. `shape` is this rank's [`shape`] of the call (or that of a refusal).
    ///
    /// Every rank publishes chunk 0, even of an empty operand, to every rank that folds
    /// anything of its operand: the readers check the call's shape on it before they read
    /// on. A rank whose shape differs (an erroneous program: inconsistent counts or
    /// datatypes) is reported as [`CollError::Truncated`] or [`CollError::Disagree`], and
    /// nobody is left waiting:
    /// - when every rank folds something of every operand (Allreduce, Reduce_scatter),
    ///   the two ranks of a disagreeing pair both see it on chunk 0, before either
    ///   publishes chunk 1, and leave each other out of the rest;
    /// - otherwise (Reduce, Scan, Exscan) the shares are whole operands, the reader is
    ///   counted on for every chunk of the publisher's operand, and it reads and releases
    ///   each without folding, up to the one flagged [`LAST`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fold(
        &self,
        tag: u32,
        first: usize,
        input: RawBuf,
        out: Option<RawBuf>,
        op: &dyn Reducer,
        (shape, operands): (u64, Operands),
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
        let mutual = matches!(operands, Operands::All);
        debug_assert!(
            (0..n).all(|j| share(j).ranks == operands.of(j, n)),
            "the shares fold the operands of {operands:?}"
        );
        // A disagreeing reader drains every chunk: it must be counted on for all.
        debug_assert!(
            mutual || (0..n).all(|j| share(j).ranks.is_empty() || share(j).range == (0..len)),
            "without mutual reads, every share is a whole operand"
        );
        // MPI_IN_PLACE (or Reduce_scatter's in-place layout): the output overlaps the
        // operand, which the fold overwrites, so this rank folds its own operand from its
        // published copy.
        let aliased = out.is_some_and(|o| {
            let (a, b) = (input.as_ptr() as usize, o.as_ptr() as usize);
            a < b + o.len() && b < a + len
        });
        // How many ranks other than `r` read `r`'s chunk `k` (bytes `lo..hi`), as this
        // rank sees it (for this rank's own chunks, before leaving out disagreeing ranks).
        let readers_of = |r: usize, k: usize, lo: usize, hi: usize| {
            (0..n)
                .filter(|&j| {
                    j != r && {
                        let s = share(j);
                        s.ranks.contains(&r) && (k == 0 || s.covers(lo, hi))
                    }
                })
                .count()
        };
        let call = Call {
            shape,
            len,
            elem,
            mutual,
        };
        let step = chunk_bytes(elem);
        let chunks = len.div_ceil(step).max(1);
        let mut failed: Option<CollError> = None;
        // The disagreeing publishers (empty while every one agrees).
        let mut odd: Vec<Odd> = Vec::new();
        let is_odd = |odd: &[Odd], r: usize| odd.get(r).is_some_and(|&o| o != Odd::No);
        // Ranks that published their operand by address, learnt from their chunk 0, and
        // where their chunks are read to (both empty until one does).
        let mut by_address: Vec<Option<Addressed>> = Vec::new();
        if chunks == 1 && len < super::REDUCE_DIRECT_MIN {
            // One chunk, which no rank publishes by address: the loop below without its
            // bookkeeping (most small reductions; measured with callgrind, the loop's
            // state cost a 1-float allreduce about 100 instructions).
            // SAFETY: the input is valid for `len` bytes (RawBuf contract); when it is
            // aliased this rank reads its own operand only from its published copy.
            let data = unsafe { std::slice::from_raw_parts(input.as_ptr(), len) };
            let readers = readers_of(me, 0, 0, len);
            if readers > 0 || (aliased && computes && mine.ranks.contains(&me)) {
                self.publish_as(tag, first, &[data], readers, Kind::Data, shape | LAST)?;
            }
            if let (true, Some(o)) = (computes, out) {
                let (x, y) = (mine.range.start, mine.range.end);
                // SAFETY: as in the loop below.
                let acc = unsafe {
                    std::slice::from_raw_parts_mut((o.as_ptr() as *mut u8).add(mine.at), y - x)
                };
                let mut fresh = true;
                for r in mine.ranks.clone().rev() {
                    if r == me && !aliased {
                        fold_one(op, &data[x..y], acc, std::mem::take(&mut fresh), Local);
                        continue;
                    }
                    let h = self.await_data(tag, r, first, len)?;
                    if r != me && !call.agrees(self, r, h, &mut odd, &mut failed) {
                        continue;
                    }
                    match self.fold_published(r, h, 0, len, (x, y), acc, fresh, op) {
                        Ok(()) => fresh = false,
                        Err(e) => {
                            failed.get_or_insert(e);
                        }
                    }
                    if r != me {
                        self.release(r, h, readers_of(r, 0, 0, len));
                    }
                }
            } else {
                for r in mine.ranks.clone().filter(|&r| r != me) {
                    let h = self.await_chunk(tag, r, first)?;
                    if call.agrees(self, r, h, &mut odd, &mut failed) {
                        self.release(r, h, readers_of(r, 0, 0, 0));
                    }
                }
            }
            let mut k = 1;
            while odd.iter().any(|o| matches!(o, Odd::Draining { .. })) {
                self.drain(tag, first, k, &mut odd)?;
                k += 1;
            }
            return failed.map_or(Ok(()), Err);
        }
        let (mut lo, mut k) = (0, 0);
        while k < chunks || odd.iter().any(|o| matches!(o, Odd::Draining { .. })) {
            let hi = (lo + step).min(len);
            if k < chunks {
                let mut readers = readers_of(me, k, lo, hi);
                if mutual && k > 0 && !odd.is_empty() {
                    readers -= (0..n)
                        .filter(|&j| j != me && is_odd(&odd, j) && share(j).covers(lo, hi))
                        .count();
                }
                let own_needed = computes && mine.covers(lo, hi) && mine.ranks.contains(&me);
                // SAFETY: the input is valid for `len` bytes (RawBuf contract); when it is
                // aliased this rank writes it only below the chunk it has published, and
                // then reads its own operand only from that copy.
                let data = unsafe { std::slice::from_raw_parts(input.as_ptr().add(lo), hi - lo) };
                if readers > 0 || (aliased && own_needed) {
                    let word = shape | if k + 1 == chunks { LAST } else { 0 };
                    self.publish_as(tag, first + k, &[data], readers, Kind::Data, word)?;
                }
            }
            // On chunk 0 this rank checks the call's shape of every rank whose operand it
            // folds: in the fold below when it folds chunk 0, else here, releasing them.
            let folds_chunk0 = computes && mine.covers(0, hi);
            if k == 0 && !folds_chunk0 {
                for r in mine.ranks.clone().filter(|&r| r != me) {
                    let h = self.await_chunk(tag, r, first)?;
                    if call.agrees(self, r, h, &mut odd, &mut failed) {
                        self.release(r, h, readers_of(r, 0, 0, 0));
                    }
                }
            }
            if k < chunks && computes && mine.covers(lo, hi) {
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
                // The first (rightmost) operand folded into a chunk is copied.
                let mut fresh = true;
                for r in mine.ranks.clone().rev() {
                    if is_odd(&odd, r) {
                        continue;
                    }
                    if r == me && !aliased {
                        // SAFETY: as for `data` above.
                        let own =
                            unsafe { std::slice::from_raw_parts(input.as_ptr().add(x), y - x) };
                        fold_one(op, own, acc, std::mem::take(&mut fresh), Local);
                        continue;
                    }
                    if by_address.get(r).is_none_or(Option::is_none) {
                        let h = self.await_data(tag, r, first + k, hi - lo)?;
                        if k == 0 && r != me && !call.agrees(self, r, h, &mut odd, &mut failed) {
                            continue;
                        }
                        let slot = self.slots[r];
                        if r == me || k != 0 || slot.published_kind(h) != Kind::Address {
                            match self.fold_published(r, h, lo, hi, (x, y), acc, fresh, op) {
                                Ok(()) => fresh = false,
                                Err(e) => {
                                    failed.get_or_insert(e);
                                }
                            }
                            if r != me {
                                self.release(r, h, readers_of(r, k, lo, hi));
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
                        Ok(Some(theirs)) => {
                            fold_one(op, theirs, acc, std::mem::take(&mut fresh), Local)
                        }
                        Ok(None) => {}
                        Err(e) => {
                            failed.get_or_insert(e);
                        }
                    }
                }
            }
            if k > 0 {
                self.drain(tag, first, k, &mut odd)?;
            }
            lo = hi;
            k += 1;
        }
        for (r, a) in by_address.iter().enumerate() {
            if let Some(a) = a {
                self.release(r, a.area, readers_of(r, 0, 0, len));
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

impl Node {
    /// Take part in a fold whose arguments this rank found wrong (`e`, which it returns):
    /// with an empty operand and a shape no rank with valid arguments has, so that the
    /// ranks that fold its operand report a disagreement instead of waiting for it, and
    /// the publishers whose operands it would fold are read and released.
    pub(super) fn refuse(
        &self,
        tag: u32,
        op: &dyn Reducer,
        operands: Operands,
        e: CollError,
    ) -> CollError {
        let n = self.n();
        // SAFETY: an empty buffer; the fold reads no byte of it.
        let empty = unsafe { RawBuf::new(std::ptr::NonNull::dangling().as_ptr(), 0) };
        let share = |j| Share {
            range: 0..0,
            ranks: operands.of(j, n),
            at: 0,
        };
        // The others' disagreement with this rank is what it expects; its own error says
        // more. (A failed peer ends the call too, and is reported on the next one.)
        let _ = self.fold(tag, 0, empty, None, op, (REFUSED, operands), share);
        e
    }

    /// `r`, or, when it is an error, the error after [`Node::refuse`] (for the local
    /// checks of a fold's arguments).
    pub(super) fn checked<T>(
        &self,
        tag: u32,
        op: &dyn Reducer,
        operands: Operands,
        r: Result<T, CollError>,
    ) -> Result<T, CollError> {
        r.map_err(|e| self.refuse(tag, op, operands, e))
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
    /// Step `k` of reading the chunks of the disagreeing publishers this rank is counted
    /// on for (`Odd::Draining`): read and release each one's chunk `k`.
    pub(super) fn drain(
        &self,
        tag: u32,
        first: usize,
        k: usize,
        odd: &mut [Odd],
    ) -> Result<(), CollError> {
        for (r, o) in odd.iter_mut().enumerate() {
            if *o != (Odd::Draining { next: k }) {
                continue;
            }
            let h = self.await_chunk(tag, r, first + k)?;
            let last = self.slots[r].published_shape(h) & LAST != 0;
            self.slots[r].release(h);
            *o = if last {
                Odd::Left
            } else {
                Odd::Draining { next: k + 1 }
            };
        }
        Ok(())
    }

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
        fold_one(op, &theirs[x - lo..y - lo], acc, first, Slot);
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

/// Where an operand [`fold_one`] takes is: in this process's memory (this rank's own, or
/// read into it by a kernel copy), or in another rank's slot, just written by another
/// core (see `zerorank_transport::shm::copy`).
#[derive(Clone, Copy)]
pub(super) enum Origin {
    Local,
    Slot,
}
use Origin::{Local, Slot};

/// The first (rightmost) operand is copied, the others combined into it.
pub(super) fn fold_one(op: &dyn Reducer, theirs: &[u8], acc: &mut [u8], first: bool, from: Origin) {
    if first {
        match from {
            Local => copy_local(acc, theirs),
            Slot => copy(acc, theirs),
        }
    } else {
        op.reduce(theirs, acc);
    }
}
