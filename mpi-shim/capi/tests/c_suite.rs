//! The MPI C acceptance suite (`tests/c/*.c`, see `tests/c/README.md`) against zerorank:
//!
//! * built with zerorank's `zrcc` and run under `zrun` at 1, 2, 3 and 4 ranks;
//! * built with MPICH's `mpicc.mpich` and run on zerorank's `libmpich.so.12` (through
//!   `LD_LIBRARY_PATH`) under `zrun` and under MPICH's `mpiexec` at 2 and 3 ranks;
//! * at 2 emulated nodes x 2 ranks in network namespaces (root only), so collectives and
//!   communicators cross TCP;
//! * under a real one-node Slurm, `srun -n 2` and `srun --mpi=pmi2 -n 2` (when `ZR_SLURM=1`);
//! * installed into a prefix by `scripts/install.sh`, the installed `zrcc` and `zrun`.
//!
//! Everything uses the release build (`target/release`: `zrun`, `zrcc`, `libmpi.so`), made
//! fresh once per test process. Every program run is bounded. A test prints one line per
//! (program, ranks) and, when something failed, panics with the list of failures and the
//! full output of the first one. A test whose prerequisite is missing says so with
//! "SKIPPED LOUDLY". Every test name contains `c_suite`, so nextest runs them one at a time
//! (`.config/nextest.toml`).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::run_bounded;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Time allowed for one program run (a correct run takes well under a second).
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// Time allowed for all the runs of one test; runs left over are reported as failures.
/// (nextest kills a c_suite test after 600 s, see .config/nextest.toml.)
const TEST_BUDGET: Duration = Duration::from_secs(480);

const SECRET: &str = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1";

fn skip(why: &str) {
    eprintln!("SKIPPED LOUDLY: {why}");
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// The release directory holding zrun, zrcc and libmpi.so, brought up to date once per
/// process with `cargo build --release` (a no-op when nothing changed), unless
/// `ZR_NO_BUILD=1`. `$ZR_TARGET_DIR/release` when that is set (scripts/test-all.sh).
fn release() -> &'static Path {
    common::release_dir()
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c")
}

/// The suite's programs (basenames of tests/c/*.c), sorted.
fn programs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(suite_dir())
        .expect("read tests/c")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    v.sort();
    assert!(v.len() >= 10, "only {} programs in tests/c", v.len());
    v
}

/// A directory with zerorank's library under its ABI names (as in c_abi_smoke.rs).
fn libdir(tmp: &Path) -> PathBuf {
    let dir = tmp.join("lib");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(release().join("libmpi.so"), dir.join("libmpi.so.12")).unwrap();
    for alias in ["libmpich.so.12", "libmpi.so"] {
        std::os::unix::fs::symlink("libmpi.so.12", dir.join(alias)).unwrap();
    }
    dir
}

fn status_text(st: &ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => format!("{st:?}"),
    }
}

