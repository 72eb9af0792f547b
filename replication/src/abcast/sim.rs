//! The deterministic simulator: a whole group of [`Member`]s on a simulated network,
//! driven by one seeded random generator and a simulated clock (no threads, no real
//! time), through crashes (the leader's too, and during view changes), restarts that
//! rejoin under new ids, partitions and heals, pauses (a hung process that goes on
//! later, its clock jumped, with what was sent to it waiting), dropped, duplicated,
//! delayed and reordered frames. It records every member's delivery log for the
//! [`checker`].
//!
//! The network is one of two kinds, by seed ([`Carrier`]): datagrams, each of which may
//! be dropped, duplicated, delayed and reordered; or connections, as the runtime's TCP
//! and shared memory are: FIFO between two members, losing what is in flight only when
//! they break (at random, at a crash of either end, across a partition), which both ends
//! notice a little later ([`Member::peer_down`], [`Member::link_reset`]); a frame to a
//! member that is down or cut off is lost, and its sender told (a connection that could
//! not be made).
//!
//! A run has a fault phase, then a quiet phase (partitions healed, no drops or crashes,
//! blocked members rejoined) after which the group must have settled: one view of all
//! running members, every broadcast of theirs delivered.
//!
//! Faults are chosen so that some component always holds a majority of every installed
//! view's running (not crashed, not paused) members, and of every view proposed or accepted in a view change (it
//! may have been chosen, and be installed once its commit arrives): the protocol promises
//! progress only then. A process that gave up on the ones it knows (a joiner no contact
//! lets in, a member frozen in a view change no leader completes) learns the running
//! processes after every restart and heal and every 100 ms of the quiet phase, as the
//! runtime's address book tells it every second (see [`Member::wants_directory`]).
//!
//! [`checker`]: super::checker

use super::agreement::{self, Agreement, Outcome};
use super::link::Carrier;
use super::member::{Action, Config, Member, NeighbourMark};
use super::types::{LogEntry, MemberLog, NodeId, ViewId};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// What a run does.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// Founding members (3 to 7 in the tests).
    pub members: usize,
    /// Milliseconds of faults, then of quiet.
    pub fault_time: u64,
    pub quiet_time: u64,
    /// Per-frame probabilities during the fault phase (over connections, a frame breaks
    /// its connection with a fifth of `drop`, and none is duplicated).
    pub drop: f64,
    pub duplicate: f64,
    /// Frames take 1 to `max_delay` ms (so they overtake each other).
    pub max_delay: u64,
    /// Mean milliseconds between broadcasts of each member (0: none).
    pub broadcast_every: u64,
    /// Mean milliseconds between faults (crash, partition, heal, restart).
    pub fault_every: u64,
    pub crashes: bool,
    pub partitions: bool,
    pub member: Config,
    /// Break the protocol on purpose (to show the checker catches it).
    pub mutation: Option<super::member::Mutation>,
    /// Print faults, views and stops to stderr as they happen (replays).
    pub trace: bool,
    /// Broadcast proposals and transactions ([`super::agreement`]) instead of plain
    /// payloads, and record every member's outcomes.
    pub agreement: bool,
    /// Over connections, in the fault phase: the probability that a frame is lost with
    /// no break and no word to either end (a driver bug, on purpose: the links' stall
    /// net must recover it; see [`SimResult::stalls`]). 0 in every random run.
    pub silent_loss: f64,
    /// Longest pause of a member in the fault phase, in ms (0: none). A paused member is
    /// a hung process (SIGSTOP, a long GC, a stalled VM): it handles nothing, and what
    /// reaches it waits, in order, until it goes on (in its connections or socket
    /// buffer); its clock jumps. The fault schedule counts it as down for the majority
    /// it keeps, and every pause ends by the end of the fault phase.
    pub max_pause: u64,
}

