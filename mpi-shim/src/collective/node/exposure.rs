//! Exposures: how a rank offers the others blocks of its buffers through its slot
//! (Gather, Scatter, Allgather(v), Alltoall(v), broadcasts above a slot, the gather phase
//! of a large allreduce).
//!
//! An exposure is a byte stream, a table and then the blocks:
//!
//! ```text
//! u64 entry count
//! u64 stream length (bytes, table included)
//! entry count x (u64 offset in the stream, u64 length)
//! the blocks, packed
//! ```
//!
//! Entry `j` is rank `j`'s block when there is one entry per rank; a single entry is every
//! reader's. The stream goes through the publisher's slot in chunks of at most a slot
//! (chunk `c` is stream bytes `c * DATA_BYTES ..`). Every reader reads chunk 0 (the table
//! is there) and then the chunks its block overlaps, so the publisher knows each chunk's
//! readers from its own table.
//!
//! A rank that exposes and also reads others' exposures does both in one polling loop
//! ([`Node::exchange`]): it publishes its next chunk whenever the slot area it goes to has
//! been released, and reads whichever of the chunks it waits for has arrived. Nobody
//! waits for a chunk whose publisher is itself stuck waiting for that reader, however
//! long the streams are.
//!
//! A reader checks its entry against what it expects (ranks may pass inconsistent
//! counts): on a disagreement it still reads and releases every chunk the table says it
//! reads, copies nothing, and reports [`CollError::Truncated`]; and it never reads outside
//! the publication (its bytes come from another process).

use super::super::CollError;
use super::Node;
use zerorank_transport::shm::collslot::{Kind, DATA_BYTES};
use zerorank_transport::shm::copy::copy;

/// Bytes of the table of an exposure with `entries` entries.
pub(super) fn table_bytes(entries: usize) -> usize {
    16 + 16 * entries
}

/// Most entries in a table (it must fit in chunk 0).
pub(super) const MAX_ENTRIES: usize = (DATA_BYTES - 16) / 16;

/// The chunks of a stream of `len` bytes.
fn chunks(len: usize) -> usize {
    len.div_ceil(DATA_BYTES)
}

/// Bytes of chunk `c` of a stream of `len` bytes.
fn chunk_len(len: usize, c: usize) -> usize {
    (len - c * DATA_BYTES).min(DATA_BYTES)
}

/// Does the block at `off` of `len` bytes overlap chunk `c`?
fn overlaps(off: usize, len: usize, c: usize) -> bool {
    len > 0 && off < (c + 1) * DATA_BYTES && c * DATA_BYTES < off + len
}

/// This rank's exposure: the stream (table and blocks) and each chunk's readers.
pub(super) struct Outgoing<'a> {
    head: Vec<u8>,
    blocks: Vec<&'a [u8]>,
    len: usize,
    readers: Vec<usize>,
    next: usize,
}

impl<'a> Outgoing<'a> {
    /// An exposure of `blocks` to `readers` ranks: with one block, the same for all;
    /// with one per rank, block `j` for rank `j` (every rank but `me` reads).
    pub(super) fn new(blocks: Vec<&'a [u8]>, readers: usize, me: usize) -> Self {
        assert!(blocks.len() <= MAX_ENTRIES, "checked by Node::accepts");
        let table = table_bytes(blocks.len());
        let len = table + blocks.iter().map(|b| b.len()).sum::<usize>();
        let mut head = Vec::with_capacity(table);
        head.extend_from_slice(&(blocks.len() as u64).to_ne_bytes());
        head.extend_from_slice(&(len as u64).to_ne_bytes());
        let mut at = table;
        let mut places = Vec::with_capacity(blocks.len());
        for b in &blocks {
            head.extend_from_slice(&(at as u64).to_ne_bytes());
            head.extend_from_slice(&(b.len() as u64).to_ne_bytes());
            places.push((at, b.len()));
            at += b.len();
        }
        let single = blocks.len() == 1;
        let readers = (0..chunks(len))
            .map(|c| match (c, single) {
                (0, _) => readers,
                (_, true) => readers,
                (_, false) => places
                    .iter()
                    .enumerate()
                    .filter(|&(j, &(off, l))| j != me && overlaps(off, l, c))
                    .count(),
            })
            .collect();
        Outgoing {
            head,
            blocks,
            len,
            readers,
            next: 0,
        }
    }

