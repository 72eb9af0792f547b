//! Direct reads: a rank publishes only where its bytes are (address and length, inline in
//! its slot, as a `Kind::Address` publication), and the readers copy them straight from
//! its memory into place with one kernel copy (`process_vm_readv`); the publisher returns
//! only once every reader has released the publication, since until then they may still
//! be reading its buffer. Used where the data is large and the publisher's buffer is
//! clean: broadcasts and allgather blocks from [`super::DIRECT_MIN`].
//!
//! Why, measured on this project's VM: its two vCPUs alternate, every few seconds,
//! between a state where a cache line goes from one core to the other and back in about
//! 100 ns and one where that takes 400-500 ns (the host moves them). A stream through
//! the slots pulls lines the publisher has just written, so its time follows that swing
//! (a 256 KiB broadcast at 2 ranks: 21-24 us in the fast state, 61-65 in the slow one),
//! while a kernel copy of the publisher's unchanged buffer hardly moves.

use super::super::{CollError, RawBuf, Reducer};
use super::choice::Way;
use super::Node;
use zerorank_transport::shm::collslot::{CollSlot, Kind, AREAS};

/// Bytes of the other ranks' operands the root of a large reduce reads per kernel copy
/// (`Node::reduce_from_addresses`; one buffer, reused for every rank). Measured at 2
/// ranks, 1 MiB, the way forced to direct, fast / slow state: 164 / 167 us reading it
/// whole, 171 / 182 in 256 KiB pieces (Open MPI: 165 / 167).
const REDUCE_WINDOW: usize = 4 << 20;

/// Bytes of an address publication: address and length.
const DESC: usize = 16;

/// The address and length in the address publication in `area` of `slot`. The length is
/// `None` when the publication is not an address and a length.
///
/// # Safety
/// As for `CollSlot::data`: `CollSlot::ready` gave `area` and this rank has not released
/// it.
pub(super) unsafe fn descriptor(slot: CollSlot, area: usize) -> (u64, Option<usize>) {
    if slot.published_len(area) != DESC {
        return (0, None);
    }
    // SAFETY: the caller's contract.
    let d = unsafe { slot.data(area, DESC) };
    let addr = u64::from_ne_bytes(d[..8].try_into().expect("8 bytes"));
    let len = u64::from_ne_bytes(d[8..].try_into().expect("8 bytes"));
    (addr, usize::try_from(len).ok())
}

/// This rank's direct publication, to be finished with [`Node::finish_direct`].
#[must_use = "the publisher must wait until its readers are done with its buffer"]
pub(super) struct Direct {
    area: usize,
}

impl Node {
    /// Publish where `len` bytes at `ptr` are, as chunk 0 of call `tag`, for `readers`
    /// readers, with shape word `shape` (a fold's, see `fold::shape`; else 0).
    pub(super) fn publish_direct(
        &self,
        tag: u32,
        ptr: *const u8,
        len: usize,
        readers: usize,
        shape: u64,
    ) -> Result<Direct, CollError> {
        let mut desc = [0u8; DESC];
        desc[..8].copy_from_slice(&(ptr as u64).to_ne_bytes());
        desc[8..].copy_from_slice(&(len as u64).to_ne_bytes());
        let area = self.publish_as(tag, 0, &[&desc], readers, Kind::Address, shape)?;
        Ok(Direct { area })
    }

    /// Wait until every reader of `d` has released it.
    pub(super) fn finish_direct(&self, d: Direct) -> Result<(), CollError> {
        self.wait_writable(d.area)
    }

    /// Copy `dst.len()` bytes at `addr` in rank `r`'s memory into `dst`.
    pub(super) fn read_peer(&self, r: usize, addr: u64, dst: &mut [u8]) -> Result<(), CollError> {
        let world = self.ranks[r];
        self.fabric
            .read_local_peer(world, addr, dst)
            .map_err(|source| CollError::Transport {
                peer: r as u32,
                world,
                source,
            })
    }

