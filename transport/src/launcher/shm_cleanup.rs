//! Removing a job's leftover shared-memory segments (`/dev/shm/zerorank-<job:016x>-*`).

use std::path::Path;

/// Remove `dir/zerorank-<job_id as 16 hex>-*`; returns how many were removed.
pub fn remove_job_segments(dir: &Path, job_id: u64) -> usize {
    let prefix = format!("zerorank-{job_id:016x}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with(&prefix) {
            match std::fs::remove_file(e.path()) {
                Ok(()) => {
                    tracing::debug!(path = %e.path().display(), "zrun: removed leftover segment");
                    n += 1;
                }
                Err(err) => {
                    tracing::warn!(path = %e.path().display(), error = %err, "zrun: cannot remove segment")
                }
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_this_job() {
        let d = tempfile::tempdir().unwrap();
        let job = 0xabcu64;
        std::fs::write(d.path().join(format!("zerorank-{job:016x}-n0")), b"").unwrap();
        std::fs::write(d.path().join(format!("zerorank-{:016x}-n0", job + 1)), b"").unwrap();
        assert_eq!(remove_job_segments(d.path(), job), 1);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
