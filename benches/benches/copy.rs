//! Copies into and out of shared memory: `zerorank_transport::shm::copy::copy` (64-byte
//! vector blocks) against `copy_from_slice` (glibc `memcpy`, `rep movsb` from 2 KiB), the
//! baseline it replaced.
//!
//! Single-threaded, so both copies read lines this core owns: this bench guards against
//! the loop being slower than `memcpy` on local data. The reason for the loop, lines that
//! another core has just written, shows only across processes (see the module docs of
//! `shm::copy` and `benches/coll.sh`).
//!
//! `cargo bench -p zerorank-benches --bench copy`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use zerorank_transport::shm::copy::copy;

fn copies(c: &mut Criterion) {
    let mut g = c.benchmark_group("copy");
    for len in [64usize, 1 << 10, 4 << 10, 64 << 10, 1 << 20] {
        let src: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut dst = vec![0u8; len];
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::new("shm::copy", len), &len, |b, _| {
            b.iter(|| copy(black_box(&mut dst[..]), black_box(&src[..])))
        });
        g.bench_with_input(BenchmarkId::new("memcpy (baseline)", len), &len, |b, _| {
            b.iter(|| black_box(&mut dst[..]).copy_from_slice(black_box(&src[..])))
        });
    }
    g.finish();
}

criterion_group!(benches, copies);
criterion_main!(benches);
