//! Non-blocking operations and the scope that keeps their buffers alive.
//!
//! As in rsmpi, non-blocking operations live in a [`scope`]: a buffer lent to a request is
//! borrowed for the scope's lifetime, and the scope waits for every request not waited
//! for before it returns (even when unwinding from a panic, and even if a request was
//! leaked with `mem::forget`). So the borrow checker guarantees that no buffer is freed or
//! touched while the transport may still use it.
//!
//! Non-blocking collectives ([`CollectiveRequest`]) live in scopes too; the scope owns
//! their state, so they complete even if their handle is forgotten.

use crate::coll::CollRequest;
use crate::communicator::Communicator;
use crate::error::{Error, Result};
use crate::point_to_point::{convert, Status};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::rc::Rc;
use zerorank_transport::fabric::{Fabric, ReqId};

/// The region in which non-blocking requests may run. `'a` is the lifetime of the buffers
/// lent to them.
pub struct Scope<'a> {
    pending: RefCell<Vec<(Rc<Fabric>, ReqId)>>,
    /// Non-blocking collectives not completed yet, by id.
    collectives: RefCell<Vec<(u64, CollRequest)>>,
    next_collective: Cell<u64>,
    _invariant: PhantomData<Cell<&'a ()>>,
}

/// Run `f` with a scope for non-blocking requests; waits for all of them before returning.
pub fn scope<'a, F, R>(f: F) -> R
where
    F: FnOnce(&Scope<'a>) -> R,
{
    let s = Scope {
        pending: RefCell::default(),
        collectives: RefCell::default(),
        next_collective: Cell::new(0),
        _invariant: PhantomData,
    };
    f(&s)
    // `s` drops here and waits for whatever is still pending.
}

impl Scope<'_> {
    pub(crate) fn register(&self, fabric: &Rc<Fabric>, id: ReqId) {
        self.pending.borrow_mut().push((fabric.clone(), id));
    }

    fn forget(&self, id: ReqId) {
        // Requests are mostly waited for in the order they were made, so the search is
        // short; the order of what stays pending does not matter.
        let mut pending = self.pending.borrow_mut();
        if let Some(pos) = pending.iter().position(|(_, i)| *i == id) {
            pending.swap_remove(pos);
        }
    }

    fn add_collective(&self, req: CollRequest) -> u64 {
        let id = self.next_collective.get();
        self.next_collective.set(id + 1);
        self.collectives.borrow_mut().push((id, req));
        id
    }

    /// Take collective `id` out of the scope (to wait for it or test it without holding
    /// the scope's borrow while the engine runs user reduction code).
    fn take_collective(&self, id: u64) -> CollRequest {
        let mut c = self.collectives.borrow_mut();
        let pos = c
            .iter()
            .position(|(i, _)| *i == id)
            .expect("a collective request is in its scope until completed");
        c.swap_remove(pos).1
    }
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        // Collectives first: their later steps are only posted while they are driven,
        // whereas posted receives progress in any wait.
        loop {
            let next = self.collectives.borrow_mut().pop();
            let Some((_, req)) = next else { break };
            if let Err(e) = req.wait() {
                tracing::warn!(error = %e, "a collective left unwaited in its scope failed");
            }
        }
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        for (fabric, id) in pending {
            if let Err(e) = fabric.wait(id) {
                tracing::warn!(error = %e, "a request left unwaited in its scope failed");
            }
        }
    }
}

/// A non-blocking send or receive.
#[must_use = "a request must be waited for (the scope waits at its end otherwise)"]
pub struct Request<'a, 's> {
    comm: Communicator,
    id: ReqId,
    scope: &'s Scope<'a>,
}

impl<'a, 's> Request<'a, 's> {
    pub(crate) fn new(comm: &Communicator, id: ReqId, scope: &'s Scope<'a>) -> Self {
        scope.register(comm.fabric_rc(), id);
        Request {
            comm: comm.clone(),
            id,
            scope,
        }
    }

    /// Wait for completion.
    pub fn wait(self) -> Result<Status> {
        let r = self.comm.fabric().wait(self.id);
        self.scope.forget(self.id);
        convert(&self.comm, r)
    }

    /// Complete if done: `Ok(outcome)`, or `Err(self)` to try again later.
    pub fn test(self) -> std::result::Result<Result<Status>, Self> {
        match self.comm.fabric().test(self.id) {
            Some(r) => {
                self.scope.forget(self.id);
                Ok(convert(&self.comm, r))
            }
            None => Err(self),
        }
    }

    /// Cancel a receive that has not matched yet; then wait for it (its status says
    /// whether it was cancelled). Sends cannot be cancelled; this waits for them.
    pub fn cancel(self) -> Result<Status> {
        self.comm.fabric().cancel(self.id);
        self.wait()
    }

    /// Wait for completion inside the runtime (from code run by `Universe::block_on`).
    pub async fn wait_async(self) -> Result<Status> {
        let r = self.comm.fabric().wait_async(self.id).await;
        self.scope.forget(self.id);
        convert(&self.comm, r)
    }
}

/// A non-blocking collective operation (`immediate_barrier`, `immediate_broadcast_into`,
/// `immediate_all_reduce_into`). Its buffers are lent for the scope `'a`; the scope holds
/// its state and completes it at the end if it was not waited for.
#[must_use = "a request must be waited for (the scope waits at its end otherwise)"]
pub struct CollectiveRequest<'a, 's> {
    id: u64,
    scope: &'s Scope<'a>,
}

impl<'a, 's> CollectiveRequest<'a, 's> {
    pub(crate) fn new(req: CollRequest, scope: &'s Scope<'a>) -> Self {
        let id = scope.add_collective(req);
        CollectiveRequest { id, scope }
    }

    /// Wait for completion.
    pub fn wait(self) -> Result<()> {
        self.scope
            .take_collective(self.id)
            .wait()
            .map_err(Error::from)
    }

    /// Complete if done: `Ok(outcome)`, or `Err(self)` to try again later (each call
    /// makes progress).
    pub fn test(self) -> std::result::Result<Result<()>, Self> {
        let mut req = self.scope.take_collective(self.id);
        match req.test() {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                self.scope.collectives.borrow_mut().push((self.id, req));
                Err(self)
            }
            Err(e) => Ok(Err(Error::from(e))),
        }
    }
}

/// Wait for every request; the outcomes are in the order given.
pub fn wait_all<'a, 's>(requests: Vec<Request<'a, 's>>) -> Vec<Result<Status>> {
    requests.into_iter().map(Request::wait).collect()
}
