//! Collective operations: the C functions over zerorank's collective engine
//! ([`zerorank::collective`]), blocking and non-blocking.
//!
//! The engine moves bytes. This file checks the arguments, resolves `MPI_IN_PLACE`, and
//! turns datatypes into bytes: a contiguous datatype is used in place in the user's
//! buffer; a non-contiguous one is packed into a staging buffer before and unpacked after
//! (for receive buffers, after the operation completes).

use crate::abi::*;
use crate::datatype::{self, TypeInfo};
use crate::error::{finish, MpiError};
use crate::raw;
use crate::state::{self, AfterColl, CRequest};
use std::ffi::{c_int, c_void};
use std::rc::Rc;
use zerorank::collective::{CollError, CollOp, RawBuf, Reducer, Refused};
use zerorank::Communicator;

mod neighbor;
mod small;

/// A collective-engine error as an MPI error.
pub(crate) fn coll_error(e: CollError) -> MpiError {
    let class = match &e {
        CollError::Truncated { .. }
        | CollError::Disagree { .. }
        | CollError::Abandoned { .. }
        | CollError::Unread => MPI_ERR_TRUNCATE,
        CollError::Transport { .. } => MPI_ERR_OTHER,
        _ => MPI_ERR_ARG,
    };
    MpiError::new(class, e.to_string())
}

fn rust_coll_error(e: zerorank::Error) -> MpiError {
    match e {
        zerorank::Error::Collective(c) => coll_error(c),
        e => MpiError::new(MPI_ERR_OTHER, e.to_string()),
    }
}

/// Collects the staging of one call.
#[derive(Default)]
struct Staging {
    keep: Vec<Vec<u8>>,
    after: Vec<AfterColl>,
}

fn bad_buffer() -> MpiError {
    MpiError::new(MPI_ERR_BUFFER, "null buffer with a non-zero count")
}

fn check_count(count: c_int) -> Result<usize, MpiError> {
    usize::try_from(count)
        .map_err(|_| MpiError::new(MPI_ERR_COUNT, format!("negative count {count}")))
}

fn check_root(c: &Communicator, root: c_int) -> Result<u32, MpiError> {
    if (0..c.size()).contains(&root) {
        Ok(root as u32)
    } else {
        Err(MpiError::new(
            MPI_ERR_ROOT,
            format!(
                "root {root} is not in the communicator of {} ranks",
                c.size()
            ),
        ))
    }
}

fn reducer(op: c_int, ty: c_int) -> Result<Rc<dyn Reducer>, MpiError> {
    crate::op::reducer(op, ty)
}

impl Staging {
    /// The bytes of `count` elements of `ty` at `buf`, to read.
    fn input(
        &mut self,
        buf: *const c_void,
        count: usize,
        ty: &TypeInfo,
    ) -> Result<RawBuf, MpiError> {
        let len = count * ty.size();
        if len == 0 {
            // SAFETY: an empty buffer is never dereferenced.
            return Ok(unsafe {
                RawBuf::from_const(std::ptr::NonNull::<u8>::dangling().as_ptr(), 0)
            });
        }
        if ty.is_contiguous() {
            let p = buf.cast::<u8>().wrapping_offset(ty.lb());
            if p.is_null() {
                return Err(bad_buffer());
            }
            // SAFETY (the caller's, under MPI): the buffer holds `count` elements and stays
            // valid until the operation completes.
            return Ok(unsafe { RawBuf::from_const(p, len) });
        }
        let mut v = vec![0u8; len];
        // SAFETY (the caller's): `buf` holds `count` elements of `ty`.
        unsafe { ty.pack(buf.cast(), count, &mut v) };
        // SAFETY: the vector is kept in the plan (its heap block does not move) until the
        // operation completes.
        let r = unsafe { RawBuf::new(v.as_mut_ptr(), len) };
        self.keep.push(v);
        Ok(r)
    }

    /// The bytes of `count` elements of `ty` at `buf`, to write (and to read first when
    /// `prefill`: an in-place operand).
    fn output(
        &mut self,
        buf: *mut c_void,
        count: usize,
        ty: &TypeInfo,
        prefill: bool,
    ) -> Result<RawBuf, MpiError> {
        let len = count * ty.size();
        if len == 0 {
            // SAFETY: an empty buffer is never dereferenced.
            return Ok(unsafe { RawBuf::new(std::ptr::NonNull::<u8>::dangling().as_ptr(), 0) });
        }
        if ty.is_contiguous() {
            let p = buf.cast::<u8>().wrapping_offset(ty.lb());
            if p.is_null() {
                return Err(bad_buffer());
            }
            // SAFETY (the caller's, under MPI): as for `input`, and nothing else touches
            // the buffer until the operation completes.
            return Ok(unsafe { RawBuf::new(p, len) });
        }
        let mut v = vec![0u8; len];
        if prefill {
            // SAFETY (the caller's): `buf` holds `count` elements of `ty`.
            unsafe { ty.pack(buf.cast(), count, &mut v) };
        }
        // SAFETY: as in `input`.
        let r = unsafe { RawBuf::new(v.as_mut_ptr(), len) };
        let (ptr, ty, base) = (v.as_ptr() as usize, ty.clone(), buf as usize);
        self.keep.push(v);
        self.after.push(Box::new(move || {
            // SAFETY: `ptr` is the staging vector kept alive with this closure's plan
            // (dropped only after the `after` steps ran); `base` holds `count` elements.
            unsafe {
                let staged = std::slice::from_raw_parts(ptr as *const u8, len);
                ty.unpack(staged, base as *mut u8, count);
            }
            Ok(())
        }));
        Ok(r)
    }

