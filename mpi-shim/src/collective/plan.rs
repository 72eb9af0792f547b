//! From a [`CollOp`] to a [`Schedule`]: argument checks and the algorithms.
//!
//! Every function here is pure: it depends on this rank, the rank count, the byte sizes,
//! the op's commutativity and element size, and the [`Tuning`], never on the data.

use super::agreement;
use super::schedule::{BufId, Region, Sched, Schedule};
use super::{CollError, CollOp, RawBuf, Reducer};
use std::rc::Rc;

/// Size thresholds (bytes) of the algorithm choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Bcast of at least this many bytes (and more than 2 ranks): scatter + ring allgather.
    pub bcast_large: usize,
    /// Commutative Reduce of at least this (more than 2 ranks): ring reduce-scatter + gather.
    pub reduce_large: usize,
    /// Allreduce of at least this: ring reduce-scatter + allgather (commutative) or reduce +
    /// bcast (non-commutative, more than 2 ranks); below: recursive doubling.
    pub allreduce_large: usize,
    /// Commutative Reduce_scatter of at least this (total bytes): ring reduce-scatter.
    pub reduce_scatter_large: usize,
    /// Reduce trees below this receive all children's operands in one round (one temporary
    /// per child); above, one child per round with two temporaries.
    pub reduce_batch: usize,
    /// Gather and Scatter with `size * block` below this (and more than 2 ranks): binomial.
    pub gather_binomial: usize,
    /// Allgather with `size * block` below this: recursive doubling or Bruck; else ring.
    pub allgather_small: usize,
    /// Alltoall(v) with at most this many bytes to send: all messages in one round.
    pub alltoall_batch: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            bcast_large: 64 << 10,
            reduce_large: 64 << 10,
            allreduce_large: 64 << 10,
            reduce_scatter_large: 64 << 10,
            reduce_batch: 64 << 10,
            gather_binomial: 32 << 10,
            allgather_small: 64 << 10,
            alltoall_batch: 32 << 10,
        }
    }
}

/// A schedule and the buffers and op it runs with.
pub(crate) struct Planned {
    pub sched: Schedule,
    pub send: Option<RawBuf>,
    pub recv: Option<RawBuf>,
    pub op: Option<Rc<dyn Reducer>>,
}

pub(super) type Res<T> = Result<T, CollError>;

pub(super) fn check_root(root: u32, n: u32) -> Res<()> {
    if root < n {
        Ok(())
    } else {
        Err(CollError::InvalidRoot { root, size: n })
    }
}

pub(super) fn exact(what: &'static str, b: &RawBuf, expected: usize) -> Res<()> {
    if b.len == expected {
        Ok(())
    } else {
        Err(CollError::SizeMismatch {
            what,
            expected,
            got: b.len,
        })
    }
}

pub(super) fn at_least(what: &'static str, b: &RawBuf, expected: usize) -> Res<()> {
    if b.len >= expected {
        Ok(())
    } else {
        Err(CollError::SizeMismatch {
            what,
            expected,
            got: b.len,
        })
    }
}

pub(super) fn whole(what: &'static str, len: usize, elem: usize) -> Res<()> {
    if elem > 0 && len.is_multiple_of(elem) {
        Ok(())
    } else {
        Err(CollError::NotMultiple { what, len, elem })
    }
}

pub(super) fn per_rank(what: &str, v: &[usize], n: u32) -> Res<()> {
    if v.len() == n as usize {
        Ok(())
    } else {
        Err(CollError::BadCounts(format!(
            "{what}: {} entries for {n} ranks",
            v.len()
        )))
    }
}

/// Every block `[displs[i], displs[i] + counts[i])` fits in `cap` bytes.
pub(super) fn blocks_fit(what: &str, counts: &[usize], displs: &[usize], cap: usize) -> Res<()> {
    for (i, (&c, &d)) in counts.iter().zip(displs).enumerate() {
        // An empty block touches nothing, wherever its displacement points.
        if c > 0 && d.checked_add(c).is_none_or(|end| end > cap) {
            return Err(CollError::BadCounts(format!(
                "{what}: block {i} ({c} bytes at {d}) does not fit in the {cap}-byte buffer"
            )));
        }
    }
    Ok(())
}

fn rel(r: u32, root: u32, n: u32) -> u32 {
    (r + n - root) % n
}

fn abs(v: u32, root: u32, n: u32) -> u32 {
    (v + root) % n
}

fn send_region(b: &RawBuf) -> Region {
    Region::new(BufId::Send, 0, b.len)
}

fn recv_region(len: usize) -> Region {
    Region::new(BufId::Recv, 0, len)
}

/// `len` bytes of `elem`-byte elements split into `n` chunks of whole elements, as
/// (offset, length); the first `elements % n` chunks have one element more.
pub(super) fn split(len: usize, elem: usize, n: u32) -> Vec<(usize, usize)> {
    let n = n as usize;
    let e = len / elem;
    let (q, rem) = (e / n, e % n);
    let mut off = 0;
    (0..n)
        .map(|i| {
            let l = (q + usize::from(i < rem)) * elem;
            let c = (off, l);
            off += l;
            c
        })
        .collect()
}

