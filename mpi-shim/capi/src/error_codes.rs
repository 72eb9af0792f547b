//! User error classes and codes (MPI-3.1 section 8.5): `MPI_Add_error_class`,
//! `MPI_Add_error_code`, `MPI_Add_error_string`, and the `MPI_LASTUSEDCODE` attribute.
//!
//! They are numbered from `MPI_ERR_LASTCODE + 1` up, classes and codes alike (as in
//! MPICH), so they never meet the predefined classes. A class is its own class; a code
//! belongs to the class it was added to, a predefined one or a user one. Each may have a
//! string (empty until one is set).

use crate::abi::*;
use crate::error::{finish, MpiError};
use crate::raw;
use crate::state;
use std::cell::RefCell;
use std::ffi::{c_char, c_int};

/// The first user class or code.
const FIRST: c_int = MPI_ERR_LASTCODE + 1;

struct Entry {
    class: c_int,
    text: String,
}

thread_local! {
    static USER: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

fn index(code: c_int) -> Option<usize> {
    usize::try_from(code.checked_sub(FIRST)?).ok()
}

/// The class of user class or code `code`.
pub(crate) fn class_of(code: c_int) -> Option<c_int> {
    USER.with(|u| index(code).and_then(|i| u.borrow().get(i).map(|e| e.class)))
}

/// The string of user class or code `code` (empty if none was set).
pub(crate) fn text(code: c_int) -> Option<String> {
    USER.with(|u| index(code).and_then(|i| u.borrow().get(i).map(|e| e.text.clone())))
}

/// The largest class or code in use (`MPI_LASTUSEDCODE`).
pub(crate) fn last_used() -> c_int {
    USER.with(|u| FIRST - 1 + u.borrow().len() as c_int)
}

/// Add a class or code of `class` (`None`: a new class); the new value.
fn add(class: Option<c_int>) -> Result<c_int, MpiError> {
    USER.with(|u| {
        let mut u = u.borrow_mut();
        let code = c_int::try_from(u.len())
            .ok()
            .and_then(|n| FIRST.checked_add(n))
            .ok_or_else(|| MpiError::new(MPI_ERR_OTHER, "no error codes left"))?;
        u.push(Entry {
            class: class.unwrap_or(code),
            text: String::new(),
        });
        Ok(code)
    })
}

/// `MPI_Add_error_class`.
#[no_mangle]
pub extern "C" fn MPI_Add_error_class(errorclass: *mut c_int) -> c_int {
    let r = state::with(|s| s.running()).and_then(|()| {
        if errorclass.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "errorclass is a null pointer"));
        }
        raw::put(errorclass, add(None)?);
        Ok(())
    });
    finish("MPI_Add_error_class", MPI_COMM_WORLD, r)
}

/// `MPI_Add_error_code`: a new code of `errorclass` (a predefined or a user class).
#[no_mangle]
pub extern "C" fn MPI_Add_error_code(errorclass: c_int, errorcode: *mut c_int) -> c_int {
    let r = state::with(|s| s.running()).and_then(|()| {
        let is_class = crate::error::class_string(errorclass).is_some()
            || class_of(errorclass) == Some(errorclass);
        if !is_class {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                format!("{errorclass} is not an error class"),
            ));
        }
        if errorcode.is_null() {
            return Err(MpiError::new(MPI_ERR_ARG, "errorcode is a null pointer"));
        }
        raw::put(errorcode, add(Some(errorclass))?);
        Ok(())
    });
    finish("MPI_Add_error_code", MPI_COMM_WORLD, r)
}

/// `MPI_Add_error_string`: the string of a user class or code (not of a predefined one).
#[no_mangle]
pub extern "C" fn MPI_Add_error_string(errorcode: c_int, string: *const c_char) -> c_int {
    let r = state::with(|s| s.running()).and_then(|()| {
        let i = index(errorcode)
            .filter(|_| class_of(errorcode).is_some())
            .ok_or_else(|| {
                MpiError::new(
                    MPI_ERR_ARG,
                    format!("{errorcode} is not a user error class or code"),
                )
            })?;
        let text = raw::cstr(string, MPI_MAX_ERROR_STRING)
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "string is a null pointer"))?;
        if text.len() >= MPI_MAX_ERROR_STRING {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                format!(
                    "the string has {} bytes; at most {} fit",
                    text.len(),
                    MPI_MAX_ERROR_STRING - 1
                ),
            ));
        }
        USER.with(|u| u.borrow_mut()[i].text = text);
        Ok(())
    });
    finish("MPI_Add_error_string", MPI_COMM_WORLD, r)
}
