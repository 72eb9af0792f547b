//! Bootstrap: job identity and the key-value exchange (PMI-like).
//!
//! [`bootstrap`] finds out how this process was started and returns who it is
//! ([`JobInfo`]) plus a [`Kvs`] to swap endpoints with the other ranks. Detection order:
//!
//! 1. `ZR_LAUNCHER=zrun`: started by `zrun`; PMI-1 over the inherited `PMI_FD`.
//! 2. Slurm PMI-2 (`srun --mpi=pmi2`): `PMI_FD`, `PMI_JOBID` and `SLURM_PROCID` set, no Hydra
//!    variables.
//! 3. MPICH Hydra (`mpiexec`): `PMI_FD`, `PMI_RANK`, `PMI_SIZE`; PMI-1 text protocol.
//! 4. Manual multi-node mode: `ZR_COORD` set (checked before the Slurm environment, since it
//!    is an explicit choice even inside a Slurm allocation).
//! 5. Slurm environment without PMI (plain `srun`): rendezvous over TCP on the step's first
//!    node.
//! 6. Singleton: one rank, in-memory key-value store.

mod auth;
mod env;
mod error;
mod hydra;
mod manual;
mod mapping;
mod memkvs;
mod netaddr;
pub mod pmi1;
pub mod pmi2;
pub mod server;
mod slurm;
pub mod slurm_parse;
pub mod stream;
mod tcp_kvs;
mod zrun;

pub use error::BootstrapError;
pub use mapping::parse_process_mapping;

use zerorank_core::affinity::Bind;

/// Who started the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// Not launched by anything known: a job of one rank.
    Singleton,
    /// The zerorank `zrun` launcher.
    Zrun,
    /// MPICH Hydra (`mpiexec`), PMI-1.
    Hydra,
    /// Slurm `srun --mpi=pmi2`.
    SlurmPmi2,
    /// Slurm `srun` without PMI: environment plus a TCP rendezvous.
    SlurmEnv,
    /// Manual mode driven by `ZR_COORD`/`ZR_RANK`/`ZR_SIZE`.
    Manual,
}

/// Who this rank is within its job.
#[derive(Debug, Clone)]
pub struct JobInfo {
    /// Job id (distinct per job step; names shared-memory segments).
    pub job_id: u64,
    /// World rank.
    pub rank: u32,
    /// World size.
    pub size: u32,
    /// Rank among the ranks of this node.
    pub local_rank: u32,
    /// Number of ranks on this node.
    pub local_size: u32,
    /// Node index within the job.
    pub node_id: u32,
    /// Per-job secret used to authenticate TCP connections.
    pub secret: [u8; 32],
    /// Who started the job.
    pub launcher: Launcher,
    /// CPU binding policy (`ZR_BIND`, default `core`).
    pub bind: Bind,
    /// Address other nodes can reach this rank at.
    pub advertise_ip: std::net::IpAddr,
}

/// PMI-like key-value exchange. `fence` is collective over all ranks of the job: puts made
/// before it are visible to gets after it, on every rank.
pub trait Kvs {
    /// Publish `key = value` (key <= 32 chars, value <= 200 printable ASCII chars, no spaces).
    fn put(&mut self, key: &str, value: &str) -> Result<(), BootstrapError>;
    /// Collective barrier that makes earlier puts globally visible.
    fn fence(&mut self) -> Result<(), BootstrapError>;
    /// Read a key put by any rank before the last fence.
    fn get(&mut self, key: &str) -> Result<String, BootstrapError>;
    /// Leave the key-value exchange; no further calls are allowed.
    fn finalize(&mut self) -> Result<(), BootstrapError>;
}

/// Longest key accepted (Hydra's limit is 64; we keep half of it).
pub const MAX_KEY_LEN: usize = 32;
/// Longest value accepted (well under Hydra's 1024).
pub const MAX_VALUE_LEN: usize = 200;
/// The key under which rank 0 publishes the job secret when the launcher has none.
pub const SECRET_KEY: &str = "zr-secret";

