//! Broadcast payloads are shared, never copied, between the receive buffer, the member's
//! log, the links' retransmit queues and the application.
//!
//! A payload is a [`Bytes`]: cloning it for a retransmit queue or a delivery bumps a
//! reference count. On the wire it is an rkyv `ArchivedVec<u8>`; after the received batch
//! has been validated in place, [`Shared`] hands out each payload as a slice of the
//! receive buffer itself ([`Bytes::slice_ref`]), so a received broadcast is delivered
//! from the bytes the kernel wrote. (A delivered payload keeps its whole receive buffer
//! alive until it is dropped.)
//!
//! On the way out, a batch is serialized into [`Segments`]: rkyv writes the archive's own
//! bytes (headers, ids, lengths, padding) into one small buffer, and each payload is
//! recorded where it falls in the archive instead of being copied ([`PayloadSink`]). The
//! transport then gathers the pieces into one frame (`FrameWriter::send_frame_parts`), so
//! a payload goes from the application's buffer to the kernel with no copy in between.

use bytes::Bytes;
use rkyv::rancor::{Fallible, Strategy};
use rkyv::ser::{Allocator, Positional, Writer};
use rkyv::vec::{ArchivedVec, VecResolver};
use rkyv::with::{ArchiveWith, DeserializeWith, SerializeWith};
use rkyv::Place;

/// The rkyv wrapper for a payload field: archived as `ArchivedVec<u8>`, deserialized as a
/// slice of the buffer it was validated in (see [`PayloadSource`]).
pub struct Shared;

impl ArchiveWith<Bytes> for Shared {
    type Archived = ArchivedVec<u8>;
    type Resolver = VecResolver;

    fn resolve_with(field: &Bytes, resolver: VecResolver, out: Place<ArchivedVec<u8>>) {
        ArchivedVec::<u8>::resolve_from_len(field.len(), resolver, out);
    }
}

impl<S> SerializeWith<Bytes, S> for Shared
where
    S: Fallible + Allocator + Writer + PayloadSink<<S as Fallible>::Error> + ?Sized,
{
    fn serialize_with(field: &Bytes, serializer: &mut S) -> Result<VecResolver, S::Error> {
        // What `ArchivedVec::<u8>::serialize_from_slice` does (bytes need no alignment),
        // but through the sink, which may keep a reference instead of copying.
        let pos = serializer.pos();
        serializer.write_payload(field)?;
        Ok(VecResolver::from_pos(pos))
    }
}

/// A serializer's writer that can take a payload by reference.
pub trait PayloadSink<E> {
    /// Append `payload` at the current position, as `Writer::write` would.
    fn write_payload(&mut self, payload: &Bytes) -> Result<(), E>;
}

impl<E, const A: usize> PayloadSink<E> for rkyv::util::AlignedVec<A> {
    fn write_payload(&mut self, payload: &Bytes) -> Result<(), E> {
        self.extend_from_slice(payload);
        Ok(())
    }
}

impl<W: PayloadSink<E>, Al, Sh, E> PayloadSink<E> for rkyv::ser::Serializer<W, Al, Sh> {
    fn write_payload(&mut self, payload: &Bytes) -> Result<(), E> {
        self.writer.write_payload(payload)
    }
}

impl<T: PayloadSink<E> + ?Sized, E> PayloadSink<E> for Strategy<T, E> {
    fn write_payload(&mut self, payload: &Bytes) -> Result<(), E> {
        T::write_payload(self, payload)
    }
}

/// An archive as pieces: its own bytes, with the payloads it refers to (not copied)
/// spliced in where they belong. [`Segments::parts`] lists the pieces in order.
#[derive(Default)]
pub struct Segments {
    /// The archive's own bytes, in order.
    own: Vec<u8>,
    /// Each payload, after the first `usize` bytes of `own`.
    shared: Vec<(usize, Bytes)>,
    /// Bytes of all payloads so far.
    shared_len: usize,
}

/// Payloads at most this long are copied in with the archive's own bytes: a reference
/// would cost more than it saves.
const SHARE_MIN: usize = 4 << 10;

impl Segments {
    /// The whole length.
    pub fn len(&self) -> usize {
        self.own.len() + self.shared_len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pieces, in order; together they are the archive.
    pub fn parts(&self) -> Vec<&[u8]> {
        let mut out = Vec::with_capacity(2 * self.shared.len() + 1);
        let mut at = 0;
        for (end, p) in &self.shared {
            if *end > at {
                out.push(&self.own[at..*end]);
            }
            out.push(&p[..]);
            at = *end;
        }
        if self.own.len() > at {
            out.push(&self.own[at..]);
        }
        out
    }

    /// The archive in one buffer (a copy; for tests and small frames).
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts().concat()
    }
}

impl Positional for Segments {
    fn pos(&self) -> usize {
        self.len()
    }
}

impl<E> Writer<E> for Segments {
    fn write(&mut self, bytes: &[u8]) -> Result<(), E> {
        self.own.extend_from_slice(bytes);
        Ok(())
    }
}

impl<E> PayloadSink<E> for Segments {
    fn write_payload(&mut self, payload: &Bytes) -> Result<(), E> {
        if payload.len() <= SHARE_MIN {
            self.own.extend_from_slice(payload);
        } else {
            self.shared.push((self.own.len(), payload.clone()));
            self.shared_len += payload.len();
        }
        Ok(())
    }
}

/// A deserializer that knows the buffer the archive lies in, so that it can share it.
pub trait PayloadSource {
    /// `bytes` (a part of the source buffer) as a shared slice of it.
    fn share(&self, bytes: &[u8]) -> Bytes;
}

impl<D: Fallible + PayloadSource + ?Sized> DeserializeWith<ArchivedVec<u8>, Bytes, D> for Shared {
    fn deserialize_with(field: &ArchivedVec<u8>, deserializer: &mut D) -> Result<Bytes, D::Error> {
        Ok(deserializer.share(field.as_slice()))
    }
}

/// The buffer an archive was validated in.
pub struct Source {
    buf: Bytes,
}

impl Source {
    pub fn new(buf: Bytes) -> Self {
        Source { buf }
    }
}

impl PayloadSource for Source {
    fn share(&self, bytes: &[u8]) -> Bytes {
        // Validation checked that every archived vector lies inside the buffer; a slice
        // from anywhere else would be a bug here, and `slice_ref` panics on it.
        self.buf.slice_ref(bytes)
    }
}

impl<T: PayloadSource + ?Sized, E> PayloadSource for Strategy<T, E> {
    fn share(&self, bytes: &[u8]) -> Bytes {
        T::share(self, bytes)
    }
}
