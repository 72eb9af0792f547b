//! Bidirectional-ring atomic broadcast with leader-based group membership (after the
//! Harness distributed control and XVM's membership protocol), written sans-IO: a
//! [`Member`] is a pure state machine (frames, broadcasts and the time in; frames to
//! send, deliveries and views out). The runtime drives it in production and the seeded
//! simulator ([`sim`]) in tests.
//!
//! # The ring
//!
//! A view's members form a ring, oldest first. A member sends its broadcast both ways at
//! once: rightwards to the next `n / 2` members and leftwards to the `(n - 1) / 2` before
//! it, each hop forwarding it one member on, so every member gets it once and no copy
//! travels more than `n / 2` hops. Each member's progress report (its acknowledgement:
//! Lamport clock, highest sequence number received from each origin, last delivery)
//! goes round the same way, aggregated per batch of received broadcasts.
//!
//! # Total order: Lamport timestamps, delivered when stable
//!
//! A broadcast carries its origin's Lamport timestamp; the total order is by
//! `(timestamp, origin)`. A member delivers the first broadcast `m` in that order once
//! every member of the view has (a) reported a clock at or beyond `m`'s timestamp and (b)
//! reported that it has received `m`. Why it is safe, given reliable FIFO links
//! ([`link`]):
//! - every message a member `j` sends (broadcast or report) reaches this member along one
//!   fixed path, so in the order `j` sent them; a report of `j` with clock `c` therefore
//!   arrives after every broadcast `j` sent with a timestamp `<= c`, and `j`'s later
//!   broadcasts have timestamps `> c`. With (a) for every `j`, nothing that sorts before
//!   `m` can still arrive, so the order is the same everywhere;
//! - with (b) `m` is *stable*: every member holds it. A delivered broadcast is therefore
//!   in every survivor's log when the view changes, which gives uniform agreement.
//!
//! About `n / 2` hops take a broadcast to the farthest member and its report takes
//! `n / 2` back: about `n` steps per atomic broadcast (a one-way ring needs `2n`), with
//! `n - 1` data messages and the reports shared by every broadcast of a batch. Each
//! member may have [`Config::window`] broadcasts undelivered (back-pressure), and
//! Lamport timestamps interleave the senders, so none starves.
//!
//! # Views: a leader-run consensus on the successor
//!
//! Ring neighbours watch each other (heartbeats; silence for [`Config::suspect_after`] or
//! a connection error is a suspicion) and tell the *coordinator*, the oldest member not
//! suspected. It leads a view change, a single-decree Paxos among the base view's
//! members on the value "next view, and the broadcasts of this view to deliver before
//! it":
//! 1. `Prepare(round)`: a member that promises stops acknowledging and delivering in the
//!    base view and answers with every broadcast of the view it holds (and any decision it
//!    accepted earlier);
//! 2. with promises from a majority (all unsuspected members, or a majority after
//!    [`Config::change_timeout`]), the leader proposes: a decision some promiser already
//!    accepted if there is one, else the promisers (minus leavers, plus joiners) and the
//!    union of their logs in total order, duplicates by `(origin, sequence)` removed;
//! 3. once a majority accepted it, it is chosen; the leader sends `Commit`. Every member
//!    delivers the flush's broadcasts it has not delivered, in order, then installs the
//!    new view (virtual synchrony: members moving on together delivered the same set).
//!
//! A promise freezes its member, so nothing becomes stable after the logs are taken, and
//! every delivered broadcast (stable) is in every promiser's log: the flush extends every
//! member's delivered prefix. Majorities intersect, so at most one successor of a view is
//! ever chosen: there is one primary view at a time. A member outside the chosen view,
//! or a leader that cannot reach a majority for [`Config::give_up_rounds`] rounds, stops
//! with [`Action::Blocked`] saying why; it comes back by joining again under a new id.
//! When the leader fails, members that waited in vain for it suspect it and the next
//! oldest leads a higher round, which re-proposes whatever may have been chosen.
//!
//! Joiners are added by a view change; every member that was in the view before then
//! asks the application for its state ([`Action::StateNeeded`]), before it delivers
//! anything of the new view, and sends it to the joiner, which keeps the first that
//! comes, delivers nothing before it has it, and takes no part in view changes until
//! then.

pub mod agreement;
pub mod checker;
pub mod codec;
pub mod link;
mod log;
pub mod member;
pub mod payload;
pub mod runtime;
pub mod shm_link;
pub mod sim;
pub mod types;
pub mod wire;

pub use bytes::Bytes;
pub use link::Carrier;
pub use member::{Action, BroadcastError, Config, Member, Mutation, NeighbourMark};
pub use types::{LogEntry, MemberLog, MsgId, NodeId, View, ViewId};
