//! The collectives that move blocks without combining them: Gather(v), Scatter(v),
//! Allgather(v) of the sizes the fixed-block paths do not take, Alltoall(v), and
//! broadcasts above a slot. Each is at most one [exposure](super::exposure) per rank and
//! one read of each block a rank receives, in one [`Node::exchange`]:
//!
//! | collective | exposes | entries | readers |
//! |---|---|---|---|
//! | Gather(v) | every rank but the root, its block | 1 | the root |
//! | Scatter(v) | the root, every rank's block | n | the others |
//! | Allgather(v) | every rank, its block | 1 | the others |
//! | Alltoall(v) | every rank, each rank's block | n | the others |
//! | Bcast | the root, its buffer | 1 | the others |

use super::super::plan::{at_least, blocks_fit, check_root, exact, per_rank};
use super::super::{CollError, RawBuf};
use super::exposure::{Incoming, Outgoing};
use super::Node;

/// Where each rank's block is in a buffer of blocks: equal blocks in rank order, or
/// counts and displacements.
#[derive(Clone, Copy)]
pub(super) enum Layout<'a> {
    /// `block` bytes per rank, rank `j`'s at `j * block`.
    Equal(usize),
    /// `counts[j]` bytes at `displs[j]`.
    Var(&'a [usize], &'a [usize]),
}

impl Layout<'_> {
    /// Check that `buf` holds every block of the layout for `n` ranks. `equal` names the
    /// buffer for equal blocks ("Gather receive buffer"), `var` the collective and buffer
    /// for counts and displacements ("Gatherv", "Alltoallv send").
    fn check(
        &self,
        equal: &'static str,
        var: &str,
        buf: &RawBuf,
        n: usize,
    ) -> Result<(), CollError> {
        match self {
            Layout::Equal(b) => at_least(equal, buf, n * b),
            Layout::Var(c, d) => {
                per_rank(&format!("{var} counts"), c, n as u32)?;
                per_rank(&format!("{var} displacements"), d, n as u32)?;
                blocks_fit(var, c, d, buf.len())
            }
        }
    }

    fn count(&self, j: usize) -> usize {
        match self {
            Layout::Equal(b) => *b,
            Layout::Var(c, _) => c[j],
        }
    }

    fn displ(&self, j: usize) -> usize {
        match self {
            Layout::Equal(b) => j * b,
            Layout::Var(_, d) => d[j],
        }
    }
}

/// `len` bytes at `at` of `b`, as a slice to write.
///
/// # Safety
/// `len == 0` or `at + len <= b.len()` (checked by the caller's argument checks), and this rank alone
/// writes those bytes during the call.
unsafe fn part_mut(b: RawBuf, at: usize, len: usize) -> &'static mut [u8] {
    if len == 0 {
        return &mut [];
    }
    debug_assert!(at + len <= b.len());
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut((b.as_ptr() as *mut u8).add(at), len) }
}

/// `len` bytes at `at` of `b`, as a slice to read.
///
/// # Safety
/// `len == 0` or `at + len <= b.len()`.
unsafe fn part(b: RawBuf, at: usize, len: usize) -> &'static [u8] {
    if len == 0 {
        return &[];
    }
    debug_assert!(at + len <= b.len());
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(b.as_ptr().add(at), len) }
}