    /// A buffer of blocks: block `i` is `counts[i]` elements of `ty` at element
    /// displacement `displs[i]` from `buf`. The engine's view: one byte buffer and the
    /// byte counts and displacements in it.
    fn blocks(
        &mut self,
        buf: *mut c_void,
        counts: &[usize],
        displs: &[isize],
        ty: &TypeInfo,
        read: bool,
        write: bool,
    ) -> Result<(RawBuf, Vec<usize>, Vec<usize>), MpiError> {
        let size = ty.size();
        let bcounts: Vec<usize> = counts.iter().map(|c| c * size).collect();
        let total: usize = bcounts.iter().sum();
        if total == 0 {
            // SAFETY: an empty buffer is never dereferenced.
            let r = unsafe { RawBuf::new(std::ptr::NonNull::<u8>::dangling().as_ptr(), 0) };
            return Ok((r, bcounts, vec![0; counts.len()]));
        }
        let direct = ty.is_contiguous() && displs.iter().all(|&d| d >= 0);
        if direct {
            let ext = ty.extent();
            let span = counts
                .iter()
                .zip(displs)
                .filter(|(&c, _)| c > 0)
                .map(|(&c, &d)| (d as usize) * ext as usize + c * size)
                .max()
                .unwrap_or(0);
            let p = buf.cast::<u8>().wrapping_offset(ty.lb());
            if p.is_null() {
                return Err(bad_buffer());
            }
            let bdispls = displs.iter().map(|&d| d as usize * ext as usize).collect();
            // SAFETY (the caller's, under MPI): the buffer holds every block.
            return Ok((unsafe { RawBuf::new(p, span) }, bcounts, bdispls));
        }
        // Staged: blocks packed one after the other.
        let ext = ty.extent();
        let byte_displs: Vec<isize> = displs.iter().map(|&d| d * ext).collect();
        let types = vec![ty.clone(); counts.len()];
        self.typed_blocks(buf, counts, &byte_displs, &types, read, write)
    }
}

impl Staging {
    /// A staged buffer of typed blocks (`MPI_Alltoallw`): block `i` is `counts[i]`
    /// elements of `types[i]` at byte displacement `displs[i]` from `buf`, packed one after
    /// the other (read from `buf` now if `read`, written back after the operation if
    /// `write`). The engine's view: the staging bytes, and the byte counts and
    /// displacements in it.
    fn typed_blocks(
        &mut self,
        buf: *mut c_void,
        counts: &[usize],
        displs: &[isize],
        types: &[TypeInfo],
        read: bool,
        write: bool,
    ) -> Result<(RawBuf, Vec<usize>, Vec<usize>), MpiError> {
        let bcounts: Vec<usize> = counts
            .iter()
            .zip(types)
            .map(|(c, t)| c * t.size())
            .collect();
        let mut bdispls = Vec::with_capacity(counts.len());
        let mut total = 0;
        for &b in &bcounts {
            bdispls.push(total);
            total += b;
        }
        let at = move |i: usize| (buf as usize as isize).wrapping_add(displs[i]) as usize;
        // MPI_BOTTOM with absolute addresses is fine; a contiguous block at address 0 is not.
        for i in 0..counts.len() {
            if bcounts[i] > 0
                && types[i].is_contiguous()
                && (at(i) as isize).wrapping_add(types[i].lb()) == 0
            {
                return Err(bad_buffer());
            }
        }
        let mut v = vec![0u8; total];
        if read {
            for i in 0..counts.len() {
                if bcounts[i] > 0 {
                    // SAFETY (the caller's, under MPI): block i holds counts[i] elements
                    // of types[i].
                    unsafe {
                        types[i].pack(
                            at(i) as *const u8,
                            counts[i],
                            &mut v[bdispls[i]..bdispls[i] + bcounts[i]],
                        )
                    };
                }
            }
        }
        // SAFETY: as in `input`.
        let r = unsafe { RawBuf::new(v.as_mut_ptr(), total) };
        if write {
            let ptr = v.as_ptr() as usize;
            let (types, counts, bd, bc) = (
                types.to_vec(),
                counts.to_vec(),
                bdispls.clone(),
                bcounts.clone(),
            );
            let starts: Vec<usize> = (0..counts.len()).map(at).collect();
            self.after.push(Box::new(move || {
                for i in 0..counts.len() {
                    if bc[i] > 0 {
                        // SAFETY: the staging vector lives until the `after` steps ran;
                        // block i of the user's buffer holds counts[i] elements of
                        // types[i].
                        unsafe {
                            let staged =
                                std::slice::from_raw_parts((ptr + bd[i]) as *const u8, bc[i]);
                            types[i].unpack(staged, starts[i] as *mut u8, counts[i]);
                        }
                    }
                }
                Ok(())
            }));
        }
        self.keep.push(v);
        Ok((r, bcounts, bdispls))
    }
}

