//! The MPICH ABI: the values of predefined handles and constants, and the status layout.
//! They must equal MPICH's (`mpi.h` in this crate declares the same values for C; the
//! `check-constants.sh` test compares that header with MPICH's).

use std::ffi::c_int;

// Error classes (every one mpi.h defines).
pub const MPI_SUCCESS: c_int = 0;
pub const MPI_ERR_BUFFER: c_int = 1;
pub const MPI_ERR_COUNT: c_int = 2;
pub const MPI_ERR_TYPE: c_int = 3;
pub const MPI_ERR_TAG: c_int = 4;
pub const MPI_ERR_COMM: c_int = 5;
pub const MPI_ERR_RANK: c_int = 6;
pub const MPI_ERR_ROOT: c_int = 7;
pub const MPI_ERR_GROUP: c_int = 8;
pub const MPI_ERR_OP: c_int = 9;
pub const MPI_ERR_TOPOLOGY: c_int = 10;
pub const MPI_ERR_DIMS: c_int = 11;
pub const MPI_ERR_ARG: c_int = 12;
pub const MPI_ERR_UNKNOWN: c_int = 13;
pub const MPI_ERR_TRUNCATE: c_int = 14;
pub const MPI_ERR_OTHER: c_int = 15;
pub const MPI_ERR_INTERN: c_int = 16;
pub const MPI_ERR_IN_STATUS: c_int = 17;
pub const MPI_ERR_PENDING: c_int = 18;
pub const MPI_ERR_REQUEST: c_int = 19;
pub const MPI_ERR_ACCESS: c_int = 20;
pub const MPI_ERR_AMODE: c_int = 21;
pub const MPI_ERR_BAD_FILE: c_int = 22;
pub const MPI_ERR_CONVERSION: c_int = 23;
pub const MPI_ERR_DUP_DATAREP: c_int = 24;
pub const MPI_ERR_FILE_EXISTS: c_int = 25;
pub const MPI_ERR_FILE_IN_USE: c_int = 26;
pub const MPI_ERR_FILE: c_int = 27;
pub const MPI_ERR_INFO: c_int = 28;
pub const MPI_ERR_INFO_KEY: c_int = 29;
pub const MPI_ERR_INFO_VALUE: c_int = 30;
pub const MPI_ERR_INFO_NOKEY: c_int = 31;
pub const MPI_ERR_IO: c_int = 32;
pub const MPI_ERR_NAME: c_int = 33;
pub const MPI_ERR_NO_MEM: c_int = 34;
pub const MPI_ERR_NOT_SAME: c_int = 35;
pub const MPI_ERR_NO_SPACE: c_int = 36;
pub const MPI_ERR_NO_SUCH_FILE: c_int = 37;
pub const MPI_ERR_PORT: c_int = 38;
pub const MPI_ERR_QUOTA: c_int = 39;
pub const MPI_ERR_READ_ONLY: c_int = 40;
pub const MPI_ERR_SERVICE: c_int = 41;
pub const MPI_ERR_SPAWN: c_int = 42;
pub const MPI_ERR_UNSUPPORTED_DATAREP: c_int = 43;
pub const MPI_ERR_UNSUPPORTED_OPERATION: c_int = 44;
pub const MPI_ERR_WIN: c_int = 45;
pub const MPI_ERR_BASE: c_int = 46;
pub const MPI_ERR_LOCKTYPE: c_int = 47;
pub const MPI_ERR_KEYVAL: c_int = 48;
pub const MPI_ERR_RMA_CONFLICT: c_int = 49;
pub const MPI_ERR_RMA_SYNC: c_int = 50;
pub const MPI_ERR_SIZE: c_int = 51;
pub const MPI_ERR_DISP: c_int = 52;
pub const MPI_ERR_ASSERT: c_int = 53;
pub const MPI_ERR_RMA_RANGE: c_int = 55;
pub const MPI_ERR_RMA_ATTACH: c_int = 56;
pub const MPI_ERR_RMA_SHARED: c_int = 57;
pub const MPI_ERR_RMA_FLAVOR: c_int = 58;
pub const MPI_T_ERR_MEMORY: c_int = 59;
pub const MPI_T_ERR_NOT_INITIALIZED: c_int = 60;
pub const MPI_T_ERR_CANNOT_INIT: c_int = 61;
pub const MPI_T_ERR_INVALID_INDEX: c_int = 62;
pub const MPI_T_ERR_INVALID_ITEM: c_int = 63;
pub const MPI_T_ERR_INVALID_HANDLE: c_int = 64;
pub const MPI_T_ERR_OUT_OF_HANDLES: c_int = 65;
pub const MPI_T_ERR_OUT_OF_SESSIONS: c_int = 66;
pub const MPI_T_ERR_INVALID_SESSION: c_int = 67;
pub const MPI_T_ERR_CVAR_SET_NOT_NOW: c_int = 68;
pub const MPI_T_ERR_CVAR_SET_NEVER: c_int = 69;
pub const MPI_T_ERR_PVAR_NO_STARTSTOP: c_int = 70;
pub const MPI_T_ERR_PVAR_NO_WRITE: c_int = 71;
pub const MPI_T_ERR_PVAR_NO_ATOMIC: c_int = 72;
pub const MPI_T_ERR_INVALID_NAME: c_int = 73;
pub const MPI_T_ERR_INVALID: c_int = 74;
pub const MPI_ERR_SESSION: c_int = 75;
pub const MPI_ERR_PROC_ABORTED: c_int = 76;
pub const MPI_ERR_VALUE_TOO_LARGE: c_int = 77;
pub const MPI_T_ERR_NOT_SUPPORTED: c_int = 78;
pub const MPI_ERR_LASTCODE: c_int = 0x3fff_ffff;