    /// The parts of the stream in chunk `c`.
    fn parts(&self, c: usize) -> Vec<&[u8]> {
        let (lo, hi) = (c * DATA_BYTES, c * DATA_BYTES + chunk_len(self.len, c));
        let mut out = Vec::new();
        let mut at = 0;
        for p in std::iter::once(&self.head[..]).chain(self.blocks.iter().copied()) {
            let (a, b) = (at, at + p.len());
            if a < hi && lo < b {
                out.push(&p[a.max(lo) - a..b.min(hi) - a]);
            }
            at = b;
        }
        out
    }

    fn done(&self) -> bool {
        self.next == self.readers.len()
    }
}

/// What a rank reads of another rank's exposure.
pub(super) struct Incoming<'a> {
    from: usize,
    dst: &'a mut [u8],
    /// Is this rank the only reader of every chunk it reads (so it may release with a
    /// plain store)?
    sole: bool,
    /// Learnt from chunk 0: the stream's length and this rank's block in it.
    block: Option<(usize, usize, usize)>,
    next: usize,
    ok: bool,
    done: bool,
}

impl<'a> Incoming<'a> {
    /// Read this rank's block of rank `from`'s exposure into `dst`, which must be the
    /// size of the block.
    pub(super) fn new(from: usize, dst: &'a mut [u8], sole: bool) -> Self {
        Incoming {
            from,
            dst,
            sole,
            block: None,
            next: 0,
            ok: true,
            done: false,
        }
    }
}

impl Node {
    /// Publish `out` (if any) and read every `inc`, chunk `first + c` of call `tag` for
    /// stream chunk `c`. `Err` is a failure to wait (a dead peer: the call is over);
    /// `Ok(Some(e))` a disagreement between the ranks, found after this rank did its whole
    /// part, so that no peer waits for it.
    pub(super) fn exchange(
        &self,
        tag: u32,
        first: usize,
        mut out: Option<Outgoing>,
        inc: &mut [Incoming],
    ) -> Result<Option<CollError>, CollError> {
        let mut failed: Option<CollError> = None;
        let mine = self.slots[self.me()];
        let p = self.fabric.coll_publisher();
        let mut polls = 0u32;
        self.wait(|| {
            let mut stuck = None;
            polls = polls.wrapping_add(1);
            // A slow wait: also look whether a peer disagrees about the call or left it.
            let look = polls.is_multiple_of(super::LOOK_EVERY);
            if let Some(o) = out.as_mut() {
                while !o.done() {
                    let (area, asked) = p.next();
                    if !mine.writable(area, asked) {
                        match look.then(|| self.look_at_area(area, asked)) {
                            Some(super::AreaLook::Free) => {}
                            Some(super::AreaLook::Failed(r)) => {
                                stuck = Some(r);
                                break;
                            }
                            Some(super::AreaLook::Busy) | None => break,
                        }
                    }
                    let c = o.next;
                    // SAFETY: this rank owns its slot, and every reader of this area's last
                    // publication released it (or never will: `Node::reclaim`).
                    unsafe { mine.write_parts(area, &o.parts(c), Kind::Stream, self.sig_bits()) };
                    mine.publish(
                        area,
                        self.token(tag, first + c),
                        asked + o.readers[c] as u64,
                    );
                    p.published(area, o.readers[c] as u64);
                    self.set_owner(area);
                    o.next += 1;
                }
            }
            if let Some(r) = stuck {
                // This rank waits for its readers and one of the ranks failed the call
                // (`Node::failed_peer`): it fails it too, and those that wait for its
                // chunks find it failed.
                failed.get_or_insert(CollError::Abandoned { peer: r as u32 });
                out = None;
                inc.iter_mut().for_each(|i| i.done = true);
                return true;
            }
            let mut all = out.as_ref().is_none_or(Outgoing::done);
            for i in inc.iter_mut().filter(|i| !i.done) {
                while !i.done {
                    let Some(h) = self.poll_chunk(tag, i.from, first + i.next) else {
                        if look && self.abandoned_by(i.from) {
                            // It may have published just before it moved on.
                            if let Some(h) = self.poll_chunk(tag, i.from, first + i.next) {
                                self.take_checked(i, h, &mut failed);
                                continue;
                            }
                            i.done = true;
                            failed.get_or_insert(CollError::Abandoned {
                                peer: i.from as u32,
                            });
                        }
                        break;
                    };
                    self.take_checked(i, h, &mut failed);
                }
                all &= i.done;
            }
            all
        })?;
        Ok(failed)
    }

