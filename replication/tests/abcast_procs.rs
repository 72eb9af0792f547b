//! The ring broadcast as real processes (`zr-abcast`): five members stream
//! broadcasts while one is killed with SIGKILL and then the leader is; a new process
//! joins; garbage and a member with the wrong job secret knock on the door. The
//! survivors' logs must pass the same checker as the simulator's runs.
//!
//! On one node (loopback for TCP, shared memory for the frames), and (as root, with
//! iproute2) with one network namespace per member joined by veth, over TCP alone
//! (`scripts/netns.sh`; test names contain `netns` so they run serially).
//! Every wait is bounded; a member that does not exit in time fails the test.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zerorank_replication::abcast::checker::{check, CheckOptions};
use zerorank_replication::abcast::{LogEntry, MemberLog, MsgId, NodeId, View, ViewId};

const SECRET: &str = "7f2c1e0d9b8a77665544332211ffeeddccbbaa99887766554433221100a1b2c3";
const WRONG: &str = "0000000000000000000000000000000000000000000000000000000000000001";

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Where members run: this host's loopback, or one namespace each.
enum Place {
    Loopback,
    Netns { prefix: String, addrs: Vec<String> },
}

impl Place {
    fn addr(&self, i: usize, port: u16) -> String {
        match self {
            Place::Loopback => format!("127.0.0.1:{port}"),
            Place::Netns { addrs, .. } => format!("{}:{port}", addrs[i % addrs.len()]),
        }
    }

    fn command(&self, i: usize) -> Command {
        let bin = env!("CARGO_BIN_EXE_zr-abcast");
        match self {
            Place::Loopback => Command::new(bin),
            Place::Netns { prefix, addrs } => {
                let mut c = Command::new("bash");
                c.arg(netns_script())
                    .arg("exec")
                    .arg(prefix)
                    .arg((i % addrs.len()).to_string())
                    .arg("--")
                    .arg(bin);
                c
            }
        }
    }
}

/// What goes to a member's port from a process that is not a member.
const GARBAGE: &[u8] =
    b"GET / HTTP/1.0\r\n\r\n\xff\xfe garbage garbage garbage garbage garbage garbage";

impl Place {
    /// Send garbage to `addr` (from node 0 under namespaces) and check that the member
    /// closes the connection; a reset is a close too, only a timeout is not.
    fn knock(&self, addr: &str) -> Result<(), String> {
        match self {
            Place::Loopback => {
                for _ in 0..40 {
                    if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let _ = s.write_all(GARBAGE);
                        let mut sink = Vec::new();
                        return match s.read_to_end(&mut sink) {
                            Ok(_) => Ok(()),
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) =>
                            {
                                Err(format!("still open after 5 s ({} bytes read)", sink.len()))
                            }
                            Err(_) => Ok(()),
                        };
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err("could not connect".into())
            }
            Place::Netns { prefix, .. } => {
                let (host, port) = addr.rsplit_once(':').unwrap();
                // bash's /dev/tcp inside the namespace; `timeout` bounds a member that
                // keeps the connection open (exit 124).
                let script = format!(
                    "ok=; for i in $(seq 40); do exec 3<>/dev/tcp/{host}/{port} && ok=1 && break; sleep 0.05; done; \
                     [ -n \"$ok\" ] || exit 3; \
                     printf 'GET / HTTP/1.0\\r\\n\\r\\n garbage garbage garbage' >&3; \
                     timeout 5 cat <&3 >/dev/null"
                );
                let st = Command::new("bash")
                    .arg(netns_script())
                    .args(["exec", prefix.as_str(), "0", "--", "bash", "-c", &script])
                    .stderr(Stdio::null())
                    .status()
                    .map_err(|e| e.to_string())?;
                match st.code() {
                    Some(124) => Err("still open after 5 s".into()),
                    Some(3) => Err("could not connect".into()),
                    _ => Ok(()),
                }
            }
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Place::Netns { prefix, .. } = self {
            let _ = Command::new("bash")
                .arg(netns_script())
                .arg("down")
                .arg(prefix.as_str())
                .status();
        }
    }
}

fn netns_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/netns.sh")
}

/// Ports nobody listens on now.
fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

