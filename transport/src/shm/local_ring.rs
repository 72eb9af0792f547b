//! A `ring` in this process's own memory, both ends in one owner: the
//! same push and pop code the shared-memory transport runs, without a segment, for the
//! criterion benchmarks (`benches/benches/ring.rs`) and for tests.

use super::ring::{Consumer, Producer, RingRef, SLOT_HDR};

/// One 128-byte, 128-aligned block of the ring's memory.
#[derive(Clone, Copy)]
#[repr(C, align(128))]
struct Block([u8; 128]);

/// A single-producer single-consumer ring on the heap, with both of its ends.
pub struct LocalRing {
    /// Declared before `_mem`, so the views into it are gone before it is freed.
    producer: Producer,
    consumer: Consumer,
    max_frame: usize,
    _mem: Box<[Block]>,
}

impl LocalRing {
    /// A ring of `slots` slots (a power of two, at least 2) of `slot_size` bytes each (a
    /// multiple of 64, more than the 16 bytes of control words at a slot's start).
    ///
    /// # Panics
    /// On a geometry outside those bounds.
    pub fn new(slots: usize, slot_size: usize) -> LocalRing {
        assert!(
            slots >= 2 && slots.is_power_of_two(),
            "{slots} slots: a power of two, at least 2"
        );
        assert!(
            slot_size.is_multiple_of(64) && slot_size > SLOT_HDR && slot_size <= u32::MAX as usize,
            "{slot_size}-byte slots: a multiple of 64 above {SLOT_HDR}"
        );
        let bytes = RingRef::bytes_for(slots, slot_size).expect("ring size overflows");
        let mut mem = vec![Block([0; 128]); bytes.div_ceil(128)].into_boxed_slice();
        // SAFETY: `mem` holds at least `bytes_for(slots, slot_size)` zeroed bytes (a valid
        // empty ring), 128-byte aligned; the geometry was checked above; it is freed only
        // after both views (fields declared before it) are dropped, and this is the ring's
        // only producer and consumer.
        let ring = unsafe { RingRef::new(mem.as_mut_ptr().cast::<u8>(), slots, slot_size) };
        LocalRing {
            producer: Producer::new(ring),
            consumer: Consumer::new(ring),
            max_frame: ring.max_frame(),
            _mem: mem,
        }
    }

    /// Largest frame one slot holds.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Append a frame of `header` then `payload` with `tag`; false when the ring is full.
    ///
    /// # Panics
    /// When the frame is larger than [`LocalRing::max_frame`].
    #[inline]
    pub fn push(&self, tag: u32, header: &[u8], payload: &[u8]) -> bool {
        self.producer
            .try_push(tag, header, payload.len(), |b| b.copy_from_slice(payload))
    }

    /// If a frame is waiting, call `f` with its tag and bytes (in place) and free its slot.
    #[inline]
    pub fn pop<R>(&self, f: impl FnOnce(u32, &[u8]) -> R) -> Option<R> {
        self.consumer.try_pop(f)
    }
}

#[cfg(test)]
mod tests {
    use super::LocalRing;

    #[test]
    fn frames_come_out_in_order_and_a_full_ring_refuses() {
        let r = LocalRing::new(4, 128);
        assert_eq!(r.max_frame(), 112);
        for round in 0..3u8 {
            for i in 0..4u8 {
                assert!(r.push(u32::from(i), &[round], &[i; 20]));
            }
            assert!(!r.push(9, &[], &[]), "four slots are full");
            for i in 0..4u8 {
                let got = r.pop(|tag, b| (tag, b.to_vec()));
                let mut want = vec![round];
                want.extend([i; 20]);
                assert_eq!(got, Some((u32::from(i), want)));
            }
            assert_eq!(r.pop(|_, _| ()), None);
        }
    }

    #[test]
    #[should_panic(expected = "a power of two")]
    fn a_geometry_that_is_not_a_ring_is_refused() {
        let _ = LocalRing::new(3, 128);
    }
}
