//! Neighbourhood collectives (`MPI_Neighbor_*` and `MPI_Ineighbor_*`) on Cartesian,
//! graph and distributed graph communicators.
//!
//! Each runs as a sparse all-to-all of bytes over the whole communicator (the engine's
//! `Alltoallv` schedule, with nothing for the ranks that are not neighbours): the blocks
//! for one neighbour are packed one after the other, in the order that neighbour's
//! receive blocks from this rank come in (`topo::Neighbours::send_order`), and the
//! received ones are unpacked into their blocks once it completes. So several edges
//! between one pair of processes (a periodic Cartesian dimension of size 1 or 2, or a
//! graph with repeated edges) pair up as MPI defines. `MPI_PROC_NULL` neighbours (past
//! the edge of a non-periodic dimension) send and receive nothing, leaving their
//! receive blocks untouched. The all-to-all costs a message per rank of the communicator
//! and per call, not per neighbour.

use super::{check_count, collective, Staging};
use crate::abi::*;
use crate::datatype::{self, TypeInfo};
use crate::error::MpiError;
use crate::raw;
use crate::topo::Neighbours;
use std::ffi::{c_int, c_void};
use zerorank::collective::{CollOp, Refused};
use zerorank::Communicator;

/// A block of a buffer: `count` elements of `ty` at address `at`.
struct Block {
    at: usize,
    count: usize,
    ty: TypeInfo,
}

/// The neighbours of this rank of `comm` (`MPI_ERR_TOPOLOGY` without a topology).
fn neighbours(comm: c_int, c: &Communicator) -> Result<Neighbours, MpiError> {
    let t = crate::topo::topology(comm)?.ok_or_else(|| {
        MpiError::new(
            MPI_ERR_TOPOLOGY,
            "a neighbourhood collective needs a communicator with a topology",
        )
    })?;
    Ok(t.neighbours(c.rank()))
}

/// Block `i` of `count` elements of `ty` from `buf`, at element displacement `disp`.
fn block_at(buf: *const c_void, disp: isize, count: usize, ty: &TypeInfo) -> Block {
    Block {
        at: (buf as isize).wrapping_add(disp.wrapping_mul(ty.extent())) as usize,
        count,
        ty: ty.clone(),
    }
}

/// The all-to-all that moves `sends[i]` to `nb.destinations[i]` and `nb.sources[j]`'s
/// block for this rank into `recvs[j]`: each side's blocks, in peer order, staged by
/// [`Staging::typed_blocks`] at their absolute addresses.
fn exchange(
    c: &Communicator,
    st: &mut Staging,
    nb: &Neighbours,
    sends: Vec<Block>,
    recvs: Vec<Block>,
) -> Result<CollOp, MpiError> {
    let n = c.size() as usize;
    assert_eq!(
        sends.len(),
        nb.destinations.len(),
        "a send block per destination"
    );
    assert_eq!(recvs.len(), nb.sources.len(), "a receive block per source");
    let mut to: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &i in &nb.send_order {
        if let Ok(d) = usize::try_from(nb.destinations[i]) {
            to[d].push(i);
        }
    }
    let mut from: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (j, &s) in nb.sources.iter().enumerate() {
        if let Ok(s) = usize::try_from(s) {
            from[s].push(j);
        }
    }
    // Stage `blocks` in the peers' order; the engine's byte count and displacement per
    // peer.
    let mut stage = |blocks: &[Block], lists: &[Vec<usize>], read: bool| {
        let order: Vec<&Block> = lists.iter().flatten().map(|&i| &blocks[i]).collect();
        let counts: Vec<usize> = order.iter().map(|b| b.count).collect();
        let addrs: Vec<isize> = order.iter().map(|b| b.at as isize).collect();
        let types: Vec<TypeInfo> = order.iter().map(|b| b.ty.clone()).collect();
        let (buf, bytes, _) =
            st.typed_blocks(std::ptr::null_mut(), &counts, &addrs, &types, read, !read)?;
        let mut per_peer = Vec::with_capacity(n);
        let mut next = bytes.iter();
        for l in lists {
            per_peer.push(next.by_ref().take(l.len()).sum::<usize>());
        }
        let displs: Vec<usize> = per_peer
            .iter()
            .scan(0, |acc, &x| {
                let d = *acc;
                *acc += x;
                Some(d)
            })
            .collect();
        Ok::<_, MpiError>((buf, per_peer, displs))
    };
    let (sraw, scounts, sdispls) = stage(&sends, &to, true)?;
    let (rraw, rcounts, rdispls) = stage(&recvs, &from, false)?;
    Ok(CollOp::Alltoallv {
        send: Some(sraw),
        scounts: scounts.into(),
        sdispls: sdispls.into(),
        recv: rraw,
        rcounts: rcounts.into(),
        rdispls: rdispls.into(),
    })
}

/// `MPI_IN_PLACE` is not an argument of the neighbourhood collectives.
fn no_in_place(send: *const c_void) -> Result<(), MpiError> {
    if raw::in_place(send) {
        Err(MpiError::new(
            MPI_ERR_BUFFER,
            "MPI_IN_PLACE is not allowed in a neighbourhood collective",
        ))
    } else {
        Ok(())
    }
}