impl SimConfig {
    /// A run with every kind of fault, its size and timing drawn from `seed`.
    pub fn random(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x005e_edab_ca57);
        SimConfig {
            seed,
            members: rng.gen_range(3..=7),
            fault_time: 1500,
            quiet_time: 1500,
            drop: [0.0, 0.01, 0.05][rng.gen_range(0..3)],
            duplicate: [0.0, 0.01, 0.05][rng.gen_range(0..3)],
            max_delay: rng.gen_range(1..=8),
            broadcast_every: rng.gen_range(5..=40),
            fault_every: rng.gen_range(150..=600),
            crashes: true,
            partitions: rng.gen_bool(0.5),
            member: Config {
                carrier: if rng.gen_bool(0.5) {
                    Carrier::Connections
                } else {
                    Carrier::Datagrams
                },
                ..Config::default()
            },
            mutation: None,
            trace: false,
            agreement: false,
            silent_loss: 0.0,
            max_pause: if rng.gen_bool(0.5) { 1200 } else { 0 },
        }
    }
}

/// What a run produced.
pub struct SimResult {
    pub logs: Vec<MemberLog>,
    /// Human-readable record of the faults injected, for a failing seed's report.
    pub faults: Vec<String>,
    pub events: u64,
    /// Broadcasts delivered, summed over members.
    pub deliveries: u64,
    /// Every member's protocol state at the end ([`Member::status`]).
    pub status: Vec<String>,
    /// With [`SimConfig::agreement`]: each member's outcomes, in delivery order, and the
    /// history version it started from (a joiner's, from the state it received).
    pub outcomes: Vec<(NodeId, u64, Vec<Outcome>)>,
    /// Why no progress was owed at the end, if it was not: the latest view has lost the
    /// majority of its members to crashes. The fault schedule avoids that for every view
    /// installed, proposed or accepted, but a view change can still choose a view of
    /// members that crash right after promising; the protocol cannot go on then (as no
    /// majority-based one can), so such a run is held to the safety properties only.
    pub stuck: Option<String>,
    /// Stalls of links over connections ([`Action::Stalled`]), and those toward a peer
    /// that was up, running and reachable: with every lost frame reported (no
    /// [`SimConfig::silent_loss`]), each of those is a path that drops frames silently.
    pub stalls: u64,
    pub unexplained_stalls: Vec<String>,
    /// The longest silence a stall reported ([`super::link::Stall::silent_ms`]) by a
    /// member that was not paused meanwhile (a paused member's clock jumps): past the
    /// first stall of a link, its interval doubles while the peer stays silent.
    pub longest_stall_ms: u64,
    /// Pings after a pause ([`Member::ping_neighbours`]), by how the wait for them
    /// ended: both neighbours answered, the member learnt that it stopped, the bound
    /// passed. (Those of members that crashed meanwhile are not counted.)
    pub pings: [u64; 3],
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Frame {
        from: NodeId,
        to: NodeId,
        /// Over connections, the connection's incarnation it went on (0 for datagrams).
        epoch: u64,
        frame: FrameBox,
    },
    /// Over connections: `node` notices that its connection to `peer` broke (`down`)
    /// or could not be made.
    Reset {
        node: NodeId,
        peer: NodeId,
        down: bool,
    },
    Tick(NodeId),
    Broadcast(NodeId),
    Fault,
    Restart(NodeId),
}

