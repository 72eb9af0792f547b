//! Logging of ranks and launchers: `tracing` to stderr, filtered by `ZR_LOG` (any
//! `tracing` filter; `warn` when unset or invalid).

use tracing_subscriber::EnvFilter;

/// Install the subscriber once per process; later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_env("ZR_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    // Colours only on a terminal: launchers collect rank output through pipes and files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}
