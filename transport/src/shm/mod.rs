//! Shared memory between the ranks of one node.
//!
//! * One segment per node, `/dev/shm/zerorank-<job>-n<node>` ([`segment_name`]): local rank 0
//!   [`ShmSegment::create`]s it (mode 0600), the others [`ShmSegment::attach`] after a
//!   bootstrap fence, and the name is [`ShmSegment::unlink`]ed as soon as everyone has
//!   mapped it, so nothing is left behind even after `kill -9`.
//! * One single-producer single-consumer ring per ordered pair of local ranks, with fixed
//!   slots; a frame (an rkyv header + payload) is written into one slot and read in
//!   place, 16-byte aligned. A small eager message (a compact header and up to
//!   `zerorank_core::small_frame::SMALL_PAYLOAD_MAX` bytes) travels in
//!   the slot's control line, next to its flag (`ring` documents the protocol).
//! * A futex doorbell per rank for blocking waits ([`ShmEndpoint::wait`]); senders make a
//!   syscall only when the receiver announced that it sleeps.
//! * [`cma`]: single-copy reads of large messages from the sender's memory.
//! * [`collslot`]: one slot per local rank where it publishes its operand of an on-node
//!   collective, read in place by the others.
//! * [`local_ring`]: a ring in this process's own memory (benchmarks, tests).
//! * [`peer_ring`]: a ring in a sealed memfd shared with one other process found over
//!   TCP (the ring broadcast's members on one node).
//! * [`copy`]: the copy used into and out of shared memory (not `memcpy`'s `rep movsb`).
//!
//! The fast path (`try_send`, `try_recv`, `has_incoming`) makes no syscalls, allocates
//! nothing and takes no locks.

pub mod callword;
pub mod cma;
pub mod collslot;
pub mod copy;
mod doorbell;
#[cfg(not(loom))]
pub mod local_ring;
#[cfg(not(loom))]
pub mod peer_ring;
pub(crate) mod ring;
mod segment;
mod wake_flag;

pub use segment::ShmSegment;

use doorbell::Doorbell;
use ring::{Consumer, Producer};
use std::cell::Cell;
use std::path::PathBuf;
use std::time::Duration;

/// Geometry of every ring in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShmConfig {
    /// Slots per ring (a power of two, at least 2).
    pub slots: usize,
    /// Bytes per slot, a multiple of 64; a slot holds a frame of up to `slot_size - 64`
    /// bytes (64 bytes are the slot's control line).
    pub slot_size: usize,
}

impl Default for ShmConfig {
    fn default() -> Self {
        ShmConfig {
            slots: 64,
            slot_size: 32 << 10,
        }
    }
}

/// Upper bound for the whole segment that [`ShmConfig::for_local_size`] aims at.
pub const SEGMENT_BUDGET: usize = 64 << 20;

impl ShmConfig {
    /// Geometry for `local_size` ranks: the default (64 x 32 KiB) while the
    /// `local_size * (local_size - 1)` rings fit in [`SEGMENT_BUDGET`] (less the
    /// collective slots, [`collslot::SLOT_BYTES`] per rank), then fewer slots
    /// (down to 8), then smaller slots (down to 1 KiB), then down to 2 slots of 256 bytes.
    /// Past about 150 local ranks even that exceeds the budget (the rings grow
    /// quadratically, the collective slots take 260 KiB per rank).
    pub fn for_local_size(local_size: usize) -> Self {
        let rings = local_size
            .saturating_mul(local_size.saturating_sub(1))
            .max(1);
        let coll = local_size.saturating_mul(collslot::SLOT_BYTES);
        let per_ring = SEGMENT_BUDGET.saturating_sub(coll) / rings;
        let mut c = ShmConfig::default();
        let fits = |c: &ShmConfig| c.slots * c.slot_size + 256 <= per_ring;
        while !fits(&c) && c.slots > 8 {
            c.slots /= 2;
        }
        while !fits(&c) && c.slot_size > 1024 {
            c.slot_size /= 2;
        }
        while !fits(&c) && c.slots > 2 {
            c.slots /= 2;
        }
        while !fits(&c) && c.slot_size > 256 {
            c.slot_size /= 2;
        }
        c
    }
}

/// Name of the node's segment in `/dev/shm`.
pub fn segment_name(job_id: u64, node_id: u32) -> String {
    format!("zerorank-{job_id:016x}-n{node_id}")
}