/// A frame in the event queue (ordered by nothing but identity: the queue's sequence
/// numbers order equal times).
#[derive(Clone, Debug)]
struct FrameBox(super::link::Frame);
impl PartialEq for FrameBox {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for FrameBox {}
impl PartialOrd for FrameBox {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for FrameBox {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

struct Node {
    member: Member,
    log: MemberLog,
    agreement: Agreement,
    /// The version its history started from, and its outcomes.
    base: u64,
    outcomes: Vec<Outcome>,
    alive: bool,
    /// Partition side.
    side: u8,
    /// Paused until this time ([`SimConfig::max_pause`]); after the pause, when the last
    /// one ended (0: never paused).
    paused_until: u64,
    /// Paused since its last broadcast: the next one first pings its ring neighbours.
    ping_due: bool,
    /// As the MPI layer's ring group does after a long idle: its broadcasts wait until
    /// its neighbours answered this ping ([`Member::heard_back_since`]), it stopped, or
    /// this time (the failure detector's bound) passed.
    confirming: Option<(NeighbourMark, u64)>,
}

struct Sim {
    cfg: SimConfig,
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    nodes: BTreeMap<NodeId, Node>,
    next_id: NodeId,
    faults: Vec<String>,
    partitioned: bool,
    events: u64,
    payload_no: u64,
    /// Over connections: each pair's connection incarnation (a break starts a new one),
    /// and when the last frame each way arrives (they arrive in order).
    epochs: BTreeMap<(NodeId, NodeId), u64>,
    arrivals: BTreeMap<(NodeId, NodeId), u64>,
    stalls: u64,
    unexplained_stalls: Vec<String>,
    longest_stall_ms: u64,
    pings: [u64; 3],
}

/// Ticks every this many milliseconds.
const TICK: u64 = 5;
/// A run that takes more events than this is stuck in a loop: fail loudly.
const MAX_EVENTS: u64 = 20_000_000;

/// Run one simulation.
pub fn run(cfg: SimConfig) -> SimResult {
    let mut sim = Sim {
        rng: StdRng::seed_from_u64(cfg.seed),
        cfg,
        now: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        nodes: BTreeMap::new(),
        next_id: 1,
        faults: Vec::new(),
        partitioned: false,
        events: 0,
        payload_no: 0,
        epochs: BTreeMap::new(),
        arrivals: BTreeMap::new(),
        stalls: 0,
        unexplained_stalls: Vec::new(),
        longest_stall_ms: 0,
        pings: [0; 3],
    };
    sim.start();
    sim.run();
    let deliveries = sim
        .nodes
        .values()
        .map(|n| {
            n.log
                .entries
                .iter()
                .filter(|e| matches!(e, LogEntry::Deliver { .. }))
                .count() as u64
        })
        .sum();
    let status = sim
        .nodes
        .values()
        .map(|n| format!("alive {} {}", n.alive, n.member.status()))
        .collect();
    let stuck = sim.stuck();
    let outcomes = sim
        .nodes
        .iter_mut()
        .map(|(&id, n)| (id, n.base, std::mem::take(&mut n.outcomes)))
        .collect();
    SimResult {
        outcomes,
        status,
        logs: sim.nodes.into_values().map(|n| n.log).collect(),
        faults: sim.faults,
        events: sim.events,
        deliveries,
        stuck,
        stalls: sim.stalls,
        unexplained_stalls: sim.unexplained_stalls,
        longest_stall_ms: sim.longest_stall_ms,
        pings: sim.pings,
    }
}

impl Sim {
    fn end(&self) -> u64 {
        self.cfg.fault_time + self.cfg.quiet_time
    }

    fn in_faults(&self) -> bool {
        self.now < self.cfg.fault_time
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, ev)));
    }

    fn start(&mut self) {
        let n = self.cfg.members as u64;
        let ids: Vec<NodeId> = (1..=n).collect();
        self.next_id = n + 1;
        for &id in &ids {
            let mut member = Member::founder(id, &ids, self.cfg.member, 0);
            if let Some(m) = self.cfg.mutation {
                member.break_on_purpose(m);
            }
            self.add(id, member, 0);
        }
        if self.cfg.fault_every > 0 {
            let t = self.rng.gen_range(1..=self.cfg.fault_every * 2);
            self.push(t, Ev::Fault);
        }
    }

    /// Start `member` as process `id` on partition side `side`.
    fn add(&mut self, id: NodeId, member: Member, side: u8) {
        self.nodes.insert(
            id,
            Node {
                member,
                log: MemberLog {
                    node: id,
                    ..MemberLog::default()
                },
                alive: true,
                side,
                agreement: Agreement::default(),
                base: 0,
                outcomes: Vec::new(),
                paused_until: 0,
                ping_due: false,
                confirming: None,
            },
        );
        let t = self.now + self.rng.gen_range(1..=TICK);
        self.push(t, Ev::Tick(id));
        self.schedule_broadcast(id);
        self.drain(id);
    }

    fn schedule_broadcast(&mut self, id: NodeId) {
        if self.cfg.broadcast_every == 0 {
            return;
        }
        let t = self.now + self.rng.gen_range(1..=2 * self.cfg.broadcast_every);
        // Broadcasts stop half-way through the quiet phase, so the rest can settle.
        if t < self.cfg.fault_time + self.cfg.quiet_time / 2 {
            self.push(t, Ev::Broadcast(id));
        }
    }

