//! Reliable FIFO links between members, over one of two [`Carrier`]s: datagrams that
//! may be dropped, duplicated, delayed and reordered (one of the simulator's networks),
//! or FIFO connections that lose what was in flight only when they break (TCP and shared
//! memory in the runtime; the simulator's other network).
//!
//! Every frame to a peer carries the sender's sequence number for that peer and the
//! cumulative acknowledgement of the peer's frames. The receiver passes frames on in
//! sequence order exactly once (a duplicate or an old frame is dropped, a frame from
//! the future waits for the gap to fill); the sender keeps every frame until it is
//! acknowledged. Over datagrams it sends the unacknowledged ones again when the peer has
//! been silent about them for the retransmission interval. Over connections it sends
//! them again when its driver reports that a connection to the peer broke or could not
//! be made ([`Links::reset`]), and otherwise only after a stall (below): a frame on a
//! live connection is not lost, so the driver must report every way a frame can be
//! dropped, and a short timer cannot tell a lost frame from one queued behind megabytes
//! of others. At full load an
//! acknowledgement can wait longer than any fixed interval behind the data in the
//! kernel's socket buffers; sending the whole window again then doubled the load and
//! made the queues longer still (3 members at 1 MiB with a 32 MiB window: 50-800 MB/s
//! a member with the timer, 1,170-1,260 without it).
//!
//! Acknowledgements ride on the frames going the other way. A bare one (a frame with no
//! body) goes only when nothing has gone back for the acknowledgement delay, or when
//! [`ACK_EVERY`] frames wait for one, as TCP delays its ACKs: answering every frame at
//! once doubled the frames of a lightly loaded ring (each member's report drew a bare
//! acknowledgement back), and every frame costs its receiver a wake-up. The delay is
//! well inside the retransmission interval, so nothing is sent again for want of it.
//!
//! Over connections a *stall* is caught as well: frames waiting with no acknowledgement
//! and no resend for [`STALL_RETRANSMITS`] retransmission intervals (1 s with the
//! defaults). Unless the driver dropped them knowingly (the runtime holds frames for a
//! peer it has no address for, or is still connecting to) that should not happen: every
//! way a frame can be lost must be reported. If some path drops a frame silently all the
//! same, the link sends the unacknowledged frames again instead of stalling for good,
//! and says so ([`Links::take_stalls`]: the runtime logs a warning unless it knows why,
//! the simulator fails the seed when the peer was up, reachable and had not retired the
//! sender). A peer that is slow, not gone, gets the window again at most once per
//! doubling interval (up to [`STALL_BACKOFF_MAX`] doublings: every 32 s at the most),
//! and drops the duplicates.
//!
//! A peer that left the member's view is *retired*: its link state is dropped (nothing
//! is sent again to a member that may be dead), and frames to or from it go unsequenced
//! (`seq` 0 with a body), passed on at once, in no particular order, and never sent
//! again. Only idempotent messages go that way (telling a member left behind which view
//! the group is in).

use super::types::NodeId;
use super::wire::Wire;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// Frames received and not yet acknowledged at which a bare acknowledgement goes at once
/// (so a one-way stream does not wait for the delay to free the sender's queue).
pub const ACK_EVERY: u32 = 32;

/// Over connections: retransmission intervals with frames waiting and no acknowledgement
/// before the link calls it a stall and sends them again (see the module docs).
pub const STALL_RETRANSMITS: u64 = 25;

/// Doublings of the stall interval for a peer that stays silent (see the module docs).
pub const STALL_BACKOFF_MAX: u32 = 5;

/// What the links run over (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// Datagrams, which may be lost: unacknowledged frames go again on a timer.
    Datagrams,
    /// FIFO connections, which lose frames only when they break: unacknowledged frames
    /// go again after [`Links::reset`], at most once per retransmission interval.
    Connections,
}

impl Frame {
    /// `body` unsequenced: passed on at once, never sent again, acknowledging nothing
    /// (to or from a retired peer, or an idempotent message the sender repeats anyway,
    /// such as a joiner's request to be let in, which would otherwise pile up
    /// unacknowledged for a peer that is down).
    pub fn unsequenced(body: Wire) -> Frame {
        Frame {
            seq: 0,
            ack: 0,
            body: Some(body),
        }
    }
}

/// A datagram between two members.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Frame {
    /// The sender's sequence number of this frame on the link (from 1); 0 for a bare
    /// acknowledgement (no body) or an unsequenced frame (a body, to or from a retired
    /// peer).
    pub seq: u64,
    /// Every frame of the receiver's up to this one has arrived.
    pub ack: u64,
    pub body: Option<Wire>,
}