/// One side of `MPI_Alltoallw`: counts, byte displacements, types.
type WSide = (Vec<usize>, Vec<isize>, Vec<TypeInfo>);

/// The checked arguments of `MPI_Alltoallw`'s one side.
fn w_args(
    n: usize,
    counts: *const c_int,
    displs: *const c_int,
    types: *const c_int,
) -> Result<WSide, MpiError> {
    if displs.is_null() {
        return Err(MpiError::new(
            MPI_ERR_ARG,
            "the displacements array is a null pointer",
        ));
    }
    let (c, d) = vec_args(n, counts, displs)?;
    let t = raw::slice(types, n)
        .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "the datatypes array is a null pointer"))?
        .iter()
        .map(|&h| datatype::lookup(h))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((c, d, t))
}

/// `MPI_Alltoallw` as an all-to-all of bytes: each side's typed blocks are staged
/// (packed) one after the other, and the received ones unpacked when it completes.
fn alltoallw(
    send: *const c_void,
    scounts: *const c_int,
    sdispls: *const c_int,
    stypes: *const c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    rdispls: *const c_int,
    rtypes: *const c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |c, st| {
        let n = c.size() as usize;
        let (rc, rd, rt) = w_args(n, rcounts, rdispls, rtypes)?;
        // In place, the receive buffer's blocks are what is sent.
        let (sbuf, (sc, sd, stt)) = if raw::in_place(send) {
            (recv, (rc.clone(), rd.clone(), rt.clone()))
        } else {
            (send as *mut c_void, w_args(n, scounts, sdispls, stypes)?)
        };
        let (sb, sbc, sbd) = st.typed_blocks(sbuf, &sc, &sd, &stt, true, false)?;
        let (rb, rbc, rbd) = st.typed_blocks(recv, &rc, &rd, &rt, false, true)?;
        Ok(CollOp::Alltoallv {
            send: Some(sb),
            scounts: sbc.into(),
            sdispls: sbd.into(),
            recv: rb,
            rcounts: rbc.into(),
            rdispls: rbd.into(),
        })
    }
}

/// `MPI_Alltoallw`.
#[no_mangle]
pub extern "C" fn MPI_Alltoallw(
    send: *const c_void,
    scounts: *const c_int,
    sdispls: *const c_int,
    stypes: *const c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    rdispls: *const c_int,
    rtypes: *const c_int,
    comm: c_int,
) -> c_int {
    collective(
        "MPI_Alltoallw",
        comm,
        None,
        Some(Refused::Alltoallv),
        alltoallw(
            send, scounts, sdispls, stypes, recv, rcounts, rdispls, rtypes,
        ),
    )
}

/// `MPI_Ialltoallw`.
#[no_mangle]
pub extern "C" fn MPI_Ialltoallw(
    send: *const c_void,
    scounts: *const c_int,
    sdispls: *const c_int,
    stypes: *const c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    rdispls: *const c_int,
    rtypes: *const c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Ialltoallw",
        comm,
        Some(request),
        None,
        alltoallw(
            send, scounts, sdispls, stypes, recv, rcounts, rdispls, rtypes,
        ),
    )
}

/// Run `op` on `c` now, or start it and store a request in `request`; `staging` holds
/// the buffers it uses and the steps to run once it completed.
fn execute(
    c: &Communicator,
    comm_h: c_int,
    op: CollOp,
    staging: Staging,
    request: Option<*mut c_int>,
) -> Result<(), MpiError> {
    let Staging { keep, after } = staging;
    match request {
        None => {
            c.collective(op).map_err(rust_coll_error)?;
            for f in after {
                f()?;
            }
            drop(keep);
            Ok(())
        }
        Some(out) => {
            if out.is_null() {
                return Err(MpiError::new(MPI_ERR_ARG, "request is a null pointer"));
            }
            let req = c.start_collective(op).map_err(rust_coll_error)?;
            let after: Option<AfterColl> = if after.is_empty() {
                None
            } else {
                Some(Box::new(move || after.into_iter().try_for_each(|f| f())))
            };
            let h = state::add_request(CRequest::Coll {
                req: Box::new(req),
                comm_h,
                after,
                keep,
            });
            raw::put(out, h);
            Ok(())
        }
    }
}

/// Run the collective `build` describes, blocking (`request` is `None`) or not. When
/// `build` refuses this rank's arguments under `MPI_ERRORS_RETURN`, the rank still takes
/// part in the call, so that the other ranks do not wait for it: a blocking call
/// `refused` names with nothing to send or receive on one node, and otherwise a refusal
/// in the ranks' agreement on the call (`Communicator::refuse_collective`,
/// `Communicator::refuse_started_collective`). (Under `MPI_ERRORS_ARE_FATAL` the error
/// ends the job anyway.)
fn collective(
    name: &str,
    comm: c_int,
    request: Option<*mut c_int>,
    refused: Option<Refused>,
    build: impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError>,
) -> c_int {
    let r = state::communicator(comm).and_then(|c| {
        let mut st = Staging::default();
        let built = match request {
            Some(out) if out.is_null() => {
                Err(MpiError::new(MPI_ERR_ARG, "request is a null pointer"))
            }
            _ => build(&c, &mut st),
        };
        let op = built.inspect_err(|_| {
            let returns =
                state::with(|s| s.errhandler(comm)).is_some_and(crate::errhandler::returns_errors);
            match (request, refused, returns) {
                (None, Some(r), true) => {
                    c.refuse_collective(r);
                }
                // A non-blocking call runs a schedule, which starts with the agreement.
                (Some(_), _, true) => {
                    c.refuse_started_collective();
                }
                _ => {}
            }
        })?;
        execute(&c, comm, op, st, request)
    });
    finish(name, comm, r)
}

