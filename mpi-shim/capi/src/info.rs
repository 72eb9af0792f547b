//! Info objects (MPI-3.1 section 9): ordered (key, value) string pairs, `MPI_INFO_ENV`,
//! and the communicator calls that take them (`MPI_Comm_dup_with_info`,
//! `MPI_Comm_set_info`, `MPI_Comm_get_info`).
//!
//! zerorank uses no hints: a communicator takes an info and `MPI_Comm_get_info` answers
//! an empty one (the hints in use). `MPI_INFO_ENV` holds what the standard suggests that
//! zerorank knows: `command`, `argv`, `maxprocs`, `wdir`, `host` and `thread_level`. It
//! is read-only.

use crate::abi::*;
use crate::error::{finish, MpiError};
use crate::raw;
use crate::state;
use std::cell::RefCell;
use std::ffi::{c_char, c_int};

const MPI_MAX_INFO_KEY: usize = 255;
const MPI_MAX_INFO_VAL: usize = 1024;
/// `MPI_INFO_ENV`.
const MPI_INFO_ENV: c_int = 0x5c00_0001;
/// First user info handle (MPICH's direct info handles).
const INFO_BASE: c_int = 0x9c00_0000u32 as c_int;

/// Keys and values as the program gave them: C strings' bytes, not necessarily UTF-8.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

thread_local! {
    static INFOS: RefCell<Vec<Option<Pairs>>> = const { RefCell::new(Vec::new()) };
}

fn index(h: c_int) -> Option<usize> {
    usize::try_from(h.checked_sub(INFO_BASE)?).ok()
}

fn bad_info(h: c_int) -> MpiError {
    let what = if h == MPI_INFO_NULL {
        "MPI_INFO_NULL is not an info object".to_string()
    } else {
        format!("invalid info handle {h:#x}")
    };
    MpiError::new(MPI_ERR_INFO, what)
}

/// What `MPI_INFO_ENV` holds.
fn env_pairs() -> Pairs {
    use std::os::unix::ffi::OsStrExt;
    let args: Vec<Vec<u8>> = std::env::args_os().map(|a| a.as_bytes().to_vec()).collect();
    let mut v: Pairs = Vec::new();
    if let Some(cmd) = args.first() {
        v.push((b"command".to_vec(), cmd.clone()));
    }
    if args.len() > 1 {
        v.push((b"argv".to_vec(), args[1..].join(&b' ')));
    }
    if let Ok(w) = state::comm(MPI_COMM_WORLD) {
        v.push((b"maxprocs".to_vec(), w.comm.size().to_string().into_bytes()));
    }
    if let Ok(d) = std::env::current_dir() {
        v.push((b"wdir".to_vec(), d.as_os_str().as_bytes().to_vec()));
    }
    v.push((b"host".to_vec(), raw::hostname().into_bytes()));
    v.push((b"thread_level".to_vec(), b"MPI_THREAD_FUNNELED".to_vec()));
    v
}

/// The pairs of info `h` (a copy).
fn pairs(h: c_int) -> Result<Pairs, MpiError> {
    state::with(|s| s.running())?;
    if h == MPI_INFO_ENV {
        return Ok(env_pairs());
    }
    INFOS.with(|t| {
        index(h)
            .and_then(|i| t.borrow().get(i).cloned().flatten())
            .ok_or_else(|| bad_info(h))
    })
}

