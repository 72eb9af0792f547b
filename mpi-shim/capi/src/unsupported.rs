//! The functions of `mpi.h` that zerorank does not implement. Each is a generated stub
//! (see `build.rs`) that prints a line naming the function and fails with
//! `MPI_ERR_UNSUPPORTED_OPERATION` through `MPI_COMM_WORLD`'s error handler, so a program
//! that calls one learns it at once and nothing succeeds silently.

#![allow(clippy::missing_safety_doc)]

use crate::abi::{MPI_COMM_WORLD, MPI_ERR_UNSUPPORTED_OPERATION};
use crate::error::{finish, MpiError};
use std::ffi::c_int;

/// Report `name` as unsupported; the error code (if the handler returns).
pub(crate) fn unsupported(name: &str) -> c_int {
    eprintln!("zerorank: {name} is not supported by zerorank (MPI_ERR_UNSUPPORTED_OPERATION)");
    finish(
        name,
        MPI_COMM_WORLD,
        Err(MpiError::new(
            MPI_ERR_UNSUPPORTED_OPERATION,
            format!("{name} is not supported by zerorank"),
        )),
    )
}

/// How many functions `mpi.h` declares, and how many of them are stubs.
pub const COVERAGE: (&str, &str) = (env!("ZR_MPI_DECLARED"), env!("ZR_MPI_UNSUPPORTED"));

include!(concat!(env!("OUT_DIR"), "/unsupported.rs"));
