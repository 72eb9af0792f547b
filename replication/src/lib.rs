//! # zerorank-replication
//!
//! Replication protocols built on the zerorank transport. [`abcast`] is built (its protocol
//! core and simulator); the rest of this page is the plan. Every protocol is a sans-IO state machine (events in, actions
//! out, no sockets, no clocks), driven by the glommio runtime in production and by a seeded
//! simulator in tests.
//!
//! Planned modules:
//!
//! * `ring`: bidirectional-ring atomic broadcast (Harness distributed control): broadcasts
//!   travel both ways round the ring, stability knowledge returns the same way, total order.
//! * `membership`: leader-based group membership (XVM): views, join/leave, state transfer,
//!   neighbour fault detection, view change with re-sending of unstable messages and
//!   duplicate filtering by (origin, sequence), majority-only progress under partitions.
//! * `agreement`: agreement on a value and linear transaction histories on top of the ring.
//! * `determinant` / `eventlog` / `rollback`: O2P optimistic message logging with
//!   sender-based payload logs, an active distributed event logger, rollback and replay.
//! * `copyset` / `coherence`: write-invalidate distributed shared memory (K. Li), Vigne's
//!   STAT and DYN ownership protocols, and an on-node shared-memory fast path.
//! * `sim`: the deterministic simulator (seeded; crashes, partitions, drops, delays,
//!   reordering) and the checkers of each protocol's promised properties.

pub mod abcast;
