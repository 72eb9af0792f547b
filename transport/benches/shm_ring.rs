//! Two-process shared-memory benchmark (own harness): ping-pong latency of an 8-byte frame
//! (64-byte header + 8 bytes), streaming bandwidth of 1 MiB messages copied through the rings
//! with `try_send_with`, and 1 MiB single-copy CMA reads.
//!
//! `cargo bench -p zerorank-transport --bench shm_ring`
//! Environment: `ZR_SHM_SLOTS`, `ZR_SHM_SLOT_SIZE` override the ring geometry;
//! `ZR_BENCH_CPUS=a,b` picks the CPUs for parent and child (default: first two allowed).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zerorank_core::frame::{FrameHeader, FrameKind, HeaderBytes, HEADER_LEN};
use zerorank_transport::shm::{cma, ShmConfig, ShmEndpoint, ShmSegment};

const CHILD_ENV: &str = "ZR_SHM_BENCH_CHILD";
const MIB: usize = 1 << 20;
const PP_BATCH: usize = 20_000;
const PP_BATCHES: usize = 31;
const BW_MESSAGES: usize = 2048;
const BW_RUNS: usize = 7;
const CMA_READS: usize = 2000;

fn cpus() -> (usize, usize) {
    if let Ok(s) = std::env::var("ZR_BENCH_CPUS") {
        let v: Vec<usize> = s.split(',').filter_map(|x| x.parse().ok()).collect();
        if v.len() == 2 {
            return (v[0], v[1]);
        }
    }
    let ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    (
        ids.first().copied().unwrap_or(0),
        ids.get(1).copied().unwrap_or(0),
    )
}

fn pin(cpu: usize) {
    if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        eprintln!("warning: could not pin to CPU {cpu}");
    }
}

fn deadline_spin(ep: &ShmEndpoint, from: usize, what: &str) -> Vec<u8> {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = ep.try_recv(from, |_, b| b.to_vec()) {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::hint::spin_loop();
    }
}

fn send_spin(ep: &ShmEndpoint, to: usize, hdr: &[u8], payload: &[u8]) {
    let end = Instant::now() + Duration::from_secs(60);
    while !ep.try_send(to, 0, hdr, payload) {
        assert!(Instant::now() < end, "timed out sending");
        std::hint::spin_loop();
    }
}

fn header(kind: FrameKind, len: u64, addr: u64) -> HeaderBytes {
    FrameHeader {
        job: 1,
        src: 0,
        dst: 1,
        len,
        addr,
        kind,
        ..Default::default()
    }
    .to_bytes()
}

fn config() -> ShmConfig {
    let mut c = ShmConfig::for_local_size(2);
    if let Some(v) = std::env::var("ZR_SHM_SLOTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        c.slots = v;
    }
    if let Some(v) = std::env::var("ZR_SHM_SLOT_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        c.slot_size = v;
    }
    c
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    if let Ok(job) = std::env::var(CHILD_ENV) {
        child(u64::from_str_radix(&job, 16).expect("job id"));
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (cpu0, cpu1) = cpus();
    let job = (std::process::id() as u64) << 20 ^ 0x5eed_0000_0000;
    let cfg = config();
    let seg = ShmSegment::create(job, 0, 2, cfg).expect("create segment");
    let mut kid = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, format!("{job:x}"))
        .env("ZR_CHILD_CPU", cpu1.to_string())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn child");
    pin(cpu0);
    let ep = seg.endpoint(0);
    deadline_spin(&ep, 1, "child ready");
    ShmSegment::unlink(job, 0).unwrap();
    println!(
        "geometry: {} slots x {} B (max frame {} B), CPUs {cpu0}/{cpu1}",
        cfg.slots,
        cfg.slot_size,
        ep.max_frame()
    );

    // Ping-pong.
    let h = header(FrameKind::Eager, 8, 0);
    let payload = 42u64.to_le_bytes();
    let mut one_way = Vec::new();
    for batch in 0..PP_BATCHES + 3 {
        let t = Instant::now();
        for _ in 0..PP_BATCH {
            while !ep.try_send(1, 0, h.as_slice(), &payload) {
                std::hint::spin_loop();
            }
            loop {
                if ep.try_recv(1, |_, b| b.len()).is_some() {
                    break;
                }
                std::hint::spin_loop();
            }
        }
        let ns = t.elapsed().as_nanos() as f64 / PP_BATCH as f64 / 2.0;
        if batch >= 3 {
            one_way.push(ns);
        }
    }
    let min = one_way.iter().cloned().fold(f64::MAX, f64::min);
    println!(
        "ping-pong 8 B (64 B header + 8 B): one-way median {:.1} ns (best batch {:.1} ns, {} batches x {} round trips)",
        median(&mut one_way),
        min,
        PP_BATCHES,
        PP_BATCH
    );
    send_spin(&ep, 1, header(FrameKind::Fin, 0, 0).as_slice(), &[]);

    // Streaming: 1 MiB messages cut into slot-sized Data frames, copied in by the sender
    // and out by the receiver.
    let src: Vec<u8> = (0..MIB).map(|i| i as u8).collect();
    let chunk = ep.max_frame() - HEADER_LEN;
    let mut gbs = Vec::new();
    for _ in 0..BW_RUNS {
        let t = Instant::now();
        for _ in 0..BW_MESSAGES {
            let mut off = 0;
            while off < MIB {
                let n = chunk.min(MIB - off);
                let hd = header(FrameKind::Data, n as u64, off as u64);
                while !ep.try_send_with(1, 0, hd.as_slice(), n, |dst| {
                    dst.copy_from_slice(&src[off..off + n])
                }) {
                    std::hint::spin_loop();
                }
                off += n;
            }
        }
        deadline_spin(&ep, 1, "stream ack");
        let s = t.elapsed().as_secs_f64();
        gbs.push((BW_MESSAGES * MIB) as f64 / s / 1e9);
    }
    println!(
        "streaming 1 MiB messages in {} B chunks (copy in + copy out): median {:.2} GB/s (runs: {:?})",
        chunk,
        median(&mut gbs),
        gbs.iter().map(|g| format!("{g:.2}")).collect::<Vec<_>>()
    );

    // CMA: the child reads 1 MiB from our buffer, single copy.
    send_spin(
        &ep,
        1,
        header(FrameKind::Rts, MIB as u64, src.as_ptr() as u64).as_slice(),
        &[],
    );
    let r = deadline_spin(&ep, 1, "cma result");
    println!("{}", String::from_utf8_lossy(&r[HEADER_LEN..]));
    send_spin(&ep, 1, header(FrameKind::Fin, 0, 0).as_slice(), &[]);
    let st = kid.wait().unwrap();
    assert!(st.success(), "child failed: {st}");
}

