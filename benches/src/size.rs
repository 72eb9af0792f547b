//! Message sizes: parsing `4K`-style byte counts and the OSU list of sizes to run.

/// Parse a byte count: digits with an optional binary suffix `K`, `M` or `G` (also `KiB`,
/// `MiB`, `GiB`; case ignored), e.g. `0`, `64`, `8K`, `4M`.
pub fn parse(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let (digits, shift) = [
        ("gib", 30),
        ("mib", 20),
        ("kib", 10),
        ("g", 30),
        ("m", 20),
        ("k", 10),
    ]
    .iter()
    .find_map(|&(suf, sh)| lower.strip_suffix(suf).map(|d| (d.to_string(), sh)))
    .unwrap_or((lower.clone(), 0));
    let n: usize = digits
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a byte count (e.g. 0, 64, 8K, 4M)"))?;
    n.checked_mul(1usize << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// The sizes OSU runs from `min` to `max`: 0 if `min` is 0, then every power of two in
/// `[max(min, 1), max]`, plus `max` itself when it is not a power of two.
pub fn list(min: usize, max: usize) -> Vec<usize> {
    let mut v = Vec::new();
    if min > max {
        return v;
    }
    if min == 0 {
        v.push(0);
    }
    let mut p = 1usize;
    while p <= max {
        if p >= min {
            v.push(p);
        }
        match p.checked_mul(2) {
            Some(q) => p = q,
            None => break,
        }
    }
    if max > 0 && !max.is_power_of_two() && !v.contains(&max) {
        v.push(max);
    }
    if min > 0 && !min.is_power_of_two() && !v.contains(&min) {
        v.insert(0, min);
    }
    v
}

/// `n` bytes in the shortest exact unit (`4096` -> `4K`), for labels.
pub fn label(n: usize) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_with_suffixes() {
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("64"), Ok(64));
        assert_eq!(parse("8K"), Ok(8192));
        assert_eq!(parse("4m"), Ok(4 << 20));
        assert_eq!(parse("1MiB"), Ok(1 << 20));
        assert_eq!(parse(" 2k "), Ok(2048));
        assert!(parse("x").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("99999999999999999999G").is_err());
    }

    #[test]
    fn lists_the_osu_sizes() {
        assert_eq!(list(0, 8), vec![0, 1, 2, 4, 8]);
        assert_eq!(list(4, 16), vec![4, 8, 16]);
        assert_eq!(list(0, 0), vec![0]);
        assert_eq!(list(3, 10), vec![3, 4, 8, 10]);
        assert!(list(9, 8).is_empty());
        assert_eq!(list(0, 4 << 20).len(), 24);
    }

    #[test]
    fn labels_sizes() {
        assert_eq!(label(0), "0");
        assert_eq!(label(1000), "1000");
        assert_eq!(label(4096), "4K");
        assert_eq!(label(1 << 20), "1M");
    }
}