#[derive(Default)]
struct Link {
    next_seq: u64,
    unacked: VecDeque<(u64, Wire)>,
    /// When the oldest unacknowledged frame was last sent (or an acknowledgement last
    /// freed some).
    sent_at: u64,
    /// Stalls in a row with no acknowledgement since (each doubles the next interval).
    stalls: u32,
    /// Over connections: the connection broke, so the unacknowledged frames go again
    /// (at this time or later: see [`Links::reset`]).
    resend_at: Option<u64>,
    /// When the unacknowledged frames last went again.
    resent_at: Option<u64>,
    /// The next sequence number expected from the peer.
    recv_next: u64,
    early: BTreeMap<u64, Wire>,
    /// When the oldest frame the peer has not heard acknowledged arrived (`None`: all
    /// acknowledged), and how many such frames there are.
    ack_due_since: Option<u64>,
    ack_owed: u32,
    last_heard: u64,
    last_sent: u64,
}

impl Link {
    /// When the unacknowledged frames are due to go again, if they are, and whether that
    /// is for a stall: after a reset ([`Links::reset`]); else over datagrams once the
    /// peer has been silent about them for `rto`, over connections after a stall.
    fn resend_due(&self, carrier: Carrier, rto: u64) -> Option<(u64, bool)> {
        if let Some(t) = self.resend_at {
            return Some((t, false));
        }
        if self.unacked.is_empty() {
            return None;
        }
        Some(match carrier {
            Carrier::Datagrams => (self.sent_at + rto, false),
            Carrier::Connections => {
                // (At most 2^5 * 25 retransmission intervals: no overflow for any sane
                // interval, and none past u64::MAX for an insane one.)
                let stall = rto
                    .saturating_mul(STALL_RETRANSMITS)
                    .saturating_mul(1 << self.stalls.min(STALL_BACKOFF_MAX));
                (self.sent_at.saturating_add(stall), true)
            }
        })
    }

    /// A frame goes to the peer now: it carries the acknowledgement of everything
    /// received, so none is owed any more.
    fn sending(&mut self, now: u64) {
        self.ack_due_since = None;
        self.ack_owed = 0;
        self.last_sent = now;
    }
}

/// All of one member's links.
pub struct Links {
    links: HashMap<NodeId, Link>,
    retired: HashSet<NodeId>,
    carrier: Carrier,
    retransmit: u64,
    ack_delay: u64,
    /// Stalls caught since [`Links::take_stalls`] was last called.
    stalled: Vec<Stall>,
}

/// A link over a connection that stalled (see the module docs): frames waited for
/// `silent_ms` since the last acknowledgement or sending again, with no reported break,
/// so they went again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    pub peer: NodeId,
    pub silent_ms: u64,
    /// Frames sent again.
    pub frames: usize,
}

impl Links {
    /// Links over `carrier` that send unacknowledged frames again after `retransmit`
    /// (over connections: after a reset, at most that often) and hold a bare
    /// acknowledgement back for up to `ack_delay` (which must be shorter).
    pub fn new(carrier: Carrier, retransmit: u64, ack_delay: u64) -> Self {
        assert!(retransmit > 0, "a retransmission interval");
        assert!(
            ack_delay < retransmit,
            "acknowledgements held back for {ack_delay} ms would make the peer send again after {retransmit} ms"
        );
        Links {
            links: HashMap::new(),
            retired: HashSet::new(),
            carrier,
            retransmit,
            ack_delay,
            stalled: Vec::new(),
        }
    }

    fn link(&mut self, peer: NodeId, now: u64) -> &mut Link {
        self.links.entry(peer).or_insert_with(|| Link {
            next_seq: 1,
            recv_next: 1,
            last_heard: now,
            last_sent: now,
            sent_at: now,
            ..Link::default()
        })
    }

    /// Queue `body` for `peer`; the frame to put on the wire.
    pub fn send(&mut self, now: u64, peer: NodeId, body: Wire) -> Frame {
        if self.retired.contains(&peer) {
            return Frame::unsequenced(body);
        }
        let l = self.link(peer, now);
        let seq = l.next_seq;
        l.next_seq += 1;
        if l.unacked.is_empty() {
            l.sent_at = now;
        }
        l.unacked.push_back((seq, body.clone()));
        l.sending(now);
        Frame {
            seq,
            ack: l.recv_next - 1,
            body: Some(body),
        }
    }

