//! The layout of a datatype: where the bytes of one element lie, its bounds, and the
//! sequence of basic elements it holds. Pure arithmetic, no memory is touched here.
//!
//! A layout is the flattened type map of one element: contiguous blocks `(offset, len)`
//! in type-map order (the order data is packed in), adjacent blocks merged; the lower and
//! upper bound (`extent = ub - lb`) and the true bounds (first and last data byte); and
//! the type signature as runs of predefined types, which gives `MPI_Get_elements` and the
//! element kind of reductions.

use super::builtin::{Basic, BASICS};
use crate::abi::{MPI_ERR_ARG, MPI_ERR_INTERN};
use crate::error::MpiError;
use zerorank::op::Elem;

/// Most blocks (and signature runs) one datatype may have. A type map this long takes
/// 256 MiB; beyond it a constructor fails instead of exhausting memory.
pub(crate) const MAX_BLOCKS: usize = 1 << 24;

/// A contiguous piece of an element's data: `len` bytes at `off` from the element start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    pub off: isize,
    pub len: usize,
}

/// The layout of one element of a datatype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bytes of data (`MPI_Type_size`).
    pub size: usize,
    /// Lower and upper bound: element `i` of a buffer starts at `base + i * extent`.
    pub lb: isize,
    pub ub: isize,
    /// First data byte and one past the last (the true lower / upper bound).
    pub true_lb: isize,
    pub true_ub: isize,
    /// Largest alignment of the predefined types inside (pads the extent of structs).
    pub align: usize,
    /// The data, in type-map order, adjacent blocks merged, no empty block.
    pub blocks: Vec<Block>,
    /// The type signature: runs of (index into `BASICS`, count).
    pub sig: Vec<(u16, usize)>,
    /// Basic elements per element (`MPI_Get_elements` counts the parts of pairs).
    pub elems: usize,
    /// The one element kind of the whole signature, and how many per element, if the
    /// signature is a single kind repeated.
    pub basic: Option<(Elem, usize)>,
}

fn overflow() -> MpiError {
    MpiError::new(
        MPI_ERR_ARG,
        "datatype too large: its displacements or size overflow the address space",
    )
}

fn too_complex() -> MpiError {
    MpiError::new(
        MPI_ERR_INTERN,
        format!("datatype too complex: more than {MAX_BLOCKS} separate blocks"),
    )
}

impl Layout {
    /// The layout of predefined type `BASICS[index]`.
    pub fn of_basic(index: usize) -> Layout {
        let t: &Basic = &BASICS[index];
        let mut b = Builder::default();
        for &(off, len) in t.parts {
            b.push_block(off as isize, len);
        }
        let true_ub = t.parts.last().map_or(0, |p| (p.0 + p.1) as isize);
        Layout {
            size: t.size,
            lb: 0,
            ub: t.extent as isize,
            true_lb: 0,
            true_ub,
            align: t.align,
            blocks: b.blocks,
            sig: vec![(index as u16, 1)],
            elems: t.parts.len(),
            basic: t.elem.map(|e| (e, 1)),
        }
    }

    pub fn extent(&self) -> isize {
        self.ub - self.lb
    }

    /// Is the data of `count` elements exactly `[base + lb, base + lb + count * size)`?
    /// (One block per element, starting at the lower bound, as long as the extent.) Such
    /// data can be sent from and received into memory directly.
    pub fn is_contiguous(&self) -> bool {
        self.size == 0
            || (self.blocks.len() == 1
                && self.blocks[0].off == self.lb
                && self.size as isize == self.extent())
    }

    /// Offsets (from the buffer start) of the first and one past the last data byte of
    /// `count` elements (`(0, 0)` when there is no data).
    pub fn span(&self, count: usize) -> (isize, isize) {
        if count == 0 || self.size == 0 {
            return (0, 0);
        }
        let last = (count as isize - 1).saturating_mul(self.extent());
        (
            self.true_lb.min(last.saturating_add(self.true_lb)),
            self.true_ub.max(last.saturating_add(self.true_ub)),
        )
    }