fn chunk(r: Region, c: (usize, usize)) -> Region {
    r.sub(c.0, c.1)
}

/// Build the schedule of `op` for rank `rank` of `size`.
///
/// With `agree`, the schedule starts with the ranks' agreement on the call
/// (`agreement::prelude`), so that ranks that disagree on the arguments all stop before the
/// algorithm's first transfer. (On an error, the caller then has to refuse: `agreement::refuse`.)
pub(crate) fn plan(rank: u32, size: u32, op: CollOp, t: &Tuning, agree: bool) -> Res<Planned> {
    assert!(rank < size, "rank {rank} outside a communicator of {size}");
    let (r, n) = (rank, size);
    let mut s = Sched::new();
    if agree && n > 1 {
        agreement::prelude(&mut s, r, n, agreement::digest(&op));
    }
    let mut send: Option<RawBuf> = None;
    let mut recv: Option<RawBuf> = None;
    let mut reducer: Option<Rc<dyn Reducer>> = None;
    let exclusive = matches!(op, CollOp::Exscan { .. });
    match op {
        CollOp::Barrier => barrier(&mut s, r, n),
        CollOp::Bcast { root, buf } => {
            check_root(root, n)?;
            recv = Some(buf);
            bcast(&mut s, r, n, root, recv_region(buf.len), t);
        }
        CollOp::Reduce {
            root,
            send: sb,
            recv: rb,
            op,
        } => {
            check_root(root, n)?;
            let e = op.elem_size();
            let own = match (sb, r == root) {
                (Some(b), _) => send_region(&b),
                (None, true) => recv_region(
                    rb.ok_or(CollError::MissingBuffer(
                        "Reduce: the root needs a receive buffer",
                    ))?
                    .len,
                ),
                (None, false) => {
                    return Err(CollError::MissingBuffer(
                        "Reduce: MPI_IN_PLACE is only allowed at the root",
                    ))
                }
            };
            whole("Reduce", own.len, e)?;
            let dest = if r == root {
                let b = rb.ok_or(CollError::MissingBuffer(
                    "Reduce: the root needs a receive buffer",
                ))?;
                exact("Reduce receive buffer", &b, own.len)?;
                recv = Some(b);
                Some(recv_region(own.len))
            } else {
                None
            };
            send = sb;
            if own.len > 0 {
                reduce(&mut s, r, n, root, own, dest, &*op, t);
            }
            reducer = Some(op);
        }
        CollOp::Allreduce {
            send: sb,
            recv: rb,
            op,
        } => {
            let e = op.elem_size();
            whole("Allreduce", rb.len, e)?;
            if let Some(b) = &sb {
                exact("Allreduce send buffer", b, rb.len)?;
            }
            let own = sb.as_ref().map_or(recv_region(rb.len), send_region);
            (send, recv) = (sb, Some(rb));
            if rb.len > 0 {
                allreduce(&mut s, r, n, own, recv_region(rb.len), &*op, t);
            }
            reducer = Some(op);
        }
        CollOp::Gather {
            root,
            send: sb,
            recv: rb,
            block,
        } => {
            check_root(root, n)?;
            let b = block;
            let own = if r == root {
                let rb = rb.ok_or(CollError::MissingBuffer(
                    "Gather: the root needs a receive buffer",
                ))?;
                at_least("Gather receive buffer", &rb, n as usize * b)?;
                recv = Some(rb);
                match &sb {
                    Some(x) => send_region(x),
                    None => Region::new(BufId::Recv, r as usize * b, b),
                }
            } else {
                send_region(sb.as_ref().ok_or(CollError::MissingBuffer(
                    "Gather: MPI_IN_PLACE is only allowed at the root",
                ))?)
            };
            if let Some(x) = &sb {
                exact("Gather send buffer", x, b)?;
            }
            send = sb;
            if b > 0 {
                if n > 2 && (n as usize).saturating_mul(b) < t.gather_binomial {
                    gather_binomial(&mut s, r, n, root, own, b);
                } else {
                    let counts = vec![b; n as usize];
                    let displs = (0..n as usize).map(|i| i * b).collect::<Vec<_>>();
                    gather_linear(&mut s, r, n, root, own, &counts, &displs);
                }
            }
        }
        CollOp::Gatherv {
            root,
            send: sb,
            recv: rb,
            counts,
            displs,
        } => {
            check_root(root, n)?;
            let own = if r == root {
                per_rank("Gatherv counts", &counts, n)?;
                per_rank("Gatherv displacements", &displs, n)?;
                let rb = rb.ok_or(CollError::MissingBuffer(
                    "Gatherv: the root needs a receive buffer",
                ))?;
                blocks_fit("Gatherv", &counts, &displs, rb.len)?;
                recv = Some(rb);
                let c = counts[r as usize];
                match &sb {
                    Some(x) => {
                        exact("Gatherv send buffer", x, c)?;
                        send_region(x)
                    }
                    None => Region::new(BufId::Recv, displs[r as usize], c),
                }
            } else {
                send_region(sb.as_ref().ok_or(CollError::MissingBuffer(
                    "Gatherv: MPI_IN_PLACE is only allowed at the root",
                ))?)
            };
            send = sb;
            gather_linear(&mut s, r, n, root, own, &counts, &displs);
        }
        CollOp::Scatter {
            root,
            send: sb,
            recv: rb,
            block,
        } => {
            check_root(root, n)?;
            let b = block;
            if r == root {
                let x = sb.ok_or(CollError::MissingBuffer(
                    "Scatter: the root needs a send buffer",
                ))?;
                at_least("Scatter send buffer", &x, n as usize * b)?;
                send = Some(x);
            } else if rb.is_none() {
                return Err(CollError::MissingBuffer(
                    "Scatter: MPI_IN_PLACE is only allowed at the root",
                ));
            }
            if let Some(x) = &rb {
                exact("Scatter receive buffer", x, b)?;
            }
            recv = rb;
            let dst = rb.map(|x| recv_region(x.len));
            if b > 0 {
                if n > 2 && (n as usize).saturating_mul(b) < t.gather_binomial {
                    scatter_binomial(&mut s, r, n, root, dst, b);
                } else {
                    let counts = vec![b; n as usize];
                    let displs = (0..n as usize).map(|i| i * b).collect::<Vec<_>>();
                    scatter_linear(&mut s, r, n, root, &counts, &displs, dst);
                }
            }
        }
        CollOp::Scatterv {
            root,
            send: sb,
            counts,
            displs,
            recv: rb,
        } => {
            check_root(root, n)?;
            if r == root {
                per_rank("Scatterv counts", &counts, n)?;
                per_rank("Scatterv displacements", &displs, n)?;
                let x = sb.ok_or(CollError::MissingBuffer(
                    "Scatterv: the root needs a send buffer",
                ))?;
                blocks_fit("Scatterv", &counts, &displs, x.len)?;
                if let Some(y) = &rb {
                    exact("Scatterv receive buffer", y, counts[r as usize])?;
                }
                send = Some(x);
            } else if rb.is_none() {
                return Err(CollError::MissingBuffer(
                    "Scatterv: MPI_IN_PLACE is only allowed at the root",
                ));
            }
            recv = rb;
            let dst = rb.map(|x| recv_region(x.len));
            scatter_linear(&mut s, r, n, root, &counts, &displs, dst);
        }
        CollOp::Allgather {
            send: sb,
            recv: rb,
            block,
        } => {
            let b = block;
            at_least("Allgather receive buffer", &rb, n as usize * b)?;
            if let Some(x) = &sb {
                exact("Allgather send buffer", x, b)?;
            }
            let own = sb
                .as_ref()
                .map_or(Region::new(BufId::Recv, r as usize * b, b), send_region);
            (send, recv) = (sb, Some(rb));
            if b > 0 {
                allgather(&mut s, r, n, own, b, t);
            }
        }
        CollOp::Allgatherv {
            send: sb,
            recv: rb,
            counts,
            displs,
        } => {
            per_rank("Allgatherv counts", &counts, n)?;
            per_rank("Allgatherv displacements", &displs, n)?;
            blocks_fit("Allgatherv", &counts, &displs, rb.len)?;
            let (c, d) = (counts[r as usize], displs[r as usize]);
            if let Some(x) = &sb {
                exact("Allgatherv send buffer", x, c)?;
            }
            let all = recv_region(rb.len);
            if let Some(x) = &sb {
                s.copy(send_region(x), all.sub(d, c));
            }
            (send, recv) = (sb, Some(rb));
            let chunks: Vec<_> = displs.iter().copied().zip(counts.iter().copied()).collect();
            ring_allgather(&mut s, r, n, all, &chunks);
        }
        CollOp::Alltoall {
            send: sb,
            recv: rb,
            block,
        } => {
            let b = block;
            let total = n as usize * b;
            at_least("Alltoall receive buffer", &rb, total)?;
            if let Some(x) = &sb {
                at_least("Alltoall send buffer", x, total)?;
            }
            (send, recv) = (sb, Some(rb));
            if b > 0 {
                let counts = vec![b; n as usize];
                let displs: Vec<usize> = (0..n as usize).map(|i| i * b).collect();
                let src = match &sb {
                    Some(x) => send_region(x),
                    None => {
                        let tm = s.tmp(total);
                        s.copy(recv_region(total), tm);
                        tm
                    }
                };
                let batch = total <= t.alltoall_batch;
                let own = r as usize;
                if sb.is_some() {
                    s.copy(
                        src.sub(displs[own], b),
                        Region::new(BufId::Recv, displs[own], b),
                    );
                }
                exchange(
                    &mut s,
                    r,
                    n,
                    (src, &counts, &displs),
                    (recv_region(rb.len), &counts, &displs),
                    batch,
                );
            }
        }
        CollOp::Alltoallv {
            send: sb,
            scounts,
            sdispls,
            recv: rb,
            rcounts,
            rdispls,
        } => {
            per_rank("Alltoallv receive counts", &rcounts, n)?;
            per_rank("Alltoallv receive displacements", &rdispls, n)?;
            blocks_fit("Alltoallv receive", &rcounts, &rdispls, rb.len)?;
            let own = r as usize;
            let all = recv_region(rb.len);
            let (src, sc, sd) = match &sb {
                Some(x) => {
                    per_rank("Alltoallv send counts", &scounts, n)?;
                    per_rank("Alltoallv send displacements", &sdispls, n)?;
                    blocks_fit("Alltoallv send", &scounts, &sdispls, x.len)?;
                    if scounts[own] != rcounts[own] {
                        return Err(CollError::Truncated {
                            peer: r,
                            expected: rcounts[own],
                            got: scounts[own],
                        });
                    }
                    let src = send_region(x);
                    s.copy(
                        src.sub(sdispls[own], scounts[own]),
                        all.sub(rdispls[own], rcounts[own]),
                    );
                    (src, &scounts, &sdispls)
                }
                None => {
                    let tm = s.tmp(rb.len);
                    s.copy(all, tm);
                    (tm, &rcounts, &rdispls)
                }
            };
            let bytes: usize = sc.iter().sum();
            let batch = bytes <= t.alltoall_batch;
            exchange(
                &mut s,
                r,
                n,
                (src, sc, sd),
                (all, &rcounts, &rdispls),
                batch,
            );
            (send, recv) = (sb, Some(rb));
        }
        CollOp::ReduceScatter {
            send: sb,
            recv: rb,
            counts,
            op,
        } => {
            per_rank("Reduce_scatter counts", &counts, n)?;
            let e = op.elem_size();
            for &c in &counts {
                whole("Reduce_scatter count", c, e)?;
            }
            let total: usize = counts.iter().sum();
            let mine = counts[r as usize];
            let own = match &sb {
                Some(x) => {
                    exact("Reduce_scatter send buffer", x, total)?;
                    at_least("Reduce_scatter receive buffer", &rb, mine)?;
                    send_region(x)
                }
                None => {
                    at_least("Reduce_scatter receive buffer (in place)", &rb, total)?;
                    recv_region(total)
                }
            };
            (send, recv) = (sb, Some(rb));
            if total > 0 {
                reduce_scatter(&mut s, r, n, own, &counts, &*op, t);
            }
            reducer = Some(op);
        }
        CollOp::Scan {
            send: sb,
            recv: rb,
            op,
        }
        | CollOp::Exscan {
            send: sb,
            recv: rb,
            op,
        } => {
            let e = op.elem_size();
            let (name, sname) = if exclusive {
                ("Exscan", "Exscan send buffer")
            } else {
                ("Scan", "Scan send buffer")
            };
            whole(name, rb.len, e)?;
            if let Some(x) = &sb {
                exact(sname, x, rb.len)?;
            }
            let own = sb.as_ref().map_or(recv_region(rb.len), send_region);
            (send, recv) = (sb, Some(rb));
            if rb.len > 0 {
                scan(&mut s, r, n, own, exclusive);
            }
            reducer = Some(op);
        }
    }
    let sched = s.finish();
    if let (Some(a), Some(b)) = (&send, &recv) {
        let (a0, a1) = (a.ptr as usize, a.ptr as usize + a.len);
        let (b0, b1) = (b.ptr as usize, b.ptr as usize + b.len);
        if a.len > 0 && b.len > 0 && a0 < b1 && b0 < a1 {
            return Err(CollError::Aliased);
        }
    }
    Ok(Planned {
        sched,
        send,
        recv,
        op: reducer,
    })
}

