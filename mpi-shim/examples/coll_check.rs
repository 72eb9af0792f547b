//! Communicator and collective checks run by the integration tests under `zrun -n N`.
//!
//! `coll_check <scenario>`; exits non-zero with a message when a check fails. Every expected
//! value is computed from rank numbers alone.

use zerorank::operation::{SystemOperation, UserOperation};
use zerorank::traits::*;
use zerorank::{CommComparison, Communicator, Error, GroupComparison};

fn fail(msg: String) -> ! {
    eprintln!("coll_check FAILED: {msg}");
    std::process::exit(2);
}

macro_rules! check {
    ($cond:expr, $($arg:tt)*) => { if !$cond { fail(format!($($arg)*)) } };
}

/// Unwrap with the call site in the message.
macro_rules! ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => fail(format!("{} (line {}): {e}", stringify!($e), line!())),
        }
    };
}

fn main() {
    let scenario = std::env::args()
        .nth(1)
        .unwrap_or_else(|| fail("usage: coll_check <scenario>".into()));
    let universe = zerorank::initialize().unwrap_or_else(|e| fail(format!("init: {e}")));
    let world = universe.world();
    match scenario.as_str() {
        "comm" => comm(&universe, &world),
        "coll" => {
            collectives(&world, "world");
            // The same on a communicator whose ranks are the world's in reverse order, and
            // on the odd/even halves.
            let n = world.size();
            let rev = ok!(world.group().incl(&(0..n).rev().collect::<Vec<_>>()));
            let rev = ok!(world.create(&rev)).unwrap_or_else(|| fail("no reversed comm".into()));
            collectives(&rev, "reversed");
            let half = ok!(world.split(Some(world.rank() % 2), 0)).expect("colour");
            collectives(&half, "half");
        }
        "float" => float(&world),
        "nonblocking" => nonblocking(&world),
        "errors" => errors(&world),
        // On one node, exactly the ranks that can tell get an error; across nodes, see
        // `disagree`.
        "disagree" => disagree(&world, false),
        "disagree-across" => disagree(&world, true),
        other => fail(format!("unknown scenario {other}")),
    }
    let rank = world.rank();
    universe
        .finalize()
        .unwrap_or_else(|e| fail(format!("finalize: {e}")));
    println!("rank {rank} ok");
}