    fn run(&mut self) {
        while let Some(Reverse((t, seq, ev))) = self.queue.pop() {
            if t > self.end() {
                break;
            }
            self.now = t;
            self.events += 1;
            assert!(
                self.events < MAX_EVENTS,
                "seed {}: more than {MAX_EVENTS} events by {} ms: a livelock",
                self.cfg.seed,
                self.now
            );
            // What reaches a paused member waits until it goes on, in order: it keeps
            // its sequence number, by which the queue orders equal times, so frames on
            // one connection stay in the order they were sent, before any sent later.
            let at = match &ev {
                Ev::Frame { to: id, .. }
                | Ev::Reset { node: id, .. }
                | Ev::Tick(id)
                | Ev::Broadcast(id) => Some(*id),
                Ev::Fault | Ev::Restart(_) => None,
            };
            if let Some(until) = at
                .and_then(|id| self.nodes.get(&id))
                .map(|n| n.paused_until)
            {
                if until > self.now {
                    self.queue.push(Reverse((until, seq, ev)));
                    continue;
                }
            }
            match ev {
                Ev::Frame {
                    from,
                    to,
                    epoch,
                    frame,
                } => {
                    if self.connections() {
                        if epoch != self.epoch(from, to) {
                            continue; // lost with its connection
                        }
                        assert!(
                            self.reachable(from, to),
                            "seed {}: at {} ms a frame {from} -> {to} on a live connection to a member down or cut off",
                            self.cfg.seed, self.now
                        );
                    }
                    if self.reachable(from, to) {
                        let now = self.now;
                        let node = self.nodes.get_mut(&to).expect("a node");
                        node.member.handle(now, from, frame.0);
                        self.drain(to);
                    }
                }
                Ev::Tick(id) => {
                    if self.nodes[&id].alive && !self.nodes[&id].member.is_stopped() {
                        let now = self.now;
                        self.nodes.get_mut(&id).expect("a node").member.tick(now);
                        self.drain(id);
                        self.push(now + TICK, Ev::Tick(id));
                    }
                }
                Ev::Broadcast(id) => {
                    let node = &self.nodes[&id];
                    if node.alive && !self.confirmed(id) {
                        self.drain(id);
                        self.schedule_broadcast(id);
                        continue;
                    }
                    let node = &self.nodes[&id];
                    if node.alive && !node.member.is_stopped() {
                        self.payload_no += 1;
                        let mut payload = format!("m{}:{}", id, self.payload_no).into_bytes();
                        if self.cfg.agreement {
                            let n = &self.nodes[&id];
                            payload = match self.payload_no % 3 {
                                // Instances every member races for.
                                0 => agreement::propose(self.payload_no / 9, &payload),
                                1 => agreement::transact(n.agreement.version(), &payload),
                                _ => agreement::plain(&payload),
                            };
                        }
                        let now = self.now;
                        let node = self.nodes.get_mut(&id).expect("a node");
                        let payload = Bytes::from(payload);
                        if let Ok(mid) = node.member.broadcast(now, payload.clone()) {
                            node.log.sent.push((mid, payload));
                        }
                        self.drain(id);
                        self.schedule_broadcast(id);
                    }
                }
                Ev::Fault => {
                    if self.in_faults() {
                        self.fault();
                        let t = self.now + self.rng.gen_range(1..=self.cfg.fault_every * 2);
                        self.push(t, Ev::Fault);
                    } else {
                        if self.partitioned {
                            self.heal();
                        }
                        // Every so often, as a directory's news would come.
                        self.tell_directory();
                        self.push(self.now + 100, Ev::Fault);
                    }
                }
                Ev::Restart(old) => self.restart(old),
                Ev::Reset { node, peer, down } => {
                    let n = &self.nodes[&node];
                    if n.alive && !n.member.is_stopped() {
                        let now = self.now;
                        let m = &mut self.nodes.get_mut(&node).expect("a node").member;
                        if down {
                            m.peer_down(now, peer);
                        }
                        m.link_reset(now, peer);
                        self.drain(node);
                    }
                }
            }
        }
    }

