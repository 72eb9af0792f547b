//! bootstrap under MPICH Hydra (PMI-1 over PMI_FD).

mod bootstrap_common;
use bootstrap_common::*;
use std::process::Command;

#[test]
fn probe_under_mpiexec_mpich() {
    if Command::new("mpiexec.mpich")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: mpiexec.mpich is not installed (apt-get install mpich)");
        return;
    }
    let p = probe();
    let mut c = Command::new("mpiexec.mpich");
    clean_env(&mut c).args(["-n", "3"]).arg(&p);
    let o = run_bounded(c, 60);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for r in 0..3 {
        let want = format!("rank {r}/3 local {r}/3 node 0 launcher Hydra ok");
        assert!(out.contains(&want), "missing {want:?}:\n{out}\n{err}");
    }
}
