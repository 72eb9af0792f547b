//! The engine: carries out the protocol's actions on shared memory and TCP, and feeds it
//! the frames that arrive. Everything here is synchronous and allocation-free on the
//! shared-memory fast path; TCP frames go through the io_uring ring of [`TcpRing`].

use super::protocol::{Action, Path, Payload, Protocol, ReqId, SendMode};
use super::stats::PeerStats;
use super::tcpring::{LinkEvent, OutFrame, OutPayload, TcpRing};
use super::userbuf::SendBuf;
use crate::shm::{cma, ShmEndpoint};
use std::collections::VecDeque;
use zerorank_core::buffer::BufferPool;
use zerorank_core::frame::{access_checked, Expect, FrameHeader, FrameKind, HEADER_LEN};
use zerorank_core::small_frame::{access_small, SmallHeader, SMALL_HEADER_LEN};

/// Largest `Data` chunk over TCP.
pub const TCP_CHUNK: usize = 1 << 20;
/// Largest eager message over TCP.
pub const TCP_EAGER: usize = 64 << 10;
/// Outgoing TCP bytes queued per peer before a sender waits for the socket.
pub const TCP_OUTBOX_LIMIT: usize = 64 << 20;
/// Frames taken from one ring per progress round (fairness between peers).
const RING_BATCH: usize = 32;

/// Work held back because a ring was full; kept in order per peer.
enum Backlog {
    Frame {
        header: FrameHeader,
        payload: Payload,
        complete: Option<ReqId>,
    },
    Stream {
        comm: u32,
        cookie: u64,
        buf: SendBuf,
        len: usize,
        off: usize,
        req: ReqId,
    },
}

