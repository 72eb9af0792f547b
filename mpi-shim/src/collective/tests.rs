//! The schedules of n ranks run in memory over a simulated network, checked against
//! serial computations.

#![allow(clippy::needless_range_loop)]

use super::exec::Bufs;
use super::plan::{plan, Planned, Tuning};
use super::schedule::{Region, Step};
use super::{CollError, CollOp, RawBuf, Reducer};
use std::collections::VecDeque;
use std::rc::Rc;

// ----------------------------------------------------------------------------------------
// Randomness, reducers.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// 2x2 matrices of u32 (row-major) under multiplication mod 2^32: not commutative.
struct MatMul;

impl Reducer for MatMul {
    fn reduce(&self, input: &[u8], inout: &mut [u8]) {
        for (a, b) in input.chunks_exact(16).zip(inout.chunks_exact_mut(16)) {
            let g =
                |s: &[u8], i: usize| u32::from_ne_bytes(s[4 * i..4 * i + 4].try_into().unwrap());
            let (a0, a1, a2, a3) = (g(a, 0), g(a, 1), g(a, 2), g(a, 3));
            let (b0, b1, b2, b3) = (g(b, 0), g(b, 1), g(b, 2), g(b, 3));
            let c = [
                a0.wrapping_mul(b0).wrapping_add(a1.wrapping_mul(b2)),
                a0.wrapping_mul(b1).wrapping_add(a1.wrapping_mul(b3)),
                a2.wrapping_mul(b0).wrapping_add(a3.wrapping_mul(b2)),
                a2.wrapping_mul(b1).wrapping_add(a3.wrapping_mul(b3)),
            ];
            for (i, v) in c.iter().enumerate() {
                b[4 * i..4 * i + 4].copy_from_slice(&v.to_ne_bytes());
            }
        }
    }
    fn commutative(&self) -> bool {
        false
    }
    fn elem_size(&self) -> usize {
        16
    }
}

/// Wrapping u32 sum: commutative and associative, so exact whatever the order.
struct SumU32;

impl Reducer for SumU32 {
    fn reduce(&self, input: &[u8], inout: &mut [u8]) {
        for (a, b) in input.chunks_exact(4).zip(inout.chunks_exact_mut(4)) {
            let s = u32::from_ne_bytes(a.try_into().unwrap())
                .wrapping_add(u32::from_ne_bytes((&*b).try_into().unwrap()));
            b.copy_from_slice(&s.to_ne_bytes());
        }
    }
    fn commutative(&self) -> bool {
        true
    }
    fn elem_size(&self) -> usize {
        4
    }
}

/// f64 sum: commutative, not associative; the result depends on the combination order.
struct SumF64;

