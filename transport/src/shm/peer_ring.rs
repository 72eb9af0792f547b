//! A `ring` shared with one other process of the job, for a link that
//! is not one of the node segment's rank pairs (the ring broadcast's members, which
//! find each other over TCP, not through the bootstrap).
//!
//! The sender creates the ring in an anonymous memfd (mode 0600, sized, then sealed
//! against shrinking and growing) and tells the receiver over the already
//! authenticated TCP connection where it is: an [`Offer`] of its pid, the descriptor's
//! number, the length and a random nonce. The receiver opens `/proc/<pid>/fd/<fd>`,
//! which the kernel allows only to a process of the same user that may trace the
//! sender, checks the length, the seals, the geometry and the nonce written in the
//! header, and maps it. Nothing has a name in `/dev/shm`, so nothing is left behind by
//! any crash: the memory goes when the last of the two processes unmaps it or dies.
//!
//! ```text
//! offset 0    Header: magic, nonce, slots, slot size (written before the offer)
//! offset 128  the receiver's WakeFlag (own cache line)
//! offset 256  the ring: RingCtl + slots
//! ```
//!
//! The receiver treats everything in the memory as untrusted: the geometry is read
//! once and checked against the mapping, and the ring clamps lengths. The seals are
//! what keep a peer from truncating the memfd under the receiver's mapping (which
//! would be a SIGBUS instead of an error).
//!
//! Waking: the ring has no doorbell of its own. A receiver that finds the ring empty
//! calls [`RingReceiver::sleep_ready`] and, if it says so, waits for a wake-up through
//! its caller's other channel (the TCP connection); a sender calls
//! [`RingSender::take_wake`] after each frame and sends that wake-up when it says so
//! (`wake_flag` has the handshake). A busy receiver costs its
//! sender no system call at all.

use super::ring::{Consumer, Producer, RingRef};
use super::wake_flag::WakeFlag;
use memmap2::{MmapMut, MmapOptions};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

/// "ZRPEERRG" little-endian.
const MAGIC: u64 = u64::from_le_bytes(*b"ZRPEERRG");
const HEADER_BYTES: usize = 256;
const WAKE_OFF: usize = 128;
const MAX_SLOTS: u64 = 1 << 12;
const MAX_SLOT_SIZE: u64 = 1 << 24;
const MIN_SLOT_SIZE: u64 = 128;

#[repr(C)]
struct Header {
    magic: AtomicU64,
    nonce: AtomicU64,
    slots: AtomicU64,
    slot_size: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Header>() <= WAKE_OFF);

/// Where a sender's ring is, for its receiver (sent over the authenticated connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub pid: u32,
    pub fd: i32,
    pub len: u64,
    pub nonce: u64,
}

/// Why a ring could not be made or opened.
#[derive(Debug, thiserror::Error)]
pub enum PeerRingError {
    #[error("invalid ring geometry: {0}")]
    Geometry(String),
    #[error("cannot create the ring's memfd: {0}")]
    Create(std::io::Error),
    #[error("cannot open the peer's ring {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot map the ring: {0}")]
    Map(std::io::Error),
    /// The memory opened is not the ring offered (another process's descriptor, a
    /// recycled pid, a peer that lies).
    #[error("the peer's ring does not match its offer: {0}")]
    Mismatch(String),
}

/// The memory of one ring and its geometry.
struct Mapped {
    /// Declared first: the views into it must not outlive it (see the users).
    map: MmapMut,
    ring: RingRef,
}

impl Mapped {
    fn header(&self) -> &Header {
        // SAFETY: the mapping is at least HEADER_BYTES long, page aligned, and the
        // header is only atomics (any bit pattern is valid).
        unsafe { &*(self.map.as_ptr() as *const Header) }
    }

    fn wake(&self) -> &WakeFlag {
        // SAFETY: WAKE_OFF + 4 <= HEADER_BYTES bytes are mapped; the flag is one atomic
        // word (any bit pattern is valid), 4-byte aligned at a 128-byte offset.
        unsafe { &*(self.map.as_ptr().add(WAKE_OFF) as *const WakeFlag) }
    }
}