pub const MPI_COMM_WORLD: c_int = 0x4400_0000;
pub const MPI_COMM_SELF: c_int = 0x4400_0001;
pub const MPI_COMM_NULL: c_int = 0x0400_0000;
pub const MPI_DATATYPE_NULL: c_int = 0x0c00_0000;
/// `MPI_BYTE` (probes match any message as bytes).
pub const MPI_BYTE: c_int = 0x4c00_010d;
pub const MPI_INT: c_int = 0x4c00_0405;
pub const MPI_REQUEST_NULL: c_int = 0x2c00_0000;
pub const MPI_ERRHANDLER_NULL: c_int = 0x1400_0000;
pub const MPI_ERRORS_ARE_FATAL: c_int = 0x5400_0000;
pub const MPI_ERRORS_RETURN: c_int = 0x5400_0001;

pub const MPI_GROUP_EMPTY: c_int = 0x4800_0000;
pub const MPI_GROUP_NULL: c_int = 0x0800_0000;
pub const MPI_OP_NULL: c_int = 0x1800_0000;
pub const MPI_INFO_NULL: c_int = 0x1c00_0000;
pub const MPI_IDENT: c_int = 0;
pub const MPI_CONGRUENT: c_int = 1;
pub const MPI_SIMILAR: c_int = 2;
pub const MPI_UNEQUAL: c_int = 3;
pub const MPI_COMM_TYPE_SHARED: c_int = 1;
pub const MPI_GRAPH: c_int = 1;
pub const MPI_CART: c_int = 2;
pub const MPI_DIST_GRAPH: c_int = 3;
pub const MPI_KEYVAL_INVALID: c_int = 0x2400_0000;
pub const MPI_TAG_UB: c_int = 0x6440_0001;
pub const MPI_HOST: c_int = 0x6440_0003;
pub const MPI_IO: c_int = 0x6440_0005;
pub const MPI_WTIME_IS_GLOBAL: c_int = 0x6440_0007;
pub const MPI_UNIVERSE_SIZE: c_int = 0x6440_0009;
pub const MPI_LASTUSEDCODE: c_int = 0x6440_000b;
pub const MPI_APPNUM: c_int = 0x6440_000d;
pub const MPI_MAX_OBJECT_NAME: usize = 128;
pub const MPI_THREAD_SERIALIZED: c_int = 2;
pub const MPI_THREAD_MULTIPLE: c_int = 3;
/// `MPI_IN_PLACE`: the pointer value -1.
pub const MPI_IN_PLACE: usize = usize::MAX;

pub const MPI_ANY_SOURCE: c_int = -2;
pub const MPI_ANY_TAG: c_int = -1;
pub const MPI_PROC_NULL: c_int = -1;
pub const MPI_UNDEFINED: c_int = -32766;
pub const MPI_MAX_PROCESSOR_NAME: usize = 128;
pub const MPI_MAX_ERROR_STRING: usize = 512;
/// Bytes each message counts against the buffer of `MPI_Buffer_attach`, beyond its own.
pub const MPI_BSEND_OVERHEAD: usize = 96;
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
