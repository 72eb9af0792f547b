//! Shared-memory links between members on one node: how the runtime moves a member's
//! frames to a peer through a [`peer_ring`](zerorank_transport::shm::peer_ring) instead
//! of the TCP connection, and the small control messages that set such a link up.
//!
//! Setting up, on the TCP connection the sender chose for a peer (already authenticated
//! by the job secret):
//!
//! 1. the sender makes a ring and sends [`Control::Offer`] (where the ring is, and the
//!    sender's [`node_key`](zerorank_transport::shm::peer_ring::node_key));
//! 2. the receiver, if its node key is the same, opens and maps the ring and answers
//!    [`Control::Accept`], or else [`Control::Refuse`] (another node, another user, a ring
//!    that does not match);
//! 3. after an accept, the sender writes its batches of frames into the ring;
//!    [`Control::Wake`] on the TCP connection wakes a receiver that went to sleep on an
//!    empty ring.
//!
//! The TCP connection stays: its failure is still the fast failure detector, and it
//! carries the wake-ups. Frames that went by TCP before the accept and frames that go by
//! the ring afterwards may arrive in any order relative to each other; the link layer
//! ([`link`](super::link)) orders and deduplicates them as it does any frames.
//!
//! A batch larger than a slot is cut into fragments: the first has the tag
//! [`FIRST`]` | length`, the others tag 0. The receiver gathers them into one aligned
//! buffer, so that the payloads are read in place from it as from a TCP frame.

use bytes::Bytes;
use zerorank_core::buffer::{BufferPool, RecvBuf};
use zerorank_core::frame::{FrameHeader, FrameKind, FrameView, HeaderBytes};
use zerorank_transport::shm::peer_ring::{Offer, RingReceiver, RingSender};

/// The communicator context of link-control frames (the frames' own is
/// [`runtime::CONTEXT`](super::runtime::CONTEXT)).
pub const CONTROL_CONTEXT: u32 = 0x00ab_ca58;

/// Slots of a link's ring and their size: 2 MiB per direction.
pub const RING_SLOTS: usize = 32;
pub const RING_SLOT_SIZE: usize = 64 << 10;

/// The tag bit of a batch's first fragment (the rest of the tag is the batch's length).
pub const FIRST: u32 = 1 << 31;
/// Largest batch a ring carries (the length must fit beside [`FIRST`]); the receiver
/// accepts no more than its own bound, the transport's largest frame.
pub const MAX_BATCH: usize = (FIRST - 1) as usize;

/// A link-control message, carried in the fields of a transport frame header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Offer { offer: Offer, node: String },
    Accept { nonce: u64 },
    Refuse { nonce: u64 },
    Wake,
}

const OFFER: i32 = 1;
const ACCEPT: i32 = 2;
const REFUSE: i32 = 3;
const WAKE: i32 = 4;

impl Control {
    /// The frame's header and payload, from member `src` to `dst` of job `job`.
    pub fn encode(&self, job: u64, src: u32, dst: u32) -> (HeaderBytes, Vec<u8>) {
        let mut h = FrameHeader {
            job,
            comm: CONTROL_CONTEXT,
            src,
            dst,
            kind: FrameKind::Eager,
            ..FrameHeader::default()
        };
        let mut payload = Vec::new();
        match self {
            Control::Offer { offer, node } => {
                h.tag = OFFER;
                h.pid = offer.pid;
                h.addr = offer.fd as u64;
                h.seq = offer.len;
                h.cookie = offer.nonce;
                payload = node.as_bytes().to_vec();
            }
            Control::Accept { nonce } => {
                h.tag = ACCEPT;
                h.cookie = *nonce;
            }
            Control::Refuse { nonce } => {
                h.tag = REFUSE;
                h.cookie = *nonce;
            }
            Control::Wake => h.tag = WAKE,
        }
        h.len = payload.len() as u64;
        let mut hb = HeaderBytes::default();
        h.encode(&mut hb);
        (hb, payload)
    }

