//! The protocol's messages between members (what one member's state machine hands to
//! the transport for another). The runtime encodes them; the simulator passes them as
//! values.

use super::types::{MsgId, NodeId, View, ViewId};
use bytes::Bytes;

/// A broadcast as it travels and as members keep it until it is stable everywhere.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Data {
    pub id: MsgId,
    /// Lamport timestamp: the total order is by `(ts, id.origin)`.
    pub ts: u64,
    /// Shared, not copied (see [`payload`](super::payload)).
    #[rkyv(with = super::payload::Shared)]
    pub payload: Bytes,
}

impl Data {
    /// The key of the total order.
    pub fn key(&self) -> (u64, NodeId) {
        (self.ts, self.id.origin)
    }
}

/// What the leader of a view change proposes, and what is chosen: the next view and the
/// broadcasts of the base view every member of it delivers before installing it.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Decision {
    /// The view it replaces.
    pub base: ViewId,
    pub view: View,
    /// Every broadcast of the base view known to the promising majority, in total order.
    pub flush: Vec<Data>,
}

/// A protocol message.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Wire {
    /// A broadcast of view `view`, to be forwarded `hops - 1` more members the way it came.
    Data {
        view: ViewId,
        hops: u32,
        data: Data,
    },
    /// Member `from`'s progress in view `view`, routed like its broadcasts: its Lamport
    /// clock, the highest sequence number it has received of every origin, and the key
    /// of the last broadcast it delivered.
    Ack {
        view: ViewId,
        hops: u32,
        from: NodeId,
        clock: u64,
        received: Vec<(NodeId, u64)>,
        delivered: (u64, NodeId),
    },
    /// Keeps a ring link alive when there is nothing else to send.
    Heartbeat,
    /// A member that did not run for a while asks a ring neighbour whether the group
    /// still goes on with it ([`Member::ping_neighbours`](super::Member::ping_neighbours)):
    /// it was in view `view` when it asked.
    Ping {
        view: ViewId,
        nonce: u64,
    },
    /// The answer to `Ping { nonce, .. }`: the sender is in a view that holds the pinger,
    /// and in no view change. A member frozen in a view change answers once it is over:
    /// `Pong` if its new view holds the pinger, else `Outdated`.
    Pong {
        nonce: u64,
    },
    /// `who` seems to have failed (sent to the member that should lead the view change).
    Suspect {
        base: ViewId,
        who: NodeId,
    },
    /// A process asks to join the group.
    Join {
        who: NodeId,
    },
    /// A member asks to leave the group.
    Leave {
        base: ViewId,
        who: NodeId,
    },
    /// Phase 1 of a view change: promise round `round` for the successor of `base`.
    Prepare {
        base: ViewId,
        round: ViewId,
    },
    /// The promise, with every broadcast of `base` this member holds and the decision it
    /// last accepted for `base`, if any.
    Promise {
        base: ViewId,
        round: ViewId,
        log: Vec<Data>,
        accepted: Option<(ViewId, Decision)>,
    },
    /// This member promised a higher round already.
    Nack {
        base: ViewId,
        promised: ViewId,
    },
    /// Phase 2: accept `decision` in round `round`.
    Accept {
        round: ViewId,
        decision: Decision,
    },
    Accepted {
        base: ViewId,
        round: ViewId,
    },
    /// The decision is chosen: deliver its flush, install its view.
    Commit {
        decision: Decision,
    },
    /// The sender's view, to a member outside it still talking from an older view.
    Outdated {
        view: View,
    },
    /// A joiner's copy of the group's state, taken when it was added (application bytes).
    State {
        view: ViewId,
        state: Vec<u8>,
    },
    /// `who`, whose join the receiver passed on, was in a view of the group once and
    /// left it: it cannot be let in again (it must come back under a new id), so the
    /// receiver stops asking for it, and retires `who` for good. Safe because a process
    /// id is never used twice: a process that starts again takes a new one.
    Gone {
        who: NodeId,
    },
}

impl Wire {
    /// A short name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Wire::Data { .. } => "data",
            Wire::Ack { .. } => "ack",
            Wire::Heartbeat => "heartbeat",
            Wire::Ping { .. } => "ping",
            Wire::Pong { .. } => "pong",
            Wire::Suspect { .. } => "suspect",
            Wire::Join { .. } => "join",
            Wire::Leave { .. } => "leave",
            Wire::Prepare { .. } => "prepare",
            Wire::Promise { .. } => "promise",
            Wire::Nack { .. } => "nack",
            Wire::Accept { .. } => "accept",
            Wire::Accepted { .. } => "accepted",
            Wire::Commit { .. } => "commit",
            Wire::Outdated { .. } => "outdated",
            Wire::State { .. } => "state",
            Wire::Gone { .. } => "gone",
        }
    }
}
