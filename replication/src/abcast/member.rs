//! One group member's state machine: the ring broadcast, its total order, and the view
//! changes of the membership. Sans-IO: the driver hands it frames, application
//! broadcasts and the time (`now`, milliseconds on any monotonic clock), and takes out
//! [`Action`]s. See the parent module for the protocol and why it is safe.

use super::link::{Carrier, Frame, Links, Stall};
use super::log::Log;
use super::types::{MsgId, NodeId, View, ViewId};
use super::wire::{Data, Decision, Wire};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

/// Timing and limits. Times are milliseconds of the driver's clock.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Send a heartbeat on a ring link that has carried nothing for this long.
    pub heartbeat: u64,
    /// Suspect a ring neighbour silent for this long.
    pub suspect_after: u64,
    /// How long each phase of a view change waits for the members that have not answered.
    pub change_timeout: u64,
    /// What the links run over: the runtime's are connections, the simulator runs
    /// both kinds.
    pub carrier: Carrier,
    /// Send unacknowledged frames again after this long (over connections: after the
    /// driver reports a broken one, [`Member::link_reset`], at most this often, or after
    /// a stall of [`STALL_RETRANSMITS`](super::link::STALL_RETRANSMITS) intervals).
    pub retransmit: u64,
    /// Hold a link's bare acknowledgement back for up to this long, in case a frame goes
    /// the other way to carry it (shorter than `retransmit`; see [`link`](super::link)).
    pub ack_delay: u64,
    /// At most this many of this member's broadcasts accepted and not yet delivered
    /// (back-pressure: [`Member::broadcast`] refuses more).
    pub window: usize,
    /// At most about this many bytes of them: a broadcast that would go past it is
    /// refused unless none is in flight (so one of any size always goes). A member's
    /// acknowledgements queue behind its own broadcasts in the kernel's socket buffers (a
    /// megabyte or two each way at full load), so the window must cover that queue twice
    /// over to keep the links busy: at 3 members on 2 cores, 64 KiB broadcasts, 2 MiB
    /// gave 58-74% of raw TCP against 73-92% for 8 MiB, in alternating runs. Past that,
    /// more in flight adds latency (16 and 32 MiB did no better than 8).
    pub window_bytes: usize,
    /// Rounds a leader runs without reaching a majority, or rounds a joiner asks its
    /// contacts without being let in, before it reports [`Action::Blocked`] (it goes on
    /// trying).
    pub give_up_rounds: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            heartbeat: 20,
            suspect_after: 100,
            change_timeout: 100,
            carrier: Carrier::Connections,
            retransmit: 40,
            ack_delay: 5,
            window: 256,
            window_bytes: 8 << 20,
            give_up_rounds: 4,
        }
    }
}

/// What the member asks its driver to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Put `frame` on the wire to `to`.
    Send { to: NodeId, frame: Frame },
    /// Hand a broadcast to the application.
    Deliver {
        view: ViewId,
        id: MsgId,
        payload: Bytes,
    },
    /// A new view is installed (the first one too).
    Install(View),
    /// This member does not deliver, and says why: it cannot reach a majority of its
    /// view (it keeps trying, and goes on with [`Action::Install`] once it can), or it
    /// is not in the majority's view at all ([`Member::is_stopped`] then: it must start
    /// again as a joiner, under a new id, to come back).
    Blocked(String),
    /// This member left the group (it asked to).
    Left,
    /// `joiner` was added in view `view`: send it the application's state as it is now,
    /// with [`Member::send_state`], before taking further actions. Every member that
    /// was in the view before is asked (a joiner keeps the first state that comes), so
    /// that one crash cannot leave the joiner without one.
    StateNeeded { joiner: NodeId, view: ViewId },
    /// The state the group sent this joiner (apply it before the deliveries that follow).
    StateReceived(Vec<u8>),
    /// The link to a peer stalled: frames waited with no acknowledgement, and no broken
    /// connection was reported, so they went again (see [`link`](super::link)). A bug
    /// in the driver's reports of lost frames, or a peer too slow to read: the driver
    /// logs it.
    Stalled(Stall),
}

/// Why [`Member::broadcast`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastError {
    #[error("back-pressure: {0} broadcasts of this member are not delivered yet")]
    Full(usize),
    #[error("this member has stopped (blocked or left)")]
    Stopped,
}

/// Ways to break the protocol on purpose, for the tests that show the checker catches
/// a broken protocol. Never used otherwise.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Deliver the flush of a view change without leaving out what was delivered.
    SkipDuplicateFilter,
    /// Deliver without waiting for stability (every member having the broadcast).
    DeliverUnstable,
    /// Promise a view change and go on delivering.
    NoFreeze,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Asking the group to let it in.
    Joining {
        next_try: u64,
        /// Rounds of asking every contact with no answer yet.
        tries: u32,
    },
    Normal,
    /// Blocked or left.
    Stopped,
}

/// What a member knows within its current view.
#[derive(Default)]
struct ViewState {
    /// Every broadcast of the view this member holds that some member may not have
    /// delivered yet, by total-order key.
    log: Log,
    /// The keys of `log` this member has not delivered, with their sequence numbers.
    pending: BTreeMap<(u64, NodeId), u64>,
    /// The highest sequence number received from each origin in this view.
    received: BTreeMap<NodeId, u64>,
    /// What each other member has said of itself: its clock, its `received`, the key of
    /// its last delivery. (B-trees: a view has a handful of members, and these are read
    /// for every delivery; hashing them cost more than the comparisons.)
    clocks: BTreeMap<NodeId, u64>,
    received_of: BTreeMap<NodeId, BTreeMap<NodeId, u64>>,
    delivered_of: BTreeMap<NodeId, (u64, NodeId)>,
    /// The key of this member's last delivery in the view.
    delivered: (u64, NodeId),
    /// `delivered` as this member's last acknowledgement reported it.
    reported: (u64, NodeId),
    ack_due: bool,
    /// The neighbour the last broadcast came through: the acknowledgement goes that way
    /// first, towards the broadcast's origin, which waits for it to deliver. (With 4 or
    /// more members the runtime batches frames per peer in the order the peers first
    /// appear, so a forwarded broadcast queued for the other neighbour still goes first.)
    ack_first: Option<NodeId>,
    /// Another member reported a later delivery: the log may shrink.
    gc_due: bool,
    /// Promised a view change: no more receiving, acknowledging or delivering here.
    frozen: bool,
    /// When it promised (last).
    frozen_at: u64,
    /// When it first promised in this view.
    frozen_since: Option<u64>,
    /// It said it is blocked ([`Action::Blocked`]) in this view.
    said_blocked: bool,
    /// Messages of later views, kept until this member installs them.
    future: Vec<(NodeId, Wire)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RoundPhase {
    Prepare,
    Accept,
}

/// What a promise brings: the promiser's log of the base view, and the decision it
/// accepted earlier, if any.
type Promised = (Vec<Data>, Option<(ViewId, Decision)>);

/// A view change this member leads.
struct Round {
    id: ViewId,
    phase: RoundPhase,
    started: u64,
    /// Promises: the promiser's log and accepted decision.
    promises: BTreeMap<NodeId, Promised>,
    decision: Option<Decision>,
    accepted_by: BTreeSet<NodeId>,
}

/// The frames a member sent its ring neighbours up to a ping of them, by neighbour
/// ([`Member::ping_neighbours`], [`Member::heard_back_since`]): each neighbour pinged,
/// with the ping's nonce.
pub type NeighbourMark = Vec<(NodeId, u64)>;

/// One member of a group.
pub struct Member {
    id: NodeId,
    cfg: Config,
    now: u64,
    phase: Phase,
    view: Option<View>,
    links: Links,
    actions: VecDeque<Action>,
    /// Lamport clock.
    clock: u64,
    /// Sequence number of this member's next broadcast.
    next_seq: u64,
    /// Broadcasts accepted but not sent yet (while joining or during a view change).
    outbox: VecDeque<(MsgId, Bytes)>,
    /// Sent and not yet delivered.
    own_undelivered: usize,
    /// Bytes of those broadcasts.
    own_undelivered_bytes: usize,
    /// Bytes of the broadcasts in `outbox`.
    outbox_bytes: usize,
    vs: ViewState,
    /// A joiner that has not received the group's state yet delivers nothing.
    has_state: bool,
    /// The state, come before the view it was sent in was installed here.
    early_state: Option<(ViewId, Vec<u8>)>,
    /// When the current view was installed.
    installed_at: u64,
    contacts: Vec<NodeId>,
    // Membership.
    suspects: BTreeSet<NodeId>,
    joiners: BTreeSet<NodeId>,
    leavers: BTreeSet<NodeId>,
    /// Since when this member has wanted a view change that has not come.
    wanted_since: Option<u64>,
    max_round: u64,
    promised: Option<ViewId>,
    accepted: Option<(ViewId, Decision)>,
    leading: Option<Round>,
    /// Rounds this member led in the current view change without reaching a majority.
    failed_rounds: u32,
    /// The last [`Wire::Ping`] nonce this member sent.
    ping_nonce: u64,
    /// The highest nonce each member answered with [`Wire::Pong`].
    pongs: BTreeMap<NodeId, u64>,
    /// Pings this member holds while frozen in a view change (or that name a view it
    /// has not installed yet), answered once it installs one: per pinger, its view and
    /// its latest nonce.
    pings_held: BTreeMap<NodeId, (ViewId, u64)>,
    /// The decision that installed the current view (to answer a late leader).
    last_commit: Option<Decision>,
    mutation: Option<Mutation>,
}

impl Member {
    /// A founding member of a group whose initial members are `members` (any order: the
    /// ring is by id, oldest first). Every founder must be given the same list.
    pub fn founder(id: NodeId, members: &[NodeId], cfg: Config, now: u64) -> Self {
        let mut ms = members.to_vec();
        ms.sort_unstable();
        ms.dedup();
        assert!(ms.contains(&id), "a founder is one of the members");
        let view = View {
            id: ViewId {
                round: 0,
                leader: ms[0],
            },
            members: ms,
        };
        let mut m = Member::blank(id, cfg, now, Phase::Normal);
        m.has_state = true;
        m.install(view, None);
        m
    }

