//! Length-prefixed frames after the handshake.
//!
//! Wire format of one frame: `[u32 LE length = 64 + payload][64-byte header][payload]`.
//! The reader checks the prefix against `64 ..= 64 + max_frame_payload` before it allocates,
//! validates the header with [`access_checked`] as soon as its 64 bytes are in, and checks
//! that the prefix agrees with [`FrameView::payload_len`](zerorank_core::frame::FrameView).
//!
//! Neither half is cancel-safe: a `next_frame` or `send_frame` future dropped midway leaves
//! the stream out of sync, and later calls on that half return [`TcpError::Poisoned`]. Run
//! each half in its own task.

use super::zerocopy::{ZcError, ZcSender};
use super::TcpError;
use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use nix::errno::Errno;
use nix::sys::socket::{sendmsg, MsgFlags};

/// Send what the socket takes now of `iov`, without blocking (and without SIGPIPE): the
/// bytes taken, 0 when it is full (or the call was interrupted).
pub(crate) fn send_now(fd: RawFd, iov: &[std::io::IoSlice<'_>]) -> Result<usize, Errno> {
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    match sendmsg::<()>(fd, iov, &[], flags, None) {
        Err(Errno::EAGAIN | Errno::EINTR) => Ok(0),
        r => r,
    }
}
use std::net::SocketAddr;
use std::os::unix::io::{AsRawFd, RawFd};
use zerorank_core::buffer::{BufferPool, RecvBuf};
use zerorank_core::frame::{access_checked, Expect, HeaderBytes, HEADER_LEN};

/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 4;
/// Size of the reader's staging buffer (small frames are read through it, several per recv).
const STAGE_LEN: usize = 64 << 10;
/// Remaining bytes of a frame at or above which the reader bypasses the staging buffer and
/// receives straight into the frame buffer.
const DIRECT_READ_MIN: usize = 16 << 10;
/// Most bytes the reader stages after a frame of [`DIRECT_READ_MIN`] or more: the next one
/// is likely large too, and what is staged of it is copied once more, where a direct
/// read is not (a full stage was 64 KiB copied per frame: 2.5% of a ring-broadcast
/// member's time at 64 KiB messages in 1 MiB frames). Enough for its prefix, its header
/// and a few small frames.
const FILL_AFTER_LARGE: usize = 4 << 10;
/// Payloads up to this size are copied next to the header and sent with one write.
pub const COPY_MAX: usize = 32 << 10;
/// Most pieces given to one `sendmsg` (Linux's `IOV_MAX`).
const GATHER_MAX: usize = 1024;
/// Payloads at or above this size go out with `SEND_ZC` by default; `None`: never.
/// Off: on loopback (2-core VM, kernel 6.18, `examples/tcp_bench.rs`, median of 5 runs)
/// plain writes did 558 / 585 / 481 MB/s for 64 KiB / 1 MiB / 4 MiB frames against
/// 99 / 227 / 300 MB/s with `SEND_ZC`. Re-measure on a real NIC before turning it on.
pub const DEFAULT_ZEROCOPY_MIN: Option<usize> = None;

pub(crate) fn split(
    stream: TcpStream,
    peer: u32,
    addr: SocketAddr,
    max_payload: usize,
) -> (FrameReader, FrameWriter) {
    let fd = stream.as_raw_fd();
    let (rd, wr) = futures_lite::io::split(stream);
    let reader = FrameReader {
        io: rd,
        stage: vec![0u8; STAGE_LEN].into_boxed_slice(),
        start: 0,
        end: 0,
        max_payload,
        peer,
        addr,
        busy: false,
        fill_max: STAGE_LEN,
    };
    let writer = FrameWriter {
        io: wr,
        fd,
        stash: Vec::with_capacity(PREFIX_LEN + HEADER_LEN + COPY_MAX),
        max_payload,
        zc: None,
        zc_min: DEFAULT_ZEROCOPY_MIN,
        peer,
        addr,
        busy: false,
    };
    (reader, writer)
}

/// The receiving half of a connection.
pub struct FrameReader {
    io: ReadHalf<TcpStream>,
    stage: Box<[u8]>,
    start: usize,
    end: usize,
    max_payload: usize,
    peer: u32,
    addr: SocketAddr,
    busy: bool,
    /// Most bytes the next [`fill`](Self::fill) takes (see [`FILL_AFTER_LARGE`]).
    fill_max: usize,
}

impl std::fmt::Debug for FrameReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("peer", &self.peer)
            .field("addr", &self.addr)
            .finish()
    }
}

impl FrameReader {
    /// The peer's rank.
    pub fn peer(&self) -> u32 {
        self.peer
    }

