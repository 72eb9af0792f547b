//! One member of a ring-broadcast group, as a process: it founds or joins the group,
//! broadcasts a stream of messages, and writes what it sends, delivers and installs to
//! a log the tests check (`abcast::checker`).
//!
//! ```text
//! ZR_GROUP_SECRET=<64 hex digits> zr-abcast --id 1 --listen 127.0.0.1:7001 \
//!     --peer 1=127.0.0.1:7001 --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003 \
//!     --found 1,2,3 --rate 500 --size 64 --stop-at <unix ms> --until <unix ms> --log m1.log
//! ```
//!
//! Log lines (one event each, written as they happen):
//! `sent <origin> <seq> <hash>`, `view <round> <leader> <members,...> t=<unix ms>`,
//! `deliver <round> <leader> <origin> <seq> <hash>`, `blocked t=<unix ms> <reason>`, `left`,
//! `end` (a clean exit). `<hash>` is the payload's 64-bit FNV-1a hash, in hex.

/// The member's allocator: every broadcast allocates and frees a few small blocks (log
/// and link entries, frames, events), and glibc's malloc and free were 8-9% of a member's
/// time at 64 B (perf).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use rand::{Rng, SeedableRng};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zerorank_replication::abcast::runtime::{
    Event, Node, Options, Start, MAX_BROADCAST, MAX_FRAME,
};
use zerorank_replication::abcast::{Config, NodeId};

#[derive(Parser, Debug)]
#[command(version, about = "One member of a zerorank ring-broadcast group")]
struct Args {
    /// This member's id, 1 to 4294967295 (a restarted process joins under a new one).
    #[arg(long, value_parser = parse_id)]
    id: NodeId,
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// Where a member listens, as ID=ADDR (repeat; include this member).
    #[arg(long = "peer", value_parser = parse_peer)]
    peers: Vec<(NodeId, SocketAddr)>,
    /// Found the group with these members (comma-separated ids, the same on every founder).
    #[arg(long, value_delimiter = ',', conflicts_with = "join", value_parser = parse_id)]
    found: Vec<NodeId>,
    /// Join a running group through these members.
    #[arg(long, value_delimiter = ',', value_parser = parse_id)]
    join: Vec<NodeId>,
    /// Job id, decimal or 0x-hex (every member of the group must use the same, and the
    /// same ZR_GROUP_SECRET: a handshake between members that differ in either fails,
    /// "wrong job secret" or "peer is in job ...").
    #[arg(long, default_value = "0xab", value_parser = parse_job)]
    job: u64,
    /// Broadcasts per second (0: as fast as back-pressure allows).
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// Bytes per broadcast (16 to 16777216).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Stop broadcasting at this Unix time (ms).
    #[arg(long)]
    stop_at: Option<u64>,
    /// Exit at this Unix time (ms). SIGTERM or SIGINT end the member sooner, after it
    /// has left the group gracefully.
    #[arg(long)]
    until: u64,
    /// Write the event log here.
    #[arg(long)]
    log: Option<std::path::PathBuf>,
    /// Measure instead of logging: from this Unix time (ms) to `--stop-at`, count the
    /// deliveries and time this member's own broadcasts from send to delivery; print one
    /// `bench ...` line at exit.
    #[arg(long)]
    measure_from: Option<u64>,
    /// Silence before a ring neighbour is suspected (ms). A killed member's connections
    /// break at once, which is a suspicion too: this bound is for members that hang or
    /// are cut off. At least 20.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(20..))]
    suspect_after: u64,
    /// Most of this member's broadcasts in flight (sent, not yet delivered here) before
    /// back-pressure (at least 1)
    #[arg(long, default_value_t = Config::default().window, value_parser = parse_window)]
    window: usize,
    /// Most bytes of them in flight (one broadcast of any size always goes)
    #[arg(long, default_value_t = Config::default().window_bytes)]
    window_bytes: usize,
    /// When the group goes on without this member (it was in a partition's minority, say,
    /// and learns it once the partition heals), join again under the first of these ids,
    /// then the next (comma-separated; each in every member's --peer list, at this
    /// member's address). Without them the process stays out until --until.
    #[arg(long, value_delimiter = ',', value_parser = parse_id)]
    rejoin_as: Vec<NodeId>,
    /// Send to members on this node over TCP too, not through shared memory (members
    /// in other network namespaces always use TCP).
    #[arg(long)]
    no_shm: bool,
}