    /// The root of a broadcast above a slot: it streams it through its slot or lets the
    /// others read it from its buffer, whichever has lately been faster (see
    /// [`super::choice`]; without kernel copies it streams), and waits until every reader
    /// is done, to time the call. (The readers take what it published: `Node::read_one`.)
    pub(super) fn bcast_large(&self, tag: u32, buf: RawBuf) -> Result<(), CollError> {
        let n = self.n();
        let way = match self.direct {
            true => self.bcast_way.pick(buf.len()),
            false => Way::Stream,
        };
        let start = std::time::Instant::now();
        match way {
            Way::Direct => {
                let d = self.publish_direct(tag, buf.as_ptr(), buf.len(), n - 1, 0)?;
                self.finish_direct(d)?;
            }
            Way::Stream => {
                self.bcast_stream(tag, buf)?;
                self.wait_last_released()?;
            }
        }
        self.bcast_way.record(buf.len(), way, start.elapsed());
        Ok(())
    }

    /// Wait until the readers of this rank's last publication have released it.
    pub(super) fn wait_last_released(&self) -> Result<(), CollError> {
        let area = (self.fabric.coll_publisher().next().0 + AREAS - 1) % AREAS;
        self.wait_writable(area)
    }

    /// The root of a large reduce when every other rank published its operand by address:
    /// read each operand from its owner's memory a window at a time, the last rank's
    /// straight into the result, and fold the others into it, in the fold's order
    /// (`a0 op (a1 op (... op a(n-1)))`, element by element, so the bytes are those of
    /// `Node::fold`). `None` (nothing consumed) when some rank streamed its operand, its
    /// call's shape (`fold::shape`) differs from `shape`, or the operand is the result
    /// (in place): `Node::fold` then does it.
    pub(super) fn reduce_from_addresses(
        &self,
        tag: u32,
        input: RawBuf,
        recv: Option<RawBuf>,
        op: &dyn Reducer,
        shape: u64,
    ) -> Result<Option<Result<(), CollError>>, CollError> {
        let (n, me, len) = (self.n(), self.me(), input.len());
        let out = recv.expect("the root has a receive buffer (checked by the caller)");
        if out.as_ptr() == input.as_ptr() {
            return Ok(None);
        }
        let mut addrs = vec![(0u64, 0usize); n];
        for r in (0..n).filter(|&r| r != me) {
            let h = self.await_chunk(tag, r, 0)?;
            let slot = self.slots[r];
            if slot.published_kind(h) != Kind::Address
                || self.shape_at(r, h) & !super::fold::LAST != shape
            {
                return Ok(None);
            }
            // SAFETY: rank r published chunk 0 in `h` and this rank has not released it.
            match unsafe { descriptor(slot, h) } {
                (addr, Some(l)) if l == len => addrs[r] = (addr, h),
                _ => return Ok(None),
            }
        }
        let elem = op.elem_size().max(1);
        let window = (REDUCE_WINDOW / elem).max(1) * elem;
        // SAFETY: both buffers are valid for `len` bytes (RawBuf contract, sizes checked by
        // the caller), the output is ours alone and does not overlap the input (checked
        // above and by `Node::run`).
        let (own, acc_all) = unsafe {
            (
                std::slice::from_raw_parts(input.as_ptr(), len),
                std::slice::from_raw_parts_mut(out.as_ptr() as *mut u8, len),
            )
        };
        let mut bounce = Vec::new();
        let mut res = Ok(());
        let last = n - 1;
        'windows: for x in (0..len).step_by(window) {
            let y = (x + window).min(len);
            let acc = &mut acc_all[x..y];
            if last == me {
                zerorank_transport::shm::copy::copy_local(acc, &own[x..y]);
            } else if let Err(e) = self.read_peer(last, addrs[last].0 + x as u64, acc) {
                res = Err(e);
                break 'windows;
            }
            for r in (0..last).rev() {
                if r == me {
                    op.reduce(&own[x..y], acc);
                    continue;
                }
                bounce.resize(y - x, 0);
                if let Err(e) = self.read_peer(r, addrs[r].0 + x as u64, &mut bounce) {
                    res = Err(e);
                    break 'windows;
                }
                op.reduce(&bounce, acc);
            }
        }
        for r in (0..n).filter(|&r| r != me) {
            self.release(r, addrs[r].1, 1);
        }
        Ok(Some(res))
    }
}
