//! The compact header of an eager message between two ranks of one node.
//!
//! A shared-memory ring slot starts with a 16-byte flag and length, and the frame follows
//! in the same cache line (`transport::shm::ring`). The full
//! [`crate::frame::FrameHeader`] is a cache line by itself, so a small message
//! framed with it spans two more lines, and the receiver pays for those lines one after
//! the other: it sees the flag, then it misses on the header. A [`SmallHeader`] leaves out
//! what the ring already says (job, source and destination: each pair of ranks of a job
//! has its own ring) and what an eager message does not use (the rendezvous fields), so a
//! header and up to [`FIRST_LINE_PAYLOAD`] bytes of payload share the line of the flag.
//!
//! Like the full header it is an rkyv 0.8 archive read in place and validated before use.

use crate::frame::{FrameHeader, FrameKind, HEADER_ALIGN};
use rkyv::{rancor, Archive, Serialize};
use thiserror::Error;

/// Header of a small eager frame; the payload follows it.
#[derive(Archive, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct SmallHeader {
    /// Communicator context id.
    pub comm: u32,
    /// Message tag.
    pub tag: i32,
    /// Per (source, destination) sequence number, shared with full frames.
    pub seq: u64,
    /// Payload bytes that follow the header.
    pub len: u32,
}

/// Size in bytes of an archived [`SmallHeader`].
pub const SMALL_HEADER_LEN: usize = std::mem::size_of::<ArchivedSmallHeader>();

/// Payload bytes that share the cache line of a ring slot's flag (64 bytes less the flag
/// and length, less the header).
pub const FIRST_LINE_PAYLOAD: usize = 64 - 16 - SMALL_HEADER_LEN;

const OFF_COMM: usize = std::mem::offset_of!(ArchivedSmallHeader, comm);
const OFF_TAG: usize = std::mem::offset_of!(ArchivedSmallHeader, tag);
const OFF_SEQ: usize = std::mem::offset_of!(ArchivedSmallHeader, seq);
const OFF_LEN: usize = std::mem::offset_of!(ArchivedSmallHeader, len);
const _: () = {
    assert!(OFF_COMM == 0 && OFF_TAG == 4 && OFF_SEQ == 8 && OFF_LEN == 16);
    assert!(SMALL_HEADER_LEN == 24);
    assert!(std::mem::align_of::<ArchivedSmallHeader>() <= HEADER_ALIGN);
};

/// Why a small frame was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SmallFrameError {
    /// Fewer bytes than a header.
    #[error("truncated small frame: {got} bytes, its header needs {SMALL_HEADER_LEN}")]
    Truncated { got: usize },
    /// The buffer is not aligned for in-place access.
    #[error("small frame misaligned for an archived header")]
    Misaligned,
    /// The length field disagrees with the bytes the frame has.
    #[error("small frame of {got} payload bytes says {claimed}")]
    BadLength { got: usize, claimed: u32 },
}

impl SmallHeader {
    /// The compact header of `header`, if it is an eager one (with a length a `u32` holds).
    #[inline]
    pub fn of_eager(header: &FrameHeader) -> Option<SmallHeader> {
        if header.kind != FrameKind::Eager {
            return None;
        }
        Some(SmallHeader {
            comm: header.comm,
            tag: header.tag,
            seq: header.seq,
            len: u32::try_from(header.len).ok()?,
        })
    }

    /// Encode into the first [`SMALL_HEADER_LEN`] bytes of `out`, field by field at the
    /// offsets rkyv gives [`ArchivedSmallHeader`] (checked at compile time; a property test
    /// compares with rkyv's serializer). Panics if `out` is shorter.
    #[inline]
    pub fn encode_into(&self, out: &mut [u8]) {
        let out: &mut [u8; SMALL_HEADER_LEN] = (&mut out[..SMALL_HEADER_LEN])
            .try_into()
            .expect("slice of SMALL_HEADER_LEN bytes");
        out[OFF_COMM..OFF_COMM + 4].copy_from_slice(&self.comm.to_le_bytes());
        out[OFF_TAG..OFF_TAG + 4].copy_from_slice(&self.tag.to_le_bytes());
        out[OFF_SEQ..OFF_SEQ + 8].copy_from_slice(&self.seq.to_le_bytes());
        out[OFF_LEN..OFF_LEN + 4].copy_from_slice(&self.len.to_le_bytes());
        out[OFF_LEN + 4..].fill(0);
    }
}