impl Node {
    /// Gather (`Layout::Equal`) or Gatherv (`Layout::Var`, the root's counts and
    /// displacements) to `root`.
    pub(super) fn gather(
        &self,
        tag: u32,
        root: u32,
        send: Option<RawBuf>,
        recv: Option<RawBuf>,
        layout: Layout,
    ) -> Result<(), CollError> {
        let n = self.n();
        check_root(root, n as u32)?;
        let (root, me) = (root as usize, self.me());
        if me != root {
            let s = send.ok_or(CollError::MissingBuffer(
                "Gather: MPI_IN_PLACE is only allowed at the root",
            ))?;
            if let Layout::Equal(b) = layout {
                exact("Gather send buffer", &s, b)?;
            }
            // SAFETY: the send buffer is valid for its length (RawBuf contract).
            let out = Outgoing::new(vec![unsafe { part(s, 0, s.len()) }], 1, me);
            return self.exchange(tag, 0, Some(out), &mut []).map(drop);
        }
        let r = recv.ok_or(CollError::MissingBuffer(
            "Gather: the root needs a receive buffer",
        ))?;
        layout.check("Gather receive buffer", "Gatherv", &r, n)?;
        if let Some(s) = send {
            exact("Gather send buffer", &s, layout.count(me))?;
            // SAFETY: checked sizes; the root's block of its receive buffer is its own.
            unsafe { copy_in(part_mut(r, layout.displ(me), s.len()), part(s, 0, s.len())) };
        }
        let mut inc = self.incoming(r, layout, true);
        self.exchange(tag, 0, None, &mut inc)?.map_or(Ok(()), Err)
    }

    /// Scatter (`Layout::Equal`) or Scatterv (`Layout::Var`, the root's counts and
    /// displacements) from `root`.
    pub(super) fn scatter(
        &self,
        tag: u32,
        root: u32,
        send: Option<RawBuf>,
        recv: Option<RawBuf>,
        layout: Layout,
    ) -> Result<(), CollError> {
        let n = self.n();
        check_root(root, n as u32)?;
        let (root, me) = (root as usize, self.me());
        if me != root {
            let r = recv.ok_or(CollError::MissingBuffer(
                "Scatter: MPI_IN_PLACE is only allowed at the root",
            ))?;
            if let Layout::Equal(b) = layout {
                exact("Scatter receive buffer", &r, b)?;
            }
            // SAFETY: the receive buffer is ours alone (RawBuf contract).
            let dst = unsafe { part_mut(r, 0, r.len()) };
            let mut inc = [Incoming::new(root, dst, n == 2)];
            return self.exchange(tag, 0, None, &mut inc)?.map_or(Ok(()), Err);
        }
        let s = send.ok_or(CollError::MissingBuffer(
            "Scatter: the root needs a send buffer",
        ))?;
        layout.check("Scatter send buffer", "Scatterv", &s, n)?;
        if let Some(r) = recv {
            exact("Scatter receive buffer", &r, layout.count(me))?;
            // SAFETY: checked sizes; the receive buffer is ours alone.
            unsafe { copy_in(part_mut(r, 0, r.len()), part(s, layout.displ(me), r.len())) };
        }
        let blocks = (0..n)
            .map(|j| match j == me {
                true => &[][..],
                // SAFETY: `blocks_fit`/`at_least` checked the block lies in `s`.
                false => unsafe { part(s, layout.displ(j), layout.count(j)) },
            })
            .collect();
        let out = Outgoing::new(blocks, n - 1, me);
        self.exchange(tag, 0, Some(out), &mut []).map(drop)
    }