impl Reducer for SumF64 {
    fn reduce(&self, input: &[u8], inout: &mut [u8]) {
        for (a, b) in input.chunks_exact(8).zip(inout.chunks_exact_mut(8)) {
            let s = f64::from_ne_bytes(a.try_into().unwrap())
                + f64::from_ne_bytes((&*b).try_into().unwrap());
            b.copy_from_slice(&s.to_ne_bytes());
        }
    }
    fn commutative(&self) -> bool {
        true
    }
    fn elem_size(&self) -> usize {
        8
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Mat,
    U32,
    F64,
}

const KINDS: [Kind; 3] = [Kind::Mat, Kind::U32, Kind::F64];

impl Kind {
    fn op(self) -> Rc<dyn Reducer> {
        match self {
            Kind::Mat => Rc::new(MatMul),
            Kind::U32 => Rc::new(SumU32),
            Kind::F64 => Rc::new(SumF64),
        }
    }
    fn elem(self) -> usize {
        self.op().elem_size()
    }
    fn data(self, rng: &mut Rng, len: usize) -> Vec<u8> {
        match self {
            Kind::F64 => (0..len / 8)
                .flat_map(|_| {
                    let x = (rng.below(2_000_001) as f64 - 1e6) * 1.37e-3 / 3.0;
                    x.to_ne_bytes()
                })
                .collect(),
            _ => (0..len).map(|_| rng.next() as u8).collect(),
        }
    }
    /// Are `got` and the serial `want` the same (exactly, or up to rounding for f64)?
    fn same(self, got: &[u8], want: &[u8]) -> bool {
        if self != Kind::F64 {
            return got == want;
        }
        got.len() == want.len()
            && got.chunks(8).zip(want.chunks(8)).all(|(a, b)| {
                let (a, b) = (
                    f64::from_ne_bytes(a.try_into().unwrap()),
                    f64::from_ne_bytes(b.try_into().unwrap()),
                );
                (a - b).abs() <= 1e-9 * (1.0 + b.abs())
            })
    }
}

/// `ops[0] op ops[1] op ...` in order.
fn serial(op: &dyn Reducer, ops: &[Vec<u8>]) -> Vec<u8> {
    let mut acc = ops[0].clone();
    for x in &ops[1..] {
        let mut y = x.clone();
        op.reduce(&acc, &mut y);
        acc = y;
    }
    acc
}

fn tunings() -> [Tuning; 2] {
    let tiny = Tuning {
        bcast_large: 0,
        reduce_large: 0,
        allreduce_large: 0,
        reduce_scatter_large: 0,
        reduce_batch: 0,
        gather_binomial: 0,
        allgather_small: 0,
        alltoall_batch: 0,
    };
    let huge = Tuning {
        bcast_large: usize::MAX,
        reduce_large: usize::MAX,
        allreduce_large: usize::MAX,
        reduce_scatter_large: usize::MAX,
        reduce_batch: usize::MAX,
        gather_binomial: usize::MAX,
        allgather_small: usize::MAX,
        alltoall_batch: usize::MAX,
    };
    [tiny, huge]
}

fn roots(n: u32) -> Vec<u32> {
    let mut v = vec![0, n - 1, n / 2];
    v.sort();
    v.dedup();
    v
}

const FILL: u8 = 0xEE;

// ----------------------------------------------------------------------------------------
// The simulated network.

struct SimRank {
    steps: Vec<Step>,
    bufs: Bufs,
    op: Option<Rc<dyn Reducer>>,
    pos: usize,
    posted: bool,
    /// The current round's receives: (peer, region, matched).
    recvs: Vec<(u32, Region, bool)>,
    /// The current round's sends not matched by their receiver yet.
    unmatched_sends: usize,
}

impl SimRank {
    fn done(&self) -> bool {
        !self.posted && self.pos >= self.steps.len()
    }
    fn round(&self) -> (usize, usize) {
        let mut i = self.pos;
        while self.steps[i].is_comm() {
            i += 1;
        }
        let ce = i;
        while self.steps[i] != Step::End {
            assert!(!self.steps[i].is_comm(), "transfer after a local step");
            i += 1;
        }
        (ce, i)
    }
}

/// Run the schedules of all ranks. Messages travel FIFO per (source, destination) but in
/// a random order otherwise, and ranks advance in a random order. Sends complete at once
/// (eager) or, for odd seeds, only when the receiver has matched them (rendezvous). Errs
/// on a receive of the wrong length or a deadlock; else each rank's outcome: `None`, or
/// the error of an agreement verdict that stopped it.
fn simulate(seed: u64, planned: Vec<Planned>) -> Result<Vec<Option<String>>, String> {
    let n = planned.len();
    let rendezvous = seed % 2 == 1;
    let mut rng = Rng::new(seed);
    let mut ranks: Vec<SimRank> = planned
        .into_iter()
        .map(|p| SimRank {
            bufs: Bufs::new(p.send, p.recv, &p.sched.tmps),
            steps: p.sched.steps,
            op: p.op,
            pos: 0,
            posted: false,
            recvs: Vec::new(),
            unmatched_sends: 0,
        })
        .collect();
    // in_flight[src * n + dst], arrived[dst * n + src]
    let mut in_flight: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); n * n];
    let mut arrived: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); n * n];

    /// Match what arrived from `src`; the number of messages matched.
    fn try_match(rank: &mut SimRank, q: &mut VecDeque<Vec<u8>>, src: u32) -> Result<usize, String> {
        let mut matched = 0;
        while !q.is_empty() {
            let Some(slot) = rank.recvs.iter_mut().find(|(p, _, m)| *p == src && !*m) else {
                return Ok(matched);
            };
            matched += 1;
            let msg = q.pop_front().unwrap();
            if msg.len() != slot.1.len {
                return Err(format!(
                    "message of {} bytes from {src} for a receive of {}",
                    msg.len(),
                    slot.1.len
                ));
            }
            slot.2 = true;
            let reg = slot.1;
            rank.bufs.bytes_mut(reg).copy_from_slice(&msg);
        }
        Ok(matched)
    }

    #[derive(Clone, Copy)]
    enum Act {
        Post(usize),
        Finish(usize),
        Deliver(usize, usize),
    }
    let mut acts = Vec::new();
    let mut outcomes = vec![None; n];
    loop {
        acts.clear();
        for (i, r) in ranks.iter().enumerate() {
            if r.done() {
                continue;
            }
            if !r.posted {
                acts.push(Act::Post(i));
            } else if r.recvs.iter().all(|x| x.2) && (!rendezvous || r.unmatched_sends == 0) {
                acts.push(Act::Finish(i));
            }
        }
        for (k, q) in in_flight.iter().enumerate() {
            if !q.is_empty() {
                acts.push(Act::Deliver(k / n, k % n));
            }
        }
        if acts.is_empty() {
            if ranks.iter().all(|r| r.done()) {
                return Ok(outcomes);
            }
            let stuck: Vec<_> = (0..n).filter(|&i| !ranks[i].done()).collect();
            return Err(format!("deadlock: ranks {stuck:?} wait"));
        }
        match acts[rng.below(acts.len())] {
            Act::Post(i) => {
                let r = &mut ranks[i];
                let (ce, _) = r.round();
                let comms: Vec<Step> = r.steps[r.pos..ce].to_vec();
                // A round never receives into what it sends or receives elsewhere.
                for (a, x) in comms.iter().enumerate() {
                    if let Step::Recv { dst, .. } = x {
                        for (b, y) in comms.iter().enumerate() {
                            let other = match y {
                                Step::Send { src, .. } => *src,
                                Step::Recv { dst, .. } if a != b => *dst,
                                _ => continue,
                            };
                            assert!(
                                !dst.overlaps(&other),
                                "rank {i} of {n}: round overlap {x:?} {y:?} in {:?}",
                                r.steps
                            );
                        }
                    }
                }
                for x in &comms {
                    match *x {
                        Step::Send { peer, src } => {
                            assert!((peer as usize) < n && peer as usize != i);
                            let bytes = r.bufs.bytes(src).to_vec();
                            in_flight[i * n + peer as usize].push_back(bytes);
                            r.unmatched_sends += 1;
                        }
                        Step::Recv { peer, dst } => {
                            assert!((peer as usize) < n && peer as usize != i);
                            r.recvs.push((peer, dst, false));
                        }
                        _ => unreachable!(),
                    }
                }
                r.posted = true;
                for src in 0..n {
                    let m = try_match(&mut ranks[i], &mut arrived[i * n + src], src as u32)?;
                    ranks[src].unmatched_sends -= m;
                }
            }
            Act::Finish(i) => {
                let r = &mut ranks[i];
                let (ce, end) = r.round();
                let op = r.op.clone();
                r.pos = end + 1;
                for k in ce..end {
                    let st = r.steps[k];
                    if let Some(e) = r.bufs.local(&st, op.as_deref()) {
                        outcomes[i] = Some(e.to_string());
                        r.pos = r.steps.len();
                        break;
                    }
                }
                r.posted = false;
                r.recvs.clear();
            }
            Act::Deliver(src, dst) => {
                let m = in_flight[src * n + dst].pop_front().unwrap();
                arrived[dst * n + src].push_back(m);
                let m = try_match(&mut ranks[dst], &mut arrived[dst * n + src], src as u32)?;
                ranks[src].unmatched_sends -= m;
            }
        }
    }
}

