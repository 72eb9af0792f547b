//! Running a schedule over the fabric; the one place of the engine with raw pointers.
//!
//! # Ranks that disagree
//! A receive that gets another size than the schedule expects (the ranks passed
//! inconsistent counts: an erroneous program) does not stop the schedule: its bytes, cut
//! to the region, are in place, the rest of the schedule runs (so the ranks this rank
//! forwards to are not left waiting), and the call then fails with
//! [`CollError::Truncated`]. (Unless the caller ends the job on errors:
//! `CollCtx::finish_on_disagreement`.) Ranks whose sizes would make them choose different
//! algorithms never get here: the schedule's agreement (`agreement`) has stopped them all
//! before its first transfer, so a call never ends with a transfer of its algorithm still
//! in flight. (With the agreement turned off, they may wait for each other forever.)

use super::agreement;
use super::plan::Planned;
use super::schedule::{BufId, Region, Step};
use super::{CollCtx, CollError, RawBuf, Reducer};
use std::ptr::NonNull;
use std::rc::Rc;
use zerorank_transport::fabric::{OpError, RecvBufRef, ReqId, SendBuf, SendMode, Status};
use zerorank_transport::matching::Pattern;

/// The buffers of one call: the user's (raw) and the schedule's temporaries.
pub(crate) struct Bufs {
    send: Option<RawBuf>,
    recv: Option<RawBuf>,
    tmps: Vec<Box<[u8]>>,
}

impl Bufs {
    pub fn new(send: Option<RawBuf>, recv: Option<RawBuf>, sizes: &[usize]) -> Bufs {
        Bufs {
            send,
            recv,
            tmps: sizes
                .iter()
                .map(|&n| vec![0u8; n].into_boxed_slice())
                .collect(),
        }
    }

    /// The address of `r`, checked against its buffer.
    fn addr(&mut self, r: Region) -> *mut u8 {
        if r.len == 0 {
            return NonNull::dangling().as_ptr();
        }
        let (base, len) = match r.buf {
            BufId::Send => self.send.map(|b| (b.ptr, b.len)),
            BufId::Recv => self.recv.map(|b| (b.ptr, b.len)),
            BufId::Tmp(i) => self
                .tmps
                .get_mut(i as usize)
                .map(|t| (t.as_mut_ptr(), t.len())),
        }
        .unwrap_or_else(|| panic!("schedule refers to {:?}, which this call has not", r.buf));
        assert!(
            r.off <= len && r.len <= len - r.off,
            "region {r:?} outside its {len}-byte buffer"
        );
        // SAFETY: `off + len` is within the buffer (checked above), which is valid: a
        // temporary we own, or a user buffer `RawBuf::new` vouches for.
        unsafe { base.add(r.off) }
    }

    /// `r` for a send that completes before the round ends.
    fn send_buf(&mut self, r: Region) -> SendBuf {
        // SAFETY: the region is valid (see `addr`) and nothing writes it until the round's
        // requests have completed (a round never writes what it sends), or until the
        // request is handed to the fabric with the temporaries (`abandon`).
        unsafe { SendBuf::new(self.addr(r), r.len) }
    }

    /// `r` for a receive that completes before the round ends.
    fn recv_buf(&mut self, r: Region) -> RecvBufRef {
        debug_assert!(r.buf != BufId::Send);
        // SAFETY: as for `send_buf`; no step of the round touches a region it receives into
        // and the round's receive regions are disjoint.
        unsafe { RecvBufRef::new(self.addr(r), r.len) }
    }

    /// The bytes of `r`.
    pub fn bytes(&mut self, r: Region) -> &[u8] {
        let p = self.addr(r);
        // SAFETY: valid region (see `addr`), borrowed with `self`.
        unsafe { std::slice::from_raw_parts(p, r.len) }
    }

    /// The bytes of `r`, writable.
    pub fn bytes_mut(&mut self, r: Region) -> &mut [u8] {
        assert!(r.buf != BufId::Send, "write into the send buffer");
        let p = self.addr(r);
        // SAFETY: valid region (see `addr`), borrowed mutably with `self`; the send buffer
        // (which may be read-only) is never written.
        unsafe { std::slice::from_raw_parts_mut(p, r.len) }
    }

