//! The rank layer under other launchers: MPICH's Hydra (PMI-1) and a real one-node Slurm
//! (PMI-2 and the plain Slurm environment), and the locked-memory check.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn check_all_ok(out: &std::process::Output, n: usize, what: &str) {
    assert_ok(out, what);
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        s.matches(" ok").count(),
        n,
        "{what}: every rank reports ok:\n{s}"
    );
}

#[test]
fn hydra_mpich_pmi1_runs_point_to_point() {
    if !have("mpiexec.mpich") {
        eprintln!(
            "SKIPPED: mpiexec.mpich not installed (scripts/install-deps.sh installs it as root)"
        );
        return;
    }
    for scenario in ["basic", "order", "probe"] {
        let mut cmd = Command::new("mpiexec.mpich");
        cmd.args(["-n", "3"])
            .arg(example("p2p_check"))
            .arg(scenario);
        let out = run_bounded(cmd, Duration::from_secs(120));
        check_all_ok(&out, 3, &format!("mpiexec.mpich -n 3 p2p_check {scenario}"));
    }
}

fn slurm_usable() -> Option<String> {
    if !is_root() {
        return Some("not root".into());
    }
    if std::env::var("ZR_SLURM").as_deref() == Ok("0") {
        return Some("ZR_SLURM=0: scripts/slurm-up.sh could not start Slurm".into());
    }
    if !have("srun") {
        return Some("srun not installed".into());
    }
    let mut probe = Command::new("srun");
    probe.args(["-n1", "--time=1", "true"]);
    let out = run_bounded(probe, Duration::from_secs(60));
    (!out.status.success()).then(|| {
        format!(
            "srun -n1 true failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn slurm_srun_pmi2_and_plain_run_point_to_point() {
    if let Some(why) = slurm_usable() {
        eprintln!(
            "SKIPPED: no usable one-node Slurm ({why}); scripts/slurm-up.sh starts one as root"
        );
        return;
    }
    let ex = example("p2p_check");
    for mpi in ["--mpi=pmi2", "--mpi=none"] {
        let mut cmd = Command::new("srun");
        cmd.args(["-n", "2", mpi, "--time=2"]).arg(&ex).arg("basic");
        let out = run_bounded(cmd, Duration::from_secs(180));
        check_all_ok(&out, 2, &format!("srun {mpi} -n 2 p2p_check basic"));
    }
}

#[test]
fn too_small_locked_memory_limit_is_a_clear_error() {
    if !is_root() || !have("setpriv") || !have("prlimit") {
        eprintln!(
            "SKIPPED: needs root, setpriv and prlimit to drop CAP_IPC_LOCK and lower the limit"
        );
        return;
    }
    // Without CAP_IPC_LOCK, and with a 64 KiB limit, 2 ranks cannot fit.
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--bounding-set=-ipc_lock",
        "--inh-caps=-ipc_lock",
        "prlimit",
        "--memlock=65536:65536",
    ])
    .arg(zrun())
    .args(["-n", "2"])
    .arg(example("p2p_check"))
    .arg("basic");
    let out = run_bounded(cmd, Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the job must fail:\n{err}");
    assert!(
        err.contains("locked-memory limit") && err.contains("ulimit -l"),
        "the error says how to fix it:\n{err}"
    );
}
