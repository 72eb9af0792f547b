//! Per-peer traffic counters, so tests and users can see which path a pair used.

use super::protocol::Path;

/// What this rank has exchanged with one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStats {
    /// How the peer is reached.
    pub path: Path,
    /// Frames sent to the peer.
    pub frames_sent: u64,
    /// Payload bytes sent to the peer (single-copy reads by the peer not included).
    pub bytes_sent: u64,
    /// Frames received from the peer.
    pub frames_received: u64,
    /// Large-message bytes this rank read from the peer's memory (single copy).
    pub bytes_read_cma: u64,
}

impl PeerStats {
    pub(crate) fn new(path: Path) -> Self {
        PeerStats {
            path,
            frames_sent: 0,
            bytes_sent: 0,
            frames_received: 0,
            bytes_read_cma: 0,
        }
    }
}