/// The per-rank engine.
pub(crate) struct Engine {
    pub proto: Protocol,
    pub shm: Option<ShmEndpoint>,
    /// World rank of each local index.
    pub rank_of_local: Vec<u32>,
    /// Local index of each world rank on this node.
    pub local_of: Vec<Option<usize>>,
    pub pids: Vec<i32>,
    pub stats: Vec<PeerStats>,
    pub expect: Expect,
    pub tcp: Option<TcpRing>,
    pub pool: BufferPool,
    /// Rounds spent waiting, over the rank's life (paces the runtime's ticks).
    pub wait_rounds: u64,
    /// Rounds a waiter spins before it yields: [`wait::SPIN_ROUNDS`] when every local rank
    /// has a core of its own, far fewer when ranks share cores (a spinning rank would hold
    /// the core its peer needs for a whole time slice).
    pub spin_limit: u32,
    /// When glommio last ran (connection management), over the rank's life.
    pub last_runtime: std::time::Instant,
    events: VecDeque<LinkEvent>,
    backlog: Vec<VecDeque<Backlog>>,
    /// Items held in all backlogs (so the fast path skips the scan when there are none).
    backlog_len: usize,
    /// The launcher to watch (see [`Engine::watch_launcher`]).
    launcher: Option<i32>,
    me_local: usize,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        proto: Protocol,
        shm: Option<ShmEndpoint>,
        rank_of_local: Vec<u32>,
        local_of: Vec<Option<usize>>,
        pids: Vec<i32>,
        expect: Expect,
        tcp: Option<TcpRing>,
        pool: BufferPool,
    ) -> Self {
        let n = expect.size as usize;
        let stats = (0..n as u32)
            .map(|r| PeerStats::new(proto.path(r)))
            .collect();
        let me_local = local_of[expect.rank as usize].expect("this rank is local to itself");
        Engine {
            proto,
            shm,
            rank_of_local,
            local_of,
            pids,
            stats,
            expect,
            tcp,
            pool,
            wait_rounds: 0,
            spin_limit: super::wait::SPIN_ROUNDS,
            last_runtime: std::time::Instant::now(),
            events: VecDeque::new(),
            backlog: (0..n).map(|_| VecDeque::new()).collect(),
            backlog_len: 0,
            launcher: None,
            me_local,
        }
    }

    /// One round of progress. Returns true if anything moved.
    ///
    /// Outgoing work goes first, so a frame just posted leaves before the incoming rings
    /// are polled; actions that incoming frames cause (clear-to-send, finish) go out in
    /// the same round.
    pub fn progress(&mut self) -> bool {
        let mut moved = self.run_actions();
        moved |= self.poll_shm();
        if self.tcp.is_some() {
            moved |= self.poll_tcp();
        }
        moved |= self.run_actions();
        if self.backlog_len > 0 {
            moved |= self.flush_backlogs();
        }
        moved
    }

    /// Put what the protocol wants sent on its way, without polling shared memory for
    /// incoming frames (used right after posting a send: an eager frame enters its ring at
    /// once, and a TCP frame is handed to the socket).
    pub fn start_sends(&mut self) {
        self.run_actions();
        if self.tcp.is_some() && self.poll_tcp() {
            self.run_actions();
        }
    }

    fn poll_shm(&mut self) -> bool {
        let Some(shm) = self.shm.as_ref() else {
            return false;
        };
        let mut moved = false;
        let mut failed = None;
        for li in 0..self.rank_of_local.len() {
            if li == self.me_local {
                continue;
            }
            let src = self.rank_of_local[li];
            for _ in 0..RING_BATCH {
                let (proto, stats, expect) = (&mut self.proto, &mut self.stats, &self.expect);
                let r = shm.try_recv(li, |tag, bytes| -> Result<(), String> {
                    let (h, payload) = check_shm_frame(tag, bytes, src, expect)?;
                    stats[src as usize].frames_received += 1;
                    proto
                        .on_frame(Path::Shm, &h, payload)
                        .map_err(|e| e.to_string())
                });
                match r {
                    None => break,
                    Some(Ok(())) => moved = true,
                    Some(Err(reason)) => {
                        failed = Some((src, reason));
                        break;
                    }
                }
            }
        }
        if let Some((src, reason)) = failed {
            tracing::error!(rank = src, %reason, "bad frame in shared memory");
            self.fail_peer(src, &format!("bad frame in shared memory: {reason}"));
        }
        moved
    }

    fn poll_tcp(&mut self) -> bool {
        let Some(ring) = self.tcp.as_mut() else {
            return false;
        };
        if !ring.poll(&mut self.events) && self.events.is_empty() {
            return false;
        }
        while let Some(ev) = self.events.pop_front() {
            match ev {
                LinkEvent::Frame(peer, buf) => {
                    let bytes = buf.as_slice();
                    let r = access_checked(bytes, &self.expect)
                        .map_err(|e| e.to_string())
                        .and_then(|h| {
                            debug_assert_eq!(
                                h.src.to_native(),
                                peer,
                                "the ring checked the source"
                            );
                            self.stats[peer as usize].frames_received += 1;
                            self.proto
                                .on_frame(Path::Tcp, &h.to_native(), &bytes[HEADER_LEN..])
                                .map_err(|e| e.to_string())
                        });
                    if let Err(reason) = r {
                        tracing::error!(rank = peer, %reason, "bad frame over TCP");
                        self.fail_peer(peer, &format!("bad frame over TCP: {reason}"));
                    }
                }
                LinkEvent::Sent(id) => self.proto.send_copied(id),
                LinkEvent::Failed(peer, reason) => self.fail_requests(peer, &reason),
            }
        }
        true
    }

    /// Poll the incoming rings (their control lines only) up to `polls` times, while
    /// nothing else can move: no action or backlog to carry out and no TCP ring to poll.
    /// Returns as soon as a frame is waiting.
    #[inline]
    pub fn spin_for_incoming(&self, polls: u32) {
        let Some(shm) = self.shm.as_ref() else {
            return;
        };
        if self.tcp.is_some() || self.backlog_len > 0 || self.proto.has_actions() {
            return;
        }
        for _ in 0..polls {
            if shm.has_incoming() {
                return;
            }
        }
    }

    /// Sleep until TCP has news or `timeout` passes (no TCP: just sleep on shared memory).
    pub fn sleep(&mut self, timeout: std::time::Duration) {
        match (self.tcp.as_mut(), self.shm.as_ref()) {
            (Some(ring), Some(_)) => ring.wait(timeout.min(super::wait::SHM_NAP_WITH_TCP)),
            (Some(ring), None) => ring.wait(timeout),
            (None, Some(shm)) => shm.wait(timeout),
            (None, None) => std::thread::sleep(timeout),
        }
    }

    /// Bytes queued toward `peer` over TCP and not yet sent.
    pub fn tcp_queued(&self, peer: u32) -> usize {
        self.tcp.as_ref().map_or(0, |r| r.queued_bytes(peer))
    }

    /// Treat `rank` as failed. A TCP peer's connection is closed first and its requests
    /// fail once no send reading a user buffer is in flight on it.
    pub fn fail_peer(&mut self, rank: u32, reason: &str) {
        if self.proto.path(rank) == Path::Tcp {
            if let Some(ring) = self.tcp.as_mut() {
                ring.fail(rank, reason.to_string(), &mut self.events);
                return; // reported through `events`, handled by `poll_tcp`
            }
        }
        self.fail_requests(rank, reason);
    }

    fn fail_requests(&mut self, rank: u32, reason: &str) {
        self.backlog_len -= self.backlog[rank as usize].len();
        self.backlog[rank as usize].clear();
        self.proto.peer_failed(rank, reason);
    }

    fn run_actions(&mut self) -> bool {
        let mut moved = false;
        while let Some(a) = self.proto.poll_action() {
            moved = true;
            match a {
                Action::Frame {
                    to,
                    header,
                    payload,
                    complete,
                } => {
                    self.submit(
                        to,
                        Backlog::Frame {
                            header,
                            payload,
                            complete,
                        },
                    );
                }
                Action::Stream {
                    to,
                    comm,
                    cookie,
                    buf,
                    len,
                    req,
                } => {
                    self.submit(
                        to,
                        Backlog::Stream {
                            comm,
                            cookie,
                            buf,
                            len,
                            off: 0,
                            req,
                        },
                    );
                }
                Action::CmaRead {
                    req,
                    src,
                    pid,
                    addr,
                    len,
                } => self.cma_read(req, src, pid, addr, len),
            }
        }
        moved
    }

    fn cma_read(&mut self, req: ReqId, src: u32, pid: u32, addr: u64, len: usize) {
        let Some(target) = self.proto.recv_target(req) else {
            return;
        };
        match cma::read(pid as i32, addr, target.slice_mut(0, len)) {
            Ok(()) => {
                self.stats[src as usize].bytes_read_cma += len as u64;
                self.proto.cma_done(req);
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                self.fail_peer(src, &format!("process {pid} is gone"));
            }
            Err(e) => self.proto.cma_failed(req, &e.to_string()),
        }
    }

    fn submit(&mut self, to: u32, item: Backlog) {
        if self.proto.failure(to).is_some() {
            return; // its requests were failed already
        }
        match self.proto.path(to) {
            Path::Tcp => self.submit_tcp(to, item),
            Path::Shm => {
                if let (
                    true,
                    Backlog::Frame {
                        header,
                        payload,
                        complete,
                    },
                ) = (self.backlog[to as usize].is_empty(), &item)
                {
                    // Fast path: nothing queued ahead, straight into the ring.
                    let (header, payload, complete) = (*header, *payload, *complete);
                    if self.try_send_frame(to, header, &payload, complete) {
                        return;
                    }
                }
                self.backlog[to as usize].push_back(item);
                self.backlog_len += 1;
                self.flush_peer(to);
            }
            Path::Loopback => unreachable!("the protocol delivers to itself without frames"),
        }
    }

    fn submit_tcp(&mut self, to: u32, item: Backlog) {
        match item {
            Backlog::Frame {
                mut header,
                payload,
                complete,
            } => {
                header.seq = self.proto.next_seq(to);
                let (payload, complete, bytes) = match payload {
                    Payload::None => (OutPayload::None, complete, 0),
                    Payload::User { buf, off, len } => {
                        // Eager: copy now so the send completes at once (MPI buffered eager).
                        let mut copy = self.pool.get(len);
                        copy.as_mut_slice().copy_from_slice(buf.slice(off, len));
                        if let Some(id) = complete {
                            self.proto.send_copied(id);
                        }
                        (OutPayload::Owned(copy), None, len)
                    }
                };
                self.count_sent(to, bytes);
                let frame = OutFrame::new(&header.to_bytes(), payload, complete);
                self.tcp.as_mut().expect("TCP peer without a ring").queue(
                    to,
                    frame,
                    &mut self.events,
                );
            }
            Backlog::Stream {
                comm,
                cookie,
                buf,
                len,
                off: _,
                req,
            } => {
                let mut off = 0;
                while off < len {
                    let n = TCP_CHUNK.min(len - off);
                    let seq = self.proto.next_seq(to);
                    let header = self.data_header(to, seq, comm, cookie, off, n);
                    let last = off + n == len;
                    self.count_sent(to, n);
                    let frame = OutFrame::new(
                        &header.to_bytes(),
                        OutPayload::User(buf, off, n),
                        last.then_some(req),
                    );
                    self.tcp.as_mut().expect("TCP peer without a ring").queue(
                        to,
                        frame,
                        &mut self.events,
                    );
                    off += n;
                }
            }
        }
    }

    fn count_sent(&mut self, to: u32, bytes: usize) {
        let s = &mut self.stats[to as usize];
        s.frames_sent += 1;
        s.bytes_sent += bytes as u64;
    }

    fn data_header(
        &self,
        to: u32,
        seq: u64,
        comm: u32,
        cookie: u64,
        off: usize,
        n: usize,
    ) -> FrameHeader {
        FrameHeader {
            job: self.expect.job,
            comm,
            src: self.expect.rank,
            dst: to,
            tag: 0,
            seq,
            len: n as u64,
            cookie,
            addr: off as u64,
            pid: 0,
            kind: FrameKind::Data,
        }
    }

    fn flush_backlogs(&mut self) -> bool {
        let mut moved = false;
        for to in 0..self.backlog.len() {
            if !self.backlog[to].is_empty() {
                moved |= self.flush_peer(to as u32);
            }
        }
        moved
    }

    /// Push as much of `to`'s backlog into its ring as fits. Returns true if anything went.
    fn flush_peer(&mut self, to: u32) -> bool {
        let Some(max_frame) = self.shm.as_ref().map(ShmEndpoint::max_frame) else {
            return false;
        };
        let max_payload = max_frame - HEADER_LEN;
        let mut moved = false;
        while let Some(item) = self.backlog[to as usize].front_mut() {
            match item {
                Backlog::Frame {
                    header,
                    payload,
                    complete,
                } => {
                    let (header, payload, complete) = (*header, *payload, *complete);
                    if !self.try_send_frame(to, header, &payload, complete) {
                        break;
                    }
                    self.backlog[to as usize].pop_front();
                    self.backlog_len -= 1;
                    moved = true;
                }
                Backlog::Stream {
                    comm,
                    cookie,
                    buf,
                    len,
                    off,
                    req,
                } => {
                    let (comm, cookie, buf, len, req) = (*comm, *cookie, *buf, *len, *req);
                    let mut pos = *off;
                    while pos < len {
                        let n = max_payload.min(len - pos);
                        // Sequence number 0: `push_frame` stamps it as the frame goes in.
                        let header = self.data_header(to, 0, comm, cookie, pos, n);
                        if !self.push_frame(to, header, buf.slice(pos, n)) {
                            break;
                        }
                        pos += n;
                        moved = true;
                    }
                    if pos < len {
                        if let Some(Backlog::Stream { off, .. }) =
                            self.backlog[to as usize].front_mut()
                        {
                            *off = pos;
                        }
                        break;
                    }
                    self.backlog[to as usize].pop_front();
                    self.backlog_len -= 1;
                    self.proto.send_copied(req);
                }
            }
        }
        moved
    }

    /// Push one frame into `to`'s ring. False if the ring is full.
    fn try_send_frame(
        &mut self,
        to: u32,
        header: FrameHeader,
        payload: &Payload,
        complete: Option<ReqId>,
    ) -> bool {
        let body = match payload {
            Payload::None => &[][..],
            Payload::User { buf, off, len } => buf.slice(*off, *len),
        };
        if !self.push_frame(to, header, body) {
            return false;
        }
        if let Some(id) = complete {
            self.proto.send_copied(id);
        }
        true
    }

    /// Push `header` (stamped with the next sequence number toward `to`) and `body` into
    /// `to`'s ring. False if the ring is full; the sequence number is then not used.
    #[inline]
    fn push_frame(&mut self, to: u32, mut header: FrameHeader, body: &[u8]) -> bool {
        let shm = self
            .shm
            .as_ref()
            .expect("shared-memory peer without a segment");
        let li = self.local_of[to as usize].expect("shared-memory peer has a local index");
        header.seq = self.proto.send_seq_peek(to) + 1;
        // The header is encoded straight into the slot, the body copied after it. An eager
        // message takes the compact header, so that a small one shares the cache line of
        // the slot's flag.
        let sent = match SmallHeader::of_eager(&header) {
            Some(small) => {
                let len = SMALL_HEADER_LEN + body.len();
                shm.try_send_with(li, SHM_SMALL, &[], len, |frame| {
                    let (head, rest) = frame.split_at_mut(SMALL_HEADER_LEN);
                    small.encode_into(head);
                    crate::shm::copy::copy(rest, body);
                })
            }
            None => shm.try_send_with(li, SHM_FULL, &[], HEADER_LEN + body.len(), |frame| {
                let (head, rest) = frame.split_at_mut(HEADER_LEN);
                header.encode_into(head);
                crate::shm::copy::copy(rest, body);
            }),
        };
        if !sent {
            return false;
        }
        let _ = self.proto.next_seq(to);
        let s = &mut self.stats[to as usize];
        s.frames_sent += 1;
        s.bytes_sent += body.len() as u64;
        true
    }

    /// Send `buf` to `dst` at once as one eager shared-memory frame, with no request, if
    /// the protocol allows it and the ring has room with nothing queued ahead. False
    /// otherwise: nothing was sent and the caller posts a request. The bytes are copied
    /// into the ring before this returns.
    pub fn send_now(&mut self, dst: u32, comm: u32, tag: i32, buf: &[u8], mode: SendMode) -> bool {
        // Frames already on their way to `dst` (held back, or still an action) go first:
        // messages from one sender never overtake each other.
        if !self.backlog[dst as usize].is_empty() || self.proto.has_actions() {
            return false;
        }
        match self.proto.eager_header(dst, comm, tag, buf.len(), mode) {
            Some(header) => self.push_frame(dst, header, buf),
            None => false,
        }
    }

    /// Is anything still queued toward peers (shared-memory backlog or TCP outbox)?
    pub fn has_outgoing(&self) -> bool {
        debug_assert_eq!(
            self.backlog_len,
            self.backlog.iter().map(VecDeque::len).sum::<usize>()
        );
        self.backlog_len > 0 || self.tcp.as_ref().is_some_and(TcpRing::has_outgoing)
    }

    /// The launcher process that must outlive this rank (`zrun`, Hydra's proxy,
    /// `slurmstepd`): it is this process's parent. Checked by [`Engine::check_launcher`].
    pub fn watch_launcher(&mut self, pid: i32) {
        self.launcher = Some(pid);
    }

    /// If the launcher exited (this process was re-parented), the job cannot finish: fail
    /// every peer, so that what this rank waits for ends with an error naming the cause
    /// instead of spinning or sleeping forever as an orphan.
    pub fn check_launcher(&mut self) {
        let Some(pid) = self.launcher else { return };
        if nix::unistd::getppid().as_raw() == pid {
            return;
        }
        self.launcher = None;
        let reason = format!("the launcher (process {pid}) exited, so the job cannot finish");
        tracing::error!(rank = self.expect.rank, "{reason}");
        let (me, size) = (self.expect.rank, self.expect.size);
        for rank in (0..size).filter(|&r| r != me) {
            if self.proto.failure(rank).is_none() {
                self.fail_peer(rank, &reason);
            }
        }
    }

    /// Check that shared-memory peers are still alive; fail the ones that are gone.
    pub fn check_local_peers(&mut self) {
        for li in 0..self.rank_of_local.len() {
            let rank = self.rank_of_local[li];
            if li == self.me_local || self.proto.failure(rank).is_some() {
                continue;
            }
            let pid = self.pids[rank as usize];
            // Signal 0 only checks that the process exists.
            let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                == Err(nix::errno::Errno::ESRCH);
            if gone {
                self.fail_peer(rank, &format!("process {pid} exited"));
            }
        }
    }
}

