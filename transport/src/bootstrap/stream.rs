//! A byte stream to a PMI peer: an inherited socket (`PMI_FD`) or a TCP connection, with
//! bounded line reads.

use super::BootstrapError;
use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Longest protocol line accepted; longer input is treated as garbage.
pub const MAX_LINE: usize = 4096;

/// A connected stream socket.
#[derive(Debug)]
pub enum Stream {
    /// A Unix-domain socket (socketpair from the launcher).
    Unix(UnixStream),
    /// A TCP connection.
    Tcp(TcpStream),
}

impl Stream {
    /// A second handle to the same socket.
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    /// Bound blocking reads (`None` = wait forever).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }

    /// Bound blocking writes.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
        }
    }

    /// Close both directions (wakes a thread blocked reading the other handle).
    pub fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// Take ownership of the socket named by environment variable `var` (e.g. `PMI_FD`).
///
/// The descriptor is checked to be an open stream socket before it is adopted, and marked
/// close-on-exec so that programs this rank starts do not inherit it.
pub fn adopt_fd(var: &'static str, value: &str) -> Result<Stream, BootstrapError> {
    let bad = |expected: &str| BootstrapError::BadEnv {
        var,
        value: value.chars().take(20).collect(),
        expected: expected.into(),
    };
    let fd: RawFd = value
        .trim()
        .parse()
        .map_err(|_| bad("a file descriptor number"))?;
    if fd < 3 {
        return Err(bad(
            "a socket file descriptor (>= 3) inherited from the launcher",
        ));
    }
    // Is it an open stream socket? (fcntl fails with EBADF on a closed descriptor.)
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    use nix::sys::socket::{getsockopt, sockopt};
    if fcntl(fd, FcntlArg::F_GETFD).is_err() {
        return Err(bad(
            "an open descriptor: the launcher's socket was not inherited \
                        (was PMI_FD copied from another shell?)",
        ));
    }
    // SAFETY: `fd` is open (checked above) and was handed to this process by its launcher
    // for exclusive use by the PMI client; nothing else in this process owns or closes it.
    // bootstrap() adopts it once per process.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    match getsockopt(&owned, sockopt::SockType) {
        Ok(nix::sys::socket::SockType::Stream) => {}
        _ => {
            // Give the descriptor back untouched: it is not ours to close.
            let _ = std::os::fd::IntoRawFd::into_raw_fd(owned);
            return Err(bad("a stream socket from the launcher"));
        }
    }
    let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    Ok(Stream::Unix(UnixStream::from(owned)))
}

/// Read one `\n`-terminated line (without the newline) of at most [`MAX_LINE`] bytes.
/// `Ok(None)` at end of stream.
pub fn read_line<R: BufRead>(r: &mut R) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() > MAX_LINE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-line",
        ));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "line is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines() {
        let mut r = io::BufReader::new(&b"a=b\nc=d\r\n"[..]);
        assert_eq!(read_line(&mut r).ok().flatten().as_deref(), Some("a=b"));
        assert_eq!(read_line(&mut r).ok().flatten().as_deref(), Some("c=d"));
        assert!(matches!(read_line(&mut r), Ok(None)));
        let long = vec![b'x'; MAX_LINE + 10];
        assert!(read_line(&mut io::BufReader::new(&long[..])).is_err());
        assert!(read_line(&mut io::BufReader::new(&b"half"[..])).is_err());
        assert!(read_line(&mut io::BufReader::new(&b"\xff\xfe\n"[..])).is_err());
    }

    #[test]
    fn adopt_rejects_bad_fds() {
        assert!(adopt_fd("PMI_FD", "x").is_err());
        assert!(adopt_fd("PMI_FD", "1").is_err());
        assert!(adopt_fd("PMI_FD", "987654").is_err());
    }
}
