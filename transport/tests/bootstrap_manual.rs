//! Manual mode (ZR_COORD) and the Slurm-environment mode, with plain processes on localhost.

mod bootstrap_common;
use bootstrap_common::*;
use std::process::Command;

const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn manual(p: &std::path::Path, port: u16, rank: u32, node: u32, secret: &str) -> Command {
    let mut c = Command::new(p);
    clean_env(&mut c)
        .env("ZR_COORD", format!("127.0.0.1:{port}"))
        .env("ZR_RANK", rank.to_string())
        .env("ZR_SIZE", "3")
        .env("ZR_NODE_ID", node.to_string())
        .env("ZR_SECRET", secret)
        .env("ZR_BOOTSTRAP_TIMEOUT", "20");
    c
}

#[test]
fn manual_mode_three_ranks_and_a_wrong_secret() {
    let p = probe();
    let port = free_port();
    let nodes = [0, 1, 0];
    let mut kids = Vec::new();
    for r in 0..3u32 {
        let mut c = manual(&p, port, r, nodes[r as usize], SECRET);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        kids.push(c.spawn().unwrap());
        if r == 0 {
            // An intruder with the wrong secret, while the job is forming.
            let bad = &SECRET.replace('0', "1");
            let o = run_bounded(manual(&p, port, 1, 0, bad), 40);
            let (_, err) = text(&o);
            assert!(!o.status.success());
            assert!(err.contains("authentication failed"), "{err}");
        }
    }
    let want = [
        "rank 0/3 local 0/2 node 0 launcher Manual ok",
        "rank 1/3 local 0/1 node 1 launcher Manual ok",
        "rank 2/3 local 1/2 node 0 launcher Manual ok",
    ];
    for (r, k) in kids.into_iter().enumerate() {
        let o = wait_bounded(k, 60);
        let (out, err) = text(&o);
        assert!(o.status.success(), "rank {r}: {err}");
        assert!(out.contains(want[r]), "rank {r}: {out}");
    }
}

#[test]
fn manual_mode_rejects_bad_env() {
    let p = probe();
    let o = run_bounded(manual(&p, free_port(), 0, 0, "abc"), 30);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("ZR_SECRET"), "{err}");
    let mut c = manual(&p, free_port(), 5, 0, SECRET);
    c.env("ZR_RANK", "5");
    let (_, err) = text(&run_bounded(c, 30));
    assert!(err.contains("ZR_RANK"), "{err}");
}

#[test]
fn slurm_env_mode_on_localhost() {
    let p = probe();
    let port = free_port();
    let mut kids = Vec::new();
    for r in 0..3u32 {
        let mut c = Command::new(&p);
        clean_env(&mut c)
            .env("SLURM_PROCID", r.to_string())
            .env("SLURM_NTASKS", "3")
            .env("SLURM_LOCALID", r.to_string())
            .env("SLURM_NODEID", "0")
            .env("SLURM_JOB_ID", "4242")
            .env("SLURM_STEP_ID", "0")
            .env("SLURM_STEP_TASKS_PER_NODE", "3")
            .env("SLURM_STEP_NODELIST", "localhost")
            .env("ZR_KVS_PORT", port.to_string())
            .env("ZR_BOOTSTRAP_TIMEOUT", "20")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        kids.push(c.spawn().unwrap());
    }
    for (r, k) in kids.into_iter().enumerate() {
        let o = wait_bounded(k, 60);
        let (out, err) = text(&o);
        assert!(o.status.success(), "rank {r}: {err}");
        assert!(
            out.contains(&format!(
                "rank {r}/3 local {r}/3 node 0 launcher SlurmEnv ok"
            )),
            "{out}"
        );
    }
}

#[test]
fn missing_peers_time_out_with_a_clear_error() {
    let p = probe();
    let mut c = manual(&p, free_port(), 0, 0, SECRET);
    c.env("ZR_BOOTSTRAP_TIMEOUT", "2");
    let o = run_bounded(c, 60);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("timed out") && err.contains("ZR_BOOTSTRAP_TIMEOUT"),
        "{err}"
    );
}
