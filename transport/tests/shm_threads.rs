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

/// How long a wait that should end may take before the test calls it hung: far beyond
/// any scheduling delay, so that it bounds the test without being a timing threshold.
const HANG: Duration = Duration::from_secs(60);

#[test]
fn wait_is_woken_by_send_and_times_out() {
    let job = job_id();
    let s0 = ShmSegment::create(job, 0, 2, ShmConfig::default()).unwrap();
    let s1 = ShmSegment::attach(job, 0, 2).unwrap();
    ShmSegment::unlink(job, 0).unwrap();
    // Both endpoints in their own threads; this one only watches for a hang.
    let got = std::sync::Arc::new(AtomicU64::new(0));
    let (done, finished) = std::sync::mpsc::channel();
    let receiver = {
        let got = got.clone();
        std::thread::spawn(move || {
            let e1 = s1.endpoint(1);
            // With nothing incoming, a wait returns once its timeout has passed (or
            // earlier: spurious returns are allowed), and there is still nothing.
            e1.wait(Duration::from_millis(50));
            assert!(e1.try_recv(0, |_, f| f[0]).is_none(), "a frame nobody sent");
            done.send("timeout").unwrap();
            // Every send wakes a wait that would otherwise last an hour: a lost wake-up
            // hangs here, and the watcher below says so.
            while got.load(Ordering::Relaxed) < 20 {
                match e1.try_recv(0, |_, f| f[0]) {
                    Some(b) => {
                        assert_eq!(u64::from(b), got.load(Ordering::Relaxed), "order");
                        got.fetch_add(1, Ordering::Relaxed);
                    }
                    None => e1.wait(Duration::from_secs(3600)),
                }
            }
            done.send("received").unwrap();
        })
    };
    match finished.recv_timeout(HANG) {
        Ok(_) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            receiver.join().expect("receiver thread failed");
            unreachable!("the receiver ended without saying why");
        }
        Err(_) => panic!("a 50 ms wait with nothing incoming had not returned after {HANG:?}"),
    }
    let sender = std::thread::spawn(move || {
        let e0 = s0.endpoint(0);
        for i in 0..20u8 {
            std::thread::sleep(Duration::from_millis(5));
            assert!(e0.try_send(1, 0, &[i; 64], &[]));
        }
    });
    if finished.recv_timeout(HANG).is_err() {
        if receiver.is_finished() {
            receiver.join().expect("receiver thread failed");
        }
        panic!(
            "lost wake-up: {} of 20 frames received after {HANG:?}, the receiver waiting \
             for the next (or a thread failed)",
            got.load(Ordering::Relaxed)
        );
    }
    sender.join().expect("sender thread failed");
    receiver.join().expect("receiver thread failed");
}