fn show(out: &Output) -> String {
    format!(
        "{}\n--- stdout:\n{}--- stderr:\n{}",
        status_text(&out.status),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The suite's pass criterion (as in tests/c/run.sh): exit status 0, exactly one
/// `OK <prog>` line on stdout, no line starting with `FAIL` on stderr.
fn verdict(prog: &str, status: &[ExitStatus], stdout: &str, stderr: &str) -> Result<(), String> {
    let ok_line = format!("OK {prog}");
    let n = stdout.lines().filter(|l| *l == ok_line).count();
    let bad: Vec<String> = status
        .iter()
        .enumerate()
        .filter(|(_, st)| !st.success())
        .map(|(i, st)| {
            let what = status_text(st);
            if status.len() > 1 {
                format!("rank {i}: {what}")
            } else {
                what
            }
        })
        .collect();
    if !bad.is_empty() {
        Err(bad.join(", "))
    } else if n != 1 {
        Err(format!("expected exactly one '{ok_line}' line, got {n}"))
    } else if stderr.lines().any(|l| l.starts_with("FAIL")) {
        Err("FAIL line on stderr".into())
    } else {
        Ok(())
    }
}

/// The results of one test: one line per run, the output of the first failure.
struct Report {
    what: String,
    start: Instant,
    lines: Vec<String>,
    failed: Vec<String>,
    first_failure: Option<String>,
}

impl Report {
    fn new(what: &str) -> Report {
        eprintln!("== {what}");
        Report {
            what: what.into(),
            start: Instant::now(),
            lines: vec![],
            failed: vec![],
            first_failure: None,
        }
    }

    /// Is there time left for more runs? If not, records `label` as not run.
    fn time_left(&mut self, label: &str) -> bool {
        if self.start.elapsed() < TEST_BUDGET {
            return true;
        }
        self.record(
            label,
            0.0,
            Err((
                format!("not run: the test's time budget ({TEST_BUDGET:?}) is used up"),
                String::new(),
            )),
        );
        false
    }

    /// `res`: Ok, or Err((why, full output)).
    fn record(&mut self, label: &str, secs: f64, res: Result<(), (String, String)>) {
        let line = match &res {
            Ok(()) => format!("PASS {label} ({secs:.2}s)"),
            Err((why, _)) => format!("FAIL {label} ({secs:.2}s): {why}"),
        };
        eprintln!("{line}");
        if let Err((why, output)) = res {
            self.failed.push(label.to_string());
            if self.first_failure.is_none() {
                self.first_failure = Some(format!("{label}: {why}\n{output}"));
            }
        }
        self.lines.push(line);
    }

    fn finish(self) {
        let pass = self.lines.len() - self.failed.len();
        eprintln!(
            "== {}: {pass} passed, {} failed in {:.1}s",
            self.what,
            self.failed.len(),
            self.start.elapsed().as_secs_f64()
        );
        if !self.failed.is_empty() {
            panic!(
                "{}: {} of {} runs failed: {}\n\n{}\n\n==== first failure: {}",
                self.what,
                self.failed.len(),
                self.lines.len(),
                self.failed.join(", "),
                self.lines.join("\n"),
                self.first_failure.unwrap_or_default()
            );
        }
    }
}

/// `-Wno-...` flags the compiler knows (GCC >= 11 warns about MPICH's sentinel pointers).
fn cflags(cc: &[String], tmp: &Path) -> Vec<String> {
    let mut f: Vec<String> = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let probe = tmp.join("probe.c");
    std::fs::write(&probe, "int main(void) { return 0; }\n").unwrap();
    for w in ["-Wno-stringop-overflow", "-Wno-stringop-overread"] {
        let mut cmd = Command::new(&cc[0]);
        cmd.args(&cc[1..])
            .args(["-Werror", w, "-c", "-o"])
            .arg(tmp.join("probe.o"))
            .arg(&probe);
        if run_bounded(cmd, Duration::from_secs(60)).status.success() {
            f.push(w.into());
        }
    }
    f
}

/// Builds every program with `cc` into `out`; build failures go into the report.
/// Returns the programs that built.
fn build_all(cc: &[String], out: &Path, rep: &mut Report) -> Vec<(String, PathBuf)> {
    build(cc, out, rep, &programs())
}

/// Builds the programs `progs` with `cc` into `out`; build failures go into the report.
fn build(cc: &[String], out: &Path, rep: &mut Report, progs: &[String]) -> Vec<(String, PathBuf)> {
    std::fs::create_dir_all(out).unwrap();
    let flags = cflags(cc, out);
    let mut built = vec![];
    for p in progs.iter().cloned() {
        let exe = out.join(&p);
        let mut cmd = Command::new(&cc[0]);
        cmd.args(&cc[1..])
            .args(&flags)
            .arg(format!("-I{}", suite_dir().display()))
            .arg("-o")
            .arg(&exe)
            .arg(suite_dir().join(format!("{p}.c")))
            .arg("-lm");
        let t0 = Instant::now();
        let o = run_bounded(cmd, Duration::from_secs(120));
        let secs = t0.elapsed().as_secs_f64();
        if o.status.success() {
            built.push((p, exe));
        } else {
            rep.record(
                &format!("{p} build ({})", cc.join(" ")),
                secs,
                Err(("does not compile".into(), show(&o))),
            );
        }
    }
    built
}

/// Runs `cmd` (one launcher invocation of `prog`) bounded, and records the result.
fn run_one(rep: &mut Report, label: &str, prog: &str, cmd: Command) {
    if !rep.time_left(label) {
        return;
    }
    let t0 = Instant::now();
    // run_bounded panics on a hang: turn that into a recorded failure and go on.
    let res =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_bounded(cmd, RUN_LIMIT)));
    let secs = t0.elapsed().as_secs_f64();
    let res = match res {
        Ok(out) => {
            let (so, se) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            verdict(prog, &[out.status], &so, &se).map_err(|why| (why, show(&out)))
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err((format!("hung (killed after {RUN_LIMIT:?})"), msg))
        }
    };
    rep.record(label, secs, res);
}

fn zrcc() -> Vec<String> {
    vec![release().join("zrcc").to_string_lossy().into_owned()]
}

fn zrun_cmd(np: usize, exe: &Path) -> Command {
    let mut cmd = Command::new(release().join("zrun"));
    cmd.arg("-n").arg(np.to_string()).arg(exe);
    // Known deviations of MPICH / Open MPI are never tolerated for zerorank.
    cmd.env_remove("ZR_XFAIL");
    // cargo and nextest put target/<profile> into LD_LIBRARY_PATH, which beats the
    // programs' RUNPATH: without this, zrcc-built programs would load target/debug's
    // libmpi.so.12 instead of the release one they were linked with.
    cmd.env_remove("LD_LIBRARY_PATH");
    cmd
}

