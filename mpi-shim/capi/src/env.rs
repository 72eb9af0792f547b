//! The environment: initialization, finalization, time, names and versions.

use crate::abi::*;
use crate::error::{finish, MpiError};
use crate::raw;
use crate::state;
use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;
use std::time::Instant;

/// The epoch of `MPI_Wtime`.
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn init(name: &str) -> c_int {
    let r = state::with(|s| {
        if s.universe.is_some() || s.finalized {
            return Err(MpiError::new(
                MPI_ERR_OTHER,
                "MPI may be initialized only once",
            ));
        }
        let u = zerorank::initialize()
            .map_err(|e| MpiError::new(MPI_ERR_OTHER, format!("could not start: {e}")))?;
        s.start(u);
        EPOCH.get_or_init(Instant::now);
        Ok(())
    });
    finish(name, MPI_COMM_WORLD, r)
}

/// `MPI_Init` (the arguments are not needed: the launcher passes everything in the
/// environment).
#[no_mangle]
pub extern "C" fn MPI_Init(_argc: *mut c_int, _argv: *mut *mut *mut c_char) -> c_int {
    init("MPI_Init")
}

/// `MPI_Init_thread`: provides `MPI_THREAD_FUNNELED` at most.
#[no_mangle]
pub extern "C" fn MPI_Init_thread(
    _argc: *mut c_int,
    _argv: *mut *mut *mut c_char,
    required: c_int,
    provided: *mut c_int,
) -> c_int {
    let rc = init("MPI_Init_thread");
    if rc == MPI_SUCCESS {
        raw::put(
            provided,
            required.clamp(MPI_THREAD_SINGLE, MPI_THREAD_FUNNELED),
        );
    }
    rc
}

/// `MPI_Query_thread`.
#[no_mangle]
pub extern "C" fn MPI_Query_thread(provided: *mut c_int) -> c_int {
    raw::put(provided, MPI_THREAD_FUNNELED);
    MPI_SUCCESS
}

/// `MPI_Is_thread_main`: is this the thread that initialized MPI?
#[no_mangle]
pub extern "C" fn MPI_Is_thread_main(flag: *mut c_int) -> c_int {
    // The state is thread-local: only the initializing thread sees the universe.
    let v = state::with(|s| s.universe.is_some() || s.finalized);
    raw::put(flag, c_int::from(v));
    MPI_SUCCESS
}

/// `MPI_Initialized` (may be called at any time).
#[no_mangle]
pub extern "C" fn MPI_Initialized(flag: *mut c_int) -> c_int {
    let v = state::with(|s| s.universe.is_some() || s.finalized);
    raw::put(flag, c_int::from(v));
    MPI_SUCCESS
}

/// `MPI_Finalized` (may be called at any time).
#[no_mangle]
pub extern "C" fn MPI_Finalized(flag: *mut c_int) -> c_int {
    let v = state::with(|s| s.finalized);
    raw::put(flag, c_int::from(v));
    MPI_SUCCESS
}

/// `MPI_Finalize`: a barrier, then the runtime shuts down.
#[no_mangle]
pub extern "C" fn MPI_Finalize() -> c_int {
    // MPI-3.1 8.7.1: first, as if MPI_COMM_SELF were freed: its attributes' delete
    // callbacks run, the last set first (libraries finalize themselves there).
    if state::with(|s| s.running()).is_ok() {
        let r = crate::attr::delete_all(crate::attr::Kind::Comm, MPI_COMM_SELF);
        if r.is_err() {
            return finish("MPI_Finalize", MPI_COMM_WORLD, r);
        }
    }
    // As if MPI_Buffer_detach: buffered sends go out before the job ends.
    crate::bsend::flush();
    crate::ring::leave_all();
    let rc = crate::coll::MPI_Barrier(MPI_COMM_WORLD);
    if rc != MPI_SUCCESS {
        return rc;
    }
    let r = state::with(|s| {
        let u = s.universe.take().ok_or_else(|| {
            MpiError::new(
                MPI_ERR_OTHER,
                "MPI_Finalize without MPI_Init, or called twice",
            )
        })?;
        s.finalized = true;
        s.clear();
        crate::attr::clear();
        crate::info::clear();
        let pending = state::live_requests();
        if pending > 0 {
            tracing::warn!(
                pending,
                "MPI_Finalize with requests never completed or freed"
            );
        }
        u.finalize()
            .map_err(|e| MpiError::new(MPI_ERR_OTHER, format!("shutdown failed: {e}")))
    });
    finish("MPI_Finalize", MPI_COMM_WORLD, r)
}

