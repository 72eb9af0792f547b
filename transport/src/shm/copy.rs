//! Copies to and from memory another core has just written (shared-memory rings and
//! collective slots).
//!
//! Not `memcpy`: from 2 KiB glibc's `memcpy` switches to `rep movsb`, which on this
//! project's 2-vCPU VM fetches cache lines held modified by another core one at a time.
//! Measured: a 16 KiB broadcast through a collective slot took the reader 10-13 us with
//! `memcpy` and 1.5-2.4 us with this loop; a 4 KiB allreduce 1.8 against 0.6-1.1 us. The
//! loop copies 64-byte blocks with plain vector loads and stores, whose cache misses the
//! core overlaps.

/// Bytes per block of [`copy`].
const BLOCK: usize = 64;

/// Below this, `memcpy` is faster than the block loop (it does not use `rep movsb` yet;
/// benches/benches/copy.rs: 64 B 3.4 against 5.3 ns, 1 KiB 16 against 22 ns), and small
/// messages, the fast path, are all below it.
const LOOP_MIN: usize = 2 << 10;

/// Copy `src` into `dst` (equal lengths).
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn copy(dst: &mut [u8], src: &[u8]) {
    assert_eq!(
        dst.len(),
        src.len(),
        "copy between slices of different lengths"
    );
    if src.len() < LOOP_MIN {
        dst.copy_from_slice(src);
        return;
    }
    let mut d = dst.chunks_exact_mut(BLOCK);
    let mut s = src.chunks_exact(BLOCK);
    for (a, b) in (&mut d).zip(&mut s) {
        let a: &mut [u8; BLOCK] = a.try_into().expect("a whole block");
        let b: &[u8; BLOCK] = b.try_into().expect("a whole block");
        *a = *b;
        // Keeps LLVM from recognizing the loop as a `memcpy` (its loop-idiom pass does,
        // and `memcpy` is what this avoids). Emits no instruction.
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
    // Less than a block: a short memcpy, far below the `rep movsb` threshold.
    d.into_remainder().copy_from_slice(s.remainder());
}

/// Copy `src` into `dst` (equal lengths) where neither was just written by another core:
/// a rank's own buffers, e.g. its block of an allgather from its send buffer into its
/// receive buffer. `memcpy`, which is faster than [`copy`]'s loop on lines no other core
/// holds modified: an allgather at 2 ranks on this project's VM
/// (benches/c/coll_bench.c, slowest rank's median) took 15.9-16.3 us at 256 KiB and
/// 136-138 at 1 MiB with it, against 19.8-23.7 and 157-202 with [`copy`].
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn copy_local(dst: &mut [u8], src: &[u8]) {
    dst.copy_from_slice(src);
}

#[cfg(test)]
mod tests {
    use super::copy;

    #[test]
    fn copies_every_length() {
        for len in [
            0,
            1,
            64,
            2047,
            2048,
            2049,
            2111,
            4095,
            4096,
            4097,
            65536 + 13,
        ] {
            let src: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut dst = vec![0u8; len];
            copy(&mut dst, &src);
            assert_eq!(dst, src, "length {len}");
        }
    }

    #[test]
    #[should_panic(expected = "different lengths")]
    fn lengths_must_match() {
        copy(&mut [0u8; 3], &[1u8; 4]);
    }
}
