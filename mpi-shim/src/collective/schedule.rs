//! Schedules: rounds of transfers and local steps over the buffers of one collective call.

/// A buffer a schedule refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BufId {
    /// The user's send buffer (never written).
    Send,
    /// The user's receive buffer.
    Recv,
    /// A temporary the schedule owns (index into [`Schedule::tmps`]).
    Tmp(u32),
}

/// `len` bytes at `off` of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Region {
    pub buf: BufId,
    pub off: usize,
    pub len: usize,
}

impl Region {
    pub fn new(buf: BufId, off: usize, len: usize) -> Region {
        Region { buf, off, len }
    }

    /// `len` bytes at `off` within this region. An empty sub-region stands at the start of
    /// this one, wherever `off` points (MPI lets a zero count have any displacement).
    pub fn sub(self, off: usize, len: usize) -> Region {
        if len == 0 {
            return Region {
                buf: self.buf,
                off: self.off,
                len: 0,
            };
        }
        assert!(
            off.checked_add(len).is_some_and(|end| end <= self.len),
            "sub-region {off}+{len} out of range of a {}-byte region",
            self.len
        );
        Region {
            buf: self.buf,
            off: self.off + off,
            len,
        }
    }

    /// Do the two regions share a byte?
    pub fn overlaps(&self, o: &Region) -> bool {
        self.buf == o.buf
            && self.len > 0
            && o.len > 0
            && self.off < o.off + o.len
            && o.off < self.off + self.len
    }
}

/// One step of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send `src` to communicator rank `peer`.
    Send { peer: u32, src: Region },
    /// Receive exactly `dst.len` bytes from `peer` into `dst`.
    Recv { peer: u32, dst: Region },
    /// `inout = input (op) inout`; `input` is the lower ranks' operand.
    Reduce { input: Region, inout: Region },
    /// `dst = src`.
    Copy { src: Region, dst: Region },
    /// `word` = the agreement vote of rank `me` on `digest` (`agreement`).
    Vote { word: Region, digest: u64, me: u32 },
    /// `inout` = the combination of the agreement words `input` and `inout`.
    Combine { input: Region, inout: Region },
    /// End the call here, on every rank alike, unless the agreement word `word` says that
    /// all ranks voted `digest` and none refused.
    Verdict { word: Region, digest: u64 },
    /// End of a round.
    End,
}

impl Step {
    pub fn is_comm(&self) -> bool {
        matches!(self, Step::Send { .. } | Step::Recv { .. })
    }
}

/// The steps of one rank for one collective call. Rounds are separated by [`Step::End`];
/// within a round all transfers come before all local steps.
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    pub steps: Vec<Step>,
    /// Sizes of the temporaries.
    pub tmps: Vec<usize>,
}

/// Builds a [`Schedule`] in program order: a transfer after a local step starts a new
/// round; [`Sched::end_round`] separates transfers that depend on each other.
#[derive(Debug)]
pub(crate) struct Sched {
    s: Schedule,
    /// The current round has a step.
    open: bool,
    /// The current round has a local step.
    has_local: bool,
}

impl Sched {
    pub fn new() -> Sched {
        Sched {
            s: Schedule {
                steps: Vec::with_capacity(8),
                tmps: Vec::new(),
            },
            open: false,
            has_local: false,
        }
    }

    /// A new temporary of `len` bytes.
    pub fn tmp(&mut self, len: usize) -> Region {
        self.s.tmps.push(len);
        Region::new(BufId::Tmp(self.s.tmps.len() as u32 - 1), 0, len)
    }

    fn push_comm(&mut self, step: Step) {
        if self.has_local {
            self.end_round();
        }
        self.s.steps.push(step);
        self.open = true;
    }

    fn push_local(&mut self, step: Step) {
        self.s.steps.push(step);
        self.open = true;
        self.has_local = true;
    }

    /// Send `src` to `peer` (nothing when `src` is empty).
    pub fn send(&mut self, peer: u32, src: Region) {
        if src.len > 0 {
            self.push_comm(Step::Send { peer, src });
        }
    }

    /// Receive `dst.len` bytes from `peer` into `dst` (nothing when `dst` is empty).
    pub fn recv(&mut self, peer: u32, dst: Region) {
        if dst.len > 0 {
            debug_assert!(dst.buf != BufId::Send, "receive into the send buffer");
            self.push_comm(Step::Recv { peer, dst });
        }
    }

    /// Send an empty message (a synchronisation).
    pub fn send_empty(&mut self, peer: u32) {
        self.push_comm(Step::Send {
            peer,
            src: Region::new(BufId::Recv, 0, 0),
        });
    }

    /// Receive an empty message.
    pub fn recv_empty(&mut self, peer: u32) {
        self.push_comm(Step::Recv {
            peer,
            dst: Region::new(BufId::Recv, 0, 0),
        });
    }

    /// `inout = input (op) inout`.
    pub fn reduce(&mut self, input: Region, inout: Region) {
        debug_assert_eq!(input.len, inout.len);
        debug_assert!(inout.buf != BufId::Send, "reduce into the send buffer");
        debug_assert!(!input.overlaps(&inout));
        if inout.len > 0 {
            self.push_local(Step::Reduce { input, inout });
        }
    }

    /// `dst = src` (nothing when they are the same region).
    pub fn copy(&mut self, src: Region, dst: Region) {
        debug_assert_eq!(src.len, dst.len);
        debug_assert!(dst.buf != BufId::Send, "copy into the send buffer");
        if dst.len > 0 && src != dst {
            debug_assert!(!src.overlaps(&dst));
            self.push_local(Step::Copy { src, dst });
        }
    }

    /// `word` = this rank's agreement vote on `digest`.
    pub fn vote(&mut self, word: Region, digest: u64, me: u32) {
        self.push_local(Step::Vote { word, digest, me });
    }

    /// `inout` = the combination of the agreement words `input` and `inout`.
    pub fn combine(&mut self, input: Region, inout: Region) {
        debug_assert!(!input.overlaps(&inout));
        self.push_local(Step::Combine { input, inout });
    }

    /// Stop here unless every rank voted `digest` (see [`Step::Verdict`]).
    pub fn verdict(&mut self, word: Region, digest: u64) {
        self.push_local(Step::Verdict { word, digest });
    }

    /// Close the current round (if it has a step).
    pub fn end_round(&mut self) {
        if self.open {
            self.s.steps.push(Step::End);
        }
        self.open = false;
        self.has_local = false;
    }

    pub fn finish(mut self) -> Schedule {
        self.end_round();
        self.s
    }
}