/// Bytes of the memfd for a geometry.
fn total_len(slots: u64, slot_size: u64) -> Option<u64> {
    let ring = RingRef::bytes_for(slots as usize, slot_size as usize)?;
    (HEADER_BYTES as u64).checked_add(ring as u64)
}

fn check_geometry(slots: u64, slot_size: u64) -> Result<u64, PeerRingError> {
    if !(2..=MAX_SLOTS).contains(&slots) || !slots.is_power_of_two() {
        return Err(PeerRingError::Geometry(format!(
            "{slots} slots (a power of two from 2 to {MAX_SLOTS})"
        )));
    }
    if !(MIN_SLOT_SIZE..=MAX_SLOT_SIZE).contains(&slot_size) || !slot_size.is_multiple_of(64) {
        return Err(PeerRingError::Geometry(format!(
            "{slot_size}-byte slots (a multiple of 64 from {MIN_SLOT_SIZE} to {MAX_SLOT_SIZE})"
        )));
    }
    total_len(slots, slot_size).ok_or_else(|| PeerRingError::Geometry("too large".into()))
}

/// A sender's ring, offered and not yet accepted: nothing is written to it until the
/// receiver says it has mapped it ([`OfferedRing::into_sender`]).
pub struct OfferedRing {
    mem: Mapped,
    /// Kept open for the sender's lifetime: `/proc/<pid>/fd/<fd>` names it.
    fd: OwnedFd,
    offer: Offer,
}

impl OfferedRing {
    /// A new zeroed ring of `slots` slots of `slot_size` bytes in a sealed memfd.
    pub fn create(slots: usize, slot_size: usize) -> Result<OfferedRing, PeerRingError> {
        let (slots, slot_size) = (slots as u64, slot_size as u64);
        let len = check_geometry(slots, slot_size)?;
        let fd = nix::sys::memfd::memfd_create(
            c"zerorank-ring",
            nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC
                | nix::sys::memfd::MemFdCreateFlag::MFD_ALLOW_SEALING,
        )
        .map_err(|e| PeerRingError::Create(e.into()))?;
        let file = File::from(fd);
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(PeerRingError::Create)?;
        file.set_len(len).map_err(PeerRingError::Create)?;
        // Reserve the pages now: no memory must be an error here, not a SIGBUS later.
        // SAFETY: posix_fallocate on a descriptor we own, with an in-range length.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
        if rc != 0 {
            return Err(PeerRingError::Create(std::io::Error::from_raw_os_error(rc)));
        }
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: fcntl(F_ADD_SEALS) on a descriptor we own.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(PeerRingError::Create(std::io::Error::last_os_error()));
        }
        let mem = map(&file, len, slots, slot_size)?;
        let nonce = rand::random::<u64>() | 1;
        let h = mem.header();
        h.nonce.store(nonce, Ordering::Relaxed);
        h.slots.store(slots, Ordering::Relaxed);
        h.slot_size.store(slot_size, Ordering::Relaxed);
        h.magic.store(MAGIC, Ordering::Release);
        let offer = Offer {
            pid: std::process::id(),
            fd: file.as_raw_fd(),
            len,
            nonce,
        };
        Ok(OfferedRing {
            mem,
            fd: file.into(),
            offer,
        })
    }

    pub fn offer(&self) -> Offer {
        self.offer
    }

    /// The receiver has mapped the ring: start sending.
    pub fn into_sender(self) -> RingSender {
        RingSender {
            producer: Producer::new(self.mem.ring),
            max_frame: self.mem.ring.max_frame(),
            mem: self.mem,
            _fd: self.fd,
        }
    }
}

/// Map `len` bytes of `file` and make the ring's view.
fn map(file: &File, len: u64, slots: u64, slot_size: u64) -> Result<Mapped, PeerRingError> {
    let len = usize::try_from(len).map_err(|_| PeerRingError::Geometry("too large".into()))?;
    // SAFETY: the file is a sealed memfd of at least `len` bytes (it cannot shrink under
    // the mapping); the other process maps it too, which is the point, and everything in
    // it is read through atomics or the ring protocol, never as plain references to data
    // the other side may change.
    let mut map =
        unsafe { MmapOptions::new().len(len).map_mut(file) }.map_err(PeerRingError::Map)?;
    // SAFETY: the mapping is page aligned and `len` = HEADER_BYTES + bytes_for(slots,
    // slot_size) (checked by the callers), so the ring's region starts 128-byte aligned
    // at HEADER_BYTES and is fully mapped for as long as `map`, which `Mapped` keeps
    // beside the view; the geometry passed `check_geometry`; zeroed memory is a valid
    // empty ring; the two processes take one end each (sender: producer, receiver:
    // consumer).
    let ring = unsafe {
        RingRef::new(
            map.as_mut_ptr().add(HEADER_BYTES),
            slots as usize,
            slot_size as usize,
        )
    };
    Ok(Mapped { map, ring })
}