/// What went wrong with a shared-memory segment.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// The geometry is unusable.
    #[error("invalid shared-memory configuration: {0}")]
    Config(String),
    /// `open(O_CREAT|O_EXCL)` failed (for example the name exists: a stale or foreign job).
    #[error("cannot create shared-memory segment {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `fchmod` failed.
    #[error("cannot set mode 0600 on {path}: {source}")]
    Chmod {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `ftruncate` or `posix_fallocate` failed (for example /dev/shm is full: free space
    /// there or use fewer local ranks).
    #[error("cannot size shared-memory segment {path}: {source}")]
    Resize {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Opening an existing segment failed.
    #[error("cannot open shared-memory segment {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `mmap` failed.
    #[error("cannot map shared-memory segment {path}: {source}")]
    Map {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `unlink` failed with something other than ENOENT.
    #[error("cannot unlink shared-memory segment {path}: {source}")]
    Unlink {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file belongs to another user.
    #[error("shared-memory segment {path} is owned by uid {owner}, not by us (uid {uid})")]
    Owner { path: PathBuf, owner: u32, uid: u32 },
    /// The file is too small to hold a header.
    #[error("shared-memory segment {path} is truncated ({len} bytes)")]
    Truncated { path: PathBuf, len: u64 },
    /// Not a zerorank segment.
    #[error("{path} is not a zerorank segment (magic {found:#018x})")]
    BadMagic { path: PathBuf, found: u64 },
    /// Made by an incompatible build.
    #[error("shared-memory segment {path} has layout version {found}, this build uses {expected}")]
    Version {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// Made for another number of local ranks.
    #[error("shared-memory segment {path} was made for {found} local ranks, expected {expected}")]
    LocalSize {
        path: PathBuf,
        found: usize,
        expected: usize,
    },
    /// The header's geometry is invalid.
    #[error("shared-memory segment {path} has a corrupt geometry: {what}")]
    Geometry { path: PathBuf, what: String },
    /// The file size does not match the geometry.
    #[error(
        "shared-memory segment {path} is {len} bytes, header says {header}, geometry needs {expected}"
    )]
    SizeMismatch {
        path: PathBuf,
        len: u64,
        header: u64,
        expected: u64,
    },
}

/// Counters of one endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShmStats {
    /// Frames pushed into rings.
    pub frames_sent: u64,
    /// Frames taken out of rings.
    pub frames_received: u64,
    /// Bytes (headers + payloads) pushed into rings.
    pub bytes_sent: u64,
}

/// One rank's view of the segment: its outgoing producers, incoming consumers and doorbells.
/// Owned by one thread (it is `!Send` and `!Sync`).
pub struct ShmEndpoint {
    local_rank: usize,
    local_size: usize,
    max_frame: usize,
    /// Indexed by destination; `None` at `local_rank`.
    producers: Box<[Option<Producer>]>,
    /// Indexed by source; `None` at `local_rank`.
    consumers: Box<[Option<Consumer>]>,
    /// Doorbell of every local rank (index = local rank), inside `seg`.
    doorbells: Box<[*const Doorbell]>,
    stats: Cell<ShmStats>,
    /// Keeps the mapping alive; declared last so it is dropped after the views into it.
    seg: ShmSegment,
}

impl std::fmt::Debug for ShmEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmEndpoint")
            .field("local_rank", &self.local_rank)
            .field("local_size", &self.local_size)
            .field("segment", &self.seg)
            .finish()
    }
}

impl ShmSegment {
    /// This rank's endpoint. Each local rank must take exactly one endpoint (of its own
    /// rank) in the whole job: the rings are single-producer single-consumer. Panics if
    /// `local_rank` is out of range or its endpoint was already taken (from any mapping).
    pub fn endpoint(self, local_rank: usize) -> ShmEndpoint {
        let n = self.local_size();
        assert!(
            local_rank < n,
            "local rank {local_rank} out of range (local size {n})"
        );
        // SAFETY: the doorbell pointer lies inside the mapping owned by `self`.
        let claimed = unsafe { &*self.doorbell(local_rank) }.claim();
        assert!(
            claimed,
            "local rank {local_rank} already took its shared-memory endpoint"
        );
        let producers = (0..n)
            .map(|to| (to != local_rank).then(|| Producer::new(self.ring(local_rank, to))))
            .collect();
        let consumers = (0..n)
            .map(|from| (from != local_rank).then(|| Consumer::new(self.ring(from, local_rank))))
            .collect();
        let doorbells = (0..n).map(|r| self.doorbell(r)).collect();
        ShmEndpoint {
            local_rank,
            local_size: n,
            max_frame: self.config().slot_size - ring::SLOT_HDR,
            producers,
            consumers,
            doorbells,
            stats: Cell::new(ShmStats::default()),
            seg: self,
        }
    }
}

impl ShmEndpoint {
    /// This rank's index on the node.
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// Ranks on the node.
    pub fn local_size(&self) -> usize {
        self.local_size
    }

