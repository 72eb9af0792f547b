//! Communicators and groups: the C functions over [`zerorank::Communicator`] and
//! [`zerorank::group::Group`], which hold the logic (context agreement, split order, group
//! algebra). This file checks arguments and maps handles.

use crate::abi::*;
use crate::attr;
use crate::error::{finish, MpiError};
use crate::raw;
use crate::state::{self, CommEntry};
use std::ffi::{c_char, c_int, c_void};
use zerorank::communicator::CommComparison;
use zerorank::group::{Group, GroupComparison};
use zerorank::Communicator;

/// A zerorank error as an MPI error of `class`.
pub(crate) fn rust_error(class: c_int, e: zerorank::Error) -> MpiError {
    MpiError::new(class, e.to_string())
}

fn null_arg(what: &str) -> MpiError {
    MpiError::new(MPI_ERR_ARG, format!("{what} is a null pointer"))
}

/// Store a new communicator derived from `parent` (inheriting its error handler) and
/// write its handle, or `MPI_COMM_NULL` for `None`.
pub(crate) fn put_new_comm(
    parent: &CommEntry,
    c: Option<Communicator>,
    topo: Option<std::rc::Rc<crate::topo::Topology>>,
    out: *mut c_int,
) -> Result<(), MpiError> {
    let h = match c {
        None => MPI_COMM_NULL,
        Some(comm) => state::with(|s| {
            s.add_comm(CommEntry {
                comm,
                errhandler: parent.errhandler,
                name: std::rc::Rc::from(""),
                topo,
            })
        }),
    };
    raw::put(out, h)
        .then_some(())
        .ok_or_else(|| null_arg("newcomm"))
}

/// `MPI_Comm_size`.
#[no_mangle]
pub extern "C" fn MPI_Comm_size(comm: c_int, size: *mut c_int) -> c_int {
    let r = state::with(|s| {
        let n = s.comm(comm)?.comm.size();
        raw::put(size, n)
            .then_some(())
            .ok_or_else(|| null_arg("size"))
    });
    finish("MPI_Comm_size", comm, r)
}

/// `MPI_Comm_rank`.
#[no_mangle]
pub extern "C" fn MPI_Comm_rank(comm: c_int, rank: *mut c_int) -> c_int {
    let r = state::with(|s| {
        let me = s.comm(comm)?.comm.rank();
        raw::put(rank, me)
            .then_some(())
            .ok_or_else(|| null_arg("rank"))
    });
    finish("MPI_Comm_rank", comm, r)
}

/// `MPI_Comm_dup`: same group, new context; the error handler and topology are copied,
/// and the attributes whose copy callbacks say so (`attr.rs`). If a copy callback fails,
/// so does the call: what was copied is deleted and the new communicator freed.
#[no_mangle]
pub extern "C" fn MPI_Comm_dup(comm: c_int, newcomm: *mut c_int) -> c_int {
    let r = state::comm(comm).and_then(|e| {
        if newcomm.is_null() {
            return Err(null_arg("newcomm"));
        }
        let c = e.comm.dup().map_err(|x| rust_error(MPI_ERR_OTHER, x))?;
        put_new_comm(&e, Some(c), e.topo.clone(), newcomm)?;
        let h = raw::get(newcomm).expect("put_new_comm wrote it");
        attr::copy_all(attr::Kind::Comm, comm, h).inspect_err(|_| {
            if attr::delete_all(attr::Kind::Comm, h).is_err() {
                attr::forget_all(attr::Kind::Comm, h);
            }
            let _ = state::with(|s| s.remove_comm(h));
            raw::put(newcomm, MPI_COMM_NULL);
        })
    });
    finish("MPI_Comm_dup", comm, r)
}

/// `MPI_Comm_split`.
#[no_mangle]
pub extern "C" fn MPI_Comm_split(
    comm: c_int,
    color: c_int,
    key: c_int,
    newcomm: *mut c_int,
) -> c_int {
    let r = state::comm(comm).and_then(|e| {
        let color = match color {
            MPI_UNDEFINED => None,
            c if c >= 0 => Some(c),
            c => {
                return Err(MpiError::new(
                    MPI_ERR_ARG,
                    format!("color {c} is negative (and not MPI_UNDEFINED)"),
                ))
            }
        };
        let c = e
            .comm
            .split(color, key)
            .map_err(|x| rust_error(MPI_ERR_OTHER, x))?;
        put_new_comm(&e, c, None, newcomm)
    });
    finish("MPI_Comm_split", comm, r)
}

