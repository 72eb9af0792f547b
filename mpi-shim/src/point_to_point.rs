//! Sending and receiving between two ranks.

use crate::communicator::{Communicator, Rank, Tag};
use crate::datatype::{bytes_of_mut, zeroed, zeroed_vec, Buffer, BufferMut, Equivalence};
use crate::error::{Error, Result};
use crate::request::{Request, Scope};
use std::any::Any;
use std::rc::Rc;
use zerorank_transport::fabric::{self, Fabric, OpError, RecvBufRef, ReqId, SendBuf, SendMode};
use zerorank_transport::matching::Pattern;

/// What a receive reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    source: Rank,
    tag: Tag,
    bytes: usize,
    cancelled: bool,
}

impl Status {
    /// The sender.
    pub fn source_rank(&self) -> Rank {
        self.source
    }
    /// The tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }
    /// Bytes received.
    pub fn count_bytes(&self) -> usize {
        self.bytes
    }
    /// Whole elements of `T` received.
    pub fn count<T: Equivalence>(&self) -> usize {
        self.bytes / std::mem::size_of::<T>().max(1)
    }
    /// The receive was cancelled before a message matched it.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }
}

/// The rank in `comm` of the process of world rank `world` (-1 if none, as for a
/// cancelled wildcard receive).
fn comm_rank(comm: &Communicator, world: u32) -> Rank {
    comm.rank_of_world(world).unwrap_or(-1)
}

/// A transport status as a status of `comm` (source as a rank of `comm`), or the error.
pub(crate) fn convert(
    comm: &Communicator,
    r: std::result::Result<fabric::Status, OpError>,
) -> Result<Status> {
    let s = r?;
    let status = Status {
        source: comm_rank(comm, s.source),
        tag: s.tag,
        bytes: s.len,
        cancelled: s.cancelled,
    };
    if s.truncated() {
        return Err(Error::Truncated {
            status,
            sent: s.sent,
            capacity: s.len,
        });
    }
    Ok(status)
}

fn check_tag(tag: Tag) -> Result<()> {
    if (0..=crate::TAG_UB).contains(&tag) {
        Ok(())
    } else {
        Err(Error::InvalidTag(tag))
    }
}

/// A receive source: a specific process or any process.
pub trait Source {
    /// The communicator.
    fn communicator(&self) -> &Communicator;
    /// The source's rank in the communicator; `None` for any source.
    fn source_rank(&self) -> Option<u32>;

    /// The pattern a receive from this source with `tag` (`None` = any) matches. A
    /// wildcard matches only members of the communicator: its context is its own.
    fn pattern(&self, tag: Option<Tag>) -> Result<Pattern> {
        if let Some(t) = tag {
            check_tag(t)?;
        }
        let comm = self.communicator();
        let src = match self.source_rank() {
            None => None,
            Some(r) => Some(comm.world_rank(r as Rank).ok_or(Error::InvalidRank {
                rank: r as Rank,
                size: comm.size(),
            })?),
        };
        Ok(Pattern {
            comm: comm.context(),
            src,
            tag,
        })
    }

    /// Receive into `buf`, any tag.
    fn receive_into<B: BufferMut + ?Sized>(&self, buf: &mut B) -> Result<Status> {
        receive_into_pattern(self.communicator(), self.pattern(None)?, buf)
    }

    /// Receive into `buf` a message with `tag`.
    fn receive_into_with_tag<B: BufferMut + ?Sized>(
        &self,
        buf: &mut B,
        tag: Tag,
    ) -> Result<Status> {
        receive_into_pattern(self.communicator(), self.pattern(Some(tag))?, buf)
    }

    /// Receive one value, any tag.
    fn receive<T: Equivalence>(&self) -> Result<(T, Status)> {
        receive_value(self.communicator(), self.pattern(None)?)
    }

    /// Receive one value with `tag`.
    fn receive_with_tag<T: Equivalence>(&self, tag: Tag) -> Result<(T, Status)> {
        receive_value(self.communicator(), self.pattern(Some(tag))?)
    }

