//! A ring atomic-broadcast group on a communicator ([`Communicator::ring_group`]): every
//! rank of the communicator is a member; each delivers every member's broadcasts in one
//! total order, sees the same views, and can agree on values and apply a linear history
//! of transactions (see `zerorank_replication::abcast`).
//!
//! The group runs on the rank's glommio executor beside the rank's other traffic, over
//! its own authenticated TCP connections (the job secret), and makes progress whenever
//! the rank waits in one of these calls or in any other zerorank call that runs the
//! executor (every MPI wait, point-to-point or collective, does every 20 ms). A rank
//! that computes for longer than the failure detector's bound (1 s, or
//! `ZR_RING_SUSPECT_MS`) without such a call is left out, as a hung one would be:
//! call [`RingGroup::progress`] now and then, or raise the bound. A member left out
//! comes back with [`RingGroup::rejoin`].
//!
//! [`RingGroup::broadcast`] queues: the queue goes to the member, in one batch, at the
//! next call of this group that waits or asks ([`next_delivery`](RingGroup::next_delivery),
//! [`next_view`](RingGroup::next_view), [`agree`](RingGroup::agree),
//! [`transact`](RingGroup::transact), [`version`](RingGroup::version),
//! [`leave`](RingGroup::leave)), at [`flush`](RingGroup::flush), or once
//! [`RingGroup::QUEUE_MAX`] broadcasts or [`RingGroup::QUEUE_BYTES`] bytes are queued.
//! One batch costs one pass of the executor and one write per link, where one broadcast
//! at a time cost both per message.
//!
//! Every call of this group that sends, waits or asks about the group (all but
//! [`queued`](RingGroup::queued), [`undelivered`](RingGroup::undelivered),
//! [`rank`](RingGroup::rank), [`rank_of_member`](RingGroup::rank_of_member) and
//! [`replicate`](RingGroup::replicate)) lets the member run if it has not for
//! [`RingGroup::PROGRESS_EVERY`], even a call that finds what it wants at once (a
//! broadcast queued, a delivery already taken in, a decided agreement): a rank that only queues broadcasts,
//! or only reads deliveries taken in earlier, for longer than the failure detector's
//! bound would otherwise fall silent while inside the group's calls. (Queueing 32
//! broadcasts of 16 MiB, a copy of each, took 1.3-1.8 s on 4 ranks of a 2-core machine;
//! the others stopped hearing from every rank at once, sent their windows again, and
//! left members out.)
//! Dropping a group that is still a member [`leave`](RingGroup::leave)s it, waiting at
//! most [`RingGroup::DROP_WAIT`]: what is queued goes out first, and every member that
//! stays delivers it before the view without this one (virtual synchrony). If the others
//! do not complete that view change in time (none of them is inside a group call, say),
//! a log line says so and the member stops, which the others then see as its failure.
//!
//! ```no_run
//! let universe = zerorank::initialize()?;
//! let world = universe.world();
//! let group = world.ring_group()?;
//! group.broadcast(b"hello")?;
//! let d = group.next_delivery(std::time::Duration::from_secs(5))?.expect("a delivery");
//! println!("{} #{}: {:?}", d.origin, d.seq, d.payload);
//! let (winner, value) = group.agree(1, b"mine", std::time::Duration::from_secs(5))?;
//! # Ok::<(), zerorank::Error>(())
//! ```

use crate::communicator::Communicator;
use crate::error::{Error, Result};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use zerorank_replication::abcast::agreement::{self, Agreement, Outcome};
use zerorank_replication::abcast::runtime::{self, Event, Node, Options, Start};
use zerorank_replication::abcast::{
    BroadcastError, Bytes, Config, MsgId, NeighbourMark, NodeId, View, ViewId,
};
use zerorank_transport::fabric::Fabric;

/// One delivered broadcast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The view it was delivered in.
    pub view: ViewId,
    /// The member that sent it: its communicator rank.
    pub origin: i32,
    /// The origin's sequence number of it (from 1).
    pub seq: u64,
    /// What it carried: a slice of the buffer it was received in, not a copy.
    pub payload: Bytes,
}

/// An application state replicated on a group ([`RingGroup::replicate`]): every member
/// applies the same deliveries in the same order, and a member that joins (a rank that
/// [`rejoin`](RingGroup::rejoin)s) starts from a copy of another's.
///
/// The group calls these from inside its own calls; they must not call the group.
pub trait Replicated {
    /// Apply one delivered broadcast (not the group's own agreement and transaction
    /// messages).
    fn apply(&mut self, delivery: &Delivery);
    /// The state as bytes, for a member that joins: it reflects exactly the deliveries
    /// applied before the view that lets the joiner in. At most about 1 GiB
    /// (`zerorank_replication::abcast::runtime::MAX_STATE`, with the agreements' state):
    /// a larger one is not sent (an error is logged) and the joiner stops for want of it.
    fn snapshot(&self) -> Vec<u8>;
    /// Replace the state with a member's `snapshot`, on joining.
    fn restore(&mut self, state: &[u8]);
}

