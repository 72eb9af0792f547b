//! The names the ring protocol, its simulator and its checker share: members, views,
//! message identities, and the delivery log each member keeps for the checker.

use bytes::Bytes;
use std::fmt;

/// A member's identity. A restarted process joins again under a new id, so an id names
/// one incarnation. The group's initial members get ids in age order (lower is older);
/// later joiners get ids above every id seen so far.
pub type NodeId = u64;

/// A view's identity: the round of the view change that chose it and the leader that
/// ran that round. Ordered by round, then leader, so that two rounds never compare equal.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct ViewId {
    pub round: u64,
    pub leader: NodeId,
}

impl fmt::Display for ViewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.leader)
    }
}

/// A view: its id and its members, oldest first (the first is the leader). The ring is
/// the members in this order, the last one's right neighbour being the first.
#[derive(Clone, Debug, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct View {
    pub id: ViewId,
    pub members: Vec<NodeId>,
}

impl View {
    /// The position of `m` in the ring, if it is a member.
    pub fn position(&self, m: NodeId) -> Option<usize> {
        self.members.iter().position(|&x| x == m)
    }

    pub fn contains(&self, m: NodeId) -> bool {
        self.members.contains(&m)
    }

    /// How many members a majority of this view is.
    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }
}

/// A broadcast's identity: its origin and the origin's sequence number for it (from 1,
/// counted over the origin's whole life, across views).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct MsgId {
    pub origin: NodeId,
    pub seq: u64,
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.origin, self.seq)
    }
}

/// One line of a member's delivery log, in the order it happened at that member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEntry {
    /// The member installed `View` (its first entry is the first view it is in).
    View(View),
    /// It delivered broadcast `id` with `payload`, in view `view`.
    Deliver {
        view: ViewId,
        id: MsgId,
        payload: Bytes,
    },
    /// It stopped delivering: it is outside any majority component (`reason` says why).
    Blocked { reason: String },
}

/// What the checker knows of one member incarnation: its log, what it broadcast, and
/// how its life ended.
#[derive(Clone, Debug, Default)]
pub struct MemberLog {
    pub node: NodeId,
    pub entries: Vec<LogEntry>,
    /// Every broadcast the application handed to it (accepted, not refused for
    /// back-pressure), in order.
    pub sent: Vec<(MsgId, Bytes)>,
    /// It crashed (or was killed, or left a minority to rejoin under a new id) at some
    /// point; its log ends there.
    pub crashed: bool,
}