    /// Receive a message of any length as a vector, any tag.
    fn receive_vec<T: Equivalence>(&self) -> Result<(Vec<T>, Status)> {
        receive_vec_pattern(self.communicator(), self.pattern(None)?)
    }

    /// Receive a message of any length with `tag` as a vector.
    fn receive_vec_with_tag<T: Equivalence>(&self, tag: Tag) -> Result<(Vec<T>, Status)> {
        receive_vec_pattern(self.communicator(), self.pattern(Some(tag))?)
    }

    /// Wait until a message from this source is available; its status (length included).
    fn probe(&self) -> Result<Status> {
        probe_pattern(self.communicator(), self.pattern(None)?)
    }

    /// Wait until a message with `tag` is available.
    fn probe_with_tag(&self, tag: Tag) -> Result<Status> {
        probe_pattern(self.communicator(), self.pattern(Some(tag))?)
    }

    /// Is a message available now?
    fn immediate_probe(&self) -> Result<Option<Status>> {
        let pat = self.pattern(None)?;
        let comm = self.communicator();
        Ok(comm
            .fabric()
            .iprobe(&pat)?
            .map(|(e, n)| status_of(comm, e.src, e.tag, n)))
    }

    /// Is a message with `tag` available now?
    fn immediate_probe_with_tag(&self, tag: Tag) -> Result<Option<Status>> {
        let pat = self.pattern(Some(tag))?;
        let comm = self.communicator();
        Ok(comm
            .fabric()
            .iprobe(&pat)?
            .map(|(e, n)| status_of(comm, e.src, e.tag, n)))
    }

    /// Start receiving into `buf` (any tag); the request lives in `scope`.
    fn immediate_receive_into<'a, 's, B: BufferMut + ?Sized>(
        &self,
        scope: &'s Scope<'a>,
        buf: &'a mut B,
    ) -> Result<Request<'a, 's>> {
        let pat = self.pattern(None)?;
        Ok(immediate_receive(self.communicator(), scope, pat, buf))
    }

    /// Start receiving into `buf` a message with `tag`.
    fn immediate_receive_into_with_tag<'a, 's, B: BufferMut + ?Sized>(
        &self,
        scope: &'s Scope<'a>,
        buf: &'a mut B,
        tag: Tag,
    ) -> Result<Request<'a, 's>> {
        let pat = self.pattern(Some(tag))?;
        Ok(immediate_receive(self.communicator(), scope, pat, buf))
    }

    /// Receive a message of any length inside the runtime (from `Universe::block_on`).
    #[allow(async_fn_in_trait)]
    async fn receive_vec_async<T: Equivalence>(&self) -> Result<(Vec<T>, Status)> {
        let comm = self.communicator();
        let pat = self.pattern(None)?;
        let fabric = comm.fabric_rc();
        let (env, n) = fabric.probe_async(&pat).await?;
        let exact = Pattern {
            comm: pat.comm,
            src: Some(env.src),
            tag: Some(env.tag),
        };
        let elem = std::mem::size_of::<T>().max(1);
        let mut v = zeroed_vec::<T>(n.div_ceil(elem));
        // SAFETY: the vector's heap block does not move when the vector moves into
        // `pending`, which keeps it until the request completes, or hands it to the fabric
        // if this future is dropped first.
        let id = unsafe { fabric.irecv(exact, RecvBufRef::from_slice(bytes_of_mut(&mut v))) };
        let mut pending = Pending {
            fabric: fabric.clone(),
            id: Some(id),
            keep: Some(Box::new(v)),
        };
        let r = fabric.wait_async(id).await;
        let mut v = pending.release::<Vec<T>>();
        let st = convert(comm, r)?;
        v.truncate(st.count_bytes() / elem);
        Ok((v, st))
    }
}

/// Keeps an owned buffer alive for an `async` operation whose future may be dropped.
struct Pending {
    fabric: Rc<Fabric>,
    id: Option<ReqId>,
    keep: Option<Box<dyn Any>>,
}

impl Pending {
    /// The request completed: give the buffer back.
    fn release<B: 'static>(&mut self) -> B {
        self.id = None;
        *self
            .keep
            .take()
            .expect("buffer kept")
            .downcast::<B>()
            .expect("same type")
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.fabric.cancel(id);
            self.fabric
                .adopt(id, self.keep.take().unwrap_or_else(|| Box::new(())));
        }
    }
}

