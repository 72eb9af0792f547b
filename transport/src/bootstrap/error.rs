//! Why bootstrap failed; every message names the cause and the fix.

use thiserror::Error;

/// A bootstrap failure.
#[derive(Debug, Error)]
pub enum BootstrapError {
    /// A required environment variable is not set.
    #[error("environment variable {var} is not set: {hint}")]
    MissingEnv {
        /// The variable.
        var: &'static str,
        /// What sets it / how to fix.
        hint: &'static str,
    },
    /// An environment variable has a value that cannot be used.
    #[error("environment variable {var}={value:?} is malformed: expected {expected}")]
    BadEnv {
        /// The variable.
        var: &'static str,
        /// Its value (truncated).
        value: String,
        /// What it should look like.
        expected: String,
    },
    /// An I/O error talking to the launcher or the coordinator.
    #[error("{what}: {source} (is the launcher or rank 0 still alive?)")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A wait ran out of time.
    #[error(
        "timed out after {secs} s {what}; check that all ranks started, or raise \
         ZR_BOOTSTRAP_TIMEOUT (seconds)"
    )]
    Timeout {
        /// What we were waiting for.
        what: String,
        /// How long we waited.
        secs: u64,
    },
    /// Could not reach the coordinator.
    #[error(
        "could not connect to the bootstrap coordinator at {addr} for {secs} s: {last_error}; \
         check that rank 0 runs and that {addr} is reachable (firewall, ZR_COORD, \
         ZR_KVS_PORT)"
    )]
    Connect {
        /// host:port tried.
        addr: String,
        /// How long we retried.
        secs: u64,
        /// The last error seen.
        last_error: String,
    },
    /// The peer sent something that is not the expected protocol.
    #[error("protocol error from {peer}: {detail}; are the launcher and this program compatible?")]
    Protocol {
        /// Who sent it.
        peer: String,
        /// What was wrong.
        detail: String,
    },
    /// The key-value store refused a command.
    #[error("the key-value store refused {cmd}: {msg}")]
    Refused {
        /// The command.
        cmd: String,
        /// Its reason.
        msg: String,
    },
    /// A key was not found.
    #[error("key {key:?} not found in the key-value store; was it put before the last fence?")]
    KeyNotFound {
        /// The key.
        key: String,
    },
    /// A key that cannot travel over PMI.
    #[error(
        "invalid key {key:?}: keys must be 1..=32 printable ASCII characters without spaces, \
         '=' or ';'"
    )]
    InvalidKey {
        /// The key (truncated).
        key: String,
    },
    /// A value that cannot travel over PMI.
    #[error(
        "invalid value for key {key:?} ({len} bytes): values must be at most 200 printable \
         ASCII characters without spaces or '='"
    )]
    InvalidValue {
        /// The key.
        key: String,
        /// The value's length.
        len: usize,
    },
    /// Authentication with the coordinator failed.
    #[error("bootstrap authentication failed: {0}; all ranks must get the same ZR_SECRET")]
    Auth(String),
    /// The Kvs was used after finalize.
    #[error("the key-value store was used after finalize(); call finalize() last")]
    Finalized,
}

impl BootstrapError {
    /// Wrap an I/O error, turning read timeouts into [`BootstrapError::Timeout`].
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error, secs: u64) -> Self {
        let what = what.into();
        match source.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                BootstrapError::Timeout { what, secs }
            }
            _ => BootstrapError::Io { what, source },
        }
    }
}