/// The application's replicated state, if it set one.
type Machine = Rc<RefCell<Option<Box<dyn Replicated>>>>;

/// What a member sends a joiner: the agreement state, then the application's, if any.
fn encode_state(agreement: &[u8], app: Option<Vec<u8>>) -> Vec<u8> {
    let mut s = Vec::with_capacity(9 + agreement.len() + app.as_ref().map_or(0, Vec::len));
    s.extend_from_slice(&(agreement.len() as u64).to_le_bytes());
    s.extend_from_slice(agreement);
    match app {
        Some(a) => {
            s.push(1);
            s.extend_from_slice(&a);
        }
        None => s.push(0),
    }
    s
}

/// The two parts of [`encode_state`]'s bytes; `None` if they are not that.
fn decode_state(s: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let len = usize::try_from(u64::from_le_bytes(s.get(..8)?.try_into().ok()?)).ok()?;
    let agreement = s.get(8..8usize.checked_add(len)?)?;
    let rest = &s[8 + len..];
    match rest.first()? {
        0 if rest.len() == 1 => Some((agreement, None)),
        1 => Some((agreement, Some(&rest[1..]))),
        _ => None,
    }
}

/// The state callback of a member: taken when a joiner needs it, after every event
/// before it has been applied (see `Node::start`).
fn state_fn(state: Rc<RefCell<State>>, machine: Machine) -> Box<dyn FnMut() -> Vec<u8>> {
    Box::new(move || {
        let agreement = state.borrow().agreement.snapshot();
        let app = machine.borrow().as_ref().map(|m| m.snapshot());
        encode_state(&agreement, app)
    })
}

/// The member id of a communicator rank's `incarnation`-th membership (ids start at 1):
/// the ranks' first ones are 1..=size, those after a [`RingGroup::rejoin`] follow on.
fn id_of(rank: i32, incarnation: u32, size: i32) -> NodeId {
    NodeId::from(incarnation) * size as NodeId + rank as NodeId + 1
}

/// The communicator rank whose member `id` is (of any incarnation).
fn rank_of(id: NodeId, size: i32) -> i32 {
    debug_assert!(id >= 1, "member ids start at 1");
    ((id - 1) % size as NodeId) as i32
}

fn group_error(what: impl std::fmt::Display) -> Error {
    Error::RingGroup(what.to_string())
}

/// A ring-broadcast group (see the module docs).
pub struct RingGroup {
    fabric: Rc<Fabric>,
    /// The member this rank is now (another after a [`RingGroup::rejoin`]).
    node: RefCell<Node>,
    state: Rc<RefCell<State>>,
    /// This member's communicator rank.
    me: i32,
    /// The communicator's size.
    size: i32,
    /// How many times this rank has rejoined the group.
    incarnation: Cell<u32>,
    /// How the member was started (a rejoin starts the next one alike).
    opts: Options,
    /// The application's replicated state ([`RingGroup::replicate`]).
    machine: Machine,
    /// When this group last took in its member's events.
    last_poll: Cell<Instant>,
    /// After a long idle: the ping to the ring neighbours whose answer the queue waits
    /// for, and when to stop waiting ([`RingGroup::confirmed`]).
    confirming: RefCell<Option<(NeighbourMark, Instant)>>,
}

#[derive(Default)]
struct State {
    agreement: Agreement,
    deliveries: VecDeque<Delivery>,
    views: VecDeque<View>,
    /// Outcomes of this member's proposals and transactions, by broadcast.
    outcomes: HashMap<MsgId, Outcome>,
    stopped: Option<String>,
    /// Broadcasts accepted by [`RingGroup::broadcast`], not yet handed to the member.
    queued: VecDeque<Bytes>,
    /// The sequence number the member gave this member's last broadcast.
    last_seq: u64,
    /// The sequence number of this member's last broadcast delivered here.
    own_delivered: u64,
    /// The group's state came (a joiner's, after a [`RingGroup::rejoin`]).
    state_received: bool,
}

