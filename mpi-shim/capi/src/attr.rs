//! Attribute caching (MPI-3.1 section 6.7): keyvals, and the attributes that
//! communicators and datatypes carry, with the user's copy and delete callbacks.
//!
//! A keyval is made for one kind of object (`MPI_Comm_create_keyval`,
//! `MPI_Type_create_keyval`, and the MPI-1 `MPI_Keyval_create` for communicators); using
//! it on another kind is `MPI_ERR_KEYVAL`. An object's attributes are kept in the order
//! they were set. Duplicating an object (`MPI_Comm_dup`, `MPI_Type_dup`) calls each
//! attribute's copy callback, which decides whether the copy carries it; freeing the
//! object, deleting the attribute or setting it again calls the delete callback. A
//! callback that returns an error code fails the call that ran it. A freed keyval lives
//! on, unusable for new attributes, until the last attribute using it is gone. At
//! `MPI_Finalize` the attributes of `MPI_COMM_SELF` are deleted first, in the reverse
//! order of their setting, so libraries can hook their own finalization there.
//!
//! Callbacks may call MPI (a delete callback may free another communicator): no borrow
//! of the tables is held while one runs.

use crate::abi::*;
use crate::error::MpiError;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_int, c_void};

/// The kind of object a keyval is for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Kind {
    Comm,
    Type,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Comm => "communicator",
            Kind::Type => "datatype",
        }
    }
}

/// `MPI_Comm_copy_attr_function` (and `MPI_Copy_function`, `MPI_Type_copy_attr_function`:
/// the same C signature with the object's handle first).
pub(crate) type CopyFn =
    unsafe extern "C" fn(c_int, c_int, *mut c_void, *mut c_void, *mut c_void, *mut c_int) -> c_int;

/// `MPI_Comm_delete_attr_function` (and `MPI_Delete_function`,
/// `MPI_Type_delete_attr_function`).
pub(crate) type DeleteFn = unsafe extern "C" fn(c_int, c_int, *mut c_void, *mut c_void) -> c_int;

/// First keyval handle (`MPI_KEYVAL_INVALID` is 0x24000000).
const KEYVAL_BASE: c_int = 0x2440_0000;

struct Keyval {
    kind: Kind,
    copy: Option<CopyFn>,
    delete: Option<DeleteFn>,
    extra: *mut c_void,
    /// Freed by the program: no new attribute may use it.
    freed: bool,
    /// Attributes that use it.
    uses: usize,
}

#[derive(Default)]
struct Tables {
    keyvals: Vec<Option<Keyval>>,
    /// Per object, its attributes (keyval, value) in the order they were set.
    attrs: HashMap<(Kind, c_int), Vec<(c_int, *mut c_void)>>,
}

thread_local! {
    static TABLES: RefCell<Tables> = RefCell::default();
}

fn keyval_index(h: c_int) -> Option<usize> {
    usize::try_from(h.checked_sub(KEYVAL_BASE)?).ok()
}

fn bad_keyval(kind: Kind, h: c_int) -> MpiError {
    let what = if h == MPI_KEYVAL_INVALID {
        "MPI_KEYVAL_INVALID is not a keyval".to_string()
    } else {
        format!("{h:#x} is not a {} keyval", kind.name())
    };
    MpiError::new(MPI_ERR_KEYVAL, what)
}

impl Tables {
    /// Keyval `h` of `kind` (a freed one too, when `freed_ok`).
    fn keyval(&self, kind: Kind, h: c_int, freed_ok: bool) -> Result<&Keyval, MpiError> {
        let k = keyval_index(h)
            .and_then(|i| self.keyvals.get(i))
            .and_then(Option::as_ref)
            .filter(|k| k.kind == kind)
            .ok_or_else(|| bad_keyval(kind, h))?;
        if k.freed && !freed_ok {
            return Err(MpiError::new(
                MPI_ERR_KEYVAL,
                format!("keyval {h:#x} was freed"),
            ));
        }
        Ok(k)
    }

    fn keyval_mut(&mut self, h: c_int) -> &mut Keyval {
        keyval_index(h)
            .and_then(|i| self.keyvals.get_mut(i))
            .and_then(Option::as_mut)
            .expect("an attribute's keyval lives while the attribute does")
    }

