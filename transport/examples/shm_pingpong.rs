//! Raw ring ping-pong between two threads (or, with `FORK=1`, two processes) pinned to
//! CPUs 0 and 1: the floor the shared-memory transport puts under the rank layer's
//! small-message latency, with no protocol above the ring. Frames are `header` bytes of
//! filler plus `payload` bytes; the receiver reads the first and last byte of each.
//!
//! ```text
//! cargo run --release -p zerorank-transport --example shm_pingpong [payload] [iters] [header]
//! ```
//!
//! The spin loops deliberately have no `spin_loop()` (x86 `pause`): on this project's
//! KVM guest a pause per poll raised the 8 B one-way time from 70 ns to 320 ns.
use std::time::Instant;
use zerorank_transport::shm::{ShmConfig, ShmSegment};

fn main() {
    let payload: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let iters: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let job = 0x5eed_0000_0000_0000 | u64::from(std::process::id());
    let seg = ShmSegment::create(job, 0, 2, ShmConfig::for_local_size(2)).expect("segment");
    let seg1 = ShmSegment::attach(job, 0, 2).expect("attach");
    ShmSegment::unlink(job, 0).expect("unlink");
    let hdr_len: usize = std::env::args()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    assert!(hdr_len + payload > 0, "a frame needs at least one byte");
    let hdr = vec![7u8; hdr_len];
    let body = vec![1u8; payload];
    let body1 = body.clone();
    let hdr1 = hdr.clone();
    let fork = std::env::var("FORK").is_ok();
    let child = |f: Box<dyn FnOnce() -> u8 + Send>| -> Option<std::thread::JoinHandle<u8>> {
        if fork {
            // SAFETY: the process is single-threaded here; the child only spins on the ring
            // and exits.
            if unsafe { libc::fork() } == 0 {
                f();
                std::process::exit(0);
            }
            None
        } else {
            Some(std::thread::spawn(f))
        }
    };
    let t = child(Box::new(move || {
        core_affinity::set_for_current(core_affinity::CoreId { id: 1 });
        let ep = seg1.endpoint(1);
        let mut sink = 0u8;
        for _ in 0..iters {
            while ep
                .try_recv(0, |_, f| {
                    sink ^= f.first().copied().unwrap_or(0) ^ f.last().copied().unwrap_or(0)
                })
                .is_none()
            {
                // no pause
            }
            while !ep.try_send(0, 0, &hdr1, &body1) {}
        }
        sink
    }));
    core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
    let ep = seg.endpoint(0);
    let mut sink = 0u8;
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t0 = Instant::now();
        while !ep.try_send(1, 0, &hdr, &body) {}
        while ep
            .try_recv(1, |_, f| {
                sink ^= f.first().copied().unwrap_or(0) ^ f.last().copied().unwrap_or(0)
            })
            .is_none()
        {
            // no pause
        }
        samples.push(t0.elapsed().as_nanos() as f64 / 2.0);
    }
    if let Some(t) = t {
        t.join().unwrap();
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "raw ring one-way ns, header {hdr_len} payload {payload}: p50={:.0} p90={:.0} p99={:.0} ({sink})",
        p(0.5),
        p(0.9),
        p(0.99)
    );
}
