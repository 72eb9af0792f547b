//! The per-node segment in `/dev/shm`: creation, attachment, validation, unlinking, and the
//! layout of header, doorbells and rings inside it.
//!
//! ```text
//! offset 0        Header (magic, version, geometry, total length), one page
//! DOORBELL_OFF    local_size x CachePadded<Doorbell>
//! rings_off       local_size * (local_size - 1) rings, ring (i -> j) at
//!                 rings_off + index(i, j) * ring_stride; each ring is RingCtl + slots
//! coll_off        local_size collective slots (collslot::SLOT_BYTES each): slot i is
//!                 where local rank i publishes its operand of an on-node collective
//! ```

use super::doorbell::Doorbell;
use super::ring::{RingRef, SLOT_HDR};
use super::{ShmConfig, ShmError};
use crossbeam_utils::CachePadded;
use memmap2::{MmapMut, MmapOptions};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// "ZRSHMSEG" little-endian.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"ZRSHMSEG");
/// Layout version; bump on any change of the segment layout or ring protocol.
pub(crate) const VERSION: u32 = 2;
const HEADER_BYTES: usize = 4096;
const DOORBELL_OFF: usize = HEADER_BYTES;
/// Largest local size accepted (sanity bound on untrusted headers).
pub(crate) const MAX_LOCAL_SIZE: usize = 4096;
pub(crate) const MAX_SLOTS: usize = 1 << 16;
pub(crate) const MAX_SLOT_SIZE: usize = 1 << 26;
/// Smallest slot: the control words plus one 64-byte frame header, rounded to lines.
pub(crate) const MIN_SLOT_SIZE: usize = (SLOT_HDR + 64 + 63) & !63;

#[repr(C)]
struct Header {
    magic: AtomicU64,
    version: u32,
    local_size: u32,
    slots: u32,
    slot_size: u32,
    total_len: u64,
    creator_pid: u32,
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_BYTES);

fn round_up(x: usize, to: usize) -> Option<usize> {
    Some(x.checked_add(to - 1)? / to * to)
}

/// Offsets of everything in a segment of a given geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub local_size: usize,
    pub slots: usize,
    pub slot_size: usize,
    pub rings_off: usize,
    pub ring_stride: usize,
    pub coll_off: usize,
    pub total: usize,
}

impl Layout {
    /// The layout, or a description of what is wrong with the geometry.
    pub(crate) fn new(local_size: usize, slots: usize, slot_size: usize) -> Result<Self, String> {
        if local_size == 0 || local_size > MAX_LOCAL_SIZE {
            return Err(format!(
                "local size {local_size} not in 1..={MAX_LOCAL_SIZE}"
            ));
        }
        if !slots.is_power_of_two() || !(2..=MAX_SLOTS).contains(&slots) {
            return Err(format!(
                "slots {slots} is not a power of two in 2..={MAX_SLOTS}"
            ));
        }
        if slot_size & 63 != 0 || !(MIN_SLOT_SIZE..=MAX_SLOT_SIZE).contains(&slot_size) {
            return Err(format!(
                "slot size {slot_size} is not a multiple of 64 in {MIN_SLOT_SIZE}..={MAX_SLOT_SIZE}"
            ));
        }
        let overflow =
            || format!("segment size overflows ({local_size} ranks, {slots} x {slot_size})");
        let doorbells = local_size * std::mem::size_of::<CachePadded<Doorbell>>();
        let rings_off = round_up(DOORBELL_OFF + doorbells, 4096).ok_or_else(overflow)?;
        let ring_bytes = RingRef::bytes_for(slots, slot_size).ok_or_else(overflow)?;
        let ring_stride = round_up(ring_bytes, 128).ok_or_else(overflow)?;
        let rings = local_size * (local_size - 1);
        let coll_off = rings
            .checked_mul(ring_stride)
            .and_then(|r| r.checked_add(rings_off))
            .and_then(|t| round_up(t, 4096))
            .ok_or_else(overflow)?;
        let total = local_size
            .checked_mul(super::collslot::SLOT_BYTES)
            .and_then(|c| c.checked_add(coll_off))
            .ok_or_else(overflow)?;
        Ok(Layout {
            local_size,
            slots,
            slot_size,
            rings_off,
            ring_stride,
            coll_off,
            total,
        })
    }

    /// Offset of the ring carrying frames from local rank `from` to `to` (`from != to`).
    pub(crate) fn ring_off(&self, from: usize, to: usize) -> usize {
        debug_assert!(from != to && from < self.local_size && to < self.local_size);
        let idx = from * (self.local_size - 1) + if to > from { to - 1 } else { to };
        self.rings_off + idx * self.ring_stride
    }

