//! Which CPU a rank runs on.
//!
//! The candidates are the CPUs this process may run on (`sched_getaffinity`), so a Slurm
//! `--cpu-bind`, a cgroup cpuset or `taskset` around the launcher are respected. A rank takes
//! the CPU at position `local_rank % candidates` of that set.

use std::fmt;
use std::str::FromStr;

/// Whether ranks are pinned to CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bind {
    /// Pin each rank to one CPU of the allowed set, chosen by local rank.
    #[default]
    Core,
    /// Do not pin (the kernel schedules freely); for oversubscribed or shared nodes.
    None,
}

impl FromStr for Bind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "core" | "cores" => Ok(Bind::Core),
            "none" => Ok(Bind::None),
            other => Err(format!("unknown binding {other:?}: use 'core' or 'none'")),
        }
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bind::Core => "core",
            Bind::None => "none",
        })
    }
}

/// The CPUs this process may run on, in ascending order.
pub fn allowed_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    cpus.sort_unstable();
    cpus
}

/// The CPU for `local_rank` under `bind`, or `None` when the rank is not pinned.
pub fn cpu_for(bind: Bind, local_rank: usize) -> Option<usize> {
    match bind {
        Bind::None => None,
        Bind::Core => pick(&allowed_cpus(), local_rank),
    }
}

/// Pure choice: position `local_rank % len` of `allowed`.
pub fn pick(allowed: &[usize], local_rank: usize) -> Option<usize> {
    (!allowed.is_empty()).then(|| allowed[local_rank % allowed.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_by_local_rank_within_allowed_set() {
        assert_eq!(pick(&[2, 3], 0), Some(2));
        assert_eq!(pick(&[2, 3], 1), Some(3));
        assert_eq!(
            pick(&[2, 3], 2),
            Some(2),
            "oversubscribed ranks wrap around"
        );
        assert_eq!(pick(&[], 0), None);
        assert!(!allowed_cpus().is_empty());
    }

    #[test]
    fn bind_parses() {
        assert_eq!("none".parse::<Bind>(), Ok(Bind::None));
        assert_eq!("core".parse::<Bind>(), Ok(Bind::Core));
        assert!("socket".parse::<Bind>().is_err());
    }
}
