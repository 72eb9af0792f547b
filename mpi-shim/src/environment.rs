//! Starting and stopping the rank layer.

use crate::communicator::Communicator;
use crate::error::Result;
use std::rc::Rc;
use zerorank_transport::fabric::Fabric;

/// The running rank layer. Dropping it finalizes (flushes traffic, synchronises with every
/// rank and closes connections).
pub struct Universe {
    fabric: Rc<Fabric>,
    /// The world communicator: one per process, so that every handle to it shares its
    /// collective sequence and the process's context counter.
    world: Communicator,
}

/// Start the rank layer: bootstrap under `zrun`, `srun`, `mpiexec` or alone, start the
/// glommio executor pinned to this rank's CPU, and connect to the other ranks.
///
/// Logging goes to stderr through `tracing`; set `ZR_LOG=debug` for more.
pub fn initialize() -> Result<Universe> {
    zerorank_transport::logging::init();
    let fabric = Rc::new(Fabric::init()?);
    Ok(Universe {
        world: Communicator::world(fabric.clone()),
        fabric,
    })
}

impl Universe {
    /// The communicator of all ranks (`MPI_COMM_WORLD`); every call returns the same one.
    pub fn world(&self) -> Communicator {
        self.world.clone()
    }

    /// The communicator of this rank alone (`MPI_COMM_SELF`).
    pub fn self_comm(&self) -> Communicator {
        self.world.self_comm()
    }

    /// Run `async` code on this rank's executor (for the `*_async` operations).
    pub fn block_on<T>(&self, fut: impl std::future::Future<Output = T>) -> T {
        self.fabric.block_on(fut)
    }

    /// The CPU this rank is pinned to, if any.
    pub fn cpu(&self) -> Option<usize> {
        self.fabric.cpu()
    }

    /// Lower-level access to the transport (job info, per-peer statistics).
    pub fn fabric(&self) -> &Fabric {
        &self.fabric
    }

    /// Finalize now and report errors (dropping the universe does the same, but can only
    /// log them).
    pub fn finalize(self) -> Result<()> {
        self.fabric.finalize()?;
        Ok(())
    }
}
