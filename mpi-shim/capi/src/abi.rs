//! The MPICH ABI: the values of predefined handles and constants, and the status layout.
//! They must equal MPICH's (`mpi.h` in this crate declares the same values for C; the
//! `check-constants.sh` test compares that header with MPICH's).

use std::ffi::c_int;

pub const MPI_SUCCESS: c_int = 0;
pub const MPI_ERR_BUFFER: c_int = 1;
pub const MPI_ERR_COUNT: c_int = 2;
pub const MPI_ERR_TYPE: c_int = 3;
pub const MPI_ERR_TAG: c_int = 4;
pub const MPI_ERR_COMM: c_int = 5;
pub const MPI_ERR_RANK: c_int = 6;
pub const MPI_ERR_ROOT: c_int = 7;
pub const MPI_ERR_OP: c_int = 9;
pub const MPI_ERR_ARG: c_int = 12;
pub const MPI_ERR_UNKNOWN: c_int = 13;
pub const MPI_ERR_TRUNCATE: c_int = 14;
pub const MPI_ERR_OTHER: c_int = 15;
pub const MPI_ERR_INTERN: c_int = 16;
pub const MPI_ERR_IN_STATUS: c_int = 17;
pub const MPI_ERR_PENDING: c_int = 18;
pub const MPI_ERR_REQUEST: c_int = 19;
pub const MPI_ERR_UNSUPPORTED_OPERATION: c_int = 44;
pub const MPI_ERR_LASTCODE: c_int = 0x3fff_ffff;

pub const MPI_COMM_WORLD: c_int = 0x4400_0000;
pub const MPI_COMM_SELF: c_int = 0x4400_0001;
pub const MPI_COMM_NULL: c_int = 0x0400_0000;
pub const MPI_DATATYPE_NULL: c_int = 0x0c00_0000;
pub const MPI_REQUEST_NULL: c_int = 0x2c00_0000;
pub const MPI_ERRHANDLER_NULL: c_int = 0x1400_0000;
pub const MPI_ERRORS_ARE_FATAL: c_int = 0x5400_0000;
pub const MPI_ERRORS_RETURN: c_int = 0x5400_0001;

pub const MPI_ANY_SOURCE: c_int = -2;
pub const MPI_ANY_TAG: c_int = -1;
pub const MPI_PROC_NULL: c_int = -1;
pub const MPI_UNDEFINED: c_int = -32766;
pub const MPI_MAX_PROCESSOR_NAME: usize = 128;
pub const MPI_MAX_ERROR_STRING: usize = 512;
pub const MPI_MAX_LIBRARY_VERSION_STRING: usize = 8192;

pub const MPI_THREAD_SINGLE: c_int = 0;
pub const MPI_THREAD_FUNNELED: c_int = 1;

/// Largest tag (`MPI_TAG_UB`); the transport reserves nothing above it for user messages.
pub const TAG_UB: c_int = i32::MAX;

/// `MPI_Status`: MPICH's 20-byte layout.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MpiStatus {
    pub count_lo: c_int,
    pub count_hi_and_cancelled: c_int,
    pub source: c_int,
    pub tag: c_int,
    pub error: c_int,
}
const _: () = assert!(std::mem::size_of::<MpiStatus>() == 20);

impl MpiStatus {
    /// A status of `bytes` bytes from `source` with `tag`.
    pub fn new(source: c_int, tag: c_int, bytes: usize, cancelled: bool) -> Self {
        let bytes = bytes as u64;
        MpiStatus {
            count_lo: bytes as u32 as c_int,
            // Bit 0 is the cancelled flag, the bits above it the high part of the count.
            count_hi_and_cancelled: (((bytes >> 32) as c_int) << 1) | c_int::from(cancelled),
            source,
            tag,
            error: MPI_SUCCESS,
        }
    }

    /// The status of an operation on `MPI_PROC_NULL`.
    pub fn proc_null() -> Self {
        Self::new(MPI_PROC_NULL, MPI_ANY_TAG, 0, false)
    }

    /// Bytes received.
    pub fn bytes(&self) -> u64 {
        u64::from(self.count_lo as u32)
            | (u64::from((self.count_hi_and_cancelled >> 1) as u32) << 32)
    }

    /// Was the operation cancelled?
    pub fn cancelled(&self) -> bool {
        self.count_hi_and_cancelled & 1 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_count_round_trips_past_32_bits() {
        for (n, c) in [
            (0u64, false),
            (7, true),
            (u64::from(u32::MAX) + 5, false),
            (1 << 40, true),
        ] {
            let s = MpiStatus::new(3, 9, n as usize, c);
            assert_eq!((s.bytes(), s.cancelled()), (n, c));
        }
    }
}
