//! MPICH's `PMI_process_mapping`: `(vector,(start_node,node_count,ranks_per_node),...)`.
//! The blocks are laid out in order; if they cover fewer ranks than the job has, the
//! pattern repeats (Hydra publishes `(vector,(0,1,1))` for any number of ranks on one node).

/// The node of every rank `0..size`, or an error describing the malformed mapping.
pub fn parse_process_mapping(s: &str, size: u32) -> Result<Vec<u32>, String> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let inner = t
        .strip_prefix("(vector,")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("mapping {s:?} is not of the form (vector,(a,b,c),...)"))?;
    let mut pattern: Vec<u32> = Vec::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let body = rest
            .strip_prefix('(')
            .ok_or_else(|| format!("expected '(' in {s:?}"))?;
        let end = body
            .find(')')
            .ok_or_else(|| format!("unclosed block in {s:?}"))?;
        let nums: Vec<u32> = body[..end]
            .split(',')
            .map(|n| {
                n.parse::<u32>()
                    .map_err(|_| format!("bad number {n:?} in {s:?}"))
            })
            .collect::<Result<_, _>>()?;
        let [start, count, per] = nums[..] else {
            return Err(format!(
                "block with {} numbers in {s:?}, expected 3",
                nums.len()
            ));
        };
        if count == 0 || per == 0 {
            return Err(format!("empty block in {s:?}"));
        }
        for node in start..start.saturating_add(count) {
            for _ in 0..per {
                pattern.push(node);
                if pattern.len() > size as usize {
                    break;
                }
            }
        }
        rest = &body[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    if pattern.is_empty() {
        return Err(format!("mapping {s:?} has no blocks"));
    }
    Ok((0..size as usize)
        .map(|r| pattern[r % pattern.len()])
        .collect())
}

/// (local_rank, local_size, node_id) of `rank`, given every rank's node.
pub fn locality(nodes: &[u32], rank: u32) -> Option<(u32, u32, u32)> {
    let me = *nodes.get(rank as usize)?;
    let local_rank = nodes[..rank as usize].iter().filter(|&&n| n == me).count() as u32;
    let local_size = nodes.iter().filter(|&&n| n == me).count() as u32;
    Some((local_rank, local_size, me))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blocks() {
        assert_eq!(
            parse_process_mapping("(vector,(0,2,2),(2,1,1))", 5).unwrap(),
            vec![0, 0, 1, 1, 2]
        );
        assert_eq!(
            parse_process_mapping("(vector,(0,1,1))", 3).unwrap(),
            vec![0, 0, 0]
        );
        assert_eq!(
            parse_process_mapping("(vector,(0,2,1))", 4).unwrap(),
            vec![0, 1, 0, 1]
        );
        assert_eq!(
            parse_process_mapping(" (vector, (0,1,4)) ", 4).unwrap(),
            vec![0; 4]
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "vector",
            "(vector,)",
            "(vector,(0,1))",
            "(vector,(0,x,1))",
            "(vector,(0,0,1))",
            "(vector,(0,1,1)",
            "(list,(0,1,1))",
        ] {
            assert!(parse_process_mapping(bad, 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn locality_counts() {
        let nodes = [0, 0, 1, 1, 2];
        assert_eq!(locality(&nodes, 3), Some((1, 2, 1)));
        assert_eq!(locality(&nodes, 4), Some((0, 1, 2)));
        assert_eq!(locality(&nodes, 5), None);
    }
}
