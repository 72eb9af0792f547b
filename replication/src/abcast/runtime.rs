//! The production driver of a [`Member`]: one glommio executor, the transport's
//! authenticated TCP (HMAC handshake over the job secret, length-prefixed frames with a
//! validated header), and the real clock.
//!
//! Frames to a peer go over a connection this member opened, or else over one the peer
//! opened (a joiner's, say): the link layer orders and deduplicates whatever arrives, so
//! two connections to one peer are harmless. Links resend only when told a connection
//! broke ([`Member::link_reset`]), so every way a frame can be dropped here reports one:
//! a lost connection (either of two to a peer), a writer that is gone, a connect that
//! failed, no address for the peer yet (reset when it connects); a connection given up
//! on one side is closed towards the other. A connection that fails (the peer was
//! killed: its kernel closes the socket) is a suspicion of that peer at once, which is
//! what makes failure detection fast; silence beyond [`Config::suspect_after`] is the
//! other way.
//!
//! Members on one node (the same kernel, network and pid namespaces) move their frames
//! through shared memory instead, a ring per direction that the sender offers over the
//! TCP connection ([`shm_link`] has the protocol); the connection stays,
//! for failure detection and wake-ups.

use super::codec;
use super::link::Frame;
use super::member::{Action, BroadcastError, Config, Member, NeighbourMark};
use super::payload::Segments;
use super::shm_link::{self, Control, RingIn, RingOut};
use super::types::{MsgId, NodeId, View, ViewId};
use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use zerorank_core::buffer::BufferPool;
use zerorank_core::frame::{Expect, FrameHeader, FrameKind, HeaderBytes};
use zerorank_transport::shm::peer_ring::{self, OfferedRing, RingReceiver};
use zerorank_transport::tcp::{self, FrameReader, FrameWriter, Listener, TcpConfig};

/// The communicator context of ring-broadcast frames (in the transport's frame header).
pub const CONTEXT: u32 = 0x00ab_ca57;

/// Largest broadcast a group built on this runtime should take, in bytes. A broadcast
/// holds its links while it goes: at 64 MiB, 2 a second from each of 3 members on
/// loopback, acknowledgements waited behind them past the links' 1 s stall bound, the
/// window was sent again and the group changed views with every member alive; at
/// 16 MiB, full load included, none. A view change carries every member's undelivered
/// broadcasts in one frame of at most [`MAX_FRAME`] bytes, and a member has at most one
/// broadcast this large undelivered at a time (its window lets one of any size go when
/// nothing else is in flight). One larger than the frame would break the connection
/// that carries it, and take its sender out of the group.
pub const MAX_BROADCAST: usize = 16 << 20;

/// The frame limit ([`TcpConfig::max_frame_payload`](zerorank_transport::tcp::TcpConfig))
/// for a group that takes broadcasts up to [`MAX_BROADCAST`].
pub const MAX_FRAME: usize = 1 << 30;

/// Largest state a joiner is sent (the application's and the agreements'): what a frame
/// of [`MAX_FRAME`] bytes carries, less room for the frame's own fields.
pub const MAX_STATE: usize = MAX_FRAME - (1 << 20);

/// Most payload bytes of frames sent to a peer in one transport frame, about (the
/// transport refuses frames above 4 MiB; a single larger broadcast goes alone). A little
/// under 1 MiB, so that a full batch with its headers fits the receiver's 1 MiB buffer
/// class rather than taking a 2 MiB one.
const BATCH_BYTES: usize = (1 << 20) - (16 << 10);

/// The payload bytes a frame carries, roughly (for batching).
fn frame_bytes(f: &Frame) -> usize {
    use super::wire::Wire;
    64 + match &f.body {
        Some(Wire::Data { data, .. }) => data.payload.len(),
        Some(Wire::Promise { log, .. }) => log.iter().map(|d| d.payload.len() + 32).sum(),
        Some(Wire::Accept { decision, .. }) | Some(Wire::Commit { decision }) => {
            decision.flush.iter().map(|d| d.payload.len() + 32).sum()
        }
        Some(Wire::State { state, .. }) => state.len(),
        _ => 0,
    }
}

/// How a member starts.
#[derive(Clone, Debug)]
pub enum Start {
    /// Found a group of these members (the same list on every founder).
    Found(Vec<NodeId>),
    /// Join a running group through these members.
    Join(Vec<NodeId>),
}

/// Everything a member process needs.
#[derive(Clone, Debug)]
pub struct Options {
    pub id: NodeId,
    pub listen: SocketAddr,
    /// Where members listen (others may connect to this one without being listed).
    pub addrs: BTreeMap<NodeId, SocketAddr>,
    pub start: Start,
    pub job: u64,
    pub secret: [u8; 32],
    pub member: Config,
    pub tcp: TcpConfig,
    /// Use shared-memory links to members on this node.
    pub shm: bool,
}

/// What the application hears from the group, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Deliver {
        view: ViewId,
        id: MsgId,
        payload: Bytes,
    },
    View(View),
    /// Not delivering, and why ([`Action::Blocked`]).
    Blocked(String),
    Left,
    StateReceived(Vec<u8>),
}

/// An entry of the application's queue: an event, or a joiner that needs the
/// application's state as it is once every event before this entry has been taken.
enum Queued {
    Event(Event),
    State { joiner: NodeId, view: ViewId },
}

/// What waits for a connection's writer.
#[derive(Default)]
struct Queue {
    frames: Vec<Frame>,
    /// Link-control messages to send (a receiver's answers to an offer).
    send: Vec<Control>,
    /// Answers heard to this writer's own offer.
    heard: Vec<Control>,
    /// The writer took what was queued and is still writing it.
    writing: bool,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.send.is_empty() && self.heard.is_empty()
    }
}

/// The sending side of one connection: frames wait in `pending` while its writer is
/// busy, and the writer takes them all at once, so that frames produced in a burst of
/// events go out in one transport frame (one system call) per peer.
struct Outgoing {
    conn: u64,
    pending: Rc<RefCell<Queue>>,
    /// Wakes the writer (one token per transition from nothing pending).
    wake: LocalSender<()>,
}

impl Outgoing {
    /// Queue with `f`; false if the writer is gone.
    fn queue(&self, f: impl FnOnce(&mut Queue)) -> bool {
        let mut p = self.pending.borrow_mut();
        let was_empty = p.is_empty();
        f(&mut p);
        !was_empty || self.wake.try_send(()).is_ok()
    }

    /// Queue `frames`; false if the writer is gone.
    fn push(&self, frames: Vec<Frame>) -> bool {
        self.queue(|q| q.frames.extend(frames))
    }
}