    /// Offset of local rank `rank`'s collective slot.
    pub(crate) fn coll_slot_off(&self, rank: usize) -> usize {
        debug_assert!(rank < self.local_size);
        self.coll_off + rank * super::collslot::SLOT_BYTES
    }

    pub(crate) fn doorbell_off(&self, rank: usize) -> usize {
        DOORBELL_OFF + rank * std::mem::size_of::<CachePadded<Doorbell>>()
    }
}

/// A mapped per-node segment. See the module docs of [`crate::shm`].
pub struct ShmSegment {
    pub(crate) map: MmapMut,
    pub(crate) layout: Layout,
    path: PathBuf,
}

impl std::fmt::Debug for ShmSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmSegment")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .finish()
    }
}

fn path_of(job_id: u64, node_id: u32) -> PathBuf {
    PathBuf::from("/dev/shm").join(super::segment_name(job_id, node_id))
}

impl ShmSegment {
    /// Create the segment (local rank 0). See [`crate::shm`] for the contract.
    pub fn create(
        job_id: u64,
        node_id: u32,
        local_size: usize,
        cfg: ShmConfig,
    ) -> Result<Self, ShmError> {
        let layout = Layout::new(local_size, cfg.slots, cfg.slot_size).map_err(ShmError::Config)?;
        let path = path_of(job_id, node_id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|source| ShmError::Create {
                path: path.clone(),
                source,
            })?;
        match Self::init(file, &path, layout) {
            Ok(map) => Ok(ShmSegment { map, layout, path }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    fn init(file: File, path: &std::path::Path, layout: Layout) -> Result<MmapMut, ShmError> {
        // Explicit fchmod: the creation mode was filtered by the umask.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|source| ShmError::Chmod {
                path: path.to_owned(),
                source,
            })?;
        file.set_len(layout.total as u64)
            .map_err(|source| ShmError::Resize {
                path: path.to_owned(),
                source,
            })?;
        // Reserve the tmpfs pages now: a full /dev/shm must be an error here, not a SIGBUS
        // on first touch later.
        // SAFETY: posix_fallocate on an fd we own, with an in-range length.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, layout.total as libc::off_t) };
        if rc != 0 {
            return Err(ShmError::Resize {
                path: path.to_owned(),
                source: std::io::Error::from_raw_os_error(rc),
            });
        }
        // SAFETY: the file was just created by us (O_EXCL, mode 0600) and sized; other
        // processes of this job map it too, which is the point: everything in it is
        // accessed through atomics or the ring protocol, never as plain Rust references to
        // non-atomic data that another process could change.
        let mut map = unsafe {
            MmapOptions::new()
                .len(layout.total)
                .populate()
                .map_mut(&file)
        }
        .map_err(|source| ShmError::Map {
            path: path.to_owned(),
            source,
        })?;
        // The file is zero-filled by ftruncate; rings and doorbells start zeroed.
        let base = map.as_mut_ptr();
        // SAFETY: the mapping is at least HEADER_BYTES long and page aligned; nobody else
        // reads the header before the magic is published below.
        let hdr = unsafe { &mut *(base as *mut Header) };
        hdr.version = VERSION;
        hdr.local_size = layout.local_size as u32;
        hdr.slots = layout.slots as u32;
        hdr.slot_size = layout.slot_size as u32;
        hdr.total_len = layout.total as u64;
        // SAFETY: getpid has no preconditions.
        hdr.creator_pid = unsafe { libc::getpid() } as u32;
        hdr.magic.store(MAGIC, Ordering::Release);
        Ok(map)
    }

    /// Attach to the segment created by local rank 0 and validate it.
    pub fn attach(job_id: u64, node_id: u32, local_size: usize) -> Result<Self, ShmError> {
        let path = path_of(job_id, node_id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|source| ShmError::Open {
                path: path.clone(),
                source,
            })?;
        let meta = file.metadata().map_err(|source| ShmError::Open {
            path: path.clone(),
            source,
        })?;
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        if meta.uid() != uid {
            return Err(ShmError::Owner {
                path,
                owner: meta.uid(),
                uid,
            });
        }
        let len = meta.len();
        if len < HEADER_BYTES as u64 || len > isize::MAX as u64 {
            return Err(ShmError::Truncated { path, len });
        }
        // SAFETY: mapping a regular file of `len` bytes we own; all shared state in it is
        // accessed through atomics or the ring protocol. If another process truncates the
        // file later we could fault; the file is private to this job (mode 0600, our uid).
        let map = unsafe {
            MmapOptions::new()
                .len(len as usize)
                .populate()
                .map_mut(&file)
        }
        .map_err(|source| ShmError::Map {
            path: path.clone(),
            source,
        })?;
        // SAFETY: len >= HEADER_BYTES, page-aligned base, Header is plain integers and an
        // atomic, valid for any bit pattern.
        let hdr = unsafe { &*(map.as_ptr() as *const Header) };
        let magic = hdr.magic.load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(ShmError::BadMagic { path, found: magic });
        }
        if hdr.version != VERSION {
            return Err(ShmError::Version {
                path,
                found: hdr.version,
                expected: VERSION,
            });
        }
        if hdr.local_size as usize != local_size {
            return Err(ShmError::LocalSize {
                path,
                found: hdr.local_size as usize,
                expected: local_size,
            });
        }
        let layout = Layout::new(local_size, hdr.slots as usize, hdr.slot_size as usize).map_err(
            |what| ShmError::Geometry {
                path: path.clone(),
                what,
            },
        )?;
        if hdr.total_len != layout.total as u64 || len != layout.total as u64 {
            return Err(ShmError::SizeMismatch {
                path,
                len,
                header: hdr.total_len,
                expected: layout.total as u64,
            });
        }
        Ok(ShmSegment { map, layout, path })
    }