/// The producing end of a peer ring.
pub struct RingSender {
    /// Declared before `mem`: the view goes first.
    producer: Producer,
    max_frame: usize,
    mem: Mapped,
    _fd: OwnedFd,
}

impl RingSender {
    /// Largest frame one slot holds.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Append a frame of `len` bytes written by `fill`, with `tag`; false (and `fill` is
    /// not called) when the ring is full.
    ///
    /// # Panics
    /// When `len` is above [`RingSender::max_frame`].
    #[inline]
    pub fn try_send(&self, tag: u32, len: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        self.producer.try_push(tag, &[], len, fill)
    }

    /// After a frame: whether the receiver sleeps and must be woken now (true once per
    /// sleep of the receiver).
    #[inline]
    pub fn take_wake(&self) -> bool {
        self.mem.wake().take_wake()
    }
}

/// The consuming end of a peer ring.
pub struct RingReceiver {
    /// Declared before `mem`: the view goes first.
    consumer: Consumer,
    mem: Mapped,
}

impl RingReceiver {
    /// Open and map the ring a peer offered, and check it is that ring.
    pub fn open(offer: &Offer) -> Result<RingReceiver, PeerRingError> {
        let path = format!("/proc/{}/fd/{}", offer.pid, offer.fd);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| PeerRingError::Open {
                path: path.clone(),
                source,
            })?;
        let size = file.metadata().map_err(PeerRingError::Map)?.len();
        if size != offer.len || size < HEADER_BYTES as u64 {
            return Err(PeerRingError::Mismatch(format!(
                "{size} bytes, {} offered",
                offer.len
            )));
        }
        // SAFETY: fcntl(F_GET_SEALS) on a descriptor we own.
        let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
        let need = libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
        if seals < 0 || seals & need != need {
            return Err(PeerRingError::Mismatch(
                "not sealed against shrinking".into(),
            ));
        }
        // Read the geometry once, from a header-only mapping, then map the whole ring
        // with it (a peer changing the header later changes nothing here).
        // SAFETY: HEADER_BYTES of a file of at least that size; read-only, atomics only.
        let head = unsafe { MmapOptions::new().len(HEADER_BYTES).map(&file) }
            .map_err(PeerRingError::Map)?;
        // SAFETY: as in `Mapped::header`.
        let h = unsafe { &*(head.as_ptr() as *const Header) };
        if h.magic.load(Ordering::Acquire) != MAGIC
            || h.nonce.load(Ordering::Relaxed) != offer.nonce
        {
            return Err(PeerRingError::Mismatch("magic or nonce".into()));
        }
        let (slots, slot_size) = (
            h.slots.load(Ordering::Relaxed),
            h.slot_size.load(Ordering::Relaxed),
        );
        drop(head);
        let len =
            check_geometry(slots, slot_size).map_err(|e| PeerRingError::Mismatch(e.to_string()))?;
        if len != size {
            return Err(PeerRingError::Mismatch(format!(
                "geometry of {len} bytes in a memfd of {size}"
            )));
        }
        let mem = map(&file, len, slots, slot_size)?;
        // The mapping keeps the memory; the descriptor can go.
        drop(file);
        Ok(RingReceiver {
            consumer: Consumer::new(mem.ring),
            mem,
        })
    }

    /// If a frame is waiting, call `f` with its tag and bytes (in place, untrusted) and
    /// free its slot.
    #[inline]
    pub fn try_recv<R>(&self, f: impl FnOnce(u32, &[u8]) -> R) -> Option<R> {
        self.consumer.try_pop(f)
    }

    /// The ring is empty: announce a sleep and look once more. True: sleep until the
    /// sender wakes you. False: a frame arrived meanwhile, go on reading.
    #[inline]
    pub fn sleep_ready(&self) -> bool {
        let w = self.mem.wake();
        w.announce_sleep();
        if self.consumer.has_data() {
            w.cancel_sleep();
            false
        } else {
            true
        }
    }
}