/// `f(root)`; a negative root is outside every communicator (`u32::MAX`).
fn rooted(root: c_int, f: fn(u32) -> Refused) -> Option<Refused> {
    Some(f(u32::try_from(root).unwrap_or(u32::MAX)))
}

// ---------------------------------------------------------------------------------------
// Builders shared by the blocking and non-blocking forms.

fn barrier(_: &Communicator, _: &mut Staging) -> Result<CollOp, MpiError> {
    Ok(CollOp::Barrier)
}

fn bcast(
    buf: *mut c_void,
    count: c_int,
    ty: c_int,
    root: c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |c, st| {
        let count = check_count(count)?;
        let t = datatype::lookup(ty)?;
        let root = check_root(c, root)?;
        let me = c.rank() as u32;
        let b = st.output(buf, count, &t, me == root)?;
        Ok(CollOp::Bcast { root, buf: b })
    }
}

fn reduce(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    root: c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |c, st| {
        let count = check_count(count)?;
        let t = datatype::lookup(ty)?;
        let root = check_root(c, root)?;
        let r = reducer(op, ty)?;
        let at_root = c.rank() as u32 == root;
        let in_place = raw::in_place(send);
        if in_place && !at_root {
            return Err(MpiError::new(
                MPI_ERR_BUFFER,
                "MPI_IN_PLACE is allowed only at the root",
            ));
        }
        let s = if in_place {
            None
        } else {
            Some(st.input(send, count, &t)?)
        };
        let rv = if at_root {
            Some(st.output(recv, count, &t, in_place)?)
        } else {
            None
        };
        Ok(CollOp::Reduce {
            root,
            send: s,
            recv: rv,
            op: r,
        })
    }
}

/// Builders of Allreduce, Scan and Exscan (same arguments).
fn all_reduce_like(
    kind: fn(Option<RawBuf>, RawBuf, Rc<dyn Reducer>) -> CollOp,
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |_, st| {
        let count = check_count(count)?;
        let t = datatype::lookup(ty)?;
        let r = reducer(op, ty)?;
        let in_place = raw::in_place(send);
        let s = if in_place {
            None
        } else {
            Some(st.input(send, count, &t)?)
        };
        let rv = st.output(recv, count, &t, in_place)?;
        Ok(kind(s, rv, r))
    }
}

fn allreduce_op(send: Option<RawBuf>, recv: RawBuf, op: Rc<dyn Reducer>) -> CollOp {
    CollOp::Allreduce { send, recv, op }
}
fn scan_op(send: Option<RawBuf>, recv: RawBuf, op: Rc<dyn Reducer>) -> CollOp {
    CollOp::Scan { send, recv, op }
}
fn exscan_op(send: Option<RawBuf>, recv: RawBuf, op: Rc<dyn Reducer>) -> CollOp {
    CollOp::Exscan { send, recv, op }
}

/// Element counts and displacements of a v-collective, checked.
fn vec_args(
    n: usize,
    counts: *const c_int,
    displs: *const c_int,
) -> Result<(Vec<usize>, Vec<isize>), MpiError> {
    let null = || MpiError::new(MPI_ERR_ARG, "counts or displacements is a null pointer");
    let c = raw::slice(counts, n).ok_or_else(null)?;
    let counts = c
        .iter()
        .map(|&x| check_count(x))
        .collect::<Result<Vec<_>, _>>()?;
    let displs = match displs.is_null() {
        true => {
            // Packed one after another (used by the *_block and non-v forms).
            let mut d = Vec::with_capacity(n);
            let mut off = 0isize;
            for &k in &counts {
                d.push(off);
                off += k as isize;
            }
            d
        }
        false => raw::slice(displs, n)
            .ok_or_else(null)?
            .iter()
            .map(|&x| x as isize)
            .collect(),
    };
    Ok((counts, displs))
}

