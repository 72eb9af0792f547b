//! The data the benchmarks send when they validate: a byte pattern of (sending rank,
//! iteration, offset) that is never constant, so a stale, misplaced or cut message shows.

/// The byte at offset `i` of the message of iteration `it` from `rank`.
pub fn byte(rank: usize, it: u64, i: usize) -> u8 {
    (i as u64)
        .wrapping_mul(31)
        .wrapping_add(it.wrapping_mul(7))
        .wrapping_add(rank as u64 * 101) as u8
}

/// Fill `buf` with `rank`'s message of iteration `it`.
pub fn fill(buf: &mut [u8], rank: usize, it: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = byte(rank, it, i);
    }
}

/// Is `buf` `rank`'s message of iteration `it`? If not, which byte is wrong.
pub fn check(buf: &[u8], rank: usize, it: u64, what: &str) -> Result<(), String> {
    match buf
        .iter()
        .enumerate()
        .find(|&(i, &b)| b != byte(rank, it, i))
    {
        None => Ok(()),
        Some((i, &b)) => Err(format!(
            "{what}: byte {i} of {} is {b}, expected {} (from rank {rank}, iteration {it})",
            buf.len(),
            byte(rank, it, i)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_another_iteration_or_another_rank_is_caught() {
        let mut b = vec![0u8; 1000];
        fill(&mut b, 1, 7);
        assert!(check(&b, 1, 7, "m").is_ok());
        assert!(check(&b, 1, 8, "m").is_err());
        assert!(check(&b, 0, 7, "m").is_err());
        b[999] ^= 1;
        assert!(check(&b, 1, 7, "m").unwrap_err().contains("byte 999"));
    }
}
