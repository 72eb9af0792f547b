//! Frames on the wire: rkyv archives, validated (bytecheck) before anything of them is
//! used, since the bytes come from another process.

use super::link::Frame;
use super::payload::{Segments, Source};
use bytes::Bytes;
use rkyv::rancor;

/// Why received bytes are not a frame.
#[derive(Debug, thiserror::Error)]
#[error("not a valid ring-broadcast frame ({len} bytes): {reason}")]
pub struct DecodeError {
    pub len: usize,
    pub reason: String,
}

/// The bytes of `frame`.
pub fn encode(frame: &Frame) -> Vec<u8> {
    rkyv::to_bytes::<rancor::Error>(frame)
        .expect("a frame always serializes")
        .into_vec()
}

/// A batch of frames to one peer (one transport frame carries them all), as pieces:
/// the payloads of its broadcasts are referred to, not copied (see
/// [`payload`](super::payload)).
pub fn encode_batch(frames: &Vec<Frame>) -> Segments {
    rkyv::api::high::to_bytes_in::<_, rancor::Error>(frames, Segments::default())
        .expect("frames always serialize")
}

/// The batch in `buf`, validated in place; the payloads of its broadcasts are slices of
/// `buf` (see [`payload`](super::payload)).
pub fn decode_batch(buf: Bytes) -> Result<Vec<Frame>, DecodeError> {
    decode_as::<Vec<Frame>>(buf)
}

/// The frame in `bytes`, validated (a copy of `bytes` backs its payload).
pub fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
    decode_as::<Frame>(Bytes::copy_from_slice(bytes))
}

fn decode_as<T>(buf: Bytes) -> Result<T, DecodeError>
where
    T: rkyv::Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>
        + rkyv::Deserialize<T, rancor::Strategy<Source, rancor::Error>>,
{
    if buf.is_empty() {
        // (An empty `Bytes` may point anywhere; there is nothing to align.)
        return Err(DecodeError {
            len: 0,
            reason: "no bytes".into(),
        });
    }
    if !(buf.as_ptr() as usize).is_multiple_of(ALIGN) {
        // rkyv reads the archive in place, which needs it aligned: copy it once.
        let mut v = rkyv::util::AlignedVec::<ALIGN>::with_capacity(buf.len());
        v.extend_from_slice(&buf);
        let owned = Bytes::from_owner(Aligned(v));
        assert!((owned.as_ptr() as usize).is_multiple_of(ALIGN));
        return decode_as::<T>(owned);
    }
    let fail = |e: rancor::Error| DecodeError {
        len: buf.len(),
        reason: e.to_string(),
    };
    let archived = rkyv::access::<T::Archived, rancor::Error>(&buf).map_err(fail)?;
    rkyv::api::deserialize_using::<T, _, rancor::Error>(archived, &mut Source::new(buf.clone()))
        .map_err(fail)
}

/// Alignment rkyv needs of the start of an archive.
const ALIGN: usize = 16;

/// An aligned copy, as the owner of a [`Bytes`].
struct Aligned(rkyv::util::AlignedVec<ALIGN>);

impl AsRef<[u8]> for Aligned {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abcast::types::{MsgId, ViewId};
    use crate::abcast::wire::{Data, Wire};

    #[test]
    fn frames_round_trip_and_garbage_is_refused() {
        let f = Frame {
            seq: 3,
            ack: 2,
            body: Some(Wire::Data {
                view: ViewId {
                    round: 1,
                    leader: 2,
                },
                hops: 2,
                data: Data {
                    id: MsgId { origin: 2, seq: 9 },
                    ts: 17,
                    payload: Bytes::from_static(b"hello"),
                },
            }),
        };
        let b = encode(&f);
        assert_eq!(decode(&b).unwrap(), f);
        // Every truncation and a few corruptions are refused or decode to something
        // (never a crash).
        for n in 0..b.len() {
            let _ = decode(&b[..n]);
        }
        assert!(decode(&[0xff; 64]).is_err());
        let batch = vec![f.clone(), f.clone()];
        let enc = encode_batch(&batch).to_vec();
        let dec = decode_batch(Bytes::from(enc.clone())).unwrap();
        assert_eq!(dec, batch);
        // The payloads are slices of the received buffer, not copies.
        let shared = Bytes::from(enc);
        let again = decode_batch(shared.clone()).unwrap();
        for f in &again {
            let Some(Wire::Data { data, .. }) = &f.body else {
                panic!("a data frame")
            };
            let range = shared.as_ptr_range();
            assert!(
                range.contains(&data.payload.as_ptr()),
                "payload is in the buffer"
            );
        }
        // An unaligned buffer decodes as well (through one aligned copy).
        let mut odd = vec![0u8];
        odd.extend_from_slice(&shared);
        assert_eq!(decode_batch(Bytes::from(odd).slice(1..)).unwrap(), batch);
        assert!(decode_batch(Bytes::from_static(&[0xff; 64])).is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn segments_are_the_archive_and_share_large_payloads() {
        let frame = |seq: u64, len: usize| Frame {
            seq,
            ack: 0,
            body: Some(Wire::Data {
                view: ViewId {
                    round: 1,
                    leader: 1,
                },
                hops: 1,
                data: Data {
                    id: MsgId { origin: 1, seq },
                    ts: seq,
                    payload: Bytes::from(
                        (0..len)
                            .map(|i| (i * 7 + seq as usize) as u8)
                            .collect::<Vec<_>>(),
                    ),
                },
            }),
        };
        let batch: Vec<Frame> = [0, 5, 4096, 4097, 70_000, 3, 100_000]
            .iter()
            .enumerate()
            .map(|(k, &len)| frame(k as u64 + 1, len))
            .collect();
        let seg = encode_batch(&batch);
        // Byte for byte what rkyv's own serializer writes.
        let plain = rkyv::to_bytes::<rancor::Error>(&batch).unwrap();
        assert_eq!(seg.to_vec(), plain.as_slice());
        assert_eq!(seg.len(), plain.len());
        // The large payloads are pieces of their own, pointing at the payloads themselves.
        let parts = seg.parts();
        for f in &batch {
            let Some(Wire::Data { data, .. }) = &f.body else {
                unreachable!()
            };
            let shared = parts.iter().any(|p| p.as_ptr() == data.payload.as_ptr());
            assert_eq!(
                shared,
                data.payload.len() > 4096,
                "{} bytes",
                data.payload.len()
            );
        }
        assert_eq!(decode_batch(Bytes::from(seg.to_vec())).unwrap(), batch);
    }
}