    /// The control message of a validated header and its payload.
    pub fn decode(h: &FrameView, payload: &[u8]) -> Result<Control, String> {
        let nonce = h.cookie.to_native();
        Ok(match h.tag.to_native() {
            OFFER => {
                let fd = i32::try_from(h.addr.to_native())
                    .map_err(|_| format!("descriptor {} out of range", h.addr.to_native()))?;
                let node = std::str::from_utf8(payload)
                    .map_err(|_| "a node key that is not UTF-8".to_string())?
                    .to_string();
                Control::Offer {
                    offer: Offer {
                        pid: h.pid.to_native(),
                        fd,
                        len: h.seq.to_native(),
                        nonce,
                    },
                    node,
                }
            }
            ACCEPT => Control::Accept { nonce },
            REFUSE => Control::Refuse { nonce },
            WAKE => Control::Wake,
            t => return Err(format!("unknown link-control message {t}")),
        })
    }
}

/// The sending side of a ring link: one batch at a time, fragment by fragment.
pub struct RingOut {
    tx: RingSender,
}

impl RingOut {
    pub fn new(tx: RingSender) -> Self {
        assert!(tx.max_frame() > 0);
        RingOut { tx }
    }

    /// Push as much of the batch `parts` (of `total` bytes) from byte `*off` on as the
    /// ring takes, advancing `*off` (the batch is in once it reaches `total`). True when
    /// the receiver sleeps and must be sent [`Control::Wake`].
    pub fn push(&self, parts: &[&[u8]], total: usize, off: &mut usize) -> bool {
        assert!(total > 0 && total <= MAX_BATCH, "a batch of {total} bytes");
        let mut wake = false;
        while *off < total {
            let n = (total - *off).min(self.tx.max_frame());
            let tag = if *off == 0 { FIRST | total as u32 } else { 0 };
            let at = *off;
            if !self.tx.try_send(tag, n, |dst| gather(parts, at, dst)) {
                return wake;
            }
            *off += n;
            wake |= self.tx.take_wake();
        }
        wake
    }
}

/// Copy `dst.len()` bytes of the concatenation of `parts`, from byte `at`, into `dst`.
fn gather(parts: &[&[u8]], mut at: usize, dst: &mut [u8]) {
    let mut done = 0;
    for p in parts {
        if at >= p.len() {
            at -= p.len();
            continue;
        }
        let n = (p.len() - at).min(dst.len() - done);
        dst[done..done + n].copy_from_slice(&p[at..at + n]);
        done += n;
        at = 0;
        if done == dst.len() {
            return;
        }
    }
    assert_eq!(done, dst.len(), "the parts end before the fragment");
}

/// The receiving side of a ring link: fragments gathered into whole batches.
pub struct RingIn {
    rx: RingReceiver,
    pool: BufferPool,
    /// Largest batch accepted (lengths in the ring are untrusted).
    max: usize,
    /// The batch being gathered and how many of its bytes arrived.
    cur: Option<(RecvBuf, usize)>,
}

impl RingIn {
    pub fn new(rx: RingReceiver, pool: BufferPool, max: usize) -> Self {
        RingIn {
            rx,
            pool,
            max: max.min(MAX_BATCH),
            cur: None,
        }
    }

    /// The next whole batch, if one is in the ring (a part of one stays gathered). An
    /// error is a peer writing what no sender writes: the link is unusable.
    pub fn next_batch(&mut self) -> Result<Option<Bytes>, String> {
        let max = self.max;
        loop {
            let step = self.rx.try_recv(|tag, bytes| -> Result<(), String> {
                match (&mut self.cur, tag & FIRST != 0) {
                    (None, true) => {
                        let total = (tag & !FIRST) as usize;
                        if total == 0 || total > max || bytes.len() > total {
                            return Err(format!(
                                "a batch of {total} bytes starting with {}",
                                bytes.len()
                            ));
                        }
                        let mut buf = self.pool.get(total);
                        buf.as_mut_slice()[..bytes.len()].copy_from_slice(bytes);
                        self.cur = Some((buf, bytes.len()));
                        Ok(())
                    }
                    (Some((buf, got)), false) => {
                        let end = *got + bytes.len();
                        if end > buf.len() {
                            return Err(format!("{end} bytes of a {}-byte batch", buf.len()));
                        }
                        buf.as_mut_slice()[*got..end].copy_from_slice(bytes);
                        *got = end;
                        Ok(())
                    }
                    (None, false) => Err("a fragment with no batch begun".into()),
                    (Some(_), true) => Err("a batch begun inside another".into()),
                }
            });
            match step {
                None => return Ok(None),
                Some(Err(e)) => return Err(e),
                Some(Ok(())) => {}
            }
            if let Some((buf, got)) = &self.cur {
                if *got == buf.len() {
                    let (buf, _) = self.cur.take().expect("a batch");
                    return Ok(Some(Bytes::from_owner(buf.into_shared())));
                }
            }
        }
    }