    /// `MPI_Get_elements`: basic elements in `bytes` bytes of packed data of this type,
    /// or `None` (`MPI_UNDEFINED`) if the bytes end inside a basic element.
    pub fn elements(&self, bytes: usize) -> Option<usize> {
        if self.size == 0 {
            return (bytes == 0).then_some(0);
        }
        let mut n = (bytes / self.size).checked_mul(self.elems)?;
        let mut rem = bytes % self.size;
        for &(u, count) in &self.sig {
            if rem == 0 {
                break;
            }
            let t = &BASICS[u as usize];
            let whole = (rem / t.size).min(count);
            n += whole * t.parts.len();
            rem -= whole * t.size;
            if whole < count {
                // The bytes end inside this basic type: count its whole parts.
                for &(_, len) in t.parts {
                    if rem < len {
                        break;
                    }
                    n += 1;
                    rem -= len;
                }
                break;
            }
        }
        (rem == 0).then_some(n)
    }

    /// `MPI_Get_count`: whole elements in `bytes` bytes, or `None` (`MPI_UNDEFINED`).
    pub fn count(&self, bytes: usize) -> Option<usize> {
        match self.size {
            0 => (bytes == 0).then_some(0),
            s => bytes.is_multiple_of(s).then_some(bytes / s),
        }
    }

    // -----------------------------------------------------------------------------------
    // The constructors of MPI-3.1 §4.1.2. Displacements are in bytes here; the MPI
    // functions that take them in multiples of the old type's extent convert first.

    /// `MPI_Type_contiguous`.
    pub fn contiguous(count: usize, old: &Layout) -> Result<Layout, MpiError> {
        let mut b = Builder::default();
        b.place(old, 0, count)?;
        Ok(b.finish())
    }

    /// `MPI_Type_create_hvector` (`MPI_Type_vector` with `stride * extent`).
    pub fn hvector(
        count: usize,
        blocklen: usize,
        stride: isize,
        old: &Layout,
    ) -> Result<Layout, MpiError> {
        let mut b = Builder::default();
        for i in 0..count {
            let disp = (i as isize).checked_mul(stride).ok_or_else(overflow)?;
            b.place(old, disp, blocklen)?;
        }
        Ok(b.finish())
    }

    /// `MPI_Type_create_hindexed` (and indexed, indexed_block, hindexed_block): blocks of
    /// `(blocklen, byte displacement)`.
    pub fn hindexed(
        blocks: impl IntoIterator<Item = (usize, isize)>,
        old: &Layout,
    ) -> Result<Layout, MpiError> {
        let mut b = Builder::default();
        for (len, disp) in blocks {
            b.place(old, disp, len)?;
        }
        Ok(b.finish())
    }

    /// `MPI_Type_create_struct`: `(blocklen, byte displacement, type)` for each block.
    /// The extent is padded to a multiple of the largest alignment inside, as the C
    /// compiler pads the struct (MPI-3.1 §4.1.6).
    pub fn structure<'a>(
        blocks: impl IntoIterator<Item = (usize, isize, &'a Layout)>,
    ) -> Result<Layout, MpiError> {
        let mut b = Builder::default();
        for (len, disp, old) in blocks {
            b.place(old, disp, len)?;
        }
        let mut l = b.finish();
        let ext = l.extent();
        let align = l.align as isize;
        if align > 1 && ext.rem_euclid(align) != 0 {
            l.ub =
                l.ub.checked_add(align - ext.rem_euclid(align))
                    .ok_or_else(overflow)?;
        }
        Ok(l)
    }

    /// `MPI_Type_create_resized`.
    pub fn resized(old: &Layout, lb: isize, extent: isize) -> Result<Layout, MpiError> {
        let mut l = old.clone();
        l.lb = lb;
        l.ub = lb.checked_add(extent).ok_or_else(overflow)?;
        Ok(l)
    }
}

/// Widen `acc` to include `[lo, hi]`.
fn merge(acc: &mut Option<[isize; 2]>, [lo, hi]: [isize; 2]) {
    *acc = Some(match *acc {
        None => [lo, hi],
        Some([a, b]) => [a.min(lo), b.max(hi)],
    });
}

/// Accumulates the blocks, signature and bounds of a type under construction.
#[derive(Default)]
struct Builder {
    size: usize,
    bounds: Option<[isize; 2]>,
    true_bounds: Option<[isize; 2]>,
    align: usize,
    blocks: Vec<Block>,
    sig: Vec<(u16, usize)>,
    elems: usize,
}

