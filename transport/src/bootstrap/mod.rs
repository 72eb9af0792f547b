//! Bootstrap: job identity and the key-value exchange (PMI-like).
//!
//! CONTRACT (filled in by the bootstrap work):
//!
//! ```ignore
//! pub enum Launcher { Singleton, Zrun, Hydra, SlurmPmi2, SlurmEnv, Manual }
//! pub struct JobInfo {
//!     pub job_id: u64, pub rank: u32, pub size: u32,
//!     pub local_rank: u32, pub local_size: u32, pub node_id: u32,
//!     pub secret: [u8; 32], pub launcher: Launcher,
//!     pub bind: zerorank_core::affinity::Bind,      // ZR_BIND (zrun --bind), default Core
//!     pub advertise_ip: std::net::IpAddr,           // address other nodes reach this rank at
//! }
//! pub trait Kvs { fn put(&mut self, k: &str, v: &str) -> Result<(), BootstrapError>;
//!                 fn fence(&mut self) -> Result<(), BootstrapError>;
//!                 fn get(&mut self, k: &str) -> Result<String, BootstrapError>;
//!                 fn finalize(&mut self) -> Result<(), BootstrapError>; }
//! pub fn bootstrap() -> Result<(JobInfo, Box<dyn Kvs>), BootstrapError>;
//! ```