    /// One attribute fewer uses keyval `h`; a freed keyval goes with its last one.
    fn release(&mut self, h: c_int) {
        let k = self.keyval_mut(h);
        assert!(k.uses > 0, "keyval {h:#x} released more often than used");
        k.uses -= 1;
        if k.freed && k.uses == 0 {
            self.keyvals[keyval_index(h).expect("a keyval handle")] = None;
        }
    }
}

fn with<R>(f: impl FnOnce(&mut Tables) -> R) -> R {
    TABLES.with(|t| f(&mut t.borrow_mut()))
}

/// A keyval for objects of `kind`; its handle.
pub(crate) fn create_keyval(
    kind: Kind,
    copy: Option<CopyFn>,
    delete: Option<DeleteFn>,
    extra: *mut c_void,
) -> c_int {
    with(|t| {
        let k = Keyval {
            kind,
            copy,
            delete,
            extra,
            freed: false,
            uses: 0,
        };
        KEYVAL_BASE + crate::state::fill_slot(&mut t.keyvals, 0, k) as c_int
    })
}

/// Free keyval `h` of `kind`: it goes when no attribute uses it any more.
pub(crate) fn free_keyval(kind: Kind, h: c_int) -> Result<(), MpiError> {
    with(|t| {
        t.keyval(kind, h, false)?;
        let k = t.keyval_mut(h);
        k.freed = true;
        if k.uses == 0 {
            t.keyvals[keyval_index(h).expect("a keyval handle")] = None;
        }
        Ok(())
    })
}

/// The error a callback's return code `rc` makes.
fn callback_error(which: &str, key: c_int, rc: c_int) -> MpiError {
    let class = if crate::error::is_code(rc) {
        rc
    } else {
        MPI_ERR_OTHER
    };
    MpiError::new(
        class,
        format!("the {which} callback of keyval {key:#x} returned error code {rc}"),
    )
}

/// Run the delete callback of attribute `key` = `value` on `obj`.
fn call_delete(kind: Kind, obj: c_int, key: c_int, value: *mut c_void) -> Result<(), MpiError> {
    let (delete, extra) = with(|t| t.keyval(kind, key, true).map(|k| (k.delete, k.extra)))?;
    let Some(f) = delete else {
        return Ok(());
    };
    // SAFETY: `f` is the delete callback the program gave for this keyval, with the
    // signature mpi.h declares; it gets the object, the keyval, the value the program
    // set and the extra state it gave, as MPI defines. No borrow is held: it may call MPI.
    let rc = unsafe { f(obj, key, value, extra) };
    if rc == MPI_SUCCESS {
        Ok(())
    } else {
        Err(callback_error("delete", key, rc))
    }
}

/// Take attribute (`key`, `value`) off `obj` if it is still there (a callback may have
/// deleted it already); whether it was.
fn unlink(t: &mut Tables, kind: Kind, obj: c_int, key: c_int, value: *mut c_void) -> bool {
    let Some(list) = t.attrs.get_mut(&(kind, obj)) else {
        return false;
    };
    let Some(i) = list.iter().position(|&a| a == (key, value)) else {
        return false;
    };
    list.remove(i);
    if list.is_empty() {
        t.attrs.remove(&(kind, obj));
    }
    t.release(key);
    true
}

/// Set attribute `key` of `obj` to `value` (deleting the value it had first).
///
/// The new attribute's use of the keyval is taken before the old value's delete
/// callback runs, so a callback that frees the keyval does not take it away.
pub(crate) fn set(kind: Kind, obj: c_int, key: c_int, value: *mut c_void) -> Result<(), MpiError> {
    with(|t| t.keyval(kind, key, false).map(|_| ()))?;
    with(|t| t.keyval_mut(key).uses += 1);
    if let Some(old) = get(kind, obj, key)? {
        if let Err(e) = call_delete(kind, obj, key, old) {
            with(|t| t.release(key));
            return Err(e);
        }
        with(|t| unlink(t, kind, obj, key, old));
    }
    with(|t| t.attrs.entry((kind, obj)).or_default().push((key, value)));
    Ok(())
}