/// A member id: the transport names peers with 32 bits, and 0 is no member.
fn parse_id(s: &str) -> Result<NodeId, String> {
    match s.trim().parse::<NodeId>() {
        Ok(id) if (1..=NodeId::from(u32::MAX)).contains(&id) => Ok(id),
        _ => Err(format!("member id {s:?}: a number from 1 to {}", u32::MAX)),
    }
}

fn parse_job(s: &str) -> Result<u64, String> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    }
    .map_err(|e| format!("job id {s:?}: {e} (decimal or 0x-hex)"))
}

fn parse_window(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{s:?}: at least 1 broadcast (with 0 none ever goes)"
        )),
    }
}

fn parse_peer(s: &str) -> Result<(NodeId, SocketAddr), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("--peer {s}: expected ID=ADDR"))?;
    let id = parse_id(id).map_err(|e| format!("--peer {s}: {e}"))?;
    let addr = addr
        .parse()
        .map_err(|e| format!("--peer {s}: bad address: {e}"))?;
    Ok((id, addr))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn secret() -> Result<[u8; 32], String> {
    let hexs = std::env::var("ZR_GROUP_SECRET")
        .map_err(|_| "ZR_GROUP_SECRET is not set (64 hex digits, the same for every member)")?;
    let v = hex::decode(hexs.trim()).map_err(|e| format!("ZR_GROUP_SECRET: {e}"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| format!("ZR_GROUP_SECRET: {} bytes, expected 32", v.len()))
}

fn main() {
    // ZR_LOG filters; colours only on a terminal.
    zerorank_transport::logging::init();
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("zr-abcast: {e}");
        std::process::exit(1);
    }
}

/// The checks clap cannot make: arguments that contradict each other, or the clock.
fn check(args: &Args) -> Result<(), String> {
    if args.size < 16 {
        return Err(format!("--size {}: at least 16 bytes", args.size));
    }
    if args.size > MAX_BROADCAST {
        return Err(format!(
            "--size {}: at most {MAX_BROADCAST} bytes (a view change carries every member's undelivered broadcasts in one frame)",
            args.size
        ));
    }
    let now = unix_ms();
    if args.until <= now {
        let seconds = if args.until < 100_000_000_000 {
            "; that looks like seconds"
        } else {
            ""
        };
        return Err(format!(
            "--until {}: {} ms ago (a Unix time in ms; now is {now}{seconds})",
            args.until,
            now - args.until
        ));
    }
    let mut book = BTreeMap::new();
    for &(id, addr) in &args.peers {
        if let Some(other) = book.insert(id, addr) {
            if other != addr {
                return Err(format!(
                    "--peer: member {id} given twice ({other} and {addr})"
                ));
            }
        }
    }
    let mut found = args.found.clone();
    found.sort_unstable();
    if let Some(w) = found.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("--found: member {} given twice", w[0]));
    }
    if !args.found.is_empty() && !args.found.contains(&args.id) {
        return Err(format!(
            "--found {}: a founder is one of the members (add --id {})",
            ids(&args.found),
            args.id
        ));
    }
    let own: Vec<NodeId> = std::iter::once(args.id)
        .chain(args.rejoin_as.iter().copied())
        .collect();
    if let Some(c) = args.join.iter().find(|c| own.contains(c)) {
        return Err(format!(
            "--join {}: member {c} is this process (join through the others)",
            ids(&args.join)
        ));
    }
    // The others reach this process (under each of its ids) where --peer says it listens.
    for &m in &own {
        let flag = if m == args.id { "--id" } else { "--rejoin-as" };
        match book.get(&m) {
            None if m != args.id => {
                return Err(format!(
                    "{flag} {m}: no --peer address for member {m} (give --peer {m}={}: the others find it only there)",
                    args.listen
                ))
            }
            Some(&at) if !same_listener(at, args.listen) => {
                return Err(format!(
                    "--peer {m}={at}: member {m} is this process, which listens on {} (--listen); the others would look for it at {at}",
                    args.listen
                ))
            }
            _ => {}
        }
    }
    for (flag, list) in [("--found", &args.found), ("--join", &args.join)] {
        if let Some(m) = list.iter().find(|m| !book.contains_key(m)) {
            return Err(format!(
                "{flag} {}: no --peer address for member {m}",
                ids(list)
            ));
        }
    }
    Ok(())
}

