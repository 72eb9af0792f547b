//! zerorank's `MPIX_Ring_*` extension: a ring atomic-broadcast group on a communicator
//! (`zerorank::RingGroup`) from C. Every member delivers every member's broadcasts in one
//! total order; see `mpi.h` for the functions and the README for an example.
//!
//! One group per communicator handle, made by the collective `MPIX_Ring_create` and
//! dropped by `MPIX_Ring_free` (or at `MPI_Comm_free` of its communicator, or at
//! `MPI_Finalize`, which leaves every group left).

use crate::abi::*;
use crate::error::{finish, MpiError};
use crate::raw;
use crate::state;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_double, c_int, c_void};
use std::rc::Rc;
use std::time::Duration;
use zerorank::{Delivery, Replicated, RingGroup};

thread_local! {
    static GROUPS: RefCell<HashMap<c_int, Rc<RingGroup>>> = RefCell::new(HashMap::new());
}

/// At `MPI_Finalize`: every group still there leaves, as `MPIX_Ring_free` would (up to
/// 10 s each), before the barrier. Broadcasts still queued go out first and reach every
/// member that stays (virtual synchrony), and no member is left frozen while its rank
/// waits in the barrier, which does not run the groups: the others would suspect it,
/// and two frozen of three would leave the third without a majority.
pub(crate) fn leave_all() {
    let groups: Vec<(c_int, Rc<RingGroup>)> = GROUPS.with(|gs| gs.borrow_mut().drain().collect());
    for (comm, g) in groups {
        let queued = g.queued();
        if let Err(e) = g.leave(Duration::from_secs(10)) {
            tracing::warn!(
                comm,
                queued,
                "MPI_Finalize: the ring group on this communicator did not leave cleanly: {e}"
            );
        }
    }
}

/// At `MPI_Comm_free` of `comm`: its group (if it has one) leaves, as `MPIX_Ring_free`
/// would, so that it neither lingers until `MPI_Finalize` nor passes to a communicator
/// made later under the same handle.
pub(crate) fn comm_freed(comm: c_int) {
    let Some(g) = GROUPS.with(|gs| gs.borrow_mut().remove(&comm)) else {
        return;
    };
    if let Err(e) = g.leave(Duration::from_secs(10)) {
        tracing::warn!(
            comm,
            "MPI_Comm_free: the ring group on this communicator did not leave cleanly: {e}"
        );
    }
}

fn group_error(e: zerorank::Error) -> MpiError {
    MpiError::new(MPI_ERR_OTHER, e.to_string())
}

/// The group made on `comm`.
fn group(comm: c_int) -> Result<Rc<RingGroup>, MpiError> {
    state::communicator(comm)?;
    GROUPS
        .with(|g| g.borrow().get(&comm).cloned())
        .ok_or_else(|| {
            MpiError::new(
                MPI_ERR_ARG,
                "no ring group on this communicator (call MPIX_Ring_create first)",
            )
        })
}

/// A timeout in seconds: non-negative, at most a million (longer, `INFINITY` included,
/// is taken as a million: 11.6 days).
fn seconds(timeout: c_double) -> Result<Duration, MpiError> {
    if timeout >= 0.0 {
        Ok(Duration::from_secs_f64(timeout.min(1e6)))
    } else {
        Err(MpiError::new(
            MPI_ERR_ARG,
            format!("timeout {timeout} s: a non-negative number of seconds"),
        ))
    }
}

/// `MPIX_Ring_create(comm)`: collective; every rank of `comm` becomes a member.
#[no_mangle]
pub extern "C" fn MPIX_Ring_create(comm: c_int) -> c_int {
    let r = state::communicator(comm).and_then(|c| {
        if GROUPS.with(|g| g.borrow().contains_key(&comm)) {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                "this communicator has a ring group already",
            ));
        }
        let g = c.ring_group().map_err(group_error)?;
        GROUPS.with(|gs| gs.borrow_mut().insert(comm, Rc::new(g)));
        Ok(())
    });
    finish("MPIX_Ring_create", comm, r)
}

/// `MPIX_Ring_free(comm)`: leave the group gracefully (the others install a view
/// without this rank; waits up to 10 s for it) and forget it.
#[no_mangle]
pub extern "C" fn MPIX_Ring_free(comm: c_int) -> c_int {
    let r = group(comm).and_then(|g| {
        GROUPS.with(|gs| gs.borrow_mut().remove(&comm));
        g.leave(Duration::from_secs(10)).map_err(group_error)
    });
    finish("MPIX_Ring_free", comm, r)
}