/// `MPI_Comm_split_type`: `MPI_COMM_TYPE_SHARED` (the ranks of this node) or
/// `MPI_UNDEFINED`.
#[no_mangle]
pub extern "C" fn MPI_Comm_split_type(
    comm: c_int,
    split_type: c_int,
    key: c_int,
    info: c_int,
    newcomm: *mut c_int,
) -> c_int {
    let r = state::comm(comm).and_then(|e| {
        crate::info::check_hints(info)?;
        let c = match split_type {
            MPI_COMM_TYPE_SHARED => Some(
                e.comm
                    .split_shared(key)
                    .map_err(|x| rust_error(MPI_ERR_OTHER, x))?,
            ),
            MPI_UNDEFINED => e
                .comm
                .split(None, key)
                .map_err(|x| rust_error(MPI_ERR_OTHER, x))?,
            t => {
                return Err(MpiError::new(
                    MPI_ERR_ARG,
                    format!("split type {t}: zerorank has MPI_COMM_TYPE_SHARED and MPI_UNDEFINED"),
                ))
            }
        };
        put_new_comm(&e, c, None, newcomm)
    });
    finish("MPI_Comm_split_type", comm, r)
}

/// `MPI_Comm_create`: called by every member of `comm`; members of `group` get the new
/// communicator, the others `MPI_COMM_NULL`.
#[no_mangle]
pub extern "C" fn MPI_Comm_create(comm: c_int, group: c_int, newcomm: *mut c_int) -> c_int {
    let r = state::comm(comm).and_then(|e| {
        let g = state::with(|s| s.group(group))?;
        let c = e
            .comm
            .create(&g)
            .map_err(|x| rust_error(MPI_ERR_GROUP, x))?;
        put_new_comm(&e, c, None, newcomm)
    });
    finish("MPI_Comm_create", comm, r)
}

/// `MPI_Comm_free`: the attributes' delete callbacks run first (the last set first); if
/// one fails, so does the call, and the communicator stays.
#[no_mangle]
pub extern "C" fn MPI_Comm_free(comm: *mut c_int) -> c_int {
    let Some(h) = raw::get(comm) else {
        return finish("MPI_Comm_free", MPI_COMM_WORLD, Err(null_arg("comm")));
    };
    let user_comm = h != MPI_COMM_WORLD && h != MPI_COMM_SELF && state::comm(h).is_ok();
    let r = if user_comm {
        attr::delete_all(attr::Kind::Comm, h)
    } else {
        Ok(())
    }
    .and_then(|()| state::with(|s| s.remove_comm(h)));
    if r.is_ok() {
        raw::put(comm, MPI_COMM_NULL);
        crate::ring::comm_freed(h);
    }
    finish(
        "MPI_Comm_free",
        if r.is_ok() { MPI_COMM_WORLD } else { h },
        r,
    )
}

/// `MPI_Comm_compare`.
#[no_mangle]
pub extern "C" fn MPI_Comm_compare(comm1: c_int, comm2: c_int, result: *mut c_int) -> c_int {
    let r = state::with(|s| {
        let a = s.comm(comm1)?;
        let b = s.comm(comm2)?;
        let v = if comm1 == comm2 {
            MPI_IDENT
        } else {
            match a.comm.compare(&b.comm) {
                CommComparison::Ident => MPI_IDENT,
                CommComparison::Congruent => MPI_CONGRUENT,
                CommComparison::Similar => MPI_SIMILAR,
                CommComparison::Unequal => MPI_UNEQUAL,
            }
        };
        raw::put(result, v)
            .then_some(())
            .ok_or_else(|| null_arg("result"))
    });
    finish("MPI_Comm_compare", comm1, r)
}