    /// A process that joins a running group through any of `contacts` (members or not:
    /// it asks them all until one lets it in).
    pub fn joiner(id: NodeId, contacts: &[NodeId], cfg: Config, now: u64) -> Self {
        let mut m = Member::blank(
            id,
            cfg,
            now,
            Phase::Joining {
                next_try: now,
                tries: 0,
            },
        );
        m.contacts = contacts.iter().copied().filter(|&c| c != id).collect();
        m.tick(now);
        m
    }

    /// More processes a joiner may ask to let it in (a directory's news of where the group
    /// runs now: the ones it was given may all have failed). Ignored once it is in. The
    /// simulator calls it after restarts and heals; the runtime calls it with its whole
    /// address book once [`Member::wants_directory`]. A joiner says so once with
    /// [`Action::Blocked`] after [`Config::give_up_rounds`] unanswered rounds, counted
    /// afresh when a call here adds a contact.
    ///
    /// A member frozen in a view change that no leader completes (a minority, or one
    /// whose view's other members have all gone) asks those of them outside its view
    /// whether the group went on without it: one in a later view answers with it
    /// ([`Wire::Outdated`]), and this member stops, to come back as a joiner.
    pub fn add_contacts(&mut self, more: impl IntoIterator<Item = NodeId>) {
        if self.phase == Phase::Normal && self.vs.frozen {
            let v = self.view.clone().expect("a view when normal");
            for c in more {
                if c != self.id && !v.contains(c) {
                    self.send_unsequenced(c, Wire::Heartbeat);
                }
            }
            return;
        }
        let Phase::Joining { next_try, tries } = self.phase else {
            return;
        };
        let known = self.contacts.len();
        for c in more {
            if c != self.id && !self.contacts.contains(&c) {
                self.contacts.push(c);
            }
        }
        let news = self.contacts.len() > known;
        self.phase = Phase::Joining {
            next_try,
            tries: if news { 0 } else { tries },
        };
    }

    /// Has this member retired `peer` (it left a view of this member's)? Frames from it
    /// are then passed on unsequenced and never acknowledged.
    pub fn has_retired(&self, peer: NodeId) -> bool {
        self.links.is_retired(peer)
    }

    /// Has this member given up on the processes it knows, and said so
    /// ([`Action::Blocked`])? A joiner none of whose contacts let it in, or a member
    /// frozen in a view change that no leader completes (a minority's, or one whose
    /// view's other members have all gone). A driver with a directory (the runtime: its
    /// address book) then gives it every process it knows of, with
    /// [`Member::add_contacts`], and again from time to time while this holds.
    pub fn wants_directory(&self) -> bool {
        match self.phase {
            Phase::Joining { tries, .. } => tries > self.cfg.give_up_rounds,
            Phase::Normal => self.vs.frozen && self.vs.said_blocked,
            Phase::Stopped => false,
        }
    }

    fn blank(id: NodeId, cfg: Config, now: u64, phase: Phase) -> Self {
        Member {
            id,
            cfg,
            now,
            phase,
            view: None,
            links: Links::new(cfg.carrier, cfg.retransmit, cfg.ack_delay),
            actions: VecDeque::new(),
            clock: 0,
            next_seq: 1,
            outbox: VecDeque::new(),
            own_undelivered: 0,
            own_undelivered_bytes: 0,
            outbox_bytes: 0,
            vs: ViewState::default(),
            has_state: false,
            early_state: None,
            installed_at: now,
            contacts: Vec::new(),
            suspects: BTreeSet::new(),
            joiners: BTreeSet::new(),
            leavers: BTreeSet::new(),
            wanted_since: None,
            max_round: 0,
            promised: None,
            accepted: None,
            leading: None,
            failed_rounds: 0,
            ping_nonce: 0,
            pongs: BTreeMap::new(),
            pings_held: BTreeMap::new(),
            last_commit: None,
            mutation: None,
        }
    }

    fn stop_blocked(&mut self, why: String) {
        self.phase = Phase::Stopped;
        self.actions.push_back(Action::Blocked(why));
    }

    /// Break the protocol as `m` says (the checker's own tests only).
    #[doc(hidden)]
    pub fn break_on_purpose(&mut self, m: Mutation) {
        self.mutation = Some(m);
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The installed view (`None` while joining).
    pub fn view(&self) -> Option<&View> {
        self.view.as_ref()
    }

    /// A one-line account of this member's protocol state, for logs and replays.
    pub fn status(&self) -> String {
        format!(
            "{}: {:?} view {:?} frozen {} suspects {:?} joiners {:?} promised {:?} leading {:?} wanted_since {:?} pending {} log {} outbox {}",
            self.id,
            self.phase,
            self.view.as_ref().map(|v| (v.id, v.members.clone())),
            self.vs.frozen,
            self.suspects,
            self.joiners,
            self.promised,
            self.leading.as_ref().map(|r| (r.id, r.phase, r.promises.len(), r.accepted_by.len())),
            self.wanted_since,
            self.vs.pending.len(),
            self.vs.log.len(),
            self.outbox.len()
        )
    }

    /// The views of the view-change decisions this member proposed (leading) or accepted
    /// and has not installed yet (they may be chosen already: the simulator keeps a
    /// majority of them up).
    pub fn pending_views(&self) -> impl Iterator<Item = &View> {
        let proposed = self.leading.as_ref().and_then(|r| r.decision.as_ref());
        let accepted = self.accepted.as_ref().map(|(_, d)| d);
        proposed.into_iter().chain(accepted).map(|d| &d.view)
    }

    /// Is it a working member: in a view, with the group's state?
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Normal && self.view.is_some() && self.has_state
    }

    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The latest time by which the driver must call [`Member::tick`] again.
    pub fn poll_timeout(&self) -> u64 {
        let step = (self.cfg.heartbeat / 2).max(1);
        let mut t = self.now + step;
        if let Some(d) = self.links.next_deadline() {
            t = t.min(d.max(self.now));
        }
        t
    }