struct Inner {
    member: Member,
    opts: Options,
    start: Instant,
    /// Each peer's connection for sending.
    conns: HashMap<NodeId, Outgoing>,
    /// The sending sides of the other connections (a peer's second connection), kept
    /// for answering link-control messages on the connection they came by.
    extra: HashMap<u64, Outgoing>,
    /// Wakes the reader of each ring a peer offered on a connection (by connection).
    ring_wakes: HashMap<u64, LocalSender<()>>,
    /// This node's [`peer_ring::node_key`], when shared-memory links are on.
    node_key: Option<String>,
    next_conn: u64,
    /// Frames waiting for a connection being opened.
    opening: HashMap<NodeId, Vec<Frame>>,
    /// Peers whose frames were dropped for want of an address (joiners that have not
    /// connected here): the link layer sends them again once they connect.
    unaddressed: HashSet<NodeId>,
    /// Failed dials in a row, per peer (the next waits longer: see `open`).
    dial_failures: HashMap<NodeId, u32>,
    /// Peers that refused this member's handshake (another job or secret), and why:
    /// said when the member reports itself blocked.
    refused_by: BTreeMap<NodeId, String>,
    events: LocalSender<Queued>,
    state: Box<dyn FnMut() -> Vec<u8>>,
    pool: BufferPool,
    /// A pump is scheduled (broadcasts wait for it, so that a burst goes out as one
    /// batch per peer).
    pump_due: bool,
    /// Where this member listens (the real port when bound to port 0).
    local: SocketAddr,
    /// The member's tasks (listener, connections): cancelled by the timer task once the
    /// last [`Node`] handle is dropped (`stopping`), so a group that is let go closes
    /// its sockets.
    tasks: Vec<glommio::task::JoinHandle<()>>,
    /// The last handle is gone, or [`Node::close`] was called: the timer task ends the
    /// member's tasks, and itself.
    stopping: Rc<std::cell::Cell<bool>>,
    /// The listener is closed (its task ended).
    listener_closed: Rc<std::cell::Cell<bool>>,
    /// When the timer task wakes next (member clock), and how to wake it sooner: an event
    /// can bring the member's next deadline forward (a bare acknowledgement due in
    /// [`Config::ack_delay`]) while the task sleeps towards a later one.
    timer_at: u64,
    timer_wake: LocalSender<()>,
    /// A broadcaster waits for room in the window ([`Node::broadcast_when_room`]): woken
    /// once half of it is free, not at every delivery.
    room_wanted: bool,
    room_wake: LocalSender<()>,
    /// The address book serves as the directory ([`Member::wants_directory`]): when the
    /// member may consult it next (member clock).
    directory_at: u64,
}

/// Spawn one of the member's tasks (see `Inner::tasks`).
fn spawn(rc: &Rc<RefCell<Inner>>, fut: impl std::future::Future<Output = ()> + 'static) {
    let handle = glommio::spawn_local(fut).detach();
    rc.borrow_mut().tasks.push(handle);
}

/// Held by every [`Node`] handle (not by the member's own tasks): when the last handle
/// goes, the member stops. Only a flag is set here, since the last handle may be dropped
/// outside the executor, where glommio cannot cancel a task; the timer task, which
/// wakes at least every [`TIMER_MAX_MS`], does the cancelling.
struct Life(Rc<std::cell::Cell<bool>>);

impl Drop for Life {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Longest sleep of the timer task, in ms (it notices `Inner::stopping` then).
const TIMER_MAX_MS: u64 = 100;

/// How often, in ms, a member that has given up on the processes it knows (a joiner no
/// contact lets in, a member frozen in a view change no leader completes) is given every
/// member id in the address book ([`Node::add_addrs`] and [`Options::addrs`]): the
/// group may have gone on under ids it never heard of (restarted processes join under
/// new ones).
const DIRECTORY_EVERY_MS: u64 = 1000;

/// A running member. Cheap to clone (one member).
#[derive(Clone)]
pub struct Node {
    inner: Rc<RefCell<Inner>>,
    events: Rc<LocalReceiver<Queued>>,
    room: Rc<LocalReceiver<()>>,
    _life: Rc<Life>,
}

impl Node {
    /// Bind, start the member and its tasks (inside a glommio executor). `state` gives
    /// the application's state for a joiner this member's group adds. It is called when
    /// the application asks for the event after the last one the state must reflect
    /// ([`Node::next_event`], [`Node::try_event`]): an application that applies each
    /// event before it asks for the next gives the state as of the view the joiner
    /// joins in, as it must.
    pub fn start(mut opts: Options, state: Box<dyn FnMut() -> Vec<u8>>) -> std::io::Result<Node> {
        // Frames left unacknowledged in the kernel (a peer cut off by a partition) break
        // their connection after twice the failure detector's bound, at least a second
        // (a suspicion by then anyway), so that a new connection carries this member's
        // frames as soon as the network heals; the old one would wait for TCP's
        // retransmission timer, backed off to seconds or minutes by then. A peer that
        // stops reading that long is cut too (its window stays closed): it runs its
        // heartbeats on the same thread, so it was suspected at `suspect_after` already.
        let bound = Duration::from_millis(opts.member.suspect_after.saturating_mul(2).max(1000));
        opts.tcp.user_timeout.get_or_insert(bound);
        let listener = Listener::bind(opts.listen)?;
        let local = listener.local_addr();
        let (tx, rx) = local_channel::new_unbounded();
        let member = match &opts.start {
            Start::Found(ms) => Member::founder(opts.id, ms, opts.member, 0),
            Start::Join(cs) => Member::joiner(opts.id, cs, opts.member, 0),
        };
        let stopping = Rc::new(std::cell::Cell::new(false));
        let node_key = opts.shm.then(peer_ring::node_key);
        let (timer_wake, timer_woken) = local_channel::new_bounded(1);
        let (room_wake, room_woken) = local_channel::new_bounded(1);
        let inner = Rc::new(RefCell::new(Inner {
            member,
            opts,
            start: Instant::now(),
            conns: HashMap::new(),
            extra: HashMap::new(),
            ring_wakes: HashMap::new(),
            node_key,
            next_conn: 0,
            opening: HashMap::new(),
            unaddressed: HashSet::new(),
            dial_failures: HashMap::new(),
            refused_by: BTreeMap::new(),
            events: tx,
            state,
            pool: BufferPool::new(),
            pump_due: false,
            local,
            tasks: Vec::new(),
            stopping: stopping.clone(),
            listener_closed: Rc::new(std::cell::Cell::new(false)),
            timer_at: 0,
            directory_at: 0,
            timer_wake,
            room_wanted: false,
            room_wake,
        }));
        let node = Node {
            inner,
            events: Rc::new(rx),
            room: Rc::new(room_woken),
            _life: Rc::new(Life(stopping)),
        };
        spawn(&node.inner, accept_loop(node.inner.clone(), listener));
        // (Not in `tasks`: it ends them and then itself.)
        glommio::spawn_local(timer_loop(node.inner.clone(), timer_woken)).detach();
        pump(&node.inner);
        Ok(node)
    }

    /// Broadcast `payload` (refused under back-pressure: wait for deliveries and retry).
    /// It goes out when the caller next yields, with whatever else was broadcast by then.
    pub fn broadcast(&self, payload: impl Into<Bytes>) -> Result<MsgId, BroadcastError> {
        let (r, schedule) = {
            let mut i = self.inner.borrow_mut();
            let now = i.now();
            let r = i.member.broadcast(now, payload.into());
            (r, !std::mem::replace(&mut i.pump_due, true))
        };
        if schedule {
            let rc = self.inner.clone();
            glommio::spawn_local(async move {
                rc.borrow_mut().pump_due = false;
                pump(&rc);
            })
            .detach();
        }
        r
    }