fn gather(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcounts: Option<*const c_int>,
    rcount: c_int,
    displs: *const c_int,
    rtype: c_int,
    root: c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |c, st| {
        let root = check_root(c, root)?;
        let n = c.size() as usize;
        let me = c.rank() as usize;
        let at_root = me == root as usize;
        let in_place = raw::in_place(send);
        if in_place && !at_root {
            return Err(MpiError::new(
                MPI_ERR_BUFFER,
                "MPI_IN_PLACE is allowed only at the root",
            ));
        }
        let s = if in_place {
            None
        } else {
            let t = datatype::lookup(stype)?;
            Some(st.input(send, check_count(scount)?, &t)?)
        };
        if !at_root {
            let block = s_len(&s);
            return Ok(match rcounts {
                None => CollOp::Gather {
                    root,
                    send: s,
                    recv: None,
                    block,
                },
                Some(_) => CollOp::Gatherv {
                    root,
                    send: s,
                    recv: None,
                    counts: Vec::new(),
                    displs: Vec::new(),
                },
            });
        }
        let t = datatype::lookup(rtype)?;
        let (counts, displs) = match rcounts {
            None => {
                let k = check_count(rcount)?;
                (vec![k; n], (0..n).map(|i| (i * k) as isize).collect())
            }
            Some(p) => vec_args(n, p, displs)?,
        };
        let (rb, bc, bd) = st.blocks(recv, &counts, &displs, &t, in_place, true)?;
        Ok(match rcounts {
            None => CollOp::Gather {
                root,
                send: s,
                recv: Some(rb),
                block: bc[0],
            },
            Some(_) => CollOp::Gatherv {
                root,
                send: s,
                recv: Some(rb),
                counts: bc,
                displs: bd,
            },
        })
    }
}

fn s_len(s: &Option<RawBuf>) -> usize {
    s.as_ref().map_or(0, RawBuf::len)
}

fn scatter(
    send: *const c_void,
    scounts: Option<*const c_int>,
    scount: c_int,
    displs: *const c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    root: c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |c, st| {
        let root = check_root(c, root)?;
        let n = c.size() as usize;
        let at_root = c.rank() as u32 == root;
        let in_place = raw::in_place(recv);
        if in_place && !at_root {
            return Err(MpiError::new(
                MPI_ERR_BUFFER,
                "MPI_IN_PLACE is allowed only at the root",
            ));
        }
        let r = if in_place {
            None
        } else {
            let t = datatype::lookup(rtype)?;
            Some(st.output(recv, check_count(rcount)?, &t, false)?)
        };
        if !at_root {
            let block = s_len(&r);
            return Ok(match scounts {
                None => CollOp::Scatter {
                    root,
                    send: None,
                    recv: r,
                    block,
                },
                Some(_) => CollOp::Scatterv {
                    root,
                    send: None,
                    counts: Vec::new(),
                    displs: Vec::new(),
                    recv: r,
                },
            });
        }
        let t = datatype::lookup(stype)?;
        let (counts, displs) = match scounts {
            None => {
                let k = check_count(scount)?;
                (vec![k; n], (0..n).map(|i| (i * k) as isize).collect())
            }
            Some(p) => vec_args(n, p, displs)?,
        };
        let (sb, bc, bd) = st.blocks(send as *mut c_void, &counts, &displs, &t, true, false)?;
        Ok(match scounts {
            None => CollOp::Scatter {
                root,
                send: Some(sb),
                recv: r,
                block: bc[0],
            },
            Some(_) => CollOp::Scatterv {
                root,
                send: Some(sb),
                counts: bc,
                displs: bd,
                recv: r,
            },
        })
    }
}

fn allgather(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcounts: Option<*const c_int>,
    rcount: c_int,
    displs: *const c_int,
    rtype: c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |c, st| {
        let n = c.size() as usize;
        let in_place = raw::in_place(send);
        let s = if in_place {
            None
        } else {
            let t = datatype::lookup(stype)?;
            Some(st.input(send, check_count(scount)?, &t)?)
        };
        let t = datatype::lookup(rtype)?;
        if rcounts.is_none() && t.is_contiguous() {
            // Equal blocks of a contiguous type: the receive buffer is one contiguous run.
            let k = check_count(rcount)?;
            let all = k.checked_mul(n).ok_or_else(|| {
                MpiError::new(MPI_ERR_COUNT, format!("count {k} x {n} ranks overflows"))
            })?;
            let rb = st.output(recv, all, &t, in_place)?;
            return Ok(CollOp::Allgather {
                send: s,
                recv: rb,
                block: k * t.size(),
            });
        }
        let (counts, displs) = match rcounts {
            None => {
                let k = check_count(rcount)?;
                (vec![k; n], (0..n).map(|i| (i * k) as isize).collect())
            }
            Some(p) => vec_args(n, p, displs)?,
        };
        let (rb, bc, bd) = st.blocks(recv, &counts, &displs, &t, in_place, true)?;
        Ok(match rcounts {
            None => CollOp::Allgather {
                send: s,
                recv: rb,
                block: bc[0],
            },
            Some(_) => CollOp::Allgatherv {
                send: s,
                recv: rb,
                counts: bc,
                displs: bd,
            },
        })
    }
}

