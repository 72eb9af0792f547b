//! bootstrap under a real Slurm (`scripts/slurm-up.sh` brings one up on localhost).

mod bootstrap_common;
use bootstrap_common::*;
use std::process::Command;

fn srun_usable() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED: not root, cannot use the local test Slurm");
        return false;
    }
    let ok = Command::new("timeout")
        .args(["20", "srun", "-n1", "true"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!(
            "SKIPPED: srun is not available or not working (run scripts/slurm-up.sh as root)"
        );
    }
    ok
}

fn check(mpi: Option<&str>, launcher: &str) {
    let p = probe();
    let mut c = Command::new("timeout");
    c.args(["60", "srun"]);
    if let Some(m) = mpi {
        c.arg(format!("--mpi={m}"));
    }
    clean_env(&mut c).args(["-n", "2"]).arg(&p);
    let o = run_bounded(c, 90);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for r in 0..2 {
        let want = format!("rank {r}/2 local {r}/2 node 0 launcher {launcher} ok");
        assert!(out.contains(&want), "missing {want:?}:\n{out}\n{err}");
    }
}

#[test]
fn srun_pmi2_and_plain_env() {
    if !srun_usable() {
        return;
    }
    check(Some("pmi2"), "SlurmPmi2");
    check(None, "SlurmEnv");
}