    /// Remove the segment's name; ENOENT is fine (already removed).
    pub fn unlink(job_id: u64, node_id: u32) -> Result<(), ShmError> {
        let path = path_of(job_id, node_id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ShmError::Unlink { path, source }),
        }
    }

    /// Ranks on this node.
    pub fn local_size(&self) -> usize {
        self.layout.local_size
    }

    /// The geometry this segment was made with.
    pub fn config(&self) -> ShmConfig {
        ShmConfig {
            slots: self.layout.slots,
            slot_size: self.layout.slot_size,
        }
    }

    /// Path of the segment in `/dev/shm` (it may already be unlinked).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The ring from `from` to `to`.
    pub(crate) fn ring(&self, from: usize, to: usize) -> RingRef {
        let off = self.layout.ring_off(from, to);
        debug_assert!(off + self.layout.ring_stride <= self.map.len());
        // SAFETY: the layout was validated against the mapping length, so the ring lies
        // within the mapping; `off` is a multiple of 128 from a page-aligned base; the map
        // outlives the view because the endpoint owns both.
        unsafe {
            RingRef::new(
                self.map.as_ptr().add(off) as *mut u8,
                self.layout.slots,
                self.layout.slot_size,
            )
        }
    }

    /// The collective slot of local rank `rank`.
    pub(crate) fn coll_slot(&self, rank: usize) -> super::collslot::CollSlot {
        assert!(rank < self.layout.local_size);
        let off = self.layout.coll_slot_off(rank);
        assert!(off + super::collslot::SLOT_BYTES <= self.map.len());
        // SAFETY: the slot lies inside the validated mapping (checked above), page aligned
        // plus a multiple of SLOT_BYTES; the endpoint that holds the view owns the map.
        unsafe { super::collslot::CollSlot::new(self.map.as_ptr().add(off) as *mut u8) }
    }

    /// The doorbell of `rank`.
    pub(crate) fn doorbell(&self, rank: usize) -> *const Doorbell {
        assert!(rank < self.layout.local_size);
        // SAFETY: doorbell offsets lie below rings_off, inside the validated mapping.
        unsafe { self.map.as_ptr().add(self.layout.doorbell_off(rank)) as *const Doorbell }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn layout_is_disjoint() {
        let l = Layout::new(4, 8, 256).unwrap();
        let mut offs: Vec<usize> = (0..4)
            .flat_map(|i| (0..4).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| l.ring_off(i, j))
            .collect();
        offs.sort();
        offs.dedup();
        assert_eq!(offs.len(), 12);
        assert!(offs.last().unwrap() + l.ring_stride <= l.total);
        assert!(l.doorbell_off(3) + 128 <= l.rings_off);
        assert!(offs.last().unwrap() + l.ring_stride <= l.coll_off);
        assert_eq!(
            l.coll_slot_off(3) + super::super::collslot::SLOT_BYTES,
            l.total
        );
        assert!(offs.iter().all(|o| o % 128 == 0));
        assert!(Layout::new(1, 8, 256).is_ok());
        assert!(Layout::new(0, 8, 256).is_err());
        assert!(Layout::new(2, 3, 256).is_err());
        assert!(Layout::new(2, 8, 100).is_err());
        assert!(Layout::new(2, 8, 64).is_err());
    }
}