    /// A frame from `peer`: the messages it releases, in order.
    pub fn receive(&mut self, now: u64, peer: NodeId, frame: Frame) -> Vec<Wire> {
        if frame.seq == 0 && frame.body.is_some() {
            return frame.body.into_iter().collect(); // unsequenced
        }
        if self.retired.contains(&peer) {
            return frame.body.into_iter().collect();
        }
        let l = self.link(peer, now);
        l.last_heard = now;
        while l.unacked.front().is_some_and(|(s, _)| *s <= frame.ack) {
            l.unacked.pop_front();
            l.sent_at = now;
            l.stalls = 0;
        }
        let mut out = Vec::new();
        let Some(body) = frame.body else {
            return out;
        };
        l.ack_due_since.get_or_insert(now);
        l.ack_owed = l.ack_owed.saturating_add(1);
        if frame.seq < l.recv_next {
            return out; // a duplicate
        }
        l.early.insert(frame.seq, body);
        while let Some(b) = l.early.remove(&l.recv_next) {
            out.push(b);
            l.recv_next += 1;
        }
        out
    }

    /// The frames to send now: bare acknowledgements that are due (see the module
    /// docs), and the unacknowledged frames that are due to go again (over datagrams,
    /// of links silent about them for the retransmission interval; over connections,
    /// of links [`reset`](Links::reset)).
    pub fn flush(&mut self, now: u64) -> Vec<(NodeId, Frame)> {
        let mut out = Vec::new();
        let (rto, delay) = (self.retransmit, self.ack_delay);
        for (&peer, l) in &mut self.links {
            let due = l.resend_due(self.carrier, rto).filter(|&(t, _)| now >= t);
            let resend = due.is_some();
            if resend {
                l.resend_at = None;
            }
            if let Some((_, true)) = due {
                self.stalled.push(Stall {
                    peer,
                    silent_ms: now - l.sent_at,
                    frames: l.unacked.len(),
                });
                l.stalls = l.stalls.saturating_add(1);
            }
            if !l.unacked.is_empty() && resend {
                for (seq, body) in &l.unacked {
                    out.push((
                        peer,
                        Frame {
                            seq: *seq,
                            ack: l.recv_next - 1,
                            body: Some(body.clone()),
                        },
                    ));
                }
                l.sent_at = now;
                l.resent_at = Some(now);
                l.sending(now);
            }
            let due = l
                .ack_due_since
                .is_some_and(|t| now >= t + delay || l.ack_owed >= ACK_EVERY);
            if due {
                out.push((
                    peer,
                    Frame {
                        seq: 0,
                        ack: l.recv_next - 1,
                        body: None,
                    },
                ));
                l.sending(now);
            }
        }
        // Deterministic order (the map's is not).
        out.sort_by_key(|(p, f)| (*p, f.seq));
        self.stalled.sort_by_key(|s| s.peer);
        out
    }

    /// The stalls caught by [`flush`](Links::flush) since the last call.
    pub fn take_stalls(&mut self) -> Vec<Stall> {
        std::mem::take(&mut self.stalled)
    }

    /// Was `peer` retired (it left a view of this member's)?
    pub fn is_retired(&self, peer: NodeId) -> bool {
        self.retired.contains(&peer)
    }

    /// When `peer` was last heard from (`None`: never talked to).
    pub fn last_heard(&self, peer: NodeId) -> Option<u64> {
        self.links.get(&peer).map(|l| l.last_heard)
    }

    /// When a frame last went to `peer`.
    pub fn last_sent(&self, peer: NodeId) -> Option<u64> {
        self.links.get(&peer).map(|l| l.last_sent)
    }

    /// Over connections: the connection carrying this member's frames to `peer` broke
    /// (or could not be made), so the unacknowledged frames may be lost: send them again,
    /// over the next one. Not sooner than a retransmission interval after they last
    /// went, so that a connection that keeps failing does not make a busy loop. (Over
    /// datagrams the timer sends them again anyway.)
    pub fn reset(&mut self, now: u64, peer: NodeId) {
        if self.retired.contains(&peer) || self.carrier != Carrier::Connections {
            return;
        }
        let rto = self.retransmit;
        if let Some(l) = self.links.get_mut(&peer) {
            let at = l.resent_at.map_or(now, |t| (t + rto).max(now));
            l.resend_at.get_or_insert(at);
        }
    }

    /// Start hearing from `peer` afresh (a new neighbour).
    pub fn touch(&mut self, now: u64, peer: NodeId) {
        let l = self.link(peer, now);
        l.last_heard = now;
    }

    /// Retire `peer` (it left the view): nothing is sent to it again, and what goes to
    /// or comes from it from now on is unsequenced.
    pub fn retire(&mut self, peer: NodeId) {
        self.links.remove(&peer);
        self.retired.insert(peer);
    }