    /// See [`SimResult::stuck`]. Only crashes the schedule injected excuse a run: members
    /// the protocol stopped itself (excluded, blocked) count as up, so a protocol that
    /// stops members too eagerly is still held to liveness.
    fn stuck(&self) -> Option<String> {
        let running = self.running();
        let latest = running
            .iter()
            .filter_map(|id| self.nodes[id].member.view())
            .max_by_key(|v| v.id)?;
        let crashed = |m: &NodeId| self.nodes.get(m).is_some_and(|n| n.log.crashed);
        let up = latest.members.iter().filter(|m| !crashed(m)).count();
        (up < latest.majority()).then(|| {
            format!(
                "view {} (members {:?}) has {up} members not crashed, short of a majority",
                latest.id, latest.members
            )
        })
    }

    fn reachable(&self, from: NodeId, to: NodeId) -> bool {
        match (self.nodes.get(&from), self.nodes.get(&to)) {
            (Some(a), Some(b)) => a.alive && b.alive && a.side == b.side,
            _ => false,
        }
    }

    /// Carry out what member `id` asked for.
    fn drain(&mut self, id: NodeId) {
        self.nodes.get_mut(&id).expect("a node").member.flush();
        loop {
            let node = self.nodes.get_mut(&id).expect("a node");
            let Some(a) = node.member.poll_action() else {
                break;
            };
            match a {
                Action::Send { to, frame } => self.transmit(id, to, frame),
                Action::Deliver {
                    view,
                    id: mid,
                    payload,
                } => {
                    if self.cfg.agreement {
                        let o = node.agreement.deliver(mid.origin, &payload);
                        node.outcomes.push(o);
                    }
                    node.log.entries.push(LogEntry::Deliver {
                        view,
                        id: mid,
                        payload,
                    });
                }
                Action::Install(v) => {
                    if self.cfg.trace {
                        eprintln!("{} ms: {id} installs {} {:?}", self.now, v.id, v.members);
                    }
                    node.log.entries.push(LogEntry::View(v));
                }
                Action::Blocked(reason) => {
                    if self.cfg.trace {
                        eprintln!("{} ms: {id} blocked: {reason}", self.now);
                    }
                    if !node.member.is_stopped() {
                        // It keeps trying (a joiner not let in yet, a minority's member):
                        // logging it would excuse a member that never gets going again
                        // from the liveness check. Only a member that stopped (left out of
                        // the group's view) is excused, and replaced by a joiner.
                        continue;
                    }
                    node.log.entries.push(LogEntry::Blocked { reason });
                    if node.member.is_stopped() {
                        // Left out of the group's view: come back as a new member.
                        let t = self.now + self.rng.gen_range(10..=200);
                        self.push(t, Ev::Restart(id));
                    }
                }
                Action::Left => node.log.crashed = true,
                Action::Stalled(stall) => {
                    // Over connections every lost frame is reported to its sender: a
                    // stall toward a peer that is up, running and reachable means a
                    // path that drops frames silently (in the model or the member).
                    self.stalls += 1;
                    // A pause of either end during the silence explains it (the member's
                    // own: its clock jumped past acknowledgements it has yet to read).
                    let since = self.now.saturating_sub(stall.silent_ms);
                    let paused = |n: &Node| n.paused_until > 0 && n.paused_until >= since;
                    if !paused(&self.nodes[&id]) {
                        self.longest_stall_ms = self.longest_stall_ms.max(stall.silent_ms);
                    }
                    // (A peer that retired this member never acknowledges it: the member
                    // learns it is left behind from the peer's answer, not from the link.)
                    let peer_ok = self.nodes.get(&stall.peer).is_some_and(|p| {
                        p.alive && !paused(p) && !p.member.is_stopped() && !p.member.has_retired(id)
                    }) && !paused(&self.nodes[&id]);
                    if peer_ok && self.reachable(id, stall.peer) {
                        let what = format!(
                            "{} ms: {id}'s link to {} stalled ({} frames, {} ms) while {} was up and reachable",
                            self.now, stall.peer, stall.frames, stall.silent_ms, stall.peer
                        );
                        if self.cfg.trace {
                            eprintln!("{what}");
                        }
                        self.unexplained_stalls.push(what);
                    }
                }
                Action::StateNeeded { joiner, view } => {
                    let state = self.state_of(id, view);
                    let node = self.nodes.get_mut(&id).expect("a node");
                    node.member.send_state(joiner, view, state);
                }
                Action::StateReceived(state) => {
                    if self.cfg.agreement {
                        let a = Agreement::restore(&state).expect("the state a member sent");
                        node.base = a.version();
                        node.agreement = a;
                    }
                }
            }
        }
    }