impl Communicator {
    /// Make every rank of this communicator a member of a new ring-broadcast group
    /// (collective: every rank must call it).
    pub fn ring_group(&self) -> Result<RingGroup> {
        let fabric = self.inner.fabric.clone();
        let info = fabric.info().clone();
        let (me, size) = (self.rank(), self.size());
        let members: Vec<NodeId> = (0..size).map(|r| id_of(r, 0, size)).collect();
        let suspect_after = RingGroup::suspect_after()?;
        let state = Rc::new(RefCell::new(State::default()));
        let machine: Machine = Rc::new(RefCell::new(None));
        let state_cb = state_fn(state.clone(), machine.clone());
        let opts = Options {
            id: id_of(me, 0, size),
            listen: SocketAddr::new(info.advertise_ip, 0),
            addrs: Default::default(),
            start: Start::Found(members),
            job: info.job_id,
            secret: info.secret,
            member: Config {
                suspect_after,
                heartbeat: suspect_after / 5,
                change_timeout: suspect_after / 2,
                ..Config::default()
            },
            // Members on one node share memory unless ZR_RING_SHM=0.
            shm: std::env::var("ZR_RING_SHM").map_or(true, |v| v != "0"),
            tcp: zerorank_transport::tcp::TcpConfig {
                max_frame_payload: RingGroup::MAX_FRAME,
                ..Default::default()
            },
        };
        // The members start together: a member's failure detector runs from its start,
        // so one started long before a late rank's would suspect it before it began
        // (ranks may come to this call seconds apart; in the barrier they wait as long
        // as it takes, and only the address exchange below lies between the starts).
        self.barrier()?;
        let node = fabric
            .block_on(async { Node::start(opts.clone(), state_cb) })
            .map_err(|e| group_error(format!("could not listen for the ring group: {e}")))?;
        // Everyone's address, through the communicator.
        let mut mine = [0u8; 64];
        let a = node.local_addr().to_string();
        mine[..a.len()].copy_from_slice(a.as_bytes());
        let mut all = vec![0u8; 64 * self.size() as usize];
        self.all_gather_into(&mine[..], &mut all[..])?;
        let mut addrs = Vec::new();
        for (r, chunk) in all.chunks(64).enumerate() {
            let s = std::str::from_utf8(chunk)
                .map_err(group_error)?
                .trim_end_matches('\0');
            let addr: SocketAddr = s
                .parse()
                .map_err(|e| group_error(format!("rank {r} sent a bad address {s:?}: {e}")))?;
            // Every membership the rank may have: a rank that rejoins listens where it
            // did before.
            for k in 0..=RingGroup::REJOINS_MAX {
                addrs.push((id_of(r as i32, k, size), addr));
            }
        }
        // Inside the executor: frames the member held for peers with no address yet (its
        // heartbeats, while a late rank kept the others waiting in the gather above) go
        // out now, on tasks it spawns (outside, glommio panicked: every early rank
        // aborted once one came 250 ms late).
        let book = addrs.clone();
        fabric.block_on(async { node.add_addrs(book) });
        let mut opts = opts;
        opts.listen = node.local_addr();
        opts.addrs = addrs.into_iter().collect();
        Ok(RingGroup {
            fabric,
            node: RefCell::new(node),
            state,
            me,
            size,
            incarnation: Cell::new(0),
            opts,
            machine,
            last_poll: Cell::new(Instant::now()),
            confirming: RefCell::new(None),
        })
    }
}

impl RingGroup {
    /// Take in the events that are waiting, or wait up to `wait` for one. Each is applied
    /// before the next is taken: the runtime takes a joiner's state from `state` when it
    /// comes to the joiner's place in the stream, which must reflect every delivery
    /// before it.
    fn poll(&self, wait: Option<Duration>) {
        self.last_poll.set(Instant::now());
        let node = self.node();
        self.fabric.block_on(async {
            let mut any = false;
            while let Some(e) = node.try_event().await {
                self.apply(e);
                any = true;
            }
            if !any {
                if let Some(w) = wait {
                    let next = futures_lite::future::or(async { node.next_event().await }, async {
                        glommio::timer::sleep(w).await;
                        None
                    })
                    .await;
                    if let Some(e) = next {
                        self.apply(e);
                    }
                }
            }
        });
    }

    /// Apply one event of the group to this member's state.
    fn apply(&self, e: Event) {
        let mut st = self.state.borrow_mut();
        match e {
            Event::Deliver { view, id, payload } => {
                if id.origin == self.node_id() {
                    assert_eq!(id.seq, st.own_delivered + 1, "FIFO of own broadcasts");
                    st.own_delivered = id.seq;
                }
                match st.agreement.deliver(id.origin, &payload) {
                    Outcome::Plain(p) => {
                        let d = Delivery {
                            view,
                            origin: rank_of(id.origin, self.size),
                            seq: id.seq,
                            payload: p,
                        };
                        if let Some(m) = self.machine.borrow_mut().as_mut() {
                            m.apply(&d);
                        }
                        st.deliveries.push_back(d);
                    }
                    o => {
                        if id.origin == self.node_id() {
                            st.outcomes.insert(id, o);
                        }
                    }
                }
            }
            Event::View(v) => st.views.push_back(v),
            Event::Blocked(why) => {
                if self.node.borrow().is_stopped() {
                    st.stopped = Some(why);
                }
            }
            Event::Left => st.stopped = Some("this member left the group".into()),
            Event::StateReceived(s) => {
                let parts =
                    decode_state(&s).and_then(|(a, app)| Some((Agreement::restore(a)?, app)));
                let Some((agreement, app)) = parts else {
                    // From an authenticated member of this job: a bug, or another build.
                    tracing::warn!(
                        bytes = s.len(),
                        "ring group: the group's state came in a form this member cannot read; it starts from an empty one"
                    );
                    st.state_received = true;
                    return;
                };
                st.agreement = agreement;
                st.state_received = true;
                let mut machine = self.machine.borrow_mut();
                match (machine.as_mut(), app) {
                    (Some(m), Some(app)) => m.restore(app),
                    (Some(_), None) => tracing::warn!(
                        "ring group: the member that sent this one the group's state replicates no application state (call replicate on every rank); this one keeps its own"
                    ),
                    (None, _) => {}
                }
            }
        }
    }

