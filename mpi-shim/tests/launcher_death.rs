//! A launcher killed with SIGKILL mid-job takes its ranks with it, so no rank is left
//! running as an orphan: `zrun`'s ranks get the kernel's parent-death signal, and ranks
//! started by MPICH's `mpiexec` notice, while they wait, that their launcher is gone and
//! fail with that cause. (Test names contain `mpich` where they start Hydra, so they run
//! serially.)

mod common;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn sigkill(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
}

/// Kills whatever the test leaves behind, however it ends.
struct Cleanup {
    launcher: Child,
    ranks: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.launcher.kill();
        let _ = self.launcher.wait();
        for p in pids_of(&self.ranks) {
            sigkill(p);
        }
    }
}

/// Start `launcher args.. p2p_check <scenario> <tag>` with 3 ranks and wait (bounded)
/// until they run.
fn start(launcher: &str, args: &[&str], scenario: &str) -> (Cleanup, Vec<i32>) {
    let ex = example("p2p_check");
    let tag = format!("{scenario}-{}", std::process::id());
    let mut cmd = Command::new(launcher);
    cmd.args(args).arg(&ex).args([scenario, &tag]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let launcher = cmd.spawn().expect("start the launcher");
    // Anchored at the start of the command line, so the launcher's own is not matched.
    let ranks = format!("^{} {scenario} {tag}", ex.display());
    let job = Cleanup { launcher, ranks };
    let pids = wait_for_ranks(&job.ranks, 3);
    (job, pids)
}

/// Wait (bounded) until none of `pids` runs any more.
fn assert_all_exit(job: &Cleanup, bound: Duration, what: &str) {
    let t = Instant::now();
    loop {
        let left = pids_of(&job.ranks);
        if left.is_empty() {
            return;
        }
        assert!(
            t.elapsed() < bound,
            "ranks {left:?} still running {bound:?} after {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigkill_of_zrun_takes_its_ranks_with_it() {
    // Rank 0 waits in a receive, ranks 1 and 2 sleep outside zerorank: only the
    // parent-death signal can end those.
    let (mut job, _) = start(&zrun().to_string_lossy(), &["-n", "3"], "hang");
    sigkill(job.launcher.id() as i32);
    let _ = job.launcher.wait();
    assert_all_exit(&job, Duration::from_secs(10), "zrun was killed");
}

#[test]
fn sigkill_of_mpiexec_mpich_ends_its_waiting_ranks() {
    let have = Command::new("mpiexec.mpich")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        eprintln!(
            "SKIPPED: mpiexec.mpich not installed (scripts/install-deps.sh installs it as root)"
        );
        return;
    }
    // Every rank waits in a receive nobody answers.
    let (mut job, ranks) = start("mpiexec.mpich", &["-n", "3"], "hangall");
    // Kill mpiexec and Hydra's proxy (the ranks' parent) at once, as a batch system
    // cancelling a job with SIGKILL would.
    let proxies: Vec<i32> = ranks.iter().filter_map(|&r| parent_of(r)).collect();
    sigkill(job.launcher.id() as i32);
    for p in proxies {
        sigkill(p);
    }
    let _ = job.launcher.wait();
    assert_all_exit(
        &job,
        Duration::from_secs(15),
        "mpiexec and its proxy were killed",
    );
}