/// `MPI_Comm_group`.
#[no_mangle]
pub extern "C" fn MPI_Comm_group(comm: c_int, group: *mut c_int) -> c_int {
    let r = state::with(|s| {
        let g = s.comm(comm)?.comm.group();
        let h = s.add_group(g);
        raw::put(group, h)
            .then_some(())
            .ok_or_else(|| null_arg("group"))
    });
    finish("MPI_Comm_group", comm, r)
}

/// `MPI_Comm_test_inter`: zerorank has intracommunicators only.
#[no_mangle]
pub extern "C" fn MPI_Comm_test_inter(comm: c_int, flag: *mut c_int) -> c_int {
    let r = state::with(|s| {
        s.comm(comm)?;
        raw::put(flag, 0)
            .then_some(())
            .ok_or_else(|| null_arg("flag"))
    });
    finish("MPI_Comm_test_inter", comm, r)
}

/// `MPI_Comm_set_name`.
#[no_mangle]
pub extern "C" fn MPI_Comm_set_name(comm: c_int, name: *const c_char) -> c_int {
    let r = state::with(|s| {
        let n = raw::cstr(name, MPI_MAX_OBJECT_NAME - 1).ok_or_else(|| null_arg("name"))?;
        s.comm_mut(comm)?.name = std::rc::Rc::from(n);
        Ok(())
    });
    finish("MPI_Comm_set_name", comm, r)
}

/// `MPI_Comm_get_name`.
#[no_mangle]
pub extern "C" fn MPI_Comm_get_name(comm: c_int, name: *mut c_char, len: *mut c_int) -> c_int {
    let r = state::with(|s| {
        let e = s.comm(comm)?;
        raw::put_cstr(name, MPI_MAX_OBJECT_NAME, len, &e.name)
            .then_some(())
            .ok_or_else(|| null_arg("name"))
    });
    finish("MPI_Comm_get_name", comm, r)
}

/// Values of the predefined attributes (they live as long as the library).
static TAG_UB_VALUE: c_int = TAG_UB;
static HOST_VALUE: c_int = MPI_PROC_NULL;
static IO_VALUE: c_int = MPI_ANY_SOURCE;
static WTIME_IS_GLOBAL_VALUE: c_int = 0;
thread_local! {
    static UNIVERSE_SIZE_VALUE: std::cell::Cell<c_int> = const { std::cell::Cell::new(0) };
    static LASTUSEDCODE_VALUE: std::cell::Cell<c_int> = const { std::cell::Cell::new(0) };
}

/// `MPI_Comm_get_attr`: the predefined attributes of `MPI_COMM_WORLD` (`MPI_TAG_UB`,
/// `MPI_HOST`, `MPI_IO`, `MPI_WTIME_IS_GLOBAL`, `MPI_UNIVERSE_SIZE`, `MPI_LASTUSEDCODE`;
/// `MPI_APPNUM` is not set), and
/// the user's (`attr.rs`).
#[no_mangle]
pub extern "C" fn MPI_Comm_get_attr(
    comm: c_int,
    keyval: c_int,
    value: *mut c_void,
    flag: *mut c_int,
) -> c_int {
    let r = state::with(|s| {
        let e = s.comm(comm)?;
        let size = e.comm.size();
        let p: Option<*const c_int> = match keyval {
            MPI_TAG_UB => Some(&TAG_UB_VALUE),
            MPI_HOST => Some(&HOST_VALUE),
            MPI_IO => Some(&IO_VALUE),
            MPI_WTIME_IS_GLOBAL => Some(&WTIME_IS_GLOBAL_VALUE),
            MPI_UNIVERSE_SIZE => {
                let world = s.comm(MPI_COMM_WORLD)?.comm.size().max(size);
                Some(UNIVERSE_SIZE_VALUE.with(|v| {
                    v.set(world);
                    v.as_ptr().cast_const()
                }))
            }
            MPI_LASTUSEDCODE => Some(LASTUSEDCODE_VALUE.with(|v| {
                v.set(crate::error_codes::last_used());
                v.as_ptr().cast_const()
            })),
            MPI_APPNUM => None,
            k if k == MPI_KEYVAL_INVALID => {
                return Err(MpiError::new(MPI_ERR_KEYVAL, "MPI_KEYVAL_INVALID"))
            }
            k => return attr::get_out(attr::Kind::Comm, comm, k, value, flag),
        };
        match p {
            Some(p) => {
                if !raw::put(value.cast::<*const c_int>(), p) {
                    return Err(null_arg("attribute_val"));
                }
                raw::put(flag, 1);
            }
            None => {
                raw::put(flag, 0);
            }
        }
        Ok(())
    });
    finish("MPI_Comm_get_attr", comm, r)
}

