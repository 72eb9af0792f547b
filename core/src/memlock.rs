//! The locked-memory check made before glommio starts.
//!
//! glommio registers its I/O memory with io_uring, which the kernel charges to the user's
//! locked memory (`RLIMIT_MEMLOCK`) unless the process has `CAP_IPC_LOCK`. All ranks of a
//! user on a node share that budget, so the check is `local_size * per_rank <= limit`.

use thiserror::Error;

/// The limit was too small for the ranks on this node.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error(
    "locked-memory limit (ulimit -l) is {limit_kib} KiB; {ranks} ranks on this node need \
     {need_kib} KiB ({per_rank_kib} KiB each for glommio's io_uring memory): raise it with \
     'ulimit -l {suggest_kib}' (or 'ulimit -l unlimited'), set DefaultLimitMEMLOCK for \
     systemd or PropagateResourceLimitsExcept/--propagate for Slurm, or run fewer ranks per node"
)]
pub struct MemlockError {
    /// Current soft limit, KiB.
    pub limit_kib: u64,
    /// Ranks on this node.
    pub ranks: usize,
    /// What they need together, KiB.
    pub need_kib: u64,
    /// What one needs, KiB.
    pub per_rank_kib: u64,
    /// A limit that would do, KiB.
    pub suggest_kib: u64,
}

/// The current soft `RLIMIT_MEMLOCK` in bytes (`None` = unlimited).
pub fn current_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and has no other effect.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) };
    if rc != 0 || r.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some(r.rlim_cur)
}

fn has_ipc_lock() -> bool {
    // CAP_IPC_LOCK is bit 14 of the effective set in /proc/self/status.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 14) != 0)
}

/// Pure check: do `ranks` ranks needing `per_rank` bytes each fit in `limit`?
pub fn check_limit(limit: Option<u64>, ranks: usize, per_rank: u64) -> Result<(), MemlockError> {
    let Some(limit) = limit else { return Ok(()) };
    let need = per_rank * ranks.max(1) as u64;
    if need <= limit {
        return Ok(());
    }
    Err(MemlockError {
        limit_kib: limit / 1024,
        ranks,
        need_kib: need.div_ceil(1024),
        per_rank_kib: per_rank.div_ceil(1024),
        suggest_kib: (need.div_ceil(1024)).next_power_of_two(),
    })
}

/// Check this process's limit for `ranks` ranks on the node.
pub fn check(ranks: usize, per_rank: u64) -> Result<(), MemlockError> {
    if has_ipc_lock() {
        return Ok(());
    }
    check_limit(current_limit(), ranks, per_rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_ranks_fit_in_eight_mib() {
        let per_rank = crate::executor::LOCKED_BYTES_PER_RANK;
        assert!(check_limit(Some(8 << 20), 8, per_rank).is_ok());
    }

    #[test]
    fn too_small_limit_says_how_to_fix() {
        let e = check_limit(Some(64 << 10), 4, 512 << 10).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("ulimit -l"), "{msg}");
        assert!(msg.contains("64 KiB"), "{msg}");
        assert_eq!(e.need_kib, 2048);
    }

    #[test]
    fn unlimited_is_fine() {
        assert!(check_limit(None, 1000, 1 << 30).is_ok());
    }
}
