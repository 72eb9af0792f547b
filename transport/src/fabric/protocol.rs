//! The point-to-point protocol of one rank, sans-IO.
//!
//! [`Protocol`] owns the matching queues and every send and receive request of a rank. It
//! never touches a ring, a socket or a clock: posts and incoming frames go in, and
//! [`Action`]s come out for the engine to carry out (send this frame, read that memory of
//! another process). The same type runs under the real engine and under in-memory tests.
//!
//! Messages up to the eager limit of their path travel whole in one `Eager` frame. Larger
//! messages (and all synchronous sends) use a rendezvous:
//!
//! 1. the sender sends `Rts` with its buffer's address and its process id;
//! 2. on a node where single-copy reads are chosen (`Limits::cma`), the receiver reads the
//!    data itself with one copy (`CmaRead`, i.e. `process_vm_readv`) and answers `Fin`;
//!    otherwise (between nodes, on a node with a core per rank, or where the kernel
//!    forbids such reads) it answers `Cts` and the sender streams `Data` chunks;
//! 3. the send completes on `Fin`, or when its last `Data` chunk has left.
//!
//! Everything a peer says is checked: sequence numbers, request cookies (a key and a
//! generation, so a stale or forged cookie cannot touch another request), offsets and
//! lengths. A violation is a [`ProtocolError`]; the engine then treats the peer as failed.

use super::userbuf::{RecvBufRef, SendBuf};
use crate::matching::{Envelope, MatchError, Matcher, Pattern};
use slab::Slab;
use std::collections::VecDeque;
use zerorank_core::buffer::{BufferPool, RecvBuf};
use zerorank_core::frame::{FrameHeader, FrameKind};

/// Handle of a request inside a [`Protocol`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReqId {
    key: u32,
    generation: u32,
}

impl ReqId {
    fn cookie(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.key)
    }
    fn from_cookie(c: u64) -> Self {
        ReqId {
            key: c as u32,
            generation: (c >> 32) as u32,
        }
    }
    /// A handle for tests of the links, which carry request handles without using them.
    #[cfg(test)]
    pub(crate) fn for_test(n: u32) -> Self {
        ReqId {
            key: n,
            generation: 0,
        }
    }
}

/// How a message reaches a rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// This rank itself.
    Loopback,
    /// Shared memory on this node.
    Shm,
    /// TCP to another node.
    Tcp,
}

/// Send modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    /// Eager below the path's limit, rendezvous above.
    Standard,
    /// Completes only once the receiver has matched the message (always rendezvous).
    Synchronous,
}

/// What a completed receive reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Source rank.
    pub source: u32,
    /// Tag.
    pub tag: i32,
    /// Bytes written into the receive buffer.
    pub len: usize,
    /// Bytes the sender sent (more than `len` when truncated).
    pub sent: usize,
    /// The receive was cancelled before it matched.
    pub cancelled: bool,
}

