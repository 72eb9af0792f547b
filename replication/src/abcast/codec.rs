//! Frames on the wire: rkyv archives, validated (bytecheck) before anything of them is
//! used, since the bytes come from another process.

use super::link::Frame;
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

/// The bytes of a batch of frames to one peer (one transport frame carries them all).
pub fn encode_batch(frames: &Vec<Frame>) -> Vec<u8> {
    rkyv::to_bytes::<rancor::Error>(frames)
        .expect("frames always serialize")
        .into_vec()
}

/// The batch in `bytes`, validated.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Frame>, DecodeError> {
    decode_as::<Vec<Frame>>(bytes)
}

/// The frame in `bytes`, validated. (The archive is checked in place, then turned into
/// the owned frame the state machine takes.)
pub fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
    decode_as::<Frame>(bytes)
}

fn decode_as<T>(bytes: &[u8]) -> Result<T, DecodeError>
where
    T: rkyv::Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>
        + rkyv::Deserialize<T, rkyv::api::high::HighDeserializer<rancor::Error>>,
{
    let fail = |e: rancor::Error| DecodeError {
        len: bytes.len(),
        reason: e.to_string(),
    };
    if (bytes.as_ptr() as usize).is_multiple_of(16) {
        rkyv::from_bytes::<T, rancor::Error>(bytes).map_err(fail)
    } else {
        let mut v = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        v.extend_from_slice(bytes);
        rkyv::from_bytes::<T, rancor::Error>(&v).map_err(fail)
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
                    payload: b"hello".to_vec(),
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
        assert_eq!(decode_batch(&encode_batch(&batch)).unwrap(), batch);
        assert!(decode_batch(&[0xff; 64]).is_err());
        assert!(decode(&[]).is_err());
    }
}