/// One rank's buffers.
#[derive(Clone, Default)]
struct Data {
    send: Option<Vec<u8>>,
    recv: Option<Vec<u8>>,
}

fn raw(v: &mut Option<Vec<u8>>) -> Option<RawBuf> {
    // SAFETY: the vectors outlive the simulation and are not touched during it.
    v.as_mut().map(|v| unsafe { RawBuf::from_slice(v) })
}

/// Plan `mk(rank, send, recv)` on every rank and simulate.
fn sim(
    seed: u64,
    t: &Tuning,
    data: &mut [Data],
    mk: impl Fn(u32, Option<RawBuf>, Option<RawBuf>) -> CollOp,
) -> Result<(), String> {
    let n = data.len() as u32;
    let planned = data
        .iter_mut()
        .enumerate()
        .map(|(r, d)| {
            let (s, rv) = (raw(&mut d.send), raw(&mut d.recv));
            // Half the runs start with the ranks' agreement (which must let them all on).
            plan(r as u32, n, mk(r as u32, s, rv), t, seed & 4 != 0).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    match simulate(seed, planned)? {
        o if o.iter().all(Option::is_none) => Ok(()),
        o => Err(format!("agreeing ranks stopped: {o:?}")),
    }
}

fn run_ok(
    seed: u64,
    t: &Tuning,
    data: &mut [Data],
    mk: impl Fn(u32, Option<RawBuf>, Option<RawBuf>) -> CollOp,
) {
    if let Err(e) = sim(seed, t, data, mk) {
        panic!("{e}");
    }
}

// ----------------------------------------------------------------------------------------
// The tests.

#[test]
fn barrier() {
    for n in 1..=9 {
        for seed in 0..5 {
            let mut d = vec![Data::default(); n];
            run_ok(seed, &Tuning::default(), &mut d, |_, _, _| CollOp::Barrier);
        }
    }
}

#[test]
fn bcast() {
    let mut rng = Rng::new(1);
    for t in tunings() {
        for n in 1..=9u32 {
            for root in roots(n) {
                for len in [0, 1, 7, 100, 1001] {
                    let want = Kind::U32.data(&mut rng, len);
                    let mut d: Vec<Data> = (0..n)
                        .map(|r| Data {
                            send: None,
                            recv: Some(if r == root {
                                want.clone()
                            } else {
                                vec![FILL; len]
                            }),
                        })
                        .collect();
                    run_ok(rng.next(), &t, &mut d, |_, _, rv| CollOp::Bcast {
                        root,
                        buf: rv.unwrap(),
                    });
                    for (r, x) in d.iter().enumerate() {
                        assert_eq!(
                            x.recv.as_ref().unwrap(),
                            &want,
                            "n={n} root={root} len={len} rank {r}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn large_with_default_tuning() {
    // Above the real thresholds: scatter+ring bcast, ring allreduce, ring reduce.
    let mut rng = Rng::new(2);
    let t = Tuning::default();
    for n in [2u32, 3, 5] {
        let len = 70_000;
        let want = Kind::U32.data(&mut rng, len);
        let mut d: Vec<Data> = (0..n)
            .map(|r| Data {
                send: None,
                recv: Some(if r == 1 { want.clone() } else { vec![0; len] }),
            })
            .collect();
        run_ok(rng.next(), &t, &mut d, |_, _, rv| CollOp::Bcast {
            root: 1,
            buf: rv.unwrap(),
        });
        assert!(d.iter().all(|x| x.recv.as_ref() == Some(&want)));
        for kind in [Kind::U32, Kind::Mat] {
            let inputs: Vec<Vec<u8>> = (0..n)
                .map(|_| kind.data(&mut rng, len - len % 16))
                .collect();
            let want = serial(&*kind.op(), &inputs);
            let mut d: Vec<Data> = inputs
                .iter()
                .map(|x| Data {
                    send: Some(x.clone()),
                    recv: Some(vec![0; x.len()]),
                })
                .collect();
            run_ok(rng.next(), &t, &mut d, |_, s, rv| CollOp::Allreduce {
                send: s,
                recv: rv.unwrap(),
                op: kind.op(),
            });
            assert!(
                d.iter().all(|x| x.recv.as_ref() == Some(&want)),
                "{kind:?} n={n}"
            );
            run_ok(rng.next(), &t, &mut d, |r, s, rv| CollOp::Reduce {
                root: n - 1,
                send: s,
                recv: if r == n - 1 { rv } else { None },
                op: kind.op(),
            });
            assert_eq!(d[n as usize - 1].recv.as_ref(), Some(&want));
        }
    }
}

/// Reduce and Allreduce with every kind of op, in place or not; checks the serial result,
/// and that all ranks agree bitwise.
#[test]
fn reduce_allreduce() {
    let mut rng = Rng::new(3);
    for t in tunings() {
        for n in 1..=9u32 {
            for kind in KINDS {
                for count in [0, 1, 3, 10] {
                    let len = count * kind.elem();
                    let inputs: Vec<Vec<u8>> = (0..n).map(|_| kind.data(&mut rng, len)).collect();
                    let want = serial(&*kind.op(), &inputs);
                    for in_place in [false, true] {
                        // Allreduce
                        let mut d: Vec<Data> = inputs
                            .iter()
                            .map(|x| {
                                if in_place {
                                    Data {
                                        send: None,
                                        recv: Some(x.clone()),
                                    }
                                } else {
                                    Data {
                                        send: Some(x.clone()),
                                        recv: Some(vec![FILL; len]),
                                    }
                                }
                            })
                            .collect();
                        let seed = rng.next();
                        run_ok(seed, &t, &mut d, |_, s, rv| CollOp::Allreduce {
                            send: s,
                            recv: rv.unwrap(),
                            op: kind.op(),
                        });
                        let first = d[0].recv.clone().unwrap();
                        assert!(
                            kind.same(&first, &want),
                            "allreduce {kind:?} n={n} count={count} in_place={in_place}"
                        );
                        for x in &d {
                            assert_eq!(
                                x.recv.as_ref().unwrap(),
                                &first,
                                "allreduce ranks differ {kind:?} n={n}"
                            );
                        }
                        // Same result whatever the order of arrival.
                        let mut d2: Vec<Data> = inputs
                            .iter()
                            .map(|x| Data {
                                send: Some(x.clone()),
                                recv: Some(vec![0; len]),
                            })
                            .collect();
                        run_ok(seed ^ 0x55, &t, &mut d2, |_, s, rv| CollOp::Allreduce {
                            send: s,
                            recv: rv.unwrap(),
                            op: kind.op(),
                        });
                        assert_eq!(d2[0].recv.as_ref().unwrap(), &first);
                        // Reduce
                        for root in roots(n) {
                            let mut d: Vec<Data> = inputs
                                .iter()
                                .enumerate()
                                .map(|(r, x)| {
                                    if r as u32 != root {
                                        Data {
                                            send: Some(x.clone()),
                                            recv: None,
                                        }
                                    } else if in_place {
                                        Data {
                                            send: None,
                                            recv: Some(x.clone()),
                                        }
                                    } else {
                                        Data {
                                            send: Some(x.clone()),
                                            recv: Some(vec![FILL; len]),
                                        }
                                    }
                                })
                                .collect();
                            run_ok(rng.next(), &t, &mut d, |_, s, rv| CollOp::Reduce {
                                root,
                                send: s,
                                recv: rv,
                                op: kind.op(),
                            });
                            let got = d[root as usize].recv.as_ref().unwrap();
                            assert!(kind.same(got, &want), "reduce {kind:?} n={n} root={root} count={count} in_place={in_place}");
                            for (r, x) in d.iter().enumerate() {
                                assert_eq!(
                                    x.send.as_ref(),
                                    if r as u32 == root && in_place {
                                        None
                                    } else {
                                        Some(&inputs[r])
                                    }
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Disjoint blocks with gaps, in reverse rank order: (counts, displs, buffer length).
fn layout(rng: &mut Rng, n: u32, max: usize) -> (Vec<usize>, Vec<usize>, usize) {
    let counts: Vec<usize> = (0..n).map(|_| rng.below(max + 1)).collect();
    let mut displs = vec![0; n as usize];
    let mut off = 0;
    for r in (0..n as usize).rev() {
        off += rng.below(3);
        displs[r] = off;
        off += counts[r];
    }
    (counts, displs, off + 1)
}

#[test]
fn gather_scatter() {
    let mut rng = Rng::new(4);
    for t in tunings() {
        for n in 1..=9u32 {
            let nu = n as usize;
            for root in roots(n) {
                let ru = root as usize;
                for b in [0, 1, 5, 33] {
                    let blocks: Vec<Vec<u8>> =
                        (0..n).map(|_| Kind::U32.data(&mut rng, b)).collect();
                    let cat = blocks.concat();
                    for in_place in [false, true] {
                        // Gather
                        let mut d: Vec<Data> = (0..nu)
                            .map(|r| {
                                if r != ru {
                                    Data {
                                        send: Some(blocks[r].clone()),
                                        recv: None,
                                    }
                                } else if in_place {
                                    let mut v = vec![FILL; nu * b];
                                    v[r * b..(r + 1) * b].copy_from_slice(&blocks[r]);
                                    Data {
                                        send: None,
                                        recv: Some(v),
                                    }
                                } else {
                                    Data {
                                        send: Some(blocks[r].clone()),
                                        recv: Some(vec![FILL; nu * b]),
                                    }
                                }
                            })
                            .collect();
                        run_ok(rng.next(), &t, &mut d, |_, s, rv| CollOp::Gather {
                            root,
                            send: s,
                            recv: rv,
                            block: b,
                        });
                        assert_eq!(
                            d[ru].recv.as_ref().unwrap(),
                            &cat,
                            "gather n={n} root={root} b={b} in_place={in_place}"
                        );
                        // Scatter
                        let mut d: Vec<Data> = (0..nu)
                            .map(|r| Data {
                                send: (r == ru).then(|| cat.clone()),
                                recv: (r != ru || !in_place).then(|| vec![FILL; b]),
                            })
                            .collect();
                        run_ok(rng.next(), &t, &mut d, |_, s, rv| CollOp::Scatter {
                            root,
                            send: s,
                            recv: rv,
                            block: b,
                        });
                        for r in 0..nu {
                            if r != ru || !in_place {
                                assert_eq!(
                                    d[r].recv.as_ref().unwrap(),
                                    &blocks[r],
                                    "scatter n={n} root={root} b={b} rank {r}"
                                );
                            }
                        }
                        assert_eq!(d[ru].send.as_ref().unwrap(), &cat);
                        // Gatherv / Scatterv
                        let (counts, displs, cap) = layout(&mut rng, n, 9);
                        let vblocks: Vec<Vec<u8>> = counts
                            .iter()
                            .map(|&c| Kind::U32.data(&mut rng, c))
                            .collect();
                        let mut want = vec![FILL; cap];
                        for r in 0..nu {
                            want[displs[r]..displs[r] + counts[r]].copy_from_slice(&vblocks[r]);
                        }
                        let mut d: Vec<Data> = (0..nu)
                            .map(|r| {
                                if r != ru {
                                    Data {
                                        send: Some(vblocks[r].clone()),
                                        recv: None,
                                    }
                                } else if in_place {
                                    let mut v = vec![FILL; cap];
                                    v[displs[r]..displs[r] + counts[r]]
                                        .copy_from_slice(&vblocks[r]);
                                    Data {
                                        send: None,
                                        recv: Some(v),
                                    }
                                } else {
                                    Data {
                                        send: Some(vblocks[r].clone()),
                                        recv: Some(vec![FILL; cap]),
                                    }
                                }
                            })
                            .collect();
                        run_ok(rng.next(), &t, &mut d, |_, s, rv| CollOp::Gatherv {
                            root,
                            send: s,
                            recv: rv,
                            counts: counts.clone(),
                            displs: displs.clone(),
                        });
                        assert_eq!(
                            d[ru].recv.as_ref().unwrap(),
                            &want,
                            "gatherv n={n} root={root}"
                        );
                        let mut d: Vec<Data> = (0..nu)
                            .map(|r| Data {
                                send: (r == ru).then(|| want.clone()),
                                recv: (r != ru || !in_place).then(|| vec![FILL; counts[r]]),
                            })
                            .collect();
                        run_ok(rng.next(), &t, &mut d, |_, s, rv| CollOp::Scatterv {
                            root,
                            send: s,
                            counts: counts.clone(),
                            displs: displs.clone(),
                            recv: rv,
                        });
                        for r in 0..nu {
                            if r != ru || !in_place {
                                assert_eq!(
                                    d[r].recv.as_ref().unwrap(),
                                    &vblocks[r],
                                    "scatterv n={n} root={root} rank {r}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn allgather_alltoall() {
    let mut rng = Rng::new(5);
    for t in tunings() {
        for n in 1..=9u32 {
            let nu = n as usize;
            for b in [0, 1, 5, 33] {
                for in_place in [false, true] {
                    // Allgather
                    let blocks: Vec<Vec<u8>> =
                        (0..n).map(|_| Kind::U32.data(&mut rng, b)).collect();
                    let cat = blocks.concat();
                    let mut d: Vec<Data> = (0..nu)
                        .map(|r| {
                            let mut v = vec![FILL; nu * b];
                            if in_place {
                                v[r * b..(r + 1) * b].copy_from_slice(&blocks[r]);
                            }
                            Data {
                                send: (!in_place).then(|| blocks[r].clone()),
                                recv: Some(v),
                            }
                        })
                        .collect();
                    run_ok(rng.next(), &t, &mut d, |_, s, rv| CollOp::Allgather {
                        send: s,
                        recv: rv.unwrap(),
                        block: b,
                    });
                    for r in 0..nu {
                        assert_eq!(
                            d[r].recv.as_ref().unwrap(),
                            &cat,
                            "allgather n={n} b={b} in_place={in_place} rank {r}"
                        );
                    }
                    // Allgatherv
                    let (counts, displs, cap) = layout(&mut rng, n, 9);
                    let vblocks: Vec<Vec<u8>> = counts
                        .iter()
                        .map(|&c| Kind::U32.data(&mut rng, c))
                        .collect();
                    let mut want = vec![FILL; cap];
                    for r in 0..nu {
                        want[displs[r]..displs[r] + counts[r]].copy_from_slice(&vblocks[r]);
                    }
                    let mut d: Vec<Data> = (0..nu)
                        .map(|r| {
                            let mut v = vec![FILL; cap];
                            if in_place {
                                v[displs[r]..displs[r] + counts[r]].copy_from_slice(&vblocks[r]);
                            }
                            Data {
                                send: (!in_place).then(|| vblocks[r].clone()),
                                recv: Some(v),
                            }
                        })
                        .collect();
                    run_ok(rng.next(), &t, &mut d, |_, s, rv| CollOp::Allgatherv {
                        send: s,
                        recv: rv.unwrap(),
                        counts: counts.clone(),
                        displs: displs.clone(),
                    });
                    for r in 0..nu {
                        assert_eq!(
                            d[r].recv.as_ref().unwrap(),
                            &want,
                            "allgatherv n={n} rank {r}"
                        );
                    }
                    // Alltoall: block j of rank i's send = msg(i, j).
                    let msgs: Vec<Vec<Vec<u8>>> = (0..n)
                        .map(|_| (0..n).map(|_| Kind::U32.data(&mut rng, b)).collect())
                        .collect();
                    let mut d: Vec<Data> = (0..nu)
                        .map(|i| {
                            let s = msgs[i].concat();
                            if in_place {
                                Data {
                                    send: None,
                                    recv: Some(s),
                                }
                            } else {
                                Data {
                                    send: Some(s),
                                    recv: Some(vec![FILL; nu * b]),
                                }
                            }
                        })
                        .collect();
                    run_ok(rng.next(), &t, &mut d, |_, s, rv| CollOp::Alltoall {
                        send: s,
                        recv: rv.unwrap(),
                        block: b,
                    });
                    for (i, x) in d.iter().enumerate() {
                        let want: Vec<u8> = (0..nu).flat_map(|j| msgs[j][i].clone()).collect();
                        assert_eq!(
                            x.recv.as_ref().unwrap(),
                            &want,
                            "alltoall n={n} b={b} in_place={in_place} rank {i}"
                        );
                    }
                    // Alltoallv: count(i -> j); symmetric when in place.
                    let mut cnt = vec![vec![0usize; nu]; nu];
                    for i in 0..nu {
                        for j in 0..nu {
                            cnt[i][j] = if in_place && j < i {
                                cnt[j][i]
                            } else {
                                rng.below(b + 3)
                            };
                        }
                    }
                    let vmsgs: Vec<Vec<Vec<u8>>> = (0..nu)
                        .map(|i| {
                            (0..nu)
                                .map(|j| Kind::U32.data(&mut rng, cnt[i][j]))
                                .collect()
                        })
                        .collect();
                    let mut lay = Vec::new();
                    let mut d: Vec<Data> = Vec::new();
                    for i in 0..nu {
                        // send layout: blocks in order with a gap; recv layout: reversed.
                        let sc: Vec<usize> = (0..nu).map(|j| cnt[i][j]).collect();
                        let mut sd = vec![0; nu];
                        let mut off = 0;
                        for j in 0..nu {
                            sd[j] = off;
                            off += sc[j] + 1;
                        }
                        let mut sbuf = vec![FILL; off];
                        for j in 0..nu {
                            sbuf[sd[j]..sd[j] + sc[j]].copy_from_slice(&vmsgs[i][j]);
                        }
                        let rc: Vec<usize> = (0..nu).map(|j| cnt[j][i]).collect();
                        let mut rd = vec![0; nu];
                        let mut off = 0;
                        for j in (0..nu).rev() {
                            rd[j] = off;
                            off += rc[j] + 2;
                        }
                        let rbuf = if in_place {
                            let mut v = vec![FILL; off];
                            for j in 0..nu {
                                v[rd[j]..rd[j] + rc[j]].copy_from_slice(&vmsgs[i][j]);
                            }
                            v
                        } else {
                            vec![FILL; off]
                        };
                        d.push(Data {
                            send: (!in_place).then_some(sbuf),
                            recv: Some(rbuf),
                        });
                        lay.push((sc, sd, rc, rd));
                    }
                    run_ok(rng.next(), &t, &mut d, |r, s, rv| {
                        let (sc, sd, rc, rd) = lay[r as usize].clone();
                        CollOp::Alltoallv {
                            send: s,
                            scounts: sc.into(),
                            sdispls: sd.into(),
                            recv: rv.unwrap(),
                            rcounts: rc.into(),
                            rdispls: rd.into(),
                        }
                    });
                    for i in 0..nu {
                        let (_, _, rc, rd) = &lay[i];
                        let got = d[i].recv.as_ref().unwrap();
                        for j in 0..nu {
                            assert_eq!(
                                &got[rd[j]..rd[j] + rc[j]],
                                &vmsgs[j][i][..],
                                "alltoallv n={n} in_place={in_place} {j}->{i}"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn reduce_scatter_and_scans() {
    let mut rng = Rng::new(6);
    for t in tunings() {
        for n in 1..=9u32 {
            let nu = n as usize;
            for kind in KINDS {
                let e = kind.elem();
                for max in [0, 1, 4] {
                    let counts: Vec<usize> = (0..n).map(|_| rng.below(max + 1) * e).collect();
                    let total: usize = counts.iter().sum();
                    let inputs: Vec<Vec<u8>> = (0..n).map(|_| kind.data(&mut rng, total)).collect();
                    let want = serial(&*kind.op(), &inputs);
                    for in_place in [false, true] {
                        let mut d: Vec<Data> = (0..nu)
                            .map(|r| {
                                if in_place {
                                    Data {
                                        send: None,
                                        recv: Some(inputs[r].clone()),
                                    }
                                } else {
                                    Data {
                                        send: Some(inputs[r].clone()),
                                        recv: Some(vec![FILL; counts[r]]),
                                    }
                                }
                            })
                            .collect();
                        run_ok(rng.next(), &t, &mut d, |_, s, rv| CollOp::ReduceScatter {
                            send: s,
                            recv: rv.unwrap(),
                            counts: counts.clone(),
                            op: kind.op(),
                        });
                        let mut off = 0;
                        for r in 0..nu {
                            let got = &d[r].recv.as_ref().unwrap()[..counts[r]];
                            assert!(
                                kind.same(got, &want[off..off + counts[r]]),
                                "reduce_scatter {kind:?} n={n} in_place={in_place} rank {r}"
                            );
                            off += counts[r];
                        }
                    }
                }
                for count in [0, 1, 3] {
                    let len = count * e;
                    let inputs: Vec<Vec<u8>> = (0..n).map(|_| kind.data(&mut rng, len)).collect();
                    for exclusive in [false, true] {
                        for in_place in [false, true] {
                            let mut d: Vec<Data> = (0..nu)
                                .map(|r| {
                                    if in_place {
                                        Data {
                                            send: None,
                                            recv: Some(inputs[r].clone()),
                                        }
                                    } else {
                                        Data {
                                            send: Some(inputs[r].clone()),
                                            recv: Some(vec![FILL; len]),
                                        }
                                    }
                                })
                                .collect();
                            run_ok(rng.next(), &t, &mut d, |_, s, rv| {
                                let (send, recv, op) = (s, rv.unwrap(), kind.op());
                                if exclusive {
                                    CollOp::Exscan { send, recv, op }
                                } else {
                                    CollOp::Scan { send, recv, op }
                                }
                            });
                            for r in 0..nu {
                                let got = d[r].recv.as_ref().unwrap();
                                if exclusive && r == 0 {
                                    let before = if in_place {
                                        inputs[0].clone()
                                    } else {
                                        vec![FILL; len]
                                    };
                                    assert_eq!(got, &before, "exscan rank 0 untouched");
                                    continue;
                                }
                                let upto = if exclusive { r } else { r + 1 };
                                let want = serial(&*kind.op(), &inputs[..upto]);
                                assert!(kind.same(got, &want), "scan {kind:?} n={n} exclusive={exclusive} in_place={in_place} rank {r}");
                            }
                        }
                    }
                }
            }
        }
    }
}

fn plan_err(rank: u32, n: u32, op: CollOp) -> CollError {
    match plan(rank, n, op, &Tuning::default(), true) {
        Ok(_) => panic!("planned"),
        Err(e) => e,
    }
}

#[test]
fn argument_errors() {
    let mut a = vec![0u8; 12];
    let mut b = vec![0u8; 16];
    // SAFETY: the vectors outlive the plans, which are never run.
    let (ra, rb) = unsafe { (RawBuf::from_slice(&mut a), RawBuf::from_slice(&mut b)) };
    let sum = || -> Rc<dyn Reducer> { Rc::new(SumU32) };
    let mat = || -> Rc<dyn Reducer> { Rc::new(MatMul) };
    assert!(matches!(
        plan_err(0, 2, CollOp::Bcast { root: 2, buf: ra }),
        CollError::InvalidRoot { .. }
    ));
    assert!(matches!(
        plan_err(
            0,
            2,
            CollOp::Allreduce {
                send: Some(ra),
                recv: rb,
                op: sum()
            }
        ),
        CollError::SizeMismatch { .. }
    ));
    assert!(matches!(
        plan_err(
            0,
            2,
            CollOp::Allreduce {
                send: None,
                recv: ra,
                op: mat()
            }
        ),
        CollError::NotMultiple { .. }
    ));
    assert!(matches!(
        plan_err(
            0,
            2,
            CollOp::Reduce {
                root: 0,
                send: Some(ra),
                recv: None,
                op: sum()
            }
        ),
        CollError::MissingBuffer(_)
    ));
    assert!(matches!(
        plan_err(
            1,
            2,
            CollOp::Reduce {
                root: 0,
                send: None,
                recv: None,
                op: sum()
            }
        ),
        CollError::MissingBuffer(_)
    ));
    assert!(matches!(
        plan_err(
            0,
            2,
            CollOp::Gatherv {
                root: 0,
                send: None,
                recv: Some(rb),
                counts: vec![4],
                displs: vec![0]
            }
        ),
        CollError::BadCounts(_)
    ));
    assert!(matches!(
        plan_err(
            0,
            2,
            CollOp::Gatherv {
                root: 0,
                send: None,
                recv: Some(rb),
                counts: vec![4, 4],
                displs: vec![0, 14]
            }
        ),
        CollError::BadCounts(_)
    ));
    // SAFETY: as above.
    let inner = unsafe { RawBuf::new(b.as_mut_ptr().add(4), 4) };
    assert!(matches!(
        plan_err(
            0,
            1,
            CollOp::Allgather {
                send: Some(inner),
                recv: rb,
                block: 4
            }
        ),
        CollError::Aliased
    ));
}

#[test]
fn inconsistent_counts_are_errors() {
    // Rank 1 expects fewer bytes than the root sends: a length mismatch, not a truncation
    // that goes unnoticed.
    let mut d = vec![
        Data {
            send: None,
            recv: Some(vec![1; 8]),
        },
        Data {
            send: None,
            recv: Some(vec![0; 4]),
        },
    ];
    let e = sim(1, &Tuning::default(), &mut d, |_, _, rv| CollOp::Bcast {
        root: 0,
        buf: rv.unwrap(),
    })
    .unwrap_err();
    assert!(e.contains("8 bytes"), "{e}");
}

/// Plan `mk(rank)` on every rank (`agree`: with the agreement first) and simulate.
fn sim_outcomes(
    seed: u64,
    agree: bool,
    bufs: &mut [Vec<u8>],
    mk: impl Fn(u32, RawBuf) -> CollOp,
) -> Result<Vec<Option<String>>, String> {
    let n = bufs.len() as u32;
    let planned = bufs
        .iter_mut()
        .enumerate()
        .map(|(r, b)| {
            // SAFETY: the vectors outlive the simulation and are not touched during it.
            let raw = unsafe { RawBuf::from_slice(b) };
            plan(r as u32, n, mk(r as u32, raw), &Tuning::default(), agree)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    simulate(seed, planned)
}

#[test]
fn disagreeing_ranks_all_stop_at_the_agreement_whatever_algorithms_they_chose() {
    // Sizes on either side of the 64 KiB thresholds, and roots that differ.
    let sum = || -> Rc<dyn Reducer> { Rc::new(SumU32) };
    type Mk = Box<dyn Fn(u32, RawBuf, bool) -> CollOp>;
    let cases: Vec<(&str, Mk)> = vec![
        (
            "bcast sizes",
            Box::new(|_, b, _| CollOp::Bcast { root: 0, buf: b }),
        ),
        (
            "bcast roots",
            Box::new(|_, b, odd| CollOp::Bcast {
                root: odd as u32,
                buf: b,
            }),
        ),
        (
            "allreduce",
            Box::new(move |_, b, _| CollOp::Allreduce {
                send: None,
                recv: b,
                op: sum(),
            }),
        ),
        (
            "reduce",
            Box::new(move |r, b, _| CollOp::Reduce {
                root: 0,
                send: (r != 0).then_some(b),
                recv: (r == 0).then_some(b),
                op: sum(),
            }),
        ),
        (
            "scan",
            Box::new(move |_, b, _| CollOp::Scan {
                send: None,
                recv: b,
                op: sum(),
            }),
        ),
    ];
    let mut without = 0;
    for (name, mk) in &cases {
        for n in 2..=6u32 {
            for odd in [0, n - 1] {
                for seed in 0..4 {
                    let len = |r: u32| {
                        if r == odd && *name != "bcast roots" {
                            60_000
                        } else {
                            70_000
                        }
                    };
                    let fresh = || (0..n).map(|r| vec![1u8; len(r)]).collect::<Vec<_>>();
                    let mut b = fresh();
                    let o = sim_outcomes(seed, true, &mut b, |r, raw| mk(r, raw, r == odd))
                        .unwrap_or_else(|e| panic!("{name} n={n} odd={odd} seed={seed}: {e}"));
                    for (r, x) in o.iter().enumerate() {
                        assert!(
                            x.as_deref().is_some_and(|e| e.contains("disagree")),
                            "{name} n={n} odd={odd} rank {r}: {x:?}"
                        );
                    }
                    // The same without the agreement: the simulation must see it go wrong
                    // somewhere (a deadlock or a wrong-sized message), or the test shows
                    // nothing.
                    let mut b = fresh();
                    if sim_outcomes(seed, false, &mut b, |r, raw| mk(r, raw, r == odd)).is_err() {
                        without += 1;
                    }
                }
            }
        }
    }
    assert!(without > 0, "no case goes wrong without the agreement");
}