/// Could `advertised` be where a listener bound to `listen` is reached? The same port,
/// and the same address (an IPv4-mapped IPv6 one as its IPv4 one) unless it listens on
/// every address: every IPv4 one for `0.0.0.0`, every one for `[::]`.
fn same_listener(advertised: SocketAddr, listen: SocketAddr) -> bool {
    let (a, l) = (advertised.ip().to_canonical(), listen.ip().to_canonical());
    advertised.port() == listen.port()
        && match l {
            std::net::IpAddr::V4(v4) if v4.is_unspecified() => a.is_ipv4(),
            l if l.is_unspecified() => true,
            l => a == l,
        }
}

#[cfg(test)]
mod tests {
    use super::same_listener;

    #[test]
    fn its_own_address_is_where_it_listens() {
        let ok = |a: &str, l: &str| same_listener(a.parse().unwrap(), l.parse().unwrap());
        assert!(ok("127.0.0.1:7001", "127.0.0.1:7001"));
        assert!(!ok("127.0.0.1:7002", "127.0.0.1:7001"), "another port");
        assert!(!ok("10.0.0.2:7001", "10.0.0.1:7001"), "another address");
        assert!(ok("10.0.0.2:7001", "0.0.0.0:7001"), "every IPv4 address");
        assert!(!ok("[fe80::1]:7001", "0.0.0.0:7001"), "not IPv6 on 0.0.0.0");
        assert!(ok("[fe80::1]:7001", "[::]:7001"), "every address");
        assert!(
            ok("127.0.0.1:7001", "[::ffff:127.0.0.1]:7001"),
            "IPv4-mapped"
        );
    }
}