/// Checks that `exe` (run without LD_LIBRARY_PATH) loads libmpi.so.12 from `dir`.
fn check_loads_from(rep: &mut Report, exe: &Path, dir: &Path) {
    let mut cmd = Command::new("ldd");
    cmd.arg(exe).env_remove("LD_LIBRARY_PATH");
    let out = run_bounded(cmd, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let want = format!("{}/libmpi.so.12", dir.display());
    let res = if text.contains(&format!("=> {want} ")) {
        Ok(())
    } else {
        Err((format!("libmpi.so.12 does not resolve to {want}"), text))
    };
    rep.record(&format!("ldd: {} loads {want}", exe.display()), 0.0, res);
}

#[test]
fn c_suite_zrcc_zrun_1_to_4_ranks() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rep = Report::new("C suite built with zrcc, run under zrun at 1-4 ranks");
    let built = build_all(&zrcc(), &tmp.path().join("zrcc"), &mut rep);
    if let Some((_, exe)) = built.first() {
        check_loads_from(&mut rep, exe, release());
    }
    for (p, exe) in &built {
        for np in 1..=4 {
            run_one(&mut rep, &format!("{p} np={np}"), p, zrun_cmd(np, exe));
        }
    }
    // Out-of-scope functions are stubs that name themselves.
    if let Some((_, exe)) = built.iter().find(|(p, _)| p == "unsupported") {
        let label = "unsupported np=1: the stubs print their names";
        let out = run_bounded(zrun_cmd(1, exe), RUN_LIMIT);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let missing: Vec<&str> = ["MPI_Open_port", "MPI_Win_create", "MPI_Comm_get_parent"]
            .into_iter()
            .filter(|f| !all.contains(f))
            .collect();
        let res = if missing.is_empty() {
            Ok(())
        } else {
            Err((format!("no line names {}", missing.join(", ")), show(&out)))
        };
        rep.record(label, 0.0, res);
    }
    rep.finish();
}

/// Large on-node broadcasts and reduce operands go through the slots or are read from the
/// publisher's memory, whichever the publisher has timed faster (choice.rs), so which
/// one a given run takes is up to the machine: run the collective programs with each way
/// forced, so both are checked every time.
#[test]
fn c_suite_collectives_each_large_message_way() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rep = Report::new("C collectives with ZR_NODE_WAY=stream and =direct at 2-4 ranks");
    let progs: Vec<String> = ["coll", "coll_gather", "ops", "ops_user", "datatype_coll"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let built = build(&zrcc(), &tmp.path().join("zrcc"), &mut rep, &progs);
    for way in ["stream", "direct"] {
        for (p, exe) in &built {
            for np in 2..=4 {
                let mut cmd = zrun_cmd(np, exe);
                cmd.env("ZR_NODE_WAY", way);
                run_one(&mut rep, &format!("{p} np={np} ZR_NODE_WAY={way}"), p, cmd);
            }
        }
    }
    rep.finish();
}

