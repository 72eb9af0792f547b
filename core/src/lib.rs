//! # zerorank-core
//!
//! The bottom layer of zerorank: what one rank process is made of.
//!
//! * [`frame`]: the fixed wire header every message carries, an rkyv 0.8 archive that is
//!   read in place and validated (bytecheck) before use.
//! * [`small_frame`]: the compact header of a small eager message between ranks of one
//!   node, which travels in a ring slot's control line.
//! * [`buffer`]: aligned, pooled receive buffers, so the hot path does not allocate.
//! * [`affinity`]: which CPU a rank runs on, chosen by local rank from the set the process
//!   may use (`sched_getaffinity`, so Slurm and cgroup binding are respected).
//! * [`memlock`]: the locked-memory (`RLIMIT_MEMLOCK`) check done before glommio starts.
//! * [`executor`]: builds the one glommio executor of a rank, pinned to its CPU.
//!
//! ```
//! use zerorank_core::frame::{FrameHeader, FrameKind, HEADER_LEN};
//! let h = FrameHeader { job: 7, comm: 0, src: 1, dst: 0, tag: 5, seq: 1, len: 3,
//!                       kind: FrameKind::Eager, ..FrameHeader::default() };
//! let mut bytes = zerorank_core::frame::HeaderBytes::default();
//! h.encode(&mut bytes);
//! let view = zerorank_core::frame::access(bytes.as_slice()).unwrap();
//! assert_eq!(view.tag.to_native(), 5);
//! assert_eq!(HEADER_LEN, 64);
//! ```

pub mod affinity;
pub mod buffer;
pub mod executor;
pub mod frame;
pub mod memlock;
pub mod small_frame;