fn ids(list: &[NodeId]) -> String {
    list.iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn run(args: Args) -> Result<(), String> {
    check(&args)?;
    let mut ids: Vec<NodeId> = std::iter::once(args.id)
        .chain(args.rejoin_as.iter().copied())
        .collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "--id and --rejoin-as: member id {} given twice (each incarnation needs its own)",
            w[0]
        ));
    }
    let start = match (args.found.is_empty(), args.join.is_empty()) {
        (false, true) => Start::Found(args.found.clone()),
        (true, false) => Start::Join(args.join.clone()),
        _ => return Err("give --found ID,... or --join ID,...".into()),
    };
    let opts = Options {
        id: args.id,
        listen: args.listen,
        addrs: args.peers.iter().copied().collect::<BTreeMap<_, _>>(),
        start,
        job: args.job,
        secret: secret()?,
        member: Config {
            suspect_after: args.suspect_after,
            heartbeat: (args.suspect_after / 5).max(1),
            change_timeout: (args.suspect_after / 2).max(50),
            window: args.window,
            window_bytes: args.window_bytes,
            ..Config::default()
        },
        // A view change's flush carries every unstable broadcast in one message.
        tcp: zerorank_transport::tcp::TcpConfig {
            max_frame_payload: MAX_FRAME,
            ..Default::default()
        },
        shm: !args.no_shm,
    };
    let log: Box<dyn Write> = match &args.log {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => Box::new(std::io::sink()),
    };
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, signalled.clone())
            .map_err(|e| format!("could not handle signal {sig}: {e}"))?;
    }
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("zr-abcast")
        .io_memory(zerorank_core::executor::IO_MEMORY)
        .make()
        .map_err(|e| format!("could not start the glommio executor: {e}"))?;
    ex.run(async move {
        // A broadcast is logged (and flushed) before it is handed to the member, so that
        // a member killed at any point never leaves others delivering a message its log
        // does not show as sent.
        let log: Log = Rc::new(RefCell::new(log));
        let load = Load {
            rate: args.rate,
            size: args.size,
            stop_at: args.stop_at,
            bench: args.measure_from.is_some(),
            log: log.clone(),
            sent_at: Rc::new(RefCell::new(VecDeque::new())),
            signalled,
        };
        let mut m = Measure::new(args.measure_from, args.stop_at);
        // The ids this process may go on under; none of its ids is a contact of its own.
        let mut rejoin: VecDeque<NodeId> = args.rejoin_as.iter().copied().collect();
        let own: Vec<NodeId> = std::iter::once(args.id)
            .chain(rejoin.iter().copied())
            .collect();
        let mut opts = opts;
        loop {
            let node = Node::start(opts.clone(), Box::new(Vec::new))
                .map_err(|e| format!("listen on {}: {e}", opts.listen))?;
            spawn_load(node.clone(), opts.id, load.clone());
            let end = serve(
                &node,
                opts.id,
                args.until,
                &load,
                &mut m,
                !rejoin.is_empty(),
            )
            .await?;
            match end {
                End::Until => break,
                End::Excluded => {}
                End::Signal => {
                    leave(&node, opts.id, &load, &mut m, args.suspect_after).await?;
                    break;
                }
            }
            // Left out of the group's view (a partition's minority, after the heal): come
            // back as a joiner under the next id, through every other process of the
            // address book, once this member has closed its port.
            let next = rejoin
                .pop_front()
                .expect("serve ends excluded only with an id left");
            write_line(&log, &format!("rejoin {} {next} t={}", opts.id, unix_ms()))?;
            tracing::warn!(
                "member {} was left out of the group's view: joining again as member {next}",
                opts.id
            );
            node.close().await;
            let contacts = opts.addrs.keys().filter(|c| !own.contains(c)).copied();
            opts.start = Start::Join(contacts.collect());
            opts.id = next;
            load.sent_at.borrow_mut().clear();
        }
        if load.bench {
            println!("{}", m.summary(opts.id));
        }
        write_line(&log, "end")?;
        Ok::<(), String>(())
    })?;
    Ok(())
}

/// The event log, shared by the load and the event loop.
type Log = Rc<RefCell<Box<dyn Write>>>;

fn write_line(log: &Log, line: &str) -> Result<(), String> {
    let mut l = log.borrow_mut();
    writeln!(l, "{line}")
        .and_then(|_| l.flush())
        .map_err(|e| e.to_string())
}

/// What the load task needs.
#[derive(Clone)]
struct Load {
    rate: u64,
    size: usize,
    stop_at: Option<u64>,
    /// Measuring (`--measure-from`) rather than logging.
    bench: bool,
    log: Log,
    /// Send instants of this member's broadcasts not yet delivered (bench mode).
    sent_at: Rc<RefCell<VecDeque<(u64, std::time::Instant)>>>,
    /// SIGTERM or SIGINT came: stop broadcasting, leave the group.
    signalled: Arc<AtomicBool>,
}