/// Ring tag of a shared-memory frame with a full [`FrameHeader`].
const SHM_FULL: u32 = 0;
/// Ring tag of a shared-memory eager frame with a compact [`SmallHeader`].
const SHM_SMALL: u32 = 1;

/// Validate a frame taken from the ring of local peer `src` and return its header and
/// payload. The ring's tag says which header it has. A compact header is checked against
/// the frame's length, and the ring supplies job, source and destination. A full header
/// is checked for shape, job, ranks and length, for the claim that it comes from `src`,
/// and that the slot holds exactly the frame the header describes.
#[inline]
fn check_shm_frame<'a>(
    tag: u32,
    bytes: &'a [u8],
    src: u32,
    expect: &Expect,
) -> Result<(FrameHeader, &'a [u8]), String> {
    match tag {
        SHM_SMALL => {
            let (h, payload) = access_small(bytes).map_err(|e| e.to_string())?;
            return Ok((h.to_frame_header(expect.job, src, expect.rank), payload));
        }
        SHM_FULL => {}
        _ => return Err(format!("unknown frame format {tag}")),
    }
    let h = access_checked(bytes, expect).map_err(|e| e.to_string())?;
    if h.src.to_native() != src {
        return Err(format!(
            "frame claims rank {} on the ring of rank {src}",
            h.src.to_native()
        ));
    }
    let n = h.payload_len();
    if bytes.len() != HEADER_LEN + n {
        return Err(format!(
            "slot holds {} bytes, header says {}",
            bytes.len(),
            HEADER_LEN + n
        ));
    }
    Ok((h.to_native(), &bytes[HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerorank_core::frame::HeaderBytes;

    #[repr(C, align(64))]
    struct Slot([u8; 256]);

    const EXPECT: Expect = Expect {
        job: 0x10b,
        rank: 1,
        size: 3,
    };

    fn eager(len: u64) -> FrameHeader {
        FrameHeader {
            job: EXPECT.job,
            comm: 4,
            src: 2,
            dst: 1,
            tag: 9,
            seq: 5,
            len,
            kind: FrameKind::Eager,
            ..FrameHeader::default()
        }
    }

    #[test]
    fn small_frames_take_job_and_ranks_from_the_ring() {
        let mut slot = Slot([0; 256]);
        let h = eager(3);
        SmallHeader::of_eager(&h).unwrap().encode_into(&mut slot.0);
        slot.0[SMALL_HEADER_LEN..SMALL_HEADER_LEN + 3].copy_from_slice(b"abc");
        let (got, payload) =
            check_shm_frame(SHM_SMALL, &slot.0[..SMALL_HEADER_LEN + 3], 2, &EXPECT).unwrap();
        assert_eq!((got, payload), (h, &b"abc"[..]));
        // A length that disagrees with the slot is refused, with the reason.
        let err =
            check_shm_frame(SHM_SMALL, &slot.0[..SMALL_HEADER_LEN + 2], 2, &EXPECT).unwrap_err();
        assert!(err.contains("says 3"), "{err}");
        let err = check_shm_frame(SHM_SMALL, &slot.0[..7], 2, &EXPECT).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let err = check_shm_frame(9, &slot.0[..SMALL_HEADER_LEN + 3], 2, &EXPECT).unwrap_err();
        assert!(err.contains("unknown frame format 9"), "{err}");
    }

    #[test]
    fn full_frames_are_checked_against_the_ring_and_the_slot() {
        let mut slot = Slot([0; 256]);
        let h = eager(100);
        h.encode_into(&mut slot.0);
        let (got, payload) =
            check_shm_frame(SHM_FULL, &slot.0[..HEADER_LEN + 100], 2, &EXPECT).unwrap();
        assert_eq!((got, payload.len()), (h, 100));
        let err = check_shm_frame(SHM_FULL, &slot.0[..HEADER_LEN + 100], 0, &EXPECT).unwrap_err();
        assert!(err.contains("claims rank 2 on the ring of rank 0"), "{err}");
        let err = check_shm_frame(SHM_FULL, &slot.0[..HEADER_LEN + 99], 2, &EXPECT).unwrap_err();
        assert!(err.contains("slot holds"), "{err}");
        let foreign = FrameHeader { job: 7, ..h }.to_bytes();
        let mut other = Slot([0; 256]);
        other.0[..HEADER_LEN].copy_from_slice(HeaderBytes::as_slice(&foreign));
        let err = check_shm_frame(SHM_FULL, &other.0[..HEADER_LEN + 100], 2, &EXPECT).unwrap_err();
        assert!(err.contains("job"), "{err}");
    }
}