// ---------------------------------------------------------------------------------------
// The algorithms. Ranks are communicator ranks; `v` is a rank relative to a root.

/// Dissemination barrier: in round k, send to `r + 2^k`, receive from `r - 2^k`.
fn barrier(s: &mut Sched, r: u32, n: u32) {
    let mut k = 1;
    while k < n {
        s.send_empty((r + k) % n);
        s.recv_empty((r + n - k) % n);
        s.end_round();
        k <<= 1;
    }
}

/// The children (masks `m`, child `v + m`) and parent of `v` in the binomial tree over
/// `n` relative ranks rooted at 0, and the size of `v`'s subtree.
struct Binomial {
    /// Masks of the children, smallest first (child `v + m` has a subtree of
    /// `min(m, n - v - m)` ranks: relative ranks `v + m .. v + m + that`).
    children: Vec<u32>,
    parent: Option<u32>,
    subtree: u32,
}

fn binomial(v: u32, n: u32) -> Binomial {
    let mut children = Vec::new();
    let mut mask = 1u32;
    while mask < n {
        if v & mask != 0 {
            return Binomial {
                children,
                parent: Some(v - mask),
                subtree: mask.min(n - v),
            };
        }
        if v + mask < n {
            children.push(mask);
        }
        mask <<= 1;
    }
    Binomial {
        children,
        parent: None,
        subtree: n,
    }
}