/// Find out how this process was launched, and join the job.
pub fn bootstrap() -> Result<(JobInfo, Box<dyn Kvs>), BootstrapError> {
    let launcher = detect();
    tracing::debug!(?launcher, "bootstrap: launcher detected");
    match launcher {
        Launcher::Zrun => zrun::bootstrap(),
        Launcher::SlurmPmi2 => slurm::bootstrap_pmi2(),
        Launcher::Hydra => hydra::bootstrap(),
        Launcher::Manual => manual::bootstrap(),
        Launcher::SlurmEnv => slurm::bootstrap_env(),
        Launcher::Singleton => memkvs::bootstrap_singleton(),
    }
}

/// Which launcher the environment points to (see the module docs for the order).
pub fn detect() -> Launcher {
    let has = |v: &str| std::env::var_os(v).is_some();
    if std::env::var("ZR_LAUNCHER").as_deref() == Ok("zrun") {
        return Launcher::Zrun;
    }
    let hydra_marks = has("MPI_LOCALRANKID") || has("HYDI_CONTROL_FD") || has("PMI_PORT");
    if has("PMI_FD") && has("PMI_JOBID") && has("SLURM_PROCID") && !hydra_marks {
        return Launcher::SlurmPmi2;
    }
    if (has("PMI_FD") || has("PMI_PORT")) && has("PMI_RANK") && has("PMI_SIZE") {
        return Launcher::Hydra;
    }
    if has("ZR_COORD") {
        return Launcher::Manual;
    }
    if has("SLURM_PROCID") && (has("SLURM_STEP_ID") || has("SLURM_STEPID")) {
        return Launcher::SlurmEnv;
    }
    Launcher::Singleton
}

/// Check a key and value against the limits every launcher supports.
pub(crate) fn check_kv(key: &str, value: Option<&str>) -> Result<(), BootstrapError> {
    let ok_key = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'=' && b != b';');
    if !ok_key {
        return Err(BootstrapError::InvalidKey {
            key: key.chars().take(64).collect(),
        });
    }
    if let Some(v) = value {
        let ok = v.len() <= MAX_VALUE_LEN && v.bytes().all(|b| b.is_ascii_graphic() && b != b'=');
        if !ok {
            return Err(BootstrapError::InvalidValue {
                key: key.to_string(),
                len: v.len(),
            });
        }
    }
    Ok(())
}

/// Rank 0 generates the job secret and puts it; everyone fences and reads it.
pub(crate) fn exchange_secret(rank: u32, kvs: &mut dyn Kvs) -> Result<[u8; 32], BootstrapError> {
    if rank == 0 {
        let secret: [u8; 32] = rand::random();
        kvs.put(SECRET_KEY, &hex::encode(secret))?;
    }
    kvs.fence()?;
    let v = kvs.get(SECRET_KEY)?;
    env::parse_secret_value(&v).ok_or_else(|| BootstrapError::Protocol {
        peer: "key-value store".into(),
        detail: format!("the value of {SECRET_KEY} is not 64 hex digits"),
    })
}

/// A stable 64-bit hash of a string (first 8 bytes of SHA-256), for job ids and ports.
pub(crate) fn hash64(s: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(s.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_checks() {
        assert!(check_kv("ep-3", Some("0;10.77.0.2:41234;12345")).is_ok());
        assert!(check_kv("", None).is_err());
        assert!(check_kv("a b", None).is_err());
        assert!(check_kv(&"k".repeat(33), None).is_err());
        assert!(check_kv("k", Some("has space")).is_err());
        assert!(check_kv("k", Some(&"v".repeat(201))).is_err());
        assert!(check_kv("k", Some("a=b")).is_err());
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(hash64("x"), hash64("x"));
        assert_ne!(hash64("x"), hash64("y"));
    }
}