fn alltoall(
    send: *const c_void,
    scounts: Option<*const c_int>,
    scount: c_int,
    sdispls: *const c_int,
    stype: c_int,
    recv: *mut c_void,
    rcounts: Option<*const c_int>,
    rcount: c_int,
    rdispls: *const c_int,
    rtype: c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |c, st| {
        let n = c.size() as usize;
        let in_place = raw::in_place(send);
        let rt = datatype::lookup(rtype)?;
        let (rc, rd) = match rcounts {
            None => {
                let k = check_count(rcount)?;
                (vec![k; n], (0..n).map(|i| (i * k) as isize).collect())
            }
            Some(p) => vec_args(n, p, rdispls)?,
        };
        let s = if in_place {
            None
        } else {
            let t = datatype::lookup(stype)?;
            let (sc, sd) = match scounts {
                None => {
                    let k = check_count(scount)?;
                    (vec![k; n], (0..n).map(|i| (i * k) as isize).collect())
                }
                Some(p) => vec_args(n, p, sdispls)?,
            };
            Some(st.blocks(send as *mut c_void, &sc, &sd, &t, true, false)?)
        };
        let (rb, rbc, rbd) = st.blocks(recv, &rc, &rd, &rt, in_place, true)?;
        Ok(match (rcounts, s) {
            (None, s) => CollOp::Alltoall {
                send: s.map(|x| x.0),
                recv: rb,
                block: rbc[0],
            },
            (Some(_), Some((sb, sbc, sbd))) => CollOp::Alltoallv {
                send: Some(sb),
                scounts: sbc.into(),
                sdispls: sbd.into(),
                recv: rb,
                rcounts: rbc.into(),
                rdispls: rbd.into(),
            },
            (Some(_), None) => CollOp::Alltoallv {
                send: None,
                scounts: rbc.clone().into(),
                sdispls: rbd.clone().into(),
                recv: rb,
                rcounts: rbc.into(),
                rdispls: rbd.into(),
            },
        })
    }
}

fn reduce_scatter(
    send: *const c_void,
    recv: *mut c_void,
    counts: Option<*const c_int>,
    count: c_int,
    ty: c_int,
    op: c_int,
) -> impl FnOnce(&Communicator, &mut Staging) -> Result<CollOp, MpiError> {
    move |c, st| {
        let n = c.size() as usize;
        let me = c.rank() as usize;
        let t = datatype::lookup(ty)?;
        let r = reducer(op, ty)?;
        let counts: Vec<usize> = match counts {
            None => vec![check_count(count)?; n],
            Some(p) => vec_args(n, p, std::ptr::null())?.0,
        };
        let total: usize = counts.iter().sum();
        let in_place = raw::in_place(send);
        let bcounts: Vec<usize> = counts.iter().map(|k| k * t.size()).collect();
        if in_place {
            // The input is the whole receive buffer; my block ends up at its start.
            let rv = st.output(recv, total, &t, true)?;
            return Ok(CollOp::ReduceScatter {
                send: None,
                recv: rv,
                counts: bcounts,
                op: r,
            });
        }
        let s = st.input(send, total, &t)?;
        let rv = st.output(recv, counts[me], &t, false)?;
        Ok(CollOp::ReduceScatter {
            send: Some(s),
            recv: rv,
            counts: bcounts,
            op: r,
        })
    }
}

// ---------------------------------------------------------------------------------------
// The C functions.

/// `MPI_Barrier`.
#[no_mangle]
pub extern "C" fn MPI_Barrier(comm: c_int) -> c_int {
    // No arguments to check or stage: straight to the engine.
    let r = state::communicator(comm)
        .and_then(|c| c.collective(CollOp::Barrier).map_err(rust_coll_error));
    finish("MPI_Barrier", comm, r)
}

/// `MPI_Ibarrier`.
#[no_mangle]
pub extern "C" fn MPI_Ibarrier(comm: c_int, request: *mut c_int) -> c_int {
    collective("MPI_Ibarrier", comm, Some(request), None, barrier)
}

/// `MPI_Bcast`.
#[no_mangle]
pub extern "C" fn MPI_Bcast(
    buf: *mut c_void,
    count: c_int,
    ty: c_int,
    root: c_int,
    comm: c_int,
) -> c_int {
    if let Some(rc) = small::bcast(buf, count, ty, root, comm) {
        return rc;
    }
    collective(
        "MPI_Bcast",
        comm,
        None,
        rooted(root, |root| Refused::Bcast { root }),
        bcast(buf, count, ty, root),
    )
}

/// `MPI_Ibcast`.
#[no_mangle]
pub extern "C" fn MPI_Ibcast(
    buf: *mut c_void,
    count: c_int,
    ty: c_int,
    root: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Ibcast",
        comm,
        Some(request),
        None,
        bcast(buf, count, ty, root),
    )
}

/// `MPI_Reduce`.
#[no_mangle]
pub extern "C" fn MPI_Reduce(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    root: c_int,
    comm: c_int,
) -> c_int {
    if let Some(rc) = small::reduce(send, recv, count, ty, op, root, comm) {
        return rc;
    }
    collective(
        "MPI_Reduce",
        comm,
        None,
        rooted(root, |root| Refused::Reduce { root }),
        reduce(send, recv, count, ty, op, root),
    )
}

/// `MPI_Ireduce`.
#[no_mangle]
pub extern "C" fn MPI_Ireduce(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    root: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Ireduce",
        comm,
        Some(request),
        None,
        reduce(send, recv, count, ty, op, root),
    )
}