#[test]
fn c_suite_mpich_built_on_zerorank_under_zrun_and_mpiexec() {
    for tool in ["mpicc.mpich", "mpiexec.mpich"] {
        if !have(tool) {
            skip(&format!(
                "{tool} is missing (scripts/install-deps.sh installs mpich as root)"
            ));
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let lib = libdir(tmp.path());
    let mut rep = Report::new(
        "C suite built with mpicc.mpich, run on zerorank's libmpich.so.12 under zrun and mpiexec.mpich",
    );
    let built = build_all(&["mpicc.mpich".into()], &tmp.path().join("mpich"), &mut rep);

    // Make sure the binaries really load zerorank's library, not MPICH's.
    if let Some((_, exe)) = built.first() {
        let mut cmd = Command::new("ldd");
        cmd.arg(exe).env("LD_LIBRARY_PATH", &lib);
        let out = run_bounded(cmd, Duration::from_secs(30));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let want = format!("{}/libmpich.so.12", lib.display());
        let res = if text.contains(&want) {
            Ok(())
        } else {
            Err((format!("libmpich.so.12 does not resolve to {want}"), text))
        };
        rep.record(
            "ldd: MPICH binaries load zerorank's libmpich.so.12",
            0.0,
            res,
        );
    }

    for (p, exe) in &built {
        for np in [2, 3] {
            let mut cmd = zrun_cmd(np, exe);
            cmd.env("LD_LIBRARY_PATH", &lib);
            run_one(&mut rep, &format!("{p} np={np} zrun"), p, cmd);

            let mut cmd = Command::new("mpiexec.mpich");
            cmd.arg("-n")
                .arg(np.to_string())
                .arg(exe)
                .env("LD_LIBRARY_PATH", &lib)
                .env_remove("ZR_XFAIL");
            run_one(&mut rep, &format!("{p} np={np} mpiexec.mpich"), p, cmd);
        }
    }
    rep.finish();
}

// ---------------------------------------------------------------------------------------
// 2 emulated nodes x 2 ranks in network namespaces (scripts/netns.sh), manual mode.

fn netns_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/netns.sh")
}

/// The namespaces of one test; torn down on drop (also when the test panics).
struct Cluster {
    prefix: String,
    addrs: Vec<String>,
}

impl Cluster {
    fn up(nodes: usize) -> Cluster {
        // A prefix unique to this cluster that does not end in a digit: the process's
        // and, after a '_', the cluster's number within it, both as letters. (With the
        // process's alone, two tests running at once under `cargo test` shared the
        // namespaces, and one's teardown killed the other's ranks.)
        static CLUSTERS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let letters = |mut n: u32, out: &mut String| loop {
            out.push((b'a' + (n % 26) as u8) as char);
            n /= 26;
            if n == 0 {
                break;
            }
        };
        let mut prefix = String::from("zrc");
        letters(std::process::id(), &mut prefix);
        prefix.push('_');
        letters(
            CLUSTERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            &mut prefix,
        );
        let mut c = Cluster {
            prefix,
            addrs: vec![],
        };
        let mut cmd = Command::new("bash");
        cmd.arg(netns_script())
            .arg("up")
            .arg(&c.prefix)
            .arg(nodes.to_string());
        let out = run_bounded(cmd, Duration::from_secs(60));
        common::assert_ok(&out, "netns.sh up");
        c.addrs = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(c.addrs.len(), nodes, "netns.sh up printed {:?}", c.addrs);
        c
    }

    fn ns(&self, node: usize) -> String {
        format!("{}{}", self.prefix, node)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut cmd = Command::new("bash");
        cmd.arg(netns_script()).arg("down").arg(&self.prefix);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_bounded(cmd, Duration::from_secs(60))
        })) {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "warning: netns.sh down {} failed\n{}",
                self.prefix,
                show(&o)
            ),
            Err(_) => eprintln!("warning: netns.sh down {} hung", self.prefix),
        }
    }
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        let v: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        if v.is_empty() {
            vec![0]
        } else {
            v
        }
    }
}

/// The CPU list (for taskset) of emulated node `node` of `nodes`: its share of ours.
fn node_cpus(node: usize, nodes: usize) -> String {
    let cpus = allowed_cpus();
    let per = (cpus.len() / nodes).max(1);
    let mine: Vec<String> = (0..per)
        .map(|i| cpus[(node * per + i) % cpus.len()].to_string())
        .collect();
    mine.join(",")
}