/// The value of attribute `key` on `obj`, if it is set.
pub(crate) fn get(kind: Kind, obj: c_int, key: c_int) -> Result<Option<*mut c_void>, MpiError> {
    with(|t| {
        t.keyval(kind, key, true)?;
        Ok(t.attrs
            .get(&(kind, obj))
            .and_then(|l| l.iter().find(|&&(k, _)| k == key))
            .map(|&(_, v)| v))
    })
}

/// Delete attribute `key` from `obj` (nothing happens if it is not set).
pub(crate) fn delete(kind: Kind, obj: c_int, key: c_int) -> Result<(), MpiError> {
    let Some(value) = get(kind, obj, key)? else {
        return Ok(());
    };
    call_delete(kind, obj, key, value)?;
    with(|t| unlink(t, kind, obj, key, value));
    Ok(())
}

/// Delete every attribute of `obj`, the last set first (the object is being freed). On a
/// failing delete callback the attributes not deleted yet stay.
pub(crate) fn delete_all(kind: Kind, obj: c_int) -> Result<(), MpiError> {
    loop {
        let last = with(|t| t.attrs.get(&(kind, obj)).and_then(|l| l.last().copied()));
        let Some((key, _)) = last else {
            return Ok(());
        };
        delete(kind, obj, key)?;
    }
}

/// Copy the attributes of `old` to its duplicate `new` through their copy callbacks.
/// On an error the caller deletes what was copied and frees `new`.
pub(crate) fn copy_all(kind: Kind, old: c_int, new: c_int) -> Result<(), MpiError> {
    let list = with(|t| t.attrs.get(&(kind, old)).cloned().unwrap_or_default());
    for (key, value) in list {
        // A callback before this one may have deleted it (and freed its keyval).
        let still = with(|t| {
            t.attrs
                .get(&(kind, old))
                .is_some_and(|l| l.contains(&(key, value)))
        });
        if !still {
            continue;
        }
        let (copy, extra) = with(|t| t.keyval(kind, key, true).map(|k| (k.copy, k.extra)))?;
        let Some(f) = copy else {
            continue;
        };
        // The copy's use of the keyval, taken before the callback runs (it may free the
        // keyval); given back if it does not copy.
        with(|t| t.keyval_mut(key).uses += 1);
        let mut out: *mut c_void = std::ptr::null_mut();
        let mut flag: c_int = 0;
        // SAFETY: `f` is the copy callback the program gave for this keyval (or
        // `MPIR_Dup_fn`), with the signature mpi.h declares; `out` and `flag` are valid
        // for its writes. No borrow is held: it may call MPI.
        let rc = unsafe { f(old, key, extra, value, (&raw mut out).cast(), &raw mut flag) };
        if rc != MPI_SUCCESS || flag == 0 {
            with(|t| t.release(key));
            if rc != MPI_SUCCESS {
                return Err(callback_error("copy", key, rc));
            }
            continue;
        }
        with(|t| t.attrs.entry((kind, new)).or_default().push((key, out)));
    }
    Ok(())
}

/// Drop every attribute of `obj` without running callbacks (a duplicate that failed is
/// being freed, and its delete callbacks failed too).
pub(crate) fn forget_all(kind: Kind, obj: c_int) {
    with(|t| {
        for (key, _) in t.attrs.remove(&(kind, obj)).unwrap_or_default() {
            t.release(key);
        }
    });
}

/// Forget every keyval and attribute (after `MPI_Finalize` deleted what it must).
pub(crate) fn clear() {
    with(|t| *t = Tables::default());
}

/// `MPIR_Dup_fn`: the copy callback `MPI_COMM_DUP_FN`, `MPI_TYPE_DUP_FN` and `MPI_DUP_FN`
/// name in the MPICH ABI: the copy carries the same value.
#[no_mangle]
pub extern "C" fn MPIR_Dup_fn(
    _old: c_int,
    _keyval: c_int,
    _extra: *mut c_void,
    value_in: *mut c_void,
    value_out: *mut c_void,
    flag: *mut c_int,
) -> c_int {
    crate::raw::put(value_out.cast::<*mut c_void>(), value_in);
    crate::raw::put(flag, 1);
    MPI_SUCCESS
}