    fn node_id(&self) -> NodeId {
        id_of(self.me, self.incarnation.get(), self.size)
    }

    /// The member this rank is now.
    fn node(&self) -> Node {
        self.node.borrow().clone()
    }

    /// The communicator rank of member `id` (of a view's members, say): ranks that
    /// [`rejoin`](Self::rejoin)ed are members under new ids.
    pub fn rank_of_member(&self, id: NodeId) -> i32 {
        rank_of(id, self.size)
    }

    /// This member's communicator rank.
    pub fn rank(&self) -> i32 {
        self.me
    }

    /// Take in what has happened, without waiting; an error saying why if this member
    /// has stopped (it was left out, or it left).
    pub fn running(&self) -> Result<()> {
        self.take_in();
        self.check_running()
    }

    /// Take in what has happened, without waiting: after a long idle, with time for
    /// what came in meanwhile to be read (see [`catch_up_if_idle`](Self::catch_up_if_idle)).
    fn take_in(&self) {
        self.catch_up_if_idle();
        self.poll(None);
    }

    fn check_running(&self) -> Result<()> {
        match &self.state.borrow().stopped {
            Some(why) => Err(group_error(format!("the ring group stopped: {why}"))),
            None => Ok(()),
        }
    }

    /// Broadcast `payload` now (after the queue), waiting up to `timeout` under
    /// back-pressure.
    fn send(&self, payload: Vec<u8>, timeout: Duration) -> Result<MsgId> {
        self.check_running()?;
        self.state.borrow_mut().queued.push_back(payload.into());
        if let Err(e) = self.flush_within(timeout) {
            // Not sent, as the error says: it does not go out later either.
            self.state.borrow_mut().queued.pop_back();
            return Err(e);
        }
        // Let it go out now.
        self.poll(None);
        Ok(MsgId {
            origin: self.node_id(),
            seq: self.state.borrow().last_seq,
        })
    }

    /// Most broadcasts queued before [`RingGroup::broadcast`] hands them to the member
    /// itself (see the module docs).
    pub const QUEUE_MAX: usize = 32;

    /// Most bytes of broadcasts queued before [`RingGroup::broadcast`] hands them to the
    /// member (a little over 32 of 64 KiB: their batching is kept; a larger broadcast is
    /// handed over at once).
    pub const QUEUE_BYTES: usize = 2 << 20;

    /// Longest time a call of this group leaves the member without running (see the
    /// module docs).
    pub const PROGRESS_EVERY: Duration = Duration::from_millis(10);

    /// How long a flush waits, under back-pressure, for the member to take the queue.
    const FLUSH_WAIT: Duration = Duration::from_secs(10);

    /// Largest broadcast, in bytes (16 MiB): a larger one is refused (see
    /// `zerorank_replication::abcast::runtime::MAX_BROADCAST`).
    pub const MAX_BROADCAST: usize = runtime::MAX_BROADCAST;

    /// Largest frame between members (the transport refuses larger length prefixes
    /// before it allocates).
    const MAX_FRAME: usize = runtime::MAX_FRAME;

    /// How long dropping a group waits for the view without it (see the module docs).
    pub const DROP_WAIT: Duration = Duration::from_secs(2);

    /// Broadcast `payload` to every member, in total order: it is queued (see the module
    /// docs) and its sequence number returned. If the member has not run for
    /// [`RingGroup::PROGRESS_EVERY`], it runs first, and takes what it can of the queue.
    /// Queueing the [`RingGroup::QUEUE_MAX`]-th, or the one that brings the queue to
    /// [`RingGroup::QUEUE_BYTES`], hands the queue over, waiting up to 10 s while this
    /// member has too many broadcasts undelivered. An error means `payload` was not
    /// taken (it does not go out later either); broadcasts queued before it stay queued.
    pub fn broadcast(&self, payload: &[u8]) -> Result<u64> {
        if payload.len() > Self::MAX_BROADCAST {
            return Err(group_error(format!(
                "a broadcast of {} bytes: at most {} (RingGroup::MAX_BROADCAST)",
                payload.len(),
                Self::MAX_BROADCAST
            )));
        }
        if self.progress_due() {
            // (First what came in: it may say this member stopped.)
            self.take_in();
            self.hand_over()?;
            self.poll(None);
        }
        self.check_running()?;
        let (seq, full) = {
            let mut st = self.state.borrow_mut();
            st.queued.push_back(agreement::plain(payload).into());
            let bytes: usize = st.queued.iter().map(Bytes::len).sum();
            (
                st.last_seq + st.queued.len() as u64,
                st.queued.len() >= Self::QUEUE_MAX || bytes >= Self::QUEUE_BYTES,
            )
        };
        if full {
            if let Err(e) = self.flush_within(Self::FLUSH_WAIT) {
                // The queue goes from the front, and not all of it went: this one is
                // still the last. Not taken, as the error says.
                let mut st = self.state.borrow_mut();
                let last = st.queued.pop_back();
                assert_eq!(
                    last.as_deref().map(|b| &b[1..]),
                    Some(payload),
                    "a failed flush left this broadcast last in the queue"
                );
                return Err(e);
            }
        }
        Ok(seq)
    }