/// Waits for every rank, bounded; kills them all on a timeout. Output is drained by
/// threads so that a chatty rank cannot block on a full pipe.
fn wait_ranks(mut children: Vec<Child>, limit: Duration) -> Result<Vec<Output>, String> {
    let mut readers = vec![];
    for ch in children.iter_mut() {
        let mut so = ch.stdout.take().expect("stdout piped");
        let mut se = ch.stderr.take().expect("stderr piped");
        readers.push((
            std::thread::spawn(move || {
                let mut v = vec![];
                let _ = std::io::Read::read_to_end(&mut so, &mut v);
                v
            }),
            std::thread::spawn(move || {
                let mut v = vec![];
                let _ = std::io::Read::read_to_end(&mut se, &mut v);
                v
            }),
        ));
    }
    let start = Instant::now();
    let mut status = vec![None; children.len()];
    let hung = loop {
        for (i, ch) in children.iter_mut().enumerate() {
            if status[i].is_none() {
                status[i] = ch.try_wait().expect("try_wait");
            }
        }
        if status.iter().all(|s| s.is_some()) {
            break false;
        }
        if start.elapsed() > limit {
            for ch in children.iter_mut() {
                let _ = ch.kill();
            }
            for (i, ch) in children.iter_mut().enumerate() {
                if status[i].is_none() {
                    status[i] = ch.wait().ok();
                }
            }
            break true;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let outs: Vec<Output> = readers
        .into_iter()
        .zip(status)
        .map(|((a, b), st)| Output {
            status: st.expect("exit status"),
            stdout: a.join().unwrap_or_default(),
            stderr: b.join().unwrap_or_default(),
        })
        .collect();
    if hung {
        Err(describe_ranks(&outs))
    } else {
        Ok(outs)
    }
}

fn describe_ranks(outs: &[Output]) -> String {
    outs.iter()
        .enumerate()
        .map(|(i, o)| format!("==== rank {i}\n{}", show(o)))
        .collect()
}

/// Every rank's stdout, and every rank's stderr, one after the other.
fn joined_output(outs: &[Output]) -> (String, String) {
    let all = |f: fn(&Output) -> &Vec<u8>| {
        outs.iter()
            .map(|o| String::from_utf8_lossy(f(o)).into_owned())
            .collect::<String>()
    };
    (all(|o| &o.stdout), all(|o| &o.stderr))
}

/// Can this test make network namespaces and pin ranks? If not, say so (`what` are not
/// done) and return false.
fn can_run_netns(what: &str) -> bool {
    if !is_root() {
        skip(&format!(
            "not root: network namespaces need root ({what} are not done)"
        ));
        return false;
    }
    if !have("ip") || !have("taskset") {
        skip("`ip` (iproute2) or `taskset` (util-linux) is missing");
        return false;
    }
    true
}

/// Start `nodes` x `per_node` ranks of `exe args` in the namespaces of `cluster` (manual
/// bootstrap, coordinator on node 0 at `port`), each node's ranks on its own CPUs.
fn spawn_netns(
    cluster: &Cluster,
    (nodes, per_node): (usize, usize),
    exe: &Path,
    args: &[&str],
    port: u16,
    job_id: &str,
) -> Result<Vec<Child>, String> {
    let coord = format!("{}:{port}", cluster.addrs[0]);
    let size = nodes * per_node;
    let mut children = vec![];
    for rank in 0..size {
        let node = rank / per_node;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &cluster.ns(node), "taskset", "-c"])
            .arg(node_cpus(node, nodes))
            .arg(exe)
            .args(args)
            .env("ZR_COORD", &coord)
            .env("ZR_RANK", rank.to_string())
            .env("ZR_SIZE", size.to_string())
            .env("ZR_NODE_ID", node.to_string())
            .env("ZR_SECRET", SECRET)
            .env("ZR_JOB_ID", job_id)
            .env("ZR_EXPECT_SHARED_SIZE", per_node.to_string())
            .env_remove("ZR_XFAIL")
            .env_remove("LD_LIBRARY_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match cmd.spawn() {
            Ok(ch) => children.push(ch),
            Err(e) => {
                for ch in children.iter_mut() {
                    let _ = ch.kill();
                    let _ = ch.wait();
                }
                return Err(format!("cannot start rank {rank}: {e}"));
            }
        }
    }
    Ok(children)
}