/// dup, split, split_shared, create, compare, groups, self, and point-to-point on
/// sub-communicators.
fn comm(universe: &zerorank::Universe, w: &Communicator) {
    let (r, n) = (w.rank(), w.size());
    check!(
        w.compare(&universe.world()) == CommComparison::Ident,
        "world is world"
    );
    check!(
        w.compare(&w.clone()) == CommComparison::Ident,
        "a clone is the same"
    );

    // dup: same ranks, other context, messages never cross.
    let d = ok!(w.dup());
    check!(d.rank() == r && d.size() == n, "dup ranks");
    check!(d.context() != w.context(), "dup has its own context");
    check!(
        w.compare(&d) == CommComparison::Congruent,
        "dup is congruent"
    );
    let (next, prev) = ((r + 1) % n, (r + n - 1) % n);
    let (on_world, on_dup) = (r as u64, 1000 + r as u64);
    zerorank::request::scope(|s| {
        let _a = ok!(w
            .process_at_rank(next)
            .immediate_send_with_tag(s, &on_world, 5));
        let _b = ok!(d
            .process_at_rank(next)
            .immediate_send_with_tag(s, &on_dup, 5));
        let (x, st) = ok!(d.any_process().receive_with_tag::<u64>(5));
        check!(
            x == 1000 + prev as u64 && st.source_rank() == prev,
            "dup got {x} from {st:?}"
        );
        let (x, _) = ok!(w.process_at_rank(prev).receive_with_tag::<u64>(5));
        check!(x == prev as u64, "world got {x}");
    });
    let dd = ok!(d.dup());
    check!(
        dd.context() != d.context() && dd.context() != w.context(),
        "contexts"
    );

    // split by parity, ordered by descending world rank.
    let c = r % 2;
    let m = (n - c + 1) / 2;
    let half = ok!(w.split(Some(c), -r)).unwrap_or_else(|| fail("no half".into()));
    check!(half.size() == m, "half size {} != {m}", half.size());
    check!(
        half.rank() == m - 1 - r / 2,
        "half rank {} of world rank {r}",
        half.rank()
    );
    check!(half.world_rank(half.rank()) == Some(r as u32), "world_rank");
    check!(
        half.rank_of_world(r as u32) == Some(half.rank()),
        "rank_of_world"
    );
    if (r ^ 1) < n {
        check!(
            half.rank_of_world((r ^ 1) as u32).is_none(),
            "the other parity is not a member"
        );
    }
    let expect_cmp = if n == 1 {
        CommComparison::Congruent
    } else {
        CommComparison::Unequal
    };
    check!(w.compare(&half) == expect_cmp, "compare with half");

    // Wildcard receives on the half only match its members, while world traffic with the
    // same tag is in flight; statuses give ranks of the half.
    let (on_half, on_world) = (r as u64, 5000 + r as u64);
    zerorank::request::scope(|s| {
        let _a = ok!(half
            .process_at_rank(0)
            .immediate_send_with_tag(s, &on_half, 7));
        let _b = ok!(w
            .process_at_rank(0)
            .immediate_send_with_tag(s, &on_world, 7));
        if half.rank() == 0 {
            let mut seen = vec![false; m as usize];
            for _ in 0..m {
                let (x, st) = ok!(half.any_process().receive_with_tag::<u64>(7));
                let src = st.source_rank();
                check!(
                    (0..m).contains(&src) && half.world_rank(src) == Some(x as u32),
                    "half got {x} from {st:?}"
                );
                seen[src as usize] = true;
            }
            check!(seen.iter().all(|&b| b), "every member once");
            let extra = ok!(half.any_process().immediate_probe());
            check!(extra.is_none(), "half has no more messages: {extra:?}");
        }
        if r == 0 {
            for _ in 0..n {
                let (x, st) = ok!(w.any_process().receive_with_tag::<u64>(7));
                check!(
                    x == 5000 + st.source_rank() as u64,
                    "world got {x} from {st:?}"
                );
            }
        }
    });
    // A collective on the half: the sum of its members' world ranks.
    let mut sum = 0i64;
    ok!(half.all_reduce_into(&(r as i64), &mut sum, SystemOperation::sum()));
    let expect: i64 = (0..n).filter(|x| x % 2 == c).map(|x| x as i64).sum();
    check!(sum == expect, "half sum {sum} != {expect}");

    // split with an undefined colour.
    let s = ok!(w.split(if r == 0 { None } else { Some(1) }, 0));
    match s {
        None => check!(r == 0, "only rank 0 is left out"),
        Some(s) => {
            check!(
                r != 0 && s.size() == n - 1 && s.rank() == r - 1,
                "split out"
            )
        }
    }

    // split_shared: zrun runs every rank on one node.
    let node = ok!(w.split_shared(r));
    check!(
        node.size() == n && node.rank() == r,
        "shared {}/{}",
        node.rank(),
        node.size()
    );
    check!(
        w.compare(&node) == CommComparison::Congruent,
        "shared is congruent"
    );

    // Groups.
    let g = w.group();
    check!(g.size() == n && g.rank() == Some(r), "world group {:?}", g);
    let evens = ok!(g.range_incl(&[[0, n - 1, 2]]));
    check!(evens.size() == (n + 1) / 2, "evens size");
    let tr = ok!(g.translate_ranks(&(0..n).collect::<Vec<_>>(), &evens));
    for (i, t) in tr.iter().enumerate() {
        let want = (i % 2 == 0).then_some(i as i32 / 2);
        check!(*t == want, "translate {i} -> {t:?}");
    }
    let odds = g.difference(&evens);
    check!(odds.size() == n / 2, "odds");
    check!(
        evens.union(&odds).compare(&g)
            == if n > 2 {
                GroupComparison::Similar
            } else {
                GroupComparison::Ident
            },
        "union"
    );
    check!(evens.intersection(&odds).is_empty(), "disjoint");

    // create: the evens (odd ranks get None), then the reversed world, then disjoint
    // groups (each parity passes its own).
    let e = ok!(w.create(&evens));
    match e {
        Some(e) => check!(
            r % 2 == 0 && e.rank() == r / 2 && e.size() == (n + 1) / 2,
            "evens comm"
        ),
        None => check!(r % 2 == 1, "an even rank got no comm"),
    }
    let rev = ok!(g.incl(&(0..n).rev().collect::<Vec<_>>()));
    let rc = ok!(w.create(&rev)).unwrap_or_else(|| fail("reversed".into()));
    check!(rc.rank() == n - 1 - r, "reversed rank");
    let want = if n == 1 {
        CommComparison::Congruent
    } else {
        CommComparison::Similar
    };
    check!(
        w.compare(&rc) == want,
        "reversed compares {:?}",
        w.compare(&rc)
    );
    let mine = if r % 2 == 0 { &evens } else { &odds };
    let pc = ok!(w.create(mine)).unwrap_or_else(|| fail("parity create".into()));
    check!(
        pc.rank() == r / 2 && pc.compare(&half) == CommComparison::Similar || m == 1,
        "parity create"
    );
    // Point-to-point on the reversed communicator: ranks are its own.
    let (rn, rp) = ((rc.rank() + 1) % n, (rc.rank() + n - 1) % n);
    let mut got = 0u32;
    let st = ok!(rc.sendrecv_into(&(rc.rank() as u32), rn, 3, &mut got, rp, 3));
    check!(
        got == rp as u32 && st.source_rank() == rp,
        "reversed sendrecv {got} {st:?}"
    );

    // self.
    let me = universe.self_comm();
    check!(me.size() == 1 && me.rank() == 0, "self");
    check!(
        me.compare(&w.self_comm()) == CommComparison::Ident,
        "one self"
    );
    let want = if n == 1 {
        CommComparison::Congruent
    } else {
        CommComparison::Unequal
    };
    check!(me.compare(w) == want, "self vs world");
    ok!(me.barrier());
    let mut x = 0u32;
    ok!(me.all_reduce_into(&(r as u32 + 1), &mut x, SystemOperation::sum()));
    check!(x == r as u32 + 1, "self allreduce");
    ok!(me.process_at_rank(0).send(&9u8));
    let (v, st) = ok!(me.any_process().receive::<u8>());
    check!(v == 9 && st.source_rank() == 0, "self p2p");

    // Many communicators: still distinct and working.
    let mut comms = vec![w.clone()];
    for i in 0..20 {
        let c = if i % 2 == 0 {
            ok!(comms[i].dup())
        } else {
            ok!(comms[i].split(Some(0), -comms[i].rank())).expect("colour")
        };
        comms.push(c);
    }
    let ctxs: std::collections::HashSet<u32> = comms.iter().map(|c| c.context()).collect();
    check!(ctxs.len() == comms.len(), "distinct contexts");
    for c in &comms {
        let mut s = 0u32;
        ok!(c.all_reduce_into(&1u32, &mut s, SystemOperation::sum()));
        check!(s == n as u32, "allreduce on a derived comm");
    }
}

/// A 2x2 matrix over wrapping u64, for a non-commutative op.
type Mat = [u64; 4];

fn mat_of(rank: i32) -> Mat {
    let r = rank as u64;
    [r + 1, 2 * r + 1, r + 3, 1]
}

fn mat_mul(a: &Mat, b: &Mat) -> Mat {
    let m = |x: u64, y: u64| x.wrapping_mul(y);
    [
        m(a[0], b[0]).wrapping_add(m(a[1], b[2])),
        m(a[0], b[1]).wrapping_add(m(a[1], b[3])),
        m(a[2], b[0]).wrapping_add(m(a[3], b[2])),
        m(a[2], b[1]).wrapping_add(m(a[3], b[3])),
    ]
}

fn mat_prod(ranks: std::ops::Range<i32>) -> Mat {
    ranks.fold([1, 0, 0, 1], |acc, r| mat_mul(&acc, &mat_of(r)))
}

