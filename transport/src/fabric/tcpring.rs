//! The data path of established TCP connections, on a dedicated io_uring ring that the
//! progress engine polls directly.
//!
//! glommio drives connection management (listen, connect, the authenticated handshake).
//! Once a connection is authenticated its socket moves here. glommio reaps io_uring
//! completions only when its executor parks, and parking and waking cost tens of
//! microseconds on a virtual machine, which made every message pay for it. This ring is
//! set up with `COOP_TASKRUN | TASKRUN_FLAG`: checking it for news reads two words of
//! shared memory, and it enters the kernel only when the kernel has posted work or there
//! are submissions. So the progress loop polls shared memory and TCP in one pass.
//!
//! Receiving has two modes per connection. While data keeps coming, the connection is
//! *polled*: each progress round tries a non-blocking `recv` on it. Once it has been
//! quiet for `POLLED_ROUNDS` rounds, or before the rank sleeps, it is *armed*: an io_uring
//! receive waits in the kernel and checking it costs nothing. The polled mode exists for
//! latency: an armed receive is woken by the network stack through io_uring task work,
//! which the rank then has to run in a system call, and that path costs about 0.9 us
//! more per message than finding the bytes with a plain `recv` (measured on this
//! project's 2-vCPU KVM guest, 72-byte TCP ping-pong over loopback between two pinned
//! processes: 3.55-3.73 us one-way with a spinning non-blocking `recv`, 4.41-4.56 us with
//! an io_uring receive polled through `TASKRUN_FLAG`). Sending likewise tries one
//! non-blocking `sendmsg` when nothing is queued to the peer, and hands the frame (or what
//! is left of it) to io_uring otherwise.
//!
//! Each connection keeps at most one receive and one send in flight. Frames on the wire are
//! `[u32 LE length = 64 + payload][64-byte header][payload]`. Small frames are received
//! into a staging buffer and copied into a pooled buffer; a large frame's payload is
//! received straight into its own buffer. Headers are validated as soon as they arrive,
//! before any large buffer is allocated. Whatever a peer sends, a bad frame fails that
//! peer and never the rank.
//!
//! All `unsafe` of this path is here: submission entries point at buffers that must stay
//! put until their completion arrives. Each connection's buffers live in a `Box` that is
//! freed only when no operation is in flight (or leaked if the kernel never answers).

use super::protocol::ReqId;
use super::userbuf::SendBuf;
use io_uring::{opcode, squeue, types, IoUring};
use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};
use zerorank_core::buffer::{BufferPool, RecvBuf};
use zerorank_core::frame::{access_checked, Expect, HeaderBytes, HEADER_LEN};

/// Bytes of the staging buffer each connection receives small frames into.
const STAGING: usize = 256 << 10;
/// Payloads at least this large are received straight into their own buffer.
const DIRECT_MIN: usize = 16 << 10;
/// Submission queue entries of the ring.
const RING_ENTRIES: u32 = 256;
/// Length of the frame prefix.
const PREFIX: usize = 4;
/// Progress rounds a polled connection may find nothing before it is armed again. A round
/// with a polled connection costs a system call (a few hundred nanoseconds), so this is
/// roughly a millisecond of quiet.
const POLLED_ROUNDS: u32 = 4096;

/// `IORING_RECVSEND_POLL_FIRST`.
const RECVSEND_POLL_FIRST: u16 = 1;

const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;

fn user_data(peer: u32, op: u64) -> u64 {
    (u64::from(peer) << 8) | op
}

/// The payload of an outgoing frame.
pub(crate) enum OutPayload {
    None,
    /// A copy owned by the frame (eager sends complete as soon as it is made).
    Owned(RecvBuf),
    /// Part of a user buffer kept alive by its send request.
    User(SendBuf, usize, usize),
}

impl OutPayload {
    fn bytes(&self) -> &[u8] {
        match self {
            OutPayload::None => &[],
            OutPayload::Owned(b) => b.as_slice(),
            OutPayload::User(b, off, len) => b.slice(*off, *len),
        }
    }
}

/// One frame waiting to be sent.
pub(crate) struct OutFrame {
    head: [u8; PREFIX + HEADER_LEN],
    payload: OutPayload,
    complete: Option<ReqId>,
}