fn status_of(comm: &Communicator, src: u32, tag: Tag, bytes: usize) -> Status {
    Status {
        source: comm_rank(comm, src),
        tag,
        bytes,
        cancelled: false,
    }
}

fn receive_into_pattern<B: BufferMut + ?Sized>(
    comm: &Communicator,
    pat: Pattern,
    buf: &mut B,
) -> Result<Status> {
    convert(comm, comm.fabric().recv(pat, buf.as_bytes_mut()))
}

fn receive_value<T: Equivalence>(comm: &Communicator, pat: Pattern) -> Result<(T, Status)> {
    let mut v: T = zeroed();
    let st = receive_into_pattern(comm, pat, &mut v)?;
    let size = std::mem::size_of::<T>();
    if st.count_bytes() != size {
        return Err(Error::Count {
            expected: size,
            got: st.count_bytes(),
            element: size,
        });
    }
    Ok((v, st))
}

fn receive_vec_pattern<T: Equivalence>(
    comm: &Communicator,
    pat: Pattern,
) -> Result<(Vec<T>, Status)> {
    let (env, n) = comm.fabric().probe(&pat)?;
    let elem = std::mem::size_of::<T>().max(1);
    if n % elem != 0 {
        return Err(Error::Count {
            expected: n.next_multiple_of(elem),
            got: n,
            element: elem,
        });
    }
    let mut v = zeroed_vec::<T>(n / elem);
    // The probed message is the first one this exact pattern matches: one thread per rank,
    // and one sender's messages never overtake each other.
    let exact = Pattern {
        comm: pat.comm,
        src: Some(env.src),
        tag: Some(env.tag),
    };
    let st = receive_into_pattern(comm, exact, &mut v[..])?;
    Ok((v, st))
}

fn probe_pattern(comm: &Communicator, pat: Pattern) -> Result<Status> {
    let (e, n) = comm.fabric().probe(&pat)?;
    Ok(status_of(comm, e.src, e.tag, n))
}

fn immediate_receive<'a, 's, B: BufferMut + ?Sized>(
    comm: &Communicator,
    scope: &'s Scope<'a>,
    pat: Pattern,
    buf: &'a mut B,
) -> Request<'a, 's> {
    // SAFETY: `buf` is borrowed for `'a`, which outlives the scope, and the scope waits for
    // the request before it ends.
    let id = unsafe {
        comm.fabric()
            .irecv(pat, RecvBufRef::from_slice(buf.as_bytes_mut()))
    };
    Request::new(comm, id, scope)
}

/// One rank of a communicator, as a destination or a source.
#[derive(Clone, Copy)]
pub struct Process<'c> {
    comm: &'c Communicator,
    /// Rank in `comm`.
    rank: u32,
    /// World rank (what the transport addresses).
    world: u32,
}

impl<'c> Process<'c> {
    pub(crate) fn new(comm: &'c Communicator, rank: u32, world: u32) -> Self {
        Process { comm, rank, world }
    }

    /// Its rank in the communicator.
    pub fn rank(&self) -> Rank {
        self.rank as Rank
    }

    /// Its world rank.
    pub fn world_rank(&self) -> u32 {
        self.world
    }