fn bcast(s: &mut Sched, r: u32, n: u32, root: u32, buf: Region, t: &Tuning) {
    if buf.len == 0 || n == 1 {
        return;
    }
    if buf.len >= t.bcast_large && n > 2 {
        bcast_scatter_ring(s, r, n, root, buf);
    } else {
        bcast_binomial(s, r, n, root, buf);
    }
}

/// Receive from the parent, then send to every child (largest subtree first) in one round.
fn bcast_binomial(s: &mut Sched, r: u32, n: u32, root: u32, buf: Region) {
    let v = rel(r, root, n);
    let tree = binomial(v, n);
    if let Some(p) = tree.parent {
        s.recv(abs(p, root, n), buf);
        s.end_round();
    }
    for &m in tree.children.iter().rev() {
        s.send(abs(v + m, root, n), buf);
    }
    s.end_round();
}

/// Binomial scatter of `n` chunks (chunk `v` to relative rank `v`), then a ring allgather.
fn bcast_scatter_ring(s: &mut Sched, r: u32, n: u32, root: u32, buf: Region) {
    let chunks = split(buf.len, 1, n);
    let start = |v: u32| {
        if v >= n {
            buf.len
        } else {
            chunks[v as usize].0
        }
    };
    let range = |a: u32, b: u32| buf.sub(start(a), start(b) - start(a));
    let v = rel(r, root, n);
    let tree = binomial(v, n);
    if let Some(p) = tree.parent {
        s.recv(abs(p, root, n), range(v, v + tree.subtree));
        s.end_round();
    }
    for &m in tree.children.iter().rev() {
        let c = v + m;
        s.send(abs(c, root, n), range(c, c + m.min(n - c)));
    }
    s.end_round();
    // Ring in relative ranks: in step k, v sends chunk v - k to v + 1 and receives chunk
    // v - k - 1 from v - 1. The root has everything: nobody sends to it.
    let (left, right) = (abs(v + n - 1, root, n), abs(v + 1, root, n));
    for k in 0..n - 1 {
        let sc = (v + n - k) % n;
        let rc = (v + 2 * n - k - 1) % n;
        if !(v + 1).is_multiple_of(n) {
            s.send(right, chunk(buf, chunks[sc as usize]));
        }
        if v != 0 {
            s.recv(left, chunk(buf, chunks[rc as usize]));
        }
        s.end_round();
    }
}