    /// Hand the queued broadcasts to the member and let them go out (waits, up to 10 s,
    /// while this member has too many broadcasts undelivered).
    pub fn flush(&self) -> Result<()> {
        self.flush_within(Self::FLUSH_WAIT)?;
        self.poll(None);
        Ok(())
    }

    fn flush_within(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while let Some(n) = self.hand_over()? {
            if Instant::now() >= deadline {
                return Err(group_error(format!(
                    "back-pressure: {n} broadcasts of this member still undelivered after {timeout:?} ({} queued)",
                    self.state.borrow().queued.len()
                )));
            }
            self.poll(Some(Duration::from_millis(1)));
        }
        Ok(())
    }

    /// Has the member gone [`RingGroup::PROGRESS_EVERY`] without running?
    fn progress_due(&self) -> bool {
        self.last_poll.get().elapsed() >= Self::PROGRESS_EVERY
    }

    /// [`take_in`](Self::take_in) if the member has gone
    /// [`RingGroup::PROGRESS_EVERY`] without running.
    fn take_in_if_due(&self) {
        if self.progress_due() {
            self.take_in();
        }
    }

    /// After being idle longer than a heartbeat (the rank computed, or hung), let the
    /// member read what came in meanwhile for 20 ms, which may say the group went on
    /// without it, and take it in: before it takes the queue, which would otherwise go
    /// out in a view the others have left and be lost, where a member known to have
    /// stopped keeps it for the rejoin.
    ///
    /// Idle long enough to have been left out (the failure detector's bound, less a
    /// heartbeat), it first pings its ring neighbours: until both have answered the ping
    /// (a neighbour frozen in a view change answers once it is over), or the member
    /// learnt that it stopped (a neighbour that left it out says which view the group is
    /// in instead of answering), or the bound passed, the
    /// queue is not handed over ([`confirmed`](Self::confirmed)); calls that wait go on
    /// waiting within their own timeouts. The 20 ms read alone lost the queue whenever
    /// the notice came later.
    fn catch_up_if_idle(&self) {
        let idle = self.last_poll.get().elapsed();
        let cfg = &self.opts.member;
        if idle <= Duration::from_millis(cfg.heartbeat) {
            return;
        }
        if idle >= Duration::from_millis(cfg.suspect_after.saturating_sub(cfg.heartbeat)) {
            let node = self.node();
            let mark = self.fabric.block_on(async move { node.ping_neighbours() });
            let until = Instant::now() + Duration::from_millis(cfg.suspect_after);
            *self.confirming.borrow_mut() = Some((mark, until));
        }
        self.fabric.block_on(glommio::timer::sleep(Self::CATCH_UP));
        self.poll(None);
    }

    /// May the member take the queue? Not after an idle long enough to have been left
    /// out (see [`catch_up_if_idle`](Self::catch_up_if_idle)) until the ring neighbours
    /// answered its ping, it learnt that it stopped, or the failure detector's bound
    /// passed (a neighbour silent that long is suspected anyway).
    fn confirmed(&self) -> bool {
        let mut c = self.confirming.borrow_mut();
        let Some((mark, until)) = c.as_ref() else {
            return true;
        };
        let node = self.node.borrow();
        if node.heard_back_since(mark) || node.is_stopped() || Instant::now() >= *until {
            *c = None;
            return true;
        }
        false
    }

    /// Hand the member as much of the queue as it takes now, all in one pass of the
    /// executor (one pump, one batch per link). `Some(undelivered)` if back-pressure left
    /// some queued.
    fn hand_over(&self) -> Result<Option<usize>> {
        if self.state.borrow().queued.is_empty() {
            return Ok(None);
        }
        self.catch_up_if_idle();
        let confirmed = self.confirmed();
        self.check_running()?;
        if !confirmed {
            return Ok(Some(self.undelivered() as usize));
        }
        let (node, state) = (self.node(), self.state.clone());
        let refused = self.fabric.block_on(async move {
            let mut st = state.borrow_mut();
            while let Some(p) = st.queued.front() {
                match node.broadcast(p.clone()) {
                    Ok(id) => {
                        st.queued.pop_front();
                        assert_eq!(
                            id.seq,
                            st.last_seq + 1,
                            "the group is this member's only broadcaster"
                        );
                        st.last_seq = id.seq;
                    }
                    Err(e) => return Some(e),
                }
            }
            None
        });
        match refused {
            None => Ok(None),
            Some(BroadcastError::Full(n)) => Ok(Some(n)),
            Some(e) => Err(group_error(e)),
        }
    }