    /// See [`RingReceiver::sleep_ready`].
    pub fn sleep_ready(&self) -> bool {
        self.rx.sleep_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerorank_transport::shm::peer_ring::OfferedRing;

    fn pair(slots: usize, slot_size: usize) -> (RingOut, RingIn) {
        let offered = OfferedRing::create(slots, slot_size).unwrap();
        let rx = RingReceiver::open(&offered.offer()).unwrap();
        (
            RingOut::new(offered.into_sender()),
            RingIn::new(rx, BufferPool::new(), 1 << 20),
        )
    }

    #[test]
    fn batches_larger_than_the_ring_arrive_whole_and_aligned() {
        let (out, mut inp) = pair(4, 256);
        let a: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let b: Vec<u8> = (0..77u32).map(|i| (i * 3) as u8).collect();
        let parts: Vec<&[u8]> = vec![&a, &[], &b];
        let total = a.len() + b.len();
        let mut off = 0;
        let mut got = None;
        let mut rounds = 0;
        while got.is_none() {
            rounds += 1;
            assert!(rounds < 100, "no progress");
            out.push(&parts, total, &mut off);
            got = inp.next_batch().unwrap();
        }
        let got = got.unwrap();
        assert_eq!(got.as_ptr() as usize % 64, 0);
        let mut want = a.clone();
        want.extend(&b);
        assert_eq!(&got[..], &want[..]);
        assert!(
            rounds > 1,
            "a 1077-byte batch does not fit 4 slots of 240 bytes"
        );
        assert_eq!(inp.next_batch().unwrap(), None);
    }

    #[test]
    fn a_ring_written_out_of_protocol_is_an_error() {
        let offered = OfferedRing::create(4, 256).unwrap();
        let rx = RingReceiver::open(&offered.offer()).unwrap();
        let tx = offered.into_sender();
        let mut inp = RingIn::new(rx, BufferPool::new(), 1 << 20);
        assert!(tx.try_send(0, 4, |b| b.fill(1)));
        assert!(inp.next_batch().unwrap_err().contains("no batch begun"));
        assert!(tx.try_send(FIRST | 3, 4, |b| b.fill(1)));
        assert!(inp.next_batch().is_err(), "longer than announced");
        assert!(tx.try_send(FIRST | ((1 << 20) + 1), 4, |b| b.fill(1)));
        assert!(inp.next_batch().is_err(), "too large");
    }

    #[test]
    fn control_messages_survive_their_header() {
        let offer = Offer {
            pid: 42,
            fd: 7,
            len: 1 << 21,
            nonce: 0xfeed,
        };
        for c in [
            Control::Offer {
                offer,
                node: "boot/1:2/3:4".into(),
            },
            Control::Accept { nonce: 9 },
            Control::Refuse { nonce: 9 },
            Control::Wake,
        ] {
            let (hb, payload) = c.encode(5, 1, 2);
            let mut bytes = rkyv::util::AlignedVec::<64>::new();
            bytes.extend_from_slice(hb.as_slice());
            let h = zerorank_core::frame::access(&bytes).unwrap();
            assert_eq!(h.comm.to_native(), CONTROL_CONTEXT);
            assert_eq!(h.payload_len(), payload.len());
            assert_eq!(Control::decode(h, &payload), Ok(c));
        }
    }
}