    /// The collective slot of local rank `local` (see [`collslot`]).
    pub fn coll_slot(&self, local: usize) -> collslot::CollSlot {
        self.seg.coll_slot(local)
    }

    /// Largest frame (header + payload bytes) one slot holds.
    #[inline]
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    #[inline]
    fn doorbell(&self, rank: usize) -> &Doorbell {
        // SAFETY: the pointer lies inside `self.seg`'s mapping, which lives as long as self;
        // a Doorbell is a single atomic, valid for any bit pattern.
        unsafe { &*self.doorbells[rank] }
    }

    #[inline]
    fn producer(&self, to: usize) -> &Producer {
        match self.producers.get(to) {
            Some(Some(p)) => p,
            _ => panic!(
                "no ring from local rank {} to {to} (local size {})",
                self.local_rank, self.local_size
            ),
        }
    }

    #[inline]
    fn consumer(&self, from: usize) -> &Consumer {
        match self.consumers.get(from) {
            Some(Some(c)) => c,
            _ => panic!(
                "no ring from local rank {from} to {} (local size {})",
                self.local_rank, self.local_size
            ),
        }
    }

    /// Push the frame `header ++ payload` toward local rank `to`, with `tag` (a word the
    /// receiver gets with the frame, not interpreted here); false if the ring is full.
    ///
    /// Panics if `to` is this rank or out of range, or the frame exceeds [`Self::max_frame`].
    #[inline]
    pub fn try_send(&self, to: usize, tag: u32, header: &[u8], payload: &[u8]) -> bool {
        self.try_send_with(to, tag, header, payload.len(), |dst| {
            copy::copy(dst, payload)
        })
    }

    /// Push `header` and `payload_len` bytes written in place by `fill` (which is called
    /// only if there is room) toward local rank `to`, with `tag`; false if the ring is full.
    #[inline]
    pub fn try_send_with(
        &self,
        to: usize,
        tag: u32,
        header: &[u8],
        payload_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> bool {
        let p = self.producer(to);
        if !p.try_push(tag, header, payload_len, fill) {
            return false;
        }
        self.doorbell(to).notify();
        let mut s = self.stats.get();
        s.frames_sent += 1;
        s.bytes_sent += (header.len() + payload_len) as u64;
        self.stats.set(s);
        true
    }

    /// If the ring from `from` holds a frame, call `f` with its tag (untrusted) and its
    /// bytes in place (16-byte aligned; length clamped to [`Self::max_frame`]), release the
    /// slot and return the result.
    #[inline]
    pub fn try_recv<R>(&self, from: usize, f: impl FnOnce(u32, &[u8]) -> R) -> Option<R> {
        let c = self.consumer(from);
        let r = c.try_pop(f)?;
        if c.crossed_half() {
            // Room appeared; wake the sender if it sleeps on a full ring (Dekker pair with
            // the `unblocked` re-check in `wait`).
            self.doorbell(from).notify();
        }
        let mut s = self.stats.get();
        s.frames_received += 1;
        self.stats.set(s);
        Some(r)
    }

    /// Whether any ring into this rank holds a frame.
    #[inline]
    pub fn has_incoming(&self) -> bool {
        self.consumers.iter().flatten().any(|c| c.has_data())
    }

    /// Block until a frame may have arrived on a ring into this rank, room may have appeared
    /// in an outgoing ring on which the last `try_send` failed (the receiver rings at least
    /// every half ring it drains), or `timeout` passes. Spurious returns are possible.
    pub fn wait(&self, timeout: Duration) {
        let bell = self.doorbell(self.local_rank);
        bell.prepare();
        if !self.has_incoming() && !self.producers.iter().flatten().any(|p| p.unblocked()) {
            bell.sleep(timeout);
        }
        bell.finish();
    }

    /// Counters of this endpoint.
    pub fn stats(&self) -> ShmStats {
        self.stats.get()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn name_format() {
        assert_eq!(segment_name(0xabc, 3), "zerorank-0000000000000abc-n3");
    }

    #[test]
    fn config_stays_bounded() {
        assert_eq!(ShmConfig::for_local_size(2), ShmConfig::default());
        assert_eq!(ShmConfig::for_local_size(4), ShmConfig::default());
        for n in [1, 2, 8, 16, 32, 64, 128, 150] {
            let c = ShmConfig::for_local_size(n);
            let l = segment::Layout::new(n, c.slots, c.slot_size).unwrap();
            assert!(
                l.total <= SEGMENT_BUDGET + (1 << 20),
                "{n} ranks: {c:?} -> {}",
                l.total
            );
        }
    }
}