    /// Broadcasts queued and not yet handed to the member.
    pub fn queued(&self) -> usize {
        self.state.borrow().queued.len()
    }

    /// This member's broadcasts not yet delivered here (queued or in flight).
    pub fn undelivered(&self) -> u64 {
        let st = self.state.borrow();
        st.last_seq + st.queued.len() as u64 - st.own_delivered
    }

    /// Wait up to `timeout` until `ready` finds what it looks for in the state, taking
    /// in events meanwhile; `None` if the time ran out. Fails if the member stopped
    /// before `ready` found it.
    fn wait_for<T>(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&mut State) -> Option<T>,
    ) -> Result<Option<T>> {
        let deadline = Instant::now() + timeout;
        self.take_in_if_due();
        loop {
            if let Some(x) = ready(&mut self.state.borrow_mut()) {
                return Ok(Some(x));
            }
            // What the member takes now; the rest waits for deliveries (taken in below).
            self.hand_over()?;
            self.check_running()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.poll(Some(left.min(Duration::from_millis(50))));
        }
    }

    /// The next delivery, waiting up to `timeout`; `None` if none came.
    pub fn next_delivery(&self, timeout: Duration) -> Result<Option<Delivery>> {
        self.wait_for(timeout, |st| st.deliveries.pop_front())
    }

    /// The next view installed since the last call (the first is the initial one),
    /// waiting up to `timeout`.
    pub fn next_view(&self, timeout: Duration) -> Result<Option<View>> {
        self.wait_for(timeout, |st| st.views.pop_front())
    }

    /// The installed view. Its members are ids: [`rank_of_member`](Self::rank_of_member)
    /// gives their ranks (before any [`rejoin`](Self::rejoin), rank + 1).
    pub fn view(&self) -> Option<View> {
        self.take_in_if_due();
        self.node.borrow().view()
    }

    /// Propose `value` for `instance` and wait (up to `timeout`) for the decision, which
    /// every member reaches alike: (the winning proposer's rank, its value).
    pub fn agree(&self, instance: u64, value: &[u8], timeout: Duration) -> Result<(i32, Vec<u8>)> {
        let decided = |st: &mut State| {
            st.agreement
                .decision(instance)
                .map(|(p, v)| (rank_of(p, self.size), v.to_vec()))
        };
        self.take_in_if_due();
        if let Some(d) = decided(&mut self.state.borrow_mut()) {
            return Ok(d);
        }
        let start = Instant::now();
        self.send(agreement::propose(instance, value), timeout)?;
        self.wait_for(timeout.saturating_sub(start.elapsed()), decided)?
            .ok_or_else(|| {
                group_error(format!(
                    "no decision on instance {instance} within {timeout:?}"
                ))
            })
    }

    /// Apply `change` to the shared history if no other change is applied before it:
    /// `Some(version)` it became, or `None` if another came first (retry from
    /// [`RingGroup::version`]). Waits up to `timeout`.
    pub fn transact(&self, change: &[u8], timeout: Duration) -> Result<Option<u64>> {
        let start = Instant::now();
        let base = self.version();
        let id = self.send(agreement::transact(base, change), timeout)?;
        let outcome = self
            .wait_for(timeout.saturating_sub(start.elapsed()), |st| {
                st.outcomes.remove(&id)
            })?
            .ok_or_else(|| {
                group_error(format!(
                    "the transaction was not delivered within {timeout:?}"
                ))
            })?;
        Ok(match outcome {
            Outcome::Applied { version, .. } => Some(version),
            _ => None,
        })
    }

    /// Leave the group gracefully: the others install a view without this member, and
    /// this member delivers nothing more. Waits up to `timeout` for that view.
    pub fn leave(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        self.flush_within(timeout)?;
        let node = self.node();
        self.fabric.block_on(async move { node.leave() });
        // Its stop is what it waits for, so `wait_for` never fails on it.
        self.wait_for(timeout.saturating_sub(start.elapsed()), |st| {
            st.stopped.is_some().then_some(())
        })?
        .ok_or_else(|| group_error(format!("no view without this member within {timeout:?}")))?;
        // What it said last (a leaving leader: the new view, to the others) must be out
        // before the process may end. (If not in time, the others go on without it
        // after their failure detector's bound, as after a crash.)
        let node = self.node();
        let left = timeout
            .saturating_sub(start.elapsed())
            .max(Self::WRITE_WAIT);
        if !self
            .fabric
            .block_on(async move { node.written(left).await })
        {
            tracing::warn!(
                "ring group: left, but frames to the others still unwritten after {left:?}"
            );
        }
        Ok(())
    }

    /// How long the member reads what came in, before it takes the queue after being
    /// idle (see `hand_over`).
    const CATCH_UP: Duration = Duration::from_millis(20);

    /// Least time [`leave`](Self::leave) waits for the member's last frames to be
    /// written once it has left.
    const WRITE_WAIT: Duration = Duration::from_millis(500);

    /// Replicate `machine` on the group: from now on it applies every delivery this
    /// member takes in (in the total order, before [`next_delivery`](Self::next_delivery)
    /// hands it out), and when the group lets in a joiner (a rank that
    /// [`rejoin`](Self::rejoin)s) a member sends it a snapshot, taken after exactly the
    /// deliveries before the joiner's view, which the joiner restores before it applies
    /// anything. Set it on every rank, right after making the group (a member that set
    /// none sends none, and the joiner keeps its own state, saying so).
    pub fn replicate(&self, machine: impl Replicated + 'static) {
        *self.machine.borrow_mut() = Some(Box::new(machine));
    }

    /// The failure detector's bound, in ms, when `ZR_RING_SUSPECT_MS` does not set it.
    pub const SUSPECT_AFTER_MS: u64 = 1000;

    /// `ZR_RING_SUSPECT_MS`, or [`SUSPECT_AFTER_MS`](Self::SUSPECT_AFTER_MS).
    fn suspect_after() -> Result<u64> {
        match std::env::var("ZR_RING_SUSPECT_MS") {
            Err(_) => Ok(Self::SUSPECT_AFTER_MS),
            Ok(v) => match v.trim().parse::<u64>() {
                Ok(ms) if (100..=3_600_000).contains(&ms) => Ok(ms),
                _ => Err(group_error(format!(
                    "ZR_RING_SUSPECT_MS={v:?}: give the failure detector's bound in ms, 100 to 3600000"
                ))),
            },
        }
    }

    /// Let the member run: hand it the queued broadcasts and take in what happened,
    /// without waiting (but for a 20 ms read after an idle longer than a heartbeat;
    /// after one near the failure detector's bound the queue stays until the ring
    /// neighbours answer a ping, for a later call: see the README). A member runs only
    /// while its rank is inside a zerorank call
    /// (this group's, or any that waits); one whose rank computes for longer than the
    /// failure detector's bound (1 s, or `ZR_RING_SUSPECT_MS`) without such a call
    /// falls silent and is left out, so call this now and then in long computations.
    pub fn progress(&self) -> Result<()> {
        // What came in first: a member that learns it was left out keeps its queue for
        // the rejoin rather than send it into a view the others have left.
        self.take_in();
        self.hand_over()?;
        self.poll(None);
        self.check_running()
    }

    /// Most times one rank can [`rejoin`](Self::rejoin) a group.
    pub const REJOINS_MAX: u32 = 7;

    /// Join the group again after this member stopped because the group went on without
    /// it: a partition left it in a minority, or the process hung (`SIGSTOP`, a stalled
    /// VM) for longer than the failure detector waits, and it learnt so once it could
    /// talk to the others again (the calls of this group then fail with "the ring group
    /// stopped: excluded: ..."). A member that left, or stopped for want of a majority,
    /// may rejoin too. Waits up to `timeout` for a view with this rank in it and for the
    /// group's state, which a member of that view sends: the agreement state (decisions
    /// and the transactions' history) and, if the application [`replicate`]s one, its
    /// own; returns that view.
    ///
    /// [`replicate`]: Self::replicate
    ///
    /// The rank comes back as a new member, under a new id
    /// ([`rank_of_member`](Self::rank_of_member) maps it to the rank): its broadcasts are
    /// numbered from 1 again, and it delivers the broadcasts of the views from the one
    /// that lets it in on, not those the others delivered without it (virtual synchrony:
    /// what they did to the application's state comes with the replicated state).
    /// Deliveries and views taken in before it stopped stay to be read; broadcasts
    /// still queued then (they never went out) go out after the rejoin, as the new
    /// member's first, numbered anew from 1; waits for the outcome of proposals and
    /// transactions are dropped. Fails if the member is still running,
    /// after [`REJOINS_MAX`](Self::REJOINS_MAX) rejoins, when no view with this rank
    /// comes in time (call it again to go on waiting), or when the new member stops
    /// too before it gets in (left out again: its process hung again, say; call it
    /// again to start another).
    pub fn rejoin(&self, timeout: Duration) -> Result<View> {
        let deadline = Instant::now() + timeout;
        // Take in what has happened: it may have stopped already.
        self.poll(None);
        let stopped = self.state.borrow().stopped.clone();
        match stopped {
            // Never left out (perhaps still waiting for its first view), or back in.
            None if self.incarnation.get() == 0 || self.joined() => {
                return Err(group_error(
                    "rejoin: this member is in the group (only one that stopped can rejoin)",
                ))
            }
            // The last rejoin ran out of time and is still trying: wait for it.
            None => {}
            Some(why) => self.start_again(&why)?,
        }
        let id = self.node_id();
        self.wait_for(deadline.saturating_duration_since(Instant::now()), |st| {
            st.state_received
                .then(|| st.views.iter().rev().find(|v| v.contains(id)).cloned())
                .flatten()
        })?
        .ok_or_else(|| {
            group_error(format!(
                "rejoin: not let in again within {timeout:?} (as member {id}); call it again to go on waiting"
            ))
        })
    }

    /// In a view, with the group's state if it is a rejoined member.
    fn joined(&self) -> bool {
        let in_view = self
            .node
            .borrow()
            .view()
            .is_some_and(|v| v.contains(self.node_id()));
        in_view && (self.incarnation.get() == 0 || self.state.borrow().state_received)
    }

    /// Start this rank's next member, as a joiner (see [`rejoin`](Self::rejoin)); `why`
    /// the last one stopped.
    fn start_again(&self, why: &str) -> Result<()> {
        let k = self.incarnation.get() + 1;
        if k > Self::REJOINS_MAX {
            return Err(group_error(format!(
                "rejoin: rank {} has rejoined {} times already, the most a group allows",
                self.me,
                Self::REJOINS_MAX
            )));
        }
        let old = self.node();
        // Its contacts: the other members of the last view it saw (the address book,
        // every rank's every id, is the directory if none of them lets it in).
        let me = self.node_id();
        let mut contacts: Vec<NodeId> = old
            .view()
            .map(|v| v.members.iter().copied().filter(|&m| m != me).collect())
            .unwrap_or_default();
        if contacts.is_empty() {
            contacts = (0..self.size)
                .filter(|&r| r != self.me)
                .map(|r| id_of(r, 0, self.size))
                .collect();
        }
        // The old member's port closes first: the new one listens there.
        self.fabric.block_on(old.close());
        let mut opts = self.opts.clone();
        opts.id = id_of(self.me, k, self.size);
        opts.start = Start::Join(contacts);
        let state_cb = state_fn(self.state.clone(), self.machine.clone());
        let node = self
            .fabric
            .block_on(async { Node::start(opts, state_cb) })
            .map_err(|e| group_error(format!("rejoin: could not listen again: {e}")))?;
        self.incarnation.set(k);
        *self.node.borrow_mut() = node;
        // (A new member: no ping of the old one to wait for.)
        *self.confirming.borrow_mut() = None;
        let mut st = self.state.borrow_mut();
        st.stopped = None;
        st.state_received = false;
        // What was still queued never went out: it goes with the new member, numbered
        // from 1 as its first broadcasts.
        st.outcomes.clear();
        st.last_seq = 0;
        st.own_delivered = 0;
        tracing::info!(
            rank = self.me,
            "ring group: joining again as member {} (the last one stopped: {why})",
            self.node_id()
        );
        Ok(())
    }

    /// The shared history's version this member has applied.
    pub fn version(&self) -> u64 {
        // (A queue the member cannot take now stays queued; the version is still right.)
        let _ = self.hand_over();
        self.poll(None);
        self.state.borrow().agreement.version()
    }
}

