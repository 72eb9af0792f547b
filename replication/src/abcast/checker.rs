//! The checker of the ring broadcast's promised properties, run on the member logs a
//! simulation recorded (one [`MemberLog`] per member incarnation).
//!
//! [`check`] verifies the properties in the order of [`Property`] and returns the first
//! violation it finds, with a detail naming the members, views and messages involved, so
//! that a failing seed can be debugged from the message alone.
//!
//! Words used below: a *correct* member is one whose log has `crashed == false` and does
//! not end in [`LogEntry::Blocked`]; a member *delivered m in view v* if its log has a
//! [`LogEntry::Deliver`] of `m` whose `view` is `v`; a member went *from v directly to w*
//! if its log's View entry for `w` is the next View entry after the one for `v`.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use super::types::{LogEntry, MemberLog, MsgId, NodeId, View, ViewId};

/// What [`check`] verifies besides the safety properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Also check the properties that need the group to make progress:
    /// [`Property::Validity`] (a correct member delivers what it sent) and
    /// [`Property::Liveness`] (the run ended with every correct member in one final view
    /// made of exactly the correct members). Turn it off for runs that were stopped
    /// before the group could settle, or that left no majority of the last view running.
    pub liveness: bool,
}

impl Default for CheckOptions {
    /// Every property, liveness included.
    fn default() -> Self {
        CheckOptions { liveness: true }
    }
}

/// A property the protocol promises; [`check`] verifies them in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Property {
    /// No member delivers a message twice; every delivered message was sent by its origin
    /// with the same payload; every delivery is in the view the member last installed.
    Integrity,
    /// A correct member delivers every message it sent (checked with
    /// [`CheckOptions::liveness`]: it needs the group to make progress).
    Validity,
    /// If any member (even one that crashed later) delivers m in view v, every correct
    /// member that installed v delivers m, in v.
    UniformAgreement,
    /// Any two members deliver the messages they both deliver in the same order.
    TotalOrder,
    /// Each member delivers each origin's messages in sequence order and, between two it
    /// delivers, every one the origin sent.
    Fifo,
    /// Two members that go from view v directly to the same view w delivered the same set
    /// of messages in v.
    VirtualSynchrony,
    /// A view id always names the same member list, which has no duplicates and contains
    /// every member that installs it; each member installs views in increasing id order.
    ViewConsistency,
    /// The installed views form one chain: no view has two different successors.
    SinglePrimary,
    /// A member that logged `Blocked` delivers nothing more unless a new view follows (the
    /// deliveries being the flush of the view change that ends its block).
    Blocked,
    /// At the end some member is correct, and all correct members are in the same last
    /// view, whose members are exactly the correct members.
    Liveness,
}

/// A property the logs break, and how (which members, views and messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The property broken.
    pub property: Property,
    /// What breaks it, for a human.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.property, self.detail)
    }
}

impl std::error::Error for Violation {}