impl OutFrame {
    pub fn new(header: &HeaderBytes, payload: OutPayload, complete: Option<ReqId>) -> Self {
        let mut head = [0u8; PREFIX + HEADER_LEN];
        let total = (HEADER_LEN + payload.bytes().len()) as u32;
        head[..PREFIX].copy_from_slice(&total.to_le_bytes());
        head[PREFIX..].copy_from_slice(header.as_slice());
        OutFrame {
            head,
            payload,
            complete,
        }
    }

    fn len(&self) -> usize {
        self.head.len() + self.payload.bytes().len()
    }
}

/// What the ring reports to the engine.
pub(crate) enum LinkEvent {
    /// A frame (header + payload, 64-byte aligned, header already validated).
    Frame(u32, RecvBuf),
    /// A frame carrying `complete` has left entirely.
    Sent(ReqId),
    /// The connection to this peer broke or the peer sent garbage.
    Failed(u32, String),
}

/// Memory the kernel may touch while operations are in flight; boxed so it never moves.
struct ConnBufs {
    staging: RecvBuf,
    msg: libc::msghdr,
    iov: [libc::iovec; 2],
    /// Prefix and header of the frame being sent. Copied here because queued frames
    /// move when the queue grows, while the kernel may read these bytes later.
    head: [u8; PREFIX + HEADER_LEN],
}

impl Conn {
    /// Where the next received bytes go: the rest of the large frame being received
    /// directly, or the free end of the staging buffer (compacted first if needed).
    fn recv_target(&mut self) -> &mut [u8] {
        let rest = if let Some((buf, filled)) = self.direct.as_mut() {
            &mut buf.as_mut_slice()[*filled..]
        } else {
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            } else if self.start > 0 && (self.end == STAGING || self.start > STAGING / 2) {
                self.bufs
                    .staging
                    .as_mut_slice()
                    .copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            &mut self.bufs.staging.as_mut_slice()[self.end..]
        };
        debug_assert!(!rest.is_empty(), "a receive always has room");
        rest
    }
}

struct Conn {
    peer: u32,
    fd: OwnedFd,
    bufs: Box<ConnBufs>,
    /// Unparsed bytes of the staging buffer.
    start: usize,
    end: usize,
    /// A large frame being received straight into its buffer: (buffer, bytes filled).
    direct: Option<(RecvBuf, usize)>,
    recv_pending: bool,
    /// In `TcpRing::polled`: no receive in flight, progress rounds try `recv` directly.
    polled: bool,
    /// Direct receives in a row that found nothing.
    quiet: u32,
    /// The last receive returned less than asked for: the socket is probably drained.
    drained: bool,
    /// Bytes the receive in flight asked for.
    asked: usize,
    queue: VecDeque<OutFrame>,
    queued_bytes: usize,
    /// Bytes of the front frame already sent.
    sent_of_front: usize,
    send_pending: bool,
    failed: bool,
    /// A failure not reported yet because a send was still in flight: its request must
    /// not complete (and its buffer be given back) while the kernel may read it.
    unreported: Option<String>,
}

/// The io_uring TCP data path of one rank.
pub(crate) struct TcpRing {
    ring: IoUring,
    conns: Vec<Option<Box<Conn>>>,
    pool: BufferPool,
    expect: Expect,
    max_payload: usize,
    unsubmitted: usize,
    closing: bool,
    /// Peers whose connection is polled (see the module docs).
    polled: Vec<u32>,
}

impl TcpRing {
    pub fn new(
        size: usize,
        pool: BufferPool,
        expect: Expect,
        max_payload: usize,
    ) -> std::io::Result<Self> {
        let ring = IoUring::builder()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .build(RING_ENTRIES)?;
        Ok(TcpRing {
            ring,
            conns: (0..size).map(|_| None).collect(),
            pool,
            expect,
            max_payload,
            unsubmitted: 0,
            closing: false,
            polled: Vec::new(),
        })
    }

    /// Take over the authenticated socket of `peer`.
    pub fn add(&mut self, peer: u32, fd: OwnedFd) {
        assert!(
            self.conns[peer as usize].is_none(),
            "one connection per peer"
        );
        let bufs = Box::new(ConnBufs {
            staging: RecvBuf::unpooled(STAGING),
            // SAFETY: msghdr and iovec are plain C structs for which all-zero is valid.
            msg: unsafe { std::mem::zeroed() },
            iov: [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; 2],
            head: [0; PREFIX + HEADER_LEN],
        });
        let conn = Box::new(Conn {
            peer,
            fd,
            bufs,
            start: 0,
            end: 0,
            direct: None,
            recv_pending: false,
            polled: false,
            quiet: 0,
            drained: false,
            asked: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            sent_of_front: 0,
            send_pending: false,
            failed: false,
            unreported: None,
        });
        self.conns[peer as usize] = Some(conn);
        self.submit_recv(peer);
    }

