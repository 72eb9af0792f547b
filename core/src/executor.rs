//! The one glommio executor of a rank, pinned to the rank's CPU.

use crate::affinity::{self, Bind};
use crate::memlock::{self, MemlockError};
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use thiserror::Error;

/// glommio I/O memory per rank. Small, because zerorank uses glommio for sockets only (no
/// DMA file I/O); small enough that 8 ranks fit under an 8 MiB `ulimit -l`.
pub const IO_MEMORY: usize = 256 << 10;
/// io_uring submission queue depth per ring.
pub const RING_DEPTH: usize = 128;
/// Locked memory one rank is charged: I/O memory plus slack for the rings' registration.
pub const LOCKED_BYTES_PER_RANK: u64 = IO_MEMORY as u64 + (256 << 10);

/// How to build a rank's executor.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Pinning policy.
    pub bind: Bind,
    /// Rank on this node (chooses the CPU).
    pub local_rank: usize,
    /// Ranks on this node (for the locked-memory check).
    pub local_size: usize,
}

/// Why the executor could not start.
#[derive(Debug, Error)]
pub enum ExecutorError {
    /// `RLIMIT_MEMLOCK` too small.
    #[error(transparent)]
    Memlock(#[from] MemlockError),
    /// glommio refused to start.
    #[error("could not start the glommio executor (io_uring): {0}")]
    Glommio(String),
}

/// Build the executor: check the locked-memory limit, then start glommio on the chosen CPU.
/// Returns the executor and the CPU it is pinned to.
pub fn build(cfg: &ExecutorConfig) -> Result<(LocalExecutor, Option<usize>), ExecutorError> {
    memlock::check(cfg.local_size, LOCKED_BYTES_PER_RANK)?;
    let cpu = affinity::cpu_for(cfg.bind, cfg.local_rank);
    let placement = match cpu {
        Some(c) => Placement::Fixed(c),
        None => Placement::Unbound,
    };
    let ex = LocalExecutorBuilder::new(placement)
        .name("zerorank")
        .io_memory(IO_MEMORY)
        .ring_depth(RING_DEPTH)
        .make()
        .map_err(|e| ExecutorError::Glommio(e.to_string()))?;
    tracing::debug!(?cpu, bind = %cfg.bind, "glommio executor started");
    Ok((ex, cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executor_runs_unbound() {
        let (ex, cpu) = build(&ExecutorConfig {
            bind: Bind::None,
            local_rank: 0,
            local_size: 1,
        })
        .unwrap();
        assert_eq!(cpu, None);
        assert_eq!(ex.run(async { 41 + 1 }), 42);
    }
}