/// The load: `rate` broadcasts a second from member `id` until `stop_at`, or until the
/// member stops.
fn spawn_load(node: Node, id: NodeId, load: Load) {
    let Load {
        rate,
        size,
        stop_at,
        bench,
        log,
        sent_at,
        signalled,
    } = load;
    glommio::spawn_local(async move {
        // Open loop: the gaps are drawn uniformly from 0.5 to 1.5 times 1 / rate
        // and the broadcasts are due at their sums, however long the sleeps
        // overshoot (a sleep of one gap after each broadcast fell short of the
        // rate by the timer's lateness, 10-20% at a few thousand a second). Fixed
        // gaps keep members that start together in step (all three waking at
        // once on the 2 cores: light-load p50 up to 50% higher); exponential
        // ones (Poisson arrivals) add bursts that the other two have no more of.
        let gap = 1_000_000_000u64
            .checked_div(rate)
            .map_or(Duration::ZERO, Duration::from_nanos);
        let mut rng = rand::rngs::StdRng::from_entropy();
        let mut due = std::time::Instant::now();
        let mut k = 0u64;
        // In bench mode every broadcast is the same bytes, shared (the send time is
        // kept here, by sequence number): the application makes no copy, as
        // benches/c/cpg_bench.c sends one buffer over and over. (Filling a new
        // 64 KiB buffer per message was 6% of a member's time.)
        let same = zerorank_replication::abcast::Bytes::from(vec![b'.'; size]);
        loop {
            if stop_at.is_some_and(|t| unix_ms() >= t)
                || node.is_stopped()
                || signalled.load(Ordering::Relaxed)
            {
                return;
            }
            k += 1;
            // This task is the member's only broadcaster: its k-th is sequence k.
            let payload = if bench {
                // No hash in bench mode: hashing 64 KiB a byte at a time costs
                // more than broadcasting it.
                sent_at
                    .borrow_mut()
                    .push_back((k, std::time::Instant::now()));
                same.clone()
            } else {
                let mut payload = format!("{id}:{k}:").into_bytes();
                payload.resize(size, b'.');
                let h = fnv(&payload);
                let mut l = log.borrow_mut();
                if writeln!(l, "sent {id} {k} {h:016x}")
                    .and_then(|_| l.flush())
                    .is_err()
                {
                    return;
                }
                // One allocation per message: a retry shares it.
                zerorank_replication::abcast::Bytes::from(payload)
            };
            // Under back-pressure this waits until half the window is free.
            match node.broadcast_when_room(payload).await {
                Ok(mid) => assert_eq!(mid.seq, k, "the k-th broadcast has sequence k"),
                Err(_) => return,
            }
            if gap.is_zero() {
                // Full load: no clock, no draw per broadcast.
                glommio::yield_if_needed().await;
                continue;
            }
            due += gap.mul_f64(rng.gen_range(0.5..1.5));
            // Far behind (a long wait for room): start afresh rather than send the
            // backlog back to back. (The latency is timed from the actual send, as
            // benches/c/cpg_bench.c times it.)
            let now = std::time::Instant::now();
            if now > due + gap * 8 {
                due = now;
            }
            match due.checked_duration_since(now) {
                Some(wait) => glommio::timer::sleep(wait).await,
                None => glommio::yield_if_needed().await,
            }
        }
    })
    .detach();
}

/// Why [`serve`] returned.
enum End {
    /// `--until` came, or the member left.
    Until,
    /// The member stopped because the group went on without it, and an id to go on
    /// under is left: the caller starts it again.
    Excluded,
    /// SIGTERM or SIGINT: the caller leaves the group.
    Signal,
}

/// How often the event loop looks at the signal flag.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Run member `id`'s event loop until `until` (Unix ms), logging or measuring every event.
async fn serve(
    node: &Node,
    id: NodeId,
    until: u64,
    load: &Load,
    m: &mut Measure,
    rejoin: bool,
) -> Result<End, String> {
    loop {
        if load.signalled.load(Ordering::Relaxed) {
            return Ok(End::Signal);
        }
        let left = until.saturating_sub(unix_ms());
        if left == 0 {
            return Ok(End::Until);
        }
        let nap = Duration::from_millis(left).min(SIGNAL_POLL);
        let ev = futures_lite::future::or(async { node.next_event().await }, async {
            glommio::timer::sleep(nap).await;
            None
        })
        .await;
        // A member stops with its last events queued already (why it stopped among
        // them): once it has, take them all, then go on as another member.
        let stopped = rejoin && node.is_stopped();
        let mut gone = record(ev, id, load, m)?;
        if stopped {
            while let Some(e) = node.try_event().await {
                gone |= record(Some(e), id, load, m)?;
            }
            return Ok(if gone { End::Until } else { End::Excluded });
        }
    }
}

