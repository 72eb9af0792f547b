//! # zerorank-transport
//!
//! How ranks find each other and move bytes.
//!
//! * [`bootstrap`]: who am I, who else is in the job, and a key-value exchange to swap
//!   endpoints. Works under `zrun`, Slurm `srun` (PMI-2 when offered, else the Slurm
//!   environment), MPICH Hydra `mpiexec` (PMI-1 over `PMI_FD`), a manual multi-node mode
//!   driven by environment variables, and as a singleton.
//! * [`shm`]: the on-node fast path: one `/dev/shm` segment per node (mode 0600, unlinked as
//!   soon as every local rank has mapped it), lock-free single-producer single-consumer
//!   rings per ordered pair of ranks, a futex doorbell for blocking waits, and single-copy
//!   reads of large messages with `process_vm_readv` (CMA) when ranks share cores (with a
//!   core per rank, a pipelined copy through the rings is faster).
//! * [`tcp`]: between nodes, glommio io_uring sockets with an authenticated handshake
//!   (HMAC-SHA256 challenge-response over the per-job secret) and length-prefixed frames.
//! * [`matching`]: MPI matching semantics (communicator, source, tag, wildcards, no
//!   overtaking), as a pure data structure.
//! * [`fabric`]: the per-rank progress engine that routes frames to shared memory or TCP,
//!   runs the eager and rendezvous protocols and feeds the matcher.
//! * [`launcher`]: the `zrun` launcher (binary `zrun`).

pub mod bootstrap;
pub mod fabric;
pub mod launcher;
pub mod logging;
pub mod matching;
pub mod shm;
pub mod tcp;
