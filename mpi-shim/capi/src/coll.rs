//! Collective operations. So far: `MPI_Barrier`, by dissemination over point-to-point
//! messages in the communicator's collective context (ceil(log2 n) rounds).

use crate::abi::*;
use crate::comm::Comm;
use crate::error::{finish, MpiError};
use crate::state;
use std::ffi::c_int;
use zerorank_transport::fabric::SendMode;
use zerorank_transport::matching::Pattern;

/// `MPI_Barrier`.
#[no_mangle]
pub extern "C" fn MPI_Barrier(comm: c_int) -> c_int {
    let r = state::with(|s| {
        let c = Comm::checked(comm)?;
        let f = s.fabric()?;
        let (me, n) = (c.rank(f.rank()), c.size(f.size()));
        let mut round = 0;
        let mut k = 1;
        while k < n {
            let to = c.to_world((me + k) % n, f.rank());
            let from = c.to_world((me + n - k) % n, f.rank());
            let fail = |e| MpiError::new(MPI_ERR_OTHER, format!("barrier: {e}"));
            f.send(to, c.coll_context(), round, &[], SendMode::Standard)
                .map_err(fail)?;
            let pat = Pattern {
                comm: c.coll_context(),
                src: Some(from),
                tag: Some(round),
            };
            f.recv(pat, &mut []).map_err(fail)?;
            round += 1;
            k *= 2;
        }
        Ok(())
    });
    finish("MPI_Barrier", comm, r)
}