/// Checks `logs` (one per member incarnation of a run) against every property of
/// [`Property`], in that order ([`Property::Validity`] and [`Property::Liveness`] only if
/// `opts.liveness`), and
/// returns the first violation found.
pub fn check(logs: &[MemberLog], opts: CheckOptions) -> Result<(), Violation> {
    check_integrity(logs)?;
    if opts.liveness {
        check_validity(logs)?;
    }
    check_uniform_agreement(logs)?;
    check_total_order(logs)?;
    check_fifo(logs)?;
    check_virtual_synchrony(logs)?;
    check_view_consistency(logs)?;
    check_single_primary(logs)?;
    check_blocked(logs)?;
    if opts.liveness {
        check_liveness(logs)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The properties, one function each.
// ---------------------------------------------------------------------------------------

/// [`Property::Integrity`].
fn check_integrity(logs: &[MemberLog]) -> Result<(), Violation> {
    let sent = sent_by_origin(logs);
    for log in logs {
        let node = log.node;
        let mut current: Option<ViewId> = None;
        let mut delivered_at: HashMap<MsgId, usize> = HashMap::new();
        for (index, entry) in log.entries.iter().enumerate() {
            let (view, id, payload) = match entry {
                LogEntry::View(v) => {
                    current = Some(v.id);
                    continue;
                }
                LogEntry::Deliver { view, id, payload } => (*view, *id, &payload[..]),
                LogEntry::Blocked { .. } => continue,
            };
            match current {
                None => {
                    return fail(
                        Property::Integrity,
                        format!(
                            "member {node} delivered {id} in view {view} (entry {index}) \
                             before installing any view"
                        ),
                    )
                }
                Some(cur) if cur != view => {
                    return fail(
                        Property::Integrity,
                        format!(
                            "member {node} delivered {id} in view {view} (entry {index}), \
                             but the view it last installed is {cur}"
                        ),
                    )
                }
                Some(_) => {}
            }
            if let Some(first) = delivered_at.insert(id, index) {
                return fail(
                    Property::Integrity,
                    format!("member {node} delivered {id} twice (entries {first} and {index})"),
                );
            }
            let origin = id.origin;
            let invented = match sent.get(&origin) {
                None => Some(format!("there is no log of its origin {origin}")),
                Some(by_id) => match by_id.get(&id) {
                    None => Some(format!("its origin {origin} never sent it")),
                    Some(&p) if p != payload => Some(format!(
                        "its origin {origin} sent it with payload {}, not {}",
                        fmt_payload(p),
                        fmt_payload(payload)
                    )),
                    Some(_) => None,
                },
            };
            if let Some(why) = invented {
                return fail(
                    Property::Integrity,
                    format!(
                        "member {node} delivered {id} in view {view} (entry {index}), which is \
                         invented: {why}"
                    ),
                );
            }
        }
    }
    Ok(())
}

/// [`Property::Validity`].
fn check_validity(logs: &[MemberLog]) -> Result<(), Violation> {
    for log in logs.iter().filter(|l| is_correct(l)) {
        let delivered: HashSet<MsgId> = deliveries(log).map(|d| d.id).collect();
        if let Some((id, _)) = log.sent.iter().find(|(id, _)| !delivered.contains(id)) {
            return fail(
                Property::Validity,
                format!(
                    "correct member {} sent {id} but never delivered it (its last view: {})",
                    log.node,
                    last_view_name(log)
                ),
            );
        }
    }
    Ok(())
}

/// [`Property::UniformAgreement`].
fn check_uniform_agreement(logs: &[MemberLog]) -> Result<(), Violation> {
    /// What a correct member installed and delivered.
    struct Correct {
        node: NodeId,
        installed: HashSet<ViewId>,
        delivered: HashMap<MsgId, ViewId>,
    }
    let correct: Vec<Correct> = logs
        .iter()
        .filter(|l| is_correct(l))
        .map(|l| Correct {
            node: l.node,
            installed: views(l).map(|(_, v)| v.id).collect(),
            delivered: deliveries(l).map(|d| (d.id, d.view)).collect(),
        })
        .collect();
    if correct.is_empty() {
        return Ok(());
    }
    let mut checked: HashSet<(MsgId, ViewId)> = HashSet::new();
    for log in logs {
        for d in deliveries(log) {
            if !checked.insert((d.id, d.view)) {
                continue;
            }
            for c in correct.iter().filter(|c| c.installed.contains(&d.view)) {
                let missed = match c.delivered.get(&d.id) {
                    Some(&w) if w == d.view => continue,
                    Some(&w) => format!("delivered it in view {w} instead"),
                    None => "never delivered it".to_string(),
                };
                return fail(
                    Property::UniformAgreement,
                    format!(
                        "member {}{} delivered {} in view {}, but correct member {}, which \
                         installed {}, {missed}",
                        log.node,
                        if log.crashed { " (crashed)" } else { "" },
                        d.id,
                        d.view,
                        c.node,
                        d.view
                    ),
                );
            }
        }
    }
    Ok(())
}

/// [`Property::TotalOrder`].
fn check_total_order(logs: &[MemberLog]) -> Result<(), Violation> {
    let orders: Vec<Vec<MsgId>> = logs
        .iter()
        .map(|l| deliveries(l).map(|d| d.id).collect())
        .collect();
    let positions: Vec<HashMap<MsgId, usize>> = orders
        .iter()
        .map(|order| order.iter().enumerate().map(|(k, &id)| (id, k)).collect())
        .collect();
    for (i, a) in logs.iter().enumerate() {
        for (j, b) in logs.iter().enumerate().skip(i + 1) {
            let in_b = &positions[j];
            // The last message of a's order that b also delivered, and its place in b's.
            let mut last: Option<(MsgId, usize)> = None;
            for &id in &orders[i] {
                let Some(&pos) = in_b.get(&id) else { continue };
                if let Some((prev, prev_pos)) = last {
                    if pos <= prev_pos {
                        return fail(
                            Property::TotalOrder,
                            format!(
                                "members {} and {} disagree on the order of {prev} and {id}: \
                                 {} delivered {prev} before {id} (in views {} and {}), {} \
                                 delivered {id} before {prev} (in views {} and {})",
                                a.node,
                                b.node,
                                a.node,
                                delivery_view(a, prev),
                                delivery_view(a, id),
                                b.node,
                                delivery_view(b, id),
                                delivery_view(b, prev)
                            ),
                        );
                    }
                }
                last = Some((id, pos));
            }
        }
    }
    Ok(())
}

/// [`Property::Fifo`].
fn check_fifo(logs: &[MemberLog]) -> Result<(), Violation> {
    // Each origin's sent sequence numbers, sorted.
    let mut sent_seqs: HashMap<NodeId, Vec<u64>> = HashMap::new();
    for log in logs {
        let seqs = sent_seqs.entry(log.node).or_default();
        seqs.extend(
            log.sent
                .iter()
                .filter(|(id, _)| id.origin == log.node)
                .map(|(id, _)| id.seq),
        );
    }
    for seqs in sent_seqs.values_mut() {
        seqs.sort_unstable();
        seqs.dedup();
    }
    for log in logs {
        let node = log.node;
        let mut last_seq: HashMap<NodeId, u64> = HashMap::new();
        for d in deliveries(log) {
            let MsgId { origin, seq } = d.id;
            if let Some(&prev) = last_seq.get(&origin) {
                let prev_id = MsgId { origin, seq: prev };
                if seq <= prev {
                    return fail(
                        Property::Fifo,
                        format!(
                            "member {node} delivered {} (view {}) after {prev_id} (view {}): \
                             origin {origin}'s messages out of order",
                            d.id,
                            d.view,
                            delivery_view(log, prev_id)
                        ),
                    );
                }
                // Consecutive deliveries of the origin's messages in strictly increasing
                // order: any sent seq between them was never delivered by this member.
                if let Some(seqs) = sent_seqs.get(&origin) {
                    let k = seqs.partition_point(|&s| s <= prev);
                    if k < seqs.len() && seqs[k] < seq {
                        let skipped = MsgId {
                            origin,
                            seq: seqs[k],
                        };
                        return fail(
                            Property::Fifo,
                            format!(
                                "member {node} delivered {prev_id} (view {}) and then {} \
                                 (view {}) but never {skipped}, which origin {origin} sent",
                                delivery_view(log, prev_id),
                                d.id,
                                d.view
                            ),
                        );
                    }
                }
            }
            last_seq.insert(origin, seq);
        }
    }
    Ok(())
}

/// [`Property::VirtualSynchrony`].
fn check_virtual_synchrony(logs: &[MemberLog]) -> Result<(), Violation> {
    let delivered: Vec<HashMap<ViewId, HashSet<MsgId>>> = logs
        .iter()
        .map(|l| {
            let mut by_view: HashMap<ViewId, HashSet<MsgId>> = HashMap::new();
            for d in deliveries(l) {
                by_view.entry(d.view).or_default().insert(d.id);
            }
            by_view
        })
        .collect();
    let empty = HashSet::new();
    // For each transition v -> w, the first log (index) seen making it.
    let mut first: HashMap<(ViewId, ViewId), usize> = HashMap::new();
    for (i, log) in logs.iter().enumerate() {
        for (v, w) in transitions(log) {
            let j = match first.entry((v, w)) {
                Entry::Vacant(e) => {
                    e.insert(i);
                    continue;
                }
                Entry::Occupied(e) => *e.get(),
            };
            let in_j = delivered[j].get(&v).unwrap_or(&empty);
            let in_i = delivered[i].get(&v).unwrap_or(&empty);
            if in_j != in_i {
                let only_j: Vec<MsgId> = in_j.difference(in_i).copied().collect();
                let only_i: Vec<MsgId> = in_i.difference(in_j).copied().collect();
                return fail(
                    Property::VirtualSynchrony,
                    format!(
                        "members {} and {} both went from view {v} directly to view {w} but \
                         delivered different messages in {v}: only {} delivered {}; only {} \
                         delivered {}",
                        logs[j].node,
                        log.node,
                        logs[j].node,
                        fmt_ids(only_j),
                        log.node,
                        fmt_ids(only_i)
                    ),
                );
            }
        }
    }
    Ok(())
}

/// [`Property::ViewConsistency`].
fn check_view_consistency(logs: &[MemberLog]) -> Result<(), Violation> {
    // Each view id's member list, and the first member seen installing it.
    let mut known: HashMap<ViewId, (&[NodeId], NodeId)> = HashMap::new();
    for log in logs {
        let node = log.node;
        let mut prev: Option<ViewId> = None;
        for (index, view) in views(log) {
            let id = view.id;
            let members = view.members.as_slice();
            let mut seen = HashSet::new();
            if let Some(dup) = members.iter().find(|&&m| !seen.insert(m)) {
                return fail(
                    Property::ViewConsistency,
                    format!(
                        "view {id} installed by member {node} (entry {index}) lists member \
                         {dup} twice: {members:?}"
                    ),
                );
            }
            if !view.contains(node) {
                return fail(
                    Property::ViewConsistency,
                    format!(
                        "member {node} installed view {id} (entry {index}) whose members \
                         {members:?} do not include it"
                    ),
                );
            }
            if let Some(p) = prev {
                if id <= p {
                    return fail(
                        Property::ViewConsistency,
                        format!(
                            "member {node} installed view {id} (entry {index}) after view {p}: \
                             view ids must strictly increase"
                        ),
                    );
                }
            }
            prev = Some(id);
            match known.entry(id) {
                Entry::Vacant(e) => {
                    e.insert((members, node));
                }
                Entry::Occupied(e) => {
                    let (other, by) = *e.get();
                    if other != members {
                        return fail(
                            Property::ViewConsistency,
                            format!(
                                "view {id} has members {other:?} at member {by} but \
                                 {members:?} at member {node}"
                            ),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// [`Property::SinglePrimary`].
fn check_single_primary(logs: &[MemberLog]) -> Result<(), Violation> {
    // Each view's successor, and the first member seen going there from it.
    let mut successor: HashMap<ViewId, (ViewId, NodeId)> = HashMap::new();
    for log in logs {
        for (v, w) in transitions(log) {
            match successor.entry(v) {
                Entry::Vacant(e) => {
                    e.insert((w, log.node));
                }
                Entry::Occupied(e) => {
                    let (other, by) = *e.get();
                    if other != w {
                        return fail(
                            Property::SinglePrimary,
                            format!(
                                "view {v} has two successors: member {by} went from {v} to \
                                 {other}, member {} went from {v} to {w}",
                                log.node
                            ),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// [`Property::Blocked`]: a member that blocked delivers nothing more in its view except
/// as part of a view change that ends the block (the flush of its view, after which it
/// installs the next view, or stops for good with a final `Blocked` when it is not in
/// it): no delivery follows a log's last `Blocked` unless a new view comes after it.
fn check_blocked(logs: &[MemberLog]) -> Result<(), Violation> {
    for log in logs {
        let last_view = log
            .entries
            .iter()
            .rposition(|e| matches!(e, LogEntry::View(_)));
        let Some(at) = log
            .entries
            .iter()
            .rposition(|e| matches!(e, LogEntry::Blocked { .. }))
        else {
            continue;
        };
        if last_view.is_some_and(|v| v > at) {
            continue;
        }
        let LogEntry::Blocked { reason } = &log.entries[at] else {
            unreachable!("found above")
        };
        if let Some((k, next)) = log
            .entries
            .iter()
            .enumerate()
            .skip(at + 1)
            .find(|(_, e)| matches!(e, LogEntry::Deliver { .. }))
        {
            return fail(
                Property::Blocked,
                format!(
                    "member {} logged {} (entry {k}) after it blocked at entry {at} ({reason}), and installed no view after",
                    log.node,
                    describe(next),
                ),
            );
        }
    }
    Ok(())
}

/// [`Property::Liveness`].
fn check_liveness(logs: &[MemberLog]) -> Result<(), Violation> {
    let correct: Vec<&MemberLog> = logs.iter().filter(|l| is_correct(l)).collect();
    if correct.is_empty() {
        let ends: Vec<String> = logs
            .iter()
            .map(|l| {
                let how = if l.crashed { "crashed" } else { "blocked" };
                format!("{} {how}", l.node)
            })
            .collect();
        return fail(
            Property::Liveness,
            format!("no correct member at the end: [{}]", ends.join(", ")),
        );
    }
    let mut last: Option<(&View, NodeId)> = None;
    for log in &correct {
        let Some((_, view)) = views(log).last() else {
            return fail(
                Property::Liveness,
                format!("correct member {} never installed a view", log.node),
            );
        };
        match last {
            None => last = Some((view, log.node)),
            Some((other, by)) if other.id != view.id => {
                return fail(
                    Property::Liveness,
                    format!(
                        "correct members ended in different views: member {by} in {} {:?}, \
                         member {} in {} {:?}",
                        other.id, other.members, log.node, view.id, view.members
                    ),
                )
            }
            Some(_) => {}
        }
    }
    let Some((view, _)) = last else {
        return Ok(());
    };
    let correct_ids: BTreeSet<NodeId> = correct.iter().map(|l| l.node).collect();
    let members: BTreeSet<NodeId> = view.members.iter().copied().collect();
    if members != correct_ids {
        let not_correct: Vec<NodeId> = members.difference(&correct_ids).copied().collect();
        let outside: Vec<NodeId> = correct_ids.difference(&members).copied().collect();
        return fail(
            Property::Liveness,
            format!(
                "the final view {} has members {:?} but the correct members are {:?} \
                 (members not correct: {not_correct:?}; correct members outside it: \
                 {outside:?})",
                view.id,
                view.members,
                correct_ids.iter().collect::<Vec<_>>()
            ),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------

fn fail(property: Property, detail: String) -> Result<(), Violation> {
    Err(Violation { property, detail })
}

/// Whether the member is correct: it did not crash and its log does not end blocked.
fn is_correct(log: &MemberLog) -> bool {
    !log.crashed && !matches!(log.entries.last(), Some(LogEntry::Blocked { .. }))
}

/// One `Deliver` entry of a log.
struct Delivery {
    view: ViewId,
    id: MsgId,
}

/// The log's deliveries, in order.
fn deliveries(log: &MemberLog) -> impl Iterator<Item = Delivery> + '_ {
    log.entries.iter().filter_map(|e| match e {
        LogEntry::Deliver { view, id, .. } => Some(Delivery {
            view: *view,
            id: *id,
        }),
        _ => None,
    })
}

/// The log's View entries, in order, with their entry indices.
fn views(log: &MemberLog) -> impl Iterator<Item = (usize, &View)> + '_ {
    log.entries.iter().enumerate().filter_map(|(k, e)| match e {
        LogEntry::View(v) => Some((k, v)),
        _ => None,
    })
}

/// The log's view changes: each installed view id with the next one installed.
fn transitions(log: &MemberLog) -> Vec<(ViewId, ViewId)> {
    let ids: Vec<ViewId> = views(log).map(|(_, v)| v.id).collect();
    ids.windows(2).map(|w| (w[0], w[1])).collect()
}

/// Every origin's sent payloads by message id, from the `sent` lists of the logs whose
/// node is that origin (the first payload wins if an id was recorded twice).
fn sent_by_origin(logs: &[MemberLog]) -> HashMap<NodeId, HashMap<MsgId, &[u8]>> {
    let mut sent: HashMap<NodeId, HashMap<MsgId, &[u8]>> = HashMap::new();
    for log in logs {
        let by_id = sent.entry(log.node).or_default();
        for (id, payload) in &log.sent {
            by_id.entry(*id).or_insert(&payload[..]);
        }
    }
    sent
}

/// The view in which the log delivered `id`, for details ("?" if it did not).
fn delivery_view(log: &MemberLog, id: MsgId) -> String {
    deliveries(log)
        .find(|d| d.id == id)
        .map_or_else(|| "?".to_string(), |d| d.view.to_string())
}

/// The id of the last view the log installed, for details.
fn last_view_name(log: &MemberLog) -> String {
    views(log)
        .last()
        .map_or_else(|| "none".to_string(), |(_, v)| v.id.to_string())
}

/// A log entry in a few words, for details.
fn describe(entry: &LogEntry) -> String {
    match entry {
        LogEntry::View(v) => format!("view {} {:?}", v.id, v.members),
        LogEntry::Deliver { view, id, .. } => format!("a delivery of {id} in view {view}"),
        LogEntry::Blocked { reason } => format!("another Blocked ({reason})"),
    }
}

/// Message ids, sorted, at most a few of them.
fn fmt_ids(mut ids: Vec<MsgId>) -> String {
    const SHOWN: usize = 8;
    ids.sort_unstable();
    let mut s: Vec<String> = ids.iter().take(SHOWN).map(|id| id.to_string()).collect();
    if ids.len() > SHOWN {
        s.push(format!("and {} more", ids.len() - SHOWN));
    }
    format!("[{}]", s.join(", "))
}

/// A payload, as text if it is short printable ASCII, else as its first bytes in hex.
fn fmt_payload(p: &[u8]) -> String {
    const SHOWN: usize = 16;
    if p.len() <= 2 * SHOWN && p.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        return format!("{:?} ({} bytes)", String::from_utf8_lossy(p), p.len());
    }
    let hex: String = p.iter().take(SHOWN).map(|b| format!("{b:02x}")).collect();
    let more = if p.len() > SHOWN { "..." } else { "" };
    format!("0x{hex}{more} ({} bytes)", p.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const V1: ViewId = ViewId {
        round: 1,
        leader: 1,
    };
    const V2: ViewId = ViewId {
        round: 2,
        leader: 1,
    };
    const V3: ViewId = ViewId {
        round: 3,
        leader: 1,
    };

    fn view(id: ViewId, members: &[NodeId]) -> View {
        View {
            id,
            members: members.to_vec(),
        }
    }

    fn msg(origin: NodeId, seq: u64) -> MsgId {
        MsgId { origin, seq }
    }

    /// The payload every test message carries: its id as text.
    fn payload(id: MsgId) -> Bytes {
        id.to_string().into_bytes().into()
    }

    fn deliver(view: ViewId, origin: NodeId, seq: u64) -> LogEntry {
        let id = msg(origin, seq);
        LogEntry::Deliver {
            view,
            id,
            payload: payload(id),
        }
    }

    /// Builds one member's log: views installed, deliveries in the current view, sends.
    struct Builder {
        log: MemberLog,
        current: Option<ViewId>,
    }

    fn member(node: NodeId) -> Builder {
        Builder {
            log: MemberLog {
                node,
                ..MemberLog::default()
            },
            current: None,
        }
    }

    impl Builder {
        /// It broadcast its messages with these seqs.
        fn sent(mut self, seqs: &[u64]) -> Self {
            for &s in seqs {
                let id = msg(self.log.node, s);
                self.log.sent.push((id, payload(id)));
            }
            self
        }

        fn install(mut self, v: &View) -> Self {
            self.current = Some(v.id);
            self.log.entries.push(LogEntry::View(v.clone()));
            self
        }

        /// It delivered these (origin, seq) in the view it installed last.
        fn deliver(mut self, msgs: &[(NodeId, u64)]) -> Self {
            let view = self.current.expect("deliver before install");
            for &(o, s) in msgs {
                self.log.entries.push(deliver(view, o, s));
            }
            self
        }

        fn blocked(mut self, reason: &str) -> Self {
            self.log.entries.push(LogEntry::Blocked {
                reason: reason.to_string(),
            });
            self
        }

        fn crashed(mut self) -> Self {
            self.log.crashed = true;
            self
        }

        fn build(self) -> MemberLog {
            self.log
        }
    }

    const FIRST: [(NodeId, u64); 4] = [(1, 1), (2, 1), (3, 1), (1, 2)];
    const SECOND: [(NodeId, u64); 2] = [(2, 2), (1, 3)];

    /// Members 1, 2, 3 in view 1.1; 3 crashes having delivered a prefix of what 1 and 2
    /// deliver in 1.1 (its 3#2 never got out); 1 and 2 go on in view 2.1.
    fn scenario() -> Vec<MemberLog> {
        let v1 = view(V1, &[1, 2, 3]);
        let v2 = view(V2, &[1, 2]);
        vec![
            member(1)
                .sent(&[1, 2, 3])
                .install(&v1)
                .deliver(&FIRST)
                .install(&v2)
                .deliver(&SECOND)
                .build(),
            member(2)
                .sent(&[1, 2])
                .install(&v1)
                .deliver(&FIRST)
                .install(&v2)
                .deliver(&SECOND)
                .build(),
            member(3)
                .sent(&[1, 2])
                .install(&v1)
                .deliver(&FIRST[..3])
                .crashed()
                .build(),
        ]
    }

    /// The index of log's delivery of `id`.
    fn position(log: &MemberLog, id: MsgId) -> usize {
        log.entries
            .iter()
            .position(|e| matches!(e, LogEntry::Deliver { id: x, .. } if *x == id))
            .expect("not delivered")
    }

    fn insert_after(log: &mut MemberLog, after: MsgId, entry: LogEntry) {
        let k = position(log, after);
        log.entries.insert(k + 1, entry);
    }

    fn remove_delivery(log: &mut MemberLog, id: MsgId) {
        let k = position(log, id);
        log.entries.remove(k);
    }

    /// Asserts `check` fails on `property`, and returns the violation.
    fn expect(logs: &[MemberLog], property: Property) -> Violation {
        let v = check(logs, CheckOptions::default())
            .expect_err(&format!("expected a {property:?} violation"));
        assert_eq!(v.property, property, "wrong violation: {v}");
        v
    }

    fn ok(logs: &[MemberLog]) {
        if let Err(v) = check(logs, CheckOptions::default()) {
            panic!("unexpected violation: {v}");
        }
    }

    #[test]
    fn valid_scenario_with_view_change_passes() {
        ok(&scenario());
    }

    #[test]
    fn default_options_check_liveness() {
        assert!(CheckOptions::default().liveness);
    }

    #[test]
    fn member_ending_blocked_is_not_correct() {
        let mut logs = scenario();
        // 3 did not crash but blocked in a minority: it need not deliver its own 3#2,
        // nor what 1 and 2 delivered in 1.1 after it blocked, nor be in the final view.
        logs[2].crashed = false;
        logs[2].entries.push(LogEntry::Blocked {
            reason: "minority".into(),
        });
        ok(&logs);
    }

    #[test]
    fn rejoin_under_new_id_passes() {
        let mut logs = scenario();
        // 3 restarts as 4, joins in view 3.1 and delivers what follows.
        let v3 = view(V3, &[1, 2, 4]);
        for log in &mut logs[..2] {
            log.entries.push(LogEntry::View(v3.clone()));
            log.entries.push(deliver(V3, 4, 1));
        }
        logs.push(member(4).sent(&[1]).install(&v3).deliver(&[(4, 1)]).build());
        ok(&logs);
    }

    #[test]
    fn integrity_duplicate_delivery() {
        let mut logs = scenario();
        logs[0].entries.push(deliver(V2, 2, 2));
        let v = expect(&logs, Property::Integrity);
        assert!(v.detail.contains("member 1 delivered 2#2 twice"), "{v}");
    }

    #[test]
    fn integrity_changed_payload() {
        let mut logs = scenario();
        let k = position(&logs[1], msg(1, 2));
        logs[1].entries[k] = LogEntry::Deliver {
            view: V1,
            id: msg(1, 2),
            payload: Bytes::from_static(b"forged"),
        };
        let v = expect(&logs, Property::Integrity);
        assert!(v.detail.contains("invented"), "{v}");
        assert!(v.detail.contains("1#2"), "{v}");
    }

    #[test]
    fn integrity_unknown_origin() {
        let mut logs = scenario();
        logs[0].entries.push(deliver(V2, 9, 1));
        let v = expect(&logs, Property::Integrity);
        assert!(v.detail.contains("no log of its origin 9"), "{v}");
    }

    #[test]
    fn integrity_never_sent() {
        let mut logs = scenario();
        logs[0].entries.push(deliver(V2, 2, 7));
        let v = expect(&logs, Property::Integrity);
        assert!(v.detail.contains("never sent"), "{v}");
    }

    #[test]
    fn integrity_delivery_in_wrong_view() {
        let mut logs = scenario();
        let k = position(&logs[0], msg(2, 2));
        logs[0].entries[k] = deliver(V1, 2, 2);
        let v = expect(&logs, Property::Integrity);
        assert!(v.detail.contains("last installed is 2.1"), "{v}");
    }

    #[test]
    fn integrity_delivery_before_any_view() {
        let mut logs = scenario();
        logs[2].entries.remove(0);
        let v = expect(&logs, Property::Integrity);
        assert!(v.detail.contains("before installing any view"), "{v}");
    }

    #[test]
    fn validity_correct_member_misses_own_message() {
        let mut logs = scenario();
        let id = msg(1, 4);
        logs[0].sent.push((id, payload(id)));
        let v = expect(&logs, Property::Validity);
        assert!(v.detail.contains("member 1 sent 1#4"), "{v}");
    }

    #[test]
    fn uniform_agreement_crashed_member_delivered_more() {
        let mut logs = scenario();
        // 3 delivered its 3#2 in 1.1 before crashing; 1 and 2 never did.
        logs[2].entries.push(deliver(V1, 3, 2));
        let v = expect(&logs, Property::UniformAgreement);
        assert!(v.detail.contains("3#2"), "{v}");
        assert!(v.detail.contains("never delivered"), "{v}");
    }

    #[test]
    fn uniform_agreement_delivered_in_another_view() {
        let mut logs = scenario();
        // 2 delivers 1#2 only after installing 2.1.
        remove_delivery(&mut logs[1], msg(1, 2));
        insert_after(&mut logs[1], msg(1, 3), deliver(V2, 1, 2));
        let v = expect(&logs, Property::UniformAgreement);
        assert!(v.detail.contains("in view 2.1 instead"), "{v}");
    }

    #[test]
    fn total_order_swapped_between_members() {
        let mut logs = scenario();
        let a = position(&logs[1], msg(1, 1));
        let b = position(&logs[1], msg(2, 1));
        logs[1].entries.swap(a, b);
        let v = expect(&logs, Property::TotalOrder);
        assert!(v.detail.contains("members 1 and 2"), "{v}");
        assert!(v.detail.contains("1#1") && v.detail.contains("2#1"), "{v}");
    }

    #[test]
    fn fifo_out_of_order() {
        let v1 = view(V1, &[1]);
        let logs = vec![member(1)
            .sent(&[1, 2])
            .install(&v1)
            .deliver(&[(1, 2), (1, 1)])
            .build()];
        let v = expect(&logs, Property::Fifo);
        assert!(v.detail.contains("out of order"), "{v}");
    }

    #[test]
    fn fifo_gap() {
        let mut logs = scenario();
        // 3 (crashed) also sent 3#3; 1 and 2 deliver 3#1 and 3#3 but skip 3#2.
        let id = msg(3, 3);
        logs[2].sent.push((id, payload(id)));
        for log in &mut logs[..2] {
            insert_after(log, msg(1, 2), deliver(V1, 3, 3));
        }
        let v = expect(&logs, Property::Fifo);
        assert!(v.detail.contains("never 3#2"), "{v}");
    }

    #[test]
    fn virtual_synchrony_different_sets() {
        let mut logs = scenario();
        // 1 and 2 both crash later in 2.1, so agreement does not bind them; 2 missed 3#1.
        logs[0].crashed = true;
        logs[1].crashed = true;
        remove_delivery(&mut logs[1], msg(3, 1));
        let v = expect(&logs, Property::VirtualSynchrony);
        assert!(
            v.detail.contains("from view 1.1 directly to view 2.1"),
            "{v}"
        );
        assert!(v.detail.contains("only 1 delivered [3#1]"), "{v}");
    }

    #[test]
    fn view_consistency_same_id_different_members() {
        let mut logs = scenario();
        let k = logs[1]
            .entries
            .iter()
            .position(|e| matches!(e, LogEntry::View(v) if v.id == V2))
            .unwrap();
        logs[1].entries[k] = LogEntry::View(view(V2, &[1, 2, 3]));
        let v = expect(&logs, Property::ViewConsistency);
        assert!(v.detail.contains("view 2.1 has members"), "{v}");
    }

    #[test]
    fn view_consistency_ids_not_increasing() {
        let mut logs = scenario();
        logs[0].entries.push(LogEntry::View(view(V1, &[1, 2, 3])));
        let v = expect(&logs, Property::ViewConsistency);
        assert!(v.detail.contains("strictly increase"), "{v}");
    }

    #[test]
    fn view_consistency_installer_not_member() {
        let mut logs = scenario();
        let w = ViewId {
            round: 2,
            leader: 3,
        };
        logs[2].entries.push(LogEntry::View(view(w, &[1, 2])));
        let v = expect(&logs, Property::ViewConsistency);
        assert!(v.detail.contains("member 3 installed view 2.3"), "{v}");
    }

    #[test]
    fn view_consistency_duplicate_members() {
        let mut logs = scenario();
        for log in &mut logs[..2] {
            for e in &mut log.entries {
                if let LogEntry::View(v) = e {
                    if v.id == V2 {
                        v.members = vec![1, 2, 1];
                    }
                }
            }
        }
        let v = expect(&logs, Property::ViewConsistency);
        assert!(v.detail.contains("twice"), "{v}");
    }

    #[test]
    fn single_primary_two_successors() {
        let mut logs = scenario();
        // Split brain: 3 went from 1.1 to a view of its own instead of crashing.
        let w = ViewId {
            round: 2,
            leader: 3,
        };
        logs[2].entries.push(LogEntry::View(view(w, &[3])));
        let v = expect(&logs, Property::SinglePrimary);
        assert!(v.detail.contains("view 1.1 has two successors"), "{v}");
        assert!(v.detail.contains("2.1") && v.detail.contains("2.3"), "{v}");
    }

    #[test]
    fn blocked_then_flush_then_a_new_view_is_fine() {
        let v1 = view(V1, &[1, 2, 3]);
        let mut b = member(3).sent(&[]).install(&v1).blocked("no majority");
        b = b.deliver(&FIRST[..1]);
        let log = b.build();
        let mut logs = vec![log];
        logs[0].entries.push(LogEntry::View(View {
            id: ViewId {
                round: 9,
                leader: 3,
            },
            members: vec![3],
        }));
        assert!(check_blocked(&logs).is_ok());
    }

    #[test]
    fn blocked_then_more_entries() {
        let mut logs = scenario();
        logs[2] = member(3)
            .sent(&[1, 2])
            .install(&view(V1, &[1, 2, 3]))
            .deliver(&FIRST[..2])
            .blocked("minority")
            .deliver(&[(3, 1)])
            .crashed()
            .build();
        let v = expect(&logs, Property::Blocked);
        assert!(
            v.detail.contains("member 3 logged a delivery of 3#1"),
            "{v}"
        );
    }

    #[test]
    fn liveness_different_final_views() {
        let mut logs = scenario();
        // 1 installed 3.1 without 2, but 2 is still correct and in 2.1.
        logs[0].entries.push(LogEntry::View(view(V3, &[1])));
        let v = expect(&logs, Property::Liveness);
        assert!(v.detail.contains("different views"), "{v}");
    }

    #[test]
    fn liveness_final_view_not_the_correct_members() {
        let mut logs = scenario();
        logs[1].crashed = true;
        let v = expect(&logs, Property::Liveness);
        assert!(v.detail.contains("members not correct: [2]"), "{v}");
    }

    #[test]
    fn liveness_no_correct_member() {
        let mut logs = scenario();
        for log in &mut logs {
            log.crashed = true;
        }
        let v = expect(&logs, Property::Liveness);
        assert!(v.detail.contains("no correct member"), "{v}");
        assert_eq!(expect(&[], Property::Liveness).property, Property::Liveness);
    }

    #[test]
    fn liveness_disabled_is_not_checked() {
        let mut logs = scenario();
        logs[0].entries.push(LogEntry::View(view(V3, &[1])));
        let opts = CheckOptions { liveness: false };
        assert_eq!(check(&logs, opts), Ok(()));
        assert_eq!(check(&[], opts), Ok(()));
    }

    #[test]
    fn violation_display() {
        let v = Violation {
            property: Property::TotalOrder,
            detail: "members 1 and 2 disagree".into(),
        };
        assert_eq!(v.to_string(), "TotalOrder: members 1 and 2 disagree");
        let e: Box<dyn std::error::Error> = Box::new(v);
        assert!(e.to_string().starts_with("TotalOrder"));
    }

    #[test]
    fn payload_formatting() {
        assert_eq!(fmt_payload(b"ab"), "\"ab\" (2 bytes)");
        assert_eq!(fmt_payload(&[0, 255]), "0x00ff (2 bytes)");
        assert_eq!(
            fmt_payload(&[0; 20]),
            format!("0x{}... (20 bytes)", "00".repeat(16))
        );
    }

    #[test]
    fn long_logs_are_checked() {
        const N: u64 = 30_000;
        let v1 = view(V1, &[1, 2, 3]);
        let all: Vec<(NodeId, u64)> = (1..=N).map(|s| (1 + s % 3, s.div_ceil(3))).collect();
        let mut logs: Vec<MemberLog> = (1..=3)
            .map(|node| {
                let seqs: Vec<u64> = all
                    .iter()
                    .filter(|(o, _)| *o == node)
                    .map(|&(_, s)| s)
                    .collect();
                member(node).sent(&seqs).install(&v1).deliver(&all).build()
            })
            .collect();
        ok(&logs);
        // Swap two late deliveries at member 3.
        let len = logs[2].entries.len();
        logs[2].entries.swap(len - 1, len - 2);
        expect(&logs, Property::TotalOrder);
    }
}
