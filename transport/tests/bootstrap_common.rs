//! Shared helpers for the bootstrap integration tests (included with `mod`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of the bootstrap_probe example, building it if needed.
pub fn probe() -> PathBuf {
    let zrun = PathBuf::from(env!("CARGO_BIN_EXE_zrun"));
    let dir = zrun.parent().expect("bin dir").join("examples");
    let p = dir.join("bootstrap_probe");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "-q",
            "-p",
            "zerorank-transport",
            "--example",
            "bootstrap_probe",
        ])
        .args(if dir.to_string_lossy().contains("release") {
            vec!["--release"]
        } else {
            vec![]
        })
        .status()
        .expect("run cargo build --example bootstrap_probe");
    assert!(status.success(), "building bootstrap_probe failed");
    assert!(p.exists(), "bootstrap_probe not found at {}", p.display());
    p
}

pub fn zrun() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zrun"));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Wait for a child with a bound; kill it and panic if it overruns.
pub fn wait_bounded(mut child: Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("collect output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "process did not finish within {secs} s\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn run_bounded(mut cmd: Command, secs: u64) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    wait_bounded(cmd.spawn().expect("spawn"), secs)
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A free TCP port on 127.0.0.1 (best effort).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Remove every variable that could make bootstrap pick another launcher.
pub fn clean_env(c: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("PMI_")
            || k.starts_with("ZR_")
            || k.starts_with("SLURM_")
            || k.starts_with("MPI_")
            || k.starts_with("HYD")
        {
            c.env_remove(k);
        }
    }
    c
}