/// `MPIX_Ring_bcast(comm, buf, bytes, seq)`: broadcast `bytes` bytes in total order; its
/// sequence number (per sender, from 1) in `*seq` unless `seq` is null. Queued (see
/// `RingGroup::broadcast` and `mpi.h`): the queue goes out at the next call that waits,
/// once 32 broadcasts or 2 MiB are queued, or at a call 10 ms or more after the member
/// last ran. An error means `buf` was not taken.
#[no_mangle]
pub extern "C" fn MPIX_Ring_bcast(
    comm: c_int,
    buf: *const c_void,
    bytes: c_int,
    seq: *mut c_int,
) -> c_int {
    let r = group(comm).and_then(|g| {
        let n = usize::try_from(bytes)
            .map_err(|_| MpiError::new(MPI_ERR_COUNT, format!("negative byte count {bytes}")))?;
        if n > RingGroup::MAX_BROADCAST {
            return Err(MpiError::new(
                MPI_ERR_COUNT,
                format!(
                    "a broadcast of {n} bytes: at most {} (ZERORANK_MPIX_RING_MAX_BYTES)",
                    RingGroup::MAX_BROADCAST
                ),
            ));
        }
        let data = raw::bytes(buf.cast(), n)
            .ok_or_else(|| MpiError::new(MPI_ERR_BUFFER, "null buffer with a non-zero count"))?;
        let s = g.broadcast(data).map_err(group_error)?;
        if !seq.is_null() {
            raw::put(seq, c_int::try_from(s).unwrap_or(c_int::MAX));
        }
        Ok(())
    });
    finish("MPIX_Ring_bcast", comm, r)
}

/// `MPIX_Ring_recv(comm, buf, maxbytes, origin, seq, bytes, timeout)`: the next delivery,
/// waiting up to `timeout` seconds: its payload in `buf`, its sender's rank in `*origin`,
/// sender's sequence number in `*seq`, length in `*bytes`. No delivery in time: `*origin`
/// is `MPI_UNDEFINED` and the call succeeds. A payload longer than `maxbytes` is
/// `MPI_ERR_TRUNCATE` (the first `maxbytes` bytes are in `buf`; `*bytes` is its length).
#[no_mangle]
pub extern "C" fn MPIX_Ring_recv(
    comm: c_int,
    buf: *mut c_void,
    maxbytes: c_int,
    origin: *mut c_int,
    seq: *mut c_int,
    bytes: *mut c_int,
    timeout: c_double,
) -> c_int {
    let r = group(comm).and_then(|g| {
        let cap = usize::try_from(maxbytes)
            .map_err(|_| MpiError::new(MPI_ERR_COUNT, format!("negative byte count {maxbytes}")))?;
        if origin.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "origin is a null pointer"));
        }
        let out = raw::bytes_mut(buf.cast(), cap)
            .ok_or_else(|| MpiError::new(MPI_ERR_BUFFER, "null buffer with a non-zero size"))?;
        let Some(d) = g.next_delivery(seconds(timeout)?).map_err(group_error)? else {
            raw::put(origin, MPI_UNDEFINED);
            return Ok(());
        };
        let n = d.payload.len().min(cap);
        out[..n].copy_from_slice(&d.payload[..n]);
        raw::put(origin, d.origin);
        if !seq.is_null() {
            raw::put(seq, c_int::try_from(d.seq).unwrap_or(c_int::MAX));
        }
        if !bytes.is_null() {
            raw::put(
                bytes,
                c_int::try_from(d.payload.len()).unwrap_or(c_int::MAX),
            );
        }
        if d.payload.len() > cap {
            return Err(MpiError::new(
                MPI_ERR_TRUNCATE,
                format!(
                    "a delivery of {} bytes from rank {} does not fit the {cap}-byte buffer",
                    d.payload.len(),
                    d.origin
                ),
            ));
        }
        Ok(())
    });
    finish("MPIX_Ring_recv", comm, r)
}

/// `MPIX_Ring_view(comm, round, size, members, maxmembers)`: the current view: its round
/// (views are numbered upwards), its member count, and the first `maxmembers` members'
/// communicator ranks, oldest (the leader) first.
#[no_mangle]
pub extern "C" fn MPIX_Ring_view(
    comm: c_int,
    round: *mut c_int,
    size: *mut c_int,
    members: *mut c_int,
    maxmembers: c_int,
) -> c_int {
    let r = group(comm).and_then(|g| {
        let cap = usize::try_from(maxmembers).map_err(|_| {
            MpiError::new(MPI_ERR_COUNT, format!("negative member count {maxmembers}"))
        })?;
        // Not the last view of a member that stopped (left out, say): an error, as the
        // other calls give.
        g.running().map_err(group_error)?;
        let v = g
            .view()
            .ok_or_else(|| MpiError::new(MPI_ERR_OTHER, "this member has no view yet"))?;
        if size.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "size is a null pointer"));
        }
        raw::put(size, v.members.len() as c_int);
        if !round.is_null() {
            raw::put(round, c_int::try_from(v.id.round).unwrap_or(c_int::MAX));
        }
        let out = raw::array_mut(members, cap.min(v.members.len()))
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "members is a null pointer"))?;
        for (o, &m) in out.iter_mut().zip(&v.members) {
            *o = g.rank_of_member(m);
        }
        Ok(())
    });
    finish("MPIX_Ring_view", comm, r)
}