    /// Broadcast `payload`, waiting while the window is full (back-pressure without
    /// polling: the wait ends once half the window is free again, so a sender at full
    /// load wakes a few times per window, not at every delivery). Fails only if the
    /// member stopped.
    pub async fn broadcast_when_room(
        &self,
        payload: impl Into<Bytes>,
    ) -> Result<MsgId, BroadcastError> {
        let payload = payload.into();
        loop {
            match self.broadcast(payload.clone()) {
                Err(BroadcastError::Full(_)) => {
                    self.inner.borrow_mut().room_wanted = true;
                    // The channel lives as long as the node.
                    let _ = self.room.recv().await;
                }
                r => return r,
            }
        }
    }

    /// Stop this member now (every handle of it stops working) and wait, at most a
    /// second, until its listener is closed: a process that goes on as another member
    /// on the same address starts that one after this. (Listeners bind with
    /// `SO_REUSEPORT`: a new one binds beside an old one still open, which would take
    /// some of its connections and refuse them.)
    pub async fn close(self) {
        let closed = {
            let i = self.inner.borrow();
            i.stopping.set(true);
            // A full channel already holds a wake-up.
            let _ = i.timer_wake.try_send(());
            i.listener_closed.clone()
        };
        drop(self);
        // The timer task cancels the tasks at once; glommio drops a cancelled task's
        // future, and so its listener, when it next schedules it.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !closed.get() && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        if !closed.get() {
            tracing::warn!("a closed member's listener is still open after 1 s");
        }
    }

    /// Wait, at most `limit`, until every frame the member has handed to a connection
    /// is written (to the socket, or to the shared-memory ring), or its connection is
    /// gone. A member that left calls this before its process may end: the last thing
    /// a leaving leader does is to send the new view to the others, which would wait
    /// for it in vain (and, when the others left as well, block for want of a majority)
    /// if the process ended with that still queued here. True if all is written.
    pub async fn written(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let unwritten = {
                let i = self.inner.borrow();
                !i.opening.is_empty()
                    // (A connection lost is out of these, its frames with it.)
                    || i.conns.values().chain(i.extra.values()).any(|o| {
                        let q = o.pending.borrow();
                        !q.is_empty() || q.writing
                    })
            };
            if !unwritten {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Leave the group gracefully ([`Event::Left`] follows).
    pub fn leave(&self) {
        {
            let mut i = self.inner.borrow_mut();
            let now = i.now();
            i.member.leave(now);
        }
        pump(&self.inner);
    }

    /// The next event (`None` never: the member runs until the process ends).
    pub async fn next_event(&self) -> Option<Event> {
        loop {
            if let Some(e) = self.take(self.events.recv().await?) {
                return Some(e);
            }
        }
    }

    /// An entry of the queue: the event, or `None` once a joiner has been given the
    /// application's state as it is now.
    fn take(&self, q: Queued) -> Option<Event> {
        match q {
            Queued::Event(e) => Some(e),
            Queued::State { joiner, view } => {
                {
                    let mut i = self.inner.borrow_mut();
                    let s = (i.state)();
                    if s.len() > MAX_STATE {
                        // Past the frame limit it would break every connection it went
                        // on (and past 2 GiB rkyv's 32-bit offsets panic): the joiner is
                        // told nothing and stops for want of the state, saying so.
                        tracing::error!(
                            member = i.opts.id,
                            joiner,
                            bytes = s.len(),
                            "the application's state is {} bytes, more than the {MAX_STATE} a joiner can be sent: member {joiner} is not sent it",
                            s.len()
                        );
                    } else {
                        i.member.send_state(joiner, view, s);
                    }
                }
                pump(&self.inner);
                None
            }
        }
    }

    /// Where this member listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.borrow().local
    }

    /// Learn where members listen (for members started before their addresses were
    /// known: frames to an unknown address wait in the link layer until then).
    pub fn add_addrs(&self, addrs: impl IntoIterator<Item = (NodeId, SocketAddr)>) {
        {
            let mut i = self.inner.borrow_mut();
            i.opts.addrs.extend(addrs);
            // Frames dropped for want of an address go again now.
            let known: Vec<NodeId> = i
                .unaddressed
                .iter()
                .copied()
                .filter(|p| i.opts.addrs.contains_key(p))
                .collect();
            for p in known {
                i.unaddressed.remove(&p);
                i.link_reset(p);
            }
        }
        pump(&self.inner);
    }

    /// The next event if one is waiting, without waiting.
    pub async fn try_event(&self) -> Option<Event> {
        loop {
            let q = futures_lite::future::poll_once(self.events.recv())
                .await
                .flatten()?;
            if let Some(e) = self.take(q) {
                return Some(e);
            }
        }
    }

    /// The installed view.
    pub fn view(&self) -> Option<View> {
        self.inner.borrow().member.view().cloned()
    }

    pub fn is_stopped(&self) -> bool {
        self.inner.borrow().member.is_stopped()
    }

    /// See [`Member::ping_neighbours`]. Call inside the executor (the pings go on
    /// its tasks).
    pub fn ping_neighbours(&self) -> NeighbourMark {
        let mark = {
            let mut i = self.inner.borrow_mut();
            let now = i.now();
            i.member.ping_neighbours(now)
        };
        pump(&self.inner);
        mark
    }

    /// See [`Member::heard_back_since`].
    pub fn heard_back_since(&self, mark: &NeighbourMark) -> bool {
        self.inner.borrow().member.heard_back_since(mark)
    }
}

impl Inner {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Give a member that wants it every id of the address book, at most every
    /// [`DIRECTORY_EVERY_MS`] (see [`Member::wants_directory`]).
    fn consult_directory(&mut self, now: u64) {
        if now < self.directory_at || !self.member.wants_directory() {
            return;
        }
        self.directory_at = now + DIRECTORY_EVERY_MS;
        // Not the ids at this member's own address: this process under another id (one
        // it may go on under later), which would only refuse itself.
        let own = [self.opts.listen, self.local];
        let ids: Vec<NodeId> = (self.opts.addrs.iter())
            .filter(|(_, a)| !own.contains(a))
            .map(|(&id, _)| id)
            .collect();
        tracing::debug!(
            member = self.opts.id,
            "blocked: asking every member of the address book {ids:?}"
        );
        self.member.add_contacts(ids);
    }