fn matmul_op() -> UserOperation<Mat> {
    UserOperation::non_commutative(|a: &[Mat], b: &mut [Mat]| {
        for (x, y) in a.iter().zip(b.iter_mut()) {
            *y = mat_mul(x, y);
        }
    })
}

fn pattern(n: usize, seed: u64) -> Vec<u64> {
    (0..n as u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(seed))
        .collect()
}

/// Every collective with known answers on `c`.
fn collectives(c: &Communicator, label: &str) {
    let (r, n) = (c.rank(), c.size());
    let nu = n as usize;
    ok!(c.barrier());

    // Broadcast, small and large, from every root.
    for root in 0..n {
        for len in [1usize, 100, 1 << 17] {
            let mut buf = if r == root {
                pattern(len, root as u64)
            } else {
                vec![0; len]
            };
            ok!(c.process_at_rank(root).broadcast_into(&mut buf[..]));
            check!(
                buf == pattern(len, root as u64),
                "{label}: bcast of {len} from {root}"
            );
        }
    }

    // Allreduce with predefined ops.
    let mut s = [0i64; 3];
    let mine = [r as i64, 2 * r as i64, (r * r) as i64];
    ok!(c.all_reduce_into(&mine[..], &mut s[..], SystemOperation::sum()));
    let n64 = n as i64;
    check!(
        s == [
            n64 * (n64 - 1) / 2,
            n64 * (n64 - 1),
            (n64 - 1) * n64 * (2 * n64 - 1) / 6
        ],
        "{label}: allreduce sum {s:?}"
    );
    let mut x = 0i32;
    ok!(c.all_reduce_into(&r, &mut x, SystemOperation::max()));
    check!(x == n - 1, "{label}: max");
    ok!(c.all_reduce_into(&r, &mut x, SystemOperation::min()));
    check!(x == 0, "{label}: min");
    let mut bits = 0u64;
    ok!(c.all_reduce_into(&(1u64 << r), &mut bits, SystemOperation::bitwise_xor()));
    check!(bits == (1u64 << n) - 1, "{label}: bxor");
    let mut p = 0u64;
    ok!(c.all_reduce_into(&(r as u64 + 1), &mut p, SystemOperation::product()));
    check!(p == (1..=n as u64).product::<u64>(), "{label}: prod");
    let mut land = 0u8;
    ok!(c.all_reduce_into(&1u8, &mut land, SystemOperation::logical_and()));
    check!(land == 1, "{label}: land");
    // Large (ring algorithm) sum.
    let len = 100_000usize;
    let mine: Vec<u32> = (0..len as u32).map(|i| r as u32 + i).collect();
    let mut sum = vec![0u32; len];
    ok!(c.all_reduce_into(&mine[..], &mut sum[..], SystemOperation::sum()));
    let base = (n * (n - 1) / 2) as u32;
    check!(
        sum.iter()
            .enumerate()
            .all(|(i, &v)| v == base + n as u32 * i as u32),
        "{label}: large allreduce"
    );
    // In place.
    let mut buf = [r as u64, 1];
    ok!(c.all_reduce_in_place(&mut buf[..], SystemOperation::sum()));
    check!(
        buf == [(n * (n - 1) / 2) as u64, n as u64],
        "{label}: in place"
    );
    // Non-commutative user op, small and large: products in rank order.
    let want = mat_prod(0..n);
    let mut m = [0u64; 4];
    ok!(c.all_reduce_into(&mat_of(r), &mut m, &matmul_op()));
    check!(m == want, "{label}: matmul allreduce {m:?} != {want:?}");
    let big: Vec<Mat> = vec![mat_of(r); 5000];
    let mut out = vec![[0u64; 4]; 5000];
    ok!(c.all_reduce_into(&big[..], &mut out[..], matmul_op()));
    check!(
        out.iter().all(|x| *x == want),
        "{label}: large matmul allreduce"
    );

    // Reduce to every root.
    for root in 0..n {
        let mine: Vec<u64> = (0..10).map(|k| (r as u64 + 1) * k).collect();
        let p = c.process_at_rank(root);
        if r == root {
            let mut res = vec![0u64; 10];
            ok!(p.reduce_into_root(&mine[..], &mut res[..], SystemOperation::sum()));
            let t = (n * (n + 1) / 2) as u64;
            check!(
                res.iter().enumerate().all(|(k, &v)| v == t * k as u64),
                "{label}: reduce to {root}: {res:?}"
            );
            let mut mm = [0u64; 4];
            ok!(p.reduce_into_root(&mat_of(r), &mut mm, matmul_op()));
            check!(mm == want, "{label}: matmul reduce to {root}");
        } else {
            ok!(p.reduce_into(&mine[..], SystemOperation::sum()));
            ok!(p.reduce_into(&mat_of(r), matmul_op()));
        }
    }

    // Allgather, fixed and varying counts.
    let mut all = vec![0u32; 2 * nu];
    ok!(c.all_gather_into(&[r as u32 * 10, r as u32 * 10 + 1][..], &mut all[..]));
    check!(
        (0..nu).all(|i| all[2 * i] == i as u32 * 10 && all[2 * i + 1] == i as u32 * 10 + 1),
        "{label}: allgather {all:?}"
    );
    let counts: Vec<usize> = (0..nu).map(|i| i + 1).collect();
    let displs: Vec<usize> = (0..nu).map(|i| i * (i + 1) / 2).collect();
    let total = nu * (nu + 1) / 2;
    let mine = vec![r as u16; r as usize + 1];
    let mut allv = vec![u16::MAX; total];
    ok!(c.all_gather_varcount_into(&mine[..], &mut allv[..], &counts, &displs));
    check!(
        (0..nu).all(|i| allv[displs[i]..displs[i] + i + 1]
            .iter()
            .all(|&v| v == i as u16)),
        "{label}: allgatherv {allv:?}"
    );

    // Gather, gatherv, scatter, scatterv at every root.
    for root in 0..n {
        let p = c.process_at_rank(root);
        let mine = [r as u64, root as u64];
        if r == root {
            let mut g = vec![0u64; 2 * nu];
            ok!(p.gather_into_root(&mine[..], &mut g[..]));
            check!(
                (0..nu).all(|i| g[2 * i] == i as u64 && g[2 * i + 1] == root as u64),
                "{label}: gather to {root}: {g:?}"
            );
            let mut gv = vec![u16::MAX; total];
            ok!(p.gather_varcount_into_root(
                &vec![r as u16; r as usize + 1][..],
                &mut gv[..],
                &counts,
                &displs
            ));
            check!(gv == allv, "{label}: gatherv to {root}");
            let send: Vec<u32> = (0..3 * nu as u32).map(|i| i * 7 + root as u32).collect();
            let mut got = [0u32; 3];
            ok!(p.scatter_into_root(&send[..], &mut got[..]));
            check!(
                got == [
                    send[3 * r as usize],
                    send[3 * r as usize + 1],
                    send[3 * r as usize + 2]
                ],
                "{label}: scatter root"
            );
            let sendv: Vec<u16> = (0..nu).flat_map(|i| vec![i as u16 + 100; i + 1]).collect();
            let mut gotv = vec![0u16; r as usize + 1];
            ok!(p.scatter_varcount_into_root(&sendv[..], &counts, &displs, &mut gotv[..]));
            check!(
                gotv.iter().all(|&v| v == r as u16 + 100),
                "{label}: scatterv root"
            );
        } else {
            ok!(p.gather_into(&mine[..]));
            ok!(p.gather_varcount_into(&vec![r as u16; r as usize + 1][..]));
            let mut got = [0u32; 3];
            ok!(p.scatter_into(&mut got[..]));
            let w = |i: usize| (3 * r as u32 + i as u32) * 7 + root as u32;
            check!(
                got == [w(0), w(1), w(2)],
                "{label}: scatter from {root}: {got:?}"
            );
            let mut gotv = vec![0u16; r as usize + 1];
            ok!(p.scatter_varcount_into(&mut gotv[..]));
            check!(
                gotv.iter().all(|&v| v == r as u16 + 100),
                "{label}: scatterv from {root}: {gotv:?}"
            );
        }
    }

    // Alltoall and alltoallv.
    let send: Vec<u32> = (0..nu)
        .flat_map(|j| [r as u32 * 100 + j as u32; 2])
        .collect();
    let mut recv = vec![0u32; 2 * nu];
    ok!(c.all_to_all_into(&send[..], &mut recv[..]));
    check!(
        (0..nu).all(|i| recv[2 * i..2 * i + 2] == [i as u32 * 100 + r as u32; 2]),
        "{label}: alltoall {recv:?}"
    );
    let cnt = |from: usize, to: usize| (from + to) % 3 + 1;
    let ru = r as usize;
    let scounts: Vec<usize> = (0..nu).map(|j| cnt(ru, j)).collect();
    let sdispls: Vec<usize> = (0..nu).map(|j| scounts[..j].iter().sum()).collect();
    let send: Vec<u64> = (0..nu)
        .flat_map(|j| vec![(ru * 1000 + j) as u64; cnt(ru, j)])
        .collect();
    let rcounts: Vec<usize> = (0..nu).map(|i| cnt(i, ru)).collect();
    // Receive blocks in reverse rank order, with a gap of one element before each.
    let mut rdispls = vec![0usize; nu];
    let mut at = 0;
    for i in (0..nu).rev() {
        at += 1;
        rdispls[i] = at;
        at += rcounts[i];
    }
    let mut recv = vec![u64::MAX; at];
    ok!(c.all_to_all_varcount_into(
        &send[..],
        &scounts,
        &sdispls,
        &mut recv[..],
        &rcounts,
        &rdispls
    ));
    for i in 0..nu {
        check!(
            recv[rdispls[i]..rdispls[i] + rcounts[i]]
                .iter()
                .all(|&v| v == (i * 1000 + ru) as u64),
            "{label}: alltoallv block {i}: {recv:?}"
        );
        check!(recv[rdispls[i] - 1] == u64::MAX, "{label}: alltoallv gap");
    }

    // Scan and exscan.
    let mut sc = 0u64;
    ok!(c.scan_into(&(r as u64 + 1), &mut sc, SystemOperation::sum()));
    let r64 = r as u64;
    check!(sc == (r64 + 1) * (r64 + 2) / 2, "{label}: scan {sc}");
    let mut ex = 77u64;
    ok!(c.exscan_into(&(r as u64 + 1), &mut ex, SystemOperation::sum()));
    let want_ex = if r == 0 { 77 } else { r64 * (r64 + 1) / 2 };
    check!(ex == want_ex, "{label}: exscan {ex}");
    let mut ms = [0u64; 4];
    ok!(c.scan_into(&mat_of(r), &mut ms, matmul_op()));
    check!(ms == mat_prod(0..r + 1), "{label}: matmul scan");
    let mut me = [5u64; 4];
    ok!(c.exscan_into(&mat_of(r), &mut me, matmul_op()));
    if r > 0 {
        check!(me == mat_prod(0..r), "{label}: matmul exscan");
    }

    // Reduce-scatter: element t of block j is r * (j + 1) + t on rank r.
    let k = 3usize;
    let send: Vec<u64> = (0..nu)
        .flat_map(|j| (0..k).map(move |t| r64 * (j as u64 + 1) + t as u64))
        .collect();
    let mut blk = vec![0u64; k];
    ok!(c.reduce_scatter_block_into(&send[..], &mut blk[..], SystemOperation::sum()));
    let tri = (n * (n - 1) / 2) as u64;
    check!(
        (0..k).all(|t| blk[t] == (r64 + 1) * tri + n as u64 * t as u64),
        "{label}: reduce_scatter_block {blk:?}"
    );
    // Varying counts: rank j gets j + 1 elements; element e of the vector is r + e.
    let total_rs: usize = (1..=nu).sum();
    let send: Vec<u64> = (0..total_rs as u64).map(|e| r64 + e).collect();
    let mut piece = vec![0u64; ru + 1];
    ok!(c.reduce_scatter_into(&send[..], &mut piece[..], &counts, SystemOperation::sum()));
    let start = ru * (ru + 1) / 2;
    check!(
        piece
            .iter()
            .enumerate()
            .all(|(i, &v)| v == tri + n as u64 * (start + i) as u64),
        "{label}: reduce_scatter {piece:?}"
    );
    let mut rsm = [[0u64; 4]; 1];
    let sendm = vec![mat_of(r); nu];
    ok!(c.reduce_scatter_block_into(&sendm[..], &mut rsm[..], matmul_op()));
    check!(rsm[0] == want, "{label}: matmul reduce_scatter");
    ok!(c.barrier());
}

