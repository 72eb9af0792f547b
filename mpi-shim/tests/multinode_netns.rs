//! Multi-node tests on one machine: ranks run in Linux network namespaces created by
//! `scripts/netns.sh`, joined in manual mode (`ZR_COORD`, `ZR_RANK`, ...). Needs root and
//! iproute2; skipped otherwise. Test names contain `netns` so they run serially.

mod common;

use common::example;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);
const SECRET: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const JOB_ID: &str = "0123456789abcdef";

fn netns_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("netns.sh")
}

/// Some(reason) when these tests cannot run here.
fn skip_reason() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    let has_ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !has_ip {
        return Some("`ip` (iproute2) not found".into());
    }
    None
}

/// A prefix unique to this process that does not end in a digit.
fn unique_prefix(tag: &str) -> String {
    let mut pid = std::process::id();
    let mut letters = String::new();
    loop {
        letters.push((b'a' + (pid % 26) as u8) as char);
        pid /= 26;
        if pid == 0 {
            break;
        }
    }
    format!("zrt{tag}{letters}")
}

/// The namespaces of one test; torn down on drop (also when the test panics).
struct Cluster {
    prefix: String,
    addrs: Vec<String>,
}

impl Cluster {
    fn up(prefix: &str, nodes: usize) -> Cluster {
        let mut cmd = Command::new("bash");
        cmd.arg(netns_script())
            .arg("up")
            .arg(prefix)
            .arg(nodes.to_string());
        // Construct the guard first so a failed `up` still cleans up.
        let mut c = Cluster {
            prefix: prefix.to_string(),
            addrs: vec![],
        };
        let out = common::run_bounded(cmd, Duration::from_secs(60));
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
        cmd.arg(netns_script())
            .arg("down")
            .arg(&self.prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match cmd.spawn() {
            Ok(mut ch) => {
                let start = Instant::now();
                loop {
                    match ch.try_wait() {
                        Ok(Some(st)) => {
                            if !st.success() {
                                eprintln!("warning: netns.sh down {} failed: {st:?}", self.prefix);
                            }
                            break;
                        }
                        Ok(None) if start.elapsed() < Duration::from_secs(60) => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        _ => {
                            let _ = ch.kill();
                            let _ = ch.wait();
                            eprintln!("warning: netns.sh down {} hung", self.prefix);
                            break;
                        }
                    }
                }
            }
            Err(e) => eprintln!("warning: cannot run netns.sh down: {e}"),
        }
    }
}

/// Node of each rank: 2 ranks per node.
fn node_of(rank: usize) -> usize {
    rank / 2
}

/// Start `size` ranks of `p2p_check <scenario>`, two per namespace.
fn spawn_job(
    c: &Cluster,
    scenario: &str,
    size: usize,
    port: u16,
    extra_env: &[(&str, &str)],
) -> Vec<Child> {
    spawn_example(c, "p2p_check", scenario, size, port, extra_env)
}

/// Start `size` ranks of the example `prog` with argument `scenario`, two per namespace.
fn spawn_example(
    c: &Cluster,
    prog: &str,
    scenario: &str,
    size: usize,
    port: u16,
    extra_env: &[(&str, &str)],
) -> Vec<Child> {
    let bin = example(prog);
    let coord = format!("{}:{port}", c.addrs[0]);
    let mut children = Vec::new();
    for rank in 0..size {
        let node = node_of(rank);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &c.ns(node)])
            .arg(&bin)
            .arg(scenario)
            .env("ZR_COORD", &coord)
            .env("ZR_RANK", rank.to_string())
            .env("ZR_SIZE", size.to_string())
            .env("ZR_NODE_ID", node.to_string())
            .env("ZR_SECRET", SECRET)
            .env("ZR_JOB_ID", JOB_ID)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        match cmd.spawn() {
            Ok(ch) => children.push(ch),
            Err(e) => {
                kill_all(&mut children);
                panic!("cannot start rank {rank}: {e}");
            }
        }
    }
    children
}

fn kill_all(children: &mut [Child]) {
    for ch in children.iter_mut() {
        let _ = ch.kill();
    }
    for ch in children.iter_mut() {
        let _ = ch.wait();
    }
}