    /// Read the next frame into a pooled buffer: `header (64) + payload`, 64-byte aligned,
    /// header validated with [`access_checked`] and the length prefix checked against the
    /// header and `max_frame_payload`. EOF between frames: [`TcpError::PeerClosed`]; EOF inside
    /// a frame: [`TcpError::Truncated`].
    pub async fn next_frame(
        &mut self,
        pool: &BufferPool,
        expect: &Expect,
    ) -> Result<RecvBuf, TcpError> {
        if self.busy {
            return Err(TcpError::Poisoned);
        }
        self.busy = true;
        let res = self.read_frame(pool, expect).await;
        match &res {
            // A clean end or a good frame leaves the stream in sync.
            Ok(_) | Err(TcpError::PeerClosed) => self.busy = false,
            Err(e) => {
                tracing::warn!(peer = %self.addr, rank = self.peer, error = %e, "bad incoming frame");
            }
        }
        res
    }

    async fn read_frame(
        &mut self,
        pool: &BufferPool,
        expect: &Expect,
    ) -> Result<RecvBuf, TcpError> {
        // Length prefix.
        while self.end - self.start < PREFIX_LEN {
            if self.fill(0).await? == 0 {
                return Err(if self.end == self.start {
                    TcpError::PeerClosed
                } else {
                    TcpError::Truncated
                });
            }
        }
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&self.stage[self.start..self.start + PREFIX_LEN]);
        self.start += PREFIX_LEN;
        let len = u32::from_le_bytes(prefix) as usize;
        if len < HEADER_LEN || len - HEADER_LEN > self.max_payload {
            return Err(TcpError::BadLength {
                len,
                max_payload: self.max_payload,
            });
        }
        let mut buf = pool.get(len);
        // Header first: refuse garbage before reading (up to max_frame_payload of) payload.
        self.read_into(&mut buf.as_mut_slice()[..HEADER_LEN])
            .await?;
        let header = access_checked(&buf.as_slice()[..HEADER_LEN], expect)?;
        let announced = header.payload_len();
        if announced != len - HEADER_LEN {
            return Err(TcpError::LengthMismatch {
                prefix: len - HEADER_LEN,
                header: announced,
            });
        }
        self.read_into(&mut buf.as_mut_slice()[HEADER_LEN..])
            .await?;
        self.fill_max = if len >= DIRECT_READ_MIN {
            FILL_AFTER_LARGE
        } else {
            STAGE_LEN
        };
        Ok(buf)
    }

    /// Receive more bytes into the staging buffer, up to `fill_max` or `want` if that is
    /// more (the rest of a frame being read through the stage); 0 at EOF.
    async fn fill(&mut self, want: usize) -> Result<usize, TcpError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.stage.len() {
            self.stage.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let to = self.stage.len().min(self.end + self.fill_max.max(want));
        debug_assert!(to > self.end, "room to receive into");
        let n = self
            .io
            .read(&mut self.stage[self.end..to])
            .await
            .map_err(TcpError::Io)?;
        self.end += n;
        Ok(n)
    }

    /// Fill `dst` exactly: staged bytes first, then straight from the socket for large rests.
    async fn read_into(&mut self, dst: &mut [u8]) -> Result<(), TcpError> {
        let mut done = 0;
        while done < dst.len() {
            let staged = self.end - self.start;
            if staged > 0 {
                let n = staged.min(dst.len() - done);
                dst[done..done + n].copy_from_slice(&self.stage[self.start..self.start + n]);
                self.start += n;
                done += n;
                continue;
            }
            if dst.len() - done >= DIRECT_READ_MIN {
                let n = self.io.read(&mut dst[done..]).await.map_err(TcpError::Io)?;
                if n == 0 {
                    return Err(TcpError::Truncated);
                }
                done += n;
            } else if self.fill(dst.len() - done).await? == 0 {
                return Err(TcpError::Truncated);
            }
        }
        Ok(())
    }
}

/// The sending half of a connection.
pub struct FrameWriter {
    io: WriteHalf<TcpStream>,
    fd: RawFd,
    stash: Vec<u8>,
    max_payload: usize,
    zc: Option<ZcSender>,
    zc_min: Option<usize>,
    peer: u32,
    addr: SocketAddr,
    busy: bool,
}

impl std::fmt::Debug for FrameWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameWriter")
            .field("peer", &self.peer)
            .field("addr", &self.addr)
            .finish()
    }
}

impl FrameWriter {
    /// The peer's rank.
    pub fn peer(&self) -> u32 {
        self.peer
    }

    /// Payload size from which `send_frame` uses `SEND_ZC` (`None`: never). For measurements.
    pub fn set_zerocopy_min(&mut self, min: Option<usize>) {
        self.zc_min = min;
    }

    /// Write one frame: length prefix, header, payload. Payloads up to [`COPY_MAX`] are
    /// copied into a per-writer stash and sent with one write; larger payloads are sent from
    /// `payload` directly (no copy).
    pub async fn send_frame(
        &mut self,
        header: &HeaderBytes,
        payload: &[u8],
    ) -> Result<(), TcpError> {
        self.send_frame_parts(header, &[payload]).await
    }