    /// Send a frame to `peer`: at once if the socket takes it and nothing is queued
    /// ahead of it (a fully sent frame with a request reports `LinkEvent::Sent`), else
    /// through the io_uring send queue.
    pub fn queue(&mut self, peer: u32, frame: OutFrame, events: &mut VecDeque<LinkEvent>) {
        let Some(c) = self.conns[peer as usize].as_mut() else {
            return;
        };
        if c.failed {
            return;
        }
        let mut sent = 0;
        if c.queue.is_empty() && !c.send_pending {
            let iov = [
                std::io::IoSlice::new(&frame.head),
                std::io::IoSlice::new(frame.payload.bytes()),
            ];
            // Any error leaves the frame to io_uring, which reports real errors the
            // usual way.
            if let Ok(n) = crate::tcp::framing::send_now(c.fd.as_raw_fd(), &iov) {
                sent = n;
            }
            if sent == frame.len() {
                if let Some(id) = frame.complete {
                    events.push_back(LinkEvent::Sent(id));
                }
                return;
            }
            c.bufs.head = frame.head;
        }
        c.queued_bytes += frame.len();
        c.sent_of_front += sent;
        c.queue.push_back(frame);
        self.submit_send(peer);
    }

    /// Bytes queued toward `peer` and not yet sent.
    pub fn queued_bytes(&self, peer: u32) -> usize {
        self.conns[peer as usize]
            .as_ref()
            .map_or(0, |c| c.queued_bytes)
    }

    /// Is anything still queued or being sent?
    pub fn has_outgoing(&self) -> bool {
        self.conns
            .iter()
            .flatten()
            .any(|c| !c.failed && (!c.queue.is_empty() || c.send_pending))
    }

    fn push(&mut self, sqe: squeue::Entry) {
        // SAFETY (for the callers' entries): every buffer an entry points at lives in a
        // boxed `ConnBufs` (staging, msghdr, iovecs, the frame head being sent), a
        // `RecvBuf` held in `Conn::direct`, or the heap payload of the frame at the front of
        // `Conn::queue` (an owned buffer or a user buffer kept alive by its request); none
        // is freed or moved while the operation is in flight (`recv_pending` /
        // `send_pending` guard them).
        loop {
            // SAFETY: see above.
            let pushed = unsafe { self.ring.submission().push(&sqe).is_ok() };
            if pushed {
                self.unsubmitted += 1;
                return;
            }
            // Queue full: hand what is there to the kernel and try again.
            if let Err(e) = self.ring.submit() {
                tracing::error!(error = %e, "io_uring submit failed");
            }
            self.unsubmitted = 0;
        }
    }

    fn submit_recv(&mut self, peer: u32) {
        let Some(c) = self.conns[peer as usize].as_mut() else {
            return;
        };
        if c.recv_pending || c.failed {
            return;
        }
        let fd = types::Fd(c.fd.as_raw_fd());
        let rest = c.recv_target();
        let (ptr, len) = (rest.as_mut_ptr(), rest.len());
        c.recv_pending = true;
        c.polled = false;
        c.asked = len;
        // After a short receive the socket is almost surely empty: skip the kernel's
        // first attempt and arm the poll at once.
        let ioprio = if c.drained { RECVSEND_POLL_FIRST } else { 0 };
        let sqe = opcode::Recv::new(fd, ptr, len.min(u32::MAX as usize) as u32)
            .ioprio(ioprio)
            .build()
            .user_data(user_data(peer, OP_RECV));
        self.push(sqe);
    }

