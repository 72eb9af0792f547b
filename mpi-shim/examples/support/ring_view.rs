//! Waiting for a ring group's view, shared by the ring-group examples (included with
//! `#[path]`; not an example of its own).

use std::time::{Duration, Instant};
use zerorank::RingGroup;

/// Wait up to 30 s for a view whose members, as ranks, `pred` accepts; why not, if none
/// came.
pub fn await_view(
    group: &RingGroup,
    what: &str,
    pred: impl Fn(&[i32]) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no view {what} in 30 s (last {:?})", group.view()));
        }
        let v = group
            .next_view(left.min(Duration::from_millis(100)))
            .map_err(|e| format!("waiting for a view {what}: {e}"))?;
        if let Some(v) = v {
            let ranks: Vec<i32> = v.members.iter().map(|&m| group.rank_of_member(m)).collect();
            if pred(&ranks) {
                return Ok(());
            }
        }
    }
}
