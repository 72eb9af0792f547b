//! The zerorank demo job: a ping-pong between ranks 0 and 1 (one-way latency and
//! bandwidth) and a ring exchange through every rank.
//!
//! ```text
//! cargo build --release && ./target/release/zrun -n 4 ./target/release/zr-demo
//! ```

use std::time::Instant;
use zerorank::traits::*;

fn main() {
    if let Err(e) = run() {
        eprintln!("zr-demo: {e}");
        std::process::exit(1);
    }
}

fn run() -> zerorank::Result<()> {
    let universe = zerorank::initialize()?;
    let world = universe.world();
    let (rank, size) = (world.rank(), world.size());
    let fabric = world.fabric();
    let info = fabric.info();
    println!(
        "rank {rank}/{size}: node {} local rank {} pid {} cpu {:?} launcher {:?}",
        info.node_id,
        info.local_rank,
        std::process::id(),
        universe.cpu(),
        info.launcher
    );

    // Ring exchange: each rank passes a token to its right neighbour, which adds its rank.
    let right = (rank + 1) % size;
    let left = (rank + size - 1) % size;
    let token = if rank == 0 {
        world.process_at_rank(right).send(&0u64)?;
        let (t, _) = world.process_at_rank(left).receive::<u64>()?;
        println!(
            "ring: token went round {size} ranks and came back as {t} (expected {})",
            (0..size as u64).sum::<u64>()
        );
        t
    } else {
        let (t, _) = world.process_at_rank(left).receive::<u64>()?;
        world.process_at_rank(right).send(&(t + rank as u64))?;
        t
    };
    let _ = token;

    if size >= 2 && rank < 2 {
        let peer = world.process_at_rank(1 - rank);
        let path = fabric.peer_stats((1 - rank) as u32).path;
        for &n in &[8usize, 1 << 20] {
            let iters = if n <= 64 { 20_000 } else { 200 };
            let warmup = iters / 10;
            let mut buf = vec![0u8; n];
            let mut t0 = Instant::now();
            for i in 0..warmup + iters {
                if i == warmup {
                    t0 = Instant::now();
                }
                if rank == 0 {
                    peer.send(&buf[..])?;
                    peer.receive_into(&mut buf[..])?;
                } else {
                    peer.receive_into(&mut buf[..])?;
                    peer.send(&buf[..])?;
                }
            }
            let one_way = t0.elapsed().as_secs_f64() / iters as f64 / 2.0;
            if rank == 0 {
                println!(
                    "ping-pong 0<->1 over {path:?}: {n:>8} B  one-way {:>9.3} us  {:>9.1} MB/s",
                    one_way * 1e6,
                    n as f64 / one_way / 1e6
                );
            }
        }
    }
    universe.finalize()
}