impl Drop for RingGroup {
    /// Leave the group, sending what is queued first (see the module docs).
    fn drop(&mut self) {
        if self.check_running().is_err() {
            // It left already, or stopped.
            return;
        }
        if let Err(e) = self.leave(Self::DROP_WAIT) {
            tracing::warn!(
                undelivered = self.undelivered(),
                "ring group dropped without leaving cleanly: {e}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_a_joiner_gets_round_trips_and_garbage_is_refused() {
        let with = encode_state(b"agreement", Some(b"app".to_vec()));
        assert_eq!(
            decode_state(&with),
            Some((&b"agreement"[..], Some(&b"app"[..])))
        );
        let without = encode_state(b"agreement", None);
        assert_eq!(decode_state(&without), Some((&b"agreement"[..], None)));
        let empty_app = encode_state(b"", Some(Vec::new()));
        assert_eq!(decode_state(&empty_app), Some((&b""[..], Some(&b""[..]))));
        // Truncated anywhere, a length past the end, a bad flag, bytes after "none".
        for cut in 0..without.len() {
            assert_eq!(decode_state(&without[..cut]), None, "cut at {cut}");
        }
        let mut long = without.clone();
        long[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(decode_state(&long), None);
        let mut flag = without.clone();
        *flag.last_mut().unwrap() = 7;
        assert_eq!(decode_state(&flag), None);
        let mut extra = without;
        extra.push(0);
        assert_eq!(decode_state(&extra), None);
    }

    #[test]
    fn member_ids_map_back_to_ranks_in_every_incarnation() {
        for size in 1..6 {
            for rank in 0..size {
                for k in 0..=RingGroup::REJOINS_MAX {
                    let id = id_of(rank, k, size);
                    assert_eq!(rank_of(id, size), rank);
                }
            }
        }
        assert_eq!(id_of(2, 1, 3), 6);
    }
}