    /// The earliest time a retransmission or a bare acknowledgement may be due.
    pub fn next_deadline(&self) -> Option<u64> {
        self.links
            .values()
            .flat_map(|l| {
                let resend = l.resend_due(self.carrier, self.retransmit).map(|(t, _)| t);
                let ack = l.ack_due_since.map(|t| t + self.ack_delay);
                resend.into_iter().chain(ack)
            })
            .min()
    }

    /// Frames waiting for acknowledgement, over all links (for back-pressure and tests).
    pub fn in_flight(&self) -> usize {
        self.links.values().map(|l| l.unacked.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_duplicates_and_reorders_into_sequence() {
        let mut a = Links::new(Carrier::Datagrams, 10, 2);
        let mut b = Links::new(Carrier::Datagrams, 10, 2);
        let f1 = a.send(0, 2, Wire::Heartbeat);
        let f2 = a.send(0, 2, Wire::Join { who: 9 });
        assert!(b.receive(1, 1, f2.clone()).is_empty(), "waits for frame 1");
        assert_eq!(b.receive(1, 1, f1.clone()).len(), 2);
        assert!(b.receive(2, 1, f1).is_empty(), "duplicate");
        assert!(b.receive(2, 1, f2).is_empty(), "duplicate");
        // b acknowledges once the delay has passed; a stops retransmitting.
        assert!(b.flush(2).is_empty(), "the bare acknowledgement waits");
        assert_eq!(b.next_deadline(), Some(3));
        let acks = b.flush(3);
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].1.ack, 2);
        assert!(acks[0].1.body.is_none());
        a.receive(4, 2, acks[0].1.clone());
        assert!(a.flush(100).is_empty());
        assert_eq!(
            a.next_deadline(),
            None,
            "nothing left to send or acknowledge"
        );
    }

    #[test]
    fn a_retired_peer_gets_unsequenced_frames_and_its_frames_pass_at_once() {
        let mut a = Links::new(Carrier::Datagrams, 10, 2);
        a.send(0, 2, Wire::Heartbeat);
        a.retire(2);
        let f = a.send(1, 2, Wire::Join { who: 1 });
        assert_eq!(f.seq, 0, "unsequenced");
        assert!(
            a.flush(100).is_empty(),
            "nothing is sent again to a retired peer"
        );
        let late = Frame {
            seq: 7,
            ack: 0,
            body: Some(Wire::Heartbeat),
        };
        assert_eq!(
            a.receive(101, 2, late).len(),
            1,
            "passed on out of sequence"
        );
        let mut b = Links::new(Carrier::Datagrams, 10, 2);
        assert_eq!(
            b.receive(0, 1, f).len(),
            1,
            "an unsequenced frame passes at once"
        );
    }

    #[test]
    fn retransmits_until_acknowledged() {
        let mut a = Links::new(Carrier::Datagrams, 10, 2);
        a.send(0, 2, Wire::Heartbeat);
        assert!(a.flush(5).is_empty());
        assert_eq!(a.flush(10).len(), 1);
        assert!(a.flush(15).is_empty());
        assert_eq!(a.flush(20).len(), 1);
    }

    #[test]
    fn an_acknowledgement_rides_on_a_frame_back_or_goes_bare_when_due() {
        let mut a = Links::new(Carrier::Datagrams, 40, 5);
        let mut b = Links::new(Carrier::Datagrams, 40, 5);
        let f = a.send(0, 2, Wire::Heartbeat);
        b.receive(1, 1, f);
        // A frame back within the delay carries the acknowledgement: no bare one.
        let back = b.send(3, 1, Wire::Join { who: 2 });
        assert_eq!(back.ack, 1);
        assert!(b.flush(100).iter().all(|(_, f)| f.body.is_some()));
        a.receive(4, 2, back);
        assert_eq!(a.in_flight(), 0, "acknowledged by the frame back");
        // A one-way stream: acknowledged at once every ACK_EVERY frames.
        let mut owed = 0;
        for k in 0..ACK_EVERY {
            let f = a.send(10, 2, Wire::Heartbeat);
            b.receive(10, 1, f);
            owed += 1;
            let acks = b.flush(10);
            if k + 1 < ACK_EVERY {
                assert!(acks.is_empty(), "{owed} frames owed: not yet");
            } else {
                assert_eq!(acks.len(), 1, "{owed} frames owed: a bare acknowledgement");
                a.receive(10, 2, acks[0].1.clone());
            }
        }
        assert_eq!(a.in_flight(), 0);
    }

