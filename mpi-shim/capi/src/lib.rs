//! # zerorank-mpi: the MPI C ABI
//!
//! `libmpi.so.12` (soname of the MPICH ABI, which Intel MPI, MVAPICH and Cray MPICH share)
//! over zerorank's rank layer, with `include/mpi.h` and the `zrcc` compiler wrapper.
//! Programs built with `zrcc`, or with MPICH's `mpicc` and pointed at this library with
//! `LD_LIBRARY_PATH`, run under `zrun`, `srun` or `mpiexec`.
//!
//! * [`abi`]: the values of MPICH's handles and constants, and `MPI_Status`.
//! * `raw`: every dereference of a pointer from C (the crate's `unsafe`).
//! * `state`: the rank's universe, error handlers and requests.
//! * `error`: error classes, strings and handlers.
//! * `env`, `comm`, `p2p`, `coll`: the MPI functions, by chapter of the standard.
//!
//! Status: a first part of the MPI function set (see the README); the rest is to come.

#![allow(non_snake_case)]

pub mod abi;
mod coll;
mod comm;
mod datatype;
mod env;
mod error;
mod p2p;
mod raw;
mod state;