struct Proc {
    id: NodeId,
    child: Child,
    log: PathBuf,
    killed: bool,
}

/// Parse a `zr-abcast` log (a killed member's may end in a partial line).
fn parse(id: NodeId, path: &Path, crashed: bool) -> (MemberLog, Vec<(u64, ViewId)>) {
    let mut all = parse_incarnations(id, path, crashed);
    assert_eq!(
        all.len(),
        1,
        "{}: a member that went on under another id",
        path.display()
    );
    all.pop().unwrap()
}

/// Parse a `zr-abcast` log whose process may have gone on under other ids
/// (`--rejoin-as`): one log per member id, split at its `rejoin <old> <new>` lines; only
/// the last can have crashed.
fn parse_incarnations(
    id: NodeId,
    path: &Path,
    crashed: bool,
) -> Vec<(MemberLog, Vec<(u64, ViewId)>)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = if text.ends_with('\n') {
        &text[..]
    } else {
        &text[..text.rfind('\n').map_or(0, |p| p + 1)]
    };
    let mut done = Vec::new();
    let mut log = MemberLog {
        node: id,
        ..MemberLog::default()
    };
    let mut view_times = Vec::new();
    let num = |s: &str| -> u64 {
        s.parse()
            .unwrap_or_else(|_| panic!("{}: bad number {s:?}", path.display()))
    };
    let hash = |s: &str| -> zerorank_replication::abcast::Bytes {
        u64::from_str_radix(s, 16)
            .unwrap()
            .to_le_bytes()
            .to_vec()
            .into()
    };
    for line in complete.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.first().copied() {
            Some("sent") => log.sent.push((
                MsgId {
                    origin: num(f[1]),
                    seq: num(f[2]),
                },
                hash(f[3]),
            )),
            Some("view") => {
                let id = ViewId {
                    round: num(f[1]),
                    leader: num(f[2]),
                };
                let members = f[3].split(',').map(num).collect();
                if let Some(t) = f.get(4).and_then(|t| t.strip_prefix("t=")) {
                    view_times.push((num(t), id));
                }
                log.entries.push(LogEntry::View(View { id, members }));
            }
            Some("deliver") => log.entries.push(LogEntry::Deliver {
                view: ViewId {
                    round: num(f[1]),
                    leader: num(f[2]),
                },
                id: MsgId {
                    origin: num(f[3]),
                    seq: num(f[4]),
                },
                payload: hash(f[5]),
            }),
            Some("blocked") => log.entries.push(LogEntry::Blocked {
                reason: f[1..].join(" "),
            }),
            Some("left") => log.crashed = true,
            Some("rejoin") => {
                assert_eq!(num(f[1]), log.node, "{}: {line}", path.display());
                let next = MemberLog {
                    node: num(f[2]),
                    ..MemberLog::default()
                };
                // The earlier incarnation stopped (its log ends blocked: excluded).
                let old = std::mem::replace(&mut log, next);
                done.push((old, std::mem::take(&mut view_times)));
            }
            Some("end") | None => {}
            Some(other) => panic!("{}: unknown log line {other:?}", path.display()),
        }
    }
    // A killed process's last incarnation crashed.
    log.crashed |= crashed;
    done.push((log, view_times));
    done
}

fn kill9(p: &mut Proc) {
    // SAFETY: sending a signal to a child we own.
    let pid = p.child.id() as i32;
    // Under netns.sh the child is bash running `ip netns exec ... zr-abcast`: kill the
    // member itself (the newest process whose parent chain is the child), not just bash.
    let target = member_pid(pid).unwrap_or(pid);
    unsafe { libc::kill(target, libc::SIGKILL) };
    p.killed = true;
}

/// The zr-abcast process under `pid` (itself, or a descendant).
fn member_pid(pid: i32) -> Option<i32> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if comm.trim() == "zr-abcast" {
        return Some(pid);
    }
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .find_map(member_pid)
}

