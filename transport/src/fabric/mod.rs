//! The per-rank progress engine.
//!
//! [`Fabric`] is what a rank process holds between init and finalize: its job identity,
//! its glommio executor, its shared-memory endpoint, its TCP connections and the
//! point-to-point [`protocol`]. It routes every peer to one [`Path`]: loopback for itself,
//! shared memory for ranks on the same node, TCP for ranks on other nodes.
//!
//! Operations are posted without blocking ([`Fabric::isend`], [`Fabric::irecv`]) and
//! completed by [`Fabric::wait`] / [`Fabric::test`], or by the `async` variants inside the
//! runtime. Progress happens inside these calls (no progress thread): the shared-memory
//! path is polled directly with no syscalls; the TCP path is driven by glommio tasks that
//! run while a waiter sleeps in the executor.

mod engine;
pub mod protocol;
mod stats;
mod tcpring;
pub mod userbuf;
mod wait;

pub use protocol::{OpError, Path, ReqId, SendMode, Status};
pub use stats::PeerStats;
pub use userbuf::{RecvBufRef, SendBuf};

use crate::bootstrap::{self, BootstrapError, JobInfo, Kvs, Launcher};
use crate::matching::{Envelope, Pattern};
use crate::shm::{cma, ShmConfig, ShmEndpoint, ShmError, ShmSegment};
use crate::tcp::{self, Listener, TcpConfig};
use engine::Engine;
use glommio::LocalExecutor;
use protocol::{Limits, Protocol};
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tcpring::TcpRing;
use zerorank_core::buffer::BufferPool;
use zerorank_core::executor::{self, ExecutorConfig, ExecutorError};
use zerorank_core::frame::{Expect, HEADER_LEN};

