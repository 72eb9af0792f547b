//! Several endpoints of one segment in one process, one thread each.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use zerorank_transport::shm::{ShmConfig, ShmEndpoint, ShmSegment};

fn job_id() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    0x7e58_0000_0000_0000 | (std::process::id() as u64) << 16 | N.fetch_add(1, Ordering::Relaxed)
}

#[repr(C, align(64))]
struct Hdr([u8; 64]);

fn hdr(from: usize, seq: u64) -> Hdr {
    let mut h = Hdr([0; 64]);
    h.0[..8].copy_from_slice(&seq.to_le_bytes());
    h.0[8] = from as u8;
    h
}

fn payload_len(seq: u64, max: usize) -> usize {
    (seq as usize * 37) % (max - 64 + 1)
}

fn check(frame: &[u8], from: usize, seq: u64, max: usize) {
    assert_eq!(frame.as_ptr() as usize % 16, 0, "misaligned frame");
    let n = payload_len(seq, max);
    assert_eq!(frame.len(), 64 + n, "length of frame {seq} from {from}");
    assert_eq!(
        u64::from_le_bytes(frame[..8].try_into().unwrap()),
        seq,
        "order from {from}"
    );
    assert_eq!(frame[8] as usize, from);
    for (k, &b) in frame[64..].iter().enumerate() {
        assert_eq!(
            b,
            (seq as usize + k) as u8,
            "content of frame {seq} from {from}"
        );
    }
}

/// Every rank sends `n` frames to every other rank and receives theirs.
fn run_rank(ep: ShmEndpoint, n: u64, deadline: Instant) {
    let me = ep.local_rank();
    let size = ep.local_size();
    let max = ep.max_frame();
    let mut next_send = vec![0u64; size];
    let mut next_recv = vec![0u64; size];
    next_send[me] = n;
    next_recv[me] = n;
    let mut idle = 0u32;
    while next_send.iter().chain(&next_recv).any(|&x| x < n) {
        assert!(
            Instant::now() < deadline,
            "rank {me} timed out: sent {next_send:?} received {next_recv:?}"
        );
        let mut progress = false;
        for peer in (0..size).filter(|&p| p != me) {
            let s = next_send[peer];
            if s < n {
                let h = hdr(me, s);
                let len = payload_len(s, max);
                if ep.try_send_with(peer, 0, &h.0, len, |b| {
                    for (k, x) in b.iter_mut().enumerate() {
                        *x = (s as usize + k) as u8;
                    }
                }) {
                    next_send[peer] += 1;
                    progress = true;
                }
            }
            let r = next_recv[peer];
            if r < n && ep.try_recv(peer, |_, f| check(f, peer, r, max)).is_some() {
                next_recv[peer] += 1;
                progress = true;
            }
        }
        if progress {
            idle = 0;
        } else {
            idle += 1;
            if idle > 64 {
                // Everyone may be blocked on full rings toward sleeping peers; the wait is
                // short so a full ring of ours is retried soon.
                ep.wait(Duration::from_millis(1));
            } else {
                std::thread::yield_now();
            }
        }
    }
    let st = ep.stats();
    assert_eq!(st.frames_sent, n * (size as u64 - 1));
    assert_eq!(st.frames_received, n * (size as u64 - 1));
    assert!(!ep.has_incoming());
}

#[test]
fn three_ranks_stress() {
    let job = job_id();
    let n = 30_000;
    let cfg = ShmConfig {
        slots: 8,
        slot_size: 320,
    };
    let s0 = ShmSegment::create(job, 0, 3, cfg).unwrap();
    let s1 = ShmSegment::attach(job, 0, 3).unwrap();
    let s2 = ShmSegment::attach(job, 0, 3).unwrap();
    ShmSegment::unlink(job, 0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let handles: Vec<_> = [s0, s1, s2]
        .into_iter()
        .enumerate()
        .map(|(r, s)| std::thread::spawn(move || run_rank(s.endpoint(r), n, deadline)))
        .collect();
    for h in handles {
        h.join().expect("rank thread failed");
    }
}

#[test]
fn wait_is_woken_by_send_and_times_out() {
    let job = job_id();
    let s0 = ShmSegment::create(job, 0, 2, ShmConfig::default()).unwrap();
    let s1 = ShmSegment::attach(job, 0, 2).unwrap();
    ShmSegment::unlink(job, 0).unwrap();
    // Timeout with nothing incoming.
    let e1 = s1.endpoint(1);
    let t = Instant::now();
    e1.wait(Duration::from_millis(50));
    assert!(
        t.elapsed() >= Duration::from_millis(40),
        "returned early: {:?}",
        t.elapsed()
    );
    let sender = std::thread::spawn(move || {
        let e0 = s0.endpoint(0);
        for i in 0..20u8 {
            std::thread::sleep(Duration::from_millis(5));
            assert!(e0.try_send(1, 0, &[i; 64], &[]));
        }
    });
    let t = Instant::now();
    let mut got = 0u8;
    while got < 20 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "lost wake-up: got {got} of 20"
        );
        if let Some(b) = e1.try_recv(0, |_, f| f[0]) {
            assert_eq!(b, got);
            got += 1;
        } else {
            e1.wait(Duration::from_secs(30));
        }
    }
    // 20 sends 5 ms apart: a lost wake-up would cost 30 s.
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "slow wake-ups: {:?}",
        t.elapsed()
    );
    sender.join().unwrap();
}