    /// Allgather (`Layout::Equal`) or Allgatherv (`Layout::Var`); chunks `first..` of call
    /// `tag`.
    pub(super) fn allgather_blocks(
        &self,
        tag: u32,
        first: usize,
        send: Option<RawBuf>,
        recv: RawBuf,
        layout: Layout,
    ) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        layout.check("Allgather receive buffer", "Allgatherv", &recv, n)?;
        let (c, d) = (layout.count(me), layout.displ(me));
        let own = match send {
            Some(s) => {
                exact("Allgather send buffer", &s, c)?;
                // SAFETY: the send buffer is valid for its length.
                unsafe { part(s, 0, c) }
            }
            // SAFETY: checked above that this rank's block lies in `recv`; this rank never
            // writes it during the call (blocks of a receive buffer do not overlap).
            None => unsafe { part(recv, d, c) },
        };
        if let Some(s) = send {
            // SAFETY: checked sizes; this rank's block of the receive buffer is its own
            // and does not overlap the send buffer (checked by `Node::run`).
            unsafe { copy_in(part_mut(recv, d, c), part(s, 0, c)) };
        }
        let mut inc = self.incoming(recv, layout, n == 2);
        let out = Outgoing::new(vec![own], n - 1, me);
        self.exchange(tag, first, Some(out), &mut inc)?
            .map_or(Ok(()), Err)
    }

    /// Alltoall (`Layout::Equal` both ways) or Alltoallv. `send: None` is in place: the
    /// data is in `recv`, with its layout.
    pub(super) fn alltoall(
        &self,
        tag: u32,
        send: Option<(RawBuf, Layout)>,
        recv: RawBuf,
        rlayout: Layout,
    ) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        rlayout.check("Alltoall receive buffer", "Alltoallv receive", &recv, n)?;
        if let Some((s, sl)) = send {
            sl.check("Alltoall send buffer", "Alltoallv send", &s, n)?;
            if sl.count(me) != rlayout.count(me) {
                return Err(CollError::Truncated {
                    peer: me as u32,
                    expected: rlayout.count(me),
                    got: sl.count(me),
                });
            }
        }
        // In place, this rank receives into the buffer it sends from, possibly before its
        // whole stream is out: it sends from a copy.
        let copy: Option<Vec<u8>> = send.is_none().then(|| {
            // SAFETY: the receive buffer is valid for its length.
            unsafe { part(recv, 0, recv.len()) }.to_vec()
        });
        let (src, sl): (&[u8], Layout) = match (&copy, send) {
            (Some(c), _) => (c, rlayout),
            // SAFETY: the send buffer is valid for its length.
            (None, Some((s, sl))) => (unsafe { part(s, 0, s.len()) }, sl),
            (None, None) => unreachable!("a copy is made in place"),
        };
        // An empty block may have any displacement (`blocks_fit`).
        let block = |j: usize| match sl.count(j) {
            0 => &[][..],
            c => &src[sl.displ(j)..][..c],
        };
        let blocks = (0..n)
            .map(|j| if j == me { &[][..] } else { block(j) })
            .collect();
        if send.is_some() {
            let c = rlayout.count(me);
            // SAFETY: checked sizes; this rank's receive block is its own and does not
            // overlap the send buffer (checked by `Node::run`).
            unsafe { copy_in(part_mut(recv, rlayout.displ(me), c), block(me)) };
        }
        let mut inc = self.incoming(recv, rlayout, n == 2);
        let out = Outgoing::new(blocks, n - 1, me);
        let r = self.exchange(tag, 0, Some(out), &mut inc);
        drop(copy);
        r?.map_or(Ok(()), Err)
    }

    /// The root's part of a broadcast streamed through its slot, chunk by chunk (the
    /// readers read it as any publication: `Node::read_one`).
    pub(super) fn bcast_stream(&self, tag: u32, buf: RawBuf) -> Result<(), CollError> {
        let (n, me) = (self.n(), self.me());
        // SAFETY: the buffer is valid for its length and only read meanwhile.
        let out = Outgoing::new(vec![unsafe { part(buf, 0, buf.len()) }], n - 1, me);
        self.exchange(tag, 0, Some(out), &mut []).map(drop)
    }
}

impl Node {
    /// Reads of every other rank's block into its place in `recv` (`sole`: this rank is
    /// each publication's only reader).
    fn incoming<'a>(&self, recv: RawBuf, layout: Layout, sole: bool) -> Vec<Incoming<'a>> {
        (0..self.n())
            .filter(|&j| j != self.me())
            .map(|j| {
                // SAFETY: the caller checked the layout against `recv` (`Layout::check`);
                // blocks of a receive buffer do not overlap (MPI forbids it), and this
                // rank alone writes them during the call.
                let dst = unsafe { part_mut(recv, layout.displ(j), layout.count(j)) };
                Incoming::new(j, dst, sole)
            })
            .collect()
    }
}

/// This rank's own block, from its send buffer into its receive buffer (this process's
/// memory: `copy_local`).
fn copy_in(dst: &mut [u8], src: &[u8]) {
    zerorank_transport::shm::copy::copy_local(dst, src);
}