#[test]
fn c_suite_netns_2_nodes_x_2_ranks() {
    if !can_run_netns("the 2 nodes x 2 ranks C suite runs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut rep = Report::new("C suite built with zrcc at 2 emulated nodes x 2 ranks (netns)");
    let built = build_all(&zrcc(), &tmp.path().join("zrcc"), &mut rep);
    let cluster = Cluster::up(2);
    let (nodes, per_node) = (2, 2);
    let base_port = 46000 + (std::process::id() % 500) as u16 * 2;
    for (i, (p, exe)) in built.iter().enumerate() {
        let label = format!("{p} 2x2 netns");
        if !rep.time_left(&label) {
            continue;
        }
        let port = base_port + i as u16;
        // A job id of its own for every run (it names the shared-memory segments).
        let job_id = format!("c5{:06x}{:08x}", std::process::id() & 0xff_ffff, i);
        let t0 = Instant::now();
        let children = match spawn_netns(&cluster, (nodes, per_node), exe, &[], port, &job_id) {
            Ok(c) => c,
            Err(e) => {
                rep.record(&label, 0.0, Err((e, String::new())));
                continue;
            }
        };
        let res = match wait_ranks(children, RUN_LIMIT) {
            Err(report) => Err((format!("hung (killed after {RUN_LIMIT:?})"), report)),
            Ok(outs) => {
                let status: Vec<ExitStatus> = outs.iter().map(|o| o.status).collect();
                let (so, se) = joined_output(&outs);
                verdict(p, &status, &so, &se).map_err(|why| (why, describe_ranks(&outs)))
            }
        };
        rep.record(&label, t0.elapsed().as_secs_f64(), res);
    }
    drop(cluster);
    rep.finish();
}

#[test]
fn c_suite_slurm_srun_plain_and_pmi2() {
    if std::env::var("ZR_SLURM").as_deref() != Ok("1") {
        skip("ZR_SLURM is not 1 (scripts/test-all.sh sets it when scripts/slurm-up.sh started a one-node Slurm)");
        return;
    }
    if !have("srun") {
        skip("srun is missing although ZR_SLURM=1");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut rep = Report::new("C suite programs under srun");
    let progs = ["hello".to_string(), "coll".to_string()];
    let built = build(&zrcc(), &tmp.path().join("zrcc"), &mut rep, &progs);
    for (p, exe) in &built {
        for mpi in ["", "--mpi=pmi2"] {
            let mut cmd = Command::new("srun");
            if !mpi.is_empty() {
                cmd.arg(mpi);
            }
            cmd.args(["-n", "2", "--time=2"])
                .arg(exe)
                .env_remove("ZR_XFAIL")
                .env_remove("LD_LIBRARY_PATH");
            let label = if mpi.is_empty() {
                format!("{p}: srun -n 2")
            } else {
                format!("{p}: srun {mpi} -n 2")
            };
            run_one(&mut rep, &label, p, cmd);
        }
    }
    rep.finish();
}

#[test]
fn c_suite_install_prefix_hello() {
    let rel = release();
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("prefix");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .arg("--no-build")
        .arg("--prefix")
        .arg(&prefix)
        .env("CARGO_TARGET_DIR", rel.parent().unwrap());
    let out = run_bounded(cmd, Duration::from_secs(120));
    common::assert_ok(&out, "scripts/install.sh --no-build --prefix");
    for f in [
        "bin/zrun",
        "bin/zrcc",
        "include/mpi.h",
        "lib/libmpi.so.12",
        "lib/libmpi.so",
        "lib/libmpich.so.12",
        "lib/libmpich.so",
    ] {
        assert!(prefix.join(f).exists(), "install.sh did not install {f}");
    }
    // The installed zrcc uses the prefix, not the build tree.
    let mut cmd = Command::new(prefix.join("bin/zrcc"));
    cmd.args(["-show", "-o", "x", "x.c"]);
    let out = run_bounded(cmd, Duration::from_secs(30));
    common::assert_ok(&out, "installed zrcc -show");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    for want in [
        format!("-I{}", prefix.join("include").display()),
        format!("-L{}", prefix.join("lib").display()),
        format!("-Wl,-rpath,{}", prefix.join("lib").display()),
        "-lmpi".to_string(),
    ] {
        assert!(shown.contains(&want), "zrcc -show lacks {want}: {shown}");
    }
    // Build hello.c with it, run it with the installed zrun.
    let exe = tmp.path().join("hello");
    let mut cmd = Command::new(prefix.join("bin/zrcc"));
    cmd.arg("-O2")
        .arg(format!("-I{}", suite_dir().display()))
        .arg("-o")
        .arg(&exe)
        .arg(suite_dir().join("hello.c"));
    let out = run_bounded(cmd, Duration::from_secs(120));
    common::assert_ok(&out, "installed zrcc hello.c");
    let mut cmd = Command::new("ldd");
    cmd.arg(&exe).env_remove("LD_LIBRARY_PATH");
    let ldd =
        String::from_utf8_lossy(&run_bounded(cmd, Duration::from_secs(30)).stdout).into_owned();
    assert!(
        ldd.contains(&format!("{}/libmpi.so.12", prefix.join("lib").display())),
        "hello does not load the installed libmpi.so.12:\n{ldd}"
    );
    for np in [1, 2] {
        let mut cmd = Command::new(prefix.join("bin/zrun"));
        cmd.arg("-n")
            .arg(np.to_string())
            .arg(&exe)
            .env_remove("LD_LIBRARY_PATH");
        let out = run_bounded(cmd, RUN_LIMIT);
        let so = String::from_utf8_lossy(&out.stdout).into_owned();
        let se = String::from_utf8_lossy(&out.stderr).into_owned();
        if let Err(why) = verdict("hello", &[out.status], &so, &se) {
            panic!("installed zrun -n {np} hello: {why}\n{}", show(&out));
        }
        for r in 0..np {
            assert!(
                so.contains(&format!("hello from {r} of {np}")),
                "installed zrun -n {np} hello: no line from rank {r}\n{}",
                show(&out)
            );
        }
    }
}

/// Build `tests/failure/<name>.c` with zrcc (warnings are errors) into `dir`.
fn build_failure_program(name: &str, dir: &Path) -> PathBuf {
    let exe = dir.join(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/failure")
        .join(format!("{name}.c"));
    let mut cmd = Command::new(&zrcc()[0]);
    cmd.args(["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(&src);
    common::assert_ok(
        &run_bounded(cmd, Duration::from_secs(120)),
        &format!("zrcc {name}.c"),
    );
    exe
}

/// Assert that a run of the failure program `prog` (labelled `label`) succeeded, printed
/// "OK <prog>" and reported no FAIL.
fn assert_failure_program_ok(prog: &str, label: &str, out: &Output) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains(&format!("OK {prog}")) && !stderr.contains("FAIL"),
        "{label}: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
}

/// Run the failure program `prog` (`exe`, with `args`) at 2 nodes x 2 ranks in network
/// namespaces, ports from `port_base` (+ pid % 500), job id prefix `tag`; every rank must
/// finish, rank 0 print "OK <prog>" and nobody report FAIL. Skipped without netns.
fn run_failure_program_across(prog: &str, exe: &Path, args: &[&str], port_base: u16, tag: &str) {
    if !can_run_netns(&format!("the {prog} run across nodes")) {
        return;
    }
    let cluster = Cluster::up(2);
    let base_port = port_base + (std::process::id() % 500) as u16;
    let job_id = format!("{tag}{:06x}", std::process::id() & 0xff_ffff);
    let children = spawn_netns(&cluster, (2, 2), exe, args, base_port, &job_id)
        .unwrap_or_else(|e| panic!("across: {e}"));
    let outs = wait_ranks(children, RUN_LIMIT)
        .unwrap_or_else(|report| panic!("across: HUNG (killed after {RUN_LIMIT:?})\n{report}"));
    let (so, se) = joined_output(&outs);
    assert!(
        outs.iter().all(|o| o.status.success())
            && so.contains(&format!("OK {prog}"))
            && !se.contains("FAIL"),
        "across: expected every rank to finish\n{}",
        describe_ranks(&outs)
    );
    drop(cluster);
}

/// One rank passes an invalid datatype to each blocking collective and to MPI_Ibcast and
/// MPI_Iallreduce, and a null request to MPI_Ibarrier, that the other ranks call
/// correctly, under MPI_ERRORS_RETURN (`tests/failure/coll_refuse.c`): it gets its error,
/// the others MPI_SUCCESS or MPI_ERR_TRUNCATE, nobody waits forever, and the communicator
/// works afterwards. On one node at 2-4 ranks, and on 2 nodes x 2 ranks (`across`), where
/// the others must all get MPI_ERR_TRUNCATE and the bad rank also passes roots outside the
/// communicator.
#[test]
fn c_suite_one_rank_with_bad_arguments_leaves_nobody_waiting() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_failure_program("coll_refuse", tmp.path());
    for np in [2, 3, 4] {
        let out = run_bounded(zrun_cmd(np, &exe), Duration::from_secs(60));
        assert_failure_program_ok("coll_refuse", &format!("{np} ranks"), &out);
    }
    // On one node with the on-node agreement on, as across nodes (roots outside the
    // communicator too).
    for np in [2, 4] {
        let mut cmd = zrun_cmd(np, &exe);
        cmd.arg("across").env("ZR_COLL_AGREE", "all");
        let out = run_bounded(cmd, Duration::from_secs(60));
        let label = format!("{np} ranks, ZR_COLL_AGREE=all");
        assert_failure_program_ok("coll_refuse", &label, &out);
    }
    run_failure_program_across("coll_refuse", &exe, &["across"], 46000, "c7");
}

/// Small collectives on one node take a fast entry when their type and op are predefined,
/// the general path otherwise (`tests/failure/coll_small.c`): ranks on either path meet in
/// one call. Correct mixes give the known answers at every size up to past the fast
/// entry's; when the last rank passes another count, every call returns, someone gets
/// MPI_ERR_TRUNCATE, and the communicator works afterwards. At 2-4 ranks.
#[test]
fn c_suite_small_calls_meet_the_general_path() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_failure_program("coll_small", tmp.path());
    for np in [2, 3, 4] {
        let out = run_bounded(zrun_cmd(np, &exe), Duration::from_secs(60));
        assert_failure_program_ok("coll_small", &format!("{np} ranks"), &out);
    }
    // A Reduce operand past a slot streams (the root reads every chunk) or is read from
    // the rank's memory, whichever was faster: each way, forced.
    for way in ["stream", "direct"] {
        let mut cmd = zrun_cmd(3, &exe);
        cmd.env("ZR_NODE_WAY", way);
        let out = run_bounded(cmd, Duration::from_secs(60));
        assert_failure_program_ok("coll_small", &format!("3 ranks, ZR_NODE_WAY={way}"), &out);
    }
}

/// The ranks disagree on a rooted collective's root, or call different rooted collectives
/// at the same point, under MPI_ERRORS_RETURN (`tests/failure/coll_roots.c`): small and
/// streamed messages, on one node at 2-4 ranks (each rank's call word tells the others
/// which call it is in), on one node with the agreement on, and on 2 nodes x 2 ranks.
/// Nobody hangs, the ranks that wait for a root or a contribution that never comes get
/// MPI_ERR_TRUNCATE, a root outside the communicator gets MPI_ERR_ROOT, and the
/// communicator works afterwards.
#[test]
fn c_suite_disagreeing_roots_leave_nobody_waiting() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_failure_program("coll_roots", tmp.path());
    for np in [2, 3, 4] {
        let out = run_bounded(zrun_cmd(np, &exe), Duration::from_secs(60));
        assert_failure_program_ok("coll_roots", &format!("{np} ranks"), &out);
    }
    for np in [2, 4] {
        let mut cmd = zrun_cmd(np, &exe);
        cmd.env("ZR_COLL_AGREE", "all");
        let out = run_bounded(cmd, Duration::from_secs(60));
        let label = format!("{np} ranks, ZR_COLL_AGREE=all");
        assert_failure_program_ok("coll_roots", &label, &out);
    }
    run_failure_program_across("coll_roots", &exe, &[], 46500, "c8");
}

/// On one node, reductions the slots do not take (16 KiB elements, a 1 GiB operand) run
/// schedules, and every rank must choose alike (`tests/failure/coll_oversize.c`): in a
/// correct program the results are right; when only the last rank passes the large
/// datatype or the 1 GiB operand (erroneous), the ranks that depend on its choice get
/// MPI_ERR_TRUNCATE instead of waiting for each other, and the communicator works
/// afterwards. At 2-4 ranks.
#[test]
fn c_suite_reductions_past_the_slots_agree_or_fail_on_every_rank() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_failure_program("coll_oversize", tmp.path());
    for np in [2, 3, 4] {
        let out = run_bounded(zrun_cmd(np, &exe), Duration::from_secs(60));
        assert_failure_program_ok("coll_oversize", &format!("{np} ranks"), &out);
    }
}