    fn submit_send(&mut self, peer: u32) {
        let Some(c) = self.conns[peer as usize].as_mut() else {
            return;
        };
        if c.send_pending || c.failed {
            return;
        }
        let Some(front) = c.queue.front() else { return };
        let done = c.sent_of_front;
        let body = front.payload.bytes();
        let bufs = &mut *c.bufs;
        if done == 0 {
            bufs.head = front.head;
        }
        let head = &bufs.head;
        let mut n = 0;
        if done < head.len() {
            bufs.iov[n] = libc::iovec {
                iov_base: head[done..].as_ptr() as *mut _,
                iov_len: head.len() - done,
            };
            n += 1;
            if !body.is_empty() {
                bufs.iov[n] = libc::iovec {
                    iov_base: body.as_ptr() as *mut _,
                    iov_len: body.len(),
                };
                n += 1;
            }
        } else {
            let off = done - head.len();
            bufs.iov[n] = libc::iovec {
                iov_base: body[off..].as_ptr() as *mut _,
                iov_len: body.len() - off,
            };
            n += 1;
        }
        bufs.msg.msg_iov = bufs.iov.as_mut_ptr();
        bufs.msg.msg_iovlen = n;
        let msg_ptr: *const libc::msghdr = &bufs.msg;
        c.send_pending = true;
        let fd = types::Fd(c.fd.as_raw_fd());
        let sqe = opcode::SendMsg::new(fd, msg_ptr)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
            .user_data(user_data(peer, OP_SEND));
        self.push(sqe);
    }

    /// Receive on polled connections, hand submissions to the kernel and collect
    /// completions. Without polled connections it is cheap when nothing happened: no
    /// system call unless there are submissions or the kernel has news.
    pub fn poll(&mut self, events: &mut VecDeque<LinkEvent>) -> bool {
        let mut moved = !self.polled.is_empty() && self.poll_direct(events);
        let news = self.unsubmitted > 0
            || self.ring.submission().taskrun()
            || !self.ring.completion().is_empty();
        if !news {
            return moved;
        }
        if let Err(e) = self.ring.submit() {
            if e.raw_os_error() != Some(libc::EBUSY) && e.raw_os_error() != Some(libc::EINTR) {
                tracing::error!(error = %e, "io_uring submit failed");
            }
        }
        self.unsubmitted = 0;
        moved |= self.reap(events);
        moved
    }

    /// Try one non-blocking `recv` on each polled connection; arm the ones that have been
    /// quiet too long.
    fn poll_direct(&mut self, events: &mut VecDeque<LinkEvent>) -> bool {
        let mut moved = false;
        let mut i = 0;
        while i < self.polled.len() {
            let peer = self.polled[i];
            let Some(c) = self.conns[peer as usize].as_mut() else {
                self.polled.swap_remove(i);
                continue;
            };
            if c.failed || c.recv_pending {
                c.polled = false;
                self.polled.swap_remove(i);
                continue;
            }
            let fd = c.fd.as_raw_fd();
            let rest = c.recv_target();
            let asked = rest.len();
            let res = match recv(fd, rest, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => n as i32,
                Err(Errno::EAGAIN | Errno::EINTR) => {
                    c.quiet += 1;
                    if c.quiet >= POLLED_ROUNDS {
                        c.polled = false;
                        self.polled.swap_remove(i);
                        self.submit_recv(peer);
                        continue;
                    }
                    i += 1;
                    continue;
                }
                Err(e) => -(e as i32),
            };
            c.asked = asked;
            moved = true;
            // May fail the connection (then it leaves the list on the next pass) or
            // leave it polled; it never removes list entries itself.
            self.received(peer, res, events);
            i += 1;
        }
        moved
    }

    /// Arm every polled connection, so that a sleep on the ring wakes for their data.
    fn arm_polled(&mut self) {
        while let Some(peer) = self.polled.pop() {
            if let Some(c) = self.conns[peer as usize].as_mut() {
                c.polled = false;
            }
            self.submit_recv(peer);
        }
    }

