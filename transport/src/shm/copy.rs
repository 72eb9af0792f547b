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
    blocks(dst, src);
}

/// The block loop of [`copy`], for any length (equal lengths, checked by the callers).
fn blocks(dst: &mut [u8], src: &[u8]) {
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
///
/// Except at the distances where `memcpy` is slow ([`slow_distance`]): there the block
/// loop.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn copy_local(dst: &mut [u8], src: &[u8]) {
    assert_eq!(
        dst.len(),
        src.len(),
        "copy between slices of different lengths"
    );
    if src.len() >= LOOP_MIN && slow_distance(dst.as_ptr(), src.as_ptr()) {
        blocks(dst, src);
    } else {
        dst.copy_from_slice(src);
    }
}

/// Does `memcpy` from `src` to `dst` hit `rep movsb`'s slow case: the destination 1 to 63
/// bytes past the source modulo 4 KiB?
///
/// On this project's VMs (AMD EPYC, glibc 2.36) `rep movsb` is 10 to 15 times slower
/// there: 32 KiB copies from page-aligned sources took 370-580 us per MiB at distances of
/// 1 to 31 bytes, against 30-40 at 0 and from 32 up (and at every negative distance),
/// while the block loop took 42-53 at every distance. A collective slot's data is page
/// aligned and `malloc`'s large buffers sit 16 bytes into a page, so a stream whose
/// first chunk starts after a 32-byte table wrote every chunk at distance 16: a 1 MiB
/// broadcast through the slots took 380 us instead of 100. (Measured 1 to 31; the
/// window is taken to 63 for margin: at 32-63 the block loop is only a little slower.)
#[inline]
pub fn slow_distance(dst: *const u8, src: *const u8) -> bool {
    let d = (dst as usize).wrapping_sub(src as usize) % 4096;
    (1..64).contains(&d)
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
    fn copy_local_copies_every_length_at_every_distance_class() {
        let src: Vec<u8> = (0..(20 << 10)).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 2047, 2048, 4097, 16 << 10] {
            // Destinations 0, 8, 63, 64 and -8 bytes from the source modulo 4 KiB.
            for shift in [0usize, 8, 63, 64, 4088] {
                let mut dst = vec![0u8; len + 8192];
                let base = dst.as_ptr() as usize;
                let want = (src.as_ptr() as usize + shift) % 4096;
                let at = (want + 4096 - base % 4096) % 4096;
                let d = &mut dst[at..at + len];
                assert_eq!(
                    super::slow_distance(d.as_ptr(), src.as_ptr()),
                    (1..64).contains(&shift)
                );
                super::copy_local(d, &src[..len]);
                assert_eq!(d, &src[..len], "length {len}, distance {shift}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "different lengths")]
    fn lengths_must_match() {
        copy(&mut [0u8; 3], &[1u8; 4]);
    }
}
