//! TCP between nodes: glommio (io_uring) sockets, an authenticated handshake and
//! length-prefixed frames.
//!
//! * [`handshake`]: mutual HMAC-SHA256 challenge-response over the per-job secret (the
//!   secret itself never crosses the wire).
//! * [`connect`](mod@connect): bounded-retry connect with `TCP_NODELAY`.
//! * [`framing`]: [`FrameReader`] / [`FrameWriter`], the `[u32 LE len][header][payload]`
//!   frame stream after the handshake.
//! * [`zerocopy`]: `IORING_OP_SEND_ZC` on a small private ring, with fallback to a plain send.
//!
//! Every function here must run inside a glommio executor.

pub mod connect;
pub mod framing;
pub mod handshake;
pub mod zerocopy;

pub use connect::connect;
pub use framing::{FrameReader, FrameWriter};

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use zerorank_core::frame::FrameError;

/// Knobs of the TCP transport.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// How long [`connect()`] keeps retrying a refused or unreachable address.
    pub connect_timeout: Duration,
    /// Bound on the whole handshake, on either side.
    pub handshake_timeout: Duration,
    /// Largest payload of one frame; a longer frame is a protocol error.
    pub max_frame_payload: usize,
    /// Break a connection whose sent bytes stay unacknowledged this long
    /// (`TCP_USER_TIMEOUT`): a peer cut off by a partition is then a connection error
    /// within this bound, and a new connection carries frames as soon as the network
    /// heals, instead of the old one waiting for TCP's retransmission timer, which
    /// backs off to minutes. Since Linux 5.11 a peer whose receive window stays closed
    /// this long (it stopped reading, with its buffers full) is cut too, even though it
    /// answers the window probes. `None`: the kernel's default (about 15 minutes).
    pub user_timeout: Option<Duration>,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            connect_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
            max_frame_payload: 4 << 20,
            user_timeout: None,
        }
    }
}

/// Why a TCP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TcpError {
    /// The peer refused the handshake and said why.
    #[error("peer refused the connection: {reason}")]
    Refused { reason: String },
    /// The peer does not know the job secret (a MAC did not verify), or it said we do not.
    #[error("handshake authentication failed: wrong job secret")]
    WrongSecret,
    /// The peer belongs to another job.
    #[error("peer is in job {remote:#x}, this job is {local:#x}")]
    WrongJob { local: u64, remote: u64 },
    /// The peer named a rank outside the job, or not this rank as destination.
    #[error("bad rank in handshake: {0}")]
    BadRank(String),
    /// The handshake bytes were not a zerorank handshake.
    #[error("garbage in handshake: {0}")]
    Garbage(String),
    /// A frame header failed validation.
    #[error("bad frame: {0}")]
    BadFrame(#[from] FrameError),
    /// A length prefix outside `64 ..= 64 + max_frame_payload`.
    #[error("frame length prefix {len} out of bounds (header 64 + payload at most {max_payload})")]
    BadLength { len: usize, max_payload: usize },
    /// A payload larger than `max_frame_payload` was given to `send_frame`.
    #[error("frame payload of {len} bytes exceeds the limit of {max_payload}")]
    PayloadTooLarge { len: usize, max_payload: usize },
    /// The length prefix disagrees with the header's payload length.
    #[error("length prefix says {prefix} payload bytes, header says {header}")]
    LengthMismatch { prefix: usize, header: usize },
    /// The stream ended in the middle of a frame or handshake message.
    #[error("connection closed in the middle of a message")]
    Truncated,
    /// The stream ended cleanly between frames.
    #[error("peer closed the connection")]
    PeerClosed,
    /// Gave up waiting.
    #[error("timed out after {after:?} while {what} (peer {addr}){detail}")]
    Timeout {
        addr: SocketAddr,
        what: &'static str,
        after: Duration,
        /// What the last attempt met, if there were several ("; last attempt: ..."),
        /// or nothing.
        detail: String,
    },
    /// A previous call on this half was abandoned or failed mid-frame; the stream is out of sync.
    #[error("connection unusable: an earlier frame was abandoned or failed midway")]
    Poisoned,
    /// Socket error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl TcpError {
    /// Map an I/O error met in the middle of a message: EOF becomes [`TcpError::Truncated`].
    pub(crate) fn mid_message(e: std::io::Error) -> TcpError {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            TcpError::Truncated
        } else {
            TcpError::Io(e)
        }
    }
}

/// Listening socket of a rank.
pub struct Listener {
    inner: glommio::net::TcpListener,
    local: SocketAddr,
}