    /// Run a local step; `Some` when it ends the call (a [`Step::Verdict`] of ranks that
    /// disagree).
    pub fn local(&mut self, step: &Step, op: Option<&dyn Reducer>) -> Option<CollError> {
        match *step {
            Step::Copy { src, dst } => {
                assert!(src.len == dst.len && !src.overlaps(&dst) && dst.buf != BufId::Send);
                let (s, d) = (self.addr(src), self.addr(dst));
                // SAFETY: both regions are valid (see `addr`) and disjoint: the same buffer
                // at non-overlapping ranges (checked), or distinct allocations (the planner
                // rejects overlapping user buffers).
                let (s, d) = unsafe {
                    (
                        std::slice::from_raw_parts(s, src.len),
                        std::slice::from_raw_parts_mut(d, dst.len),
                    )
                };
                // Not memcpy: its `rep movsb` is slow on this VM even for local data
                // (benches/benches/copy.rs: 4 KiB 2.2 us against 0.1 us).
                zerorank_transport::shm::copy::copy(d, s);
            }
            Step::Reduce { input, inout } => {
                assert!(
                    input.len == inout.len && !input.overlaps(&inout) && inout.buf != BufId::Send
                );
                let op = op.expect("a reduction step needs an op");
                debug_assert_eq!(input.len % op.elem_size(), 0);
                let (i, o) = (self.addr(input), self.addr(inout));
                // SAFETY: valid and disjoint, as for `Copy`.
                let (a, b) = unsafe {
                    (
                        std::slice::from_raw_parts(i, input.len),
                        std::slice::from_raw_parts_mut(o, inout.len),
                    )
                };
                op.reduce(a, b);
            }
            Step::Vote { word, .. } | Step::Verdict { word, .. } => {
                assert!(word.buf != BufId::Send);
                return agreement::local(step, self.bytes_mut(word), &[]);
            }
            Step::Combine { input, inout } => {
                assert!(
                    input.len == inout.len && !input.overlaps(&inout) && inout.buf != BufId::Send
                );
                let (i, o) = (self.addr(input), self.addr(inout));
                // SAFETY: valid and disjoint, as for `Copy`.
                let (a, b) = unsafe {
                    (
                        std::slice::from_raw_parts(i, input.len),
                        std::slice::from_raw_parts_mut(o, inout.len),
                    )
                };
                return agreement::local(step, b, a);
            }
            Step::Send { .. } | Step::Recv { .. } | Step::End => {
                unreachable!("not a local step")
            }
        }
        None
    }
}

fn transport(peer: u32, world: u32, source: OpError) -> CollError {
    CollError::Transport {
        peer,
        world,
        source,
    }
}

/// A posted transfer.
#[derive(Clone, Copy)]
struct Pending {
    id: ReqId,
    peer: u32,
    /// Bytes a receive must get; `None` for a send.
    expect: Option<usize>,
}

/// One call's schedule being run.
pub(crate) struct Exec {
    ctx: CollCtx,
    steps: Vec<Step>,
    bufs: Bufs,
    op: Option<Rc<dyn Reducer>>,
    /// First step of the current round.
    pos: usize,
    /// The current round's transfers are posted; these are not complete yet.
    posted: bool,
    pending: Vec<Pending>,
    failed: bool,
    /// The first receive that got another size than the schedule expects (the ranks
    /// disagree on the counts): reported once the schedule has run to its end. Stopping at
    /// once would leave the ranks whose messages this rank forwards waiting for them.
    mismatch: Option<CollError>,
}

impl Exec {
    pub fn new(ctx: CollCtx, p: Planned) -> Result<Exec, CollError> {
        Ok(Exec {
            bufs: Bufs::new(p.send, p.recv, &p.sched.tmps),
            steps: p.sched.steps,
            op: p.op,
            ctx,
            pos: 0,
            posted: false,
            pending: Vec::new(),
            failed: false,
            mismatch: None,
        })
    }

    /// The current round: (end of its transfers, index of its `End`).
    fn round(&self) -> (usize, usize) {
        let mut i = self.pos;
        while self.steps[i].is_comm() {
            i += 1;
        }
        let ce = i;
        while self.steps[i] != Step::End {
            debug_assert!(!self.steps[i].is_comm(), "a transfer after a local step");
            i += 1;
        }
        (ce, i)
    }

