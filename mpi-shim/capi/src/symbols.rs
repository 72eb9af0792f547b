//! The data objects `mpi.h` declares `extern` (as MPICH's header does): the sentinel
//! pointers `MPI_UNWEIGHTED` and `MPI_WEIGHTS_EMPTY`, `MPI_T_PVAR_ALL_HANDLES`, and the
//! Fortran status sentinels. A program that names one, or a binary built by MPICH's
//! `mpicc` that refers to one, needs the symbol to link and to load.
//!
//! The two weight sentinels point at objects of their own, so they differ from each
//! other, from null and from every array a program passes.

use std::ffi::c_int;

/// A pointer that is a constant of the C ABI (never written through by the library).
#[repr(transparent)]
pub struct AbiPtr(*const c_int);

// SAFETY: the pointer is a constant; the library never dereferences it.
unsafe impl Sync for AbiPtr {}

impl AbiPtr {
    /// Is `p` this sentinel?
    pub(crate) fn is(&self, p: *const c_int) -> bool {
        std::ptr::eq(self.0, p)
    }
}

static UNWEIGHTED_TARGET: c_int = 0;
static WEIGHTS_EMPTY_TARGET: c_int = 0;

/// `MPI_UNWEIGHTED`.
#[no_mangle]
pub static MPI_UNWEIGHTED: AbiPtr = AbiPtr(&UNWEIGHTED_TARGET);

/// `MPI_WEIGHTS_EMPTY`.
#[no_mangle]
pub static MPI_WEIGHTS_EMPTY: AbiPtr = AbiPtr(&WEIGHTS_EMPTY_TARGET);

/// `MPI_T_PVAR_ALL_HANDLES` (the tools interface is not supported; its calls fail).
#[no_mangle]
pub static MPI_T_PVAR_ALL_HANDLES: AbiPtr = AbiPtr(usize::MAX as *const c_int);

/// `MPI_F_STATUS_IGNORE`, `MPI_F_STATUSES_IGNORE` and their `mpi_f08` forms (zerorank has
/// no Fortran binding; null, as in a C-only MPICH build).
#[no_mangle]
pub static MPI_F_STATUS_IGNORE: AbiPtr = AbiPtr(std::ptr::null());
/// See [`MPI_F_STATUS_IGNORE`].
#[no_mangle]
pub static MPI_F_STATUSES_IGNORE: AbiPtr = AbiPtr(std::ptr::null());
/// See [`MPI_F_STATUS_IGNORE`].
#[no_mangle]
pub static MPI_F08_STATUS_IGNORE: AbiPtr = AbiPtr(std::ptr::null());
/// See [`MPI_F_STATUS_IGNORE`].
#[no_mangle]
pub static MPI_F08_STATUSES_IGNORE: AbiPtr = AbiPtr(std::ptr::null());