// ---------------------------------------------------------------------------------------
// Groups

fn with_group(
    name: &str,
    group: c_int,
    f: impl FnOnce(&mut state::State, Group) -> Result<(), MpiError>,
) -> c_int {
    let r = state::with(|s| {
        let g = s.group(group)?;
        f(s, g)
    });
    finish(name, MPI_COMM_WORLD, r)
}

fn put_group(s: &mut state::State, g: Group, out: *mut c_int) -> Result<(), MpiError> {
    if out.is_null() {
        return Err(null_arg("newgroup"));
    }
    let h = s.add_group(g);
    raw::put(out, h);
    Ok(())
}

fn group_error(e: zerorank::Error) -> MpiError {
    let class = match e {
        zerorank::Error::InvalidRank { .. } => MPI_ERR_RANK,
        _ => MPI_ERR_ARG,
    };
    rust_error(class, e)
}

/// The `n` ints at `p`, checked.
fn ints<'a>(p: *const c_int, n: c_int, what: &str) -> Result<&'a [c_int], MpiError> {
    if n < 0 {
        return Err(MpiError::new(
            MPI_ERR_ARG,
            format!("negative {what} count {n}"),
        ));
    }
    raw::slice(p, n as usize).ok_or_else(|| null_arg(what))
}

/// `MPI_Group_size`.
#[no_mangle]
pub extern "C" fn MPI_Group_size(group: c_int, size: *mut c_int) -> c_int {
    with_group("MPI_Group_size", group, |_, g| {
        raw::put(size, g.size())
            .then_some(())
            .ok_or_else(|| null_arg("size"))
    })
}

/// `MPI_Group_rank`: this process's rank in the group, or `MPI_UNDEFINED`.
#[no_mangle]
pub extern "C" fn MPI_Group_rank(group: c_int, rank: *mut c_int) -> c_int {
    with_group("MPI_Group_rank", group, |_, g| {
        let r = g.rank().unwrap_or(MPI_UNDEFINED);
        raw::put(rank, r)
            .then_some(())
            .ok_or_else(|| null_arg("rank"))
    })
}

/// `MPI_Group_incl`.
#[no_mangle]
pub extern "C" fn MPI_Group_incl(
    group: c_int,
    n: c_int,
    ranks: *const c_int,
    out: *mut c_int,
) -> c_int {
    with_group("MPI_Group_incl", group, |s, g| {
        let ranks = ints(ranks, n, "ranks")?;
        let ng = g.incl(ranks).map_err(group_error)?;
        put_group(s, ng, out)
    })
}

/// `MPI_Group_excl`.
#[no_mangle]
pub extern "C" fn MPI_Group_excl(
    group: c_int,
    n: c_int,
    ranks: *const c_int,
    out: *mut c_int,
) -> c_int {
    with_group("MPI_Group_excl", group, |s, g| {
        let ranks = ints(ranks, n, "ranks")?;
        let ng = g.excl(ranks).map_err(group_error)?;
        put_group(s, ng, out)
    })
}

/// `MPI_Group_range_incl`.
#[no_mangle]
pub extern "C" fn MPI_Group_range_incl(
    group: c_int,
    n: c_int,
    ranges: *const [c_int; 3],
    out: *mut c_int,
) -> c_int {
    with_group("MPI_Group_range_incl", group, |s, g| {
        if n < 0 {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                format!("negative range count {n}"),
            ));
        }
        let ranges = raw::slice(ranges, n as usize).ok_or_else(|| null_arg("ranges"))?;
        let ng = g.range_incl(ranges).map_err(group_error)?;
        put_group(s, ng, out)
    })
}

