//! Frame header hot paths: encoding a header into a ring slot (the hand-written
//! `encode_into` against rkyv's serializer, the baseline it must match byte for byte) and
//! validating one in place (`access_checked`: bytecheck plus job, rank and length checks).
//!
//! Measured on the project VM (2026-11-23): `encode_into` 1.4 ns; rkyv's serializer
//! 6.3 ns when inlined at the call site (the previous `encode_into`), 1.6 ns as an
//! out-of-line call; `access_checked` 2.2 ns.
//!
//! `cargo bench -p zerorank-benches --bench frame`

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use zerorank_core::frame::{access_checked, Expect, FrameHeader, FrameKind, HeaderBytes};

fn header() -> FrameHeader {
    FrameHeader {
        job: 0x1234_5678_9abc,
        comm: 0,
        src: 1,
        dst: 0,
        tag: 42,
        seq: 1_000_001,
        len: 8,
        cookie: 0,
        addr: 0,
        pid: 4242,
        kind: FrameKind::Eager,
    }
}

fn encode(c: &mut Criterion) {
    let h = header();
    let mut out = HeaderBytes::default();
    let mut g = c.benchmark_group("header encode");
    g.bench_function("encode_into (hand-written)", |b| {
        b.iter(|| black_box(&h).encode_into(black_box(out.as_mut_slice())))
    });
    g.bench_function("encode_with_rkyv (baseline)", |b| {
        b.iter(|| black_box(&h).encode_with_rkyv(black_box(out.as_mut_slice())))
    });
    g.finish();
}

fn access(c: &mut Criterion) {
    let h = header();
    let bytes = h.to_bytes();
    let expect = Expect {
        job: h.job,
        rank: 0,
        size: 2,
    };
    c.bench_function("header access_checked (bytecheck + job/rank/length)", |b| {
        b.iter(|| {
            access_checked(black_box(bytes.as_slice()), black_box(&expect))
                .expect("valid")
                .seq
        })
    });
}

criterion_group!(benches, encode, access);
criterion_main!(benches);