/// `MPI_Allreduce`.
#[no_mangle]
pub extern "C" fn MPI_Allreduce(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    comm: c_int,
) -> c_int {
    if let Some(rc) = small::allreduce(send, recv, count, ty, op, comm) {
        return rc;
    }
    collective(
        "MPI_Allreduce",
        comm,
        None,
        Some(Refused::Allreduce),
        all_reduce_like(allreduce_op, send, recv, count, ty, op),
    )
}

/// `MPI_Iallreduce`.
#[no_mangle]
pub extern "C" fn MPI_Iallreduce(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Iallreduce",
        comm,
        Some(request),
        None,
        all_reduce_like(allreduce_op, send, recv, count, ty, op),
    )
}

/// `MPI_Scan`.
#[no_mangle]
pub extern "C" fn MPI_Scan(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    comm: c_int,
) -> c_int {
    collective(
        "MPI_Scan",
        comm,
        None,
        Some(Refused::Scan),
        all_reduce_like(scan_op, send, recv, count, ty, op),
    )
}

/// `MPI_Iscan`.
#[no_mangle]
pub extern "C" fn MPI_Iscan(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Iscan",
        comm,
        Some(request),
        None,
        all_reduce_like(scan_op, send, recv, count, ty, op),
    )
}

/// `MPI_Exscan` (rank 0's receive buffer is left as it was).
#[no_mangle]
pub extern "C" fn MPI_Exscan(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    comm: c_int,
) -> c_int {
    collective(
        "MPI_Exscan",
        comm,
        None,
        Some(Refused::Exscan),
        all_reduce_like(exscan_op, send, recv, count, ty, op),
    )
}

/// `MPI_Iexscan`.
#[no_mangle]
pub extern "C" fn MPI_Iexscan(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Iexscan",
        comm,
        Some(request),
        None,
        all_reduce_like(exscan_op, send, recv, count, ty, op),
    )
}

/// `MPI_Gather`.
#[no_mangle]
pub extern "C" fn MPI_Gather(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    root: c_int,
    comm: c_int,
) -> c_int {
    collective(
        "MPI_Gather",
        comm,
        None,
        rooted(root, |root| Refused::Gather { root }),
        gather(
            send,
            scount,
            stype,
            recv,
            None,
            rcount,
            std::ptr::null(),
            rtype,
            root,
        ),
    )
}

/// `MPI_Igather`.
#[no_mangle]
pub extern "C" fn MPI_Igather(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    root: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Igather",
        comm,
        Some(request),
        None,
        gather(
            send,
            scount,
            stype,
            recv,
            None,
            rcount,
            std::ptr::null(),
            rtype,
            root,
        ),
    )
}

/// `MPI_Gatherv`.
#[no_mangle]
pub extern "C" fn MPI_Gatherv(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    displs: *const c_int,
    rtype: c_int,
    root: c_int,
    comm: c_int,
) -> c_int {
    collective(
        "MPI_Gatherv",
        comm,
        None,
        rooted(root, |root| Refused::Gatherv { root }),
        gather(
            send,
            scount,
            stype,
            recv,
            Some(rcounts),
            0,
            displs,
            rtype,
            root,
        ),
    )
}

/// `MPI_Igatherv`.
#[no_mangle]
pub extern "C" fn MPI_Igatherv(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    displs: *const c_int,
    rtype: c_int,
    root: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Igatherv",
        comm,
        Some(request),
        None,
        gather(
            send,
            scount,
            stype,
            recv,
            Some(rcounts),
            0,
            displs,
            rtype,
            root,
        ),
    )
}

/// `MPI_Scatter`.
#[no_mangle]
pub extern "C" fn MPI_Scatter(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    root: c_int,
    comm: c_int,
) -> c_int {
    collective(
        "MPI_Scatter",
        comm,
        None,
        rooted(root, |root| Refused::Scatter { root }),
        scatter(
            send,
            None,
            scount,
            std::ptr::null(),
            stype,
            recv,
            rcount,
            rtype,
            root,
        ),
    )
}

/// `MPI_Iscatter`.
#[no_mangle]
pub extern "C" fn MPI_Iscatter(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    root: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Iscatter",
        comm,
        Some(request),
        None,
        scatter(
            send,
            None,
            scount,
            std::ptr::null(),
            stype,
            recv,
            rcount,
            rtype,
            root,
        ),
    )
}

/// `MPI_Scatterv`.
#[no_mangle]
pub extern "C" fn MPI_Scatterv(
    send: *const c_void,
    scounts: *const c_int,
    displs: *const c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    root: c_int,
    comm: c_int,
) -> c_int {
    collective(
        "MPI_Scatterv",
        comm,
        None,
        rooted(root, |root| Refused::Scatterv { root }),
        scatter(
            send,
            Some(scounts),
            0,
            displs,
            stype,
            recv,
            rcount,
            rtype,
            root,
        ),
    )
}

/// `MPI_Iscatterv`.
#[no_mangle]
pub extern "C" fn MPI_Iscatterv(
    send: *const c_void,
    scounts: *const c_int,
    displs: *const c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    root: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Iscatterv",
        comm,
        Some(request),
        None,
        scatter(
            send,
            Some(scounts),
            0,
            displs,
            stype,
            recv,
            rcount,
            rtype,
            root,
        ),
    )
}

