//! The shared-memory ring's hot path: pushing a frame and popping it in place
//! (`zerorank_transport::shm::local_ring`, the code of the transport's rings in this
//! process's memory), against crossbeam's `ArrayQueue` (a lock-free bounded queue of the
//! same capacity holding fixed-size messages) as the baseline.
//!
//! Single-threaded: both ends' lines stay in this core's cache, so this measures the
//! instructions of a push and a pop, not the cross-core transfer of the slot's line that
//! dominates a real message (40-70 ns one way on this machine, `../shared/REFERENCE.md`);
//! `zr-bench latency` and `benches/compare` measure that.
//!
//! Measured 2026-12-01 (criterion means): one push and pop of 8 B 5.8 ns against
//! ArrayQueue's 17.7; 48 B 5.7 against 20.2; 1 KiB 35 against 68. A burst of 32 then 32
//! pops: 8 B 534 ns (16.7 a frame: the 32 slots lie 32 KiB apart, so each is a different
//! cache line and TLB entry) against 863.
//!
//! `cargo bench -p zerorank-benches --bench ring`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam::queue::ArrayQueue;
use std::hint::black_box;
use zerorank_transport::shm::local_ring::LocalRing;
use zerorank_transport::shm::ShmConfig;

/// Frames pushed before they are popped in the burst benches.
const BURST: usize = 32;

/// A frame of `N` bytes: a message as the baseline queue holds it.
fn one<const N: usize>(c: &mut Criterion) {
    let payload = [7u8; N];
    // The transport's default geometry; the queue gets the same capacity.
    let geometry = ShmConfig::default();
    let ring = LocalRing::new(geometry.slots, geometry.slot_size);
    let queue: ArrayQueue<[u8; N]> = ArrayQueue::new(geometry.slots);
    let mut g = c.benchmark_group("ring push + pop");
    g.throughput(Throughput::Elements(1));
    g.bench_with_input(BenchmarkId::new("local_ring", N), &N, |b, _| {
        b.iter(|| {
            assert!(ring.push(1, &[], black_box(&payload)));
            ring.pop(|tag, bytes| black_box((tag, bytes[N - 1])))
                .expect("just pushed")
        })
    });
    g.bench_with_input(
        BenchmarkId::new("crossbeam ArrayQueue (baseline)", N),
        &N,
        |b, _| {
            b.iter(|| {
                queue.push(*black_box(&payload)).expect("room");
                let m = queue.pop().expect("just pushed");
                black_box(m[N - 1])
            })
        },
    );
    g.finish();

    let mut g = c.benchmark_group("ring burst of 32");
    g.throughput(Throughput::Elements(BURST as u64));
    g.bench_with_input(BenchmarkId::new("local_ring", N), &N, |b, _| {
        b.iter(|| {
            for _ in 0..BURST {
                assert!(ring.push(1, &[], black_box(&payload)));
            }
            for _ in 0..BURST {
                ring.pop(|_, bytes| black_box(bytes[0])).expect("pushed");
            }
        })
    });
    g.bench_with_input(
        BenchmarkId::new("crossbeam ArrayQueue (baseline)", N),
        &N,
        |b, _| {
            b.iter(|| {
                for _ in 0..BURST {
                    queue.push(*black_box(&payload)).expect("room");
                }
                for _ in 0..BURST {
                    black_box(queue.pop().expect("pushed")[0]);
                }
            })
        },
    );
    g.finish();
}

fn rings(c: &mut Criterion) {
    one::<8>(c);
    one::<48>(c);
    one::<1024>(c);
}

criterion_group!(benches, rings);
criterion_main!(benches);