impl ArchivedSmallHeader {
    /// The full header this small one stands for, on the ring from `src` to `dst` of `job`.
    #[inline]
    pub fn to_frame_header(&self, job: u64, src: u32, dst: u32) -> FrameHeader {
        FrameHeader {
            job,
            comm: self.comm.to_native(),
            src,
            dst,
            tag: self.tag.to_native(),
            seq: self.seq.to_native(),
            len: u64::from(self.len.to_native()),
            kind: FrameKind::Eager,
            ..FrameHeader::default()
        }
    }
}

/// Validate the small frame `bytes` (header and payload) in place; returns its header and
/// payload. The buffer must be aligned to [`HEADER_ALIGN`].
#[inline]
pub fn access_small(bytes: &[u8]) -> Result<(&ArchivedSmallHeader, &[u8]), SmallFrameError> {
    if bytes.len() < SMALL_HEADER_LEN {
        return Err(SmallFrameError::Truncated { got: bytes.len() });
    }
    let (head, payload) = bytes.split_at(SMALL_HEADER_LEN);
    // Every bit pattern of the fields is valid, so bytecheck can only refuse the
    // alignment (bounds are checked above).
    let h = rkyv::api::low::access::<ArchivedSmallHeader, rancor::Failure>(head)
        .map_err(|_| SmallFrameError::Misaligned)?;
    if h.len.to_native() as usize != payload.len() {
        return Err(SmallFrameError::BadLength {
            got: payload.len(),
            claimed: h.len.to_native(),
        });
    }
    Ok((h, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LINE: usize = 48;

    #[repr(C, align(64))]
    struct Line([u8; LINE]);

    #[test]
    fn round_trip_in_place() {
        let full = FrameHeader {
            job: 9,
            comm: 3,
            src: 1,
            dst: 2,
            tag: -4,
            seq: 77,
            len: 5,
            kind: FrameKind::Eager,
            ..FrameHeader::default()
        };
        let small = SmallHeader::of_eager(&full).unwrap();
        let mut line = Line([0xee; LINE]);
        small.encode_into(&mut line.0);
        line.0[SMALL_HEADER_LEN..SMALL_HEADER_LEN + 5].copy_from_slice(b"hello");
        let (h, payload) = access_small(&line.0[..SMALL_HEADER_LEN + 5]).unwrap();
        assert_eq!(payload, b"hello");
        assert_eq!(h.to_frame_header(9, 1, 2), full);
    }

    #[test]
    fn only_eager_frames_have_a_small_header() {
        let eager = FrameHeader {
            kind: FrameKind::Eager,
            len: u64::from(u32::MAX),
            ..FrameHeader::default()
        };
        assert!(SmallHeader::of_eager(&eager).is_some());
        let big = FrameHeader {
            len: u64::from(u32::MAX) + 1,
            ..eager
        };
        assert!(SmallHeader::of_eager(&big).is_none());
        let rts = FrameHeader {
            kind: FrameKind::Rts,
            len: 1,
            ..eager
        };
        assert!(SmallHeader::of_eager(&rts).is_none());
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut line = Line([0; LINE]);
        SmallHeader {
            len: 3,
            ..SmallHeader::default()
        }
        .encode_into(&mut line.0);
        assert_eq!(
            access_small(&line.0[..10]).unwrap_err(),
            SmallFrameError::Truncated { got: 10 }
        );
        assert_eq!(
            access_small(&line.0[..SMALL_HEADER_LEN + 2]).unwrap_err(),
            SmallFrameError::BadLength { got: 2, claimed: 3 }
        );
        assert_eq!(
            access_small(&line.0[4..SMALL_HEADER_LEN + 7]).unwrap_err(),
            SmallFrameError::Misaligned
        );
    }

    proptest! {
        #[test]
        fn hand_encoder_matches_rkyv(
            comm in any::<u32>(), tag in any::<i32>(), seq in any::<u64>(), len in any::<u32>(),
        ) {
            let h = SmallHeader { comm, tag, seq, len };
            let mut fast = [0xaau8; SMALL_HEADER_LEN];
            h.encode_into(&mut fast);
            let reference = rkyv::to_bytes::<rancor::Error>(&h).unwrap();
            prop_assert_eq!(&fast[..], &reference[..]);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..48)) {
            let mut line = Line([0; LINE]);
            line.0[..bytes.len()].copy_from_slice(&bytes);
            let _ = access_small(&line.0[..bytes.len()]);
        }
    }
}