#[allow(clippy::too_many_arguments)]
fn reduce(
    s: &mut Sched,
    r: u32,
    n: u32,
    root: u32,
    own: Region,
    dest: Option<Region>,
    op: &dyn Reducer,
    t: &Tuning,
) {
    let len = own.len;
    if op.commutative() && n > 2 && len >= t.reduce_large {
        // Ring reduce-scatter (chunk j ends on rank j), then every chunk to the root.
        let chunks = split(len, op.elem_size(), n);
        let stage = dest.filter(|_| own.buf == BufId::Send);
        let res = ring_reduce_scatter(s, r, n, own, &chunks, stage, None);
        if r == root {
            let d = dest.expect("root has a destination");
            for j in 0..n {
                if j != root {
                    s.recv(j, chunk(d, chunks[j as usize]));
                }
            }
            s.copy(res, chunk(d, chunks[root as usize]));
        } else {
            s.send(root, res);
        }
        s.end_round();
    } else if op.commutative() || root == 0 {
        reduce_tree(s, r, n, root, own, dest, t);
    } else {
        // Combination order must be rank order: reduce on a tree rooted at rank 0, then
        // hand the result to the root.
        let d0 = (r == 0).then(|| s.tmp(len));
        reduce_tree(s, r, n, 0, own, d0, t);
        if r == 0 {
            s.send(root, d0.expect("rank 0 has a temporary"));
        } else if r == root {
            s.recv(0, dest.expect("root has a destination"));
        }
        s.end_round();
    }
}

/// Binomial reduction towards `troot`. Relative rank `v` combines its operand with its
/// children's results in rank order: `own op child(v+1) op child(v+2..v+4) op ...` (each
/// child covers the relative ranks just above the ones before it), so with `troot == 0`
/// the result is `a0 op a1 op ... op a(n-1)`. `dest` (at `troot` only) gets the result.
fn reduce_tree(
    s: &mut Sched,
    r: u32,
    n: u32,
    troot: u32,
    own: Region,
    dest: Option<Region>,
    t: &Tuning,
) {
    let len = own.len;
    let v = rel(r, troot, n);
    let tree = binomial(v, n);
    let k = tree.children.len();
    let child = |i: usize| abs(v + tree.children[i], troot, n);
    // Where the last combination may land directly: the destination, unless the input is
    // there (in place).
    let fin = dest.filter(|d| !d.overlaps(&own));
    let mut acc = own;
    if k > 0 && len < t.reduce_batch {
        // All children in one round, one buffer each; then combine in rank order.
        let bufs: Vec<Region> = (0..k)
            .map(|i| match fin {
                Some(d) if i == k - 1 => d,
                _ => s.tmp(len),
            })
            .collect();
        for (i, &b) in bufs.iter().enumerate() {
            s.recv(child(i), b);
        }
        for &b in &bufs {
            s.reduce(acc, b);
            acc = b;
        }
    } else if k > 0 {
        // One child per round, alternating between two buffers so that the last one is
        // `fin` when there is one.
        let x = fin.unwrap_or_else(|| s.tmp(len));
        let y = if k > 1 { Some(s.tmp(len)) } else { None };
        for i in 0..k {
            let b = if (k - 1 - i).is_multiple_of(2) {
                x
            } else {
                y.expect("two buffers")
            };
            s.recv(child(i), b);
            s.reduce(acc, b);
            acc = b;
        }
    }
    match tree.parent {
        Some(p) => s.send(abs(p, troot, n), acc),
        None => {
            if let Some(d) = dest {
                s.copy(acc, d);
            }
        }
    }
    s.end_round();
}