/// Why a rank could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum FabricError {
    /// Bootstrap (launcher, PMI, key-value exchange) failed.
    #[error("bootstrap failed: {0}")]
    Bootstrap(#[from] BootstrapError),
    /// The executor could not start.
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// The shared-memory segment could not be set up.
    #[error("shared memory: {0}")]
    Shm(#[from] ShmError),
    /// TCP setup failed.
    #[error("TCP setup: {0}")]
    Tcp(String),
    /// A peer published an endpoint this rank cannot use.
    #[error("bad endpoint of rank {rank} ({value:?}): {why}")]
    Endpoint {
        /// The peer.
        rank: u32,
        /// What it published.
        value: String,
        /// What is wrong.
        why: String,
    },
}

/// One rank's view of the job and its connections.
pub struct Fabric {
    // Field order matters for drop: the engine (and its shared-memory mapping) goes first,
    // the executor last.
    engine: Rc<RefCell<Engine>>,
    kvs: RefCell<Box<dyn Kvs>>,
    info: JobInfo,
    cpu: Option<usize>,
    finalized: Cell<bool>,
    /// Where this rank accepts TCP connections from other nodes.
    listen_addr: Option<SocketAddr>,
    /// Buffers of requests whose owner went away (a dropped future), kept until the
    /// request completes.
    orphans: RefCell<Vec<(ReqId, Box<dyn std::any::Any>)>>,
    /// The publisher's side of this rank's collective slot (see `coll_publisher`).
    coll_publisher: crate::shm::collslot::Publisher,
    /// Per local rank, the area of its collective slot to look at first.
    coll_hints: Box<[Cell<u8>]>,
    ex: LocalExecutor,
}

struct Endpoint {
    node: u32,
    addr: Option<SocketAddr>,
    pid: i32,
}

fn parse_endpoint(rank: u32, value: &str) -> Result<Endpoint, FabricError> {
    let bad = |why: &str| FabricError::Endpoint {
        rank,
        value: value.to_string(),
        why: why.to_string(),
    };
    let mut it = value.split(';');
    let (Some(node), Some(addr), Some(pid), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(bad("expected node;address;pid"));
    };
    Ok(Endpoint {
        node: node.parse().map_err(|_| bad("node id is not a number"))?,
        addr: match addr {
            "-" => None,
            a => Some(a.parse().map_err(|_| bad("address is not host:port"))?),
        },
        pid: pid.parse().map_err(|_| bad("pid is not a number"))?,
    })
}

impl Fabric {
    /// Bootstrap, start the executor, set up shared memory and TCP. Collective: every rank
    /// of the job calls it.
    pub fn init() -> Result<Fabric, FabricError> {
        let (info, mut kvs) = bootstrap::bootstrap()?;
        // The CPUs the node's ranks share, read before this rank pins itself to one.
        let cpus = zerorank_core::affinity::allowed_cpus().len();
        let (ex, cpu) = executor::build(&ExecutorConfig {
            bind: info.bind,
            local_rank: info.local_rank as usize,
            local_size: info.local_size as usize,
        })?;
        let (me, size, pid) = (info.rank, info.size, std::process::id());
        let local_size = info.local_size as usize;
        let need_shm = local_size > 1;
        let need_tcp = info.local_size < info.size;

        let mut segment = None;
        // Until every local rank has mapped the segment, its name must go if this rank
        // gives up (a peer or the launcher died during start-up): see `SegmentName`.
        let mut name = None;
        if need_shm && info.local_rank == 0 {
            segment = Some(ShmSegment::create(
                info.job_id,
                info.node_id,
                local_size,
                ShmConfig::for_local_size(local_size),
            )?);
            name = Some(SegmentName {
                job_id: info.job_id,
                node_id: info.node_id,
            });
        }
        let listener = if need_tcp {
            let bind = SocketAddr::new(info.advertise_ip, 0);
            Some(
                ex.run(async { Listener::bind(bind) })
                    .map_err(|e| FabricError::Tcp(format!("cannot listen on {bind}: {e}")))?,
            )
        } else {
            None
        };
        let listen_addr = listener
            .as_ref()
            .map(|l| SocketAddr::new(info.advertise_ip, l.local_addr().port()));
        let addr = listen_addr.map_or("-".to_string(), |a| a.to_string());
        kvs.put(
            &format!("ep-{me}"),
            &format!("{};{addr};{pid}", info.node_id),
        )?;
        kvs.fence()?;
        let mut eps = Vec::with_capacity(size as usize);
        for r in 0..size {
            eps.push(parse_endpoint(r, &kvs.get(&format!("ep-{r}"))?)?);
        }
        let rank_of_local: Vec<u32> = (0..size)
            .filter(|&r| eps[r as usize].node == info.node_id)
            .collect();
        if rank_of_local.len() != local_size
            || rank_of_local.get(info.local_rank as usize) != Some(&me)
        {
            return Err(FabricError::Endpoint {
                rank: me,
                value: format!("{rank_of_local:?}"),
                why: format!(
                    "the launcher says local rank {} of {}, the published node ids disagree",
                    info.local_rank, info.local_size
                ),
            });
        }
        let mut local_of = vec![None; size as usize];
        for (li, &r) in rank_of_local.iter().enumerate() {
            local_of[r as usize] = Some(li);
        }
        if need_shm && info.local_rank != 0 {
            segment = Some(ShmSegment::attach(info.job_id, info.node_id, local_size)?);
        }
        kvs.fence()?;
        if let Some(n) = name.take() {
            // Every local rank has mapped it: remove the name so nothing is left behind,
            // whatever way the job ends.
            n.remove()?;
        }
        let shm: Option<ShmEndpoint> = segment.map(|s| s.endpoint(info.local_rank as usize));
        let paths: Vec<Path> = (0..size)
            .map(|r| {
                if r == me {
                    Path::Loopback
                } else if local_of[r as usize].is_some() {
                    Path::Shm
                } else {
                    Path::Tcp
                }
            })
            .collect();
        let limits = Limits {
            shm_eager: shm.as_ref().map_or(0, |s| s.max_frame() - HEADER_LEN),
            tcp_eager: engine::TCP_EAGER,
            // ZR_SHM_CMA=1 / 0 forces single-copy reads / the pipelined copy through the
            // segment (the only way where the kernel forbids process_vm_readv).
            cma: need_shm
                && cma::available()
                && cma::prefer(
                    std::env::var("ZR_SHM_CMA").ok().as_deref(),
                    local_size,
                    cpus,
                ),
        };
        let pool = BufferPool::new();
        let proto = Protocol::new(info.job_id, me, pid, paths, limits, pool.clone());
        let expect = Expect {
            job: info.job_id,
            rank: me,
            size,
        };
        let pids = eps.iter().map(|e| e.pid).collect();
        let mut ring = None;
        if let Some(listener) = listener {
            let peers: Vec<(u32, Option<SocketAddr>)> = (0..size)
                .filter(|&r| local_of[r as usize].is_none())
                .map(|r| (r, eps[r as usize].addr))
                .collect();
            let conns = ex.run(connect_all(&info, listener, peers))?;
            let cfg = TcpConfig::default();
            let mut r = TcpRing::new(size as usize, pool.clone(), expect, cfg.max_frame_payload)
                .map_err(|e| {
                    FabricError::Tcp(format!("cannot set up the io_uring TCP ring: {e}"))
                })?;
            for (peer, conn) in conns {
                let fd = conn
                    .into_fd()
                    .map_err(|e| FabricError::Tcp(format!("connection to rank {peer}: {e}")))?;
                r.add(peer, fd);
            }
            ring = Some(r);
        }
        let mut eng = Engine::new(
            proto,
            shm,
            rank_of_local,
            local_of.clone(),
            pids,
            expect,
            ring,
            pool.clone(),
        );
        if local_size > cpus {
            eng.spin_limit = wait::SHARED_CORE_SPIN_ROUNDS;
        }
        // Launchers that start ranks as their children and must outlive them. (A manual
        // job's ranks may be started by anything, and a singleton has no launcher.)
        if matches!(
            info.launcher,
            Launcher::Zrun | Launcher::Hydra | Launcher::SlurmPmi2 | Launcher::SlurmEnv
        ) {
            eng.watch_launcher(nix::unistd::getppid().as_raw());
        }
        tracing::debug!(rank = me, size, ?cpu, "rank initialised");
        Ok(Fabric {
            engine: Rc::new(RefCell::new(eng)),
            kvs: RefCell::new(kvs),
            info,
            cpu,
            finalized: Cell::new(false),
            orphans: RefCell::default(),
            coll_publisher: Default::default(),
            coll_hints: (0..local_size).map(|_| Cell::new(0)).collect(),
            listen_addr,
            ex,
        })
    }

    /// Job identity of this rank.
    pub fn info(&self) -> &JobInfo {
        &self.info
    }

    /// This rank.
    pub fn rank(&self) -> u32 {
        self.info.rank
    }

    /// Ranks in the job.
    pub fn size(&self) -> u32 {
        self.info.size
    }

    /// The CPU this rank is pinned to (`None` with `--bind none`).
    pub fn cpu(&self) -> Option<usize> {
        self.cpu
    }

    /// Where this rank accepts TCP connections (only when the job spans several nodes).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// The rank's glommio executor (to run `async` code with `block_on`).
    pub fn executor(&self) -> &LocalExecutor {
        &self.ex
    }

    /// Traffic with `rank` so far.
    pub fn peer_stats(&self, rank: u32) -> PeerStats {
        self.engine.borrow().stats[rank as usize]
    }

    /// Why `rank` is considered failed, if it is.
    pub fn peer_failure(&self, rank: u32) -> Option<String> {
        self.engine.borrow().proto.failure(rank).map(str::to_string)
    }

    /// Start sending `buf` to `dst`.
    ///
    /// # Safety
    /// `buf` must stay valid and unmodified until the request completes (see [`SendBuf`]).
    pub unsafe fn isend(
        &self,
        dst: u32,
        comm: u32,
        tag: i32,
        buf: SendBuf,
        mode: SendMode,
    ) -> ReqId {
        let id = {
            let mut e = self.engine.borrow_mut();
            let id = e.proto.post_send(dst, comm, tag, buf, mode);
            e.start_sends();
            id
        };
        if self.engine.borrow().tcp_queued(dst) > engine::TCP_OUTBOX_LIMIT {
            self.wait_until(move |e| {
                e.tcp_queued(dst) <= engine::TCP_OUTBOX_LIMIT || e.proto.failure(dst).is_some()
            });
        }
        id
    }

    /// Start receiving into `buf` a message `pat` accepts.
    ///
    /// # Safety
    /// `buf` must stay valid and untouched until the request completes (see [`RecvBufRef`]).
    pub unsafe fn irecv(&self, pat: Pattern, buf: RecvBufRef) -> ReqId {
        // Matched against what already arrived; no round of progress (waiting and testing
        // make progress), so posting a window of receives costs no polling.
        self.engine.borrow_mut().proto.post_recv(pat, buf)
    }

    /// Send `buf` and wait until it may be reused.
    pub fn send(
        &self,
        dst: u32,
        comm: u32,
        tag: i32,
        buf: &[u8],
        mode: SendMode,
    ) -> Result<(), OpError> {
        if dst < self.info.size && self.engine.borrow_mut().send_now(dst, comm, tag, buf, mode) {
            return Ok(());
        }
        // SAFETY: the request completes inside this call, while `buf` is borrowed.
        let id = unsafe { self.isend(dst, comm, tag, SendBuf::from_slice(buf), mode) };
        self.wait(id).map(|_| ())
    }

    /// Receive into `buf` and wait for the message.
    pub fn recv(&self, pat: Pattern, buf: &mut [u8]) -> Result<Status, OpError> {
        // SAFETY: the request completes inside this call, while `buf` is borrowed.
        let id = unsafe { self.irecv(pat, RecvBufRef::from_slice(buf)) };
        self.wait(id)
    }

    /// Make progress once; if `id` has completed, remove it and return its outcome.
    pub fn test(&self, id: ReqId) -> Option<Result<Status, OpError>> {
        let mut e = self.engine.borrow_mut();
        if !e.proto.is_done(id) {
            e.progress();
        }
        e.proto.take(id)
    }

    /// The local index of `rank` when it shares this rank's node (and its memory).
    pub fn local_index(&self, rank: u32) -> Option<usize> {
        let e = self.engine.borrow();
        e.shm.as_ref()?;
        e.local_of.get(rank as usize).copied().flatten()
    }

    /// The on-node collective slot of local index `local`, if this rank has local peers.
    /// The view is valid while this fabric lives.
    pub fn coll_slot(&self, local: usize) -> Option<crate::shm::collslot::CollSlot> {
        let e = self.engine.borrow();
        let shm = e.shm.as_ref()?;
        (local < shm.local_size()).then(|| shm.coll_slot(local))
    }

    /// Where to look first for the next publication of local rank `local`: the area after
    /// the one its last publication was found in (see `CollSlot::ready`).
    #[inline]
    pub fn coll_hint(&self, local: usize) -> usize {
        self.coll_hints
            .get(local)
            .map_or(0, |h| usize::from(h.get()))
    }

    /// Record that local rank `local`'s publication was found in `area`.
    #[inline]
    pub fn set_coll_hint(&self, local: usize, area: usize) {
        const _: () = assert!(crate::shm::collslot::AREAS <= 256, "an area fits a hint");
        if let Some(h) = self.coll_hints.get(local) {
            h.set(((area + 1) % crate::shm::collslot::AREAS) as u8);
        }
    }

    /// Can this rank read its local peers' memory directly (`process_vm_readv`, see
    /// [`cma::available`])?
    pub fn can_read_local_peers(&self) -> bool {
        cma::available()
    }

    /// Read `dst.len()` bytes at address `addr` in the memory of local rank `rank`: one
    /// copy, made by the kernel. The peer must keep those bytes unchanged until told that
    /// the read is over.
    pub fn read_local_peer(&self, rank: u32, addr: u64, dst: &mut [u8]) -> Result<(), OpError> {
        let pid = {
            let e = self.engine.borrow();
            assert!(
                e.local_of.get(rank as usize).is_some_and(Option::is_some),
                "rank {rank} is not on this node"
            );
            e.pids[rank as usize]
        };
        cma::read(pid, addr, dst).map_err(|e| OpError::Copy {
            rank,
            reason: e.to_string(),
        })
    }

    /// The publisher's side of this rank's own collective slot (which area is next, the
    /// releases asked of each; see [`crate::shm::collslot`]).
    #[inline]
    pub fn coll_publisher(&self) -> &crate::shm::collslot::Publisher {
        &self.coll_publisher
    }

    /// Wait until `cond` holds, making progress on all traffic meanwhile (a peer may need
    /// this rank to drain its rings), yielding when it takes long (ranks may share cores)
    /// and then letting glommio's tasks run every `wait::RUNTIME_PERIOD`, and failing
    /// if one of `peers` (world ranks) fails.
    ///
    /// Unlike the waits on requests (`wait::wait_sync`) it never sleeps on the doorbell:
    /// a publication in a collective slot rings no doorbell, so a sleeper would only wake
    /// at the end of its nap.
    pub fn wait_for(&self, peers: &[u32], mut cond: impl FnMut() -> bool) -> Result<(), OpError> {
        let mut rounds: u32 = 0;
        let mut liveness = wait::Liveness::default();
        let spin_limit = self.engine.borrow().spin_limit;
        loop {
            if cond() {
                return Ok(());
            }
            rounds = rounds.saturating_add(1);
            if rounds.is_multiple_of(16) {
                let mut e = self.engine.borrow_mut();
                e.progress();
                if let Some(&p) = peers.iter().find(|&&p| e.proto.failure(p).is_some()) {
                    return Err(OpError::PeerFailed {
                        rank: p,
                        reason: e.proto.failure(p).unwrap_or_default().to_string(),
                    });
                }
            }
            if rounds > spin_limit {
                std::thread::yield_now();
                liveness.check_if_due(&mut self.engine.borrow_mut());
                // Let glommio's tasks run now and then, as the waits on requests do: a
                // rank waiting here for long would otherwise leave them silent (a ring
                // group's member, whose neighbours then take it for failed).
                wait::run_runtime_if_due(&self.engine, &self.ex);
            }
        }
    }

    /// Make progress once (one round over shared memory and TCP); did anything move?
    pub fn progress(&self) -> bool {
        self.engine.borrow_mut().progress()
    }

    /// Has `id` completed, as far as is known now? (No progress; does not remove it.)
    pub fn is_done_now(&self, id: ReqId) -> bool {
        self.engine.borrow().proto.is_done(id)
    }

    /// One round of a wait over several requests that the caller polls itself: progress
    /// once, and give the CPU away when nothing moved (ranks may share cores).
    pub fn idle_round(&self) {
        if !self.progress() {
            std::thread::yield_now();
        }
    }

    /// Has `id` completed? (Does not remove it.)
    pub fn is_done(&self, id: ReqId) -> bool {
        let mut e = self.engine.borrow_mut();
        e.progress();
        e.proto.is_done(id)
    }

    /// Wait for `id` and return its outcome.
    pub fn wait(&self, id: ReqId) -> Result<Status, OpError> {
        // Completed already (an eager send that went straight into its ring): no round of
        // progress, no waiter.
        if let Some(r) = self.engine.borrow_mut().proto.take(id) {
            return r;
        }
        self.wait_until(|e| e.proto.is_done(id));
        self.engine
            .borrow_mut()
            .proto
            .take(id)
            .expect("completed request")
    }

    /// Wait for `id` inside the runtime (from `async` code run by [`Fabric::block_on`]).
    pub async fn wait_async(&self, id: ReqId) -> Result<Status, OpError> {
        wait::wait_in_runtime(&self.engine, |e| e.proto.is_done(id)).await;
        self.engine
            .borrow_mut()
            .proto
            .take(id)
            .expect("completed request")
    }

    /// Keep `keep` (the buffer of request `id`) alive until `id` completes; for `async`
    /// operations whose future was dropped.
    pub fn adopt(&self, id: ReqId, keep: Box<dyn std::any::Any>) {
        self.orphans.borrow_mut().push((id, keep));
    }

    fn sweep_orphans(&self) {
        let mut orphans = self.orphans.borrow_mut();
        if orphans.is_empty() {
            return;
        }
        let mut e = self.engine.borrow_mut();
        orphans.retain(|(id, _)| match e.proto.take(*id) {
            None => true,
            Some(r) => {
                if let Err(err) = r {
                    tracing::debug!(error = %err, "abandoned request failed");
                }
                false
            }
        });
    }

    /// Wait inside the runtime until a message `pat` accepts is waiting.
    pub async fn probe_async(&self, pat: &Pattern) -> Result<(Envelope, usize), OpError> {
        let mut found = None;
        wait::wait_in_runtime(&self.engine, |e| {
            found = Some(probe_or_fail(e, pat));
            !matches!(found, Some(Ok(None)))
        })
        .await;
        found.expect("the condition ran").map(|f| f.expect("found"))
    }

    /// Cancel a receive that has not matched. False if it already matched.
    pub fn cancel(&self, id: ReqId) -> bool {
        self.engine.borrow_mut().proto.cancel_recv(id)
    }

    /// Is a message `pat` accepts waiting? Its envelope and length in bytes.
    pub fn iprobe(&self, pat: &Pattern) -> Result<Option<(Envelope, usize)>, OpError> {
        let mut e = self.engine.borrow_mut();
        e.progress();
        probe_or_fail(&e, pat)
    }

    /// Wait until a message `pat` accepts is waiting; its envelope and length.
    pub fn probe(&self, pat: &Pattern) -> Result<(Envelope, usize), OpError> {
        let mut found = None;
        self.wait_until(|e| {
            found = Some(probe_or_fail(e, pat));
            !matches!(found, Some(Ok(None)))
        });
        found.expect("the condition ran").map(|f| f.expect("found"))
    }

    /// Run `fut` to completion on this rank's executor.
    pub fn block_on<T>(&self, fut: impl std::future::Future<Output = T>) -> T {
        self.ex.run(fut)
    }

    fn wait_until(&self, cond: impl FnMut(&mut Engine) -> bool) {
        self.sweep_orphans();
        wait::wait_sync(&self.engine, &self.ex, cond);
    }

    /// Flush outgoing traffic, synchronise with every rank and close connections.
    /// Called by drop if not called before.
    pub fn finalize(&self) -> Result<(), FabricError> {
        if self.finalized.replace(true) {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let orphans: Vec<ReqId> = self.orphans.borrow().iter().map(|(id, _)| *id).collect();
        self.wait_until(|e| {
            (orphans.iter().all(|&id| e.proto.is_done(id)) && !e.has_outgoing())
                || Instant::now() > deadline
        });
        self.sweep_orphans();
        if self.engine.borrow().has_outgoing() {
            tracing::warn!("finalize: outgoing messages still queued after 60 s");
        }
        let mut kvs = self.kvs.borrow_mut();
        kvs.fence()?;
        if let Some(ring) = self.engine.borrow_mut().tcp.as_mut() {
            ring.close();
        }
        kvs.finalize()?;
        Ok(())
    }
}

fn probe_or_fail(e: &Engine, pat: &Pattern) -> Result<Option<(Envelope, usize)>, OpError> {
    if let Some(found) = e.proto.probe(pat) {
        return Ok(Some(found));
    }
    if let Some(src) = pat.src {
        if let Some(reason) = e.proto.failure(src) {
            return Err(OpError::PeerFailed {
                rank: src,
                reason: reason.to_string(),
            });
        }
    }
    Ok(None)
}

/// The name of a segment this rank created, removed on drop: held while start-up may
/// still fail, so that an early return leaves nothing in `/dev/shm` (the ranks that did
/// map it keep their mapping).
struct SegmentName {
    job_id: u64,
    node_id: u32,
}

impl SegmentName {
    fn remove(self) -> Result<(), ShmError> {
        let r = ShmSegment::unlink(self.job_id, self.node_id);
        std::mem::forget(self);
        r
    }
}

impl Drop for SegmentName {
    fn drop(&mut self) {
        if let Err(e) = ShmSegment::unlink(self.job_id, self.node_id) {
            tracing::warn!(error = %e, "start-up failed and the segment could not be removed");
        }
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        if let Err(e) = self.finalize() {
            tracing::error!(error = %e, "finalize failed");
        }
    }
}

/// Establish authenticated connections with every rank on another node: this rank
/// connects to lower ranks and accepts higher ones. The accept loop keeps running for the
/// whole job (whenever the executor runs), so a stray or hostile connection later is
/// refused and logged too. Returns the connections, for the io_uring data path.
async fn connect_all(
    info: &JobInfo,
    listener: Listener,
    peers: Vec<(u32, Option<SocketAddr>)>,
) -> Result<Vec<(u32, tcp::TcpConn)>, FabricError> {
    let cfg = TcpConfig::default();
    let me = info.rank;
    let errors: Rc<RefCell<Vec<String>>> = Rc::default();
    let conns: Rc<RefCell<Vec<(u32, tcp::TcpConn)>>> = Rc::default();
    let accept_from: Vec<u32> = peers.iter().map(|p| p.0).filter(|&r| r > me).collect();
    {
        let (conns, cfg, secret, job, size) = (
            conns.clone(),
            cfg.clone(),
            info.secret,
            info.job_id,
            info.size,
        );
        let accepted: Rc<RefCell<Vec<u32>>> = Rc::default();
        glommio::spawn_local(async move {
            loop {
                let incoming = match listener.accept_stream().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        glommio::timer::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                };
                // Each handshake on a task of its own: a connection that says nothing
                // holds up no rank behind it for the handshake timeout.
                let (conns, accepted, accept_from, cfg) = (
                    conns.clone(),
                    accepted.clone(),
                    accept_from.clone(),
                    cfg.clone(),
                );
                glommio::spawn_local(async move {
                    // A refusal is logged by the TCP layer with the peer's address.
                    let Ok((peer, conn)) =
                        incoming.authenticate(job, me, size, &secret, &cfg).await
                    else {
                        return;
                    };
                    if accept_from.contains(&peer) && !accepted.borrow().contains(&peer) {
                        tracing::debug!(peer, "accepted connection");
                        accepted.borrow_mut().push(peer);
                        conns.borrow_mut().push((peer, conn));
                    } else {
                        tracing::warn!(
                            peer,
                            "refused connection: rank {peer} is not expected to connect here"
                        );
                    }
                })
                .detach();
            }
        })
        .detach();
    }
    for &(peer, addr) in peers.iter().filter(|p| p.0 < me) {
        let Some(addr) = addr else {
            return Err(FabricError::Endpoint {
                rank: peer,
                value: "-".into(),
                why: "no TCP address published".into(),
            });
        };
        let (conns, cfg, secret, job, errors) = (
            conns.clone(),
            cfg.clone(),
            info.secret,
            info.job_id,
            errors.clone(),
        );
        glommio::spawn_local(async move {
            match tcp::connect(addr, job, me, peer, &secret, &cfg).await {
                Ok(conn) => conns.borrow_mut().push((peer, conn)),
                Err(e) => errors
                    .borrow_mut()
                    .push(format!("rank {peer} at {addr}: {e}")),
            }
        })
        .detach();
    }
    let deadline = Instant::now() + cfg.connect_timeout + cfg.handshake_timeout * 2;
    loop {
        if !errors.borrow().is_empty() {
            return Err(FabricError::Tcp(errors.borrow().join("; ")));
        }
        let missing: Vec<u32> = peers
            .iter()
            .map(|p| p.0)
            .filter(|r| !conns.borrow().iter().any(|(c, _)| c == r))
            .collect();
        if missing.is_empty() {
            return Ok(std::mem::take(&mut *conns.borrow_mut()));
        }
        if Instant::now() > deadline {
            return Err(FabricError::Tcp(format!(
                "no connection from ranks {missing:?} within {:?}",
                cfg.connect_timeout
            )));
        }
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}