    /// Frames to `peer` may have been dropped here: the member sends them again.
    fn link_reset(&mut self, peer: NodeId) {
        let now = self.now();
        self.member.link_reset(now, peer);
    }
}

/// Carry out the member's actions. The frames for one peer go out as one batch.
fn pump(rc: &Rc<RefCell<Inner>>) {
    let mut opens = Vec::new();
    {
        let mut i = rc.borrow_mut();
        let mut out: Vec<(NodeId, Vec<Frame>)> = Vec::new();
        i.member.flush();
        while let Some(a) = i.member.poll_action() {
            let event = match a {
                Action::Send { to, frame } => {
                    match out.iter_mut().find(|(p, _)| *p == to) {
                        Some((_, fs)) => fs.push(frame),
                        None => out.push((to, vec![frame])),
                    }
                    None
                }
                Action::Deliver { view, id, payload } => Some(Event::Deliver { view, id, payload }),
                Action::Install(v) => Some(Event::View(v)),
                Action::Blocked(mut why) => {
                    if !i.refused_by.is_empty() {
                        let refusals: Vec<String> = i
                            .refused_by
                            .iter()
                            .map(|(p, e)| format!("member {p}: {e}"))
                            .collect();
                        why.push_str(&format!(" (handshakes refused: {})", refusals.join("; ")));
                    }
                    tracing::warn!(member = i.opts.id, "ring broadcast blocked: {why}");
                    Some(Event::Blocked(why))
                }
                Action::Left => Some(Event::Left),
                Action::StateNeeded { joiner, view } => {
                    // Taken once the application has taken the deliveries before it.
                    let _ = i.events.try_send(Queued::State { joiner, view });
                    None
                }
                Action::StateReceived(s) => Some(Event::StateReceived(s)),
                Action::Stalled(s) => {
                    if i.unaddressed.contains(&s.peer) || i.opening.contains_key(&s.peer) {
                        // Dropped here knowingly: no address for the peer yet (it joined
                        // and has not connected), or a connection still being opened.
                        tracing::debug!(
                            member = i.opts.id,
                            peer = s.peer,
                            "link to member {}: {} frames sent again (no address for it, or still connecting)",
                            s.peer,
                            s.frames
                        );
                    } else {
                        tracing::warn!(
                            member = i.opts.id,
                            peer = s.peer,
                            "link to member {}: {} frames unacknowledged, {} ms since the last acknowledgement or resend, although no connection broke; sending them again (the network to it is cut, a frame was lost unreported, or the peer is not reading)",
                            s.peer,
                            s.frames,
                            s.silent_ms
                        );
                    }
                    None
                }
            };
            if let Some(e) = event {
                // The receiver lives as long as the node.
                let _ = i.events.try_send(Queued::Event(e));
            }
        }
        for (to, frames) in out {
            if let Some(open) = send(&mut i, to, frames) {
                opens.push(open);
            }
        }
        if i.room_wanted {
            let (n, bytes) = i.member.in_flight();
            let cfg = i.opts.member;
            if (n <= cfg.window / 2 && bytes <= cfg.window_bytes / 2) || i.member.is_stopped() {
                i.room_wanted = false;
                // A full channel already holds a wake-up.
                let _ = i.room_wake.try_send(());
            }
        }
        let next = i.member.poll_timeout();
        if next < i.timer_at {
            i.timer_at = next;
            // A full channel already holds a wake-up.
            let _ = i.timer_wake.try_send(());
        }
    }
    for (peer, addr) in opens {
        spawn(rc, open(rc.clone(), peer, addr));
    }
}

/// Queue `frames` for `to`; a connection to open, if one is needed.
fn send(i: &mut Inner, to: NodeId, frames: Vec<Frame>) -> Option<(NodeId, SocketAddr)> {
    if let Some(o) = i.conns.get(&to) {
        if !o.push(frames) {
            // Its writer ended (the connection failed): the link layer sends again.
            i.conns.remove(&to);
            i.link_reset(to);
        }
        return None;
    }
    if let Some(q) = i.opening.get_mut(&to) {
        q.extend(frames);
        return None;
    }
    // No address (a joiner that has not connected yet): the link layer sends it again
    // when it connects (`attach`).
    let Some(&addr) = i.opts.addrs.get(&to) else {
        i.unaddressed.insert(to);
        return None;
    };
    i.opening.insert(to, frames);
    Some((to, addr))
}

/// `frames` cut into batches of at most about [`BATCH_BYTES`], encoded.
fn batches(frames: Vec<Frame>) -> Vec<Segments> {
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0;
    for f in frames {
        let size = frame_bytes(&f);
        if !batch.is_empty() && bytes + size > BATCH_BYTES {
            out.push(codec::encode_batch(&batch));
            batch.clear();
            bytes = 0;
        }
        bytes += size;
        batch.push(f);
    }
    if !batch.is_empty() {
        out.push(codec::encode_batch(&batch));
    }
    out
}

async fn open(rc: Rc<RefCell<Inner>>, peer: NodeId, addr: SocketAddr) {
    let (job, id, secret, cfg) = {
        let i = rc.borrow();
        let mut cfg = i.opts.tcp.clone();
        // A member that is down is noticed by the failure detector; do not hang here.
        cfg.connect_timeout = cfg.connect_timeout.min(Duration::from_secs(1));
        (i.opts.job, i.opts.id, i.opts.secret, cfg)
    };
    // After failures, wait before trying again (doubling, up to a second): a peer
    // that refuses this member (another job secret) or is gone would otherwise be
    // dialled, and the failure logged on both sides, at every retransmission.
    let failures = rc.borrow().dial_failures.get(&peer).copied().unwrap_or(0);
    if failures > 0 {
        let backoff = DIAL_BACKOFF_FIRST
            .saturating_mul(1 << failures.min(16))
            .min(DIAL_BACKOFF_MAX);
        glommio::timer::sleep(backoff).await;
    }
    match tcp::connect(addr, job, id as u32, peer as u32, &secret, &cfg).await {
        Ok(conn) => {
            let (reader, writer) = conn.into_split();
            let queued = {
                let mut i = rc.borrow_mut();
                i.dial_failures.remove(&peer);
                i.refused_by.remove(&peer);
                i.opening.remove(&peer).unwrap_or_default()
            };
            attach(&rc, peer, reader, writer, queued);
        }
        Err(e) => {
            let mut i = rc.borrow_mut();
            *i.dial_failures.entry(peer).or_insert(0) += 1;
            if matches!(
                e,
                tcp::TcpError::WrongSecret
                    | tcp::TcpError::WrongJob { .. }
                    | tcp::TcpError::Refused { .. }
            ) {
                i.refused_by.insert(peer, e.to_string());
            }
            if i.member.view().is_some_and(|v| v.contains(peer)) {
                tracing::info!(member = id, peer, %addr, error = %e, "could not connect to a member");
            } else {
                // A contact asked to let this process in, or a directory's id probed
                // (every second or round while blocked): not news each time.
                tracing::debug!(member = id, peer, %addr, error = %e, "could not connect to a process outside the view");
            }
            i.opening.remove(&peer);
            // The frames queued for it are gone: the member sends them again (after a
            // retransmission interval if they went recently).
            i.link_reset(peer);
            drop(i);
            pump(&rc);
        }
    }
}

/// The first wait before dialling a peer again after a failed attempt (it doubles with
/// every further failure).
const DIAL_BACKOFF_FIRST: Duration = Duration::from_millis(20);
/// The longest wait before dialling a peer again.
const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Run a connection to `peer`: a reader task, and a writer task fed by a channel that
/// becomes `peer`'s outgoing queue unless it has one already (then it only answers
/// link-control messages). The writer of `peer`'s outgoing queue offers a
/// shared-memory ring when those are on.
fn attach(
    rc: &Rc<RefCell<Inner>>,
    peer: NodeId,
    reader: FrameReader,
    writer: FrameWriter,
    queued: Vec<Frame>,
) {
    let (tx, rx) = local_channel::new_unbounded();
    let pending = Rc::new(RefCell::new(Queue::default()));
    let (conn, offer, reset) = {
        let mut i = rc.borrow_mut();
        i.next_conn += 1;
        let c = i.next_conn;
        let o = Outgoing {
            conn: c,
            pending: pending.clone(),
            wake: tx,
        };
        if !queued.is_empty() {
            o.push(queued);
        }
        let chosen = !i.conns.contains_key(&peer);
        let mut reset = false;
        if chosen {
            i.conns.insert(peer, o);
            if i.unaddressed.remove(&peer) {
                i.link_reset(peer);
                reset = true;
            }
        } else {
            i.extra.insert(c, o);
        }
        (c, chosen && i.node_key.is_some(), reset)
    };
    spawn(rc, read_loop(rc.clone(), peer, conn, reader));
    spawn(
        rc,
        write_loop(rc.clone(), peer, conn, writer, rx, pending, offer),
    );
    if reset {
        pump(rc);
    }
}

/// The connection `conn` to `peer` failed: forget it and tell the member.
fn lost(rc: &Rc<RefCell<Inner>>, peer: NodeId, conn: u64, why: &str) {
    {
        let mut i = rc.borrow_mut();
        if i.conns.get(&peer).is_some_and(|o| o.conn == conn) {
            i.conns.remove(&peer);
        }
        i.extra.remove(&conn);
        // The ring's reader ends once it has read what is there.
        i.ring_wakes.remove(&conn);
        tracing::info!(member = i.opts.id, peer, "connection lost: {why}");
        let now = i.now();
        i.member.peer_down(now, peer);
        // Frames may have gone by it (the peer's second connection carries what was
        // queued while this member's own was being opened): what it had not delivered is
        // gone with it, so send again everything not acknowledged.
        i.link_reset(peer);
    }
    pump(rc);
}

async fn read_loop(rc: Rc<RefCell<Inner>>, peer: NodeId, conn: u64, mut reader: FrameReader) {
    let (expect, pool) = {
        let i = rc.borrow();
        (
            Expect {
                job: i.opts.job,
                rank: i.opts.id as u32,
                size: u32::MAX,
            },
            i.pool.clone(),
        )
    };
    loop {
        let buf = match reader.next_frame(&pool, &expect).await {
            Ok(b) => b,
            Err(e) => return lost(&rc, peer, conn, &e.to_string()),
        };
        let comm = zerorank_core::frame::access(buf.as_slice())
            .map(|h| h.comm.to_native())
            .unwrap_or_default();
        if comm == shm_link::CONTROL_CONTEXT {
            if let Err(e) = control(&rc, peer, conn, &buf) {
                tracing::warn!(peer, error = %e, "bad link-control frame; closing the connection");
                return lost(&rc, peer, conn, &e);
            }
            continue;
        }
        // The broadcasts' payloads are delivered from this buffer: it goes back to the
        // pool when the last of them is dropped.
        let batch = Bytes::from_owner(buf.into_shared()).slice(zerorank_core::frame::HEADER_LEN..);
        if let Err(e) = receive(&rc, peer, batch) {
            // An authenticated peer sent bytes that are not a frame: drop the
            // connection (the link layer resends over the next one).
            tracing::warn!(peer, error = %e, "bad ring-broadcast frame; closing the connection");
            return lost(&rc, peer, conn, &e.to_string());
        }
    }
}

/// Hand a batch of frames from `peer` to the member and carry out what follows.
fn receive(rc: &Rc<RefCell<Inner>>, peer: NodeId, batch: Bytes) -> Result<(), codec::DecodeError> {
    let frames = codec::decode_batch(batch)?;
    {
        let mut i = rc.borrow_mut();
        let now = i.now();
        for frame in frames {
            i.member.handle(now, peer, frame);
        }
    }
    pump(rc);
    Ok(())
}

/// A link-control frame from `peer` on connection `conn`.
fn control(
    rc: &Rc<RefCell<Inner>>,
    peer: NodeId,
    conn: u64,
    buf: &zerorank_core::buffer::RecvBuf,
) -> Result<(), String> {
    let bytes = buf.as_slice();
    let h = zerorank_core::frame::access(bytes).map_err(|e| e.to_string())?;
    let payload = &bytes[zerorank_core::frame::HEADER_LEN..];
    let msg = Control::decode(h, payload)?;
    let mut i = rc.borrow_mut();
    let me = i.opts.id;
    match msg {
        Control::Wake => {
            if let Some(w) = i.ring_wakes.get(&conn) {
                // A full channel already holds a wake-up.
                let _ = w.try_send(());
            }
        }
        Control::Accept { .. } | Control::Refuse { .. } => {
            // For this connection's writer, which made the offer.
            if let Some(o) = outgoing(&i, conn) {
                o.queue(|q| q.heard.push(msg));
            }
        }
        Control::Offer { offer, node } => {
            let answer = match &i.node_key {
                None => Err("shared-memory links are off here".to_string()),
                Some(k) if *k != node => Err("another node".to_string()),
                Some(_) if i.ring_wakes.contains_key(&conn) => {
                    Err("a second offer on one connection".to_string())
                }
                Some(_) => RingReceiver::open(&offer).map_err(|e| e.to_string()),
            };
            let (reply, reader) = match answer {
                Ok(rx) => {
                    tracing::info!(
                        member = me,
                        peer,
                        "receiving from member {peer} through shared memory"
                    );
                    let (tx, wake) = local_channel::new_bounded(1);
                    i.ring_wakes.insert(conn, tx);
                    let ring = RingIn::new(rx, i.pool.clone(), i.opts.tcp.max_frame_payload);
                    (Control::Accept { nonce: offer.nonce }, Some((ring, wake)))
                }
                Err(why) => {
                    tracing::info!(
                        member = me,
                        peer,
                        "not sharing memory with member {peer}: {why}"
                    );
                    (Control::Refuse { nonce: offer.nonce }, None)
                }
            };
            if let Some(o) = outgoing(&i, conn) {
                o.queue(|q| q.send.push(reply));
            }
            drop(i);
            if let Some((ring, wake)) = reader {
                spawn(rc, ring_read_loop(rc.clone(), peer, conn, ring, wake));
            }
        }
    }
    Ok(())
}

/// The sending side of connection `conn`.
fn outgoing(i: &Inner, conn: u64) -> Option<&Outgoing> {
    i.extra
        .get(&conn)
        .or_else(|| i.conns.values().find(|o| o.conn == conn))
}

/// Read the batches `peer` writes into the ring it offered on `conn`, sleeping on an
/// empty ring until a [`Control::Wake`] (or until the connection is gone).
async fn ring_read_loop(
    rc: Rc<RefCell<Inner>>,
    peer: NodeId,
    conn: u64,
    mut ring: RingIn,
    wake: LocalReceiver<()>,
) {
    loop {
        let mut n = 0;
        loop {
            match ring.next_batch() {
                Ok(Some(batch)) => {
                    if let Err(e) = receive(&rc, peer, batch) {
                        tracing::warn!(peer, error = %e, "bad ring-broadcast frame in shared memory; closing the link");
                        return lost(&rc, peer, conn, &e.to_string());
                    }
                    n += 1;
                    if n % 16 == 0 {
                        // Let the TCP readers and the writers run.
                        glommio::yield_if_needed().await;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(peer, error = %e, "shared-memory link broken; closing the link");
                    return lost(&rc, peer, conn, &e);
                }
            }
        }
        if ring.sleep_ready() && wake.recv().await.is_none() {
            return;
        }
    }
}

/// Send the link-control message `c` to `peer` on `writer`.
async fn send_control(
    writer: &mut FrameWriter,
    (job, id, peer): (u64, NodeId, NodeId),
    c: &Control,
) -> Result<(), tcp::TcpError> {
    let (hb, payload) = c.encode(job, id as u32, peer as u32);
    writer.send_frame_parts(&hb, &[&payload]).await
}

/// Where a writer sends its batches.
enum Path {
    Tcp,
    /// A ring offered, waiting for the answer (batches go by TCP meanwhile).
    Offered(OfferedRing),
    Ring(RingOut),
}

/// Longest pause of a writer waiting for room in a full ring.
const RING_FULL_WAIT_MAX: Duration = Duration::from_millis(1);

async fn write_loop(
    rc: Rc<RefCell<Inner>>,
    peer: NodeId,
    conn: u64,
    mut writer: FrameWriter,
    wake: LocalReceiver<()>,
    pending: Rc<RefCell<Queue>>,
    offer: bool,
) {
    let (job, id, node_key) = {
        let i = rc.borrow();
        (i.opts.job, i.opts.id, i.node_key.clone())
    };
    let link = (job, id, peer);
    let mut path = Path::Tcp;
    if let (true, Some(node)) = (offer, node_key) {
        match OfferedRing::create(shm_link::RING_SLOTS, shm_link::RING_SLOT_SIZE) {
            Ok(ring) => {
                let c = Control::Offer {
                    offer: ring.offer(),
                    node,
                };
                if let Err(e) = send_control(&mut writer, link, &c).await {
                    return lost(&rc, peer, conn, &e.to_string());
                }
                path = Path::Offered(ring);
            }
            Err(e) => {
                tracing::warn!(member = id, peer, error = %e, "no shared-memory ring; using TCP")
            }
        }
    }
    while wake.recv().await.is_some() {
        // Everything queued since the last write.
        let q = {
            let mut p = pending.borrow_mut();
            p.writing = true;
            Queue {
                frames: std::mem::take(&mut p.frames),
                send: std::mem::take(&mut p.send),
                heard: std::mem::take(&mut p.heard),
                writing: false,
            }
        };
        // The answer to this writer's offer (an answer to no offer of its is ignored).
        for heard in q.heard {
            path = match (heard, path) {
                (Control::Accept { nonce }, Path::Offered(r)) if nonce == r.offer().nonce => {
                    tracing::info!(
                        member = id,
                        peer,
                        "sending to member {peer} through shared memory"
                    );
                    Path::Ring(RingOut::new(r.into_sender()))
                }
                (Control::Refuse { nonce }, Path::Offered(r)) if nonce == r.offer().nonce => {
                    Path::Tcp
                }
                (_, p) => p,
            };
        }
        for c in &q.send {
            if let Err(e) = send_control(&mut writer, link, c).await {
                return lost(&rc, peer, conn, &e.to_string());
            }
        }
        for bytes in batches(q.frames) {
            match &path {
                Path::Ring(out) if bytes.len() <= shm_link::MAX_BATCH => {
                    let parts = bytes.parts();
                    let mut off = 0;
                    let mut pause = Duration::from_micros(20);
                    loop {
                        if out.push(&parts, bytes.len(), &mut off) {
                            if let Err(e) = send_control(&mut writer, link, &Control::Wake).await {
                                return lost(&rc, peer, conn, &e.to_string());
                            }
                        }
                        if off == bytes.len() {
                            break;
                        }
                        // Full: the reader is behind (back-pressure); look again shortly,
                        // unless the connection is gone (a reader that died never drains).
                        glommio::timer::sleep(pause).await;
                        if outgoing(&rc.borrow(), conn).is_none() {
                            let _ = writer.close().await;
                            return;
                        }
                        pause = (pause * 2).min(RING_FULL_WAIT_MAX);
                    }
                    continue;
                }
                _ => {}
            }
            let h = FrameHeader {
                job,
                comm: CONTEXT,
                src: id as u32,
                dst: peer as u32,
                len: bytes.len() as u64,
                kind: FrameKind::Eager,
                ..FrameHeader::default()
            };
            let mut hb = HeaderBytes::default();
            h.encode(&mut hb);
            if let Err(e) = writer.send_frame_parts(&hb, &bytes.parts()).await {
                return lost(&rc, peer, conn, &e.to_string());
            }
        }
        pending.borrow_mut().writing = false;
    }
    // The connection was given up here (`lost`: a bad frame or a broken ring on it, or
    // its reader failed): say so to the peer, whose reader may be blocked on it and
    // whose writer may wait on a ring this member no longer reads, so that it notices
    // and sends its unacknowledged frames again over a new connection.
    let _ = writer.close().await;
}

/// A member's listener, which says when it is closed ([`Node::close`] waits for that).
struct OwnedListener {
    listener: Option<Listener>,
    closed: Rc<std::cell::Cell<bool>>,
}

impl Drop for OwnedListener {
    fn drop(&mut self) {
        drop(self.listener.take());
        self.closed.set(true);
    }
}

async fn accept_loop(rc: Rc<RefCell<Inner>>, listener: Listener) {
    let owned = OwnedListener {
        listener: Some(listener),
        closed: rc.borrow().listener_closed.clone(),
    };
    let listener = owned.listener.as_ref().expect("open until dropped");
    // Handshakes under way, each on a task of its own: a connection that says nothing
    // (or too little) holds up no other for its handshake timeout.
    let handshaking = Rc::new(std::cell::Cell::new(0usize));
    // Refusals for want of room, counted and said at most once a second (a peer that
    // reconnects at once when refused made 243,091 warnings in 13 s).
    let (mut refused, mut said_at) = (0u64, None::<Instant>);
    loop {
        let incoming = match listener.accept_stream().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: not a loop that spins.
                tracing::warn!(member = rc.borrow().opts.id, error = %e, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if handshaking.get() >= MAX_HANDSHAKES {
            refused += 1;
            if said_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                tracing::warn!(
                    member = rc.borrow().opts.id,
                    peer = %incoming.peer_addr(),
                    "refused {refused} incoming connection(s) since the last such warning: {MAX_HANDSHAKES} others are still in their handshake"
                );
                (refused, said_at) = (0, Some(Instant::now()));
            }
            continue;
        }
        let (job, id, secret, cfg) = {
            let i = rc.borrow();
            (i.opts.job, i.opts.id, i.opts.secret, i.opts.tcp.clone())
        };
        handshaking.set(handshaking.get() + 1);
        let (rc, handshaking) = (rc.clone(), handshaking.clone());
        // Detached: it ends within the handshake timeout, and a connection it brings to
        // a member that has stopped meanwhile is dropped.
        glommio::spawn_local(async move {
            // A bad peer (garbage, a wrong secret) is refused and logged by the
            // transport.
            let r = incoming
                .authenticate(job, id as u32, u32::MAX, &secret, &cfg)
                .await;
            handshaking.set(handshaking.get() - 1);
            if let Ok((peer, conn)) = r {
                if !rc.borrow().stopping.get() {
                    let (reader, writer) = conn.into_split();
                    attach(&rc, NodeId::from(peer), reader, writer, Vec::new());
                }
            }
        })
        .detach();
    }
}

/// Most incoming connections in their handshake at once; more are refused (and logged).
const MAX_HANDSHAKES: usize = 64;

async fn timer_loop(rc: Rc<RefCell<Inner>>, woken: LocalReceiver<()>) {
    loop {
        let wait = {
            let mut i = rc.borrow_mut();
            let now = i.now();
            let wait = i
                .member
                .poll_timeout()
                .saturating_sub(now)
                .clamp(1, TIMER_MAX_MS);
            i.timer_at = now + wait;
            Duration::from_millis(wait)
        };
        // Until then, or until `pump` brings the deadline forward.
        futures_lite::future::or(glommio::timer::sleep(wait), async {
            let _ = woken.recv().await;
        })
        .await;
        let tasks = {
            let mut i = rc.borrow_mut();
            if i.stopping.get() {
                std::mem::take(&mut i.tasks)
            } else {
                let now = i.now();
                i.member.tick(now);
                i.consult_directory(now);
                Vec::new()
            }
        };
        if rc.borrow().stopping.get() {
            for t in tasks {
                t.cancel();
            }
            return;
        }
        pump(&rc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `test` on a glommio executor of its own (unpinned).
    fn on_executor<T>(test: impl std::future::Future<Output = T>) -> T {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .make()
            .expect("executor")
            .run(test)
    }

    /// Member `id` of job `job` on loopback, over TCP only, no addresses known yet.
    fn loopback(id: NodeId, start: Start, job: u64) -> Options {
        Options {
            id,
            listen: "127.0.0.1:0".parse().unwrap(),
            addrs: BTreeMap::new(),
            start,
            job,
            secret: [job as u8; 32],
            member: Config::default(),
            tcp: TcpConfig::default(),
            shm: false,
        }
    }

    /// Member 1 of a group founded by members 1 and 2, on loopback (job 7).
    fn founder_of_two() -> Options {
        Options {
            shm: true,
            ..loopback(1, Start::Found(vec![1, 2]), 7)
        }
    }

    /// A node let go closes its listener (its tasks are cancelled), so a freed group
    /// leaves no socket or task behind.
    #[test]
    fn dropping_the_last_handle_stops_the_member() {
        on_executor(async {
            let node = Node::start(founder_of_two(), Box::new(Vec::new)).expect("start");
            let addr = node.local_addr();
            glommio::timer::sleep(Duration::from_millis(20)).await;
            assert!(
                std::net::TcpStream::connect(addr).is_ok(),
                "a running member accepts connections"
            );
            let clone = node.clone();
            drop(node);
            glommio::timer::sleep(Duration::from_millis(20)).await;
            assert!(
                std::net::TcpStream::connect(addr).is_ok(),
                "a handle is left: still running"
            );
            drop(clone);
            // Let the executor drop the cancelled tasks (bounded: 2 s).
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                glommio::timer::sleep(Duration::from_millis(10)).await;
                if std::net::TcpStream::connect(addr).is_err() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the listener of a dropped member still accepts after 2 s"
                );
            }
        });
    }

    /// `Node::close` returns once the member's port is closed, with another handle of it
    /// still held (a process goes on as another member on the same address after it).
    #[test]
    fn close_returns_once_the_port_is_closed() {
        on_executor(async {
            let node = Node::start(founder_of_two(), Box::new(Vec::new)).expect("start");
            let addr = node.local_addr();
            glommio::timer::sleep(Duration::from_millis(20)).await;
            assert!(
                std::net::TcpStream::connect(addr).is_ok(),
                "running: it accepts"
            );
            let other = node.clone();
            node.close().await;
            assert!(
                std::net::TcpStream::connect(addr).is_err(),
                "closed: nothing listens on its port"
            );
            drop(other);
        });
    }

    /// `n`'s next event, or `None` if none comes within `left`.
    async fn next_event_within(n: &Node, left: Duration) -> Option<Event> {
        futures_lite::future::or(n.next_event(), async {
            glommio::timer::sleep(left).await;
            None
        })
        .await
    }

    /// Take and drop `n`'s events until the task is dropped.
    fn drain(n: &Node) -> glommio::task::JoinHandle<()> {
        let n = n.clone();
        glommio::spawn_local(async move { while n.next_event().await.is_some() {} }).detach()
    }

    /// A broadcaster at a full window waits (no polling) and goes on as deliveries free
    /// it; members that learn each other's addresses only after they start
    /// ([`Node::add_addrs`]) send what they dropped for want of one.
    #[test]
    fn broadcast_when_room_waits_for_the_window_and_everything_arrives() {
        on_executor(async {
            let start = |id: NodeId| {
                let opts = Options {
                    member: Config {
                        window: 4,
                        ..Config::default()
                    },
                    ..loopback(id, Start::Found(vec![1, 2]), 9)
                };
                Node::start(opts, Box::new(Vec::new)).expect("start")
            };
            let (a, b) = (start(1), start(2));
            const N: u64 = 40;
            let sender = {
                let a = a.clone();
                glommio::spawn_local(async move {
                    for k in 1..=N {
                        let id = a
                            .broadcast_when_room(Bytes::from(k.to_le_bytes().to_vec()))
                            .await
                            .expect("running");
                        assert_eq!(id.seq, k);
                    }
                })
            };
            // Member 1 delivers its own broadcasts too (that is what frees its window).
            let drain_a = drain(&a);
            glommio::timer::sleep(Duration::from_millis(50)).await;
            let addrs = [(1, a.local_addr()), (2, b.local_addr())];
            a.add_addrs(addrs);
            b.add_addrs(addrs);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut next = 1;
            while next <= N {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    !left.is_zero(),
                    "member 2 delivered {} of {N} in 10 s",
                    next - 1
                );
                let e = next_event_within(&b, left).await;
                if let Some(Event::Deliver { id, payload, .. }) = e {
                    if id.origin == 1 {
                        assert_eq!(id.seq, next, "in order");
                        assert_eq!(payload.as_ref(), next.to_le_bytes());
                        next += 1;
                    }
                }
            }
            sender.await;
            drop(drain_a);
        });
    }

    /// A joiner whose one contact is not there says so, then asks every member of its
    /// address book (the directory) and gets in.
    #[test]
    fn a_joiner_with_no_live_contact_gets_in_through_the_address_book() {
        on_executor(async {
            let opts = |id, start| loopback(id, start, 11);
            let a = Node::start(opts(1, Start::Found(vec![1, 2])), Box::new(Vec::new)).expect("1");
            let b = Node::start(opts(2, Start::Found(vec![1, 2])), Box::new(Vec::new)).expect("2");
            let addrs = [(1, a.local_addr()), (2, b.local_addr())];
            a.add_addrs(addrs);
            b.add_addrs(addrs);
            // Its contact, 9, has no address and never answers.
            let mut o = opts(3, Start::Join(vec![9]));
            o.addrs = addrs.into_iter().collect();
            let j = Node::start(o, Box::new(Vec::new)).expect("3");
            let (_da, _db) = (drain(&a), drain(&b));
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut blocked = Vec::new();
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    !left.is_zero(),
                    "the joiner did not get in within 10 s; it said {blocked:?}"
                );
                let e = next_event_within(&j, left).await;
                match e {
                    Some(Event::Blocked(why)) => blocked.push(why),
                    Some(Event::View(v)) if v.contains(3) => break,
                    _ => {}
                }
            }
            assert!(
                blocked
                    .first()
                    .is_some_and(|w| w.contains("none of the contacts [9]")),
                "it said its contacts failed first: {blocked:?}"
            );
        });
    }

    /// An application state too large for a frame is not sent: the joiner stops for want
    /// of it, saying so, and the members go on without it. (Past 2 GiB, as here, rkyv's
    /// 32-bit offsets panicked in the member sending it.)
    #[test]
    fn a_state_too_large_to_send_stops_the_joiner_not_the_members() {
        on_executor(async {
            let opts = |id, start| loopback(id, start, 12);
            // (Zeroed pages, never touched unless sent.)
            let huge = || Box::new(|| vec![0u8; (2 << 30) + 1]) as Box<dyn FnMut() -> Vec<u8>>;
            let a = Node::start(opts(1, Start::Found(vec![1, 2])), huge()).expect("1");
            let b = Node::start(opts(2, Start::Found(vec![1, 2])), huge()).expect("2");
            let j = Node::start(opts(3, Start::Join(vec![1])), Box::new(Vec::new)).expect("3");
            let addrs = [
                (1, a.local_addr()),
                (2, b.local_addr()),
                (3, j.local_addr()),
            ];
            for n in [&a, &b, &j] {
                n.add_addrs(addrs);
            }
            // (Their events taken, the members are asked for the state; member 1's only
            // until the joiner stopped, to see its own delivery after.)
            let db = drain(&b);
            let stop = Rc::new(std::cell::Cell::new(false));
            let da = {
                let (a, stop) = (a.clone(), stop.clone());
                glommio::spawn_local(async move {
                    while !stop.get() {
                        let _ = next_event_within(&a, Duration::from_millis(10)).await;
                    }
                })
                .detach()
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut said = Vec::new();
            while !j.is_stopped() {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(
                    !left.is_zero(),
                    "the joiner did not stop within 20 s; it said {said:?}"
                );
                if let Some(Event::Blocked(why)) = next_event_within(&j, left).await {
                    said.push(why);
                }
            }
            stop.set(true);
            da.await;
            assert!(
                said.iter().any(|w| w.contains("state never came")),
                "the joiner says why: {said:?}"
            );
            // The members go on, without it.
            let deadline = Instant::now() + Duration::from_secs(20);
            let id = a
                .broadcast(Bytes::from_static(b"after"))
                .expect("member 1 broadcasts");
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "member 1 did not deliver within 20 s");
                match next_event_within(&a, left).await {
                    Some(Event::Deliver { id: got, .. }) if got == id => break,
                    Some(Event::Blocked(why)) => panic!("member 1 blocked: {why}"),
                    _ => {}
                }
            }
            drop(db);
        });
    }

    /// A peer that authenticated but lies about its shared-memory ring is refused, and one
    /// that writes into its accepted ring what no sender writes loses that link; the
    /// member goes on (here it still broadcasts and delivers in its one-member group).
    #[test]
    fn a_peer_that_abuses_a_shared_memory_link_loses_it_and_nothing_else() {
        use zerorank_transport::shm::peer_ring::node_key;
        on_executor(async {
            let (job, secret) = (7, [3; 32]);
            let opts = Options {
                id: 1,
                listen: "127.0.0.1:0".parse().unwrap(),
                addrs: BTreeMap::new(),
                start: Start::Found(vec![1]),
                job,
                secret,
                member: Config::default(),
                tcp: TcpConfig::default(),
                shm: true,
            };
            let node = Node::start(opts, Box::new(Vec::new)).expect("start");
            let conn = tcp::connect(node.local_addr(), job, 2, 1, &secret, &TcpConfig::default())
                .await
                .expect("an authenticated peer connects");
            let (mut reader, mut writer) = conn.into_split();
            let pool = BufferPool::new();
            let expect = Expect {
                job,
                rank: 2,
                size: u32::MAX,
            };
            let send = |c: Control| c.encode(job, 2, 1);
            // The member's next link-control answer (bounded: 5 s).
            async fn answer(
                reader: &mut FrameReader,
                pool: &BufferPool,
                expect: &Expect,
            ) -> Control {
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    assert!(Instant::now() < deadline, "no answer to an offer in 5 s");
                    let buf = futures_lite::future::or(
                        async { Some(reader.next_frame(pool, expect).await) },
                        async {
                            glommio::timer::sleep(Duration::from_secs(5)).await;
                            None
                        },
                    )
                    .await
                    .expect("no frame in 5 s")
                    .expect("a frame");
                    let h = zerorank_core::frame::access(buf.as_slice()).unwrap();
                    if h.comm.to_native() == shm_link::CONTROL_CONTEXT {
                        let payload = &buf.as_slice()[zerorank_core::frame::HEADER_LEN..];
                        match Control::decode(h, payload).expect("a control message") {
                            // The member's own offer of a ring to this peer (left
                            // unanswered).
                            Control::Offer { .. } => continue,
                            c => return c,
                        }
                    }
                }
            }
            let ring = OfferedRing::create(4, 256).unwrap();
            // An offer whose nonce is not the ring's: refused.
            let mut lie = ring.offer();
            lie.nonce ^= 2;
            let (hb, p) = send(Control::Offer {
                offer: lie,
                node: node_key(),
            });
            writer.send_frame_parts(&hb, &[&p]).await.unwrap();
            assert_eq!(
                answer(&mut reader, &pool, &expect).await,
                Control::Refuse { nonce: lie.nonce }
            );
            // An offer from "another node": refused.
            let (hb, p) = send(Control::Offer {
                offer: ring.offer(),
                node: "another/node/key".into(),
            });
            writer.send_frame_parts(&hb, &[&p]).await.unwrap();
            assert_eq!(
                answer(&mut reader, &pool, &expect).await,
                Control::Refuse {
                    nonce: ring.offer().nonce
                }
            );
            // The true one: accepted.
            let (hb, p) = send(Control::Offer {
                offer: ring.offer(),
                node: node_key(),
            });
            writer.send_frame_parts(&hb, &[&p]).await.unwrap();
            assert_eq!(
                answer(&mut reader, &pool, &expect).await,
                Control::Accept {
                    nonce: ring.offer().nonce
                }
            );
            assert_eq!(
                node.inner.borrow().ring_wakes.len(),
                1,
                "a ring reader runs"
            );
            // Then a fragment with no batch begun, and a wake-up.
            let tx = ring.into_sender();
            assert!(tx.try_send(0, 8, |b| b.fill(0xff)));
            let (hb, _) = send(Control::Wake);
            writer.send_frame_parts(&hb, &[]).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while !node.inner.borrow().ring_wakes.is_empty() {
                assert!(
                    Instant::now() < deadline,
                    "the member still reads a ring written out of protocol after 5 s"
                );
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            // The member goes on.
            let id = node.broadcast(&b"still here"[..]).expect("broadcast");
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                assert!(Instant::now() < deadline, "no delivery in 5 s");
                match node.try_event().await {
                    Some(Event::Deliver {
                        id: got, payload, ..
                    }) if got == id => {
                        assert_eq!(&payload[..], b"still here");
                        break;
                    }
                    Some(_) => {}
                    None => glommio::timer::sleep(Duration::from_millis(5)).await,
                }
            }
        });
    }
}