    /// The application state a joiner gets: the sender's agreements and history (with
    /// [`SimConfig::agreement`]), else how many broadcasts it delivered.
    fn state_of(&self, id: NodeId, _view: ViewId) -> Vec<u8> {
        if self.cfg.agreement {
            return self.nodes[&id].agreement.snapshot();
        }
        let n = self.nodes[&id]
            .log
            .entries
            .iter()
            .filter(|e| matches!(e, LogEntry::Deliver { .. }))
            .count();
        (n as u64).to_le_bytes().to_vec()
    }

    fn connections(&self) -> bool {
        self.cfg.member.carrier == Carrier::Connections
    }

    /// The incarnation of the connection between `a` and `b`.
    fn epoch(&self, a: NodeId, b: NodeId) -> u64 {
        self.epochs.get(&(a.min(b), a.max(b))).copied().unwrap_or(0)
    }

    /// Over connections: the one between `a` and `b` breaks; what is in flight is lost,
    /// and both ends notice within `max_delay` (as a peer that went `down`, or only as
    /// frames to send again, when the break is a partition's, which TCP reports late).
    fn break_connection(&mut self, a: NodeId, b: NodeId, down: bool) {
        if self.cfg.trace {
            eprintln!("{} ms: connection {a} - {b} breaks", self.now);
        }
        *self.epochs.entry((a.min(b), a.max(b))).or_insert(0) += 1;
        for (node, peer) in [(a, b), (b, a)] {
            self.tell_reset(node, peer, down);
        }
    }

    /// A frame sent now arrives at this time (1 to `max_delay` ms later).
    fn arrival(&mut self) -> u64 {
        self.now + self.rng.gen_range(1..=self.cfg.max_delay.max(1))
    }

    /// Over connections: `node` notices, a little later, that its connection to `peer`
    /// broke (`down`) or could not be made.
    fn tell_reset(&mut self, node: NodeId, peer: NodeId, down: bool) {
        let t = self.arrival();
        self.push(t, Ev::Reset { node, peer, down });
    }

