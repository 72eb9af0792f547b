//! `IORING_OP_SEND_ZC` on a socket's raw fd, driven by a small private io_uring.
//!
//! glommio has no zero-copy send. [`ZcSender`] owns a tiny ring of its own, submits a
//! `SEND_ZC` for the payload and waits, asynchronously, for both the completion CQE and the
//! notification CQE (`IORING_CQE_F_MORE` on the first, `IORING_CQE_F_NOTIF` on the second):
//! only after the notification may the caller reuse the buffer. The wait polls the private
//! completion queue and yields to the glommio executor between polls (first
//! `yield_now`, then short timer sleeps), so two ranks sending to each other never deadlock.
//!
//! Rules for the caller: use it only while no glommio write is in flight on the same socket
//! (the frame writer owns the write half, and awaits its own writes to completion first).
//!
//! If the future is dropped while a send is in flight, the drop blocks until the kernel has
//! released the buffer (it cancels the send first). A future that is leaked
//! (`mem::forget`) while a send is in flight would leave the kernel reading a buffer the
//! caller may free: do not leak it.

use io_uring::{cqueue, opcode, types, IoUring};
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

/// Why a zero-copy send did not happen.
#[derive(Debug)]
pub enum ZcError {
    /// The kernel or socket does not support `SEND_ZC` (nothing was sent; use a plain send).
    Unsupported(io::Error),
    /// The send failed (some bytes may have been sent).
    Io(io::Error),
}

/// Largest chunk per `SEND_ZC` submission.
const MAX_CHUNK: usize = 1 << 30;
/// Polls of the private ring answered with `yield_now` before switching to timer sleeps.
const SPIN_POLLS: u32 = 64;
/// Longest sleep between two polls of the private ring.
const MAX_SLEEP: Duration = Duration::from_micros(500);

/// A private ring that sends on one socket with `SEND_ZC`.
pub struct ZcSender {
    ring: IoUring,
    fd: RawFd,
    next_id: u64,
    supported: bool,
}

impl std::fmt::Debug for ZcSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZcSender")
            .field("fd", &self.fd)
            .field("supported", &self.supported)
            .finish()
    }
}

/// One `SEND_ZC` in flight: which CQEs are still owed.
struct InFlight<'a> {
    ring: &'a mut IoUring,
    user_data: u64,
    result: Option<i32>,
    notif_pending: bool,
}

impl InFlight<'_> {
    fn done(&self) -> bool {
        self.result.is_some() && !self.notif_pending
    }

    fn reap(&mut self) {
        for cqe in self.ring.completion() {
            if cqe.user_data() != self.user_data {
                continue; // a stale cancel completion
            }
            if cqueue::notif(cqe.flags()) {
                self.notif_pending = false;
            } else {
                self.result = Some(cqe.result());
                self.notif_pending = cqueue::more(cqe.flags());
            }
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.reap();
        if self.done() {
            return;
        }
        // The future was abandoned mid-send: the kernel still reads the caller's buffer.
        // Cancel what can be cancelled, then block until the kernel lets go of it.
        tracing::warn!(
            "zero-copy send abandoned in flight; waiting for the kernel to release the buffer"
        );
        if self.result.is_none() {
            let cancel = opcode::AsyncCancel::new(self.user_data)
                .build()
                .user_data(u64::MAX);
            // SAFETY: an AsyncCancel entry references no memory.
            let _ = unsafe { self.ring.submission().push(&cancel) };
        }
        while !self.done() {
            if let Err(e) = self.ring.submit_and_wait(1) {
                if e.kind() != io::ErrorKind::Interrupted {
                    // Nothing sane is left; leaking is better than a use-after-free.
                    tracing::error!(error = %e, "private ring failed while draining a zero-copy send; aborting");
                    std::process::abort();
                }
            }
            self.reap();
        }
    }
}

impl ZcSender {
    /// A sender for socket `fd` (which must outlive it).
    pub fn new(fd: RawFd) -> io::Result<ZcSender> {
        let ring = IoUring::new(8)?;
        Ok(ZcSender {
            ring,
            fd,
            next_id: 1,
            supported: true,
        })
    }

    /// False once the kernel said it does not support `SEND_ZC` here.
    pub fn supported(&self) -> bool {
        self.supported
    }

    /// Send all of `buf` with `SEND_ZC`; returns when every byte is sent and the kernel no
    /// longer references `buf`.
    pub async fn send_all(&mut self, buf: &[u8]) -> Result<(), ZcError> {
        if !self.supported {
            return Err(ZcError::Unsupported(io::Error::from(
                io::ErrorKind::Unsupported,
            )));
        }
        let mut off = 0;
        while off < buf.len() {
            let chunk = &buf[off..(off + MAX_CHUNK).min(buf.len())];
            match self.send_once(chunk).await {
                Ok(0) => return Err(ZcError::Io(io::Error::from(io::ErrorKind::WriteZero))),
                Ok(n) => off += n,
                Err(e)
                    if e.raw_os_error() == Some(libc::EAGAIN)
                        || e.kind() == io::ErrorKind::Interrupted =>
                {
                    glommio::timer::sleep(Duration::from_micros(20)).await;
                }
                Err(e)
                    if off == 0
                        && matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) =>
                {
                    tracing::info!(error = %e, "SEND_ZC unsupported; falling back to plain sends");
                    self.supported = false;
                    return Err(ZcError::Unsupported(e));
                }
                Err(e) => return Err(ZcError::Io(e)),
            }
        }
        Ok(())
    }

    /// One `SEND_ZC` of `chunk` (at most `u32::MAX` bytes); bytes sent.
    async fn send_once(&mut self, chunk: &[u8]) -> io::Result<usize> {
        let user_data = self.next_id;
        self.next_id = if self.next_id >= u64::MAX - 1 {
            1
        } else {
            self.next_id + 1
        };
        let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        let entry = opcode::SendZc::new(types::Fd(self.fd), chunk.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL | libc::MSG_WAITALL)
            .build()
            .user_data(user_data);
        // SAFETY: the entry points at `chunk`, which stays borrowed (alive, unmoved) for the
        // whole of this function; `InFlight` below does not let the function return or the
        // future be dropped before both CQEs of this request are reaped (its `Drop` cancels and
        // blocks until they are), so the kernel never reads `chunk` after the borrow ends.
        unsafe {
            self.ring
                .submission()
                .push(&entry)
                .map_err(|_| io::Error::other("private io_uring submission queue full"))?;
        }
        let mut op = InFlight {
            ring: &mut self.ring,
            user_data,
            result: None,
            notif_pending: false,
        };
        op.ring.submit()?;
        let mut polls = 0u32;
        let mut sleep = Duration::from_micros(5);
        loop {
            op.reap();
            if op.done() {
                break;
            }
            polls += 1;
            if polls <= SPIN_POLLS {
                futures_lite::future::yield_now().await;
            } else {
                glommio::timer::sleep(sleep).await;
                sleep = (sleep * 2).min(MAX_SLEEP);
            }
        }
        let res = op.result.unwrap_or(-libc::EIO);
        if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(res as usize)
        }
    }
}
