//! Parsers for Slurm's compressed environment formats.

/// The first host of a Slurm hostlist such as `node[01-04,07],gpu3` (→ `node01`).
pub fn first_host(list: &str) -> Result<String, String> {
    let list = list.trim();
    if list.is_empty() {
        return Err("empty host list".into());
    }
    // The first entry ends at the first ',' outside brackets.
    let mut depth = 0i32;
    let mut end = list.len();
    for (i, c) in list.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!("unbalanced brackets in host list {list:?}"));
        }
    }
    let first = &list[..end];
    let Some(open) = first.find('[') else {
        if first.contains(']') || first.is_empty() {
            return Err(format!("malformed host list {list:?}"));
        }
        return Ok(first.to_string());
    };
    let close = first
        .rfind(']')
        .ok_or_else(|| format!("unclosed '[' in host list {list:?}"))?;
    if close < open {
        return Err(format!("malformed host list {list:?}"));
    }
    let prefix = &first[..open];
    let suffix = &first[close + 1..];
    let range = &first[open + 1..close];
    let lo = range
        .split(',')
        .next()
        .unwrap_or("")
        .split('-')
        .next()
        .unwrap_or("");
    if prefix.is_empty() || lo.is_empty() || !lo.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("malformed range in host list {list:?}"));
    }
    Ok(format!("{prefix}{lo}{suffix}"))
}

/// Expand `2(x3),1` into `[2, 2, 2, 1]` (tasks on each node, by node id).
pub fn tasks_per_node(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.trim().split(',') {
        let part = part.trim();
        let (n, rep) = match part.split_once('(') {
            None => (part, 1u32),
            Some((n, r)) => {
                let r = r
                    .strip_prefix('x')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| format!("bad repeat {part:?} in {s:?}"))?;
                (
                    n,
                    r.parse::<u32>()
                        .map_err(|_| format!("bad repeat count in {part:?}"))?,
                )
            }
        };
        let n: u32 = n
            .parse()
            .map_err(|_| format!("bad task count {n:?} in {s:?}"))?;
        if rep == 0 || rep > 1_000_000 || out.len() + rep as usize > 1_000_000 {
            return Err(format!("unreasonable repeat count in {s:?}"));
        }
        out.extend(std::iter::repeat_n(n, rep as usize));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostlists() {
        assert_eq!(first_host("node[01-04,07],gpu3").unwrap(), "node01");
        assert_eq!(first_host("gpu3,node[1-2]").unwrap(), "gpu3");
        assert_eq!(first_host("localhost").unwrap(), "localhost");
        assert_eq!(first_host("n[7]").unwrap(), "n7");
        assert_eq!(first_host("rack[3-4]-n1").unwrap(), "rack3-n1");
        for bad in ["", "node[", "node]", "[1-2]", "node[a-b]", "n[[1]]"] {
            assert!(first_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tasks() {
        assert_eq!(tasks_per_node("2(x3),1").unwrap(), vec![2, 2, 2, 1]);
        assert_eq!(tasks_per_node("4").unwrap(), vec![4]);
        assert_eq!(tasks_per_node("1,3").unwrap(), vec![1, 3]);
        for bad in ["", "x", "2(3)", "2(x)", "2(x0)", "-1", "2(x99999999)"] {
            assert!(tasks_per_node(bad).is_err(), "{bad}");
        }
    }
}
