//! Point-to-point checks run by the integration tests under `zrun -n N`.
//!
//! `p2p_check <scenario>`; exits non-zero with a message when a check fails.

use zerorank::traits::*;
use zerorank::{Communicator, Error};

fn fail(msg: String) -> ! {
    eprintln!("p2p_check FAILED: {msg}");
    std::process::exit(2);
}

macro_rules! check {
    ($cond:expr, $($arg:tt)*) => { if !$cond { fail(format!($($arg)*)) } };
}

fn pattern(n: usize, seed: u64) -> Vec<u64> {
    (0..n as u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(seed))
        .collect()
}

#[derive(zerorank::Equivalence, Clone, Copy, PartialEq, Debug)]
#[repr(C)]
struct Particle {
    pos: [f64; 3],
    id: u64,
}

fn main() {
    let scenario = std::env::args()
        .nth(1)
        .unwrap_or_else(|| fail("usage: p2p_check <scenario>".into()));
    let universe = zerorank::initialize().unwrap_or_else(|e| fail(format!("init: {e}")));
    let world = universe.world();
    match scenario.as_str() {
        "basic" => basic(&world),
        "wildcard" => wildcard(&world),
        "order" => order(&world),
        "truncate" => truncate(&world),
        "large" => large(&world),
        "nonblocking" => nonblocking(&world),
        "probe" => probe(&world),
        "async" => async_ops(&universe, &world),
        "errors" => errors(&world),
        "paths" => paths(&world),
        "stream" => stream(&world),
        "peerdeath" => peer_death(&world),
        "hang" => {
            // Rank 0 waits for a message nobody sends; used by kill tests.
            if world.rank() == 0 {
                let _ = world.any_process().receive::<u64>();
            } else {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        "hangall" => {
            // Every rank waits for a message nobody sends; used by launcher-death tests.
            if let Err(e) = world.any_process().receive::<u64>() {
                fail(format!("receive: {e}"));
            }
        }
        other => fail(format!("unknown scenario {other}")),
    }
    universe
        .finalize()
        .unwrap_or_else(|e| fail(format!("finalize: {e}")));
    println!("rank {} ok", world.rank());
}

/// Every pair exchanges a value, a slice and a derived struct.
fn basic(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    for peer in 0..n {
        let p = w.process_at_rank(peer);
        let data = pattern(100, (me * 1000 + peer) as u64);
        let part = Particle {
            pos: [me as f64, peer as f64, 0.5],
            id: me as u64,
        };
        zerorank::request::scope(|s| {
            let _a = p.immediate_send_with_tag(s, &data[..], 1).unwrap();
            let _b = p.immediate_send_with_tag(s, &part, 2).unwrap();
            let (v, st) = p.receive_vec_with_tag::<u64>(1).unwrap();
            check!(
                v == pattern(100, (peer * 1000 + me) as u64),
                "slice from {peer} corrupted"
            );
            check!(
                st.source_rank() == peer && st.tag() == 1 && st.count::<u64>() == 100,
                "status {st:?}"
            );
            let (q, _) = p.receive_with_tag::<Particle>(2).unwrap();
            check!(
                q == Particle {
                    pos: [peer as f64, me as f64, 0.5],
                    id: peer as u64
                },
                "struct {q:?}"
            );
        });
    }
}

/// ANY_SOURCE and ANY_TAG receive everything exactly once.
fn wildcard(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    if me == 0 {
        let mut seen = vec![0u32; n as usize];
        for _ in 0..(n - 1) * 10 {
            let (x, st) = w.any_process().receive::<u64>().unwrap();
            check!(
                x == st.source_rank() as u64 * 100 + st.tag() as u64,
                "value {x} status {st:?}"
            );
            seen[st.source_rank() as usize] += 1;
        }
        check!(
            seen[1..].iter().all(|&c| c == 10),
            "per-source counts {seen:?}"
        );
        let any = w.any_process().immediate_probe().unwrap();
        check!(any.is_none(), "extra message {any:?}");
    } else {
        for tag in 0..10 {
            w.process_at_rank(0)
                .send_with_tag(&(me as u64 * 100 + tag as u64), tag)
                .unwrap();
        }
    }
}

/// Messages from one sender never overtake, across tags and sizes (eager and rendezvous).
fn order(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let sizes = [1usize, 10, 1000, 20_000, 300_000];
    if me == 0 {
        for src in 1..n {
            let mut last = None;
            for i in 0..50u64 {
                let (v, st) = w.process_at_rank(src).receive_vec::<u64>().unwrap();
                check!(v[0] == i, "from {src}: got message {} after {last:?}", v[0]);
                check!(
                    v.len() == sizes[i as usize % sizes.len()],
                    "length {}",
                    v.len()
                );
                check!(st.tag() == (i % 3) as i32, "tag");
                last = Some(i);
            }
        }
    } else {
        for i in 0..50u64 {
            let mut v = pattern(sizes[i as usize % sizes.len()], i);
            v[0] = i;
            w.process_at_rank(0)
                .send_with_tag(&v[..], (i % 3) as i32)
                .unwrap();
        }
    }
}

/// A receive buffer that is too small gives a truncation error with the counts.
fn truncate(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let peer = (me + 1) % n;
    let from = (me + n - 1) % n;
    for len in [16usize, 100_000] {
        let data = pattern(len, 7);
        zerorank::request::scope(|s| {
            let _r = w
                .process_at_rank(peer)
                .immediate_send(s, &data[..])
                .unwrap();
            let mut small = [0u64; 4];
            match w.process_at_rank(from).receive_into(&mut small[..]) {
                Err(Error::Truncated {
                    status,
                    sent,
                    capacity,
                }) => {
                    check!(
                        sent == len * 8 && capacity == 32,
                        "sent {sent} capacity {capacity}"
                    );
                    check!(
                        status.source_rank() == from && status.count::<u64>() == 4,
                        "status {status:?}"
                    );
                    check!(small[..] == data[..4], "truncated prefix wrong");
                }
                other => fail(format!("expected truncation, got {other:?}")),
            }
        });
    }
}

/// 64 MiB messages round-trip intact.
fn large(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let len = 8 << 20; // u64 elements = 64 MiB
    let peer = (me + 1) % n;
    let from = (me + n - 1) % n;
    let data = pattern(len, me as u64);
    let mut got = vec![0u64; len];
    let st = w
        .sendrecv_into(&data[..], peer, 5, &mut got[..], from, 5)
        .unwrap();
    check!(st.count::<u64>() == len, "count {}", st.count::<u64>());
    check!(
        got == pattern(len, from as u64),
        "64 MiB payload from {from} corrupted"
    );
}

/// Many non-blocking requests, completed with wait_all and test.
fn nonblocking(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let k = 64;
    let send: Vec<Vec<u64>> = (0..n)
        .map(|p| pattern(k * 37, (me * 31 + p) as u64))
        .collect();
    let mut recv: Vec<Vec<u64>> = (0..n).map(|_| vec![0u64; k * 37]).collect();
    zerorank::request::scope(|s| {
        let mut reqs = Vec::new();
        for (p, buf) in recv.iter_mut().enumerate() {
            reqs.push(
                w.process_at_rank(p as i32)
                    .immediate_receive_into_with_tag(s, &mut buf[..], 9)
                    .unwrap(),
            );
        }
        for (p, buf) in send.iter().enumerate() {
            let mut r = w
                .process_at_rank(p as i32)
                .immediate_send_with_tag(s, &buf[..], 9)
                .unwrap();
            // Poll with test for a bounded number of rounds, then wait.
            for _ in 0..1000 {
                match r.test() {
                    Ok(res) => {
                        res.unwrap();
                        break;
                    }
                    Err(again) => r = again,
                }
            }
        }
        for res in zerorank::request::wait_all(reqs) {
            res.unwrap();
        }
    });
    for (p, buf) in recv.iter().enumerate() {
        check!(
            *buf == pattern(k * 37, (p as i32 * 31 + me) as u64),
            "from {p}"
        );
    }
    // A receive that never matches is cancelled.
    let mut never = [0u8; 8];
    zerorank::request::scope(|s| {
        let r = w
            .any_process()
            .immediate_receive_into_with_tag(s, &mut never[..], 12345)
            .unwrap();
        let st = r.cancel().unwrap();
        check!(st.is_cancelled(), "cancel status {st:?}");
    });
}

/// probe and immediate_probe report source, tag and size before the receive.
fn probe(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    if me == 0 {
        for _ in 1..n {
            let st = w.any_process().probe().unwrap();
            let src = st.source_rank();
            check!(
                st.count::<u64>() == 1000 * src as usize && st.tag() == 3,
                "probe {st:?}"
            );
            let (v, st2) = w
                .process_at_rank(src)
                .receive_vec_with_tag::<u64>(3)
                .unwrap();
            check!(
                st2 == st && v.len() == 1000 * src as usize,
                "receive after probe"
            );
        }
        check!(
            w.any_process().immediate_probe().unwrap().is_none(),
            "nothing left"
        );
    } else {
        w.process_at_rank(0)
            .send_with_tag(&pattern(1000 * me as usize, 0)[..], 3)
            .unwrap();
    }
}

/// The async API inside the runtime.
fn async_ops(u: &zerorank::Universe, w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let peer = (me + 1) % n;
    let from = (me + n - 1) % n;
    u.block_on(async {
        // Send and receive run concurrently: awaiting a large (rendezvous) send before
        // posting the receive would deadlock, as two blocking MPI sends would.
        let to = w.process_at_rank(peer);
        let src = w.process_at_rank(from);
        let (back, got) = futures_lite::future::zip(
            to.send_async(pattern(5000, me as u64), 4),
            src.receive_vec_async::<u64>(),
        )
        .await;
        check!(back.unwrap().len() == 5000, "buffer returned");
        let (v, st) = got.unwrap();
        check!(
            v == pattern(5000, from as u64) && st.tag() == 4,
            "async payload"
        );
    });
}

/// Bad arguments give errors, not crashes.
fn errors(w: &Communicator) {
    let n = w.size();
    check!(
        matches!(w.checked_process_at_rank(n), Err(Error::InvalidRank { .. })),
        "rank n"
    );
    check!(
        matches!(
            w.checked_process_at_rank(-1),
            Err(Error::InvalidRank { .. })
        ),
        "rank -1"
    );
    let p = w.this_process();
    check!(
        matches!(p.send_with_tag(&1u8, -5), Err(Error::InvalidTag(-5))),
        "negative tag"
    );
    p.send(&[1u8, 2, 3][..]).unwrap();
    check!(
        matches!(p.receive::<u64>(), Err(Error::Count { .. })),
        "3 bytes into a u64"
    );
}

/// The last rank is killed by the test harness; rank 0's pending receive from it must
/// fail with an error naming it, not hang. The others leave at once (a job with a dead
/// rank cannot finalize collectively).
fn peer_death(w: &Communicator) -> ! {
    let victim = w.size() - 1;
    if w.rank() == victim {
        // Tell the harness this rank is up (it reads our stdout), then wait to be killed.
        println!("READY");
        std::io::Write::flush(&mut std::io::stdout())
            .unwrap_or_else(|e| fail(format!("stdout: {e}")));
        std::thread::sleep(std::time::Duration::from_secs(3600));
        fail("the victim was not killed".into());
    }
    if w.rank() == 0 {
        match w.process_at_rank(victim).receive::<u64>() {
            Err(Error::Op(e)) if e.to_string().contains(&format!("rank {victim} failed")) => {
                println!("PEER FAILURE DETECTED: {e}");
            }
            other => fail(format!("expected a peer failure, got {other:?}")),
        }
    }
    std::process::exit(0);
}

/// Report which path each peer used (read by the multi-node test).
fn paths(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    for peer in 0..n {
        let p = w.process_at_rank(peer);
        let mine = me as u64;
        zerorank::request::scope(|s| {
            let _x = p.immediate_send(s, &mine).unwrap();
            let (v, _) = p.receive::<u64>().unwrap();
            check!(v == peer as u64, "value from {peer}");
        });
        let big = pattern(1 << 17, me as u64);
        let mut got = vec![0u64; 1 << 17];
        w.sendrecv_into(&big[..], peer, 1, &mut got[..], peer, 1)
            .unwrap();
        check!(got == pattern(1 << 17, peer as u64), "1 MiB from {peer}");
    }
    for peer in 0..n {
        let s = w.fabric().peer_stats(peer as u32);
        println!(
            "PATH rank {me} -> {peer}: {:?} frames_sent {} frames_received {} bytes_sent {} cma {}",
            s.path, s.frames_sent, s.frames_received, s.bytes_sent, s.bytes_read_cma
        );
    }
}

/// A steady stream while the test harness disturbs the job (garbage on ports, kills).
/// Runs `ZR_STREAM_ROUNDS` rounds or, with `ZR_STREAM_UNTIL_FILE`, until that file exists:
/// rank 0 checks it and tells every rank each round, so all ranks stop at the same round.
fn stream(w: &Communicator) {
    let (me, n) = (w.rank(), w.size());
    let max_rounds: u64 = std::env::var("ZR_STREAM_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let stop_file = std::env::var("ZR_STREAM_UNTIL_FILE").ok();
    for i in 0..max_rounds {
        if let Some(path) = &stop_file {
            let stop = if me == 0 {
                let stop = u8::from(std::path::Path::new(path).exists());
                for r in 1..n {
                    w.process_at_rank(r).send_with_tag(&stop, 1).unwrap();
                }
                stop
            } else {
                w.process_at_rank(0).receive_with_tag::<u8>(1).unwrap().0
            };
            if stop == 1 {
                return;
            }
        }
        let peer = (me + 1) % n;
        let from = (me + n - 1) % n;
        let mut got = 0u64;
        w.sendrecv_into(&(i * 1000 + me as u64), peer, 0, &mut got, from, 0)
            .unwrap();
        check!(got == i * 1000 + from as u64, "round {i}");
    }
    check!(stop_file.is_none(), "the stop file never appeared");
}