impl Status {
    /// The message was longer than the receive buffer.
    pub fn truncated(&self) -> bool {
        self.sent > self.len
    }
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The peer died or broke the protocol.
    #[error("rank {rank} failed: {reason}")]
    PeerFailed {
        /// The failed rank.
        rank: u32,
        /// Why it is considered failed.
        reason: String,
    },
    /// A queue reached its bound.
    #[error(transparent)]
    Queue(#[from] MatchError),
    /// Reading a large message from the sender's memory failed.
    #[error("single-copy read from rank {rank} failed: {reason}")]
    Copy {
        /// The sender.
        rank: u32,
        /// The OS error.
        reason: String,
    },
}

/// A peer said something the protocol does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protocol violation by rank {rank}: {what}")]
pub struct ProtocolError {
    /// The offending rank.
    pub rank: u32,
    /// What it did.
    pub what: String,
}

/// The bytes a frame carries, as the engine should send them.
#[derive(Debug, Clone, Copy)]
pub enum Payload {
    /// No payload.
    None,
    /// `len` bytes at `off` of a user buffer that stays valid while its request lives.
    User {
        /// The buffer.
        buf: SendBuf,
        /// Offset.
        off: usize,
        /// Length.
        len: usize,
    },
}

/// What the engine must do.
#[derive(Debug)]
pub enum Action {
    /// Send one frame to `to` (its `seq` is 0: the engine stamps it). When `complete` is set, that send request completes once the
    /// payload has been copied out of the user buffer (into a ring slot or a socket buffer).
    Frame {
        /// Destination rank.
        to: u32,
        /// Header (sequence number already assigned).
        header: FrameHeader,
        /// Payload.
        payload: Payload,
        /// Send request to complete once the payload is out.
        complete: Option<ReqId>,
    },
    /// Stream `buf` to `to` as `Data` frames addressed to the receiver's request `cookie`,
    /// then complete send `req`. The engine chunks it to its path's frame size.
    Stream {
        /// Destination rank.
        to: u32,
        /// Communicator (for the headers).
        comm: u32,
        /// Receiver's request cookie.
        cookie: u64,
        /// Bytes to stream.
        buf: SendBuf,
        /// How many bytes of `buf` (what the receiver accepted).
        len: usize,
        /// Send request to complete after the last chunk.
        req: ReqId,
    },
    /// Read `len` bytes at `addr` in process `pid` into receive `req` (single copy), then
    /// report [`Protocol::cma_done`] or [`Protocol::cma_failed`].
    CmaRead {
        /// The receive.
        req: ReqId,
        /// The sender.
        src: u32,
        /// Sender's process id.
        pid: u32,
        /// Address in the sender.
        addr: u64,
        /// Bytes to read.
        len: usize,
    },
}

/// A sender's request to send a large message, as its `Rts` frame describes it.
#[derive(Debug, Clone, Copy)]
struct Rts {
    /// Message bytes.
    len: u64,
    /// The sender's request cookie.
    cookie: u64,
    /// The sender's buffer address (for single-copy reads).
    addr: u64,
    /// The sender's process id.
    pid: u32,
}

#[derive(Debug)]
enum Unexpected {
    /// An eager message; with the request of a synchronous send to this rank itself,
    /// which completes when the message matches.
    Eager(RecvBuf, Option<ReqId>),
    Rts(Rts),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendStage {
    /// The eager frame is queued in the engine.
    Eager,
    /// `Rts` sent; waiting for `Fin` (receiver read it) or `Cts` (stream it).
    Rendezvous,
    /// `Data` is being streamed.
    Streaming,
}

/// A receive that matched a large message and is reading it.
#[derive(Debug, Clone, Copy)]
struct Reading {
    src: u32,
    tag: i32,
    comm: u32,
    /// The sender's request cookie.
    cookie: u64,
    /// Bytes the sender sent.
    sent: usize,
    /// Bytes this receive takes (at most its buffer).
    accepted: usize,
    /// Bytes arrived so far.
    received: usize,
}

impl Reading {
    fn status(&self) -> Status {
        Status {
            source: self.src,
            tag: self.tag,
            len: self.accepted,
            sent: self.sent,
            cancelled: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum RecvStage {
    Posted,
    /// Rendezvous in progress.
    Reading(Reading),
}

#[derive(Debug)]
enum Req {
    Send {
        dst: u32,
        buf: SendBuf,
        stage: SendStage,
    },
    Recv {
        pat: Pattern,
        buf: RecvBufRef,
        stage: RecvStage,
    },
    Done(Result<Status, OpError>),
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    req: Req,
}

/// Limits that decide eager versus rendezvous per path.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest eager payload through shared memory (a ring slot minus the header).
    pub shm_eager: usize,
    /// Largest eager payload over TCP.
    pub tcp_eager: usize,
    /// Whether large messages on this node are read with `process_vm_readv` (allowed here
    /// and chosen by `shm::cma::prefer`) rather than streamed through the segment.
    pub cma: bool,
}

/// Point-to-point protocol state of one rank.
#[derive(Debug)]
pub struct Protocol {
    job: u64,
    me: u32,
    pid: u32,
    paths: Vec<Path>,
    limits: Limits,
    matcher: Matcher<ReqId, (Unexpected, Path)>,
    reqs: Slab<Slot>,
    next_generation: u32,
    send_seq: Vec<u64>,
    recv_seq: Vec<u64>,
    failed: Vec<Option<String>>,
    actions: VecDeque<Action>,
    pool: BufferPool,
}

impl Protocol {
    /// A rank `me` of a job of `paths.len()` ranks; `paths[r]` is how rank `r` is reached.
    pub fn new(
        job: u64,
        me: u32,
        pid: u32,
        paths: Vec<Path>,
        limits: Limits,
        pool: BufferPool,
    ) -> Self {
        let n = paths.len();
        assert!((me as usize) < n, "rank {me} outside a job of {n}");
        assert_eq!(
            paths[me as usize],
            Path::Loopback,
            "a rank reaches itself by loopback"
        );
        Protocol {
            job,
            me,
            pid,
            paths,
            limits,
            matcher: Matcher::new(),
            reqs: Slab::new(),
            next_generation: 1,
            send_seq: vec![0; n],
            recv_seq: vec![0; n],
            failed: vec![None; n],
            actions: VecDeque::new(),
            pool,
        }
    }

    /// Ranks in the job.
    pub fn size(&self) -> u32 {
        self.paths.len() as u32
    }

    /// How `rank` is reached.
    pub fn path(&self, rank: u32) -> Path {
        self.paths[rank as usize]
    }

    /// Why `rank` is considered failed, if it is.
    pub fn failure(&self, rank: u32) -> Option<&str> {
        self.failed[rank as usize].as_deref()
    }

    /// The next action for the engine.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Whether actions wait for the engine.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// Next sequence number toward `to`. The engine stamps every frame with it at the
    /// moment the frame enters its channel, so frames held back (a full ring) keep order.
    pub fn next_seq(&mut self, to: u32) -> u64 {
        let s = &mut self.send_seq[to as usize];
        *s += 1;
        *s
    }

    /// The last sequence number stamped toward `to`.
    pub fn send_seq_peek(&self, to: u32) -> u64 {
        self.send_seq[to as usize]
    }

    fn insert(&mut self, req: Req) -> ReqId {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let key = self.reqs.insert(Slot { generation, req });
        ReqId {
            key: key as u32,
            generation,
        }
    }

    fn slot_mut(&mut self, id: ReqId) -> Option<&mut Req> {
        self.reqs
            .get_mut(id.key as usize)
            .filter(|s| s.generation == id.generation)
            .map(|s| &mut s.req)
    }

    fn finish(&mut self, id: ReqId, result: Result<Status, OpError>) {
        let req = self.slot_mut(id).expect("finishing a live request");
        assert!(!matches!(req, Req::Done(_)), "a request completes once");
        *req = Req::Done(result);
    }

    fn header(&mut self, to: u32, comm: u32, tag: i32, kind: FrameKind) -> FrameHeader {
        FrameHeader {
            job: self.job,
            comm,
            src: self.me,
            dst: to,
            tag,
            seq: 0, // stamped by the engine when the frame enters its channel
            len: 0,
            cookie: 0,
            addr: 0,
            pid: self.pid,
            kind,
        }
    }

    fn dead(&self, rank: u32) -> Option<OpError> {
        self.failed[rank as usize]
            .as_ref()
            .map(|reason| OpError::PeerFailed {
                rank,
                reason: reason.clone(),
            })
    }

    /// Start a send of `buf` to `dst`.
    ///
    /// # Panics
    /// If `dst` is outside the job (the API layer checks ranks first).
    pub fn post_send(
        &mut self,
        dst: u32,
        comm: u32,
        tag: i32,
        buf: SendBuf,
        mode: SendMode,
    ) -> ReqId {
        assert!(dst < self.size(), "send to rank {dst} outside the job");
        if let Some(e) = self.dead(dst) {
            return self.insert(Req::Done(Err(e)));
        }
        let len = buf.len();
        let path = self.path(dst);
        if path == Path::Loopback && mode == SendMode::Synchronous {
            return self.post_sync_loopback(comm, tag, buf);
        }
        if path == Path::Loopback {
            let id = self.insert(Req::Done(Ok(self.loopback_status(tag, len))));
            let env = Envelope {
                comm,
                src: self.me,
                tag,
            };
            if let Err(e) = self.deliver_eager(env, buf.slice(0, len), Path::Loopback) {
                self.finish_overwrite(id, Err(e));
            }
            return id;
        }
        if self.is_eager(path, len, mode) {
            let id = self.insert(Req::Send {
                dst,
                buf,
                stage: SendStage::Eager,
            });
            let header = self.eager_frame_header(dst, comm, tag, len);
            self.actions.push_back(Action::Frame {
                to: dst,
                header,
                payload: Payload::User { buf, off: 0, len },
                complete: Some(id),
            });
            id
        } else {
            let id = self.insert(Req::Send {
                dst,
                buf,
                stage: SendStage::Rendezvous,
            });
            let mut header = self.header(dst, comm, tag, FrameKind::Rts);
            header.len = len as u64;
            header.cookie = id.cookie();
            header.addr = buf.addr();
            self.actions.push_back(Action::Frame {
                to: dst,
                header,
                payload: Payload::None,
                complete: None,
            });
            id
        }
    }

    /// The status of a completed send of `len` bytes to this rank itself.
    fn loopback_status(&self, tag: i32, len: usize) -> Status {
        Status {
            source: self.me,
            tag,
            len,
            sent: len,
            cancelled: false,
        }
    }

    /// A synchronous send to this rank itself: it completes when a receive matches it
    /// (at once if one is posted; otherwise when one takes it from the unexpected queue).
    fn post_sync_loopback(&mut self, comm: u32, tag: i32, buf: SendBuf) -> ReqId {
        let len = buf.len();
        let env = Envelope {
            comm,
            src: self.me,
            tag,
        };
        if self.matcher.has_posted_match(&env) {
            let id = self.insert(Req::Done(Ok(self.loopback_status(tag, len))));
            if let Err(e) = self.deliver_eager(env, buf.slice(0, len), Path::Loopback) {
                self.finish_overwrite(id, Err(e));
            }
            return id;
        }
        let id = self.insert(Req::Send {
            dst: self.me,
            buf,
            stage: SendStage::Eager,
        });
        let mut copy = self.pool.get(len);
        copy.as_mut_slice().copy_from_slice(buf.slice(0, len));
        if let Err(e) = self
            .matcher
            .push_unexpected(env, (Unexpected::Eager(copy, Some(id)), Path::Loopback))
        {
            self.finish_overwrite(id, Err(e.into()));
        }
        id
    }

    /// The header of a standard send of `len` bytes to `dst` that can leave at once as one
    /// eager frame through shared memory, without a request: what a blocking send uses
    /// when it can copy the message into the ring in the same call. `None` when the
    /// message needs a request (another path, rendezvous, synchronous mode, a failed
    /// peer); the caller then posts it with [`Protocol::post_send`]. Its `seq` is 0 (the
    /// engine stamps it, as for every frame).
    pub fn eager_header(
        &mut self,
        dst: u32,
        comm: u32,
        tag: i32,
        len: usize,
        mode: SendMode,
    ) -> Option<FrameHeader> {
        assert!(dst < self.size(), "send to rank {dst} outside the job");
        if self.path(dst) != Path::Shm
            || !self.is_eager(Path::Shm, len, mode)
            || self.failed[dst as usize].is_some()
        {
            return None;
        }
        Some(self.eager_frame_header(dst, comm, tag, len))
    }

    /// Does a send of `len` bytes in `mode` over `path` travel whole in one eager frame?
    fn is_eager(&self, path: Path, len: usize, mode: SendMode) -> bool {
        let limit = match path {
            Path::Shm => self.limits.shm_eager,
            _ => self.limits.tcp_eager,
        };
        mode == SendMode::Standard && len <= limit
    }

    fn eager_frame_header(&mut self, dst: u32, comm: u32, tag: i32, len: usize) -> FrameHeader {
        let mut header = self.header(dst, comm, tag, FrameKind::Eager);
        header.len = len as u64;
        header
    }

    fn finish_overwrite(&mut self, id: ReqId, result: Result<Status, OpError>) {
        *self.slot_mut(id).expect("live request") = Req::Done(result);
    }

    /// The engine copied an eager payload out of the user buffer: the send is complete.
    pub fn send_copied(&mut self, id: ReqId) {
        let Some(Req::Send { dst, buf, stage }) = self.slot_mut(id) else {
            // Failed meanwhile (peer death): nothing to do.
            return;
        };
        let (dst, len, stage) = (*dst, buf.len(), *stage);
        assert!(
            matches!(stage, SendStage::Eager | SendStage::Streaming),
            "copied in stage {stage:?}"
        );
        self.finish(
            id,
            Ok(Status {
                source: dst,
                tag: 0,
                len,
                sent: len,
                cancelled: false,
            }),
        );
    }

    /// Post a receive into `buf`.
    pub fn post_recv(&mut self, pat: Pattern, buf: RecvBufRef) -> ReqId {
        if let Some(src) = pat.src {
            assert!(src < self.size(), "receive from rank {src} outside the job");
            if let Some(e) = self.dead(src) {
                return self.insert(Req::Done(Err(e)));
            }
        }
        let id = self.insert(Req::Recv {
            pat,
            buf,
            stage: RecvStage::Posted,
        });
        match self.matcher.take_unexpected(&pat) {
            Some((env, (Unexpected::Eager(data, sync), _))) => {
                let st = copy_eager(buf, &env, data.as_slice());
                self.finish(id, Ok(st));
                if let Some(send) = sync {
                    let len = data.len();
                    self.finish(send, Ok(self.loopback_status(env.tag, len)));
                }
            }
            Some((env, (Unexpected::Rts(rts), path))) => self.start_rendezvous(id, env, path, rts),
            None => {
                if let Err(e) = self.matcher.post(pat, id) {
                    self.finish(id, Err(e.into()));
                }
            }
        }
        id
    }

    /// Cancel a receive that has not matched yet. Returns false if it already matched.
    pub fn cancel_recv(&mut self, id: ReqId) -> bool {
        if self.matcher.remove_posted(|_, &p| p == id).is_none() {
            return false;
        }
        let Some(Req::Recv { pat, .. }) = self.slot_mut(id) else {
            return false;
        };
        let st = Status {
            source: pat.src.unwrap_or(u32::MAX),
            tag: pat.tag.unwrap_or(-1),
            len: 0,
            sent: 0,
            cancelled: true,
        };
        self.finish(id, Ok(st));
        true
    }

    /// Has `id` completed (successfully or not)?
    pub fn is_done(&self, id: ReqId) -> bool {
        self.reqs
            .get(id.key as usize)
            .is_none_or(|s| s.generation != id.generation || matches!(s.req, Req::Done(_)))
    }

    /// If `id` has completed, remove it and return its outcome.
    ///
    /// # Panics
    /// If `id` is not a request of this protocol (already taken).
    pub fn take(&mut self, id: ReqId) -> Option<Result<Status, OpError>> {
        let slot = self.reqs.get(id.key as usize).expect("unknown request");
        assert_eq!(slot.generation, id.generation, "request taken twice");
        if !matches!(slot.req, Req::Done(_)) {
            return None;
        }
        match self.reqs.remove(id.key as usize).req {
            Req::Done(r) => Some(r),
            _ => unreachable!("checked above"),
        }
    }

    /// Is there an unexpected message `pat` accepts? Gives its envelope and length.
    pub fn probe(&self, pat: &Pattern) -> Option<(Envelope, usize)> {
        self.matcher.peek_unexpected(pat).map(|(e, (u, _))| {
            let len = match u {
                Unexpected::Eager(b, _) => b.len(),
                Unexpected::Rts(rts) => rts.len as usize,
            };
            (*e, len)
        })
    }

    fn deliver_eager(&mut self, env: Envelope, payload: &[u8], path: Path) -> Result<(), OpError> {
        if let Some(id) = self.matcher.arrive(&env) {
            let Some(Req::Recv { buf, .. }) = self.slot_mut(id) else {
                unreachable!("posted receives are live receive requests")
            };
            let st = copy_eager(*buf, &env, payload);
            self.finish(id, Ok(st));
            return Ok(());
        }
        let mut copy = self.pool.get(payload.len());
        crate::shm::copy::copy(copy.as_mut_slice(), payload);
        self.matcher
            .push_unexpected(env, (Unexpected::Eager(copy, None), path))?;
        Ok(())
    }

    fn start_rendezvous(&mut self, id: ReqId, env: Envelope, path: Path, rts: Rts) {
        let Some(Req::Recv { buf, stage, .. }) = self.slot_mut(id) else {
            unreachable!("rendezvous on a live receive")
        };
        let sent = rts.len as usize;
        let r = Reading {
            src: env.src,
            tag: env.tag,
            comm: env.comm,
            cookie: rts.cookie,
            sent,
            accepted: sent.min(buf.len()),
            received: 0,
        };
        *stage = RecvStage::Reading(r);
        if path == Path::Shm && self.limits.cma && r.accepted > 0 {
            self.actions.push_back(Action::CmaRead {
                req: id,
                src: r.src,
                pid: rts.pid,
                addr: rts.addr,
                len: r.accepted,
            });
        } else {
            self.send_control(id, &r, FrameKind::Cts);
            if r.accepted == 0 {
                self.finish(id, Ok(r.status()));
            }
        }
    }

    /// Queue a control frame about reading `r` to its sender: `Cts` (stream the data to
    /// receive `id`) or `Fin` (the data has been read).
    fn send_control(&mut self, id: ReqId, r: &Reading, kind: FrameKind) {
        let mut h = self.header(r.src, r.comm, r.tag, kind);
        h.len = r.accepted as u64;
        h.cookie = r.cookie;
        if kind == FrameKind::Cts {
            h.addr = id.cookie();
        }
        self.actions.push_back(Action::Frame {
            to: r.src,
            header: h,
            payload: Payload::None,
            complete: None,
        });
    }

    fn reading(&self, id: ReqId) -> Option<(RecvBufRef, Reading)> {
        match self
            .reqs
            .get(id.key as usize)
            .filter(|s| s.generation == id.generation)
            .map(|s| &s.req)
        {
            Some(Req::Recv {
                buf,
                stage: RecvStage::Reading(r),
                ..
            }) => Some((*buf, *r)),
            _ => None,
        }
    }

    /// The single-copy read for `id` succeeded: tell the sender and complete.
    pub fn cma_done(&mut self, id: ReqId) {
        let Some((_, r)) = self.reading(id) else {
            return; // failed meanwhile
        };
        self.send_control(id, &r, FrameKind::Fin);
        self.finish(id, Ok(r.status()));
    }

    /// The single-copy read for `id` was refused by the kernel: fall back to streaming.
    pub fn cma_failed(&mut self, id: ReqId, reason: &str) {
        self.limits.cma = false;
        tracing::warn!(%reason, "single-copy reads refused; falling back to copies through the segment");
        if let Some((_, r)) = self.reading(id) {
            self.send_control(id, &r, FrameKind::Cts);
        }
    }

    /// Writable memory of a receive that is reading a large message (for `CmaRead`).
    pub fn recv_target(&self, id: ReqId) -> Option<RecvBufRef> {
        self.reading(id).map(|(buf, _)| buf)
    }

    /// A frame arrived from `src` over `path` (header already validated for job, ranks
    /// and length bounds). `payload` is exactly `header.payload_len()` bytes.
    pub fn on_frame(
        &mut self,
        path: Path,
        h: &FrameHeader,
        payload: &[u8],
    ) -> Result<(), ProtocolError> {
        let src = h.src;
        let violation = |what: String| ProtocolError { rank: src, what };
        if self.failed[src as usize].is_some() {
            return Ok(()); // late frames of a failed peer are ignored
        }
        if self.path(src) != path {
            return Err(violation(format!(
                "frame arrived over {path:?}, rank is reached over {:?}",
                self.path(src)
            )));
        }
        let seq = h.seq;
        let expected = self.recv_seq[src as usize] + 1;
        if seq != expected {
            return Err(violation(format!(
                "sequence number {seq}, expected {expected}"
            )));
        }
        self.recv_seq[src as usize] = seq;
        let env = Envelope {
            comm: h.comm,
            src,
            tag: h.tag,
        };
        match h.kind {
            FrameKind::Eager => {
                debug_assert_eq!(payload.len(), h.len as usize);
                self.deliver_eager(env, payload, path)
                    .map_err(|e| violation(e.to_string()))?;
            }
            FrameKind::Rts => {
                let rts = Rts {
                    len: h.len,
                    cookie: h.cookie,
                    addr: h.addr,
                    pid: h.pid,
                };
                match self.matcher.arrive(&env) {
                    Some(id) => self.start_rendezvous(id, env, path, rts),
                    None => self
                        .matcher
                        .push_unexpected(env, (Unexpected::Rts(rts), path))
                        .map_err(|e| violation(e.to_string()))?,
                }
            }
            FrameKind::Cts => {
                let id = ReqId::from_cookie(h.cookie);
                let accepted = h.len as usize;
                let Some(Req::Send { dst, buf, stage }) = self.slot_mut(id) else {
                    return Err(violation("clear-to-send for an unknown send".into()));
                };
                if *dst != src || *stage != SendStage::Rendezvous || accepted > buf.len() {
                    return Err(violation(format!(
                        "clear-to-send of {accepted} bytes does not fit its send"
                    )));
                }
                *stage = SendStage::Streaming;
                let buf = *buf;
                if accepted == 0 {
                    self.send_copied(id);
                } else {
                    self.actions.push_back(Action::Stream {
                        to: src,
                        comm: env.comm,
                        cookie: h.addr,
                        buf,
                        len: accepted,
                        req: id,
                    });
                }
            }
            FrameKind::Data => {
                let id = ReqId::from_cookie(h.cookie);
                let off = h.addr as usize;
                let Some(Req::Recv {
                    buf,
                    stage: RecvStage::Reading(r),
                    ..
                }) = self.slot_mut(id)
                else {
                    return Err(violation("data for an unknown receive".into()));
                };
                if r.src != src || off != r.received || payload.len() > r.accepted - r.received {
                    return Err(violation(format!(
                        "data chunk at {off} of {} bytes does not fit",
                        payload.len()
                    )));
                }
                crate::shm::copy::copy(buf.slice_mut(off, payload.len()), payload);
                r.received += payload.len();
                if r.received == r.accepted {
                    let st = r.status();
                    self.finish(id, Ok(st));
                }
            }
            FrameKind::Fin => {
                let id = ReqId::from_cookie(h.cookie);
                match self.slot_mut(id) {
                    Some(Req::Send {
                        dst,
                        stage: SendStage::Rendezvous,
                        ..
                    }) if *dst == src => {
                        let len = h.len as usize;
                        self.finish(
                            id,
                            Ok(Status {
                                source: src,
                                tag: env.tag,
                                len,
                                sent: len,
                                cancelled: false,
                            }),
                        );
                    }
                    _ => return Err(violation("finish for an unknown send".into())),
                }
            }
        }
        Ok(())
    }

    /// `rank` died or broke the protocol: fail everything that waits on it.
    pub fn peer_failed(&mut self, rank: u32, reason: &str) {
        if self.failed[rank as usize].is_some() || rank == self.me {
            return;
        }
        tracing::error!(rank, %reason, "peer failed; failing its pending operations");
        self.failed[rank as usize] = Some(reason.to_string());
        let err = OpError::PeerFailed {
            rank,
            reason: reason.to_string(),
        };
        // A receive from any source waits for the live peers; once none is left (the job
        // is over: all died, or the launcher did) it can never complete.
        let me = self.me as usize;
        let none_left = self
            .failed
            .iter()
            .enumerate()
            .all(|(r, f)| r == me || f.is_some());
        let doomed: Vec<ReqId> = self
            .reqs
            .iter()
            .filter(|(_, s)| match &s.req {
                Req::Send { dst, .. } => *dst == rank,
                Req::Recv {
                    pat,
                    stage: RecvStage::Posted,
                    ..
                } => pat.src == Some(rank) || (pat.src.is_none() && none_left),
                Req::Recv {
                    stage: RecvStage::Reading(r),
                    ..
                } => r.src == rank,
                Req::Done(_) => false,
            })
            .map(|(k, s)| ReqId {
                key: k as u32,
                generation: s.generation,
            })
            .collect();
        for id in doomed {
            self.matcher.remove_posted(|_, &p| p == id);
            self.finish(id, Err(err.clone()));
        }
        self.matcher
            .drop_unexpected(|e, (u, _)| e.src == rank && matches!(u, Unexpected::Rts(_)));
    }
}

fn copy_eager(buf: RecvBufRef, env: &Envelope, payload: &[u8]) -> Status {
    let n = payload.len().min(buf.len());
    crate::shm::copy::copy(buf.slice_mut(0, n), &payload[..n]);
    Status {
        source: env.src,
        tag: env.tag,
        len: n,
        sent: payload.len(),
        cancelled: false,
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