impl Listener {
    /// Bind and listen. Must be called inside a glommio executor. A port that a live
    /// listener holds is refused ("Address already in use"): glommio binds with
    /// `SO_REUSEPORT`, which would let a second process share the port and take some of
    /// its connections, so a connection to the address is tried first. (A plain bind
    /// cannot tell: connections an earlier listener on the port accepted, still open or
    /// closing, stand in its way too.)
    pub fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
        sigpipe::ignore();
        if addr.port() != 0 {
            let mut probe = addr;
            if probe.ip().is_unspecified() {
                probe.set_ip(match addr {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            if std::net::TcpStream::connect_timeout(&probe, Duration::from_millis(200)).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("another process listens on {addr} (Address already in use)"),
                ));
            }
        }
        let inner = glommio::net::TcpListener::bind(addr).map_err(std::io::Error::from)?;
        let local = inner.local_addr().map_err(std::io::Error::from)?;
        Ok(Listener { inner, local })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Accept one connection and run the acceptor side of the handshake (bounded by
    /// `cfg.handshake_timeout`). A bad peer returns `Err(reason)` (already logged); the
    /// caller keeps accepting. The next connection waits for this one's handshake: a
    /// caller that must not let a silent peer hold up others accepts with
    /// [`accept_stream`](Self::accept_stream) and authenticates on a task of its own.
    pub async fn accept(
        &self,
        job_id: u64,
        my_rank: u32,
        size: u32,
        secret: &[u8; 32],
        cfg: &TcpConfig,
    ) -> Result<(u32, TcpConn), TcpError> {
        self.accept_stream()
            .await?
            .authenticate(job_id, my_rank, size, secret, cfg)
            .await
    }

    /// Accept one connection, not yet authenticated: run [`Incoming::authenticate`] on it.
    pub async fn accept_stream(&self) -> Result<Incoming, TcpError> {
        let stream = self.inner.accept().await.map_err(std::io::Error::from)?;
        let addr = stream.peer_addr().unwrap_or_else(|_| unspecified());
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(peer = %addr, error = %e, "could not set TCP_NODELAY");
        }
        Ok(Incoming { stream, addr })
    }
}

/// A connection accepted, before its handshake ([`Listener::accept_stream`]).
pub struct Incoming {
    stream: glommio::net::TcpStream,
    addr: SocketAddr,
}

impl Incoming {
    /// Where it comes from.
    pub fn peer_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Run the acceptor side of the handshake (bounded by `cfg.handshake_timeout`): the
    /// peer's rank and the connection, or why it was refused (already logged).
    pub async fn authenticate(
        mut self,
        job_id: u64,
        my_rank: u32,
        size: u32,
        secret: &[u8; 32],
        cfg: &TcpConfig,
    ) -> Result<(u32, TcpConn), TcpError> {
        let addr = self.addr;
        let params = handshake::Params {
            job: job_id,
            my_rank,
            size,
            secret,
        };
        let res = handshake_within(
            cfg.handshake_timeout,
            addr,
            handshake::acceptor(&mut self.stream, &params),
        )
        .await;
        match res {
            Ok(peer) => {
                tracing::debug!(peer = %addr, rank = peer, "accepted authenticated connection");
                Ok((peer, TcpConn::new(self.stream, peer, addr, cfg)))
            }
            Err(e) => {
                tracing::warn!(peer = %addr, error = %e, "refused incoming connection");
                Err(e)
            }
        }
    }
}

/// An authenticated connection to one peer rank.
pub struct TcpConn {
    stream: glommio::net::TcpStream,
    peer: u32,
    addr: SocketAddr,
    max_payload: usize,
}

impl TcpConn {
    pub(crate) fn new(
        stream: glommio::net::TcpStream,
        peer: u32,
        addr: SocketAddr,
        cfg: &TcpConfig,
    ) -> TcpConn {
        if let Some(t) = cfg.user_timeout {
            if let Err(e) = socket2::SockRef::from(&stream).set_tcp_user_timeout(Some(t)) {
                tracing::warn!(peer = %addr, error = %e, "could not set TCP_USER_TIMEOUT");
            }
        }
        TcpConn {
            stream,
            peer,
            addr,
            max_payload: cfg.max_frame_payload,
        }
    }

    /// The peer's rank.
    pub fn peer(&self) -> u32 {
        self.peer
    }

    /// The peer's socket address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Split into the frame reader and the frame writer (each may live in its own task).
    /// Take the connected socket out of glommio, for a data path that drives it with its
    /// own io_uring ring. The descriptor is duplicated, then glommio's stream is dropped.
    pub fn into_fd(self) -> std::io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsRawFd;
        let owned = {
            // SAFETY: the descriptor belongs to `self.stream`, which is alive for this
            // borrow; `try_clone_to_owned` duplicates it (F_DUPFD_CLOEXEC).
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.stream.as_raw_fd()) };
            borrowed.try_clone_to_owned()?
        };
        drop(self.stream);
        Ok(owned)
    }

    pub fn into_split(self) -> (FrameReader, FrameWriter) {
        framing::split(self.stream, self.peer, self.addr, self.max_payload)
    }
}

/// Run a handshake with `addr`, failing with [`TcpError::Timeout`] if it takes longer
/// than `d`.
pub(crate) async fn handshake_within<T>(
    d: Duration,
    addr: SocketAddr,
    handshake: impl Future<Output = Result<T, TcpError>>,
) -> Result<T, TcpError> {
    futures_lite::future::or(handshake, async {
        glommio::timer::sleep(d).await;
        Err(TcpError::Timeout {
            addr,
            what: "waiting for the handshake",
            after: d,
            detail: String::new(),
        })
    })
    .await
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

mod sigpipe {
    //! glommio sends without `MSG_NOSIGNAL`: make sure a write to a dead peer is an `EPIPE`
    //! error and not a process-killing `SIGPIPE` (Rust binaries ignore it already; a C host
    //! program might not).
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Once};

    pub(crate) fn ignore() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            if let Err(e) = signal_hook::flag::register(
                signal_hook::consts::SIGPIPE,
                Arc::new(AtomicBool::new(false)),
            ) {
                tracing::warn!(error = %e, "could not install a SIGPIPE handler");
            }
        });
    }
}