    /// Broadcast `payload` to the group, in total order. Accepted while joining or during
    /// a view change too (sent once the view is installed), up to the window.
    pub fn broadcast(&mut self, now: u64, payload: Bytes) -> Result<MsgId, BroadcastError> {
        self.advance(now);
        if self.phase == Phase::Stopped {
            return Err(BroadcastError::Stopped);
        }
        let (queued, bytes) = self.in_flight();
        if queued >= self.cfg.window
            || (queued > 0 && bytes + payload.len() > self.cfg.window_bytes)
        {
            return Err(BroadcastError::Full(queued));
        }
        self.outbox_bytes += payload.len();
        let id = MsgId {
            origin: self.id,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.outbox.push_back((id, payload));
        self.send_outbox();
        Ok(id)
    }

    /// Ask each ring neighbour now whether the group still goes on with this member
    /// ([`Wire::Ping`]), and return a mark of them: with [`Member::heard_back_since`] a
    /// member that did not run for a while (its process computed, or hung) tells whether
    /// its neighbours still count it in, before it sends what it queued meanwhile.
    ///
    /// The answer comes from the neighbour's state machine, not its link: a neighbour
    /// frozen in a view change (perhaps the one that leaves this member out) answers only
    /// once the change is over, and then with the view it is in, which stops this
    /// member if that view does not hold it. A link acknowledgement came at once even
    /// from a frozen neighbour, so a queue sent then could go out in a view the others
    /// were leaving, to be delivered nowhere.
    pub fn ping_neighbours(&mut self, now: u64) -> NeighbourMark {
        self.advance(now);
        if self.phase != Phase::Normal {
            return Vec::new();
        }
        let (left, right) = self.neighbours();
        let mut nbs: Vec<NodeId> = [left, right].into_iter().flatten().collect();
        nbs.dedup();
        let view = self.view_id();
        self.ping_nonce += 1;
        let nonce = self.ping_nonce;
        for &nb in &nbs {
            self.send(nb, Wire::Ping { view, nonce });
        }
        nbs.into_iter().map(|nb| (nb, nonce)).collect()
    }

    /// Has each ring neighbour of `mark` that still is one answered the ping since the
    /// mark was taken ([`Member::ping_neighbours`])? A neighbour that left this member out
    /// answers which view the group is in instead, and this member stops.
    pub fn heard_back_since(&self, mark: &NeighbourMark) -> bool {
        let (left, right) = self.neighbours();
        mark.iter().all(|&(nb, nonce)| {
            (Some(nb) != left && Some(nb) != right)
                || self.pongs.get(&nb).is_some_and(|&n| n >= nonce)
        })
    }

    /// `from` pinged, from view `view`: answer now if this member is in a view that holds
    /// it and in no view change; otherwise hold the ping until it installs a view.
    fn on_ping(&mut self, from: NodeId, view: ViewId, nonce: u64) {
        if self.phase != Phase::Normal {
            return;
        }
        if self.vs.frozen || view > self.view_id() {
            let held = self.pings_held.entry(from).or_insert((view, nonce));
            *held = (held.0.max(view), held.1.max(nonce));
            return;
        }
        // (`tell_if_outdated` answered a pinger from an older view that this member's
        // view leaves out; one outside it and not behind it is no member: no answer.)
        if self.view.as_ref().is_some_and(|v| v.contains(from)) {
            self.send(from, Wire::Pong { nonce });
        }
    }

    /// Answer the pings held during a view change, now that `view` is installed.
    fn answer_held_pings(&mut self, view: &View) {
        for (from, (v, nonce)) in std::mem::take(&mut self.pings_held) {
            if v > view.id {
                self.pings_held.insert(from, (v, nonce));
            } else if view.contains(from) {
                self.send(from, Wire::Pong { nonce });
            } else {
                self.send(from, Wire::Outdated { view: view.clone() });
            }
        }
    }

    /// This member's broadcasts accepted and not yet delivered here, and their bytes (what
    /// [`Config::window`] and [`Config::window_bytes`] bound).
    pub fn in_flight(&self) -> (usize, usize) {
        (
            self.own_undelivered + self.outbox.len(),
            self.own_undelivered_bytes + self.outbox_bytes,
        )
    }

    /// Ask to leave the group; [`Action::Left`] follows once the group has a view without
    /// this member.
    pub fn leave(&mut self, now: u64) {
        self.advance(now);
        if self.phase != Phase::Normal {
            return;
        }
        let base = self.view_id();
        self.leavers.insert(self.id);
        self.want_change();
        let c = self.coordinator();
        if c != self.id {
            self.send(c, Wire::Leave { base, who: self.id });
        }
    }

    /// The application's state for `joiner` (after [`Action::StateNeeded`]).
    pub fn send_state(&mut self, joiner: NodeId, view: ViewId, state: Vec<u8>) {
        self.send(joiner, Wire::State { view, state });
    }

    /// The transport lost its connection to `peer` (a connection error): suspect it if
    /// it is a member.
    pub fn peer_down(&mut self, now: u64, peer: NodeId) {
        self.advance(now);
        if self.phase == Phase::Normal {
            self.suspect(peer);
        }
    }

    /// The connection that carried this member's frames to `peer` broke, or none could
    /// be made (over [`Carrier::Connections`]): the frames `peer` has not acknowledged
    /// may be lost, so they go again over the next one (see [`Links::reset`]).
    pub fn link_reset(&mut self, now: u64, peer: NodeId) {
        self.advance(now);
        self.links.reset(now, peer);
    }

    /// A frame from `from`.
    pub fn handle(&mut self, now: u64, from: NodeId, frame: Frame) {
        self.advance(now);
        if self.phase == Phase::Stopped {
            return;
        }
        // Whatever a suspect sends shows it is up: suspicions are withdrawn (so that a
        // member falsely suspected, or cut off by a partition that healed, is not left
        // out of the next view change).
        self.suspects.remove(&from);
        for w in self.links.receive(now, from, frame) {
            self.on_wire(from, w);
            if self.phase == Phase::Stopped {
                return;
            }
        }
    }

    /// Timers: heartbeats, suspicion of silent neighbours, view-change deadlines,
    /// retransmissions.
    pub fn tick(&mut self, now: u64) {
        self.advance(now);
        match self.phase {
            Phase::Stopped => return,
            Phase::Joining { next_try, tries } => {
                if now >= next_try {
                    if tries == self.cfg.give_up_rounds {
                        // Say so once; keep asking (a contact may be restarting).
                        let why = format!(
                            "join: none of the contacts {:?} let this process in after {tries} rounds of asking ({} ms); still asking",
                            self.contacts,
                            u64::from(tries) * self.cfg.change_timeout
                        );
                        self.actions.push_back(Action::Blocked(why));
                    }
                    for c in self.contacts.clone() {
                        // Unsequenced: asked again every round, and not piled up for a
                        // contact that is down.
                        self.send_unsequenced(c, Wire::Join { who: self.id });
                    }
                    self.phase = Phase::Joining {
                        next_try: now + self.cfg.change_timeout,
                        tries: tries.saturating_add(1),
                    };
                }
                return;
            }
            Phase::Normal => {}
        }
        // Long enough for a link's stall net to send the state again (see `link`): a
        // state frame lost unreported used to stop the joiner first, and the view that
        // let it in then lacked a majority (simulator, silent losses, seed 3).
        let state_wait = (3 * self.cfg.change_timeout)
            .max((super::link::STALL_RETRANSMITS + 2) * self.cfg.retransmit);
        if !self.has_state && now >= self.installed_at + state_wait {
            // The member that let it in failed before it sent the state.
            self.stop_blocked("the group's state never came after joining".to_string());
            return;
        }
        let (left, right) = self.neighbours();
        for nb in [left, right].into_iter().flatten() {
            if self
                .links
                .last_sent(nb)
                .is_none_or(|t| now >= t + self.cfg.heartbeat)
            {
                self.send(nb, Wire::Heartbeat);
            }
            let heard = self.links.last_heard(nb).unwrap_or(now);
            if now >= heard + self.cfg.suspect_after {
                self.suspect(nb);
            }
        }
        self.round_timers();
    }

    /// Put what is due on the wire: this member's acknowledgement and the links' own
    /// frames. Call after a batch of events (the simulator: after each).
    pub fn flush(&mut self) {
        if self.phase == Phase::Stopped {
            // Nothing more to say to anyone, and nothing to send again (a replayed Join
            // could start a view change).
            return;
        }
        // An acknowledgement goes when broadcasts of others came in, and when this
        // member delivered more than it last reported: the others drop from their logs
        // only what every member reported delivered, and a member that alone broadcasts
        // receives no broadcast to answer (its receivers then kept every broadcast, a
        // view change carried them all in one frame: 1.2 GB after 70 of 16 MiB).
        let news = self.vs.delivered != self.vs.reported;
        if self.phase == Phase::Normal && (self.vs.ack_due || news) && !self.vs.frozen {
            self.vs.ack_due = false;
            self.vs.reported = self.vs.delivered;
            let received: Vec<(NodeId, u64)> =
                self.vs.received.iter().map(|(&o, &s)| (o, s)).collect();
            let (view, from, clock, delivered) =
                (self.view_id(), self.id, self.clock, self.vs.delivered);
            let first = self.vs.ack_first.take();
            self.spread(first, |hops| Wire::Ack {
                view,
                hops,
                from,
                clock,
                received: received.clone(),
                delivered,
            });
        }
        for (to, frame) in self.links.flush(self.now) {
            self.actions.push_back(Action::Send { to, frame });
        }
        for stall in self.links.take_stalls() {
            self.actions.push_back(Action::Stalled(stall));
        }
    }

    // ---------------------------------------------------------------------------------
    // Plumbing.

    fn advance(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    fn view_id(&self) -> ViewId {
        self.view.as_ref().map(|v| v.id).unwrap_or_default()
    }

    fn send(&mut self, to: NodeId, w: Wire) {
        debug_assert_ne!(to, self.id, "no frames to itself");
        let frame = self.links.send(self.now, to, w);
        self.actions.push_back(Action::Send { to, frame });
    }

    /// Send `w` to `to` outside the link's sequence ([`Frame::unsequenced`]).
    fn send_unsequenced(&mut self, to: NodeId, w: Wire) {
        debug_assert_ne!(to, self.id, "no frames to itself");
        self.actions.push_back(Action::Send {
            to,
            frame: Frame::unsequenced(w),
        });
    }

    /// The ring neighbours (left, right): `None` alone in the view.
    fn neighbours(&self) -> (Option<NodeId>, Option<NodeId>) {
        let Some(v) = &self.view else {
            return (None, None);
        };
        let n = v.members.len();
        if n < 2 {
            return (None, None);
        }
        let p = v.position(self.id).expect("a member of its own view");
        (
            Some(v.members[(p + n - 1) % n]),
            Some(v.members[(p + 1) % n]),
        )
    }

    /// Send this member's own message both ways round the ring: rightwards to the next
    /// `n / 2` members, leftwards to the `(n - 1) / 2` before it, so that every other
    /// member gets it once, about `n / 2` hops away at most. The right first, unless
    /// `first` is the left neighbour.
    fn spread(&mut self, first: Option<NodeId>, make: impl Fn(u32) -> Wire) {
        let n = self.view.as_ref().map_or(0, |v| v.members.len()) as u32;
        let (left, right) = self.neighbours();
        let (r_hops, l_hops) = (n / 2, n.saturating_sub(1) / 2);
        let mut ways = [(right, r_hops), (left, l_hops)];
        if first.is_some() && first == left {
            ways.swap(0, 1);
        }
        for (to, hops) in ways {
            if let (Some(to), true) = (to, hops > 0) {
                self.send(to, make(hops));
            }
        }
    }

    /// Pass a ring message on the way it travels (it came from `from`).
    fn forward(&mut self, from: NodeId, w: Wire) {
        let (left, right) = self.neighbours();
        let next = if Some(from) == left { right } else { left };
        if let Some(next) = next {
            self.send(next, w);
        }
    }

    // ---------------------------------------------------------------------------------
    // The ring: broadcasts, acknowledgements, delivery.

    fn send_outbox(&mut self) {
        if self.phase != Phase::Normal || self.vs.frozen || self.view.is_none() {
            return;
        }
        while let Some((id, payload)) = self.outbox.pop_front() {
            self.outbox_bytes -= payload.len();
            self.own_undelivered_bytes += payload.len();
            self.clock += 1;
            let data = Data {
                id,
                ts: self.clock,
                payload,
            };
            self.own_undelivered += 1;
            self.accept_data(data.clone());
            let view = self.view_id();
            self.spread(None, |hops| Wire::Data {
                view,
                hops,
                data: data.clone(),
            });
        }
        self.try_deliver();
    }

    /// Take in a broadcast of the current view (this member's own or another's).
    fn accept_data(&mut self, data: Data) {
        let o = data.id.origin;
        if !self.view.as_ref().is_some_and(|v| v.contains(o)) {
            // Not from a member of the view: no correct member sends that; ignore it.
            return;
        }
        let hi = self.vs.received.entry(o).or_insert(0);
        if data.id.seq <= *hi {
            return; // a duplicate
        }
        *hi = data.id.seq;
        self.clock = self.clock.max(data.ts);
        if o != self.id {
            // The broadcast says as much as a report of its origin would: its clock is
            // at least the timestamp, and it holds the broadcast.
            let c = self.vs.clocks.entry(o).or_insert(0);
            *c = (*c).max(data.ts);
            let r = self
                .vs
                .received_of
                .entry(o)
                .or_default()
                .entry(o)
                .or_insert(0);
            *r = (*r).max(data.id.seq);
            self.vs.ack_due = true;
        }
        let key = data.key();
        assert!(
            key > self.vs.delivered,
            "member {}: broadcast {} of view {} (key {key:?}) sorts before the last delivery {:?} (Lamport clocks)",
            self.id,
            data.id,
            self.view_id(),
            self.vs.delivered
        );
        self.vs.pending.insert(key, data.id.seq);
        self.vs.log.insert(data);
    }

    /// Deliver, in key order, every broadcast that is stable (every member has it) and
    /// that nothing not yet received can precede (every member's clock has passed it).
    fn try_deliver(&mut self) {
        if !self.has_state || self.vs.frozen {
            return;
        }
        let mut delivered_any = false;
        while let Some((&key, &seq)) = self.vs.pending.first_key_value() {
            // (No clone of the view, no look-up in the log: this runs for every frame
            // received, and the head is most often not ready yet.)
            let Some(view) = self.view.as_ref() else {
                return;
            };
            let (ts, id) = (key.0, MsgId { origin: key.1, seq });
            let ready = view.members.iter().all(|&m| {
                m == self.id
                    || (self.vs.clocks.get(&m).is_some_and(|&c| c >= ts)
                        && (self.mutation == Some(Mutation::DeliverUnstable)
                            || self
                                .vs
                                .received_of
                                .get(&m)
                                .and_then(|r| r.get(&id.origin))
                                .is_some_and(|&s| s >= id.seq)))
            });
            if !ready {
                break;
            }
            let view = view.id;
            self.vs.pending.pop_first();
            self.deliver(view, key);
            delivered_any = true;
        }
        if delivered_any || std::mem::take(&mut self.vs.gc_due) {
            self.collect_garbage();
        }
    }

    fn deliver(&mut self, view: ViewId, key: (u64, NodeId)) {
        assert!(
            key > self.vs.delivered || self.mutation.is_some(),
            "deliveries in total order"
        );
        self.vs.delivered = key;
        let data = self.vs.log.get(key).expect("delivered keys are in the log");
        if data.id.origin == self.id {
            assert!(
                self.own_undelivered > 0 || self.mutation.is_some(),
                "own broadcasts are counted"
            );
            assert!(
                self.own_undelivered_bytes >= data.payload.len() || self.mutation.is_some(),
                "own broadcasts' bytes are counted"
            );
            self.own_undelivered = self.own_undelivered.saturating_sub(1);
            self.own_undelivered_bytes = self
                .own_undelivered_bytes
                .saturating_sub(data.payload.len());
        }
        self.actions.push_back(Action::Deliver {
            view,
            id: data.id,
            payload: data.payload.clone(),
        });
    }

    /// Forget the broadcasts every member has delivered: no view change needs them.
    fn collect_garbage(&mut self) {
        let Some(v) = &self.view else { return };
        let mut low = self.vs.delivered;
        for &m in &v.members {
            if m != self.id {
                low = low.min(self.vs.delivered_of.get(&m).copied().unwrap_or((0, 0)));
            }
        }
        self.vs.log.remove_through(low);
    }

    fn on_ring(&mut self, from: NodeId, w: Wire) {
        let (view, hops) = match &w {
            Wire::Data { view, hops, .. } | Wire::Ack { view, hops, .. } => (*view, *hops),
            _ => unreachable!("ring messages only"),
        };
        let current = self.view_id();
        if self.view.is_none() || view > current {
            self.vs.future.push((from, w));
            return;
        }
        if view < current || self.vs.frozen {
            return;
        }
        if hops > 1 {
            let mut fw = w.clone();
            match &mut fw {
                Wire::Data { hops, .. } | Wire::Ack { hops, .. } => *hops -= 1,
                _ => unreachable!(),
            }
            self.forward(from, fw);
        }
        match w {
            Wire::Data { data, .. } => {
                self.vs.ack_first = Some(from);
                self.accept_data(data)
            }
            Wire::Ack {
                from: m,
                clock,
                received,
                delivered,
                ..
            } => {
                if m == self.id {
                    return;
                }
                let c = self.vs.clocks.entry(m).or_insert(0);
                *c = (*c).max(clock);
                let r = self.vs.received_of.entry(m).or_default();
                for (o, s) in received {
                    let e = r.entry(o).or_insert(0);
                    *e = (*e).max(s);
                }
                let d = self.vs.delivered_of.entry(m).or_insert((0, 0));
                if delivered > *d {
                    *d = delivered;
                    self.vs.gc_due = true;
                }
            }
            _ => unreachable!(),
        }
        self.try_deliver();
    }

    // ---------------------------------------------------------------------------------
    // Membership.

    fn on_wire(&mut self, from: NodeId, w: Wire) {
        if self.tell_if_outdated(from, &w) {
            return;
        }
        match w {
            Wire::Data { .. } | Wire::Ack { .. } => self.on_ring(from, w),
            Wire::Heartbeat => {}
            Wire::Ping { view, nonce } => self.on_ping(from, view, nonce),
            Wire::Pong { nonce } => {
                let n = self.pongs.entry(from).or_insert(0);
                *n = (*n).max(nonce);
            }
            Wire::Suspect { base, who } => {
                if self.phase == Phase::Normal && base == self.view_id() {
                    self.suspect(who);
                }
            }
            Wire::Join { who } => self.on_join(from, who),
            Wire::Gone { who } => self.on_gone(from, who),
            Wire::Leave { base, who } => {
                if self.phase == Phase::Normal
                    && base == self.view_id()
                    && self.view.as_ref().is_some_and(|v| v.contains(who))
                {
                    self.leavers.insert(who);
                    self.want_change();
                    let c = self.coordinator();
                    if c != self.id {
                        self.send(c, Wire::Leave { base, who });
                    }
                }
            }
            Wire::Prepare { base, round } => self.on_prepare(from, base, round),
            Wire::Promise {
                base,
                round,
                log,
                accepted,
            } => self.on_promise(from, base, round, log, accepted),
            Wire::Nack { base, promised } => {
                self.max_round = self.max_round.max(promised.round);
                if base == self.view_id() && self.leading.as_ref().is_some_and(|r| r.id < promised)
                {
                    // Another leader is ahead: let it finish (or time out and try again).
                    self.leading = None;
                }
            }
            Wire::Accept { round, decision } => self.on_accept(from, round, decision),
            Wire::Accepted { base, round } => self.on_accepted(from, base, round),
            Wire::Commit { decision } => self.on_commit(decision),
            Wire::Outdated { view } => {
                let joining = matches!(self.phase, Phase::Joining { .. });
                if (joining || (self.phase == Phase::Normal && view.id > self.view_id()))
                    && !view.contains(self.id)
                {
                    self.phase = Phase::Stopped;
                    self.actions.push_back(Action::Blocked(format!(
                        "excluded: member {from} is in view {} (members {:?}), which does not hold this member",
                        view.id, view.members
                    )));
                }
            }
            Wire::State { view, state } => {
                if self.has_state {
                    return;
                }
                if self.view.as_ref().is_some_and(|v| v.id == view) {
                    self.has_state = true;
                    self.actions.push_back(Action::StateReceived(state));
                    self.try_deliver();
                } else {
                    // Before the commit that lets it in: the state comes from another
                    // member than the commit, so nothing orders the two.
                    self.early_state = Some((view, state));
                }
            }
        }
    }

    /// A member left behind (outside this member's view, still talking from an older
    /// one) hears which view the group is in, so that it stops instead of waiting for
    /// a majority it will never find. True when `w` needs nothing more.
    fn tell_if_outdated(&mut self, from: NodeId, w: &Wire) -> bool {
        let Some(v) = &self.view else { return false };
        if self.phase != Phase::Normal || v.contains(from) {
            return false;
        }
        let behind = match w {
            Wire::Heartbeat => true,
            Wire::Data { view, .. } | Wire::Ack { view, .. } | Wire::Ping { view, .. } => {
                *view < v.id
            }
            Wire::Prepare { base, .. } | Wire::Suspect { base, .. } | Wire::Leave { base, .. } => {
                *base < v.id && self.last_commit.as_ref().is_none_or(|d| d.base != *base)
            }
            _ => false,
        };
        if behind {
            let view = v.clone();
            self.send(from, Wire::Outdated { view });
        }
        behind
    }

    /// The member that should lead a view change now: the oldest not suspected.
    fn coordinator(&self) -> NodeId {
        let v = self.view.as_ref().expect("a view");
        *v.members
            .iter()
            .find(|m| !self.suspects.contains(m))
            .unwrap_or(&self.id)
    }

    fn want_change(&mut self) {
        self.wanted_since.get_or_insert(self.now);
        if self.coordinator() == self.id && self.leading.is_none() {
            self.start_round();
        }
    }

    fn suspect(&mut self, who: NodeId) {
        let Some(v) = &self.view else { return };
        if who == self.id || !v.contains(who) || self.suspects.contains(&who) {
            return;
        }
        self.suspects.insert(who);
        let base = v.id;
        self.want_change();
        let c = self.coordinator();
        if c != self.id {
            for s in self.suspects.clone() {
                self.send(c, Wire::Suspect { base, who: s });
            }
            for j in self.joiners.clone() {
                self.send(c, Wire::Join { who: j });
            }
        }
    }

    /// `from` asks for `who` to be let in (`who` itself, or a member passing it on).
    fn on_join(&mut self, from: NodeId, who: NodeId) {
        if self.phase != Phase::Normal {
            return;
        }
        let v = self.view.as_ref().expect("a view when normal");
        if v.contains(who) {
            // It may have missed the commit that let it in (the leader failed): the
            // current leader's next view change sends it again; nothing to do here.
            return;
        }
        if self.links.is_retired(who) {
            // It was let in once and left out again before it installed a view (a
            // retired link cannot be sequenced again): it must come back under a new id.
            let view = v.clone();
            self.send(who, Wire::Outdated { view });
            if from != who {
                // A member that joined after `who` left passes its join on: tell it, or it
                // waits for a view change nobody will run, and blames the coordinator.
                self.send(from, Wire::Gone { who });
            }
            return;
        }
        if !self.joiners.insert(who) {
            return;
        }
        self.want_change();
        let c = self.coordinator();
        if c != self.id {
            self.send(c, Wire::Join { who });
        }
    }

    /// Member `from` says `who` left the group once and cannot be let in again.
    fn on_gone(&mut self, from: NodeId, who: NodeId) {
        let Some(v) = &self.view else { return };
        if self.phase != Phase::Normal || !v.contains(from) || v.contains(who) {
            return;
        }
        self.joiners.remove(&who);
        self.links.retire(who);
        let wanted =
            !self.joiners.is_empty() || !self.suspects.is_empty() || !self.leavers.is_empty();
        if !wanted && self.leading.is_none() && !self.vs.frozen {
            self.wanted_since = None;
        }
    }

    fn start_round(&mut self) {
        let v = self.view.clone().expect("a view");
        self.max_round += 1;
        let id = ViewId {
            round: self.max_round,
            leader: self.id,
        };
        self.leading = Some(Round {
            id,
            phase: RoundPhase::Prepare,
            started: self.now,
            promises: BTreeMap::new(),
            decision: None,
            accepted_by: BTreeSet::new(),
        });
        // To the suspects too: one that is up answers, which withdraws the suspicion.
        // (Two members that suspect each other, for a connection between them that
        // broke, and each lead without the other, could otherwise never make a majority
        // that needs them both.)
        for m in v.members.iter().copied() {
            if m != self.id {
                self.send(
                    m,
                    Wire::Prepare {
                        base: v.id,
                        round: id,
                    },
                );
            }
        }
        self.on_prepare(self.id, v.id, id);
    }

    fn my_promise(&self) -> (Vec<Data>, Option<(ViewId, Decision)>) {
        (self.vs.log.in_order(), self.accepted.clone())
    }

    fn on_prepare(&mut self, from: NodeId, base: ViewId, round: ViewId) {
        if self.phase != Phase::Normal {
            return;
        }
        self.max_round = self.max_round.max(round.round);
        let current = self.view_id();
        if base < current {
            // A leader behind: tell it how its base view ended.
            if let Some(d) = self.last_commit.clone().filter(|d| d.base == base) {
                self.send(from, Wire::Commit { decision: d });
            }
            return;
        }
        if base > current || !self.has_state {
            // A joiner that has not received the group's state yet takes no part: it could
            // not deliver the rest of its first view, and would stop once the change is
            // over, leaving a view that counted it short of a majority. Left out of the
            // next view, it stops, to come back as a new joiner.
            return;
        }
        if self.promised.is_some_and(|p| round <= p) {
            if from != self.id {
                let promised = self.promised.expect("checked");
                self.send(from, Wire::Nack { base, promised });
            }
            return;
        }
        self.promised = Some(round);
        self.follow(round.leader);
        if self.leading.as_ref().is_some_and(|r| r.id < round) {
            self.leading = None;
        }
        let (log, accepted) = self.my_promise();
        if from == self.id {
            self.on_promise(self.id, base, round, log, accepted);
        } else {
            self.send(
                from,
                Wire::Promise {
                    base,
                    round,
                    log,
                    accepted,
                },
            );
        }
    }

    fn on_promise(
        &mut self,
        from: NodeId,
        base: ViewId,
        round: ViewId,
        log: Vec<Data>,
        accepted: Option<(ViewId, Decision)>,
    ) {
        if base != self.view_id() {
            return;
        }
        let Some(r) = self.leading.as_mut() else {
            return;
        };
        if r.id != round || r.phase != RoundPhase::Prepare {
            return;
        }
        r.promises.insert(from, (log, accepted));
        let v = self.view.as_ref().expect("a view");
        let expected = v
            .members
            .iter()
            .filter(|m| !self.suspects.contains(m))
            .count();
        if r.promises.len() >= expected {
            self.propose();
        }
    }

    /// Phase 2, with the promises in hand (a majority at least).
    fn propose(&mut self) {
        let v = self.view.clone().expect("a view");
        let r = self.leading.as_mut().expect("leading");
        if r.promises.len() < v.majority() {
            return;
        }
        let previous = r
            .promises
            .values()
            .filter_map(|(_, a)| a.clone())
            .max_by_key(|(id, _)| *id);
        let decision = match previous {
            // Some acceptor accepted a decision already: it may have been chosen, so
            // this round proposes it again (Paxos).
            Some((_, d)) => d,
            None => {
                let mut members: Vec<NodeId> = v
                    .members
                    .iter()
                    .copied()
                    .filter(|m| r.promises.contains_key(m) && !self.leavers.contains(m))
                    .collect();
                for &j in &self.joiners {
                    if !members.contains(&j) {
                        members.push(j);
                    }
                }
                let mut seen = HashSet::new();
                let mut flush: Vec<Data> = r
                    .promises
                    .values()
                    .flat_map(|(log, _)| log.iter())
                    .filter(|d| seen.insert(d.id))
                    .cloned()
                    .collect();
                flush.sort_by_key(Data::key);
                Decision {
                    base: v.id,
                    view: View { id: r.id, members },
                    flush,
                }
            }
        };
        r.phase = RoundPhase::Accept;
        r.started = self.now;
        r.decision = Some(decision.clone());
        let (id, to): (ViewId, Vec<NodeId>) = (r.id, r.promises.keys().copied().collect());
        for m in to {
            if m != self.id {
                self.send(
                    m,
                    Wire::Accept {
                        round: id,
                        decision: decision.clone(),
                    },
                );
            }
        }
        self.on_accept(self.id, id, decision);
    }

    fn on_accept(&mut self, from: NodeId, round: ViewId, decision: Decision) {
        if self.phase != Phase::Normal || decision.base != self.view_id() || !self.has_state {
            return; // (a joiner without the state: see `on_prepare`)
        }
        if self.promised.is_some_and(|p| round < p) {
            if from != self.id {
                let promised = self.promised.expect("checked");
                self.send(
                    from,
                    Wire::Nack {
                        base: decision.base,
                        promised,
                    },
                );
            }
            return;
        }
        self.promised = Some(round);
        self.follow(round.leader);
        let base = decision.base;
        self.accepted = Some((round, decision));
        if from == self.id {
            self.on_accepted(self.id, base, round);
        } else {
            self.send(from, Wire::Accepted { base, round });
        }
    }

    /// This member promised or accepted in a round of `leader`: it is frozen from now,
    /// and waits for that leader (which is evidently up) for a while before it suspects it.
    fn follow(&mut self, leader: NodeId) {
        if self.mutation != Some(Mutation::NoFreeze) {
            self.vs.frozen = true;
        }
        self.vs.frozen_at = self.now;
        self.vs.frozen_since.get_or_insert(self.now);
        self.wanted_since = Some(self.now);
        if leader != self.id {
            self.suspects.remove(&leader);
        }
    }

    fn on_accepted(&mut self, from: NodeId, base: ViewId, round: ViewId) {
        if base != self.view_id() {
            return;
        }
        let majority = self.view.as_ref().expect("a view").majority();
        let Some(r) = self.leading.as_mut() else {
            return;
        };
        if r.id != round || r.phase != RoundPhase::Accept {
            return;
        }
        r.accepted_by.insert(from);
        if r.accepted_by.len() < majority {
            return;
        }
        // Chosen: a majority of the base view accepted it.
        let d = r.decision.clone().expect("proposed");
        let old = self.view.clone().expect("a view");
        let mut to: BTreeSet<NodeId> = old.members.iter().copied().collect();
        to.extend(d.view.members.iter().copied());
        to.remove(&self.id);
        for m in to {
            self.send(
                m,
                Wire::Commit {
                    decision: d.clone(),
                },
            );
        }
        self.on_commit(d);
    }

    /// The decision `d` is chosen.
    fn on_commit(&mut self, d: Decision) {
        if self.phase == Phase::Stopped {
            return;
        }
        let current = self.view.as_ref().map(|v| v.id);
        match current {
            // A joiner: it has no base view to finish.
            None if d.view.contains(self.id) => self.install(d.view.clone(), Some(d)),
            Some(c) if c == d.base => self.finish_view(d),
            _ => {}
        }
    }

    /// Deliver what is left of the base view from the decision's flush, then install the
    /// decision's view, or stop if this member is not in it.
    fn finish_view(&mut self, d: Decision) {
        let base = d.base;
        if !self.has_state {
            // A joiner whose state never came: it cannot deliver the base view's rest.
            self.stop_blocked(format!(
                "view {} changed before this joiner received the group's state",
                base
            ));
            return;
        }
        for data in &d.flush {
            let key = data.key();
            if key <= self.vs.delivered && self.mutation != Some(Mutation::SkipDuplicateFilter) {
                continue;
            }
            assert!(
                self.view
                    .as_ref()
                    .is_some_and(|v| v.contains(data.id.origin)),
                "the flush holds broadcasts of the base view's members"
            );
            self.vs.pending.remove(&key);
            self.vs.log.insert(data.clone());
            self.deliver(base, key);
        }
        let own_left = self.vs.pending.keys().any(|k| k.1 == self.id);
        if self.mutation.is_some() {
            self.own_undelivered = 0;
            self.own_undelivered_bytes = 0;
        }
        if d.view.contains(self.id) && self.mutation.is_none() {
            assert!(
                !own_left && self.own_undelivered == 0 && self.own_undelivered_bytes == 0,
                "a member that moves on has every broadcast it sent in the base view delivered"
            );
        }
        if !d.view.contains(self.id) {
            self.phase = Phase::Stopped;
            self.actions.push_back(if self.leavers.contains(&self.id) {
                Action::Left
            } else {
                Action::Blocked(format!(
                    "excluded from view {} (members {:?}) by its leader",
                    d.view.id, d.view.members
                ))
            });
            return;
        }
        let view = d.view.clone();
        self.install(view, Some(d));
    }

    fn install(&mut self, view: View, d: Option<Decision>) {
        let old = std::mem::take(&mut self.vs);
        let base: HashSet<NodeId> = self
            .view
            .as_ref()
            .map(|v| v.members.iter().copied().collect())
            .unwrap_or_default();
        if let Some(ov) = &self.view {
            for &m in &ov.members {
                if !view.contains(m) {
                    self.links.retire(m);
                }
            }
        }
        self.phase = Phase::Normal;
        self.suspects.clear();
        self.joiners.retain(|j| !view.contains(*j));
        self.leavers.retain(|l| view.contains(*l));
        self.wanted_since = None;
        self.promised = None;
        self.accepted = None;
        self.leading = None;
        self.failed_rounds = 0;
        self.max_round = self.max_round.max(view.id.round);
        self.last_commit = d;
        self.view = Some(view.clone());
        self.installed_at = self.now;
        for &m in &view.members {
            if m != self.id {
                self.links.touch(self.now, m);
            }
        }
        self.actions.push_back(Action::Install(view.clone()));
        // Every member that was in the base view as well sends the joiners its state,
        // before it delivers anything of the new view (the early messages below): all of
        // them delivered the same broadcasts of the base view, so hold the same state, and
        // a joiner takes the first that comes. One sender is not enough: the committer may
        // have chosen a decision accepted in an earlier round that leaves it out, and any
        // one member may crash before it sends, leaving a joiner that can never deliver
        // in a view that counts it. The cost is a copy of the state per such member.
        if base.contains(&self.id) {
            for &m in &view.members {
                if !base.contains(&m) {
                    self.actions.push_back(Action::StateNeeded {
                        joiner: m,
                        view: view.id,
                    });
                }
            }
        }
        if let Some((v, state)) = self.early_state.take() {
            // A joiner is new in exactly one view: its state is that view's.
            if !self.has_state && v == view.id {
                self.has_state = true;
                self.actions.push_back(Action::StateReceived(state));
            } else if v > view.id {
                self.early_state = Some((v, state));
            }
        }
        // Messages of this view that came early; those of later ones wait on.
        for (from, w) in old.future {
            let v = match &w {
                Wire::Data { view, .. } | Wire::Ack { view, .. } => *view,
                _ => unreachable!("only ring messages wait"),
            };
            if v == view.id {
                self.on_ring(from, w);
            } else if v > view.id {
                self.vs.future.push((from, w));
            }
        }
        self.answer_held_pings(&view);
        if !self.joiners.is_empty() || !self.leavers.is_empty() {
            self.want_change();
        }
        self.send_outbox();
    }

    /// View-change deadlines: a leader that waited long enough decides with the majority
    /// it has, or starts again; a member waiting for a change that does not come suspects
    /// the member it waits for.
    fn round_timers(&mut self) {
        let now = self.now;
        let t = self.cfg.change_timeout;
        if let Some(r) = &self.leading {
            if now >= r.started + t {
                let majority = self.view.as_ref().expect("a view").majority();
                match r.phase {
                    RoundPhase::Prepare if r.promises.len() >= majority => self.propose(),
                    _ => {
                        let heard = match r.phase {
                            RoundPhase::Prepare => r.promises.len(),
                            RoundPhase::Accept => r.accepted_by.len(),
                        };
                        self.failed_rounds += 1;
                        if self.failed_rounds == self.cfg.give_up_rounds {
                            // Say so once; keep trying, so that the view change completes
                            // when a majority can be reached again (a partition heals).
                            let v = self.view.as_ref().expect("a view");
                            let why = format!(
                                "no majority: {} rounds heard from at most {heard} of the {} members of view {} (a majority is {majority}); not delivering until one is reached",
                                self.failed_rounds,
                                v.members.len(),
                                v.id
                            );
                            self.actions.push_back(Action::Blocked(why));
                            self.vs.said_blocked = true;
                        }
                        self.start_round();
                    }
                }
            }
            return;
        }
        // Not leading: waiting on a promise, or for a change asked for. Frozen, it
        // delivers nothing until a view is installed: after as long as a leader takes to
        // give up, a member of a minority says why, as its leader does.
        let give_up = u64::from(self.cfg.give_up_rounds) * 2 * t;
        if let (Some(since), false) = (self.vs.frozen_since, self.vs.said_blocked) {
            if self.vs.frozen && now >= since + give_up {
                let v = self.view.as_ref().expect("a view");
                let why = format!(
                    "no view change completed in {} ms: no leader gathered a majority of view {} ({} of its {} members); not delivering until one does",
                    now - since,
                    v.id,
                    v.majority(),
                    v.members.len()
                );
                self.actions.push_back(Action::Blocked(why));
                self.vs.said_blocked = true;
            }
        }
        let waiting_since = if self.vs.frozen {
            Some(self.vs.frozen_at)
        } else {
            self.wanted_since
        };
        if let Some(since) = waiting_since {
            if now >= since + 2 * t {
                // Whoever should have led it failed, or cannot reach a majority: suspect
                // it, and let the next oldest try (perhaps this member).
                let blame = match self.promised {
                    Some(p) if self.vs.frozen && !self.suspects.contains(&p.leader) => p.leader,
                    _ => self.coordinator(),
                };
                self.wanted_since = Some(now);
                self.vs.frozen_at = now;
                if blame == self.id {
                    self.want_change();
                } else {
                    self.suspect(blame);
                    if self.coordinator() == self.id && self.leading.is_none() {
                        self.start_round();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(window: usize, window_bytes: usize) -> Member {
        let cfg = Config {
            window,
            window_bytes,
            ..Config::default()
        };
        // One of three: its broadcasts wait for the others, so they stay in flight.
        Member::founder(1, &[1, 2, 3], cfg, 0)
    }

    /// Hand-driven members: every frame goes to its addressee at the next step, except
    /// those to a paused member or on a held pair, which wait, in order, until released.
    struct Hand {
        ms: Vec<Member>,
        now: u64,
        paused: BTreeSet<NodeId>,
        held_pairs: BTreeSet<(NodeId, NodeId)>,
        held: Vec<(NodeId, NodeId, Frame)>,
        ready: Vec<(NodeId, NodeId, Frame)>,
    }

    impl Hand {
        fn new(n: NodeId) -> Self {
            let ids: Vec<NodeId> = (1..=n).collect();
            Hand {
                ms: ids
                    .iter()
                    .map(|&id| Member::founder(id, &ids, Config::default(), 0))
                    .collect(),
                now: 0,
                paused: BTreeSet::new(),
                held_pairs: BTreeSet::new(),
                held: Vec::new(),
                ready: Vec::new(),
            }
        }

        fn m(&mut self, id: NodeId) -> &mut Member {
            &mut self.ms[id as usize - 1]
        }

        /// Collect what member `id` wants sent (its other actions are dropped).
        fn drain(&mut self, id: NodeId) {
            let m = &mut self.ms[id as usize - 1];
            m.flush();
            while let Some(a) = m.poll_action() {
                if let Action::Send { to, frame } = a {
                    self.ready.push((id, to, frame));
                }
            }
        }

        /// One millisecond: deliver what is ready and not held, then tick the members
        /// that are not paused.
        fn step(&mut self) {
            self.now += 1;
            let now = self.now;
            for (from, to, f) in std::mem::take(&mut self.ready) {
                if self.paused.contains(&to) || self.held_pairs.contains(&(from, to)) {
                    self.held.push((from, to, f));
                } else {
                    self.m(to).handle(now, from, f);
                    self.drain(to);
                }
            }
            for id in 1..=self.ms.len() as NodeId {
                if !self.paused.contains(&id) {
                    self.m(id).tick(now);
                    self.drain(id);
                }
            }
        }

        /// Unpause `id`: what waited for it goes first at the next step, in order.
        fn resume(&mut self, id: NodeId) {
            self.paused.remove(&id);
            let (mut to, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
                .into_iter()
                .partition(|(from, t, _)| *t == id && !self.held_pairs.contains(&(*from, *t)));
            self.held = held;
            to.append(&mut self.ready);
            self.ready = to;
        }

        /// Unpause every member and unhold every pair: the held frames go first, in order.
        fn release(&mut self) {
            self.paused.clear();
            self.held_pairs.clear();
            let mut held = std::mem::take(&mut self.held);
            held.append(&mut self.ready);
            self.ready = held;
        }
    }

    /// Review finding 7: a member that computed long enough to be left out pings its ring
    /// neighbours before it sends its queue. Neighbours frozen in the view change that
    /// leaves it out must not answer until the change is over, and then answer that it
    /// is out: before, their links acknowledged the ping at once, and the queue went out
    /// into a view nobody would deliver it in.
    #[test]
    fn neighbours_frozen_in_a_view_change_answer_a_ping_only_after_it() {
        let mut h = Hand::new(3);
        for _ in 0..50 {
            h.step();
        }
        assert!(h.ms.iter().all(|m| m.view_id().round == 0 && !m.vs.frozen));
        // Member 3 computes: 1 and 2 suspect it and 1 leads the change without it. Hold
        // the pair 1-2 once 1 has proposed the view without 3 (2 has promised), so that
        // both stay frozen.
        h.paused.insert(3);
        let mut steps = 0;
        while !(h.ms[0].accepted.is_some() && h.ms[1].vs.frozen) {
            steps += 1;
            assert!(steps < 5_000, "member 1 never proposed a view");
            h.step();
        }
        let proposed = &h.ms[0].accepted.as_ref().expect("proposed").1.view;
        assert_eq!(
            proposed.members,
            vec![1, 2],
            "the view proposed leaves 3 out"
        );
        h.held_pairs.extend([(1, 2), (2, 1)]);
        // 3 goes on: it pings, and reads what came meanwhile.
        h.resume(3);
        let now = h.now;
        let mark = h.m(3).ping_neighbours(now);
        h.drain(3);
        assert_eq!(mark.len(), 2, "a ring of three: both others are neighbours");
        // (Shorter than a view change's timeout: held longer, 1 would start a round that
        // 3, now back, could join, leaving 2 out.)
        for _ in 0..Config::default().change_timeout / 2 {
            h.step();
            assert!(
                !h.ms[2].heard_back_since(&mark) && !h.ms[2].is_stopped(),
                "member 3 heard back from neighbours frozen in a view change"
            );
        }
        // The change ends without 3: it learns that it is out, and never heard back.
        h.release();
        let mut steps = 0;
        while !h.ms[2].is_stopped() {
            steps += 1;
            assert!(steps < 5_000, "member 3 never learnt that it was left out");
            assert!(
                !h.ms[2].heard_back_since(&mark),
                "member 3 heard back while being left out"
            );
            h.step();
        }
        for m in &h.ms[..2] {
            let v = m.view().expect("a view");
            assert_eq!(v.members, vec![1, 2], "1 and 2 went on without 3");
        }
        // A ping from the old view, from a process the view leaves out, is answered with
        // the view, not a pong.
        let (now, old) = (h.now, h.ms[2].view_id());
        h.m(1).handle(
            now,
            3,
            Frame::unsequenced(Wire::Ping {
                view: old,
                nonce: 7,
            }),
        );
        let mut answers = Vec::new();
        while let Some(a) = h.m(1).poll_action() {
            if let Action::Send { to: 3, frame } = a {
                answers.push(frame.body);
            }
        }
        assert!(
            matches!(answers[..], [Some(Wire::Outdated { .. })]),
            "answered {answers:?}"
        );
    }

    /// Neighbours in the view and in no view change answer a ping at once; neighbours
    /// frozen in a view change that keeps the pinger answer once it is over.
    #[test]
    fn neighbours_that_go_on_with_the_pinger_answer() {
        let mut h = Hand::new(4);
        for _ in 0..50 {
            h.step();
        }
        let now = h.now;
        let mark = h.m(3).ping_neighbours(now);
        h.drain(3);
        assert_eq!(
            mark.iter().map(|&(nb, _)| nb).collect::<Vec<_>>(),
            vec![2, 4]
        );
        let mut steps = 0;
        while !h.ms[2].heard_back_since(&mark) {
            steps += 1;
            assert!(steps < 100, "no answer to a ping in a quiet group");
            h.step();
        }
        // Member 1 leaves: 2, 3 and 4 go on. 3 pings once 2 and 4 are frozen.
        let now = h.now;
        h.m(1).leave(now);
        h.drain(1);
        let mut steps = 0;
        while !(h.ms[1].vs.frozen && h.ms[3].vs.frozen) {
            steps += 1;
            assert!(
                steps < 5_000,
                "members 2 and 4 never froze in the leave's change"
            );
            h.step();
        }
        let now = h.now;
        let mark = h.m(3).ping_neighbours(now);
        h.drain(3);
        let mut steps = 0;
        while !h.ms[2].heard_back_since(&mark) {
            steps += 1;
            assert!(steps < 5_000, "no answer after the view change");
            assert!(!h.ms[2].is_stopped(), "member 3 is in the new view");
            assert!(
                h.ms[1].vs.frozen
                    || h.ms[3].vs.frozen
                    || h.ms[2].view().unwrap().members.len() == 3,
                "answered during the change"
            );
            h.step();
        }
        for m in &h.ms[1..] {
            let v = m.view().expect("a view");
            assert_eq!(v.members, vec![2, 3, 4], "1 left");
        }
    }

    /// A lone broadcaster's receivers drop what every member delivered: the sender, which
    /// receives no broadcast to answer, still reports its deliveries. (Its receivers used
    /// to keep every broadcast, and the next view change carried them all in one frame.)
    #[test]
    fn a_lone_senders_receivers_keep_a_bounded_log() {
        let cfg = Config::default();
        let mut ms: Vec<Member> = (1..=3)
            .map(|id| Member::founder(id, &[1, 2, 3], cfg, 0))
            .collect();
        let mut delivered = [0u64; 3];
        let mut most_held = [0usize; 3];
        let mut now = 0;
        let mut sent = 0u64;
        // Bounded: 500 broadcasts, each round of the loop moves every frame once.
        for _round in 0..20_000 {
            now += 1;
            if sent < 500 && ms[0].broadcast(now, Bytes::from_static(b"lone")).is_ok() {
                sent += 1;
            }
            let mut frames = Vec::new();
            for (i, m) in ms.iter_mut().enumerate() {
                m.tick(now);
                m.flush();
                while let Some(a) = m.poll_action() {
                    match a {
                        Action::Send { to, frame } => frames.push((m.id, to, frame)),
                        Action::Deliver { .. } => delivered[i] += 1,
                        _ => {}
                    }
                }
                most_held[i] = most_held[i].max(m.vs.log.len());
            }
            for (from, to, frame) in frames {
                ms[to as usize - 1].handle(now, from, frame);
            }
            if sent == 500 && delivered == [500; 3] {
                break;
            }
        }
        assert_eq!(delivered, [500; 3], "every member delivers every broadcast");
        // Let the last reports go round.
        for _ in 0..50 {
            now += 1;
            let mut frames = Vec::new();
            for m in ms.iter_mut() {
                m.tick(now);
                m.flush();
                while let Some(a) = m.poll_action() {
                    if let Action::Send { to, frame } = a {
                        frames.push((m.id, to, frame));
                    }
                }
            }
            for (from, to, frame) in frames {
                ms[to as usize - 1].handle(now, from, frame);
            }
        }
        for (i, m) in ms.iter().enumerate() {
            assert!(
                m.vs.log.len() <= 2,
                "member {} still holds {} broadcasts, all delivered everywhere (most held: {most_held:?})",
                i + 1,
                m.vs.log.len()
            );
        }
    }

    #[test]
    fn back_pressure_counts_broadcasts_and_bytes() {
        let mut m = member(4, 1 << 20);
        for k in 1..=4 {
            assert_eq!(m.broadcast(0, Bytes::from_static(b"x")).unwrap().seq, k);
        }
        assert_eq!(
            m.broadcast(0, Bytes::from_static(b"x")),
            Err(BroadcastError::Full(4))
        );

        let mut m = member(256, 1000);
        let chunk = Bytes::from(vec![0u8; 400]);
        assert!(m.broadcast(0, chunk.clone()).is_ok());
        assert!(m.broadcast(0, chunk.clone()).is_ok());
        // 1200 bytes would pass the 1000.
        assert_eq!(m.broadcast(0, chunk.clone()), Err(BroadcastError::Full(2)));
        // A smaller one still fits.
        assert!(m.broadcast(0, Bytes::from(vec![0u8; 200])).is_ok());

        // With nothing in flight, one broadcast larger than the window still goes.
        let mut m = member(256, 1000);
        assert!(m.broadcast(0, Bytes::from(vec![0u8; 5000])).is_ok());
        assert_eq!(
            m.broadcast(0, Bytes::from_static(b"x")),
            Err(BroadcastError::Full(1))
        );
    }

    /// The member's acknowledgement of a broadcast goes first the way the broadcast came,
    /// towards its origin (which waits for it to deliver), then the other way.
    #[test]
    fn an_acknowledgement_goes_towards_the_origin_first() {
        // Ring 1 - 2 - 3 (- 1): member 2's left is 1, its right 3.
        let founders = [1, 2, 3];
        let origin = |id: NodeId| Member::founder(id, &founders, Config::default(), 0);
        let data_from = |o: &mut Member| -> Frame {
            o.broadcast(0, Bytes::from_static(b"m")).unwrap();
            o.flush();
            std::iter::from_fn(|| o.poll_action())
                .find_map(|a| match a {
                    Action::Send { to: 2, frame } => Some(frame),
                    _ => None,
                })
                .expect("the broadcast goes to member 2")
        };
        for from in [1, 3] {
            let frame = data_from(&mut origin(from));
            let mut m = Member::founder(2, &founders, Config::default(), 0);
            while m.poll_action().is_some() {}
            m.handle(1, from, frame);
            m.flush();
            let order: Vec<NodeId> = std::iter::from_fn(|| m.poll_action())
                .filter_map(|a| match a {
                    Action::Send { to, frame } if matches!(frame.body, Some(Wire::Ack { .. })) => {
                        Some(to)
                    }
                    _ => None,
                })
                .collect();
            let other = 4 - from;
            assert_eq!(order, vec![from, other], "a broadcast from {from}");
        }
    }

    /// A member that joined after a process left passes that process's stale join on;
    /// the coordinator, which retired it, answers `Gone`, and the member forgets it instead
    /// of waiting for a view change nobody runs and then blaming the coordinator.
    #[test]
    fn a_join_passed_on_for_a_process_that_left_is_answered_and_dropped() {
        let founders = [1, 2, 3];
        let sends = |m: &mut Member| -> Vec<(NodeId, Frame)> {
            m.flush();
            std::iter::from_fn(|| m.poll_action())
                .filter_map(|a| match a {
                    Action::Send { to, frame } => Some((to, frame)),
                    _ => None,
                })
                .collect()
        };
        let mut c = Member::founder(1, &founders, Config::default(), 0);
        c.links.retire(9); // 9 was in a view of the coordinator's once, and left it
        let mut m = Member::founder(2, &founders, Config::default(), 0);
        sends(&mut c);
        sends(&mut m);
        m.on_wire(9, Wire::Join { who: 9 });
        assert!(m.joiners.contains(&9) && m.wanted_since.is_some());
        let join = sends(&mut m)
            .into_iter()
            .find(|(to, f)| *to == 1 && f.body == Some(Wire::Join { who: 9 }))
            .expect("the join is passed on to the coordinator")
            .1;
        c.handle(1, 2, join);
        let out = sends(&mut c);
        assert!(out
            .iter()
            .any(|(to, f)| *to == 9 && matches!(f.body, Some(Wire::Outdated { .. }))));
        let gone = out
            .into_iter()
            .find(|(to, f)| *to == 2 && f.body == Some(Wire::Gone { who: 9 }))
            .expect("the member that passed the join on hears 9 is gone")
            .1;
        m.handle(2, 1, gone);
        assert!(m.joiners.is_empty(), "9 is forgotten");
        assert_eq!(m.wanted_since, None, "no view change is wanted any more");
        m.tick(1000);
        assert!(
            !sends(&mut m)
                .iter()
                .any(|(_, f)| matches!(f.body, Some(Wire::Suspect { .. }))),
            "the coordinator is not blamed"
        );
    }

    /// A joiner whose contacts never answer says so once, after `give_up_rounds` rounds
    /// of asking, and goes on asking and wanting a directory; news of more contacts (not
    /// the same ones again) lets it say so again.
    #[test]
    fn a_joiner_nobody_answers_says_so_once_and_keeps_asking() {
        let cfg = Config::default();
        let mut j = Member::joiner(7, &[1, 2], cfg, 0);
        let mut blocked = Vec::new();
        let mut joins = 0;
        let mut drain = |j: &mut Member, blocked: &mut Vec<String>| {
            j.flush();
            while let Some(a) = j.poll_action() {
                match a {
                    Action::Blocked(why) => blocked.push(why),
                    Action::Send { frame, .. } if frame.body == Some(Wire::Join { who: 7 }) => {
                        joins += 1
                    }
                    _ => {}
                }
            }
        };
        drain(&mut j, &mut blocked);
        let rounds = u64::from(cfg.give_up_rounds);
        for k in 1..rounds {
            j.tick(k * cfg.change_timeout);
            drain(&mut j, &mut blocked);
        }
        assert!(
            blocked.is_empty(),
            "not before {rounds} rounds: {blocked:?}"
        );
        for k in rounds..3 * rounds {
            j.tick(k * cfg.change_timeout);
            drain(&mut j, &mut blocked);
        }
        assert_eq!(blocked.len(), 1, "once: {blocked:?}");
        assert!(
            blocked[0].contains("join") && blocked[0].contains("[1, 2]"),
            "{}",
            blocked[0]
        );
        assert!(!j.is_stopped() && j.view().is_none());
        assert!(j.wants_directory(), "given up on its contacts");
        j.add_contacts([2, 1]);
        assert!(j.wants_directory(), "no news: still given up");
        j.add_contacts([3]);
        assert!(!j.wants_directory(), "a new contact to ask");
        for k in 3 * rounds..5 * rounds {
            j.tick(k * cfg.change_timeout);
            drain(&mut j, &mut blocked);
        }
        assert_eq!(blocked.len(), 2, "again after news: {blocked:?}");
        assert!(blocked[1].contains("[1, 2, 3]"), "{}", blocked[1]);
        assert!(
            joins >= 2 * 5 * rounds as usize,
            "it keeps asking: {joins} joins sent"
        );
    }
}