/// `MPI_Allgather`.
#[no_mangle]
pub extern "C" fn MPI_Allgather(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    comm: c_int,
) -> c_int {
    if let Some(rc) = small::allgather(send, scount, stype, recv, rcount, rtype, comm) {
        return rc;
    }
    collective(
        "MPI_Allgather",
        comm,
        None,
        Some(Refused::Allgather),
        allgather(
            send,
            scount,
            stype,
            recv,
            None,
            rcount,
            std::ptr::null(),
            rtype,
        ),
    )
}

/// `MPI_Iallgather`.
#[no_mangle]
pub extern "C" fn MPI_Iallgather(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Iallgather",
        comm,
        Some(request),
        None,
        allgather(
            send,
            scount,
            stype,
            recv,
            None,
            rcount,
            std::ptr::null(),
            rtype,
        ),
    )
}

/// `MPI_Allgatherv`.
#[no_mangle]
pub extern "C" fn MPI_Allgatherv(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcounts: *const c_int,
    displs: *const c_int,
    rtype: c_int,
    comm: c_int,
) -> c_int {
    collective(
        "MPI_Allgatherv",
        comm,
        None,
        Some(Refused::Allgatherv),
        allgather(send, scount, stype, recv, Some(rcounts), 0, displs, rtype),
    )
}

/// `MPI_Iallgatherv`.
#[no_mangle]
pub extern "C" fn MPI_Iallgatherv(
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
    collective(
        "MPI_Iallgatherv",
        comm,
        Some(request),
        None,
        allgather(send, scount, stype, recv, Some(rcounts), 0, displs, rtype),
    )
}

/// `MPI_Alltoall`.
#[no_mangle]
pub extern "C" fn MPI_Alltoall(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    comm: c_int,
) -> c_int {
    collective(
        "MPI_Alltoall",
        comm,
        None,
        Some(Refused::Alltoall),
        alltoall(
            send,
            None,
            scount,
            std::ptr::null(),
            stype,
            recv,
            None,
            rcount,
            std::ptr::null(),
            rtype,
        ),
    )
}

/// `MPI_Ialltoall`.
#[no_mangle]
pub extern "C" fn MPI_Ialltoall(
    send: *const c_void,
    scount: c_int,
    stype: c_int,
    recv: *mut c_void,
    rcount: c_int,
    rtype: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Ialltoall",
        comm,
        Some(request),
        None,
        alltoall(
            send,
            None,
            scount,
            std::ptr::null(),
            stype,
            recv,
            None,
            rcount,
            std::ptr::null(),
            rtype,
        ),
    )
}

/// `MPI_Alltoallv`.
#[no_mangle]
pub extern "C" fn MPI_Alltoallv(
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
    collective(
        "MPI_Alltoallv",
        comm,
        None,
        Some(Refused::Alltoallv),
        alltoall(
            send,
            Some(scounts),
            0,
            sdispls,
            stype,
            recv,
            Some(rcounts),
            0,
            rdispls,
            rtype,
        ),
    )
}

/// `MPI_Ialltoallv`.
#[no_mangle]
pub extern "C" fn MPI_Ialltoallv(
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
    collective(
        "MPI_Ialltoallv",
        comm,
        Some(request),
        None,
        alltoall(
            send,
            Some(scounts),
            0,
            sdispls,
            stype,
            recv,
            Some(rcounts),
            0,
            rdispls,
            rtype,
        ),
    )
}

/// `MPI_Reduce_scatter`.
#[no_mangle]
pub extern "C" fn MPI_Reduce_scatter(
    send: *const c_void,
    recv: *mut c_void,
    counts: *const c_int,
    ty: c_int,
    op: c_int,
    comm: c_int,
) -> c_int {
    collective(
        "MPI_Reduce_scatter",
        comm,
        None,
        Some(Refused::ReduceScatter),
        reduce_scatter(send, recv, Some(counts), 0, ty, op),
    )
}

/// `MPI_Ireduce_scatter`.
#[no_mangle]
pub extern "C" fn MPI_Ireduce_scatter(
    send: *const c_void,
    recv: *mut c_void,
    counts: *const c_int,
    ty: c_int,
    op: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Ireduce_scatter",
        comm,
        Some(request),
        None,
        reduce_scatter(send, recv, Some(counts), 0, ty, op),
    )
}

/// `MPI_Reduce_scatter_block`.
#[no_mangle]
pub extern "C" fn MPI_Reduce_scatter_block(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    comm: c_int,
) -> c_int {
    collective(
        "MPI_Reduce_scatter_block",
        comm,
        None,
        Some(Refused::ReduceScatter),
        reduce_scatter(send, recv, None, count, ty, op),
    )
}

/// `MPI_Ireduce_scatter_block`.
#[no_mangle]
pub extern "C" fn MPI_Ireduce_scatter_block(
    send: *const c_void,
    recv: *mut c_void,
    count: c_int,
    ty: c_int,
    op: c_int,
    comm: c_int,
    request: *mut c_int,
) -> c_int {
    collective(
        "MPI_Ireduce_scatter_block",
        comm,
        Some(request),
        None,
        reduce_scatter(send, recv, None, count, ty, op),
    )
}
