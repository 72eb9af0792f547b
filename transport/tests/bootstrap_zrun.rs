//! zrun end to end with real processes.

mod bootstrap_common;
use bootstrap_common::*;

fn ok_lines(out: &str, n: u32) {
    for r in 0..n {
        let want = format!("rank {r}/{n} local {r}/{n} node 0 launcher Zrun ok");
        assert!(
            out.lines().any(|l| l.ends_with(&want)),
            "missing {want:?} in:\n{out}"
        );
    }
}

#[test]
fn zrun_runs_1_to_4_ranks() {
    let p = probe();
    for n in 1..=4u32 {
        let mut c = zrun();
        clean_env(&mut c).args(["-n", &n.to_string()]).arg(&p);
        let o = wait_bounded(c.spawn().unwrap(), 60);
        let (out, err) = text(&o);
        assert!(o.status.success(), "n={n} failed: {err}");
        ok_lines(&out, n);
    }
}

#[test]
fn zrun_accepts_np_and_tags_output() {
    let p = probe();
    let mut c = zrun();
    clean_env(&mut c)
        .args(["-np", "3", "--tag-output", "--bind", "none"])
        .arg(&p);
    let o = wait_bounded(c.spawn().unwrap(), 60);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    ok_lines(&out, 3);
    for r in 0..3 {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("[{r}] rank {r}/3"))),
            "{out}"
        );
    }
}

#[test]
fn failing_rank_fails_the_job_and_kills_the_others() {
    let p = probe();
    let mut c = zrun();
    clean_env(&mut c).args(["-n", "3"]).arg(&p).args([
        "--exit-rank",
        "2",
        "--code",
        "3",
        "--sleep",
        "120",
        "--sleep-rank",
        "0",
    ]);
    let o = wait_bounded(c.spawn().unwrap(), 60);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("rank 2 (pid") && err.contains("exited with code 3"),
        "{err}"
    );
}

#[test]
fn sigkilled_rank_is_reported() {
    let p = probe();
    let mut c = zrun();
    clean_env(&mut c).args(["-n", "2"]).arg(&p).args([
        "--kill-rank",
        "1",
        "--sleep",
        "120",
        "--sleep-rank",
        "0",
    ]);
    let o = wait_bounded(c.spawn().unwrap(), 60);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(137), "{err}");
    assert!(
        err.contains("rank 1 (pid") && err.contains("killed by signal 9 (SIGKILL)"),
        "{err}"
    );
}

#[test]
fn timeout_kills_the_job() {
    let p = probe();
    let mut c = zrun();
    clean_env(&mut c)
        .args(["-n", "2", "--timeout", "2"])
        .arg(&p)
        .args(["--sleep", "120"]);
    let o = wait_bounded(c.spawn().unwrap(), 60);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("timeout"), "{err}");
}

#[test]
fn missing_program_is_reported() {
    let mut c = zrun();
    clean_env(&mut c).args(["-n", "2", "/nonexistent/zr-program"]);
    let o = wait_bounded(c.spawn().unwrap(), 30);
    assert_eq!(o.status.code(), Some(127));
}

#[test]
fn sigint_is_forwarded() {
    let p = probe();
    let mut c = zrun();
    clean_env(&mut c)
        .args(["-n", "2"])
        .arg(&p)
        .args(["--sleep", "120"]);
    let child = c.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let o = wait_bounded(child, 30);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("SIGINT"), "{err}");
}

#[test]
fn rank_dying_before_the_fence_does_not_hang_the_job() {
    let p = probe();
    let mut c = zrun();
    clean_env(&mut c)
        .args(["-n", "3"])
        .arg(&p)
        .args(["--early-exit-rank", "1"]);
    let o = wait_bounded(c.spawn().unwrap(), 60);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(7), "{err}");
    assert!(
        err.contains("rank 1 (pid") && err.contains("exited with code 7"),
        "{err}"
    );
}

#[test]
fn stdin_reaches_rank_0() {
    let mut c = zrun();
    clean_env(&mut c).args(["-n", "2", "--tag-output", "sh", "-c", "cat"]);
    c.stdin(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut i = child.stdin.take().unwrap();
        i.write_all(b"hello\n").unwrap();
    }
    let o = wait_bounded(child, 30);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.trim(), "[0] hello");
}

#[test]
fn help_mentions_np() {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_zrun"));
    c.arg("--help");
    let o = run_bounded(c, 30);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(
        out.contains("--np") && out.contains("--tag-output") && out.contains("--timeout"),
        "{out}"
    );
}

#[test]
fn leftover_shm_segments_are_removed() {
    // A job whose ranks create a segment named after the job id and never remove it.
    let mut c = zrun();
    clean_env(&mut c).args([
        "-n",
        "2",
        "sh",
        "-c",
        "touch /dev/shm/zerorank-$ZR_JOB_ID-n0-test; echo $ZR_JOB_ID",
    ]);
    let o = wait_bounded(c.spawn().unwrap(), 30);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let job = out.lines().next().unwrap_or("").trim().to_string();
    assert_eq!(job.len(), 16, "{out}");
    assert!(!std::path::Path::new(&format!("/dev/shm/zerorank-{job}-n0-test")).exists());
}
