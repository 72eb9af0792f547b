//! Throughput of the TCP frame path over loopback, plain glommio writes vs `SEND_ZC`, and
//! 8-byte ping-pong latency. Two executors on two threads.
//!
//! `cargo run --release -p zerorank-transport --example tcp_bench [runs]`

use glommio::{LocalExecutorBuilder, Placement};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use zerorank_core::buffer::BufferPool;
use zerorank_core::frame::{access, Expect, FrameHeader, FrameKind, HeaderBytes};
use zerorank_transport::tcp::{connect, Listener, TcpConfig};

const JOB: u64 = 42;
const SECRET: [u8; 32] = [3; 32];
const TAG_DATA: i32 = 0;
const TAG_SYNC: i32 = 1;
const TAG_PING: i32 = 2;
const TAG_QUIT: i32 = 3;

fn header(src: u32, dst: u32, tag: i32, len: usize) -> HeaderBytes {
    FrameHeader {
        job: JOB,
        src,
        dst,
        tag,
        seq: 1,
        len: len as u64,
        kind: FrameKind::Eager,
        ..FrameHeader::default()
    }
    .to_bytes()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // ZR_SPIN_US=n: let each executor spin n us before parking (latency experiment).
    let spin = std::env::var("ZR_SPIN_US")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_micros);
    let sizes: &'static [usize] = if runs == 0 {
        &[]
    } else {
        &[64 << 10, 1 << 20, 4 << 20]
    };
    let (atx, arx) = mpsc::channel();
    let server = LocalExecutorBuilder::new(Placement::Fixed(1))
        .name("srv")
        .io_memory(256 << 10)
        .spin_before_park(spin.unwrap_or_default())
        .spawn(move || async move {
            let l = Listener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            atx.send(l.local_addr()).unwrap();
            let (_, conn) = l
                .accept(JOB, 0, 2, &SECRET, &TcpConfig::default())
                .await
                .unwrap();
            let (mut rd, mut wr) = conn.into_split();
            let pool = BufferPool::new();
            let ex = Expect {
                job: JOB,
                rank: 0,
                size: 2,
            };
            loop {
                let buf = rd.next_frame(&pool, &ex).await.unwrap();
                let tag = access(buf.as_slice()).unwrap().tag.to_native();
                match tag {
                    TAG_DATA => {}
                    TAG_SYNC | TAG_PING => {
                        wr.send_frame(&header(0, 1, tag, 8), &[0; 8]).await.unwrap()
                    }
                    _ => break,
                }
            }
        })
        .unwrap();
    let addr = arx.recv().unwrap();
    let client = LocalExecutorBuilder::new(Placement::Fixed(0))
        .name("cli")
        .io_memory(256 << 10)
        .spin_before_park(spin.unwrap_or_default())
        .spawn(move || async move {
            let conn = connect(addr, JOB, 1, 0, &SECRET, &TcpConfig::default()).await.unwrap();
            let (mut rd, mut wr) = conn.into_split();
            let pool = BufferPool::new();
            let ex = Expect { job: JOB, rank: 1, size: 2 };
            let total: usize = 512 << 20;
            for &size in sizes {
                let payload = vec![0x5au8; size];
                let frames = total / size;
                for (name, zc) in [("plain", None), ("SEND_ZC", Some(size))] {
                    wr.set_zerocopy_min(zc);
                    let mut rates = Vec::new();
                    for run in 0..=runs {
                        let t = Instant::now();
                        for _ in 0..frames {
                            wr.send_frame(&header(1, 0, TAG_DATA, size), &payload).await.unwrap();
                        }
                        wr.send_frame(&header(1, 0, TAG_SYNC, 8), &[0; 8]).await.unwrap();
                        rd.next_frame(&pool, &ex).await.unwrap();
                        let secs = t.elapsed().as_secs_f64();
                        if run > 0 {
                            // run 0 is a warm-up
                            rates.push((frames * (size + 68)) as f64 / secs / 1e6);
                        }
                    }
                    let mut sorted = rates.clone();
                    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
                    println!(
                        "{:>5} KiB frames  {name:>7}: median {:>8.0} MB/s  (min {:.0}, max {:.0}, {} runs of {} MiB)",
                        size >> 10,
                        median(rates),
                        sorted[0],
                        sorted[sorted.len() - 1],
                        runs,
                        total >> 20
                    );
                }
            }
            wr.set_zerocopy_min(None);
            let iters = 20_000;
            let mut one_way = Vec::with_capacity(iters);
            for i in 0..(iters + 2000) {
                let t = Instant::now();
                wr.send_frame(&header(1, 0, TAG_PING, 8), &[1; 8]).await.unwrap();
                rd.next_frame(&pool, &ex).await.unwrap();
                if i >= 2000 {
                    one_way.push(t.elapsed().as_secs_f64() * 1e6 / 2.0);
                }
            }
            let mean = one_way.iter().sum::<f64>() / one_way.len() as f64;
            let mut s = one_way.clone();
            s.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "8 B ping-pong one-way latency: median {:.2} us, mean {:.2} us, p99 {:.2} us ({iters} round trips)",
                median(one_way),
                mean,
                s[s.len() * 99 / 100]
            );
            wr.send_frame(&header(1, 0, TAG_QUIT, 0), &[]).await.unwrap();
            glommio::timer::sleep(Duration::from_millis(50)).await;
        })
        .unwrap();
    client.join().unwrap();
    server.join().unwrap();
}
