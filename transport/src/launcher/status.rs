//! Describing how a rank ended, and the matching exit code.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Exit code mpirun-style: the code, or 128 + signal.
pub fn exit_code(s: &ExitStatus) -> i32 {
    match (s.code(), s.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    }
}

/// "exited with code 3" / "was killed by signal 9 (SIGKILL)".
pub fn describe(s: &ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(sig)) => format!("was killed by signal {sig} ({})", signal_name(sig)),
        _ => "ended in an unknown way".into(),
    }
}

/// "SIGKILL" for 9.
pub fn signal_name(sig: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str())
        .unwrap_or("unknown signal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let s = ExitStatus::from_raw(3 << 8);
        assert_eq!(exit_code(&s), 3);
        assert_eq!(describe(&s), "exited with code 3");
        let k = ExitStatus::from_raw(9);
        assert_eq!(exit_code(&k), 137);
        assert_eq!(describe(&k), "was killed by signal 9 (SIGKILL)");
    }
}
