//! Two real processes: the test binary re-executes itself with an environment variable that
//! selects the child role.
#![cfg(not(loom))]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use zerorank_transport::shm::{cma, ShmConfig, ShmEndpoint, ShmSegment};

const ROLE: &str = "ZR_SHM_TEST_ROLE";
const JOB: &str = "ZR_SHM_TEST_JOB";
const FRAMES: u64 = 100_000;

fn spawn_child(test: &str, role: &str, job: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(JOB, job.to_string())
        .stdin(Stdio::piped())
        .stdout(if role == "cma-child" {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .expect("spawn child test process")
}

struct Reaper(Child);
impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[repr(C, align(64))]
struct Hdr([u8; 64]);

fn payload_byte(seq: u64, k: usize) -> u8 {
    (seq.wrapping_mul(31) as usize + k) as u8
}

fn payload_len(seq: u64, max: usize) -> usize {
    (seq as usize * 13) % (max - 64 + 1)
}

/// Send FRAMES numbered frames to `peer` and receive FRAMES from it, checking order and
/// content; both sides run this at once.
fn exchange(ep: &ShmEndpoint, peer: usize, deadline: Instant, child: Option<&mut Child>) {
    let max = ep.max_frame();
    let (mut sent, mut recvd) = (0u64, 0u64);
    let mut idle = 0u32;
    let mut child = child;
    while sent < FRAMES || recvd < FRAMES {
        let mut progress = false;
        if sent < FRAMES {
            let mut h = Hdr([0; 64]);
            h.0[..8].copy_from_slice(&sent.to_le_bytes());
            let s = sent;
            if ep.try_send_with(peer, 0, &h.0, payload_len(s, max), |b| {
                for (k, x) in b.iter_mut().enumerate() {
                    *x = payload_byte(s, k);
                }
            }) {
                sent += 1;
                progress = true;
            }
        }
        let r = recvd;
        if ep
            .try_recv(peer, |_, f| {
                assert_eq!(f.as_ptr() as usize % 16, 0);
                assert_eq!(
                    u64::from_le_bytes(f[..8].try_into().unwrap()),
                    r,
                    "out of order"
                );
                assert_eq!(f.len(), 64 + payload_len(r, max), "length of frame {r}");
                assert!(
                    f[64..]
                        .iter()
                        .enumerate()
                        .all(|(k, &b)| b == payload_byte(r, k)),
                    "content of frame {r}"
                );
            })
            .is_some()
        {
            recvd += 1;
            progress = true;
        }
        if progress {
            idle = 0;
            continue;
        }
        idle += 1;
        if idle & 1023 == 0 {
            assert!(
                Instant::now() < deadline,
                "timed out: sent {sent}, received {recvd} of {FRAMES}"
            );
            if let Some(c) = child.as_deref_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("child exited early: {st}");
                }
            }
        }
        if idle > 256 {
            ep.wait(Duration::from_millis(2));
        } else {
            std::thread::yield_now();
        }
    }
}

fn wait_for_frame(ep: &ShmEndpoint, from: usize, deadline: Instant, what: &str) {
    while ep.try_recv(from, |_, _| ()).is_none() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        ep.wait(Duration::from_millis(5));
    }
}

#[test]
fn two_processes_100k_frames_each_way() {
    let deadline = Instant::now() + Duration::from_secs(120);
    if std::env::var(ROLE).as_deref() == Ok("ring-child") {
        let job: u64 = std::env::var(JOB).unwrap().parse().unwrap();
        let ep = ShmSegment::attach(job, 0, 2)
            .expect("child attach")
            .endpoint(1);
        assert!(ep.try_send(0, 0, &[0u8; 64], b"ready"));
        exchange(&ep, 0, deadline, None);
        // The parent may not have drained the last frames yet: the ring can be full.
        while !ep.try_send(0, 0, &[0u8; 64], b"done") {
            assert!(Instant::now() < deadline, "timed out sending done");
            std::thread::yield_now();
        }
        return;
    }
    let job = 0x7e59_0000_0000_0000 | (std::process::id() as u64) << 8;
    let seg = ShmSegment::create(
        job,
        0,
        2,
        ShmConfig {
            slots: 16,
            slot_size: 1024,
        },
    )
    .unwrap();
    let mut child = Reaper(spawn_child(
        "two_processes_100k_frames_each_way",
        "ring-child",
        job,
    ));
    let ep = seg.endpoint(0);
    wait_for_frame(&ep, 1, deadline, "child ready");
    ShmSegment::unlink(job, 0).unwrap();
    assert!(!std::path::Path::new(&format!(
        "/dev/shm/{}",
        zerorank_transport::shm::segment_name(job, 0)
    ))
    .exists());
    exchange(&ep, 1, deadline, Some(&mut child.0));
    wait_for_frame(&ep, 1, deadline, "child done");
    loop {
        match child.0.try_wait().unwrap() {
            Some(st) => {
                assert!(st.success(), "child failed: {st}");
                break;
            }
            None => {
                assert!(Instant::now() < deadline, "child did not exit");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    let st = ep.stats();
    assert_eq!((st.frames_sent, st.frames_received), (FRAMES, FRAMES + 2));
}

#[test]
fn cma_reads_child_memory() {
    if std::env::var(ROLE).as_deref() == Ok("cma-child") {
        let buf: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        println!(
            "\nADDR {} {} {}",
            std::process::id(),
            buf.as_ptr() as u64,
            buf.len()
        );
        // Stay alive until the parent closes our stdin.
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        drop(buf);
        return;
    }
    assert!(
        cma::available(),
        "CMA should be available (running as root)"
    );
    let mut child = Reaper(spawn_child("cma_reads_child_memory", "cma-child", 0));
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(i) = line.find("ADDR ") {
                let _ = tx.send(line[i + 5..].to_string());
                // Keep draining so the child's later output never hits a closed pipe.
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("child did not report its buffer");
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let (pid, addr, len) = (v[0] as i32, v[1], v[2] as usize);
    let mut dst = vec![0u8; len];
    cma::read(pid, addr, &mut dst).expect("cma read");
    assert!(
        dst.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8),
        "content"
    );
    // Part of the buffer at an offset.
    let mut part = vec![0u8; 1000];
    cma::read(pid, addr + 12345, &mut part).unwrap();
    assert!(part
        .iter()
        .enumerate()
        .all(|(i, &b)| b == ((i + 12345) % 251) as u8));
    // Bad addresses are errors, not crashes.
    let e = cma::read(pid, 8, &mut part).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EFAULT), "{e}");
    assert!(cma::read(pid, u64::MAX - 10, &mut part).is_err());
    drop(child.0.stdin.take());
    let st = child.0.wait().unwrap();
    assert!(st.success(), "child failed: {st}");
    // A process that no longer exists.
    let e = cma::read(pid, addr, &mut part).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ESRCH), "{e}");
}