/// Leave the group gracefully (after SIGTERM or SIGINT): wait, up to twice the failure
/// detector's bound and at least 2 s, for the view without this member, logging the
/// events until then, and for the last frames to be written.
async fn leave(
    node: &Node,
    id: NodeId,
    load: &Load,
    m: &mut Measure,
    suspect_after: u64,
) -> Result<(), String> {
    node.leave();
    let limit = Duration::from_millis(suspect_after.saturating_mul(2).max(2000));
    let deadline = std::time::Instant::now() + limit;
    let mut left = node.is_stopped();
    while !left {
        let Some(wait) = deadline.checked_duration_since(std::time::Instant::now()) else {
            tracing::warn!(
                "member {id}: no view without it within {limit:?} of the signal; exiting all the same"
            );
            return Ok(());
        };
        let ev = futures_lite::future::or(async { node.next_event().await }, async {
            glommio::timer::sleep(wait).await;
            None
        })
        .await;
        left = record(ev, id, load, m)? || node.is_stopped();
    }
    while let Some(e) = node.try_event().await {
        record(Some(e), id, load, m)?;
    }
    if !node.written(Duration::from_millis(500)).await {
        tracing::warn!("member {id}: left, but frames to the others still unwritten after 500 ms");
    }
    Ok(())
}

/// Log (or, measuring, count) member `id`'s event `ev`; true if it says the member left
/// the group.
fn record(ev: Option<Event>, id: NodeId, load: &Load, m: &mut Measure) -> Result<bool, String> {
    let left = matches!(ev, Some(Event::Left));
    if load.bench {
        if let Some(e) = &ev {
            m.event(e, id, &mut load.sent_at.borrow_mut());
        }
        return Ok(left);
    }
    let line = match ev {
        None | Some(Event::StateReceived(_)) => return Ok(false),
        Some(Event::Deliver { view, id, payload }) => format!(
            "deliver {} {} {} {} {:016x}",
            view.round,
            view.leader,
            id.origin,
            id.seq,
            fnv(&payload)
        ),
        Some(Event::View(v)) => format!(
            "view {} {} {} t={}",
            v.id.round,
            v.id.leader,
            v.members
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(","),
            unix_ms()
        ),
        Some(Event::Blocked(why)) => format!("blocked t={} {why}", unix_ms()),
        Some(Event::Left) => "left".to_string(),
    };
    write_line(&load.log, &line)?;
    Ok(left)
}

/// What a benchmark run counts at one member.
struct Measure {
    from: u64,
    to: u64,
    delivered: u64,
    bytes: u64,
    views: u64,
    latency: hdrhistogram::Histogram<u64>,
}

impl Measure {
    fn new(from: Option<u64>, to: Option<u64>) -> Self {
        Measure {
            from: from.unwrap_or(0),
            to: to.unwrap_or(u64::MAX),
            delivered: 0,
            bytes: 0,
            views: 0,
            latency: hdrhistogram::Histogram::new(3).expect("a histogram"),
        }
    }

    fn event(
        &mut self,
        e: &Event,
        me: NodeId,
        sent_at: &mut std::collections::VecDeque<(u64, std::time::Instant)>,
    ) {
        let now = unix_ms();
        let inside = now >= self.from && now < self.to;
        match e {
            Event::Deliver { id, payload, .. } => {
                if inside {
                    self.delivered += 1;
                    self.bytes += payload.len() as u64;
                }
                if id.origin == me {
                    while let Some(&(seq, t)) = sent_at.front() {
                        if seq > id.seq {
                            break;
                        }
                        sent_at.pop_front();
                        if seq == id.seq && inside {
                            let _ = self.latency.record(t.elapsed().as_micros() as u64);
                        }
                    }
                }
            }
            Event::View(v) => {
                if inside {
                    self.views += 1;
                }
                // As benches/c/cpg_bench.c prints its configuration changes.
                println!("view t={} members={}", unix_ms(), v.members.len());
            }
            _ => {}
        }
    }

    fn summary(&self, id: NodeId) -> String {
        let window = self.to.saturating_sub(self.from);
        format!(
            "bench id={id} delivered={} bytes={} window_ms={window} p50_us={} p99_us={} views={}",
            self.delivered,
            self.bytes,
            self.latency.value_at_quantile(0.5),
            self.latency.value_at_quantile(0.99),
            self.views
        )
    }
}
