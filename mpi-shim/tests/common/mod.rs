//! Helpers for tests that run real rank processes.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The target directory the test binary was built into (debug or release).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test>
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target/<profile>")
        .to_path_buf()
}

/// Build the example `name` of the zerorank crate (once per process) and return its path.
pub fn example(name: &str) -> PathBuf {
    let dir = target_dir();
    let path = dir.join("examples").join(name);
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = BUILD.lock().unwrap();
    let release = dir.ends_with("release");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", "zerorank", "--example", name]);
    if release {
        cmd.arg("--release");
    }
    let st = cmd.status().expect("run cargo build");
    assert!(st.success(), "building example {name} failed");
    assert!(path.exists(), "example {name} not at {}", path.display());
    path
}

/// The zrun binary (built by cargo for this workspace).
pub fn zrun() -> PathBuf {
    let dir = target_dir();
    let path = dir.join("zrun");
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = BUILD.lock().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", "zerorank-transport", "--bin", "zrun"]);
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().expect("run cargo build").success(),
        "building zrun failed"
    );
    path
}

/// Run a command with a hard time limit; a command still running then is killed and the
/// test fails with a clear message.
///
/// The command runs in a process group of its own. On a timeout the group gets SIGTERM
/// (a launcher forwards it to its ranks and cleans up), and SIGKILL 3 s later, so no
/// process of a hung job is left running to slow down the tests after it.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .process_group(0);
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if start.elapsed() > limit {
            let group = -(child.id() as i32);
            // SAFETY: kill(2) with a process-group id has no memory-safety preconditions.
            unsafe { libc::kill(group, libc::SIGTERM) };
            let grace = Instant::now();
            while grace.elapsed() < Duration::from_secs(3)
                && child.try_wait().ok().flatten().is_none()
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: as above.
            unsafe { libc::kill(group, libc::SIGKILL) };
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "HUNG: {desc} still running after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `zrun -n N example args...`, bounded.
pub fn zrun_example(n: usize, name: &str, args: &[&str], limit: Duration) -> Output {
    let mut cmd = Command::new(zrun());
    cmd.arg("-n")
        .arg(n.to_string())
        .arg(example(name))
        .args(args);
    run_bounded(cmd, limit)
}

/// Assert success and show the output otherwise.
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Files this job left in /dev/shm.
pub fn shm_leftovers() -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("zerorank-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Pids of the processes whose command line matches `pattern` (`pgrep -f`).
#[allow(dead_code)] // not every test file uses it
pub fn pids_of(pattern: &str) -> Vec<i32> {
    let out = Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Wait (at most 60 s) until exactly `n` processes match `pattern`, then another 500 ms
/// so they get past initialisation; their pids.
#[allow(dead_code)] // not every test file uses it
pub fn wait_for_ranks(pattern: &str, n: usize) -> Vec<i32> {
    let start = Instant::now();
    let pids = loop {
        let p = pids_of(pattern);
        if p.len() == n {
            break p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "ranks did not start: {p:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(500));
    pids
}

/// The release directory holding `zrun`, `zrcc` and `libmpi.so` for the C tests: built
/// here (`cargo build --release` of the MPI library and the launchers) unless
/// `ZR_NO_BUILD=1`; under `ZR_TARGET_DIR` when set (test-all.sh sets it).
#[allow(dead_code)]
pub fn release_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match std::env::var_os("ZR_TARGET_DIR") {
            Some(d) => PathBuf::from(d).join("release"),
            None => target_dir().parent().expect("target dir").join("release"),
        };
        if std::env::var("ZR_NO_BUILD").as_deref() == Ok("1") {
            eprintln!("ZR_NO_BUILD=1: using {} as it is", dir.display());
        } else {
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "--release", "-q", "-p", "zerorank-mpi"])
                .args(["-p", "zerorank-transport", "--lib", "--bins"]);
            if let Some(t) = dir.parent() {
                cmd.env("CARGO_TARGET_DIR", t);
            }
            let out = run_bounded(cmd, Duration::from_secs(2400));
            assert_ok(
                &out,
                "cargo build --release (zerorank-mpi, zerorank-transport)",
            );
        }
        for f in ["zrun", "zrcc", "libmpi.so"] {
            assert!(
                dir.join(f).is_file(),
                "{} is missing",
                dir.join(f).display()
            );
        }
        dir
    })
}

/// Build the C program `src` into `exe` with the release `zrcc`, strictly
/// (`-std=c99 -O2 -Wall -Wextra -Werror`); panics with the compiler's output if it fails.
pub fn zrcc_build(src: &std::path::Path, exe: &std::path::Path) {
    let mut cc = Command::new(release_dir().join("zrcc"));
    cc.args(["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(exe)
        .arg(src);
    let out = run_bounded(cc, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "zrcc failed on {}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