/// Change user info `h` (not `MPI_INFO_ENV`, which is read-only).
fn change<R>(h: c_int, f: impl FnOnce(&mut Pairs) -> Result<R, MpiError>) -> Result<R, MpiError> {
    state::with(|s| s.running())?;
    if h == MPI_INFO_ENV {
        return Err(MpiError::new(MPI_ERR_INFO, "MPI_INFO_ENV is read-only"));
    }
    INFOS.with(|t| {
        let mut t = t.borrow_mut();
        let p = index(h)
            .and_then(|i| t.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or_else(|| bad_info(h))?;
        f(p)
    })
}

/// Store `p`; its handle.
fn add(p: Pairs) -> c_int {
    INFOS.with(|t| INFO_BASE + state::fill_slot(&mut t.borrow_mut(), 0, p) as c_int)
}

/// A key argument: a C string of 1 to `MPI_MAX_INFO_KEY - 1` characters.
fn key_arg(key: *const c_char) -> Result<Vec<u8>, MpiError> {
    let k = raw::cstr_bytes(key, MPI_MAX_INFO_KEY)
        .ok_or_else(|| MpiError::new(MPI_ERR_INFO_KEY, "key is a null pointer"))?;
    if k.is_empty() || k.len() >= MPI_MAX_INFO_KEY {
        return Err(MpiError::new(
            MPI_ERR_INFO_KEY,
            format!(
                "a key has 1 to {} characters, not {}",
                MPI_MAX_INFO_KEY - 1,
                k.len()
            ),
        ));
    }
    Ok(k)
}

fn out_ptr<T>(p: *mut T, what: &str) -> Result<(), MpiError> {
    if p.is_null() {
        Err(MpiError::new(
            MPI_ERR_ARG,
            format!("{what} is a null pointer"),
        ))
    } else {
        Ok(())
    }
}

/// `MPI_Info_create`.
#[no_mangle]
pub extern "C" fn MPI_Info_create(info: *mut c_int) -> c_int {
    let r = state::with(|s| s.running()).and_then(|()| {
        out_ptr(info, "info")?;
        raw::put(info, add(Vec::new()));
        Ok(())
    });
    finish("MPI_Info_create", MPI_COMM_WORLD, r)
}

/// `MPI_Info_set`: a new key goes last; a key set again keeps its place.
#[no_mangle]
pub extern "C" fn MPI_Info_set(info: c_int, key: *const c_char, value: *const c_char) -> c_int {
    let r = (|| {
        let k = key_arg(key)?;
        let v = raw::cstr_bytes(value, MPI_MAX_INFO_VAL)
            .ok_or_else(|| MpiError::new(MPI_ERR_INFO_VALUE, "value is a null pointer"))?;
        if v.len() >= MPI_MAX_INFO_VAL {
            return Err(MpiError::new(
                MPI_ERR_INFO_VALUE,
                format!("a value has at most {} characters", MPI_MAX_INFO_VAL - 1),
            ));
        }
        change(info, |p| {
            match p.iter_mut().find(|(pk, _)| *pk == k) {
                Some(e) => e.1 = v,
                None => p.push((k, v)),
            }
            Ok(())
        })
    })();
    finish("MPI_Info_set", MPI_COMM_WORLD, r)
}

/// `MPI_Info_delete`: `MPI_ERR_INFO_NOKEY` if the key is not there.
#[no_mangle]
pub extern "C" fn MPI_Info_delete(info: c_int, key: *const c_char) -> c_int {
    let r = key_arg(key).and_then(|k| {
        change(info, |p| {
            let i = p.iter().position(|(pk, _)| *pk == k).ok_or_else(|| {
                let k = String::from_utf8_lossy(&k);
                MpiError::new(MPI_ERR_INFO_NOKEY, format!("no key \"{k}\""))
            })?;
            p.remove(i);
            Ok(())
        })
    });
    finish("MPI_Info_delete", MPI_COMM_WORLD, r)
}

/// `MPI_Info_get`: at most `valuelen` characters of the value, and a NUL.
#[no_mangle]
pub extern "C" fn MPI_Info_get(
    info: c_int,
    key: *const c_char,
    valuelen: c_int,
    value: *mut c_char,
    flag: *mut c_int,
) -> c_int {
    let r = (|| {
        let k = key_arg(key)?;
        let p = pairs(info)?;
        let cap = usize::try_from(valuelen)
            .map_err(|_| MpiError::new(MPI_ERR_ARG, format!("negative valuelen {valuelen}")))?;
        out_ptr(flag, "flag")?;
        match p.iter().find(|(pk, _)| *pk == k) {
            None => {
                raw::put(flag, 0);
            }
            Some((_, v)) => {
                out_ptr(value, "value")?;
                let n = v.len().min(cap);
                raw::put_cbytes(value, n + 1, std::ptr::null_mut(), &v[..n]);
                raw::put(flag, 1);
            }
        }
        Ok(())
    })();
    finish("MPI_Info_get", MPI_COMM_WORLD, r)
}

/// `MPI_Info_get_valuelen`: the value's length, without the NUL.
#[no_mangle]
pub extern "C" fn MPI_Info_get_valuelen(
    info: c_int,
    key: *const c_char,
    valuelen: *mut c_int,
    flag: *mut c_int,
) -> c_int {
    let r = (|| {
        let k = key_arg(key)?;
        let p = pairs(info)?;
        out_ptr(flag, "flag")?;
        match p.iter().find(|(pk, _)| *pk == k) {
            None => {
                raw::put(flag, 0);
            }
            Some((_, v)) => {
                out_ptr(valuelen, "valuelen")?;
                raw::put(valuelen, v.len() as c_int);
                raw::put(flag, 1);
            }
        }
        Ok(())
    })();
    finish("MPI_Info_get_valuelen", MPI_COMM_WORLD, r)
}

/// `MPI_Info_get_nkeys`.
#[no_mangle]
pub extern "C" fn MPI_Info_get_nkeys(info: c_int, nkeys: *mut c_int) -> c_int {
    let r = pairs(info).and_then(|p| {
        out_ptr(nkeys, "nkeys")?;
        raw::put(nkeys, p.len() as c_int);
        Ok(())
    });
    finish("MPI_Info_get_nkeys", MPI_COMM_WORLD, r)
}

/// `MPI_Info_get_nthkey`: keys in the order they were first set.
#[no_mangle]
pub extern "C" fn MPI_Info_get_nthkey(info: c_int, n: c_int, key: *mut c_char) -> c_int {
    let r = pairs(info).and_then(|p| {
        let (k, _) = usize::try_from(n)
            .ok()
            .and_then(|i| p.get(i))
            .ok_or_else(|| {
                MpiError::new(
                    MPI_ERR_ARG,
                    format!("key number {n} of an info with {} keys", p.len()),
                )
            })?;
        out_ptr(key, "key")?;
        raw::put_cbytes(key, k.len() + 1, std::ptr::null_mut(), k);
        Ok(())
    });
    finish("MPI_Info_get_nthkey", MPI_COMM_WORLD, r)
}

/// `MPI_Info_dup`.
#[no_mangle]
pub extern "C" fn MPI_Info_dup(info: c_int, newinfo: *mut c_int) -> c_int {
    let r = pairs(info).and_then(|p| {
        out_ptr(newinfo, "newinfo")?;
        raw::put(newinfo, add(p));
        Ok(())
    });
    finish("MPI_Info_dup", MPI_COMM_WORLD, r)
}

/// `MPI_Info_free`: the handle becomes `MPI_INFO_NULL`.
#[no_mangle]
pub extern "C" fn MPI_Info_free(info: *mut c_int) -> c_int {
    let r = (|| {
        let h =
            raw::get(info).ok_or_else(|| MpiError::new(MPI_ERR_ARG, "info is a null pointer"))?;
        change(h, |_| Ok(()))?;
        INFOS.with(|t| t.borrow_mut()[index(h).expect("checked by change")] = None);
        raw::put(info, MPI_INFO_NULL);
        Ok(())
    })();
    finish("MPI_Info_free", MPI_COMM_WORLD, r)
}

/// Check an info argument of a call that takes hints: `MPI_INFO_NULL` or an info.
pub(crate) fn check_hints(info: c_int) -> Result<(), MpiError> {
    if info == MPI_INFO_NULL {
        Ok(())
    } else {
        pairs(info).map(|_| ())
    }
}

/// `MPI_Comm_dup_with_info`: `MPI_Comm_dup` (zerorank uses no hints).
#[no_mangle]
pub extern "C" fn MPI_Comm_dup_with_info(comm: c_int, info: c_int, newcomm: *mut c_int) -> c_int {
    if let Err(e) = check_hints(info) {
        return finish("MPI_Comm_dup_with_info", comm, Err(e));
    }
    crate::comm::MPI_Comm_dup(comm, newcomm)
}

/// `MPI_Comm_set_info`: the hints are checked and not used.
#[no_mangle]
pub extern "C" fn MPI_Comm_set_info(comm: c_int, info: c_int) -> c_int {
    let r = state::comm(comm).and_then(|_| check_hints(info));
    finish("MPI_Comm_set_info", comm, r)
}

/// `MPI_Comm_get_info`: a new, empty info (no hints are in use).
#[no_mangle]
pub extern "C" fn MPI_Comm_get_info(comm: c_int, info_used: *mut c_int) -> c_int {
    let r = state::comm(comm).and_then(|_| {
        out_ptr(info_used, "info_used")?;
        raw::put(info_used, add(Vec::new()));
        Ok(())
    });
    finish("MPI_Comm_get_info", comm, r)
}

/// Forget every info object (at `MPI_Finalize`).
pub(crate) fn clear() {
    INFOS.with(|t| t.borrow_mut().clear());
}