/// Ring reduce-scatter: in step k, rank r sends its partial result of chunk `r - 1 - k`
/// to `r + 1` and receives chunk `r - 2 - k` from `r - 1`, combining it with its own
/// operand as `own op incoming`. After `n - 1` steps rank r holds chunk r of the result
/// (computed on r alone, in an order fixed by the ranks). `chunks` are (offset, length)
/// within `own`; `stage` (laid out as `own`, not overlapping it) may hold the partial
/// results, else two temporaries do. The result is copied to `out` if given; returns
/// where it is.
fn ring_reduce_scatter(
    s: &mut Sched,
    r: u32,
    n: u32,
    own: Region,
    chunks: &[(usize, usize)],
    stage: Option<Region>,
    out: Option<Region>,
) -> Region {
    let (left, right) = ((r + n - 1) % n, (r + 1) % n);
    let maxc = chunks.iter().map(|c| c.1).max().unwrap_or(0);
    let tmps = if stage.is_none() && n > 1 && maxc > 0 {
        Some([s.tmp(maxc), s.tmp(maxc)])
    } else {
        None
    };
    let mut cur = chunk(own, chunks[((r + n - 1) % n) as usize]);
    for k in 0..n - 1 {
        let j = ((r + 2 * n - 2 - k) % n) as usize;
        s.send(right, cur);
        let dst = match (stage, tmps) {
            (Some(g), _) => chunk(g, chunks[j]),
            (None, Some(t)) => t[(k % 2) as usize].sub(0, chunks[j].1),
            (None, None) => Region::new(BufId::Recv, 0, 0),
        };
        s.recv(left, dst);
        s.reduce(chunk(own, chunks[j]), dst);
        // Explicitly: with empty chunks the reduction is skipped, and the next step reuses
        // the temporary this one sends from.
        s.end_round();
        cur = dst;
    }
    match out {
        Some(o) => {
            s.copy(cur, o);
            o
        }
        None => cur,
    }
}

/// Ring allgather over `buf`: rank r starts with chunk r; in step k it sends chunk `r - k`
/// to `r + 1` and receives chunk `r - k - 1` from `r - 1`.
fn ring_allgather(s: &mut Sched, r: u32, n: u32, buf: Region, chunks: &[(usize, usize)]) {
    let (left, right) = ((r + n - 1) % n, (r + 1) % n);
    for k in 0..n - 1 {
        let sc = ((r + n - k) % n) as usize;
        let rc = ((r + 2 * n - k - 1) % n) as usize;
        s.send(right, chunk(buf, chunks[sc]));
        s.recv(left, chunk(buf, chunks[rc]));
        s.end_round();
    }
}

fn allreduce(
    s: &mut Sched,
    r: u32,
    n: u32,
    own: Region,
    dest: Region,
    op: &dyn Reducer,
    t: &Tuning,
) {
    let len = dest.len;
    if n == 1 {
        s.copy(own, dest);
    } else if op.commutative() && len >= t.allreduce_large {
        let chunks = split(len, op.elem_size(), n);
        let stage = (own.buf == BufId::Send).then_some(dest);
        let mine = chunk(dest, chunks[r as usize]);
        ring_reduce_scatter(s, r, n, own, &chunks, stage, Some(mine));
        ring_allgather(s, r, n, dest, &chunks);
    } else if !op.commutative() && len >= t.allreduce_large && n > 2 {
        reduce_tree(s, r, n, 0, own, (r == 0).then_some(dest), t);
        bcast(s, r, n, 0, dest, t);
    } else {
        allreduce_rd(s, r, n, own, dest);
    }
}

/// Recursive doubling over the largest power of two `p <= n`; the first `2 (n - p)` ranks
/// first fold in pairs (even into odd), and get the result from their partner at the end.
/// New rank `i < n - p` stands for old ranks `2i, 2i + 1`, the others for `i + n - p`, so
/// new rank order is old rank order and every combination is `lower op higher`.
fn allreduce_rd(s: &mut Sched, r: u32, n: u32, own: Region, dest: Region) {
    let len = dest.len;
    let pof2 = 1u32 << (31 - n.leading_zeros());
    let rem = n - pof2;
    if r < 2 * rem && r.is_multiple_of(2) {
        s.send(r + 1, own);
        s.end_round();
        s.recv(r + 1, dest);
        s.end_round();
        return;
    }
    let tmp = s.tmp(len);
    let other = |a: Region| if a == dest { tmp } else { dest };
    s.copy(own, dest);
    let mut acc = dest;
    let newrank = if r < 2 * rem {
        s.recv(r - 1, tmp);
        s.reduce(tmp, acc);
        r / 2
    } else {
        r - rem
    };
    let mut mask = 1;
    while mask < pof2 {
        let nd = newrank ^ mask;
        let peer = if nd < rem { nd * 2 + 1 } else { nd + rem };
        let x = other(acc);
        s.send(peer, acc);
        s.recv(peer, x);
        if peer < r {
            s.reduce(x, acc);
        } else {
            s.reduce(acc, x);
            acc = x;
        }
        s.end_round();
        mask <<= 1;
    }
    s.copy(acc, dest);
    if r < 2 * rem {
        s.send(r - 1, dest);
    }
    s.end_round();
}

