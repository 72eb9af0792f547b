//! Non-blocking operations and the scope that keeps their buffers alive.
//!
//! As in rsmpi, non-blocking operations live in a [`scope`]: a buffer lent to a request is
//! borrowed for the scope's lifetime, and the scope waits for every request not waited
//! for before it returns (even when unwinding from a panic, and even if a request was
//! leaked with `mem::forget`). So the borrow checker guarantees that no buffer is freed or
//! touched while the transport may still use it.

use crate::error::Result;
use crate::point_to_point::{convert, Status};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::rc::Rc;
use zerorank_transport::fabric::{Fabric, ReqId};

/// The region in which non-blocking requests may run. `'a` is the lifetime of the buffers
/// lent to them.
pub struct Scope<'a> {
    pending: RefCell<Vec<(Rc<Fabric>, ReqId)>>,
    _invariant: PhantomData<Cell<&'a ()>>,
}

/// Run `f` with a scope for non-blocking requests; waits for all of them before returning.
pub fn scope<'a, F, R>(f: F) -> R
where
    F: FnOnce(&Scope<'a>) -> R,
{
    let s = Scope {
        pending: RefCell::default(),
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
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
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
    fabric: Rc<Fabric>,
    id: ReqId,
    scope: &'s Scope<'a>,
}

impl<'a, 's> Request<'a, 's> {
    pub(crate) fn new(fabric: Rc<Fabric>, id: ReqId, scope: &'s Scope<'a>) -> Self {
        scope.register(&fabric, id);
        Request { fabric, id, scope }
    }

    /// Wait for completion.
    pub fn wait(self) -> Result<Status> {
        let r = self.fabric.wait(self.id);
        self.scope.forget(self.id);
        convert(r)
    }

    /// Complete if done: `Ok(outcome)`, or `Err(self)` to try again later.
    pub fn test(self) -> std::result::Result<Result<Status>, Self> {
        match self.fabric.test(self.id) {
            Some(r) => {
                self.scope.forget(self.id);
                Ok(convert(r))
            }
            None => Err(self),
        }
    }

    /// Cancel a receive that has not matched yet; then wait for it (its status says
    /// whether it was cancelled). Sends cannot be cancelled; this waits for them.
    pub fn cancel(self) -> Result<Status> {
        self.fabric.cancel(self.id);
        self.wait()
    }

    /// Wait for completion inside the runtime (from code run by `Universe::block_on`).
    pub async fn wait_async(self) -> Result<Status> {
        let r = self.fabric.wait_async(self.id).await;
        self.scope.forget(self.id);
        convert(r)
    }
}

/// Wait for every request; the outcomes are in the order given.
pub fn wait_all<'a, 's>(requests: Vec<Request<'a, 's>>) -> Vec<Result<Status>> {
    requests.into_iter().map(Request::wait).collect()
}
