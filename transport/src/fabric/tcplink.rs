//! The glommio side of the TCP path: one reader task and one writer task per connection.
//!
//! The tasks share [`TcpShared`] with the engine. Readers push validated frames into the
//! inbox and wake whoever waits; writers drain a per-peer outbox in order. A broken
//! connection is reported once as a failure of that peer; after finalize starts, an
//! orderly close is not a failure.

use super::protocol::ReqId;
use super::userbuf::SendBuf;
use crate::tcp::{FrameReader, FrameWriter, TcpConn};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::task::{Poll, Waker};
use zerorank_core::buffer::{BufferPool, RecvBuf};
use zerorank_core::frame::{Expect, HeaderBytes};

/// The payload of an outgoing TCP frame.
pub(crate) enum OutPayload {
    None,
    /// A copy owned by the frame (eager sends complete as soon as it is made).
    Owned(RecvBuf),
    /// Part of a user buffer kept alive by its send request.
    User(SendBuf, usize, usize),
}

pub(crate) struct OutFrame {
    pub header: HeaderBytes,
    pub payload: OutPayload,
    pub complete: Option<ReqId>,
    pub bytes: usize,
}

/// A wake-up slot for one waiting future.
#[derive(Default)]
pub(crate) struct Notify {
    waker: Cell<Option<Waker>>,
    flag: Cell<bool>,
}

impl Notify {
    pub fn notify(&self) {
        self.flag.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Resolves at the next `notify` (or at once if one happened since the last wait).
    pub fn notified(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.flag.replace(false) {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
    }
}

/// State shared by the engine and the TCP tasks.
pub(crate) struct TcpShared {
    pub inbox: RefCell<VecDeque<(u32, RecvBuf)>>,
    pub failures: RefCell<VecDeque<(u32, String)>>,
    pub sent: RefCell<VecDeque<ReqId>>,
    pub outbox: Vec<RefCell<VecDeque<OutFrame>>>,
    pub outbox_bytes: Vec<Cell<usize>>,
    pub writing: Vec<Cell<bool>>,
    pub writer_wake: Vec<Notify>,
    pub progress: Notify,
    pub closing: Cell<bool>,
    pub connected: Vec<Cell<bool>>,
}

impl TcpShared {
    pub fn new(size: usize) -> Rc<Self> {
        Rc::new(TcpShared {
            inbox: RefCell::default(),
            failures: RefCell::default(),
            sent: RefCell::default(),
            outbox: (0..size).map(|_| RefCell::default()).collect(),
            outbox_bytes: (0..size).map(|_| Cell::new(0)).collect(),
            writing: (0..size).map(|_| Cell::new(false)).collect(),
            writer_wake: (0..size).map(|_| Notify::default()).collect(),
            progress: Notify::default(),
            closing: Cell::new(false),
            connected: (0..size).map(|_| Cell::new(false)).collect(),
        })
    }

    pub fn push(&self, peer: u32, f: OutFrame) {
        let p = peer as usize;
        self.outbox_bytes[p].set(self.outbox_bytes[p].get() + f.bytes);
        self.outbox[p].borrow_mut().push_back(f);
        self.writer_wake[p].notify();
    }

    /// Nothing queued or being written to any peer.
    pub fn drained(&self) -> bool {
        self.outbox.iter().all(|q| q.borrow().is_empty()) && self.writing.iter().all(|w| !w.get())
    }

    fn fail(&self, peer: u32, reason: String) {
        if !self.closing.get() {
            self.failures.borrow_mut().push_back((peer, reason));
        }
        self.progress.notify();
    }
}

/// Start the reader and writer tasks of an authenticated connection.
pub(crate) fn start(shared: &Rc<TcpShared>, conn: TcpConn, pool: BufferPool, expect: Expect) {
    let peer = conn.peer();
    shared.connected[peer as usize].set(true);
    let (reader, writer) = conn.into_split();
    glommio::spawn_local(read_loop(shared.clone(), peer, reader, pool, expect)).detach();
    glommio::spawn_local(write_loop(shared.clone(), peer, writer)).detach();
}

async fn read_loop(
    shared: Rc<TcpShared>,
    peer: u32,
    mut reader: FrameReader,
    pool: BufferPool,
    expect: Expect,
) {
    loop {
        match reader.next_frame(&pool, &expect).await {
            Ok(buf) => {
                shared.inbox.borrow_mut().push_back((peer, buf));
                shared.progress.notify();
            }
            Err(e) => {
                if !shared.closing.get() {
                    tracing::warn!(peer, error = %e, "connection to peer lost");
                }
                shared.fail(peer, format!("TCP connection lost: {e}"));
                return;
            }
        }
    }
}

async fn write_loop(shared: Rc<TcpShared>, peer: u32, mut writer: FrameWriter) {
    let p = peer as usize;
    loop {
        let next = shared.outbox[p].borrow_mut().pop_front();
        let Some(frame) = next else {
            if shared.closing.get() {
                return;
            }
            shared.writer_wake[p].notified().await;
            continue;
        };
        shared.writing[p].set(true);
        let result = match &frame.payload {
            OutPayload::None => writer.send_frame(&frame.header, &[]).await,
            OutPayload::Owned(b) => writer.send_frame(&frame.header, b.as_slice()).await,
            OutPayload::User(buf, off, len) => {
                writer
                    .send_frame(&frame.header, buf.slice(*off, *len))
                    .await
            }
        };
        shared.writing[p].set(false);
        shared.outbox_bytes[p].set(shared.outbox_bytes[p].get() - frame.bytes);
        match result {
            Ok(()) => {
                if let Some(id) = frame.complete {
                    shared.sent.borrow_mut().push_back(id);
                }
                shared.progress.notify();
            }
            Err(e) => {
                shared.fail(peer, format!("TCP send failed: {e}"));
                // Drop what is queued: the engine fails the requests of a failed peer.
                shared.outbox[p].borrow_mut().clear();
                shared.outbox_bytes[p].set(0);
                return;
            }
        }
    }
}