impl Builder {
    fn push_block(&mut self, off: isize, len: usize) {
        if len == 0 {
            return;
        }
        if let Some(last) = self.blocks.last_mut() {
            if last.off.checked_add(last.len as isize) == Some(off) {
                last.len += len;
                return;
            }
        }
        self.blocks.push(Block { off, len });
    }

    fn push_run(&mut self, unit: u16, count: usize) {
        if count == 0 {
            return;
        }
        match self.sig.last_mut() {
            Some((u, c)) if *u == unit => *c += count,
            _ => self.sig.push((unit, count)),
        }
    }

    /// Append `n` consecutive elements of `old` (`old.extent()` apart) at `disp`.
    fn place(&mut self, old: &Layout, disp: isize, n: usize) -> Result<(), MpiError> {
        if n == 0 {
            return Ok(());
        }
        let ext = old.extent();
        let last = (n as isize - 1)
            .checked_mul(ext)
            .and_then(|x| x.checked_add(disp))
            .ok_or_else(overflow)?;
        let add = |a: isize, b: isize| a.checked_add(b).ok_or_else(overflow);
        let (lb0, lb1) = (add(disp, old.lb)?, add(last, old.lb)?);
        let (ub0, ub1) = (add(disp, old.ub)?, add(last, old.ub)?);
        let (tl0, tl1) = (add(disp, old.true_lb)?, add(last, old.true_lb)?);
        let (tu0, tu1) = (add(disp, old.true_ub)?, add(last, old.true_ub)?);
        merge(&mut self.bounds, [lb0.min(lb1), ub0.max(ub1)]);
        if old.size > 0 {
            // An old type without data has no true bounds to contribute.
            merge(&mut self.true_bounds, [tl0.min(tl1), tu0.max(tu1)]);
        }
        self.size = n
            .checked_mul(old.size)
            .and_then(|s| s.checked_add(self.size))
            .filter(|&s| s <= isize::MAX as usize)
            .ok_or_else(overflow)?;
        self.elems = self.elems.saturating_add(n.saturating_mul(old.elems));
        self.align = self.align.max(old.align);

        // Blocks: a dense old type (one block filling its extent) gives one block.
        match old.blocks.as_slice() {
            [] => {}
            [b] if b.len as isize == ext && ext > 0 => {
                self.push_block(
                    add(disp, b.off)?,
                    b.len.checked_mul(n).ok_or_else(overflow)?,
                );
            }
            blocks => {
                if self
                    .blocks
                    .len()
                    .saturating_add(n.saturating_mul(blocks.len()))
                    > MAX_BLOCKS
                {
                    return Err(too_complex());
                }
                for k in 0..n {
                    let start = disp + k as isize * ext; // bounded by `last` above
                    for b in blocks {
                        self.push_block(add(start, b.off)?, b.len);
                    }
                }
            }
        }
        // Signature: a single run repeats as one run.
        match old.sig.as_slice() {
            [] => {}
            [(u, c)] => self.push_run(*u, c.checked_mul(n).ok_or_else(overflow)?),
            runs => {
                if self.sig.len().saturating_add(n.saturating_mul(runs.len())) > MAX_BLOCKS {
                    return Err(too_complex());
                }
                for _ in 0..n {
                    for &(u, c) in runs {
                        self.push_run(u, c);
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Layout {
        let [lb, ub] = self.bounds.unwrap_or([0; 2]);
        let [true_lb, true_ub] = self.true_bounds.unwrap_or([0; 2]);
        let mut basic = None::<(Elem, usize)>;
        let mut uniform = !self.sig.is_empty();
        for &(u, c) in &self.sig {
            match (BASICS[u as usize].elem, basic) {
                (Some(e), None) => basic = Some((e, c)),
                (Some(e), Some((e0, n))) if e == e0 => basic = Some((e0, n + c)),
                _ => uniform = false,
            }
        }
        Layout {
            size: self.size,
            lb,
            ub,
            true_lb,
            true_ub,
            align: self.align.max(1),
            blocks: self.blocks,
            sig: self.sig,
            elems: self.elems,
            basic: basic.filter(|_| uniform),
        }
    }
}