/// Run the scenario on `place`; panics with the reason when something is wrong.
fn scenario(place: Place, tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(8);
    // Member ids 1-5 found the group; 6 is member 4's process restarted after its kill
    // (same node, same port; a restarted process joins under a new id); 7 has the
    // wrong secret.
    let slot = |id: NodeId| if id == 6 { 3 } else { id as usize - 1 };
    let addr_of = |id: NodeId| place.addr(slot(id), ports[slot(id)]);
    let peers: Vec<String> = (1..=7).map(|id| format!("{id}={}", addr_of(id))).collect();
    let t0 = unix_ms() + 500;
    let (stop_at, until) = (t0 + 5000, t0 + 7000);
    let spawn = |id: NodeId, start: &[&str], secret: &str| -> Proc {
        let log = dir.path().join(format!("m{id}.log"));
        let mut c = place.command(slot(id));
        c.arg("--id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(addr_of(id))
            .args(peers.iter().flat_map(|p| ["--peer", p.as_str()]))
            .args(start)
            .args(["--rate", "200", "--size", "64"])
            .arg("--stop-at")
            .arg(stop_at.to_string())
            .arg("--until")
            .arg(until.to_string())
            .arg("--log")
            .arg(&log)
            .env("ZR_GROUP_SECRET", secret)
            .env("ZR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join(format!("m{id}.err"))).unwrap(),
            ));
        Proc {
            id,
            child: c.spawn().expect("spawn zr-abcast"),
            log,
            killed: false,
        }
    };
    let mut procs: Vec<Proc> = (1..=5)
        .map(|id| spawn(id, &["--found", "1,2,3,4,5"], SECRET))
        .collect();
    let sleep_until = |t: u64| {
        let now = unix_ms();
        if t > now {
            std::thread::sleep(Duration::from_millis(t - now));
        }
    };
    // Garbage on member 2's port: refused, the group goes on.
    sleep_until(t0 + 700);
    let target = addr_of(2);
    let refused = place.knock(&target);
    if let Err(e) = refused {
        panic!("[{tag}] member 2 did not close a connection that sent garbage: {e}");
    }
    // A process with the wrong secret tries to join.
    procs.push(spawn(7, &["--join", "2,3,5"], WRONG));
    let kill_at = [(t0 + 1500, 4 as NodeId), (t0 + 2500, 1)];
    let mut kill_times = BTreeMap::new();
    for (t, id) in kill_at {
        sleep_until(t);
        let p = procs.iter_mut().find(|p| p.id == id).unwrap();
        kill9(p);
        kill_times.insert(id, unix_ms());
    }
    sleep_until(t0 + 3200);
    // Member 4's process starts again, on its old address, and rejoins.
    procs.push(spawn(6, &["--join", "2,3,5"], SECRET));
    // Everyone exits at `until`; allow 10 s more, then fail.
    let deadline = Instant::now() + Duration::from_millis(until.saturating_sub(unix_ms()) + 10_000);
    for p in procs.iter_mut() {
        loop {
            if p.child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = p.child.kill();
                panic!(
                    "[{tag}] member {} did not exit by its deadline; stderr: {}",
                    p.id,
                    std::fs::read_to_string(dir.path().join(format!("m{}.err", p.id)))
                        .unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut logs = Vec::new();
    let mut times = BTreeMap::new();
    for p in &procs {
        let (log, vt) = parse(p.id, &p.log, p.killed);
        times.insert(p.id, vt);
        if p.id == 7 {
            assert!(
                !log.entries.iter().any(|e| matches!(e, LogEntry::View(_))),
                "[{tag}] a member with the wrong job secret got into the group: {:?}",
                log.entries.first()
            );
            // Never let in, it says so (and goes on asking until it exits).
            assert!(
                log.entries
                    .iter()
                    .any(|e| matches!(e, LogEntry::Blocked { reason }
                    if reason.contains("join: none of the contacts [2, 3, 5]"))),
                "[{tag}] the wrong-secret member did not say that nobody let it in: {:?}",
                log.entries
            );
            let err = std::fs::read_to_string(dir.path().join("m7.err")).unwrap_or_default();
            assert!(
                err.contains("wrong job secret") || err.contains("handshake"),
                "[{tag}] the wrong-secret member's log does not name the cause: {err}"
            );
            // And its blocked report says why nobody let it in.
            assert!(
                log.entries.iter().any(|e| matches!(e, LogEntry::Blocked { reason }
                    if reason.contains("handshakes refused") && reason.contains("wrong job secret"))),
                "[{tag}] the wrong-secret member's blocked report does not name the refusal: {:?}",
                log.entries
            );
            // Its failed dials back off: a few dozen log lines, not hundreds.
            assert!(
                err.lines().count() < 200,
                "[{tag}] the wrong-secret member logged {} lines",
                err.lines().count()
            );
            continue;
        }
        logs.push(log);
    }
    let errs = |id: u64| {
        std::fs::read_to_string(dir.path().join(format!("m{id}.err"))).unwrap_or_default()
    };
    if let Err(v) = check(&logs, CheckOptions { liveness: true }) {
        let summary: Vec<String> = logs
            .iter()
            .map(|l| {
                format!(
                    "member {} crashed {} entries {} sent {}; last: {:?}",
                    l.node,
                    l.crashed,
                    l.entries.len(),
                    l.sent.len(),
                    l.entries
                        .iter()
                        .rev()
                        .find(|e| !matches!(e, LogEntry::Deliver { .. }))
                )
            })
            .collect();
        panic!(
            "[{tag}] checker: {v}\n{}\nmember 2 stderr:\n{}",
            summary.join("\n"),
            errs(2)
        );
    }
    assert!(
        errs(2).contains("refused incoming connection"),
        "[{tag}] member 2 did not log the refused garbage connection"
    );
    // Every frame lost with a connection was reported: no link had to fall back on its
    // stall net (kill -9 and the garbage break connections, which the runtime reports).
    for id in 1..=7 {
        assert!(
            !errs(id).contains("although no connection broke"),
            "[{tag}] member {id}'s link stalled with no connection error:\n{}",
            errs(id)
        );
    }
    // On one node the members' frames go through shared memory (the rejoined process's
    // too); between namespaces (emulated nodes) they never do.
    let shared = |id: u64, peer: u64| {
        errs(id).contains(&format!(
            "receiving from member {peer} through shared memory"
        ))
    };
    if matches!(place, Place::Loopback) {
        for (id, peer) in [(2, 3), (3, 2), (2, 6), (6, 2), (5, 2)] {
            assert!(
                shared(id, peer),
                "[{tag}] member {id} did not receive from member {peer} through shared memory:\n{}",
                errs(id)
            );
        }
    } else {
        assert!(
            !errs(2).contains("through shared memory"),
            "[{tag}] members in different namespaces shared memory"
        );
    }
    // The joiner is in the final view and delivered, and the survivors delivered the
    // joiner's broadcasts.
    let joiner = logs.iter().find(|l| l.node == 6).unwrap();
    let delivered = |l: &MemberLog, origin: NodeId| {
        l.entries
            .iter()
            .filter(|e| matches!(e, LogEntry::Deliver { id, .. } if id.origin == origin))
            .count()
    };
    assert!(
        delivered(joiner, 2) > 0,
        "[{tag}] the joiner delivered nothing"
    );
    let survivor = logs.iter().find(|l| l.node == 2).unwrap();
    assert!(
        delivered(survivor, 6) > 0,
        "[{tag}] nobody delivered the joiner's broadcasts"
    );
    // How long the new views took after each kill (reported, not asserted).
    for (id, t) in kill_times {
        let next = times[&2].iter().find(|(vt, _)| *vt >= t);
        match next {
            Some((vt, v)) => eprintln!(
                "[{tag}] kill -9 of member {id}: member 2 installed view {v} {} ms later",
                vt - t
            ),
            None => eprintln!("[{tag}] kill -9 of member {id}: no later view at member 2"),
        }
    }
}

#[test]
fn killed_members_and_leader_on_loopback_pass_the_checker() {
    scenario(Place::Loopback, "loopback");
}

#[test]
fn netns_killed_members_and_leader_pass_the_checker() {
    let Some(place) = netns_place("zrab", 5) else {
        return;
    };
    scenario(place, "netns");
}

#[test]
fn netns_partitioned_minority_blocks_then_rejoins_after_the_heal() {
    let Some(place) = netns_place("zrap", 3) else {
        return;
    };
    cut_off(place, CutOff::Partition);
}

#[test]
fn a_stopped_member_is_left_out_then_rejoins_after_sigcont() {
    cut_off(Place::Loopback, CutOff::Sigstop);
}

/// A `zr-abcast` member of a small group on loopback: member `id` listens on
/// `ports[id - 1]` and knows every port, starts with `args` (`--found ...` or
/// `--join ...`, its rate, ...), sends 64 B broadcasts until 2 s before `until` (so
/// every one is delivered) and exits at `until`; its log and stderr go to `dir`.
fn spawn_loopback(dir: &Path, ports: &[u16], id: u64, args: &[&str], until: u64) -> Proc {
    let log = dir.join(format!("m{id}.log"));
    let peers: Vec<String> = (1..=ports.len())
        .map(|m| format!("{m}=127.0.0.1:{}", ports[m - 1]))
        .collect();
    let mut c = Place::Loopback.command(0);
    c.arg("--id")
        .arg(id.to_string())
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", ports[id as usize - 1]))
        .args(peers.iter().flat_map(|p| ["--peer", p.as_str()]))
        .args(args)
        .args(["--size", "64"])
        .arg("--stop-at")
        .arg((until - 2000).to_string())
        .arg("--until")
        .arg(until.to_string())
        .arg("--log")
        .arg(&log)
        .env("ZR_GROUP_SECRET", SECRET)
        .env("ZR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join(format!("m{id}.err"))).unwrap(),
        ));
    Proc {
        id,
        child: c.spawn().expect("spawn zr-abcast"),
        log,
        killed: false,
    }
}

/// Member `id`'s stderr in `dir` (see [`spawn_loopback`]).
fn member_err(dir: &Path, id: u64) -> String {
    std::fs::read_to_string(dir.join(format!("m{id}.err"))).unwrap_or_default()
}

/// Wait until `p` exits, at most until `deadline` (then kill it and fail, saying `what`
/// with its stderr).
fn await_exit(p: &mut Proc, dir: &Path, deadline: Instant, what: &str) -> std::process::ExitStatus {
    loop {
        if let Some(st) = p.child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = p.child.kill();
            panic!("member {} {what}:\n{}", p.id, member_err(dir, p.id));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connections that never say who they are hold up no other: eight are opened to each
/// of three founders' ports and left silent, then a fourth process joins. Each is
/// refused after the 5 s handshake timeout; the joiner must get in meanwhile (when a
/// member ran one handshake at a time, the joiner's connection waited 8 x 5 s behind
/// them, past the end of the run).
#[test]
fn silent_connections_do_not_hold_up_a_joiner() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(4);
    let until = unix_ms() + 9000;
    let spawn = |id: u64, start: &[&str]| -> Proc {
        let args: Vec<&str> = start.iter().copied().chain(["--rate", "100"]).collect();
        spawn_loopback(dir.path(), &ports, id, &args, until)
    };
    let mut procs: Vec<Proc> = (1..=3u64)
        .map(|id| spawn(id, &["--found", "1,2,3"]))
        .collect();
    let errs = |id: u64| member_err(dir.path(), id);
    // The founders are up once each has listened and formed the group: wait (up to 10
    // s) until every port takes a connection, then open the silent ones.
    let mut silent = Vec::new();
    for &port in &ports[..3] {
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..8 {
            let s = loop {
                match std::net::TcpStream::connect(("127.0.0.1", port)) {
                    Ok(s) => break s,
                    Err(e) if Instant::now() > deadline => panic!("port {port}: {e}"),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            };
            silent.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    procs.push(spawn(4, &["--join", "1,2,3"]));
    let deadline = Instant::now() + Duration::from_millis(until.saturating_sub(unix_ms()) + 10_000);
    for p in procs.iter_mut() {
        await_exit(p, dir.path(), deadline, "did not exit by its deadline");
    }
    drop(silent);
    let logs: Vec<MemberLog> = procs.iter().map(|p| parse(p.id, &p.log, false).0).collect();
    let joined = logs[3]
        .entries
        .iter()
        .any(|e| matches!(e, LogEntry::View(v) if v.members.contains(&4)));
    assert!(
        joined,
        "the joiner never got in behind the silent connections:\n{}",
        errs(4)
    );
    assert!(
        errs(1).contains("timed out") && errs(1).contains("waiting for the handshake"),
        "member 1 did not refuse the silent connections:\n{}",
        errs(1)
    );
    if let Err(v) = check(&logs, CheckOptions { liveness: true }) {
        panic!("checker: {v}\nmember 1 stderr:\n{}", errs(1));
    }
}

/// SIGTERM and SIGINT end a member gracefully: it leaves the group (the others install
/// a view without it at once, rather than after their failure detector) and exits 0,
/// its log ending `left`, `end`. Member 3 gets SIGTERM, then member 1, the leader,
/// SIGINT; member 2 goes on alone in a view of its own. Every log passes the checker.
/// (The failure detector is 20 s here: a view change that came from a suspicion rather
/// than the leave would not come in time.)
#[test]
fn sigterm_and_sigint_make_members_leave_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(3);
    let t0 = unix_ms();
    let until = t0 + 8000;
    let args = [
        "--found",
        "1,2,3",
        "--rate",
        "200",
        "--suspect-after",
        "20000",
    ];
    let mut procs: Vec<Proc> = (1..=3u64)
        .map(|id| spawn_loopback(dir.path(), &ports, id, &args, until))
        .collect();
    let errs = |id: u64| member_err(dir.path(), id);
    // Each signalled member must be gone within 3 s of its signal.
    for (after_ms, id, sig) in [(1500, 3u64, libc::SIGTERM), (2500, 1, libc::SIGINT)] {
        let now = unix_ms();
        if t0 + after_ms > now {
            std::thread::sleep(Duration::from_millis(t0 + after_ms - now));
        }
        let p = procs.iter_mut().find(|p| p.id == id).unwrap();
        // SAFETY: a signal to a child process this test owns.
        unsafe { libc::kill(p.child.id() as i32, sig) };
        let deadline = Instant::now() + Duration::from_secs(3);
        let status = await_exit(
            p,
            dir.path(),
            deadline,
            &format!("still running 3 s after signal {sig}"),
        );
        assert!(
            status.success(),
            "member {id} exited {status:?} after signal {sig}:\n{}",
            errs(id)
        );
        let text = std::fs::read_to_string(&p.log).unwrap();
        assert!(
            text.ends_with("left\nend\n"),
            "member {id}'s log does not end with its leave: ...{}",
            &text[text.len().saturating_sub(200)..]
        );
    }
    let deadline = Instant::now() + Duration::from_millis(until - t0 + 10_000);
    let survivor = procs.iter_mut().find(|p| p.id == 2).unwrap();
    await_exit(
        survivor,
        dir.path(),
        deadline,
        "did not exit by its deadline",
    );
    let logs: Vec<MemberLog> = procs.iter().map(|p| parse(p.id, &p.log, false).0).collect();
    let views: Vec<Vec<NodeId>> = logs[1]
        .entries
        .iter()
        .filter_map(|e| match e {
            LogEntry::View(v) => Some(v.members.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        views,
        [vec![1, 2, 3], vec![1, 2], vec![2]],
        "member 2's views (each leave its own view change, no suspicion)"
    );
    if let Err(v) = check(&logs, CheckOptions { liveness: true }) {
        panic!("checker: {v}\nmember 2 stderr:\n{}", errs(2));
    }
}

/// `nodes` network namespaces under a prefix of `tag` and this process's id (torn down
/// when the place is dropped); `None` (the test is skipped) without root or iproute2.
fn netns_place(tag: &str, nodes: usize) -> Option<Place> {
    if unsafe { libc::geteuid() } != 0
        || !Command::new("ip")
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: needs root and iproute2 (ip) for network namespaces");
        return None;
    }
    // A prefix may not end with a digit: the pid's digits become letters.
    let prefix = format!("{tag}{}x", std::process::id() % 100_000)
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                (b'a' + (c as u8 - b'0')) as char
            } else {
                c
            }
        })
        .collect::<String>();
    let out = Command::new("bash")
        .arg(netns_script())
        .arg("up")
        .arg(&prefix)
        .arg(nodes.to_string())
        .output()
        .expect("run netns.sh");
    // The guard first, so that a failed `up` is still torn down.
    let mut place = Place::Netns {
        prefix: prefix.clone(),
        addrs: Vec::new(),
    };
    assert!(
        out.status.success(),
        "netns.sh up failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(printed.len(), nodes, "netns.sh up printed {printed:?}");
    if let Place::Netns { addrs, .. } = &mut place {
        *addrs = printed;
    }
    Some(place)
}

/// Cut node `i` off the others (`cut`) or join it again (`heal`).
fn netns_link(place: &Place, what: &str, i: usize) {
    let Place::Netns { prefix, .. } = place else {
        panic!("a partition needs network namespaces");
    };
    let out = Command::new("bash")
        .arg(netns_script())
        .args([what, prefix.as_str(), &i.to_string()])
        .output()
        .expect("run netns.sh");
    assert!(
        out.status.success(),
        "netns.sh {what} {prefix} {i} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How member 3 is cut off from the other two, for 3.5 s.
#[derive(Clone, Copy, PartialEq)]
enum CutOff {
    /// Its node's bridge port goes down (`netns.sh cut`): frames are lost, no connection
    /// resets; then it comes back up (`heal`).
    Partition,
    /// Its process is stopped (SIGSTOP: it hangs, its connections stay open and its
    /// kernel keeps acknowledging), then continued (SIGCONT).
    Sigstop,
}

/// Three members stream broadcasts; member 3 is cut off from the other two, then joined
/// again. The majority must go on without it (it is suspected by heartbeat timeout: no
/// connection breaks at first); member 3 must deliver nothing meanwhile (and, when it
/// runs, say why); afterwards it must learn that the group went on, and its process
/// must come back as member 4 (`--rejoin-as`) and be let in. All four logs must pass
/// the checker, liveness included.
fn cut_off(place: Place, how: CutOff) {
    let tag = match how {
        CutOff::Partition => "netns partition",
        CutOff::Sigstop => "sigstop",
    };
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(3);
    let slot = |id: NodeId| if id == 4 { 2 } else { id as usize - 1 };
    let addr_of = |id: NodeId| place.addr(slot(id), ports[slot(id)]);
    let peers: Vec<String> = (1..=4).map(|id| format!("{id}={}", addr_of(id))).collect();
    let t0 = unix_ms() + 500;
    let (cut_at, heal_at) = (t0 + 1500, t0 + 5000);
    // The cut-off member's connections break within 2 s (TCP_USER_TIMEOUT), and it
    // connects again once the partition heals (about a second later here): 5 s for that,
    // the rejoin, and broadcasts delivered as member 4.
    let (stop_at, until) = (t0 + 10_000, t0 + 12_000);
    let spawn = |id: NodeId, extra: &[&str]| -> Proc {
        let log = dir.path().join(format!("m{id}.log"));
        let mut c = place.command(slot(id));
        c.arg("--id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(addr_of(id))
            .args(peers.iter().flat_map(|p| ["--peer", p.as_str()]))
            .args(["--found", "1,2,3", "--rate", "200", "--size", "64"])
            .args(extra)
            .arg("--stop-at")
            .arg(stop_at.to_string())
            .arg("--until")
            .arg(until.to_string())
            .arg("--log")
            .arg(&log)
            .env("ZR_GROUP_SECRET", SECRET)
            .env("ZR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join(format!("m{id}.err"))).unwrap(),
            ));
        Proc {
            id,
            child: c.spawn().expect("spawn zr-abcast"),
            log,
            killed: false,
        }
    };
    let mut procs = vec![
        spawn(1, &[]),
        spawn(2, &[]),
        spawn(3, &["--rejoin-as", "4"]),
    ];
    let sleep_until = |t: u64| {
        let now = unix_ms();
        if t > now {
            std::thread::sleep(Duration::from_millis(t - now));
        }
    };
    let signal = |sig: i32| {
        let pid = member_pid(procs[2].child.id() as i32).expect("member 3's process");
        // SAFETY: sending a signal to a child (or its descendant) we own.
        assert_eq!(
            unsafe { libc::kill(pid, sig) },
            0,
            "[{tag}] kill({pid}, {sig})"
        );
    };
    sleep_until(cut_at);
    match how {
        CutOff::Partition => netns_link(&place, "cut", slot(3)),
        CutOff::Sigstop => signal(libc::SIGSTOP),
    }
    let cut = unix_ms();
    sleep_until(heal_at);
    match how {
        CutOff::Partition => netns_link(&place, "heal", slot(3)),
        CutOff::Sigstop => signal(libc::SIGCONT),
    }
    let healed = unix_ms();
    let errs = |id: u64| {
        std::fs::read_to_string(dir.path().join(format!("m{id}.err"))).unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_millis(until.saturating_sub(unix_ms()) + 10_000);
    for p in procs.iter_mut() {
        loop {
            if p.child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = p.child.kill();
                panic!(
                    "[{tag}] member {} did not exit by its deadline; stderr: {}",
                    p.id,
                    errs(p.id)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut logs = Vec::new();
    let mut times = BTreeMap::new();
    for p in &procs {
        for (log, vt) in parse_incarnations(p.id, &p.log, p.killed) {
            times.insert(log.node, vt);
            logs.push(log);
        }
    }
    let ids: Vec<NodeId> = logs.iter().map(|l| l.node).collect();
    assert_eq!(
        ids,
        [1, 2, 3, 4],
        "[{tag}] member 3's process did not go on as member 4; its stderr:\n{}",
        errs(3)
    );
    if let Err(v) = check(&logs, CheckOptions { liveness: true }) {
        panic!(
            "[{tag}] checker: {v}\nmember 1 stderr:\n{}\nmember 3 stderr:\n{}",
            errs(1),
            errs(3)
        );
    }
    let blocked: Vec<&str> = logs[2]
        .entries
        .iter()
        .filter_map(|e| match e {
            LogEntry::Blocked { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    // Cut off and running, member 3 said why it stopped delivering...
    assert!(
        how == CutOff::Sigstop || blocked.iter().any(|r| r.contains("majority")),
        "[{tag}] the cut-off member did not say that it has no majority: {blocked:?}"
    );
    // ... and after the heal, that the group had gone on without it.
    assert!(
        blocked.last().is_some_and(|r| r.contains("excluded")),
        "[{tag}] the cut-off member did not learn that it was left out: {blocked:?}"
    );
    // Its connections broke while it was cut off (TCP_USER_TIMEOUT: ETIMEDOUT), rather
    // than waiting out TCP's backed-off retransmissions after the heal.
    assert!(
        how == CutOff::Sigstop
            || errs(3).contains("connection lost: I/O error: Connection timed out"),
        "[{tag}] the cut-off member's connections did not time out:\n{}",
        errs(3)
    );
    // The majority went on while member 3 was cut off: a view of 1 and 2 in which both
    // delivered broadcasts of each other.
    let majority_view = logs[0].entries.iter().find_map(|e| match e {
        LogEntry::View(v) if v.members == [1, 2] => Some(v.id),
        _ => None,
    });
    let Some(mv) = majority_view else {
        panic!("[{tag}] members 1 and 2 never installed a view without member 3");
    };
    for (at, from) in [(0, 2), (1, 1)] {
        assert!(
            logs[at].entries.iter().any(|e| matches!(e,
                LogEntry::Deliver { view, id, .. } if *view == mv && id.origin == from)),
            "[{tag}] member {} delivered nothing of member {from} in the majority's view {mv}",
            logs[at].node
        );
    }
    // Member 4 (member 3's process) was let in: it delivered, and was delivered.
    let delivered = |l: &MemberLog, origin: NodeId| {
        l.entries
            .iter()
            .filter(|e| matches!(e, LogEntry::Deliver { id, .. } if id.origin == origin))
            .count()
    };
    assert!(
        delivered(&logs[3], 1) > 0,
        "[{tag}] member 4 delivered nothing of member 1"
    );
    assert!(
        delivered(&logs[0], 4) > 0,
        "[{tag}] nobody delivered member 4's broadcasts"
    );
    // How long each step took (reported, not asserted).
    let first_after = |id: NodeId, t: u64| times[&id].iter().find(|(vt, _)| *vt >= t).copied();
    if let Some((vt, v)) = first_after(1, cut) {
        eprintln!(
            "[{tag}] member 3 cut off: member 1 installed view {v} {} ms later",
            vt - cut
        );
    }
    if let Some((vt, v)) = first_after(4, healed) {
        eprintln!(
            "[{tag}] healed: member 3's process installed view {v} as member 4 {} ms later",
            vt - healed
        );
    }
}
