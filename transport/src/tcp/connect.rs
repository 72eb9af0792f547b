//! Connector side: bounded-retry connect, `TCP_NODELAY`, then the handshake.

use super::{handshake, handshake_within, TcpConfig, TcpConn, TcpError};
use glommio::net::TcpStream;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// Whether a failed connect is worth retrying (the peer is probably not listening yet).
fn retryable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::TimedOut
            | ErrorKind::Interrupted
    ) || matches!(
        e.raw_os_error(),
        Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ECANCELED | libc::EAGAIN)
    )
}

/// Open a TCP connection to `addr`, retrying refused/unreachable attempts with exponential
/// backoff until `timeout` has elapsed. Sets `TCP_NODELAY`.
pub async fn connect_stream(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, TcpError> {
    super::sigpipe::ignore();
    let deadline = Instant::now() + timeout;
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    // What the last attempt met: a refusal (nobody listens there yet) reads differently
    // from silence (a host that is down, a cut network).
    let mut last: Option<std::io::Error> = None;
    let timed_out = |attempts: u32, last: &Option<std::io::Error>| TcpError::Timeout {
        addr,
        what: "connecting",
        after: timeout,
        detail: last.as_ref().map_or(String::new(), |e| {
            format!("; {attempts} attempts, the last: {e}")
        }),
    };
    loop {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Err(timed_out(attempts, &last));
        }
        attempts += 1;
        let err = match TcpStream::connect_timeout(addr, left).await {
            Ok(stream) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::warn!(peer = %addr, error = %e, "could not set TCP_NODELAY");
                }
                return Ok(stream);
            }
            Err(e) => std::io::Error::from(e),
        };
        if !retryable(&err) {
            return Err(TcpError::Io(err));
        }
        tracing::trace!(peer = %addr, attempts, error = %err, "connect failed, retrying");
        last = Some(err);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out(attempts, &last));
        }
        glommio::timer::sleep(backoff.min(left)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connect to rank `peer` at `addr`, retrying refused/unreachable connects until
/// `cfg.connect_timeout`, then run the connector side of the handshake (bounded by
/// `cfg.handshake_timeout`).
pub async fn connect(
    addr: SocketAddr,
    job_id: u64,
    my_rank: u32,
    peer: u32,
    secret: &[u8; 32],
    cfg: &TcpConfig,
) -> Result<TcpConn, TcpError> {
    let mut stream = match connect_stream(addr, cfg.connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(peer = %addr, rank = peer, error = %e, "could not connect");
            return Err(e);
        }
    };
    let params = handshake::Params {
        job: job_id,
        my_rank,
        size: 0,
        secret,
    };
    let res = handshake_within(
        cfg.handshake_timeout,
        addr,
        handshake::connector(&mut stream, &params, peer),
    )
    .await;
    match res {
        Ok(()) => {
            tracing::debug!(peer = %addr, rank = peer, "connected and authenticated");
            Ok(TcpConn::new(stream, peer, addr, cfg))
        }
        Err(e) => {
            tracing::warn!(peer = %addr, rank = peer, error = %e, "handshake failed");
            Err(e)
        }
    }
}