    /// Sleep until a completion arrives or `timeout` passes.
    pub fn wait(&mut self, timeout: Duration) {
        self.arm_polled();
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                ) => {}
            Err(e) => tracing::error!(error = %e, "io_uring wait failed"),
        }
        self.unsubmitted = 0;
    }

    fn reap(&mut self, events: &mut VecDeque<LinkEvent>) -> bool {
        let mut moved = false;
        loop {
            let cqe = self.ring.completion().next();
            let Some(cqe) = cqe else { break };
            moved = true;
            let peer = (cqe.user_data() >> 8) as u32;
            let op = cqe.user_data() & 0xff;
            let res = cqe.result();
            match op {
                OP_RECV => self.on_recv(peer, res, events),
                OP_SEND => self.on_send(peer, res, events),
                _ => unreachable!("unknown io_uring operation {op}"),
            }
        }
        moved
    }

    /// Fail the connection to `peer`. The failure is reported (as `LinkEvent::Failed`)
    /// once no send on it is in flight.
    pub fn fail(&mut self, peer: u32, reason: String, events: &mut VecDeque<LinkEvent>) {
        let Some(c) = self.conns[peer as usize].as_mut() else {
            events.push_back(LinkEvent::Failed(peer, reason));
            return;
        };
        if c.failed {
            return;
        }
        c.failed = true;
        // Wake any operation still in flight; their completions come back as errors.
        let _ = nix::sys::socket::shutdown(c.fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        if self.closing {
            return;
        }
        tracing::warn!(peer, %reason, "connection to peer lost");
        if c.send_pending {
            // Reported when that send comes back (see `on_send`).
            c.unreported = Some(reason);
        } else {
            events.push_back(LinkEvent::Failed(peer, reason));
        }
    }

    fn on_send(&mut self, peer: u32, res: i32, events: &mut VecDeque<LinkEvent>) {
        let Some(c) = self.conns[peer as usize].as_mut() else {
            return;
        };
        c.send_pending = false;
        if c.failed {
            if let Some(reason) = c.unreported.take() {
                events.push_back(LinkEvent::Failed(peer, reason));
            }
            return;
        }
        if res < 0 {
            let e = std::io::Error::from_raw_os_error(-res);
            return self.fail(peer, format!("TCP send failed: {e}"), events);
        }
        c.sent_of_front += res as usize;
        let front_len = c.queue.front().expect("a send was in flight").len();
        assert!(c.sent_of_front <= front_len, "sent more than the frame");
        if c.sent_of_front == front_len {
            let f = c.queue.pop_front().expect("front frame");
            c.queued_bytes -= front_len;
            c.sent_of_front = 0;
            if let Some(id) = f.complete {
                events.push_back(LinkEvent::Sent(id));
            }
        }
        self.submit_send(peer);
    }

    /// An io_uring receive came back.
    fn on_recv(&mut self, peer: u32, res: i32, events: &mut VecDeque<LinkEvent>) {
        let Some(c) = self.conns[peer as usize].as_mut() else {
            return;
        };
        c.recv_pending = false;
        self.received(peer, res, events);
    }

    /// `res` bytes (or an error, or end of stream) arrived at `recv_target`, from io_uring
    /// or a direct receive. The connection then stays (or becomes) polled.
    fn received(&mut self, peer: u32, res: i32, events: &mut VecDeque<LinkEvent>) {
        let Some(c) = self.conns[peer as usize].as_mut() else {
            return;
        };
        debug_assert!(!c.recv_pending, "a receive result while one is in flight");
        if c.failed {
            return;
        }
        if res <= 0 {
            let reason = if res == 0 {
                if c.direct.is_some() || c.start != c.end {
                    "connection closed in the middle of a frame (truncated frame)".to_string()
                } else {
                    "peer closed the connection".to_string()
                }
            } else {
                format!(
                    "TCP receive failed: {}",
                    std::io::Error::from_raw_os_error(-res)
                )
            };
            return self.fail(peer, reason, events);
        }
        let n = res as usize;
        c.drained = n < c.asked;
        if let Some((buf, filled)) = c.direct.as_mut() {
            *filled += n;
            if *filled == buf.len() {
                let (buf, _) = c.direct.take().expect("direct receive");
                events.push_back(LinkEvent::Frame(peer, buf));
            }
        } else {
            c.end += n;
            if let Err(reason) = self.parse(peer, events) {
                return self.fail(peer, reason, events);
            }
        }
        let c = self.conns[peer as usize].as_mut().expect("connection");
        c.quiet = 0;
        if !c.polled {
            c.polled = true;
            self.polled.push(peer);
        }
    }

    /// Cut complete frames out of the staging buffer.
    fn parse(&mut self, peer: u32, events: &mut VecDeque<LinkEvent>) -> Result<(), String> {
        let max = self.max_payload;
        let TcpRing {
            conns,
            pool,
            expect,
            ..
        } = self;
        let c = conns[peer as usize].as_mut().expect("connection");
        loop {
            let avail = c.end - c.start;
            if avail < PREFIX + HEADER_LEN {
                return Ok(());
            }
            let bytes = &c.bufs.staging.as_slice()[c.start..c.end];
            let total = u32::from_le_bytes(bytes[..PREFIX].try_into().expect("4 bytes")) as usize;
            if total < HEADER_LEN || total > HEADER_LEN + max {
                return Err(format!(
                    "frame length {total} outside {HEADER_LEN}..={}",
                    HEADER_LEN + max
                ));
            }
            let mut hb = HeaderBytes::default();
            let head = &bytes[PREFIX..PREFIX + HEADER_LEN];
            hb_copy(&mut hb, head);
            let h = access_checked(hb.as_slice(), expect)
                .map_err(|e| format!("bad frame header: {e}"))?;
            if h.src.to_native() != peer {
                return Err(format!(
                    "frame claims rank {} on the connection of rank {peer}",
                    h.src.to_native()
                ));
            }
            let payload = h.payload_len();
            if HEADER_LEN + payload != total {
                return Err(format!(
                    "length prefix {total} disagrees with header payload {payload}"
                ));
            }
            let mut buf = pool.get(total);
            if avail >= PREFIX + total {
                buf.as_mut_slice()
                    .copy_from_slice(&bytes[PREFIX..PREFIX + total]);
                c.start += PREFIX + total;
                events.push_back(LinkEvent::Frame(peer, buf));
                continue;
            }
            if payload >= DIRECT_MIN {
                let have = avail - PREFIX;
                buf.as_mut_slice()[..have].copy_from_slice(&bytes[PREFIX..]);
                c.start = c.end;
                c.direct = Some((buf, have));
            }
            return Ok(());
        }
    }

    /// Close every connection: shut the sockets down, wait (bounded) for operations in
    /// flight to come back, then free the buffers.
    pub fn close(&mut self) {
        self.closing = true;
        for c in self.conns.iter_mut().flatten() {
            let _ = nix::sys::socket::shutdown(c.fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut sink = VecDeque::new();
        while self
            .conns
            .iter()
            .flatten()
            .any(|c| c.recv_pending || c.send_pending)
            && Instant::now() < deadline
        {
            self.poll(&mut sink);
            self.wait(Duration::from_millis(10));
            self.reap(&mut sink);
        }
        for slot in self.conns.iter_mut() {
            if let Some(c) = slot.take() {
                if c.recv_pending || c.send_pending {
                    // The kernel never answered: leak the buffers rather than free memory
                    // it may still write.
                    tracing::warn!(
                        peer = c.peer,
                        "TCP operation still in flight at close; leaking its buffers"
                    );
                    std::mem::forget(c);
                }
            }
        }
    }
}

fn hb_copy(dst: &mut HeaderBytes, src: &[u8]) {
    dst.as_mut_slice().copy_from_slice(src);
}

impl Drop for TcpRing {
    fn drop(&mut self) {
        if self.conns.iter().any(Option::is_some) {
            self.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use zerorank_core::frame::{FrameHeader, FrameKind};

    const JOB: u64 = 77;

    fn ring_for(rank: u32) -> TcpRing {
        TcpRing::new(
            2,
            BufferPool::new(),
            Expect {
                job: JOB,
                rank,
                size: 2,
            },
            4 << 20,
        )
        .expect("io_uring")
    }

    fn header(src: u32, dst: u32, len: usize, seq: u64) -> HeaderBytes {
        FrameHeader {
            job: JOB,
            src,
            dst,
            seq,
            len: len as u64,
            kind: FrameKind::Eager,
            ..Default::default()
        }
        .to_bytes()
    }

    /// Poll `ring` until `done` says so, for at most 10 s.
    fn pump(
        ring: &mut TcpRing,
        events: &mut VecDeque<LinkEvent>,
        mut done: impl FnMut(&VecDeque<LinkEvent>) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(events) {
            assert!(
                Instant::now() < deadline,
                "HUNG: no expected event within 10 s"
            );
            if !ring.poll(events) {
                ring.wait(Duration::from_millis(1));
            }
        }
    }

    #[test]
    fn frames_round_trip_in_order_small_and_large() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut r0, mut r1) = (ring_for(0), ring_for(1));
        r0.add(1, a.into());
        r1.add(0, b.into());
        let sizes = [0usize, 8, 1000, 20_000, 300_000, 5];
        let payloads: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&n| (0..n).map(|i| (i * 7 + n) as u8).collect())
            .collect();
        let (mut ev0, mut ev1) = (VecDeque::new(), VecDeque::new());
        // The first frames go out directly, the 300 kB one only partly (more than the
        // socket buffer), and the rest queue behind it on io_uring.
        for (i, p) in payloads.iter().enumerate() {
            let mut owned = BufferPool::new().get(p.len());
            owned.as_mut_slice().copy_from_slice(p);
            r0.queue(
                1,
                OutFrame::new(
                    &header(0, 1, p.len(), i as u64 + 1),
                    OutPayload::Owned(owned),
                    Some(ReqId::for_test(i as u32)),
                ),
                &mut ev0,
            );
        }
        let want = payloads.len();
        let mut got = Vec::new();
        let mut sent = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < want || sent.len() < want {
            assert!(
                Instant::now() < deadline,
                "HUNG: {} of {want} frames arrived, {} reported sent",
                got.len(),
                sent.len()
            );
            r0.poll(&mut ev0);
            r1.poll(&mut ev1);
            // Sleep on the ring now and then, so the armed (io_uring) receive path runs
            // as well as the polled one.
            if got.len() % 2 == 1 {
                r1.wait(Duration::from_millis(1));
            }
            while let Some(e) = ev0.pop_front() {
                match e {
                    LinkEvent::Sent(id) => sent.push(id),
                    LinkEvent::Failed(_, why) => panic!("unexpected failure: {why}"),
                    LinkEvent::Frame(..) => panic!("nothing was sent to rank 0"),
                }
            }
            while let Some(e) = ev1.pop_front() {
                match e {
                    LinkEvent::Frame(peer, buf) => {
                        assert_eq!(peer, 0);
                        got.push(buf);
                    }
                    LinkEvent::Failed(_, why) => panic!("unexpected failure: {why}"),
                    LinkEvent::Sent(_) => {}
                }
            }
        }
        for (i, buf) in got.iter().enumerate() {
            let h = access_checked(
                buf.as_slice(),
                &Expect {
                    job: JOB,
                    rank: 1,
                    size: 2,
                },
            )
            .unwrap();
            assert_eq!(h.seq.to_native(), i as u64 + 1, "frames arrive in order");
            assert_eq!(&buf.as_slice()[HEADER_LEN..], &payloads[i][..]);
        }
        assert!(!r0.has_outgoing());
        let expect_sent: Vec<ReqId> = (0..want as u32).map(ReqId::for_test).collect();
        assert_eq!(sent, expect_sent, "every frame reported sent, in order");
    }

    fn expect_failure(bytes: &[u8], close: bool) -> String {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut r1 = ring_for(1);
        r1.add(0, b.into());
        a.write_all(bytes).unwrap();
        if close {
            drop(a);
        } else {
            std::mem::forget(a); // keep the socket open: the failure must come from the bytes
        }
        let mut ev = VecDeque::new();
        pump(&mut r1, &mut ev, |ev| {
            ev.iter().any(|e| matches!(e, LinkEvent::Failed(..)))
        });
        ev.into_iter()
            .find_map(|e| match e {
                LinkEvent::Failed(peer, why) => {
                    assert_eq!(peer, 0);
                    Some(why)
                }
                _ => None,
            })
            .expect("a failure")
    }

    #[test]
    fn garbage_is_a_failure_not_a_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20 {
            let bytes: Vec<u8> = (0..4096)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let why = expect_failure(&bytes, false);
            assert!(
                why.contains("frame length") || why.contains("bad frame header"),
                "{why}"
            );
        }
    }

    #[test]
    fn oversized_length_forged_source_and_truncation_are_failures() {
        let mut big = ((HEADER_LEN + (4 << 20) + 1) as u32).to_le_bytes().to_vec();
        big.extend_from_slice(header(0, 1, 0, 1).as_slice());
        assert!(expect_failure(&big, false).contains("frame length"));

        let mut forged = ((HEADER_LEN) as u32).to_le_bytes().to_vec();
        forged.extend_from_slice(header(1, 1, 0, 1).as_slice());
        let why = expect_failure(&forged, false);
        assert!(
            why.contains("claims rank") || why.contains("bad frame header"),
            "{why}"
        );

        let mut truncated = ((HEADER_LEN + 100) as u32).to_le_bytes().to_vec();
        truncated.extend_from_slice(header(0, 1, 100, 1).as_slice());
        truncated.extend_from_slice(&[0u8; 10]);
        assert!(expect_failure(&truncated, true).contains("truncated"));
    }
}