/// `n` counts at `p`.
fn counts(p: *const c_int, n: usize) -> Result<Vec<usize>, MpiError> {
    raw::slice(p, n)
        .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "a counts array is a null pointer"))?
        .iter()
        .map(|&k| check_count(k))
        .collect()
}

/// `n` displacements at `p`.
fn displs<T: Copy + Into<i64>>(p: *const T, n: usize) -> Result<Vec<isize>, MpiError> {
    Ok(raw::slice(p, n)
        .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "a displacements array is a null pointer"))?
        .iter()
        .map(|&d| d.into() as isize)
        .collect())
}

/// `n` datatypes at `p`.
fn types(p: *const c_int, n: usize) -> Result<Vec<TypeInfo>, MpiError> {
    raw::slice(p, n)
        .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "a datatypes array is a null pointer"))?
        .iter()
        .map(|&t| datatype::lookup(t))
        .collect()
}

/// How the receive blocks are laid out: `count` each, one after the other; or
/// `counts[j]` at `displs[j]`.
enum RecvLayout {
    Packed(c_int),
    Varying(*const c_int, *const c_int),
}

/// `MPI_Neighbor_allgather(v)` and `MPI_Neighbor_alltoall`: the send buffer is one block
/// for every destination (`every`) or block `i` for destination `i`.
fn gather_or_all(
    comm: c_int,
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    every: bool,
    recv: *mut c_void,
    layout: RecvLayout,
    rtype: c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |c, st| {
        no_in_place(send)?;
        let nb = neighbours(comm, c)?;
        let (sk, st_) = (check_count(scount)?, datatype::lookup(stype)?);
        let rt = datatype::lookup(rtype)?;
        let sends = (0..nb.destinations.len())
            .map(|i| {
                let d = if every { 0 } else { (i * sk) as isize };
                block_at(send, d, sk, &st_)
            })
            .collect();
        let m = nb.sources.len();
        let recvs = match layout {
            RecvLayout::Packed(k) => {
                let k = check_count(k)?;
                (0..m)
                    .map(|j| block_at(recv, (j * k) as isize, k, &rt))
                    .collect()
            }
            RecvLayout::Varying(cs, ds) => {
                let (cs, ds) = (counts(cs, m)?, displs(ds, m)?);
                (0..m).map(|j| block_at(recv, ds[j], cs[j], &rt)).collect()
            }
        };
        exchange(c, st, &nb, sends, recvs)
    }
}

/// `MPI_Neighbor_alltoallv`.
fn alltoallv(
    comm: c_int,
    send: *const c_void,
    scounts: *const c_int,
    sdispls: *const c_int,
    stype: c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    rdispls: *const c_int,
    rtype: c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |c, st| {
        no_in_place(send)?;
        let nb = neighbours(comm, c)?;
        let (n, m) = (nb.destinations.len(), nb.sources.len());
        let (sc, sd, sty) = (
            counts(scounts, n)?,
            displs(sdispls, n)?,
            datatype::lookup(stype)?,
        );
        let (rc, rd, rty) = (
            counts(rcounts, m)?,
            displs(rdispls, m)?,
            datatype::lookup(rtype)?,
        );
        let sends = (0..n).map(|i| block_at(send, sd[i], sc[i], &sty)).collect();
        let recvs = (0..m).map(|j| block_at(recv, rd[j], rc[j], &rty)).collect();
        exchange(c, st, &nb, sends, recvs)
    }
}

/// `MPI_Neighbor_alltoallw`: byte displacements and a type per block.
fn alltoallw(
    comm: c_int,
    send: *const c_void,
    scounts: *const c_int,
    sdispls: *const isize,
    stypes: *const c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    rdispls: *const isize,
    rtypes: *const c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |c, st| {
        no_in_place(send)?;
        let nb = neighbours(comm, c)?;
        let (n, m) = (nb.destinations.len(), nb.sources.len());
        let by_bytes = |buf: *const c_void, d: &[isize], k: &[usize], t: Vec<TypeInfo>| {
            t.into_iter()
                .enumerate()
                .map(|(i, ty)| Block {
                    at: (buf as isize).wrapping_add(d[i]) as usize,
                    count: k[i],
                    ty,
                })
                .collect::<Vec<_>>()
        };
        let byte_displs = |p: *const isize, k: usize| -> Result<Vec<isize>, MpiError> {
            Ok(raw::slice(p, k)
                .ok_or_else(|| {
                    MpiError::new(MPI_ERR_ARG, "a displacements array is a null pointer")
                })?
                .to_vec())
        };
        let sends = by_bytes(
            send,
            &byte_displs(sdispls, n)?,
            &counts(scounts, n)?,
            types(stypes, n)?,
        );
        let recvs = by_bytes(
            recv,
            &byte_displs(rdispls, m)?,
            &counts(rcounts, m)?,
            types(rtypes, m)?,
        );
        exchange(c, st, &nb, sends, recvs)
    }
}

