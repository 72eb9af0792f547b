//! Communicators: a group of ranks and a separate matching context.

use crate::datatype::{Buffer, BufferMut};
use crate::error::{Error, Result};
use crate::point_to_point::{AnyProcess, Process, Source, Status};
use std::rc::Rc;
use zerorank_transport::fabric::Fabric;

/// A rank number within a communicator.
pub type Rank = i32;
/// A message tag.
pub type Tag = i32;

/// A set of ranks that exchange messages in their own context.
#[derive(Clone)]
pub struct Communicator {
    pub(crate) fabric: Rc<Fabric>,
    pub(crate) context: u32,
}

impl Communicator {
    pub(crate) fn world(fabric: Rc<Fabric>) -> Self {
        Communicator { fabric, context: 0 }
    }

    /// This rank's number.
    pub fn rank(&self) -> Rank {
        self.fabric.rank() as Rank
    }

    /// Number of ranks.
    pub fn size(&self) -> Rank {
        self.fabric.size() as Rank
    }

    /// The process at `rank`, to send to or receive from.
    ///
    /// # Panics
    /// If `rank` is not in the communicator (use [`Communicator::checked_process_at_rank`]
    /// to get an error instead).
    pub fn process_at_rank(&self, rank: Rank) -> Process<'_> {
        self.checked_process_at_rank(rank)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The process at `rank`, or an error if there is none.
    pub fn checked_process_at_rank(&self, rank: Rank) -> Result<Process<'_>> {
        if rank < 0 || rank >= self.size() {
            return Err(Error::InvalidRank {
                rank,
                size: self.size(),
            });
        }
        Ok(Process::new(self, rank as u32))
    }

    /// A receive source that matches any rank.
    pub fn any_process(&self) -> AnyProcess<'_> {
        AnyProcess::new(self)
    }

    /// This rank as a process.
    pub fn this_process(&self) -> Process<'_> {
        Process::new(self, self.fabric.rank())
    }

    /// Send `send` to `dest` and receive from `source` into `recv`, without deadlock
    /// whatever order the peers call it in.
    pub fn sendrecv_into<S, R>(
        &self,
        send: &S,
        dest: Rank,
        send_tag: Tag,
        recv: &mut R,
        source: Rank,
        recv_tag: Tag,
    ) -> Result<Status>
    where
        S: Buffer + ?Sized,
        R: BufferMut + ?Sized,
    {
        let dest = self.checked_process_at_rank(dest)?;
        let source = self.checked_process_at_rank(source)?;
        crate::request::scope(|scope| {
            let r = source.immediate_receive_into_with_tag(scope, recv, recv_tag)?;
            let s = dest.immediate_send_with_tag(scope, send, send_tag)?;
            let status = r.wait()?;
            s.wait()?;
            Ok(status)
        })
    }

    /// The transport below (statistics, job info).
    pub fn fabric(&self) -> &Fabric {
        &self.fabric
    }
}