/// Wait for every rank, bounded by `limit`; on timeout kill all and fail with HUNG.
/// Output is drained by reader threads so a chatty rank cannot block on a full pipe.
fn wait_job(mut children: Vec<Child>, what: &str, limit: Duration) -> Vec<Output> {
    let mut readers = Vec::new();
    for ch in children.iter_mut() {
        // A test may have taken a rank's stdout to watch it live.
        let so = ch.stdout.take();
        let mut se = ch.stderr.take().expect("stderr piped");
        let a = std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut so) = so {
                let _ = std::io::Read::read_to_end(&mut so, &mut v);
            }
            v
        });
        let b = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut se, &mut v);
            v
        });
        readers.push((a, b));
    }
    let start = Instant::now();
    let mut status = vec![None; children.len()];
    loop {
        for (i, ch) in children.iter_mut().enumerate() {
            if status[i].is_none() {
                status[i] = ch.try_wait().expect("try_wait");
            }
        }
        if status.iter().all(|s| s.is_some()) {
            break;
        }
        if start.elapsed() > limit {
            kill_all(&mut children);
            let mut report = String::new();
            for (i, (a, b)) in readers.into_iter().enumerate() {
                let out = a.join().unwrap_or_default();
                let err = b.join().unwrap_or_default();
                report += &format!(
                    "--- rank {i} (exited: {:?})\nstdout:\n{}\nstderr:\n{}\n",
                    status[i],
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&err)
                );
            }
            panic!("HUNG: {what} still running after {limit:?}\n{report}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    readers
        .into_iter()
        .zip(status)
        .map(|((a, b), st)| Output {
            status: st.unwrap(),
            stdout: a.join().unwrap_or_default(),
            stderr: b.join().unwrap_or_default(),
        })
        .collect()
}

fn describe(outs: &[Output]) -> String {
    let mut s = String::new();
    for (i, o) in outs.iter().enumerate() {
        s += &format!(
            "--- rank {i} ({:?})\nstdout:\n{}\nstderr:\n{}\n",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    s
}

fn assert_all_ok(outs: &[Output], what: &str) {
    assert!(
        outs.iter().all(|o| o.status.success()),
        "{what} failed\n{}",
        describe(outs)
    );
}

fn base_port(offset: u16) -> u16 {
    47000 + (std::process::id() % 1000) as u16 + offset
}

fn run_job(c: &Cluster, scenario: &str, port: u16) -> Vec<Output> {
    let children = spawn_job(c, scenario, 4, port, &[]);
    let outs = wait_job(
        children,
        &format!("p2p_check {scenario} (2 nodes x 2 ranks)"),
        LIMIT,
    );
    assert_all_ok(&outs, &format!("p2p_check {scenario} (2 nodes x 2 ranks)"));
    outs
}

#[test]
fn two_nodes_netns_use_shm_within_and_tcp_across() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let cluster = Cluster::up(&unique_prefix("a"), 2);

    let outs = run_job(&cluster, "paths", base_port(0));
    let mut seen = 0;
    for (rank, o) in outs.iter().enumerate() {
        let stdout = String::from_utf8_lossy(&o.stdout);
        for line in stdout.lines().filter(|l| l.starts_with("PATH rank ")) {
            // PATH rank A -> B: Path frames_sent N ...
            let words: Vec<&str> = line.split_whitespace().collect();
            let a: usize = words[2].parse().expect("rank A");
            let b: usize = words[4].trim_end_matches(':').parse().expect("rank B");
            assert_eq!(a, rank, "line {line:?} printed by rank {rank}");
            if a == b {
                continue;
            }
            let path = words[5];
            let frames: u64 = words
                .iter()
                .position(|w| *w == "frames_sent")
                .and_then(|i| words.get(i + 1))
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("no frames_sent in {line:?}"));
            let want = if node_of(a) == node_of(b) {
                "Shm"
            } else {
                "Tcp"
            };
            assert_eq!(
                path,
                want,
                "rank {a} -> {b} (nodes {} -> {}) uses {path}, expected {want}: {line:?}\n{}",
                node_of(a),
                node_of(b),
                describe(&outs)
            );
            assert!(frames > 0, "no frames sent on {line:?}");
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        4 * 3,
        "expected 12 PATH lines between distinct ranks\n{}",
        describe(&outs)
    );

    run_job(&cluster, "basic", base_port(1));
    run_job(&cluster, "large", base_port(2));
    drop(cluster);
}

/// Listening TCP ports in namespace `ns` owned by `pid`, and all p2p_check listeners.
fn listeners(ns: &str, pid: u32) -> (Vec<u16>, Vec<u16>) {
    let out = common::run_bounded(
        {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "ss", "-Hltnp"]);
            c
        },
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut mine, mut all) = (vec![], vec![]);
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        // State Recv-Q Send-Q Local:Port Peer:Port Process
        let Some(local) = words.get(3) else { continue };
        let Some(port) = local.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) else {
            continue;
        };
        if line.contains(&format!("pid={pid},")) {
            mine.push(port);
        }
        if line.contains("p2p_check") {
            all.push(port);
        }
    }
    (mine, all)
}