/// `MPI_Neighbor_allgather`.
#[no_mangle]
pub extern "C" fn MPI_Neighbor_allgather(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    comm: c_int,
) -> c_int {
    let b = gather_or_all(
        comm,
        send,
        scount,
        stype,
        true,
        recv,
        RecvLayout::Packed(rcount),
        rtype,
    );
    collective(
        "MPI_Neighbor_allgather",
        comm,
        None,
        Some(Refused::Alltoallv),
        b,
    )
}

/// `MPI_Ineighbor_allgather`.
#[no_mangle]
pub extern "C" fn MPI_Ineighbor_allgather(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let b = gather_or_all(
        comm,
        send,
        scount,
        stype,
        true,
        recv,
        RecvLayout::Packed(rcount),
        rtype,
    );
    collective("MPI_Ineighbor_allgather", comm, Some(request), None, b)
}

/// `MPI_Neighbor_allgatherv`.
#[no_mangle]
pub extern "C" fn MPI_Neighbor_allgatherv(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    displs: *const c_int,
    rtype: c_int,
    comm: c_int,
) -> c_int {
    let l = RecvLayout::Varying(rcounts, displs);
    let b = gather_or_all(comm, send, scount, stype, true, recv, l, rtype);
    collective(
        "MPI_Neighbor_allgatherv",
        comm,
        None,
        Some(Refused::Alltoallv),
        b,
    )
}

/// `MPI_Ineighbor_allgatherv`.
#[no_mangle]
pub extern "C" fn MPI_Ineighbor_allgatherv(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    displs: *const c_int,
    rtype: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let l = RecvLayout::Varying(rcounts, displs);
    let b = gather_or_all(comm, send, scount, stype, true, recv, l, rtype);
    collective("MPI_Ineighbor_allgatherv", comm, Some(request), None, b)
}

/// `MPI_Neighbor_alltoall`.
#[no_mangle]
pub extern "C" fn MPI_Neighbor_alltoall(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    comm: c_int,
) -> c_int {
    let b = gather_or_all(
        comm,
        send,
        scount,
        stype,
        false,
        recv,
        RecvLayout::Packed(rcount),
        rtype,
    );
    collective(
        "MPI_Neighbor_alltoall",
        comm,
        None,
        Some(Refused::Alltoallv),
        b,
    )
}

/// `MPI_Ineighbor_alltoall`.
#[no_mangle]
pub extern "C" fn MPI_Ineighbor_alltoall(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let b = gather_or_all(
        comm,
        send,
        scount,
        stype,
        false,
        recv,
        RecvLayout::Packed(rcount),
        rtype,
    );
    collective("MPI_Ineighbor_alltoall", comm, Some(request), None, b)
}

/// `MPI_Neighbor_alltoallv`.
#[no_mangle]
pub extern "C" fn MPI_Neighbor_alltoallv(
    send: *const c_void,
    scounts: *const c_int,
    sdispls: *const c_int,
    stype: c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    rdispls: *const c_int,
    rtype: c_int,
    comm: c_int,
) -> c_int {
    let b = alltoallv(
        comm, send, scounts, sdispls, stype, recv, rcounts, rdispls, rtype,
    );
    collective(
        "MPI_Neighbor_alltoallv",
        comm,
        None,
        Some(Refused::Alltoallv),
        b,
    )
}

/// `MPI_Ineighbor_alltoallv`.
#[no_mangle]
pub extern "C" fn MPI_Ineighbor_alltoallv(
    send: *const c_void,
    scounts: *const c_int,
    sdispls: *const c_int,
    stype: c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    rdispls: *const c_int,
    rtype: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let b = alltoallv(
        comm, send, scounts, sdispls, stype, recv, rcounts, rdispls, rtype,
    );
    collective("MPI_Ineighbor_alltoallv", comm, Some(request), None, b)
}

/// `MPI_Neighbor_alltoallw`.
#[no_mangle]
pub extern "C" fn MPI_Neighbor_alltoallw(
    send: *const c_void,
    scounts: *const c_int,
    sdispls: *const isize,
    stypes: *const c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    rdispls: *const isize,
    rtypes: *const c_int,
    comm: c_int,
) -> c_int {
    let b = alltoallw(
        comm, send, scounts, sdispls, stypes, recv, rcounts, rdispls, rtypes,
    );
    collective(
        "MPI_Neighbor_alltoallw",
        comm,
        None,
        Some(Refused::Alltoallv),
        b,
    )
}

/// `MPI_Ineighbor_alltoallw`.
#[no_mangle]
pub extern "C" fn MPI_Ineighbor_alltoallw(
    send: *const c_void,
    scounts: *const c_int,
    sdispls: *const isize,
    stypes: *const c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    rdispls: *const isize,
    rtypes: *const c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    let b = alltoallw(
        comm, send, scounts, sdispls, stypes, recv, rcounts, rdispls, rtypes,
    );
    collective("MPI_Ineighbor_alltoallw", comm, Some(request), None, b)
}