fn child(job: u64) {
    if let Some(cpu) = std::env::var("ZR_CHILD_CPU")
        .ok()
        .and_then(|c| c.parse().ok())
    {
        pin(cpu);
    }
    let seg = ShmSegment::attach(job, 0, 2).expect("attach");
    let ep = seg.endpoint(1);
    send_spin(&ep, 0, header(FrameKind::Eager, 0, 0).as_slice(), &[]);
    // Echo until Fin.
    let mut buf = [0u8; 256];
    loop {
        let Some(n) = ep.try_recv(0, |_, b| {
            buf[..b.len()].copy_from_slice(b);
            b.len()
        }) else {
            std::hint::spin_loop();
            continue;
        };
        let v = zerorank_core::frame::access(&buf[..n]).unwrap();
        if v.kind == zerorank_core::frame::ArchivedFrameKind::Fin {
            break;
        }
        while !ep.try_send(0, 0, &buf[..HEADER_LEN], &buf[HEADER_LEN..n]) {
            std::hint::spin_loop();
        }
    }
    // Streaming sink.
    let mut dst = vec![0u8; MIB];
    for _ in 0..BW_RUNS {
        let mut got = 0usize;
        while got < BW_MESSAGES * MIB {
            if let Some(n) = ep.try_recv(0, |_, b| {
                let h = zerorank_core::frame::access(b).unwrap();
                let off = h.addr.to_native() as usize;
                let n = b.len() - HEADER_LEN;
                dst[off..off + n].copy_from_slice(&b[HEADER_LEN..]);
                n
            }) {
                got += n;
            } else {
                std::hint::spin_loop();
            }
        }
        send_spin(&ep, 0, header(FrameKind::Fin, 0, 0).as_slice(), &[]);
    }
    assert!(
        dst.iter().enumerate().all(|(i, &b)| b == i as u8),
        "stream content"
    );
    // CMA.
    let rts = deadline_spin(&ep, 0, "rts");
    let h = zerorank_core::frame::access(&rts).map(|h| h.to_native());
    let msg = match h {
        Ok(h) if cma::available() => {
            let mut dst = vec![0u8; h.len as usize];
            let mut v = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..CMA_READS {
                    cma::read(
                        h.pid_or(std::os::unix::process::parent_id()),
                        h.addr,
                        &mut dst,
                    )
                    .expect("cma read");
                }
                v.push((CMA_READS * dst.len()) as f64 / t.elapsed().as_secs_f64() / 1e9);
            }
            format!(
                "CMA single-copy 1 MiB reads: median {:.2} GB/s",
                median(&mut v)
            )
        }
        Ok(_) => "CMA not available".to_string(),
        Err(e) => format!("bad rts: {e}"),
    };
    send_spin(
        &ep,
        0,
        header(FrameKind::Eager, msg.len() as u64, 0).as_slice(),
        msg.as_bytes(),
    );
    deadline_spin(&ep, 0, "fin");
}

trait PidOr {
    fn pid_or(&self, fallback: u32) -> i32;
}
impl PidOr for FrameHeader {
    fn pid_or(&self, fallback: u32) -> i32 {
        if self.pid != 0 {
            self.pid as i32
        } else {
            fallback as i32
        }
    }
}
