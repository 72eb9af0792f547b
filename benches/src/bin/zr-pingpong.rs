//! OSU-style ping-pong (per-iteration RTT percentiles, one-way = RTT/2) and streaming
//! bandwidth (window of 64 immediate sends + wait + 4-byte ack) over zerorank.
//! Output format matches benches/c/pingpong.c:
//! ```text
//!   latency <impl> <size> p50=.. p90=.. p99=..   (one-way µs)
//!   bw <impl> <size> MBps=..                     (median of windows, MB = 1e6 B)
//! ```
//!
//! ```text
//! ./target/release/zrun -n 2 ./target/release/zr-pingpong [impl-name]
//! ```

use std::time::Instant;
use zerorank::traits::*;

const WINDOW: usize = 64;

fn main() {
    if let Err(e) = run() {
        eprintln!("zr-pingpong: {e}");
        std::process::exit(1);
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    let i = ((p * (v.len() - 1) as f64) + 0.5) as usize;
    v[i.min(v.len() - 1)]
}

fn run() -> zerorank::Result<()> {
    let impl_name = std::env::args().nth(1).unwrap_or_else(|| "zerorank".into());
    let universe = zerorank::initialize()?;
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());
    if size != 2 {
        eprintln!("zr-pingpong: needs exactly 2 ranks, got {size}");
        std::process::exit(2);
    }
    let peer = world.process_at_rank(1 - rank);
    let maxn = 4usize << 20;
    let sbuf = vec![1u8; maxn];
    let mut rbuf = vec![0u8; maxn];
    let mut samples: Vec<f64> = Vec::new();
    let mut sync = [0u8; 4];

    // PP_SIZES=8,64 limits the latency sizes (and skips bandwidth unless listed there
    // too); PP_ITERS overrides the small-message iteration count (for profiling).
    let only: Option<Vec<usize>> = std::env::var("PP_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect());
    let small_iters: usize = std::env::var("PP_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    // PP_BW_REPS overrides the number of windows per small bandwidth size (profiling).
    let bw_reps: usize = std::env::var("PP_BW_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let wanted = |n: usize| only.as_ref().is_none_or(|v| v.contains(&n));
    for &n in &[0usize, 8, 64, 1024, 8192, 65536, 1 << 20, 4 << 20] {
        if !wanted(n) {
            continue;
        }
        let (iters, warm) = if n <= 8192 {
            (small_iters, 1000)
        } else {
            (200, 20)
        };
        samples.clear();
        // barrier substitute: a 4-byte exchange
        if rank == 0 {
            peer.send(&sync[..])?;
            peer.receive_into(&mut sync[..])?;
        } else {
            peer.receive_into(&mut sync[..])?;
            peer.send(&sync[..])?;
        }
        for i in 0..warm + iters {
            if rank == 0 {
                let t0 = Instant::now();
                peer.send(&sbuf[..n])?;
                peer.receive_into(&mut rbuf[..n])?;
                let dt = t0.elapsed().as_secs_f64() * 1e6 / 2.0;
                if i >= warm {
                    samples.push(dt);
                }
            } else {
                peer.receive_into(&mut rbuf[..n])?;
                peer.send(&sbuf[..n])?;
            }
        }
        if rank == 0 {
            samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "latency {impl_name} {n} p50={:.3} p90={:.3} p99={:.3} mean={:.4}",
                pct(&samples, 0.5),
                pct(&samples, 0.9),
                pct(&samples, 0.99),
                samples.iter().sum::<f64>() / samples.len() as f64
            );
        }
    }

    let ack = [0u8; 4];
    let mut ackr = [0u8; 4];
    for &n in &[8usize, 1024, 65536, 1 << 20, 4 << 20] {
        if only.is_some() && !wanted(n) {
            continue;
        }
        let warm = 2;
        let reps = if n <= 65536 {
            bw_reps
        } else if n <= 1 << 20 {
            15
        } else {
            7
        };
        let mut rates = Vec::new();
        for r in 0..warm + reps {
            if rank == 0 {
                let t0 = Instant::now();
                let sb = &sbuf[..n];
                zerorank::request::scope(|sc| -> zerorank::Result<()> {
                    let mut reqs = Vec::with_capacity(WINDOW);
                    for _ in 0..WINDOW {
                        reqs.push(peer.immediate_send_with_tag(sc, sb, 100)?);
                    }
                    for res in zerorank::request::wait_all(reqs) {
                        res?;
                    }
                    Ok(())
                })?;
                peer.receive_into_with_tag(&mut ackr[..], 101)?;
                let dt = t0.elapsed().as_secs_f64();
                if r >= warm {
                    rates.push((n * WINDOW) as f64 / dt / 1e6);
                }
            } else if n * WINDOW <= rbuf.len() {
                // Receiver: a window of immediate receives posted ahead, as the C version
                // does (into distinct parts of the buffer, as the scope rules want).
                zerorank::request::scope(|sc| -> zerorank::Result<()> {
                    let mut reqs = Vec::with_capacity(WINDOW);
                    for part in rbuf[..n * WINDOW].chunks_mut(n.max(1)).take(WINDOW) {
                        reqs.push(peer.immediate_receive_into_with_tag(sc, part, 100)?);
                    }
                    for res in zerorank::request::wait_all(reqs) {
                        res?;
                    }
                    Ok(())
                })?;
                peer.send_with_tag(&ack[..], 101)?;
            } else {
                // Too large for a window of distinct buffers: blocking receives.
                for _ in 0..WINDOW {
                    peer.receive_into_with_tag(&mut rbuf[..n], 100)?;
                }
                peer.send_with_tag(&ack[..], 101)?;
            }
        }
        if rank == 0 {
            rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!("bw {impl_name} {n} MBps={:.1}", pct(&rates, 0.5));
        }
    }
    universe.finalize()
}
