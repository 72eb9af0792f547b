//! Communicators and collectives with real rank processes under `zrun`, at 1 to 4 ranks
//! (4 ranks oversubscribe the 2-core CI machine).

mod common;
use common::*;
use std::time::Duration;

/// Run `coll_check <name>` at 1 to 4 ranks; every rank must report ok. The stdout of each
/// run, by rank count.
fn scenario(name: &str) -> Vec<String> {
    (1..=4)
        .map(|n| {
            let out = zrun_example(n, "coll_check", &[name], Duration::from_secs(180));
            assert_ok(&out, &format!("coll_check {name} at {n} ranks"));
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert_eq!(
                stdout.matches(" ok").count(),
                n,
                "every rank reports ok:\n{stdout}"
            );
            stdout
        })
        .collect()
}

#[test]
fn dup_split_create_compare_and_subcommunicator_p2p() {
    scenario("comm");
}

#[test]
fn every_collective_gives_the_known_answers() {
    scenario("coll");
}

#[test]
fn nonblocking_collectives() {
    scenario("nonblocking");
}

#[test]
fn bad_arguments_give_errors() {
    scenario("errors");
}

#[test]
fn ranks_that_disagree_on_counts_get_errors_not_hangs() {
    scenario("disagree");
}

/// With `ZR_COLL_AGREE=all`, blocking collectives on one node also start with the ranks'
/// agreement, so ranks that disagree (counts, roots, a rank's own bad buffers) all get an
/// error, as across nodes (`coll_check disagree-across`).
#[test]
fn with_agreement_on_one_node_every_rank_of_a_disagreeing_call_gets_an_error() {
    for n in 2..=4 {
        let mut cmd = std::process::Command::new(zrun());
        cmd.env("ZR_COLL_AGREE", "all")
            .arg("-n")
            .arg(n.to_string())
            .arg(example("coll_check"))
            .arg("disagree-across");
        let out = run_bounded(cmd, Duration::from_secs(180));
        assert_ok(
            &out,
            &format!("coll_check disagree-across at {n} ranks, ZR_COLL_AGREE=all"),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.matches(" ok").count(),
            n,
            "every rank reports ok:\n{stdout}"
        );
    }
}

/// The `FLOAT` lines (hashes of float reduction results), sorted.
fn float_lines(stdout: &str) -> Vec<&str> {
    let mut v: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FLOAT")).collect();
    v.sort_unstable();
    v
}

#[test]
fn float_reductions_are_bitwise_identical_on_every_rank_and_run() {
    // Within a run, coll_check compares every rank's result itself; across runs, the
    // hashes it prints must be the same for the same rank count.
    let first = scenario("float");
    let second = scenario("float");
    for (n, (a, b)) in first.iter().zip(&second).enumerate() {
        let (la, lb) = (float_lines(a), float_lines(b));
        assert_eq!(la.len(), 15, "FLOAT lines at {} ranks:\n{a}", n + 1);
        assert_eq!(
            la,
            lb,
            "float results differ between runs at {} ranks",
            n + 1
        );
    }
}