/// What identifies this machine and its namespaces, for deciding whether a peer may
/// share memory with this process: the kernel's boot id, and the network and pid
/// namespaces (members in two network namespaces are two emulated nodes, and a pid from
/// another pid namespace means nothing here).
pub fn node_key() -> String {
    use std::os::unix::fs::MetadataExt;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let ns = |n: &str| {
        std::fs::metadata(format!("/proc/self/ns/{n}"))
            .map(|m| format!("{}:{}", m.dev(), m.ino()))
            .unwrap_or_default()
    };
    format!("{}/{}/{}", boot.trim(), ns("net"), ns("pid"))
}

#[cfg(test)]
mod tests {
    use super::super::ring::SLOT_HDR;
    use super::*;

    #[test]
    fn a_ring_offered_in_one_place_is_read_through_proc_in_another() {
        let offered = OfferedRing::create(4, 256).expect("create");
        let offer = offered.offer();
        let rx = RingReceiver::open(&offer).expect("open through /proc");
        let tx = offered.into_sender();
        assert_eq!(tx.max_frame(), 256 - SLOT_HDR);
        assert!(rx.sleep_ready(), "empty: sleep");
        assert!(tx.try_send(7, 3, |b| b.copy_from_slice(b"abc")));
        assert!(tx.take_wake(), "the receiver announced a sleep: wake it");
        assert!(!tx.take_wake(), "once per sleep");
        assert_eq!(
            rx.try_recv(|t, b| (t, b.to_vec())),
            Some((7, b"abc".to_vec()))
        );
        for i in 0..4u8 {
            assert!(tx.try_send(u32::from(i), 1, |b| b[0] = i));
        }
        assert!(!tx.try_send(9, 1, |_| panic!("full")), "four slots");
        assert!(!rx.sleep_ready(), "frames waiting: no sleep");
        assert!(!tx.take_wake(), "the sleep was cancelled");
        for i in 0..4u8 {
            assert_eq!(rx.try_recv(|t, b| (t, b[0])), Some((u32::from(i), i)));
        }
        assert_eq!(rx.try_recv(|_, _| ()), None);
    }

    #[test]
    fn the_memfd_is_private_and_sealed() {
        let offered = OfferedRing::create(2, 128).unwrap();
        let o = offered.offer();
        let path = format!("/proc/self/fd/{}", o.fd);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        assert!(f.set_len(64).is_err(), "sealed against shrinking");
    }

    #[test]
    fn an_offer_that_does_not_match_is_refused() {
        let offered = OfferedRing::create(2, 128).unwrap();
        let o = offered.offer();
        let wrong_nonce = Offer {
            nonce: o.nonce ^ 2,
            ..o
        };
        assert!(matches!(
            RingReceiver::open(&wrong_nonce),
            Err(PeerRingError::Mismatch(_))
        ));
        let wrong_len = Offer {
            len: o.len + 4096,
            ..o
        };
        assert!(matches!(
            RingReceiver::open(&wrong_len),
            Err(PeerRingError::Mismatch(_))
        ));
        let no_such = Offer { fd: 100_000, ..o };
        assert!(matches!(
            RingReceiver::open(&no_such),
            Err(PeerRingError::Open { .. })
        ));
        // A memfd that is not sealed (any other descriptor of this process).
        let plain = tempfile::tempfile().unwrap();
        plain.set_len(o.len).unwrap();
        let unsealed = Offer {
            fd: plain.as_raw_fd(),
            ..o
        };
        assert!(matches!(
            RingReceiver::open(&unsealed),
            Err(PeerRingError::Mismatch(_))
        ));
        assert!(matches!(
            OfferedRing::create(3, 128),
            Err(PeerRingError::Geometry(_))
        ));
    }

    #[test]
    fn the_node_key_names_boot_and_namespaces() {
        let k = node_key();
        assert_eq!(k, node_key());
        assert_eq!(k.split('/').count(), 3);
        assert!(k.split('/').all(|p| !p.is_empty()), "{k}");
    }
}