    fn world(&self, peer: u32) -> u32 {
        self.ctx.ranks[peer as usize]
    }

    fn pattern(&self, peer: u32) -> Pattern {
        Pattern {
            comm: self.ctx.context,
            src: Some(self.world(peer)),
            tag: Some(self.ctx.tag),
        }
    }

    /// Check a completed transfer with `peer`; `expect`: the bytes a receive must get. A
    /// transfer that failed ends the call; a receive of another size is recorded in
    /// `mismatch` (its bytes, cut to the region, are in place) and the schedule goes on.
    fn check(
        &mut self,
        peer: u32,
        expect: Option<usize>,
        r: Result<Status, OpError>,
    ) -> Result<(), CollError> {
        let st = r.map_err(|source| transport(peer, self.world(peer), source))?;
        if let Some(expected) = expect {
            debug_assert!(!st.cancelled);
            if st.sent != expected || st.len != expected {
                let e = CollError::Truncated {
                    peer,
                    expected,
                    got: st.sent,
                };
                if !self.ctx.finish_on_disagreement {
                    return Err(e);
                }
                self.mismatch.get_or_insert(e);
            }
        }
        Ok(())
    }

    /// The outcome of a schedule that ran to its end.
    fn outcome(&mut self) -> Result<(), CollError> {
        match self.mismatch.take() {
            Some(e) => {
                self.failed = true;
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Run the local steps of the current round and move to the next (or to the end,
    /// when the ranks' agreement says they disagree: every rank stops there alike).
    fn finish_round(&mut self, ce: usize, end: usize) {
        let op = self.op.as_deref();
        self.pos = end + 1;
        self.posted = false;
        for step in &self.steps[ce..end] {
            if let Some(e) = self.bufs.local(step, op) {
                debug_assert!(self.mismatch.is_none() && self.pending.is_empty());
                self.mismatch = Some(e);
                self.pos = self.steps.len();
                return;
            }
        }
    }

    /// Post the current round's transfers: receives first, then sends. With `blocking`, a
    /// round's only send goes out with `Fabric::send` (straight into the ring when small).
    fn post(&mut self, blocking: bool) -> Result<(), CollError> {
        let (ce, _) = self.round();
        let nsend = self.steps[self.pos..ce]
            .iter()
            .filter(|s| matches!(s, Step::Send { .. }))
            .count();
        for i in self.pos..ce {
            if let Step::Recv { peer, dst } = self.steps[i] {
                let pat = self.pattern(peer);
                let buf = self.bufs.recv_buf(dst);
                // SAFETY: the region stays valid and untouched until the request completes:
                // the round's local steps run only after it did, and a request still
                // pending when this call ends is handed to the fabric with the temporaries
                // (`abandon`).
                let id = unsafe { self.ctx.fabric.irecv(pat, buf) };
                self.pending.push(Pending {
                    id,
                    peer,
                    expect: Some(dst.len),
                });
            }
        }
        self.posted = true;
        for i in self.pos..ce {
            if let Step::Send { peer, src } = self.steps[i] {
                let (w, c, t) = (self.world(peer), self.ctx.context, self.ctx.tag);
                if blocking && nsend == 1 {
                    let bytes = self.bufs.bytes(src);
                    self.ctx
                        .fabric
                        .send(w, c, t, bytes, SendMode::Standard)
                        .map_err(|e| transport(peer, w, e))?;
                } else {
                    let buf = self.bufs.send_buf(src);
                    // SAFETY: as for the receives above.
                    let id = unsafe { self.ctx.fabric.isend(w, c, t, buf, SendMode::Standard) };
                    self.pending.push(Pending {
                        id,
                        peer,
                        expect: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// Wait for every pending transfer.
    fn wait_pending(&mut self) -> Result<(), CollError> {
        while let Some(p) = self.pending.pop() {
            let r = self.ctx.fabric.wait(p.id);
            self.check(p.peer, p.expect, r)?;
        }
        Ok(())
    }

    /// Run the current round to completion.
    fn blocking_round(&mut self) -> Result<(), CollError> {
        let (ce, end) = self.round();
        if !self.posted && ce == self.pos + 1 {
            // A single transfer: the fabric's blocking calls, no request bookkeeping.
            match self.steps[self.pos] {
                Step::Send { peer, src } => {
                    let (w, c, t) = (self.world(peer), self.ctx.context, self.ctx.tag);
                    let bytes = self.bufs.bytes(src);
                    self.ctx
                        .fabric
                        .send(w, c, t, bytes, SendMode::Standard)
                        .map_err(|e| transport(peer, w, e))?;
                }
                Step::Recv { peer, dst } => {
                    let pat = self.pattern(peer);
                    let buf = self.bufs.bytes_mut(dst);
                    let r = self.ctx.fabric.recv(pat, buf);
                    self.check(peer, Some(dst.len), r)?;
                }
                _ => unreachable!("a transfer"),
            }
        } else if ce > self.pos {
            if !self.posted {
                self.post(true)?;
            }
            self.wait_pending()?;
        }
        self.finish_round(ce, end);
        Ok(())
    }

    /// Run every remaining round.
    pub fn run(mut self) -> Result<(), CollError> {
        self.run_rest()
    }

    fn run_rest(&mut self) -> Result<(), CollError> {
        if self.failed {
            return Err(CollError::Failed);
        }
        while self.pos < self.steps.len() {
            if let Err(e) = self.blocking_round() {
                self.fail();
                return Err(e);
            }
        }
        self.outcome()
    }

    /// Make progress without blocking; true once complete.
    fn test(&mut self) -> Result<bool, CollError> {
        if self.failed {
            return Err(CollError::Failed);
        }
        match self.test_inner() {
            Ok(done) => Ok(done),
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    fn test_inner(&mut self) -> Result<bool, CollError> {
        loop {
            if !self.posted {
                if self.pos >= self.steps.len() {
                    return self.outcome().map(|()| true);
                }
                self.post(false)?;
            }
            let mut i = 0;
            while i < self.pending.len() {
                match self.ctx.fabric.test(self.pending[i].id) {
                    None => i += 1,
                    Some(r) => {
                        let p = self.pending.swap_remove(i);
                        self.check(p.peer, p.expect, r)?;
                    }
                }
            }
            if !self.pending.is_empty() {
                return Ok(false);
            }
            let (ce, end) = self.round();
            self.finish_round(ce, end);
        }
    }

    /// After an error: cancel what can be cancelled and leave the rest (with the buffers
    /// it uses) to the fabric.
    fn fail(&mut self) {
        self.failed = true;
        self.abandon();
    }

    fn abandon(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let fabric = self.ctx.fabric.clone();
        let keep = Rc::new(std::mem::take(&mut self.bufs.tmps));
        for p in self.pending.drain(..) {
            if p.expect.is_some() && fabric.cancel(p.id) {
                let _ = fabric.test(p.id);
            } else {
                fabric.adopt(p.id, Box::new(keep.clone()));
            }
        }
    }
}

impl Drop for Exec {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// A non-blocking collective in progress.
///
/// Dropping it before completion leaves its posted transfers to the fabric (the user
/// buffers must then stay valid until they complete) and the other ranks of the collective
/// may never complete theirs.
pub struct CollRequest {
    exec: Exec,
}

impl CollRequest {
    pub(crate) fn new(exec: Exec) -> CollRequest {
        CollRequest { exec }
    }

    /// Make progress; `Ok(true)` once the collective has completed on this rank.
    pub fn test(&mut self) -> Result<bool, CollError> {
        self.exec.test()
    }

    /// Wait until the collective has completed on this rank.
    pub fn wait(mut self) -> Result<(), CollError> {
        self.wait_mut()
    }

    /// Wait until the collective has completed on this rank, keeping the request (for a
    /// caller that owns it in a table).
    pub fn wait_mut(&mut self) -> Result<(), CollError> {
        let e = &mut self.exec;
        if e.failed {
            return Err(CollError::Failed);
        }
        if e.posted {
            let (ce, end) = e.round();
            if let Err(err) = e.wait_pending() {
                e.fail();
                return Err(err);
            }
            e.finish_round(ce, end);
        }
        e.run_rest()
    }
}