// ---------------------------------------------------------------------------------------
// The C functions

use crate::error::finish;
use crate::raw;
use crate::state;

/// Check that `comm` is a communicator.
fn comm_ok(comm: c_int) -> Result<(), MpiError> {
    state::comm(comm).map(|_| ())
}

/// Check that `ty` is a datatype (committed or not).
fn type_ok(ty: c_int) -> Result<(), MpiError> {
    crate::datatype::lookup_any(ty).map(|_| ())
}

/// The predefined attribute keys, which cannot be set or deleted.
fn predefined(key: c_int) -> bool {
    matches!(
        key,
        MPI_TAG_UB
            | MPI_HOST
            | MPI_IO
            | MPI_WTIME_IS_GLOBAL
            | MPI_UNIVERSE_SIZE
            | MPI_APPNUM
            | MPI_LASTUSEDCODE
    )
}

fn predefined_error(key: c_int) -> MpiError {
    MpiError::new(
        MPI_ERR_KEYVAL,
        format!("{key:#x} is a predefined attribute: it cannot be set or deleted"),
    )
}

fn keyval_out(
    name: &str,
    kind: Kind,
    copy: Option<CopyFn>,
    delete: Option<DeleteFn>,
    keyval: *mut c_int,
    extra: *mut c_void,
) -> c_int {
    let r = state::with(|s| s.running()).and_then(|()| {
        if keyval.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "keyval is a null pointer"));
        }
        raw::put(keyval, create_keyval(kind, copy, delete, extra));
        Ok(())
    });
    finish(name, MPI_COMM_WORLD, r)
}

fn keyval_free(name: &str, kind: Kind, keyval: *mut c_int) -> c_int {
    let r = state::with(|s| s.running()).and_then(|()| {
        let h = raw::get(keyval)
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "keyval is a null pointer"))?;
        if predefined(h) {
            return Err(predefined_error(h));
        }
        free_keyval(kind, h)?;
        raw::put(keyval, MPI_KEYVAL_INVALID);
        Ok(())
    });
    finish(name, MPI_COMM_WORLD, r)
}

/// `MPI_Comm_create_keyval`.
#[no_mangle]
pub extern "C" fn MPI_Comm_create_keyval(
    copy: Option<CopyFn>,
    delete: Option<DeleteFn>,
    keyval: *mut c_int,
    extra_state: *mut c_void,
) -> c_int {
    keyval_out(
        "MPI_Comm_create_keyval",
        Kind::Comm,
        copy,
        delete,
        keyval,
        extra_state,
    )
}

/// `MPI_Keyval_create` (MPI-1's name).
#[no_mangle]
pub extern "C" fn MPI_Keyval_create(
    copy: Option<CopyFn>,
    delete: Option<DeleteFn>,
    keyval: *mut c_int,
    extra_state: *mut c_void,
) -> c_int {
    keyval_out(
        "MPI_Keyval_create",
        Kind::Comm,
        copy,
        delete,
        keyval,
        extra_state,
    )
}

/// `MPI_Comm_free_keyval`.
#[no_mangle]
pub extern "C" fn MPI_Comm_free_keyval(keyval: *mut c_int) -> c_int {
    keyval_free("MPI_Comm_free_keyval", Kind::Comm, keyval)
}

/// `MPI_Keyval_free` (MPI-1's name).
#[no_mangle]
pub extern "C" fn MPI_Keyval_free(keyval: *mut c_int) -> c_int {
    keyval_free("MPI_Keyval_free", Kind::Comm, keyval)
}

fn comm_set(name: &str, comm: c_int, key: c_int, value: *mut c_void) -> c_int {
    let r = comm_ok(comm).and_then(|()| {
        if predefined(key) {
            return Err(predefined_error(key));
        }
        set(Kind::Comm, comm, key, value)
    });
    finish(name, comm, r)
}

/// `MPI_Comm_set_attr`.
#[no_mangle]
pub extern "C" fn MPI_Comm_set_attr(comm: c_int, keyval: c_int, value: *mut c_void) -> c_int {
    comm_set("MPI_Comm_set_attr", comm, keyval, value)
}

