//! A rank killed with SIGKILL mid-job: zrun exits non-zero within a bound, no rank is
//! left running and nothing is left in /dev/shm.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigkill_of_a_rank_ends_the_job_cleanly() {
    let ex = example("p2p_check");
    let tag = format!("hang-{}", std::process::id());
    let mut cmd = Command::new(zrun());
    cmd.args(["-n", "3"]).arg(&ex).args(["hang", &tag]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("start zrun");
    // However the test ends, stop the job: zrun forwards SIGTERM to its ranks.
    struct StopJob(std::process::Child);
    impl Drop for StopJob {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
                std::thread::sleep(Duration::from_secs(3));
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut job = StopJob(child);
    let child = &mut job.0;
    // Wait (bounded) until all 3 ranks run and have set up shared memory.
    // Anchored at the start of the command line, so zrun's own command is not matched.
    let rank_pattern = format!("^{} hang {tag}", ex.display());
    let ranks = wait_for_ranks(&rank_pattern, 3);
    let victim = ranks[1];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let killed_at = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if killed_at.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("HUNG: zrun still running 30 s after a rank was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "zrun must fail when a rank is killed");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("piped stderr"), &mut err).unwrap();
    assert!(
        err.contains("signal 9") || err.contains("SIGKILL"),
        "zrun names the cause: {err}"
    );
    let left = pids_of(&rank_pattern);
    assert!(left.is_empty(), "ranks left running: {left:?}");
    // Segments of other jobs starting concurrently exist only until all their ranks
    // attached; a segment of this job would stay. Allow a few seconds for the former.
    let checked = Instant::now();
    loop {
        let shm = shm_leftovers();
        if shm.is_empty() {
            break;
        }
        assert!(
            checked.elapsed() < Duration::from_secs(30),
            "segments left in /dev/shm: {shm:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