    /// The communicator, with the lifetime of the process handle.
    pub(crate) fn communicator_ref(&self) -> &'c Communicator {
        self.comm
    }

    /// Send `buf` with tag 0; returns once `buf` may be reused.
    pub fn send<B: Buffer + ?Sized>(&self, buf: &B) -> Result<()> {
        self.send_with_tag(buf, 0)
    }

    /// Send `buf` with `tag`.
    pub fn send_with_tag<B: Buffer + ?Sized>(&self, buf: &B, tag: Tag) -> Result<()> {
        self.send_mode(buf, tag, SendMode::Standard)
    }

    /// Send `buf` and return only once the receiver has matched it.
    pub fn synchronous_send<B: Buffer + ?Sized>(&self, buf: &B) -> Result<()> {
        self.synchronous_send_with_tag(buf, 0)
    }

    /// Synchronous send with `tag`.
    pub fn synchronous_send_with_tag<B: Buffer + ?Sized>(&self, buf: &B, tag: Tag) -> Result<()> {
        self.send_mode(buf, tag, SendMode::Synchronous)
    }

    fn send_mode<B: Buffer + ?Sized>(&self, buf: &B, tag: Tag, mode: SendMode) -> Result<()> {
        check_tag(tag)?;
        self.comm
            .fabric()
            .send(self.world, self.comm.context(), tag, buf.as_bytes(), mode)?;
        Ok(())
    }

    /// Start sending `buf` with tag 0; the request lives in `scope`.
    pub fn immediate_send<'a, 's, B: Buffer + ?Sized>(
        &self,
        scope: &'s Scope<'a>,
        buf: &'a B,
    ) -> Result<Request<'a, 's>> {
        self.immediate_send_with_tag(scope, buf, 0)
    }

    /// Start sending `buf` with `tag`.
    pub fn immediate_send_with_tag<'a, 's, B: Buffer + ?Sized>(
        &self,
        scope: &'s Scope<'a>,
        buf: &'a B,
        tag: Tag,
    ) -> Result<Request<'a, 's>> {
        self.immediate_send_mode(scope, buf, tag, SendMode::Standard)
    }

    /// Start a synchronous send.
    pub fn immediate_synchronous_send<'a, 's, B: Buffer + ?Sized>(
        &self,
        scope: &'s Scope<'a>,
        buf: &'a B,
        tag: Tag,
    ) -> Result<Request<'a, 's>> {
        self.immediate_send_mode(scope, buf, tag, SendMode::Synchronous)
    }

    fn immediate_send_mode<'a, 's, B: Buffer + ?Sized>(
        &self,
        scope: &'s Scope<'a>,
        buf: &'a B,
        tag: Tag,
        mode: SendMode,
    ) -> Result<Request<'a, 's>> {
        check_tag(tag)?;
        // SAFETY: `buf` is borrowed for `'a`, which outlives the scope, and the scope waits
        // for the request before it ends.
        let id = unsafe {
            self.comm.fabric().isend(
                self.world,
                self.comm.context(),
                tag,
                SendBuf::from_slice(buf.as_bytes()),
                mode,
            )
        };
        Ok(Request::new(self.comm, id, scope))
    }

    /// Send an owned vector from `async` code inside the runtime; gives the vector back.
    pub async fn send_async<T: Equivalence>(&self, data: Vec<T>, tag: Tag) -> Result<Vec<T>> {
        check_tag(tag)?;
        // SAFETY: the vector's heap block does not move when the vector moves into
        // `pending`, which keeps it until the request completes, or hands it to the fabric
        // if this future is dropped first.
        let id = unsafe {
            let bytes = SendBuf::from_slice(crate::datatype::bytes_of(&data));
            self.comm.fabric().isend(
                self.world,
                self.comm.context(),
                tag,
                bytes,
                SendMode::Standard,
            )
        };
        let fabric = self.comm.fabric_rc();
        let mut pending = Pending {
            fabric: fabric.clone(),
            id: Some(id),
            keep: Some(Box::new(data)),
        };
        let r = fabric.wait_async(id).await;
        let data = pending.release::<Vec<T>>();
        convert(self.comm, r)?;
        Ok(data)
    }
}

impl Source for Process<'_> {
    fn communicator(&self) -> &Communicator {
        self.comm
    }
    fn source_rank(&self) -> Option<u32> {
        Some(self.rank)
    }
}

/// Any rank of a communicator, as a receive source.
#[derive(Clone, Copy)]
pub struct AnyProcess<'c> {
    comm: &'c Communicator,
}

impl<'c> AnyProcess<'c> {
    pub(crate) fn new(comm: &'c Communicator) -> Self {
        AnyProcess { comm }
    }
}

impl Source for AnyProcess<'_> {
    fn communicator(&self) -> &Communicator {
        self.comm
    }
    fn source_rank(&self) -> Option<u32> {
        None
    }
}