/// `MPI_Group_range_excl`.
#[no_mangle]
pub extern "C" fn MPI_Group_range_excl(
    group: c_int,
    n: c_int,
    ranges: *const [c_int; 3],
    out: *mut c_int,
) -> c_int {
    with_group("MPI_Group_range_excl", group, |s, g| {
        if n < 0 {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                format!("negative range count {n}"),
            ));
        }
        let ranges = raw::slice(ranges, n as usize).ok_or_else(|| null_arg("ranges"))?;
        let ng = g.range_excl(ranges).map_err(group_error)?;
        put_group(s, ng, out)
    })
}

/// The group operations of two groups.
fn binary(
    name: &str,
    g1: c_int,
    g2: c_int,
    out: *mut c_int,
    f: impl FnOnce(&Group, &Group) -> Group,
) -> c_int {
    let r = state::with(|s| {
        let a = s.group(g1)?;
        let b = s.group(g2)?;
        put_group(s, f(&a, &b), out)
    });
    finish(name, MPI_COMM_WORLD, r)
}

/// `MPI_Group_union`.
#[no_mangle]
pub extern "C" fn MPI_Group_union(g1: c_int, g2: c_int, out: *mut c_int) -> c_int {
    binary("MPI_Group_union", g1, g2, out, Group::union)
}

/// `MPI_Group_intersection`.
#[no_mangle]
pub extern "C" fn MPI_Group_intersection(g1: c_int, g2: c_int, out: *mut c_int) -> c_int {
    binary("MPI_Group_intersection", g1, g2, out, Group::intersection)
}

/// `MPI_Group_difference`.
#[no_mangle]
pub extern "C" fn MPI_Group_difference(g1: c_int, g2: c_int, out: *mut c_int) -> c_int {
    binary("MPI_Group_difference", g1, g2, out, Group::difference)
}

/// `MPI_Group_compare`.
#[no_mangle]
pub extern "C" fn MPI_Group_compare(g1: c_int, g2: c_int, result: *mut c_int) -> c_int {
    let r = state::with(|s| {
        let a = s.group(g1)?;
        let b = s.group(g2)?;
        let v = match a.compare(&b) {
            GroupComparison::Ident => MPI_IDENT,
            GroupComparison::Similar => MPI_SIMILAR,
            GroupComparison::Unequal => MPI_UNEQUAL,
        };
        raw::put(result, v)
            .then_some(())
            .ok_or_else(|| null_arg("result"))
    });
    finish("MPI_Group_compare", MPI_COMM_WORLD, r)
}

/// `MPI_Group_translate_ranks`: `MPI_PROC_NULL` stays `MPI_PROC_NULL`; a rank not in the
/// second group becomes `MPI_UNDEFINED`.
#[no_mangle]
pub extern "C" fn MPI_Group_translate_ranks(
    g1: c_int,
    n: c_int,
    ranks1: *const c_int,
    g2: c_int,
    ranks2: *mut c_int,
) -> c_int {
    let r = state::with(|s| {
        let a = s.group(g1)?;
        let b = s.group(g2)?;
        let r1 = ints(ranks1, n, "ranks1")?;
        let out = raw::array_mut(ranks2, n as usize).ok_or_else(|| null_arg("ranks2"))?;
        for (i, &r) in r1.iter().enumerate() {
            out[i] = if r == MPI_PROC_NULL {
                MPI_PROC_NULL
            } else if r < 0 || r >= a.size() {
                return Err(MpiError::new(
                    MPI_ERR_RANK,
                    format!("rank {r} is not in the first group of {} ranks", a.size()),
                ));
            } else {
                a.world_rank(r)
                    .and_then(|w| b.rank_of_world(w))
                    .map_or(MPI_UNDEFINED, |x| x as c_int)
            };
        }
        Ok(())
    });
    finish("MPI_Group_translate_ranks", MPI_COMM_WORLD, r)
}

/// `MPI_Group_free`.
#[no_mangle]
pub extern "C" fn MPI_Group_free(group: *mut c_int) -> c_int {
    let Some(h) = raw::get(group) else {
        return finish("MPI_Group_free", MPI_COMM_WORLD, Err(null_arg("group")));
    };
    let r = state::with(|s| s.remove_group(h));
    if r.is_ok() {
        raw::put(group, MPI_GROUP_NULL);
    }
    finish("MPI_Group_free", MPI_COMM_WORLD, r)
}
