//! # zerorank-mpi: the MPI C ABI
//!
//! `libmpi.so.12` (soname of the MPICH ABI, which Intel MPI, MVAPICH and Cray MPICH share)
//! over zerorank's rank layer, with `include/mpi.h` and the `zrcc` compiler wrapper.
//! Programs built with `zrcc`, or with MPICH's `mpicc` and pointed at this library with
//! `LD_LIBRARY_PATH`, run under `zrun`, `srun` or `mpiexec`.
//!
//! * [`abi`]: the values of MPICH's handles and constants, and `MPI_Status`.
//! * `raw`: the dereferences of pointers from C for the handle-level calls;
//!   `datatype::mem` and `TypeInfo::pack`/`unpack` for datatype-driven copies,
//!   `op::call` for calling a user reduction function, `attr::call_delete` and
//!   `attr::copy_all` for calling attribute callbacks, `errhandler::call` for calling
//!   a user error handler, and `grequest` for a generalized request's callbacks: the crate's `unsafe`, each block with its `// SAFETY:`
//!   argument.
//! * `state`: the rank's universe, the communicator, group and request tables.
//! * `error`, `error_codes`, `errhandler`: error classes, codes, strings and handlers (the
//!   user's too).
//! * `datatype`, `op`: datatypes (derived ones too) and reduction operations.
//! * `attr`: attribute caching (keyvals, copy and delete callbacks) on communicators and
//!   datatypes.
//! * `env`, `comm`, `p2p`, `persistent`, `bsend`, `mprobe`, `coll`, `topo`, `graph`,
//!   `info`, `grequest`: the MPI functions, by chapter of the standard.
//! * `unsupported`: every other function `mpi.h` declares, as a stub that fails with
//!   `MPI_ERR_UNSUPPORTED_OPERATION` and says so.
//! * `symbols`: the data objects `mpi.h` declares `extern` (`MPI_UNWEIGHTED`, ...).
//! * `pmpi`: the `PMPI_` names of the profiling interface, each a jump to its `MPI_`
//!   function.

#![allow(non_snake_case)]
// The MPI functions take the standard's argument lists, and so do their helpers.
#![allow(clippy::too_many_arguments)]

pub mod abi;
mod attr;
mod bsend;
mod coll;
mod comm;
mod datatype;
mod env;
mod errhandler;
mod error;
mod error_codes;
mod graph;
mod grequest;
mod info;
mod mprobe;
mod op;
mod p2p;
mod persistent;
mod pmpi;
mod raw;
mod ring;
mod state;
mod symbols;
mod topo;
mod unsupported;