/// Binomial gather: relative rank v collects the blocks of its subtree (relative ranks
/// `v .. v + subtree`, contiguous) and sends them to its parent in one message. The root
/// receives each child's blocks straight into place, through a temporary only for the one
/// child whose ranks wrap past `n - 1`.
fn gather_binomial(s: &mut Sched, r: u32, n: u32, root: u32, own: Region, b: usize) {
    let v = rel(r, root, n);
    let tree = binomial(v, n);
    let nb = n as usize * b;
    if let Some(p) = tree.parent {
        let parent = abs(p, root, n);
        if tree.children.is_empty() {
            s.send(parent, own);
        } else {
            let tm = s.tmp(tree.subtree as usize * b);
            s.copy(own, tm.sub(0, b));
            for &m in &tree.children {
                let cnt = m.min(n - v - m) as usize;
                s.recv(abs(v + m, root, n), tm.sub(m as usize * b, cnt * b));
            }
            s.end_round();
            s.send(parent, tm);
        }
        s.end_round();
        return;
    }
    let all = recv_region(nb);
    let mut wrap = None;
    for &m in &tree.children {
        let cnt = m.min(n - m) as usize;
        let a = ((m + root) % n) as usize;
        if a + cnt <= n as usize {
            s.recv(abs(m, root, n), all.sub(a * b, cnt * b));
        } else {
            let tm = s.tmp(cnt * b);
            s.recv(abs(m, root, n), tm);
            wrap = Some((tm, a, cnt));
        }
    }
    s.copy(own, all.sub(root as usize * b, b));
    if let Some((tm, a, cnt)) = wrap {
        let first = n as usize - a;
        s.copy(tm.sub(0, first * b), all.sub(a * b, first * b));
        s.copy(
            tm.sub(first * b, (cnt - first) * b),
            all.sub(0, (cnt - first) * b),
        );
    }
    s.end_round();
}

/// Every rank sends its block to the root, which receives them all in one round.
fn gather_linear(
    s: &mut Sched,
    r: u32,
    n: u32,
    root: u32,
    own: Region,
    counts: &[usize],
    displs: &[usize],
) {
    if r == root {
        for j in 0..n {
            if j != root {
                let ju = j as usize;
                s.recv(j, Region::new(BufId::Recv, displs[ju], counts[ju]));
            }
        }
        let ru = r as usize;
        s.copy(own, Region::new(BufId::Recv, displs[ru], counts[ru]));
    } else {
        s.send(root, own);
    }
    s.end_round();
}

/// Binomial scatter, the mirror of [`gather_binomial`]. `dst` is this rank's block (`None`:
/// the root in place).
fn scatter_binomial(s: &mut Sched, r: u32, n: u32, root: u32, dst: Option<Region>, b: usize) {
    let v = rel(r, root, n);
    let tree = binomial(v, n);
    let Some(p) = tree.parent else {
        let all = Region::new(BufId::Send, 0, n as usize * b);
        let mut msgs = Vec::with_capacity(tree.children.len());
        for &m in tree.children.iter().rev() {
            let cnt = m.min(n - m) as usize;
            let a = ((m + root) % n) as usize;
            if a + cnt <= n as usize {
                msgs.push((m, all.sub(a * b, cnt * b)));
            } else {
                let tm = s.tmp(cnt * b);
                let first = n as usize - a;
                s.copy(all.sub(a * b, first * b), tm.sub(0, first * b));
                s.copy(
                    all.sub(0, (cnt - first) * b),
                    tm.sub(first * b, (cnt - first) * b),
                );
                msgs.push((m, tm));
            }
        }
        for (m, reg) in msgs {
            s.send(abs(m, root, n), reg);
        }
        if let Some(d) = dst {
            s.copy(all.sub(root as usize * b, b), d);
        }
        s.end_round();
        return;
    };
    let d = dst.expect("a non-root has a receive buffer");
    let parent = abs(p, root, n);
    if tree.children.is_empty() {
        s.recv(parent, d);
    } else {
        let tm = s.tmp(tree.subtree as usize * b);
        s.recv(parent, tm);
        s.end_round();
        for &m in tree.children.iter().rev() {
            let cnt = m.min(n - v - m) as usize;
            s.send(abs(v + m, root, n), tm.sub(m as usize * b, cnt * b));
        }
        s.copy(tm.sub(0, b), d);
    }
    s.end_round();
}

/// The root sends every rank its block in one round.
fn scatter_linear(
    s: &mut Sched,
    r: u32,
    n: u32,
    root: u32,
    counts: &[usize],
    displs: &[usize],
    dst: Option<Region>,
) {
    if r == root {
        for j in 0..n {
            let ju = j as usize;
            let src = Region::new(BufId::Send, displs[ju], counts[ju]);
            if j != root {
                s.send(j, src);
            } else if let Some(d) = dst {
                s.copy(src, d);
            }
        }
    } else {
        s.recv(root, dst.expect("a non-root has a receive buffer"));
    }
    s.end_round();
}