/// `MPIX_Ring_rejoin(comm, timeout)`: join the group again after this rank's member
/// stopped because the group went on without it (`RingGroup::rejoin`).
#[no_mangle]
pub extern "C" fn MPIX_Ring_rejoin(comm: c_int, timeout: c_double) -> c_int {
    let r = group(comm)
        .and_then(|g| g.rejoin(seconds(timeout)?).map_err(group_error))
        .map(|_| ());
    finish("MPIX_Ring_rejoin", comm, r)
}

/// `MPIX_Ring_progress(comm)`: let this rank's member run without waiting
/// (`RingGroup::progress`); `MPI_ERR_OTHER` once it has stopped.
#[no_mangle]
pub extern "C" fn MPIX_Ring_progress(comm: c_int) -> c_int {
    let r = group(comm).and_then(|g| g.progress().map_err(group_error));
    finish("MPIX_Ring_progress", comm, r)
}

/// `MPIX_Ring_apply_fn`.
type ApplyFn = unsafe extern "C" fn(*mut c_void, c_int, c_int, *const c_void, c_int);
/// `MPIX_Ring_snapshot_fn`.
type SnapshotFn = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int;
/// `MPIX_Ring_restore_fn`.
type RestoreFn = unsafe extern "C" fn(*mut c_void, *const c_void, c_int);

/// The application's replicated state, through its C functions.
struct CReplicated {
    apply: ApplyFn,
    snapshot: SnapshotFn,
    restore: RestoreFn,
    ctx: *mut c_void,
}

impl Replicated for CReplicated {
    fn apply(&mut self, d: &Delivery) {
        let seq = c_int::try_from(d.seq).unwrap_or(c_int::MAX);
        let len = c_int::try_from(d.payload.len()).unwrap_or(c_int::MAX);
        // SAFETY: `apply` is the caller's `MPIX_Ring_apply_fn` (MPIX_Ring_replicate's
        // contract), given its own `ctx` and a buffer valid for `len` bytes for the call.
        unsafe { (self.apply)(self.ctx, d.origin, seq, d.payload.as_ptr().cast(), len) }
    }

    fn snapshot(&self) -> Vec<u8> {
        // SAFETY: the caller's `MPIX_Ring_snapshot_fn`; with a null buffer and 0 bytes it
        // writes nothing and returns the size.
        let want = unsafe { (self.snapshot)(self.ctx, std::ptr::null_mut(), 0) };
        let Ok(n) = usize::try_from(want) else {
            tracing::warn!(want, "MPIX_Ring_replicate: the snapshot function returned a negative size; sending an empty state");
            return Vec::new();
        };
        let mut buf = vec![0u8; n];
        // SAFETY: as above, with a writable buffer of `want` bytes.
        let got = unsafe { (self.snapshot)(self.ctx, buf.as_mut_ptr().cast(), want) };
        if got != want {
            tracing::warn!(
                want,
                got,
                "MPIX_Ring_replicate: the snapshot function changed its size between its two calls; sending the first {} bytes",
                n.min(usize::try_from(got).unwrap_or(0))
            );
            buf.truncate(usize::try_from(got).unwrap_or(0));
        }
        buf
    }

    fn restore(&mut self, state: &[u8]) {
        let len = c_int::try_from(state.len()).unwrap_or(c_int::MAX);
        // SAFETY: the caller's `MPIX_Ring_restore_fn`, given a buffer valid for `len`
        // bytes for the call.
        unsafe { (self.restore)(self.ctx, state.as_ptr().cast(), len) }
    }
}

/// `MPIX_Ring_replicate(comm, apply, snapshot, restore, ctx)`: replicate the
/// application's state on the group (`RingGroup::replicate`).
#[no_mangle]
pub extern "C" fn MPIX_Ring_replicate(
    comm: c_int,
    apply: Option<ApplyFn>,
    snapshot: Option<SnapshotFn>,
    restore: Option<RestoreFn>,
    ctx: *mut c_void,
) -> c_int {
    let r = group(comm).and_then(|g| {
        let (Some(apply), Some(snapshot), Some(restore)) = (apply, snapshot, restore) else {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                "apply, snapshot and restore must all be functions",
            ));
        };
        g.replicate(CReplicated {
            apply,
            snapshot,
            restore,
            ctx,
        });
        Ok(())
    });
    finish("MPIX_Ring_replicate", comm, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_states_the_largest_broadcast() {
        let header = include_str!("../include/mpi.h");
        let line = format!(
            "#define ZERORANK_MPIX_RING_MAX_BYTES {}\n",
            RingGroup::MAX_BROADCAST
        );
        assert!(header.contains(&line), "mpi.h lacks {line:?}");
    }
}