/// `MPI_Abort`: ends this rank at once with `code`; the launcher ends the others.
#[no_mangle]
pub extern "C" fn MPI_Abort(comm: c_int, code: c_int) -> c_int {
    let rank = state::with(|s| s.comm(MPI_COMM_WORLD).map(|w| w.comm.rank()).ok());
    eprintln!(
        "zerorank: MPI_Abort called on communicator {comm:#x} by rank {} with error code {code}",
        rank.map_or("?".to_string(), |r| r.to_string())
    );
    raw::exit_now(if code == 0 { 1 } else { code & 0xff });
}

/// `MPI_Pcontrol`: profiling control for tools in front of the library; zerorank's own
/// does nothing, as the standard says the default does. (C declares it variadic; the
/// extra arguments are not read.)
#[no_mangle]
pub extern "C" fn MPI_Pcontrol(_level: c_int) -> c_int {
    MPI_SUCCESS
}

/// `MPI_Wtime`: seconds since initialization.
#[no_mangle]
pub extern "C" fn MPI_Wtime() -> f64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// `MPI_Wtick`: the resolution of `MPI_Wtime` (the monotonic clock's).
#[no_mangle]
pub extern "C" fn MPI_Wtick() -> f64 {
    1e-9
}

/// `MPI_Get_processor_name`: the host name.
#[no_mangle]
pub extern "C" fn MPI_Get_processor_name(name: *mut c_char, len: *mut c_int) -> c_int {
    let host = raw::hostname();
    if !raw::put_cstr(name, MPI_MAX_PROCESSOR_NAME, len, &host) {
        return finish(
            "MPI_Get_processor_name",
            MPI_COMM_WORLD,
            Err(MpiError::new(MPI_ERR_ARG, "name is a null pointer")),
        );
    }
    MPI_SUCCESS
}

/// `MPI_Get_version`: MPI 3.1.
#[no_mangle]
pub extern "C" fn MPI_Get_version(version: *mut c_int, subversion: *mut c_int) -> c_int {
    raw::put(version, 3);
    raw::put(subversion, 1);
    MPI_SUCCESS
}

/// `MPI_Get_library_version`.
#[no_mangle]
pub extern "C" fn MPI_Get_library_version(out: *mut c_char, len: *mut c_int) -> c_int {
    let (declared, stubs) = crate::unsupported::COVERAGE;
    let s = format!(
        "zerorank {} (MPICH ABI, MPI 3.1; {declared} functions declared, {stubs} of them unsupported stubs)",
        env!("CARGO_PKG_VERSION")
    );
    raw::put_cstr(out, MPI_MAX_LIBRARY_VERSION_STRING, len, &s);
    MPI_SUCCESS
}

/// `MPI_Alloc_mem`: memory from the C allocator (no registration is needed).
#[no_mangle]
pub extern "C" fn MPI_Alloc_mem(size: isize, _info: c_int, baseptr: *mut c_void) -> c_int {
    let r = if size < 0 {
        Err(MpiError::new(MPI_ERR_ARG, format!("negative size {size}")))
    } else {
        match raw::c_alloc(size as usize) {
            None => Err(MpiError::new(
                MPI_ERR_OTHER,
                format!("out of memory for {size} bytes"),
            )),
            Some(p) if raw::put(baseptr.cast::<*mut c_void>(), p) => Ok(()),
            Some(p) => {
                raw::c_free(p);
                Err(MpiError::new(MPI_ERR_ARG, "baseptr is a null pointer"))
            }
        }
    };
    finish("MPI_Alloc_mem", MPI_COMM_WORLD, r)
}

/// `MPI_Free_mem`.
#[no_mangle]
pub extern "C" fn MPI_Free_mem(base: *mut c_void) -> c_int {
    raw::c_free(base);
    MPI_SUCCESS
}