/// `MPI_Attr_put` (MPI-1's name).
#[no_mangle]
pub extern "C" fn MPI_Attr_put(comm: c_int, keyval: c_int, value: *mut c_void) -> c_int {
    comm_set("MPI_Attr_put", comm, keyval, value)
}

/// `MPI_Attr_get` (MPI-1's name of `MPI_Comm_get_attr`).
#[no_mangle]
pub extern "C" fn MPI_Attr_get(
    comm: c_int,
    keyval: c_int,
    value: *mut c_void,
    flag: *mut c_int,
) -> c_int {
    crate::comm::MPI_Comm_get_attr(comm, keyval, value, flag)
}

fn comm_delete(name: &str, comm: c_int, key: c_int) -> c_int {
    let r = comm_ok(comm).and_then(|()| {
        if predefined(key) {
            return Err(predefined_error(key));
        }
        delete(Kind::Comm, comm, key)
    });
    finish(name, comm, r)
}

/// `MPI_Comm_delete_attr`.
#[no_mangle]
pub extern "C" fn MPI_Comm_delete_attr(comm: c_int, keyval: c_int) -> c_int {
    comm_delete("MPI_Comm_delete_attr", comm, keyval)
}

/// `MPI_Attr_delete` (MPI-1's name).
#[no_mangle]
pub extern "C" fn MPI_Attr_delete(comm: c_int, keyval: c_int) -> c_int {
    comm_delete("MPI_Attr_delete", comm, keyval)
}

/// A user attribute's value for `MPI_Comm_get_attr`/`MPI_Type_get_attr`: written through
/// `value` (a `void **`) with `flag` true when it is set.
pub(crate) fn get_out(
    kind: Kind,
    obj: c_int,
    key: c_int,
    value: *mut c_void,
    flag: *mut c_int,
) -> Result<(), MpiError> {
    if flag.is_null() {
        return Err(MpiError::new(MPI_ERR_ARG, "flag is a null pointer"));
    }
    match get(kind, obj, key)? {
        Some(v) => {
            if !raw::put(value.cast::<*mut c_void>(), v) {
                return Err(MpiError::new(
                    MPI_ERR_ARG,
                    "attribute_val is a null pointer",
                ));
            }
            raw::put(flag, 1);
        }
        None => {
            raw::put(flag, 0);
        }
    }
    Ok(())
}

/// `MPI_Type_create_keyval`.
#[no_mangle]
pub extern "C" fn MPI_Type_create_keyval(
    copy: Option<CopyFn>,
    delete: Option<DeleteFn>,
    keyval: *mut c_int,
    extra_state: *mut c_void,
) -> c_int {
    keyval_out(
        "MPI_Type_create_keyval",
        Kind::Type,
        copy,
        delete,
        keyval,
        extra_state,
    )
}

/// `MPI_Type_free_keyval`.
#[no_mangle]
pub extern "C" fn MPI_Type_free_keyval(keyval: *mut c_int) -> c_int {
    keyval_free("MPI_Type_free_keyval", Kind::Type, keyval)
}

/// `MPI_Type_set_attr`.
#[no_mangle]
pub extern "C" fn MPI_Type_set_attr(datatype: c_int, keyval: c_int, value: *mut c_void) -> c_int {
    let r = type_ok(datatype).and_then(|()| set(Kind::Type, datatype, keyval, value));
    finish("MPI_Type_set_attr", MPI_COMM_WORLD, r)
}

/// `MPI_Type_get_attr`.
#[no_mangle]
pub extern "C" fn MPI_Type_get_attr(
    datatype: c_int,
    keyval: c_int,
    value: *mut c_void,
    flag: *mut c_int,
) -> c_int {
    let r = type_ok(datatype).and_then(|()| get_out(Kind::Type, datatype, keyval, value, flag));
    finish("MPI_Type_get_attr", MPI_COMM_WORLD, r)
}

/// `MPI_Type_delete_attr`.
#[no_mangle]
pub extern "C" fn MPI_Type_delete_attr(datatype: c_int, keyval: c_int) -> c_int {
    let r = type_ok(datatype).and_then(|()| delete(Kind::Type, datatype, keyval));
    finish("MPI_Type_delete_attr", MPI_COMM_WORLD, r)
}