    /// [`Node::take_chunk`] of a chunk of this call; a chunk of a call with another
    /// signature (the publisher disagrees about the root or the collective) is not this
    /// rank's to read or release: nothing more of that publisher is read.
    fn take_checked(&self, i: &mut Incoming, h: usize, failed: &mut Option<CollError>) {
        let r = match self.check_signature(i.from, h) {
            Ok(()) => self.take_chunk(i, h),
            Err(e) => {
                i.done = true;
                Err(e)
            }
        };
        if let Err(e) = r {
            failed.get_or_insert(e);
        }
    }

    /// The area of rank `r`'s slot that holds its chunk `chunk`, if it is there.
    fn poll_chunk(&self, tag: u32, r: usize, chunk: usize) -> Option<usize> {
        let f = &self.fabric;
        let h = self.slots[r].ready(self.token(tag, chunk), f.coll_hint(self.locals[r]))?;
        f.set_coll_hint(self.locals[r], h);
        Some(h)
    }

    /// Read what `i` needs of the chunk in area `h`, release it, and move `i` on.
    fn take_chunk(&self, i: &mut Incoming, h: usize) -> Result<(), CollError> {
        let (r, c) = (i.from, i.next);
        let slot = self.slots[r];
        let got = slot.published_len(h);
        // SAFETY: rank r published this area (`poll_chunk`) and this rank has not released
        // it; `got` is what it wrote.
        let bytes = unsafe { slot.data(h, got) };
        let mut res = match (c, slot.published_kind(h) == Kind::Stream) {
            (0, true) => self.read_table(i, bytes),
            // Rank r published one block where this rank expected a stream: the ranks
            // passed different sizes.
            (0, false) => Err(CollError::Truncated {
                peer: r as u32,
                expected: i.dst.len(),
                got,
            }),
            _ => Ok(()),
        };
        if let (Ok(()), Some((len, off, n))) = (&res, i.block) {
            if got != chunk_len(len, c) {
                i.ok = false;
                res = Err(bad(
                    r,
                    format!("chunk {c} of {got} bytes in a {len}-byte stream"),
                ));
            } else if i.ok && overlaps(off, n, c) {
                let (lo, hi) = (c * DATA_BYTES, c * DATA_BYTES + got);
                let (a, b) = (off.max(lo), (off + n).min(hi));
                copy(&mut i.dst[a - off..b - off], &bytes[a - lo..b - lo]);
            }
        }
        if i.sole {
            slot.release_sole(h);
        } else {
            slot.release(h);
        }
        // The next chunk this rank reads: the next one its block overlaps (whether or not
        // it copies it: the publisher counts on its release).
        match i.block {
            Some((len, off, n)) => {
                i.next = (c + 1..chunks(len))
                    .find(|&k| overlaps(off, n, k))
                    .unwrap_or(usize::MAX);
                i.done = i.next == usize::MAX;
            }
            None => i.done = true,
        }
        res
    }

    /// Chunk 0 of `i`'s exposure: find this rank's block and check it.
    fn read_table(&self, i: &mut Incoming, bytes: &[u8]) -> Result<(), CollError> {
        let r = i.from;
        let word = |at: usize| -> Option<usize> {
            let w = bytes.get(at..at + 8)?;
            usize::try_from(u64::from_ne_bytes(w.try_into().expect("8 bytes"))).ok()
        };
        let (entries, len) = match (word(0), word(8)) {
            (Some(e), Some(l)) => (e, l),
            _ => return Err(bad(r, format!("{} bytes, no table", bytes.len()))),
        };
        if entries == 0 || entries > MAX_ENTRIES || table_bytes(entries) > bytes.len() {
            return Err(bad(
                r,
                format!("{entries} entries in {} bytes", bytes.len()),
            ));
        }
        let e = if entries == 1 { 0 } else { self.me() };
        if e >= entries {
            return Err(bad(
                r,
                format!("{entries} entries, none for rank {}", self.me()),
            ));
        }
        let (off, n) = match (word(16 + 16 * e), word(24 + 16 * e)) {
            (Some(o), Some(n)) => (o, n),
            _ => unreachable!("the table fits (checked above)"),
        };
        if off.checked_add(n).is_none_or(|end| end > len) {
            return Err(bad(r, format!("block of {n} bytes at {off} in {len}")));
        }
        i.block = Some((len, off, n));
        if n != i.dst.len() {
            i.ok = false;
            return Err(CollError::Truncated {
                peer: r as u32,
                expected: i.dst.len(),
                got: n,
            });
        }
        Ok(())
    }
}