const PY_GARBAGE: &str = r#"
import os, socket, struct, sys
host, port, job = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 16)
def conn():
    s = socket.create_connection((host, port), timeout=10)
    return s
# (a) 4 KiB of random bytes
s = conn(); s.sendall(os.urandom(4096))
try:
    s.settimeout(3); s.recv(100)
except Exception: pass
s.close()
# (b) a truncated handshake: the first 10 bytes of a hello
hello = b"ZRNK" + struct.pack("<HBB", 1, 1, 0) + struct.pack("<QII", job, 0, 3) + os.urandom(32)
s = conn(); s.sendall(hello[:10]); s.close()
# (c) connect and close at once
s = conn(); s.close()
# (d) a well-formed hello, then an Auth with a MAC made without the secret
s = conn(); s.sendall(hello)
got = b""
s.settimeout(10)
while len(got) < 8 + 64:
    d = s.recv(8 + 64 - len(got))
    if not d: break
    got += d
print("challenge bytes", len(got), got[:8])
s.sendall(b"ZRNK" + struct.pack("<HBB", 1, 3, 0) + os.urandom(32))
try:
    r = s.recv(100); print("reply", r)
except Exception as e: print("reply error", e)
s.close()
print("done")
"#;

#[test]
fn netns_garbage_and_wrong_secret_are_refused_job_finishes() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let cluster = Cluster::up(&unique_prefix("b"), 2);
    let kvs_port = base_port(3);
    // The job streams until this file appears, so it is surely running during the attack.
    let stop = std::env::temp_dir().join(format!("zr-stop-{}", std::process::id()));
    let _ = std::fs::remove_file(&stop);
    let stop_s = stop.to_string_lossy().into_owned();
    let mut children = spawn_job(
        &cluster,
        "stream",
        4,
        kvs_port,
        &[
            ("ZR_STREAM_ROUNDS", "100000000"),
            ("ZR_STREAM_UNTIL_FILE", stop_s.as_str()),
            ("ZR_LOG", "warn"),
        ],
    );
    let rank3_pid = children[3].id();
    let ns1 = cluster.ns(1);

    // Find rank 3's listening port while the job runs.
    let start = Instant::now();
    let port = loop {
        let (mine, all) = listeners(&ns1, rank3_pid);
        if let Some(p) = mine.first() {
            break *p;
        }
        let early_exit = children
            .iter_mut()
            .any(|c| matches!(c.try_wait(), Ok(Some(_))));
        if early_exit || start.elapsed() > Duration::from_secs(30) {
            let others: Vec<u16> = all.into_iter().filter(|p| *p != kvs_port).collect();
            if let Some(p) = others.first() {
                eprintln!("rank 3 listener not found; using p2p_check listener {p} in {ns1}");
                break *p;
            }
            let outs = wait_job(children, "stream job", LIMIT);
            panic!(
                "no p2p_check TCP listener found in {ns1} (rank 3 pid {rank3_pid})\n{}",
                describe(&outs)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!(
        "rank 3 (pid {rank3_pid}) listens on {}:{port}",
        cluster.addrs[1]
    );

    let mut py = Command::new("ip");
    py.args(["netns", "exec", &cluster.ns(0), "python3", "-c", PY_GARBAGE])
        .arg(&cluster.addrs[1])
        .arg(port.to_string())
        .arg(JOB_ID);
    let py_out = common::run_bounded(py, Duration::from_secs(60));
    eprintln!(
        "attacker: {:?}\n{}{}",
        py_out.status,
        String::from_utf8_lossy(&py_out.stdout),
        String::from_utf8_lossy(&py_out.stderr)
    );
    let job_still_running = children
        .iter_mut()
        .all(|c| matches!(c.try_wait(), Ok(None)));
    std::fs::write(&stop, b"stop").expect("write the stop file");

    let outs = wait_job(children, "stream job under attack", LIMIT);
    let _ = std::fs::remove_file(&stop);
    assert_all_ok(&outs, "p2p_check stream with garbage connections");
    let err3 = String::from_utf8_lossy(&outs[3].stderr).into_owned();
    eprintln!("rank 3 stderr:\n{err3}");
    common::assert_ok(&py_out, "python attacker");
    assert!(
        job_still_running,
        "the job ended before the attack was over\n{}",
        describe(&outs)
    );
    assert!(
        err3.contains("refused incoming connection"),
        "rank 3 logged no refusal\n{}",
        describe(&outs)
    );
    let refusals = err3.matches("refused incoming connection").count();
    assert!(
        refusals >= 4,
        "expected 4 refusals (garbage, truncated, empty, wrong secret), got {refusals}\n{}",
        describe(&outs)
    );
    assert!(
        err3.contains("garbage") || err3.contains("magic"),
        "no garbage refusal logged\n{err3}"
    );
    drop(cluster);
}

#[test]
fn netns_tcp_peer_death_fails_pending_receive() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let cluster = Cluster::up(&unique_prefix("c"), 2);
    let mut children = spawn_job(&cluster, "peerdeath", 4, base_port(7), &[]);
    // The victim prints READY once it is up; read its stdout on a thread.
    let victim_out = children[3].stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(victim_out)
            .lines()
            .map_while(Result::ok)
        {
            if line.trim() == "READY" {
                let _ = tx.send(());
            }
        }
    });
    let start = std::time::Instant::now();
    loop {
        if rx.recv_timeout(Duration::from_millis(50)).is_ok() {
            break;
        }
        // Ranks 1 and 2 leave at once by design (see `peer_death` in p2p_check), so
        // only the waiting rank 0 or the victim leaving before READY is a failure.
        let exited = [0, 3]
            .into_iter()
            .any(|r| !matches!(children[r].try_wait(), Ok(None)));
        if exited || start.elapsed() > LIMIT {
            kill_all(&mut children);
            let outs: Vec<Output> = children
                .into_iter()
                .map(|c| c.wait_with_output().expect("collect output"))
                .collect();
            panic!(
                "{}: the victim rank never became ready\n{}",
                if exited {
                    "a rank exited early"
                } else {
                    "HUNG"
                },
                describe(&outs)
            );
        }
    }
    // Kill rank 3 (node 1) while rank 0 (node 0) waits for a message from it over TCP.
    let _ = children[3].kill();
    let outs = wait_job(children, "job after a TCP peer was killed", LIMIT);
    let out0 = String::from_utf8_lossy(&outs[0].stdout);
    assert!(
        outs[0].status.success(),
        "rank 0 must report the failure and exit cleanly\n{}",
        describe(&outs)
    );
    assert!(
        out0.contains("PEER FAILURE DETECTED") && out0.contains("rank 3 failed"),
        "rank 0: {out0}\n{}",
        describe(&outs)
    );
    drop(cluster);
}

/// Ranks on two nodes that pass inconsistent counts or roots to collectives (an
/// erroneous program; the collectives then run point-to-point schedules over TCP and
/// shared memory, which start with the ranks' agreement on the call): every rank gets a
/// disagreement error where the agreement sees it (also for sizes on either side of an
/// algorithm's threshold, and for ranks whose own buffers fail their checks), exactly the
/// ranks that can tell get it where it does not (Gatherv, Scatterv, Alltoallv counts),
/// nobody hangs, and the communicator works afterwards (`coll_check disagree-across`).
#[test]
fn netns_collectives_with_disagreeing_counts_end_on_every_rank() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let cluster = Cluster::up(&unique_prefix("d"), 2);
    let what = "coll_check disagree-across (2 nodes x 2 ranks)";
    let children = spawn_example(
        &cluster,
        "coll_check",
        "disagree-across",
        4,
        base_port(11),
        &[],
    );
    let outs = wait_job(children, what, LIMIT);
    assert_all_ok(&outs, what);
    drop(cluster);
}