    /// Write one frame whose payload is `parts` one after the other (a gather write): the
    /// receiver sees one contiguous payload. Small parts are copied together into the
    /// stash and go out in one write; a part larger than [`COPY_MAX`] is sent from where
    /// it lies (no copy), so a payload made of a few small headers and large shared
    /// buffers costs no user-space copy of the buffers.
    pub async fn send_frame_parts(
        &mut self,
        header: &HeaderBytes,
        parts: &[&[u8]],
    ) -> Result<(), TcpError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        // (The length prefix is 32 bits, whatever `max_frame_payload` says.)
        let max_payload = self.max_payload.min(u32::MAX as usize - HEADER_LEN);
        if total > max_payload {
            return Err(TcpError::PayloadTooLarge {
                len: total,
                max_payload,
            });
        }
        if self.busy {
            return Err(TcpError::Poisoned);
        }
        self.busy = true;
        let res = self.write_parts(header, total, parts).await;
        if res.is_ok() {
            self.busy = false;
        }
        res
    }

    async fn write_parts(
        &mut self,
        header: &HeaderBytes,
        total: usize,
        parts: &[&[u8]],
    ) -> Result<(), TcpError> {
        let len = u32::try_from(HEADER_LEN + total).expect("checked by send_frame_parts");
        self.stash.clear();
        self.stash.extend_from_slice(&len.to_le_bytes());
        self.stash.extend_from_slice(header.as_slice());
        if total <= COPY_MAX {
            for part in parts {
                self.stash.extend_from_slice(part);
            }
            return self.io.write_all(&self.stash).await.map_err(TcpError::Io);
        }
        if self.zc_min.is_none() {
            return self.gather(parts).await;
        }
        let room = PREFIX_LEN + HEADER_LEN + COPY_MAX;
        for part in parts {
            if part.len() <= COPY_MAX {
                if self.stash.len() + part.len() > room {
                    self.io.write_all(&self.stash).await.map_err(TcpError::Io)?;
                    self.stash.clear();
                }
                self.stash.extend_from_slice(part);
            } else {
                if !self.stash.is_empty() {
                    self.io.write_all(&self.stash).await.map_err(TcpError::Io)?;
                    self.stash.clear();
                }
                self.send_direct(part).await?;
            }
        }
        if !self.stash.is_empty() {
            self.io.write_all(&self.stash).await.map_err(TcpError::Io)?;
        }
        Ok(())
    }

    /// The stash (prefix and header) and `parts` with as few system calls as the socket
    /// allows: one non-blocking `sendmsg` of them all, then, if the socket buffer filled
    /// up, the rest through the runtime's writes (which wait for room).
    async fn gather(&mut self, parts: &[&[u8]]) -> Result<(), TcpError> {
        let pieces: Vec<&[u8]> = std::iter::once(&self.stash[..])
            .chain(parts.iter().copied())
            .filter(|p| !p.is_empty())
            .collect();
        let mut sent = 0;
        for chunk in pieces.chunks(GATHER_MAX) {
            let iov: Vec<std::io::IoSlice<'_>> =
                chunk.iter().map(|p| std::io::IoSlice::new(p)).collect();
            let want: usize = chunk.iter().map(|p| p.len()).sum();
            let n = send_now(self.fd, &iov).map_err(|e| TcpError::Io(e.into()))?;
            sent += n;
            if n < want {
                break;
            }
        }
        let mut skip = sent;
        for p in pieces {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            self.io.write_all(&p[skip..]).await.map_err(TcpError::Io)?;
            skip = 0;
        }
        Ok(())
    }

    /// Send `payload` from where it lies (with `SEND_ZC` when it is enabled and large).
    async fn send_direct(&mut self, payload: &[u8]) -> Result<(), TcpError> {
        if self.zc_min.is_some_and(|m| payload.len() >= m) {
            if self.zc.is_none() {
                match ZcSender::new(self.fd) {
                    Ok(z) => self.zc = Some(z),
                    Err(e) => {
                        tracing::info!(error = %e, "no private io_uring for SEND_ZC; plain sends only");
                        self.zc_min = None;
                    }
                }
            }
            if let Some(zc) = self.zc.as_mut().filter(|z| z.supported()) {
                match zc.send_all(payload).await {
                    Ok(()) => return Ok(()),
                    Err(ZcError::Io(e)) => return Err(TcpError::Io(e)),
                    Err(ZcError::Unsupported(_)) => self.zc_min = None,
                }
            }
        }
        self.io.write_all(payload).await.map_err(TcpError::Io)
    }

    /// Write raw bytes, bypassing framing (for tests of the peer's input checks).
    #[doc(hidden)]
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), TcpError> {
        self.io.write_all(bytes).await.map_err(TcpError::Io)
    }

    /// Send FIN after everything written so far (the read half stays open).
    pub async fn close(&mut self) -> Result<(), TcpError> {
        self.io.close().await.map_err(TcpError::Io)
    }
}