/// A value in [-0.5, 0.5) times a power of ten, from a rank and an index.
fn noise(rank: i32, i: usize) -> f64 {
    let mut h = ((rank as u64) << 32) ^ i as u64;
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 32;
    let unit = (h >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
    unit * 10f64.powi((i % 24) as i32 - 12)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Float sums (whose result depends on the order of combination) are bitwise identical on
/// every rank, and from one call to the next; rank 0 prints a hash of every result so that
/// the test can compare runs.
fn float(c: &Communicator) {
    let r = c.rank();
    let n = c.size() as usize;
    for len in [1usize, 7, 1000, 50_000, 300_000] {
        let mine: Vec<f64> = (0..len).map(|i| noise(r, i)).collect();
        let mut a = vec![0f64; len];
        ok!(c.all_reduce_into(&mine[..], &mut a[..], SystemOperation::sum()));
        let mut b = vec![0f64; len];
        ok!(c.all_reduce_into(&mine[..], &mut b[..], SystemOperation::sum()));
        let (ha, hb) = (
            fnv(zerorank::datatype::bytes_of(&a)),
            fnv(zerorank::datatype::bytes_of(&b)),
        );
        check!(ha == hb, "allreduce of {len} doubles differs between calls");
        let mut hashes = vec![0u64; n];
        ok!(c.all_gather_into(&ha, &mut hashes[..]));
        check!(
            hashes.iter().all(|&h| h == ha),
            "allreduce of {len} doubles differs between ranks: {hashes:x?}"
        );
        // The result is close to the exact sum (a sanity check of the data path).
        for i in (0..len).step_by(len / 7 + 1) {
            let exact: f64 = (0..n as i32).map(|q| noise(q, i)).sum();
            let scale: f64 = (0..n as i32).map(|q| noise(q, i).abs()).sum();
            let close = (a[i] - exact).abs() <= 1e-14 * scale;
            check!(close, "element {i}: {} vs {exact}", a[i]);
        }
        // Reduce at the last rank and the root of a broadcast agree with the allreduce.
        let root = c.process_at_rank(c.size() - 1);
        if r == c.size() - 1 {
            let mut red = vec![0f64; len];
            ok!(root.reduce_into_root(&mine[..], &mut red[..], SystemOperation::sum()));
            let hr = fnv(zerorank::datatype::bytes_of(&red));
            println!("FLOAT reduce {len} {hr:016x}");
        } else {
            ok!(root.reduce_into(&mine[..], SystemOperation::sum()));
        }
        let mut sc = vec![0f32; len];
        let mine32: Vec<f32> = mine.iter().map(|&x| x as f32).collect();
        ok!(c.scan_into(&mine32[..], &mut sc[..], SystemOperation::sum()));
        let mut hs = vec![0u64; n];
        ok!(c.all_gather_into(&fnv(zerorank::datatype::bytes_of(&sc)), &mut hs[..]));
        if r == 0 {
            println!("FLOAT allreduce {len} {ha:016x}");
            println!(
                "FLOAT scan {len} {:016x}",
                fnv(zerorank::datatype::bytes_of(&hs))
            );
        }
    }
}

/// Non-blocking barrier, broadcast and allreduce, several at once, tested and waited.
fn nonblocking(c: &Communicator) {
    let (r, n) = (c.rank(), c.size());
    let len = 1 << 16;
    let mut big = if r == 0 {
        pattern(len, 3)
    } else {
        vec![0u64; len]
    };
    let mut small = if r == n - 1 { [7u32, 8, 9] } else { [0; 3] };
    let mine: Vec<f64> = (0..1000).map(|i| noise(r, i)).collect();
    let mut sum = vec![0f64; 1000];
    let mut isum = 0i64;
    let ri = r as i64;
    zerorank::request::scope(|s| {
        let b = ok!(c.immediate_barrier(s));
        let bc = ok!(c
            .process_at_rank(0)
            .immediate_broadcast_into(s, &mut big[..]));
        let sm = ok!(c
            .process_at_rank(n - 1)
            .immediate_broadcast_into(s, &mut small[..]));
        let ar =
            ok!(c.immediate_all_reduce_into(s, &mine[..], &mut sum[..], SystemOperation::sum()));
        let ai = ok!(c.immediate_all_reduce_into(s, &ri, &mut isum, SystemOperation::sum()));
        // Wait in another order than started; test the barrier until done.
        ok!(ai.wait());
        ok!(sm.wait());
        let mut b = b;
        loop {
            match b.test() {
                Ok(res) => {
                    ok!(res);
                    break;
                }
                Err(again) => b = again,
            }
        }
        ok!(ar.wait());
        // The broadcast is left to the scope, which completes it at its end.
        let _left_to_the_scope = bc;
    });
    check!(big == pattern(len, 3), "ibcast");
    check!(small == [7, 8, 9], "small ibcast");
    check!(isum == (n as i64) * (n as i64 - 1) / 2, "iallreduce {isum}");
    // The non-blocking result is bitwise identical on every rank, and close to the
    // blocking one (which may take another algorithm, e.g. through shared memory, and so
    // round differently).
    let h = fnv(zerorank::datatype::bytes_of(&sum));
    let mut hashes = vec![0u64; n as usize];
    ok!(c.all_gather_into(&h, &mut hashes[..]));
    check!(
        hashes.iter().all(|&x| x == h),
        "iallreduce differs between ranks: {hashes:x?}"
    );
    let mut blocking = vec![0f64; 1000];
    ok!(c.all_reduce_into(&mine[..], &mut blocking[..], SystemOperation::sum()));
    for (i, (&a, &b)) in sum.iter().zip(&blocking).enumerate() {
        let scale: f64 = (0..n).map(|q| noise(q, i).abs()).sum();
        let close = (a - b).abs() <= 1e-14 * scale;
        check!(close, "iallreduce {a} and allreduce {b} at {i}");
    }
    // Collectives started later never mix with earlier outstanding ones.
    let mut a = [0u64; 4];
    let mut b = [0u64; 4];
    zerorank::request::scope(|s| {
        let ra = ok!(c.immediate_all_reduce_into(
            s,
            &[1u64, 2, 3, 4][..],
            &mut a[..],
            SystemOperation::sum()
        ));
        ok!(c.barrier());
        let rb = ok!(c.immediate_all_reduce_into(
            s,
            &[10u64; 4][..],
            &mut b[..],
            SystemOperation::max()
        ));
        ok!(rb.wait());
        ok!(ra.wait());
    });
    let n64 = n as u64;
    check!(a == [n64, 2 * n64, 3 * n64, 4 * n64], "outstanding {a:?}");
    check!(b == [10; 4], "later {b:?}");
}

/// Bad arguments give errors, not hangs.
fn errors(c: &Communicator) {
    let (r, n) = (c.rank(), c.size());
    let mut two = [0u32; 2];
    check!(
        matches!(
            c.all_reduce_into(&[1u32][..], &mut two[..], SystemOperation::sum()),
            Err(Error::BufferLength { .. })
        ),
        "length mismatch"
    );
    check!(
        matches!(
            c.all_gather_into(&1u32, &mut two[..n.min(1) as usize]),
            Err(Error::BufferLength { .. })
        ) || n == 1,
        "allgather length"
    );
    let mut f = 0f64;
    check!(
        matches!(
            c.all_reduce_into(&1.0f64, &mut f, SystemOperation::bitwise_and()),
            Err(Error::Reduction(_))
        ),
        "band on f64"
    );
    // A rank whose own arguments fail its checks still takes part in the call (with
    // nothing to send or receive: `Communicator::refuse_collective`), so every rank makes
    // the same calls here, whichever of them fail.
    let root = c.process_at_rank(0);
    if r == 0 {
        check!(
            matches!(
                root.reduce_into(&1u32, SystemOperation::sum()),
                Err(Error::IsRoot { .. })
            ),
            "reduce_into at root"
        );
    } else {
        let mut x = 0u32;
        check!(
            matches!(
                root.reduce_into_root(&1u32, &mut x, SystemOperation::sum()),
                Err(Error::NotRoot { .. })
            ),
            "reduce_into_root off root"
        );
    }
    if r == 0 {
        check!(
            matches!(root.gather_into(&1u32), Err(Error::IsRoot { .. })),
            "gather_into at root"
        );
    } else {
        // The root refused the gather: the others' blocks are read and dropped, or they
        // hear of the disagreement.
        let res = root.gather_into(&1u32);
        check!(
            res.is_ok() || disagreement(&res),
            "gather to a root that refused: {res:?}"
        );
    }
    check!(
        matches!(c.checked_process_at_rank(n), Err(Error::InvalidRank { .. })),
        "bad rank"
    );
    let g = c.group();
    check!(
        matches!(g.incl(&[n]), Err(Error::GroupRank { .. })),
        "group rank"
    );
    check!(
        matches!(g.incl(&[0, 0]), Err(Error::DuplicateRank(0))),
        "duplicate"
    );
    check!(
        matches!(g.range_incl(&[[0, 0, 0]]), Err(Error::InvalidRange { .. })),
        "stride 0"
    );
    // A negative colour fails on its rank only; the others still get their communicator.
    match c.split(Some(if r == 0 { -3 } else { 0 }), 0) {
        Err(Error::InvalidColor(-3)) => check!(r == 0, "colour error"),
        Ok(Some(s)) => check!(r != 0 && s.size() == n - 1, "split size"),
        other => fail(format!("split with a bad colour: {other:?}")),
    }
    // Everyone is still in step.
    let mut s = 0u32;
    ok!(c.all_reduce_into(&1u32, &mut s, SystemOperation::sum()));
    check!(s == n as u32, "after errors");
}

/// A sum of `send` to rank 0: its root variant (`as_root`, into `recv`) or the others'.
fn reduce_to_0(
    c: &Communicator,
    as_root: bool,
    send: &[u32],
    recv: &mut [u32],
) -> zerorank::Result<()> {
    reduce_to(c, 0, as_root, send, recv)
}

/// A sum of `send` to `root`: its root variant (`as_root`, into `recv`) or the others'.
fn reduce_to(
    c: &Communicator,
    root: usize,
    as_root: bool,
    send: &[u32],
    recv: &mut [u32],
) -> zerorank::Result<()> {
    let root = c.process_at_rank(root as i32);
    if as_root {
        root.reduce_into_root(send, recv, SystemOperation::sum())
    } else {
        root.reduce_into(send, SystemOperation::sum())
    }
}

/// Is `r` a collective error naming a disagreement between the ranks?
fn disagreement(r: &zerorank::Result<()>) -> bool {
    use zerorank::collective::CollError;
    matches!(
        r,
        Err(Error::Collective(
            CollError::Truncated { .. }
                | CollError::Disagree { .. }
                | CollError::BadCounts(_)
                | CollError::Abandoned { .. }
                | CollError::Unread
        ))
    )
}

/// Ranks passing inconsistent counts (an erroneous program): nobody hangs, and the
/// communicator still works afterwards.
///
/// On one node (the collectives go through the node's slots): exactly the ranks that can
/// tell get an error, and the others get their data. Sizes cover each on-node path (one
/// publication, a stream of chunks, a read from the peer's memory) and the mixes of them
/// that a disagreement produces.
///
/// `across` (ranks on several nodes: point-to-point schedules, which start with the ranks'
/// agreement on the call's root and sizes): every rank gets an error when the ranks
/// disagree on what the agreement sees, whatever algorithms their sizes would choose;
/// what it cannot see (counts only the root knows, per-pair counts) is caught as on one
/// node, by exactly the ranks that can tell.
fn disagree(c: &Communicator, across: bool) {
    let (r, n) = (c.rank() as usize, c.size() as usize);
    if n == 1 {
        return;
    }
    let last = n - 1;
    let saw = std::cell::Cell::new(false);
    // A result that must be a disagreement.
    let must_fail = |res: &zerorank::Result<()>, what: String| {
        check!(disagreement(res), "{what}: {res:?}");
        saw.set(true);
    };
    // A result that must be Ok; true (the data is there to check).
    let may_pass = |res: zerorank::Result<()>, what: String| -> bool {
        check!(res.is_ok(), "{what}: {res:?}");
        true
    };
    let in_step = |what: &str| {
        let mut s = [0u32; 2];
        ok!(c.all_reduce_into(
            &[1u32, u32::from(saw.take())][..],
            &mut s[..],
            SystemOperation::sum()
        ));
        check!(s[0] == n as u32, "still in step after {what}");
        check!(s[1] > 0, "nobody saw the disagreement in {what}");
    };
    let val = |i: usize| (i as u32).wrapping_mul(2654435761);
    // Bcast: the last rank expects `theirs` elements where the root sends `len`.
    for (len, theirs) in [
        (10, 11),
        (2000, 2001),
        (1000, 1100),
        (1100, 1000),
        (100_000, 100_001),
        (100_001, 100_000),
    ] {
        let mine = if r == last { theirs } else { len };
        let mut buf: Vec<u32> = if r == 0 {
            (0..len).map(val).collect()
        } else {
            vec![0; mine]
        };
        let res = c.process_at_rank(0).broadcast_into(&mut buf[..]);
        if r == last || across {
            must_fail(&res, format!("bcast {len} vs {theirs}"));
        } else if may_pass(res, format!("bcast {len} vs {theirs}")) {
            check!(
                buf.iter().enumerate().all(|(i, &v)| v == val(i)),
                "bcast {len} data"
            );
        }
        in_step("bcast");
    }
    // Gatherv: the root expects one element more from the last rank than it sends.
    for k in [3usize, 20_000] {
        let send: Vec<u32> = (0..k).map(|i| val(i + r)).collect();
        let root = c.process_at_rank(0);
        if r == 0 {
            let counts: Vec<usize> = (0..n).map(|j| k + usize::from(j == last)).collect();
            let displs: Vec<usize> = (0..n).map(|j| j * (k + 1)).collect();
            let mut recv = vec![0u32; n * (k + 1)];
            let res = root.gather_varcount_into_root(&send[..], &mut recv[..], &counts, &displs);
            must_fail(&res, format!("gatherv {k}"));
            for j in 0..last {
                check!(
                    (0..k).all(|i| recv[j * (k + 1) + i] == val(i + j)),
                    "gatherv {k} block {j}"
                );
            }
        } else {
            may_pass(root.gather_varcount_into(&send[..]), format!("gatherv {k}"));
        }
        in_step("gatherv");
    }
    // Scatterv: the last rank expects one element more than the root sends it.
    for k in [3usize, 20_000] {
        let root = c.process_at_rank(0);
        let mut recv = vec![0u32; if r == last { k + 1 } else { k }];
        let res = if r == 0 {
            let send: Vec<u32> = (0..n * k).map(val).collect();
            let counts = vec![k; n];
            let displs: Vec<usize> = (0..n).map(|j| j * k).collect();
            root.scatter_varcount_into_root(&send[..], &counts, &displs, &mut recv[..])
        } else {
            root.scatter_varcount_into(&mut recv[..])
        };
        if r == last {
            must_fail(&res, format!("scatterv {k}"));
        } else if may_pass(res, format!("scatterv {k}")) {
            check!(
                (0..k).all(|i| recv[i] == val(r * k + i)),
                "scatterv {k} data"
            );
        }
        in_step("scatterv");
    }
    // Alltoallv: the last rank expects one element more from rank 0 than it sends.
    for k in [3usize, 20_000] {
        let send: Vec<u32> = (0..n * k).map(|i| val(i + 7 * r)).collect();
        let sc = vec![k; n];
        let sd: Vec<usize> = (0..n).map(|j| j * k).collect();
        let rc: Vec<usize> = (0..n)
            .map(|j| k + usize::from(r == last && j == 0))
            .collect();
        let rd: Vec<usize> = (0..n).map(|j| j * (k + 1)).collect();
        let mut recv = vec![0u32; n * (k + 1)];
        let res = c.all_to_all_varcount_into(&send[..], &sc, &sd, &mut recv[..], &rc, &rd);
        if r == last {
            must_fail(&res, format!("alltoallv {k}"));
        } else if may_pass(res, format!("alltoallv {k}")) {
            for j in 0..n {
                check!(
                    (0..k).all(|i| recv[j * (k + 1) + i] == val(r * k + i + 7 * j)),
                    "alltoallv {k} from {j}"
                );
            }
        }
        in_step("alltoallv");
    }
    // Allgather: the last rank passes larger blocks than the others (each path, and the
    // mixes: one publication against a stream, a stream against a read from memory).
    for (k, theirs) in [(1usize, 2usize), (2048, 4096), (8192, 16384)] {
        let b = if r == last { theirs } else { k };
        let send: Vec<u32> = vec![r as u32; b];
        let mut recv = vec![0u32; n * b];
        let res = c.all_gather_into(&send[..], &mut recv[..]);
        must_fail(&res, format!("allgather {k} vs {theirs}"));
        in_step("allgather");
    }
    // Allreduce of one chunk: the last rank passes one element more.
    let len = if r == last { 101 } else { 100 };
    let send = vec![1u32; len];
    let mut recv = vec![0u32; len];
    let res = c.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
    must_fail(&res, "allreduce 100 vs 101".into());
    in_step("allreduce");
    // Reductions of more than one 32 KiB chunk, and one chunk against several: the odd
    // rank is the last one, then rank 0 (which is also the root of the reduce).
    let sizes = [
        (100_000usize, 100_001usize),
        (1000, 50_000),
        (50_000, 1000),
        (3000, 100_000),
        (0, 20_000),
    ];
    for odd in [last, 0] {
        // Across nodes, several of these are on either side of an algorithm's size
        // threshold: the ranks would choose different schedules.
        for (len, theirs) in sizes {
            let mine = if r == odd { theirs } else { len };
            let what = format!("rank {odd} passing {theirs} where the others pass {len}");
            let send: Vec<u32> = (0..mine).map(val).collect();
            let mut recv = vec![0u32; mine];
            // Reduce to rank 0: only the root can tell.
            let res = reduce_to_0(c, r == 0, &send, &mut recv);
            if r == 0 || across {
                must_fail(&res, format!("reduce, {what}"));
            } else {
                may_pass(res, format!("reduce, {what}"));
            }
            in_step("reduce");
            // Allreduce: every rank reads every other, so every rank can tell.
            let res = c.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
            must_fail(&res, format!("allreduce, {what}"));
            in_step("allreduce");
            // Scan and Exscan: the ranks above the odd one can tell (and the odd one, from
            // the ranks below it); the ranks below it get their prefix.
            let res = c.scan_into(&send[..], &mut recv[..], SystemOperation::sum());
            if across || (r >= odd && !(r == 0 && odd == 0)) {
                must_fail(&res, format!("scan, {what}"));
            } else {
                may_pass(res, format!("scan, {what}"));
            }
            in_step("scan");
            let res = c.exscan_into(&send[..], &mut recv[..], SystemOperation::sum());
            if across || r > odd || (r == odd && r > 0) {
                must_fail(&res, format!("exscan, {what}"));
            } else {
                may_pass(res, format!("exscan, {what}"));
            }
            in_step("exscan");
            // Reduce_scatter_block: blocks of `mine / n` elements.
            let block = mine / n;
            let mut out = vec![0u32; block];
            let res = c.reduce_scatter_block_into(
                &send[..block * n],
                &mut out[..],
                SystemOperation::sum(),
            );
            if (len / n) != (theirs / n) {
                must_fail(&res, format!("reduce_scatter_block, {what}"));
                in_step("reduce_scatter_block");
            } else {
                may_pass(res, format!("reduce_scatter_block, {what}"));
                saw.set(false);
                let mut s = 0u32;
                ok!(c.all_reduce_into(&1u32, &mut s, SystemOperation::sum()));
            }
        }
    }
    // Reduce_scatter: the same total, cut differently by the last rank.
    for total in [40_000usize, 200_000] {
        let mut counts: Vec<usize> = (0..n)
            .map(|j| total / n + usize::from(j == 0) * (total % n))
            .collect();
        if r == last {
            counts[0] -= 8;
            counts[last] += 8;
        }
        let send: Vec<u32> = (0..total).map(val).collect();
        let mut out = vec![0u32; counts[r]];
        let res = c.reduce_scatter_into(&send[..], &mut out[..], &counts, SystemOperation::sum());
        must_fail(&res, format!("reduce_scatter of {total} cut differently"));
        in_step("reduce_scatter");
    }
    if across {
        // Ranks that disagree on the root (the last rank names rank 1, the others rank 0):
        // every rank gets an error, the two "roots" too. (Not on one node, where the
        // slots of a rooted call are the root's: see `collective::node`.)
        for len in [10usize, 100_000] {
            let root = if r == last { 1 } else { 0 };
            let mut buf = vec![r as u32; len];
            let res = c.process_at_rank(root as i32).broadcast_into(&mut buf[..]);
            must_fail(&res, format!("bcast of {len} from disagreeing roots"));
            in_step("bcast from disagreeing roots");
            let send = vec![r as u32; len];
            let mut recv = vec![0u32; len];
            let res = reduce_to(c, root, r == root, &send, &mut recv);
            must_fail(&res, format!("reduce of {len} to disagreeing roots"));
            in_step("reduce to disagreeing roots");
        }
    }
    // One rank's own arguments fail its checks (buffers of the wrong length): it gets its
    // error, and still takes part, so the others get theirs (or their data) instead of
    // waiting for it.
    let local = |res: &zerorank::Result<()>| {
        matches!(res, Err(Error::BufferLength { .. } | Error::Layout { .. }))
    };
    let fine = |res: &zerorank::Result<()>| res.is_ok() || disagreement(res);
    for bad in [last, 0] {
        let me_bad = r == bad;
        let k = 20_000usize;
        let send: Vec<u32> = (0..k).map(val).collect();
        let mut recv = vec![0u32; if me_bad { k - 1 } else { k }];
        let mut big = vec![0u32; k * n - usize::from(me_bad)];
        let cases: [(&str, zerorank::Result<()>); 5] = [
            (
                "allreduce",
                c.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum()),
            ),
            (
                "reduce",
                // A bad non-root calls the root's variant (and gets NotRoot).
                reduce_to_0(c, r == 0 || me_bad, &send, &mut recv),
            ),
            ("allgather", c.all_gather_into(&send[..], &mut big[..])),
            (
                "gather",
                if r == 0 || me_bad {
                    c.process_at_rank(0)
                        .gather_into_root(&send[..], &mut big[..])
                } else {
                    c.process_at_rank(0).gather_into(&send[..])
                },
            ),
            (
                "scan",
                c.scan_into(&send[..], &mut recv[..], SystemOperation::sum()),
            ),
        ];
        for (what, res) in cases {
            if me_bad {
                check!(
                    local(&res) || matches!(res, Err(Error::NotRoot { .. })),
                    "{what} with rank {bad}'s bad buffer, at rank {bad}: {res:?}"
                );
            } else if across {
                // The agreement tells every rank.
                check!(
                    disagreement(&res),
                    "{what} with rank {bad}'s bad buffer: {res:?}"
                );
            } else {
                check!(fine(&res), "{what} with rank {bad}'s bad buffer: {res:?}");
            }
            let mut s = 0u32;
            ok!(c.all_reduce_into(&1u32, &mut s, SystemOperation::sum()));
            check!(
                s == n as u32,
                "still in step after {what} with a bad buffer"
            );
        }
    }
}