fn allgather(s: &mut Sched, r: u32, n: u32, own: Region, b: usize, t: &Tuning) {
    let nb = n as usize * b;
    let all = recv_region(nb);
    let mine = all.sub(r as usize * b, b);
    if nb < t.allgather_small && !n.is_power_of_two() {
        // Bruck: tmp[i] = block of rank r + i; in step k, receive k blocks from r + k.
        let tm = s.tmp(nb);
        s.copy(own, tm.sub(0, b));
        let mut k = 1;
        while k < n {
            let cnt = k.min(n - k) as usize;
            s.send((r + n - k) % n, tm.sub(0, cnt * b));
            s.recv((r + k) % n, tm.sub(k as usize * b, cnt * b));
            s.end_round();
            k <<= 1;
        }
        let first = (n - r) as usize;
        s.copy(tm.sub(0, first * b), all.sub(r as usize * b, first * b));
        s.copy(
            tm.sub(first * b, r as usize * b),
            all.sub(0, r as usize * b),
        );
        s.end_round();
        return;
    }
    s.copy(own, mine);
    if nb < t.allgather_small {
        // Recursive doubling: partners exchange their aligned groups of `mask` blocks.
        let mut mask = 1;
        while mask < n {
            let p = r ^ mask;
            let (mb, pb) = ((r & !(mask - 1)) as usize, (p & !(mask - 1)) as usize);
            let m = mask as usize;
            s.send(p, all.sub(mb * b, m * b));
            s.recv(p, all.sub(pb * b, m * b));
            s.end_round();
            mask <<= 1;
        }
    } else {
        let chunks: Vec<_> = (0..n as usize).map(|i| (i * b, b)).collect();
        ring_allgather(s, r, n, all, &chunks);
    }
}

/// The exchange of Alltoall(v) (the own block is handled by the caller): in one round when
/// `batch`, else pairwise, one peer per round (partner `r xor k` for a power of two, else
/// send to `r + k`, receive from `r - k`).
fn exchange(
    s: &mut Sched,
    r: u32,
    n: u32,
    src: (Region, &[usize], &[usize]),
    dst: (Region, &[usize], &[usize]),
    batch: bool,
) {
    let sreg = |j: u32| src.0.sub(src.2[j as usize], src.1[j as usize]);
    let rreg = |j: u32| dst.0.sub(dst.2[j as usize], dst.1[j as usize]);
    for k in 1..n {
        let (to, from) = if n.is_power_of_two() && !batch {
            (r ^ k, r ^ k)
        } else {
            ((r + k) % n, (r + n - k) % n)
        };
        s.send(to, sreg(to));
        s.recv(from, rreg(from));
        if !batch {
            s.end_round();
        }
    }
    s.end_round();
}

fn reduce_scatter(
    s: &mut Sched,
    r: u32,
    n: u32,
    own: Region,
    counts: &[usize],
    op: &dyn Reducer,
    t: &Tuning,
) {
    let total = own.len;
    let mut off = 0;
    let chunks: Vec<(usize, usize)> = counts
        .iter()
        .map(|&c| {
            off += c;
            (off - c, c)
        })
        .collect();
    let out = recv_region(counts[r as usize]);
    if op.commutative() && total >= t.reduce_scatter_large {
        ring_reduce_scatter(s, r, n, own, &chunks, None, Some(out));
        s.end_round();
        return;
    }
    // Reduce to rank 0 (in rank order), then scatter.
    let d0 = (r == 0).then(|| s.tmp(total));
    reduce_tree(s, r, n, 0, own, d0, t);
    if let Some(d0) = d0 {
        for j in 1..n {
            s.send(j, chunk(d0, chunks[j as usize]));
        }
        s.copy(chunk(d0, chunks[0]), out);
    } else {
        s.recv(0, out);
    }
    s.end_round();
}

/// Inclusive (or exclusive) scan by recursive doubling: in step `mask`, partners `r` and
/// `r xor mask` exchange the reduction of their aligned groups of `mask` ranks; the
/// partner group below is prepended to both the partial result and this rank's result,
/// the group above appended to the partial result only.
fn scan(s: &mut Sched, r: u32, n: u32, own: Region, exclusive: bool) {
    let len = own.len;
    let res = recv_region(len);
    if !exclusive {
        s.copy(own, res);
    }
    if n == 1 {
        s.end_round();
        return;
    }
    let mut partial = s.tmp(len);
    let mut free = s.tmp(len);
    s.copy(own, partial);
    let mut have = !exclusive;
    let mut mask = 1;
    while mask < n {
        let peer = r ^ mask;
        if peer < n {
            s.send(peer, partial);
            s.recv(peer, free);
            if peer < r {
                if have {
                    s.reduce(free, res);
                } else {
                    s.copy(free, res);
                    have = true;
                }
                s.reduce(free, partial);
            } else {
                s.reduce(partial, free);
                std::mem::swap(&mut partial, &mut free);
            }
            s.end_round();
        }
        mask <<= 1;
    }
    s.end_round();
}