/// A rank that fails inside a collective (a fatal MPI error, or SIGKILL) ends the job
/// promptly, with a non-zero status and a message naming the cause: the others, waiting
/// in MPI_Allreduce, never hang and never complete it.
#[test]
fn c_suite_rank_failure_in_collective_ends_job() {
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_failure_program("coll_failure", tmp.path());
    for (mode, np, cause) in [
        ("fatal", 2, "MPI_Bcast: MPI_ERR_ROOT"),
        ("fatal", 3, "MPI_Bcast: MPI_ERR_ROOT"),
        ("kill", 2, "rank 1"),
        ("kill", 3, "rank 1"),
    ] {
        let mut cmd = zrun_cmd(np, &exe);
        cmd.arg(mode);
        let start = Instant::now();
        let out = run_bounded(cmd, Duration::from_secs(60));
        let secs = start.elapsed().as_secs_f64();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            !out.status.success() && stderr.contains(cause) && !stdout.contains("SURVIVED"),
            "{mode} at {np} ranks: expected a failed job naming '{cause}' after {secs:.1} s, \
             got {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        );
    }
}

/// Ranks on two nodes whose counts disagree (the last rank passes one element more to
/// MPI_Allreduce, MPI_Reduce, MPI_Bcast, MPI_Allgather and MPI_Scan;
/// `tests/failure/coll_disagree.c`): under MPI_ERRORS_RETURN every rank's call returns,
/// with MPI_SUCCESS or MPI_ERR_TRUNCATE, and the job finishes; under MPI_ERRORS_ARE_FATAL
/// the job ends promptly with an error naming MPI_ERR_TRUNCATE. Neither hangs.
#[test]
fn c_suite_netns_disagreeing_counts_end_the_call_or_the_job() {
    if !can_run_netns("the disagreeing-counts runs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_failure_program("coll_disagree", tmp.path());
    let cluster = Cluster::up(2);
    let base_port = 45000 + (std::process::id() % 500) as u16 * 2;
    for (i, mode) in ["return", "fatal"].into_iter().enumerate() {
        let job_id = format!("c6{:06x}{:08x}", std::process::id() & 0xff_ffff, i);
        let children = spawn_netns(
            &cluster,
            (2, 2),
            &exe,
            &[mode],
            base_port + i as u16,
            &job_id,
        )
        .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let outs = wait_ranks(children, RUN_LIMIT)
            .unwrap_or_else(|report| panic!("{mode}: HUNG (killed after {RUN_LIMIT:?})\n{report}"));
        let (so, se) = joined_output(&outs);
        let ok = outs.iter().all(|o| o.status.success());
        match mode {
            "return" => assert!(
                ok && so.contains("OK coll_disagree") && !se.contains("FAIL"),
                "{mode}: expected every rank to finish\n{}",
                describe_ranks(&outs)
            ),
            _ => assert!(
                !ok && se.contains("MPI_ERR_TRUNCATE") && !so.contains("SURVIVED"),
                "{mode}: expected the job to end with MPI_ERR_TRUNCATE\n{}",
                describe_ranks(&outs)
            ),
        }
    }
    drop(cluster);
}