    /// Over connections: every connection of `node` breaks (it crashed or restarted).
    fn break_all(&mut self, node: NodeId) {
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|&o| o != node).collect();
        for o in others {
            self.break_connection(node, o, true);
        }
    }

    /// Over connections: `frame` goes in order after the others on its connection, or
    /// is lost when the connection breaks now or cannot be made (and the sender told).
    fn transmit_on_connection(&mut self, from: NodeId, to: NodeId, frame: super::link::Frame) {
        if !self.reachable(from, to) {
            self.tell_reset(from, to, false);
            return;
        }
        if self.in_faults() && self.rng.gen_bool(self.cfg.drop / 5.0) {
            self.break_connection(from, to, true);
            return;
        }
        // (No draw without silent loss: the random runs replay as before.)
        if self.cfg.silent_loss > 0.0 && self.in_faults() && self.rng.gen_bool(self.cfg.silent_loss)
        {
            return;
        }
        let t = self.arrival();
        let at = self.arrivals.entry((from, to)).or_insert(0);
        *at = (*at).max(t);
        let (t, epoch) = (*at, self.epoch(from, to));
        self.push(
            t,
            Ev::Frame {
                from,
                to,
                epoch,
                frame: FrameBox(frame),
            },
        );
    }

    fn transmit(&mut self, from: NodeId, to: NodeId, frame: super::link::Frame) {
        if self.connections() {
            return self.transmit_on_connection(from, to, frame);
        }
        let faulty = self.in_faults();
        if faulty && self.rng.gen_bool(self.cfg.drop) {
            return;
        }
        let copies = if faulty && self.rng.gen_bool(self.cfg.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let t = self.arrival();
            self.push(
                t,
                Ev::Frame {
                    from,
                    to,
                    epoch: 0,
                    frame: FrameBox(frame.clone()),
                },
            );
        }
    }

    /// The members up and going: not crashed, stopped or paused.
    fn running(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.alive && !n.member.is_stopped() && n.paused_until <= self.now)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Would the running members, with `alive` and `side` as given, still have one side
    /// holding a majority of every installed view?
    fn majority_survives(
        &self,
        alive: impl Fn(NodeId) -> bool,
        side: impl Fn(NodeId) -> u8,
    ) -> bool {
        let views: Vec<_> = self
            .nodes
            .values()
            .filter(|n| n.alive && !n.member.is_stopped())
            .filter_map(|n| n.member.view().cloned())
            .collect();
        let pending: Vec<_> = self
            .nodes
            .values()
            .filter(|n| n.alive && !n.member.is_stopped())
            .flat_map(|n| n.member.pending_views().cloned())
            .collect();
        [0u8, 1].iter().any(|&s| {
            // Does side `s` keep a majority of `v`'s members up, counting those `counts`?
            let majority_up = |v: &super::types::View, counts: &dyn Fn(&Member) -> bool| {
                let up = v
                    .members
                    .iter()
                    .filter(|&&m| {
                        alive(m)
                            && side(m) == s
                            && self.nodes.get(&m).is_some_and(|n| counts(&n.member))
                    })
                    .count();
                up >= v.majority()
            };
            // A joiner counts once it has installed the view and received the state.
            views.iter().all(|v| {
                majority_up(v, &|m| {
                    m.is_ready() && m.view().is_some_and(|mv| mv.id >= v.id)
                })
            })
            // A view proposed or accepted in a view change may be chosen and installed
            // once its commit arrives: a majority of its members that are in a view
            // already (joiners are not counted) must stay up with it, or no view could
            // follow.
            && pending.iter().all(|v| majority_up(v, &|m| m.is_ready()))
        })
    }

    fn fault(&mut self) {
        // (Without pauses, the draws of the runs before pauses were added: the seeds
        // that draw no pauses replay as they did.)
        let roll = if self.cfg.max_pause > 0 {
            self.rng.gen_range(0..12)
        } else {
            self.rng.gen_range(0..10)
        };
        let running = self.running();
        // Up for the majority the schedule keeps: not crashed, not paused.
        let up = |n: &Node| n.alive && n.paused_until <= self.now;
        match roll {
            0..=4 if self.cfg.crashes => {
                // Crash a running member, the leader more often than its share.
                let leader = running
                    .iter()
                    .copied()
                    .filter_map(|id| self.nodes[&id].member.view().map(|v| v.members[0]))
                    .max();
                let victim = match leader {
                    Some(l) if self.rng.gen_bool(0.4) && running.contains(&l) => l,
                    _ => running[self.rng.gen_range(0..running.len())],
                };
                let ok = self.majority_survives(
                    |m| m != victim && self.nodes.get(&m).is_some_and(up),
                    |m| self.nodes.get(&m).map_or(0, |n| n.side),
                );
                if ok {
                    self.nodes.get_mut(&victim).expect("a node").alive = false;
                    self.nodes.get_mut(&victim).expect("a node").log.crashed = true;
                    if self.connections() {
                        self.break_all(victim);
                    }
                    self.fault_note(format!("{} ms: crash {victim}", self.now));
                    let t = self.now + self.rng.gen_range(50..=400);
                    self.push(t, Ev::Restart(victim));
                }
            }
            5..=7 if self.cfg.partitions && !self.partitioned => {
                let sides: BTreeMap<NodeId, u8> = self
                    .nodes
                    .keys()
                    .map(|&id| (id, u8::from(self.rng.gen_bool(0.35))))
                    .collect();
                let ok = self.majority_survives(
                    |m| self.nodes.get(&m).is_some_and(up),
                    |m| sides.get(&m).copied().unwrap_or(0),
                );
                if ok && sides.values().any(|&s| s == 1) {
                    if self.connections() {
                        // The connections across the partition break.
                        for (&a, &sa) in &sides {
                            for (&b, &sb) in sides.range(a + 1..) {
                                if sa != sb {
                                    self.break_connection(a, b, false);
                                }
                            }
                        }
                    }
                    for (id, s) in sides {
                        self.nodes.get_mut(&id).expect("a node").side = s;
                    }
                    self.partitioned = true;
                    let minority: Vec<NodeId> = self
                        .nodes
                        .iter()
                        .filter(|(_, n)| n.side == 1)
                        .map(|(&id, _)| id)
                        .collect();
                    self.fault_note(format!("{} ms: partition off {minority:?}", self.now));
                }
            }
            8..=9 if self.partitioned => self.heal(),
            10..=11 if !running.is_empty() => {
                let victim = running[self.rng.gen_range(0..running.len())];
                let until = (self.now + self.rng.gen_range(50..=self.cfg.max_pause.max(50)))
                    .min(self.cfg.fault_time);
                let ok = self.majority_survives(
                    |m| m != victim && self.nodes.get(&m).is_some_and(up),
                    |m| self.nodes.get(&m).map_or(0, |n| n.side),
                );
                if ok && until > self.now {
                    let node = self.nodes.get_mut(&victim).expect("a node");
                    node.paused_until = until;
                    node.ping_due = true;
                    self.fault_note(format!("{} ms: pause {victim} until {until} ms", self.now));
                }
            }
            _ => {}
        }
    }

    /// May member `id` broadcast now? Not after a pause until its ring neighbours
    /// answered its ping, it stopped, or the failure detector's bound passed.
    fn confirmed(&mut self, id: NodeId) -> bool {
        let now = self.now;
        let bound = self.cfg.member.suspect_after;
        let node = self.nodes.get_mut(&id).expect("a node");
        if std::mem::take(&mut node.ping_due) {
            let mark = node.member.ping_neighbours(now);
            // (Empty when not in a view's normal course: a joiner, a stopped member.)
            if !mark.is_empty() {
                node.confirming = Some((mark, now + bound));
            }
        }
        let Some((mark, until)) = &node.confirming else {
            return true;
        };
        let end = if node.member.is_stopped() {
            1
        } else if node.member.heard_back_since(mark) {
            0
        } else if now >= *until {
            2
        } else {
            return false;
        };
        node.confirming = None;
        self.pings[end] += 1;
        true
    }

    fn fault_note(&mut self, what: String) {
        if self.cfg.trace {
            eprintln!("{what}");
        }
        self.faults.push(what);
    }

    fn heal(&mut self) {
        for n in self.nodes.values_mut() {
            n.side = 0;
        }
        self.partitioned = false;
        self.fault_note(format!("{} ms: heal", self.now));
        self.tell_directory();
    }

    /// Give the running processes that want it ([`Member::wants_directory`]: they gave up
    /// on the processes they know, and said so) the processes running now, as the
    /// runtime's address book does: a joiner's contacts may all have crashed while it was
    /// cut off, and a joiner that knows no live process can never get in; a minority's
    /// members, after a heal, may know no member of the group that went on without them
    /// (see [`Member::add_contacts`]).
    fn tell_directory(&mut self) {
        let running = self.running();
        for id in &running {
            let n = self.nodes.get_mut(id).expect("a node");
            if n.member.wants_directory() {
                n.member.add_contacts(running.iter().copied());
                self.drain(*id);
            }
        }
    }

    /// The process of `old` (crashed or blocked) starts again and joins under a new id.
    fn restart(&mut self, old: NodeId) {
        let id = self.next_id;
        self.next_id += 1;
        let was_alive =
            std::mem::replace(&mut self.nodes.get_mut(&old).expect("a node").alive, false);
        if was_alive && self.connections() {
            // A blocked member's process ends: its connections break.
            self.break_all(old);
        }
        let side = self.nodes[&old].side;
        let contacts: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.alive)
            .map(|(&id, _)| id)
            .collect();
        self.fault_note(format!("{} ms: {old} restarts as {id}", self.now));
        let member = Member::joiner(id, &contacts, self.cfg.member, self.now);
        self.add(id, member, side);
        self.tell_directory();
    }
}