    /// Over connections nothing goes again on the retransmission timer, however long an
    /// acknowledgement takes (short of a stall); after a reset everything unacknowledged
    /// goes once, and a connection that keeps breaking gets it at most once per
    /// retransmission interval.
    #[test]
    fn over_connections_frames_go_again_only_after_a_reset() {
        let mut a = Links::new(Carrier::Connections, 40, 5);
        a.send(0, 2, Wire::Heartbeat);
        a.send(1, 2, Wire::Join { who: 1 });
        assert!(a.flush(999).is_empty(), "no retransmission timer");
        assert_eq!(a.next_deadline(), Some(40 * STALL_RETRANSMITS), "a stall");
        a.reset(999, 2);
        assert_eq!(a.next_deadline(), Some(999));
        let again = a.flush(999);
        assert_eq!(
            again.iter().map(|(_, f)| f.seq).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(a.flush(1000).is_empty(), "once");
        // It breaks again at once: not before a retransmission interval has passed.
        a.reset(1000, 2);
        assert!(a.flush(1038).is_empty());
        assert_eq!(a.flush(1039).len(), 2);
        assert!(a.take_stalls().is_empty(), "resets are not stalls");
        // Acknowledged: a reset sends nothing, and no stall is due.
        let mut b = Links::new(Carrier::Connections, 40, 5);
        for f in again {
            b.receive(1040, 1, f.1);
        }
        let ack = b.flush(1045);
        assert_eq!(ack.len(), 1);
        a.receive(1046, 2, ack[0].1.clone());
        a.reset(20_000, 2);
        assert!(a.flush(20_000).is_empty());
        assert_eq!(a.next_deadline(), None);
        // Over datagrams a reset changes nothing (the timer resends).
        let mut d = Links::new(Carrier::Datagrams, 40, 5);
        d.send(0, 2, Wire::Heartbeat);
        d.reset(1, 2);
        assert!(d.flush(1).is_empty());
        assert_eq!(d.flush(40).len(), 1);
        assert!(d.take_stalls().is_empty(), "no stalls over datagrams");
    }

    /// A frame lost on a connection with no break reported: after the stall interval
    /// the link sends it again and says so; a peer that stays silent gets it again at
    /// doubling intervals, and an acknowledgement ends the stall.
    #[test]
    fn over_connections_a_stall_sends_again_and_is_reported() {
        let stall = 40 * STALL_RETRANSMITS;
        let mut a = Links::new(Carrier::Connections, 40, 5);
        let lost = a.send(0, 2, Wire::Heartbeat);
        let second = a.send(10, 2, Wire::Join { who: 1 });
        assert!(a.flush(stall - 1).is_empty());
        let again = a.flush(stall);
        assert_eq!(
            again.iter().map(|(_, f)| f.seq).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(
            a.take_stalls(),
            vec![Stall {
                peer: 2,
                silent_ms: stall,
                frames: 2
            }]
        );
        assert!(a.take_stalls().is_empty(), "reported once");
        // Still nothing back: the next one waits twice as long, then four times.
        assert_eq!(a.next_deadline(), Some(stall + 2 * stall));
        assert!(a.flush(3 * stall - 1).is_empty());
        assert_eq!(a.flush(3 * stall).len(), 2);
        assert_eq!(a.next_deadline(), Some(3 * stall + 4 * stall));
        // The doubling stops at STALL_BACKOFF_MAX.
        let mut t = 3 * stall;
        for k in 2..STALL_BACKOFF_MAX + 3 {
            t += stall << k.min(STALL_BACKOFF_MAX);
            assert_eq!(a.next_deadline(), Some(t), "after {k} stalls");
            assert_eq!(a.flush(t).len(), 2);
        }
        assert_eq!(a.take_stalls().len(), STALL_BACKOFF_MAX as usize + 2);
        // The peer gets the frames (the lost one first time round is a duplicate now)
        // and acknowledges: the stall is over and its count starts again.
        let mut b = Links::new(Carrier::Connections, 40, 5);
        assert_eq!(b.receive(t, 1, second).len(), 0, "waits for frame 1");
        assert_eq!(b.receive(t, 1, lost).len(), 2);
        let ack = b.flush(t + 5);
        a.receive(t + 6, 2, ack[0].1.clone());
        assert_eq!(a.in_flight(), 0);
        assert_eq!(a.next_deadline(), None);
        a.send(t + 7, 2, Wire::Heartbeat);
        assert_eq!(a.next_deadline(), Some(t + 7 + stall), "counted afresh");
    }
}