fn bad(r: usize, why: String) -> CollError {
    CollError::BadCounts(format!("rank {r}'s exposure: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream an `Outgoing` publishes, chunk by chunk, put back together.
    fn stream(o: &Outgoing) -> Vec<u8> {
        (0..o.readers.len())
            .flat_map(|c| {
                let parts = o.parts(c);
                let bytes: Vec<u8> = parts.concat();
                assert_eq!(bytes.len(), chunk_len(o.len, c), "chunk {c} is whole");
                bytes
            })
            .collect()
    }

    fn word(b: &[u8], at: usize) -> usize {
        u64::from_ne_bytes(b[at..at + 8].try_into().unwrap()) as usize
    }

    #[test]
    fn the_stream_is_the_table_then_the_blocks_and_each_entry_finds_its_block() {
        let a: Vec<u8> = (0..DATA_BYTES + 100).map(|i| i as u8).collect();
        let b: Vec<u8> = vec![7; 3];
        let c: Vec<u8> = (0..2 * DATA_BYTES).map(|i| (i * 3) as u8).collect();
        let blocks = vec![&a[..], &[][..], &b[..], &c[..]];
        let o = Outgoing::new(blocks.clone(), 3, 1);
        let s = stream(&o);
        assert_eq!(s.len(), o.len);
        assert_eq!(word(&s, 0), 4, "entries");
        assert_eq!(word(&s, 8), s.len(), "stream length");
        for (j, blk) in blocks.iter().enumerate() {
            let (off, n) = (word(&s, 16 + 16 * j), word(&s, 24 + 16 * j));
            assert_eq!(n, blk.len(), "entry {j}");
            assert_eq!(&s[off..off + n], *blk, "block {j}");
        }
    }

    #[test]
    fn each_chunk_counts_the_readers_whose_blocks_it_holds() {
        // Rank 1 publishes; rank 0's block spans chunks 0-1, rank 2's is 3 bytes in chunk
        // 1, rank 3's spans chunks 1-3; rank 1's own (empty) is never read.
        let a = vec![1u8; DATA_BYTES + 100];
        let b = [2u8; 3];
        let c = vec![3u8; 2 * DATA_BYTES];
        let o = Outgoing::new(vec![&a[..], &[][..], &b[..], &c[..]], 3, 1);
        assert_eq!(o.readers.len(), chunks(o.len));
        assert_eq!(o.readers[0], 3, "everyone reads the table");
        assert_eq!(o.readers[1], 3, "ranks 0, 2 and 3 have bytes in chunk 1");
        assert!(o.readers[2..].iter().all(|&r| r == 1), "only rank 3 after");
        // A single entry: every reader reads every chunk.
        let o = Outgoing::new(vec![&c[..]], 2, 0);
        assert!(o.readers.iter().all(|&r| r == 2));
    }

    #[test]
    fn overlaps_is_exact_at_chunk_edges() {
        assert!(overlaps(0, 1, 0));
        assert!(!overlaps(0, 0, 0), "an empty block is in no chunk");
        assert!(!overlaps(0, DATA_BYTES, 1));
        assert!(overlaps(DATA_BYTES - 1, 2, 1));
        assert!(!overlaps(2 * DATA_BYTES, 5, 1));
        assert_eq!(chunks(DATA_BYTES), 1);
        assert_eq!(chunks(DATA_BYTES + 1), 2);
        assert_eq!(chunk_len(DATA_BYTES + 1, 1), 1);
    }
}
