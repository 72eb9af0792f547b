//! The MPI functions of datatypes: constructors, commit and free, queries (size,
//! extents, names, envelope and contents), addresses, `MPI_Get_elements`, and packing.
//! Every error goes to `MPI_COMM_WORLD`'s handler (to the communicator's for the pack
//! calls).

use super::layout::Layout;
use super::{builtin, combiner, lookup, lookup_any, mem, register, register_info, resolve};
use super::{Def, Old};
use crate::abi::*;
use crate::error::{finish, MpiError};
use crate::raw;
use std::ffi::{c_char, c_int, c_void};

/// `MPI_MAX_OBJECT_NAME`.
const MAX_OBJECT_NAME: usize = 128;

fn arg(what: impl Into<String>) -> MpiError {
    MpiError::new(MPI_ERR_ARG, what)
}

/// A count argument: `MPI_ERR_COUNT` if negative.
fn count(n: c_int, what: &str) -> Result<usize, MpiError> {
    usize::try_from(n).map_err(|_| MpiError::new(MPI_ERR_COUNT, format!("negative {what} {n}")))
}

/// A block length: `MPI_ERR_ARG` if negative.
fn blocklen(n: c_int) -> Result<usize, MpiError> {
    usize::try_from(n).map_err(|_| arg(format!("negative block length {n}")))
}

/// Check that out-parameter `p` is not null.
fn out<T>(p: *mut T, what: &str) -> Result<(), MpiError> {
    if p.is_null() {
        return Err(arg(format!("{what} is a null pointer")));
    }
    Ok(())
}

/// An input array of `n` entries.
fn input<'a, T>(p: *const T, n: usize, what: &str) -> Result<&'a [T], MpiError> {
    mem::array(p, n).ok_or_else(|| arg(format!("{what} is a null pointer")))
}

fn overflow() -> MpiError {
    arg("displacement overflows the address space")
}

/// `d` elements of extent `ext`, in bytes.
fn times(d: c_int, ext: isize) -> Result<isize, MpiError> {
    (d as isize).checked_mul(ext).ok_or_else(overflow)
}

fn int_or_undefined(n: usize) -> c_int {
    c_int::try_from(n).unwrap_or(MPI_UNDEFINED)
}

// ---------------------------------------------------------------------------------------
// Constructors

/// Build a type with `f` (from checked arguments) and store its handle in `newtype`.
fn construct(
    name: &str,
    newtype: *mut c_int,
    f: impl FnOnce() -> Result<(Layout, Def), MpiError>,
) -> c_int {
    let r = out(newtype, "newtype").and_then(|()| {
        let (layout, def) = f()?;
        let h = register(layout, def, false)?;
        raw::put(newtype, h);
        Ok(())
    });
    finish(name, MPI_COMM_WORLD, r)
}

/// `MPI_Type_contiguous`.
#[no_mangle]
pub extern "C" fn MPI_Type_contiguous(n: c_int, oldtype: c_int, newtype: *mut c_int) -> c_int {
    construct("MPI_Type_contiguous", newtype, || {
        let c = count(n, "count")?;
        let old = resolve(oldtype)?;
        let l = Layout::contiguous(c, &old.info.0)?;
        let def = Def {
            combiner: combiner::CONTIGUOUS,
            ints: vec![n],
            addrs: vec![],
            types: vec![old.as_old(oldtype)],
        };
        Ok((l, def))
    })
}

/// `MPI_Type_vector`: `n` blocks of `bl` elements, `stride` elements apart.
#[no_mangle]
pub extern "C" fn MPI_Type_vector(
    n: c_int,
    bl: c_int,
    stride: c_int,
    oldtype: c_int,
    newtype: *mut c_int,
) -> c_int {
    construct("MPI_Type_vector", newtype, || {
        let (c, b) = (count(n, "count")?, blocklen(bl)?);
        let old = resolve(oldtype)?;
        let stride_bytes = times(stride, old.info.extent())?;
        let l = Layout::hvector(c, b, stride_bytes, &old.info.0)?;
        let def = Def {
            combiner: combiner::VECTOR,
            ints: vec![n, bl, stride],
            addrs: vec![],
            types: vec![old.as_old(oldtype)],
        };
        Ok((l, def))
    })
}

/// `MPI_Type_create_hvector`: `n` blocks of `bl` elements, `stride` bytes apart.
#[no_mangle]
pub extern "C" fn MPI_Type_create_hvector(
    n: c_int,
    bl: c_int,
    stride: isize,
    oldtype: c_int,
    newtype: *mut c_int,
) -> c_int {
    construct("MPI_Type_create_hvector", newtype, || {
        let (c, b) = (count(n, "count")?, blocklen(bl)?);
        let old = resolve(oldtype)?;
        let l = Layout::hvector(c, b, stride, &old.info.0)?;
        let def = Def {
            combiner: combiner::HVECTOR,
            ints: vec![n, bl],
            addrs: vec![stride],
            types: vec![old.as_old(oldtype)],
        };
        Ok((l, def))
    })
}

/// `MPI_Type_indexed`: blocks of `bls[i]` elements at `disps[i]` elements.
#[no_mangle]
pub extern "C" fn MPI_Type_indexed(
    n: c_int,
    bls: *const c_int,
    disps: *const c_int,
    oldtype: c_int,
    newtype: *mut c_int,
) -> c_int {
    construct("MPI_Type_indexed", newtype, || {
        let c = count(n, "count")?;
        let (bls, disps) = (
            input(bls, c, "array_of_blocklengths")?,
            input(disps, c, "array_of_displacements")?,
        );
        let old = resolve(oldtype)?;
        let ext = old.info.extent();
        let blocks = bls
            .iter()
            .zip(disps)
            .map(|(&b, &d)| Ok((blocklen(b)?, times(d, ext)?)))
            .collect::<Result<Vec<_>, MpiError>>()?;
        let l = Layout::hindexed(blocks, &old.info.0)?;
        let def = Def {
            combiner: combiner::INDEXED,
            ints: std::iter::once(n)
                .chain(bls.iter().copied())
                .chain(disps.iter().copied())
                .collect(),
            addrs: vec![],
            types: vec![old.as_old(oldtype)],
        };
        Ok((l, def))
    })
}

/// `MPI_Type_create_hindexed`: blocks of `bls[i]` elements at `disps[i]` bytes.
#[no_mangle]
pub extern "C" fn MPI_Type_create_hindexed(
    n: c_int,
    bls: *const c_int,
    disps: *const isize,
    oldtype: c_int,
    newtype: *mut c_int,
) -> c_int {
    construct("MPI_Type_create_hindexed", newtype, || {
        let c = count(n, "count")?;
        let (bls, disps) = (
            input(bls, c, "array_of_blocklengths")?,
            input(disps, c, "array_of_displacements")?,
        );
        let old = resolve(oldtype)?;
        let blocks = bls
            .iter()
            .zip(disps)
            .map(|(&b, &d)| Ok((blocklen(b)?, d)))
            .collect::<Result<Vec<_>, MpiError>>()?;
        let l = Layout::hindexed(blocks, &old.info.0)?;
        let def = Def {
            combiner: combiner::HINDEXED,
            ints: std::iter::once(n).chain(bls.iter().copied()).collect(),
            addrs: disps.to_vec(),
            types: vec![old.as_old(oldtype)],
        };
        Ok((l, def))
    })
}

/// `MPI_Type_create_indexed_block`: blocks of `bl` elements at `disps[i]` elements.
#[no_mangle]
pub extern "C" fn MPI_Type_create_indexed_block(
    n: c_int,
    bl: c_int,
    disps: *const c_int,
    oldtype: c_int,
    newtype: *mut c_int,
) -> c_int {
    construct("MPI_Type_create_indexed_block", newtype, || {
        let (c, b) = (count(n, "count")?, blocklen(bl)?);
        let disps = input(disps, c, "array_of_displacements")?;
        let old = resolve(oldtype)?;
        let ext = old.info.extent();
        let blocks = disps
            .iter()
            .map(|&d| Ok((b, times(d, ext)?)))
            .collect::<Result<Vec<_>, MpiError>>()?;
        let l = Layout::hindexed(blocks, &old.info.0)?;
        let def = Def {
            combiner: combiner::INDEXED_BLOCK,
            ints: [n, bl].into_iter().chain(disps.iter().copied()).collect(),
            addrs: vec![],
            types: vec![old.as_old(oldtype)],
        };
        Ok((l, def))
    })
}

/// `MPI_Type_create_hindexed_block`: blocks of `bl` elements at `disps[i]` bytes.
#[no_mangle]
pub extern "C" fn MPI_Type_create_hindexed_block(
    n: c_int,
    bl: c_int,
    disps: *const isize,
    oldtype: c_int,
    newtype: *mut c_int,
) -> c_int {
    construct("MPI_Type_create_hindexed_block", newtype, || {
        let (c, b) = (count(n, "count")?, blocklen(bl)?);
        let disps = input(disps, c, "array_of_displacements")?;
        let old = resolve(oldtype)?;
        let l = Layout::hindexed(disps.iter().map(|&d| (b, d)), &old.info.0)?;
        let def = Def {
            combiner: combiner::HINDEXED_BLOCK,
            ints: vec![n, bl],
            addrs: disps.to_vec(),
            types: vec![old.as_old(oldtype)],
        };
        Ok((l, def))
    })
}

/// `MPI_Type_create_struct`: blocks of `bls[i]` elements of `types[i]` at `disps[i]`
/// bytes; the extent is padded to the largest alignment inside.
#[no_mangle]
pub extern "C" fn MPI_Type_create_struct(
    n: c_int,
    bls: *const c_int,
    disps: *const isize,
    types: *const c_int,
    newtype: *mut c_int,
) -> c_int {
    construct("MPI_Type_create_struct", newtype, || {
        let c = count(n, "count")?;
        let bls = input(bls, c, "array_of_blocklengths")?;
        let disps = input(disps, c, "array_of_displacements")?;
        let types = input(types, c, "array_of_types")?;
        let olds = types
            .iter()
            .map(|&t| resolve(t))
            .collect::<Result<Vec<_>, MpiError>>()?;
        let lens = bls
            .iter()
            .map(|&b| blocklen(b))
            .collect::<Result<Vec<_>, MpiError>>()?;
        let l = Layout::structure(
            lens.iter()
                .zip(disps)
                .zip(&olds)
                .map(|((&b, &d), o)| (b, d, &*o.info.0)),
        )?;
        let def = Def {
            combiner: combiner::STRUCT,
            ints: std::iter::once(n).chain(bls.iter().copied()).collect(),
            addrs: disps.to_vec(),
            types: olds.iter().zip(types).map(|(o, &t)| o.as_old(t)).collect(),
        };
        Ok((l, def))
    })
}

/// `MPI_Type_create_resized`.
#[no_mangle]
pub extern "C" fn MPI_Type_create_resized(
    oldtype: c_int,
    lb: isize,
    extent: isize,
    newtype: *mut c_int,
) -> c_int {
    construct("MPI_Type_create_resized", newtype, || {
        let old = resolve(oldtype)?;
        let l = Layout::resized(&old.info.0, lb, extent)?;
        let def = Def {
            combiner: combiner::RESIZED,
            ints: vec![],
            addrs: vec![lb, extent],
            types: vec![old.as_old(oldtype)],
        };
        Ok((l, def))
    })
}

/// `MPI_Type_dup`: the same type (committed if the old one is), without its name.
#[no_mangle]
pub extern "C" fn MPI_Type_dup(oldtype: c_int, newtype: *mut c_int) -> c_int {
    let r = out(newtype, "newtype").and_then(|()| {
        let old = resolve(oldtype)?;
        let def = Def {
            combiner: combiner::DUP,
            ints: vec![],
            addrs: vec![],
            types: vec![old.as_old(oldtype)],
        };
        let h = register_info(old.info.clone(), def.into(), old.committed)?;
        raw::put(newtype, h);
        // The attributes whose copy callbacks say so; if one fails, so does the call.
        crate::attr::copy_all(crate::attr::Kind::Type, oldtype, h).inspect_err(|_| {
            if crate::attr::delete_all(crate::attr::Kind::Type, h).is_err() {
                crate::attr::forget_all(crate::attr::Kind::Type, h);
            }
            let _ = super::free(h);
            raw::put(newtype, MPI_DATATYPE_NULL);
        })
    });
    finish("MPI_Type_dup", MPI_COMM_WORLD, r)
}

/// `MPI_Type_commit` (a predefined type is always committed).
#[no_mangle]
pub extern "C" fn MPI_Type_commit(datatype: *mut c_int) -> c_int {
    let r = raw::get(datatype)
        .ok_or_else(|| arg("datatype is a null pointer"))
        .and_then(super::commit);
    finish("MPI_Type_commit", MPI_COMM_WORLD, r)
}

/// `MPI_Type_free`: the handle becomes `MPI_DATATYPE_NULL`; operations using the type
/// and types built from it keep it. Its attributes' delete callbacks run first (see
/// `attr.rs`); if one fails, so does the call, and the type stays.
#[no_mangle]
pub extern "C" fn MPI_Type_free(datatype: *mut c_int) -> c_int {
    let r = raw::get(datatype)
        .ok_or_else(|| arg("datatype is a null pointer"))
        .and_then(|h| {
            // A predefined type cannot be freed (super::free says so) and keeps its
            // attributes; a derived one's delete callbacks run first.
            if resolve(h).is_ok_and(|_| super::builtin::index(h).is_none()) {
                crate::attr::delete_all(crate::attr::Kind::Type, h)?;
            }
            super::free(h)
        })
        .map(|()| {
            raw::put(datatype, MPI_DATATYPE_NULL);
        });
    finish("MPI_Type_free", MPI_COMM_WORLD, r)
}

// ---------------------------------------------------------------------------------------
// Queries

/// `MPI_Type_size` (`MPI_UNDEFINED` if it does not fit an int).
#[no_mangle]
pub extern "C" fn MPI_Type_size(datatype: c_int, size: *mut c_int) -> c_int {
    let r = out(size, "size").and_then(|()| {
        let t = lookup_any(datatype)?;
        raw::put(size, int_or_undefined(t.size()));
        Ok(())
    });
    finish("MPI_Type_size", MPI_COMM_WORLD, r)
}

/// `MPI_Type_size_x`.
#[no_mangle]
pub extern "C" fn MPI_Type_size_x(datatype: c_int, size: *mut i64) -> c_int {
    let r = out(size, "size").and_then(|()| {
        let t = lookup_any(datatype)?;
        raw::put(size, t.size() as i64);
        Ok(())
    });
    finish("MPI_Type_size_x", MPI_COMM_WORLD, r)
}

/// (lb, extent) or (true lb, true extent) of `datatype` into two out-parameters.
fn bounds(name: &str, datatype: c_int, lb: *mut isize, extent: *mut isize, truly: bool) -> c_int {
    let r = out(lb, "lb")
        .and_then(|()| out(extent, "extent"))
        .and_then(|()| {
            let t = lookup_any(datatype)?;
            let (l, e) = if truly {
                (t.true_lb(), t.true_extent())
            } else {
                (t.lb(), t.extent())
            };
            raw::put(lb, l);
            raw::put(extent, e);
            Ok(())
        });
    finish(name, MPI_COMM_WORLD, r)
}

/// `MPI_Type_get_extent`.
#[no_mangle]
pub extern "C" fn MPI_Type_get_extent(
    datatype: c_int,
    lb: *mut isize,
    extent: *mut isize,
) -> c_int {
    bounds("MPI_Type_get_extent", datatype, lb, extent, false)
}

/// `MPI_Type_get_extent_x`.
#[no_mangle]
pub extern "C" fn MPI_Type_get_extent_x(
    datatype: c_int,
    lb: *mut isize,
    extent: *mut isize,
) -> c_int {
    bounds("MPI_Type_get_extent_x", datatype, lb, extent, false)
}

/// `MPI_Type_get_true_extent`.
#[no_mangle]
pub extern "C" fn MPI_Type_get_true_extent(
    datatype: c_int,
    lb: *mut isize,
    extent: *mut isize,
) -> c_int {
    bounds("MPI_Type_get_true_extent", datatype, lb, extent, true)
}

/// `MPI_Type_get_true_extent_x`.
#[no_mangle]
pub extern "C" fn MPI_Type_get_true_extent_x(
    datatype: c_int,
    lb: *mut isize,
    extent: *mut isize,
) -> c_int {
    bounds("MPI_Type_get_true_extent_x", datatype, lb, extent, true)
}

/// `MPI_Type_get_name`: names of predefined types as MPICH prints them; empty for an
/// unnamed derived type.
#[no_mangle]
pub extern "C" fn MPI_Type_get_name(datatype: c_int, name: *mut c_char, len: *mut c_int) -> c_int {
    let r = out(len, "resultlen").and_then(|()| {
        let s = super::get_name(datatype)?;
        if !raw::put_cstr(name, MAX_OBJECT_NAME, len, &s) {
            return Err(arg("type_name is a null pointer"));
        }
        Ok(())
    });
    finish("MPI_Type_get_name", MPI_COMM_WORLD, r)
}

/// `MPI_Type_set_name` (names longer than `MPI_MAX_OBJECT_NAME - 1` bytes are cut).
#[no_mangle]
pub extern "C" fn MPI_Type_set_name(datatype: c_int, name: *const c_char) -> c_int {
    let r = mem::cstr(name, MAX_OBJECT_NAME - 1)
        .ok_or_else(|| arg("type_name is a null pointer"))
        .and_then(|s| super::set_name(datatype, s));
    finish("MPI_Type_set_name", MPI_COMM_WORLD, r)
}

/// `MPI_Type_get_envelope`.
#[no_mangle]
pub extern "C" fn MPI_Type_get_envelope(
    datatype: c_int,
    num_integers: *mut c_int,
    num_addresses: *mut c_int,
    num_datatypes: *mut c_int,
    comb: *mut c_int,
) -> c_int {
    let r = out(num_integers, "num_integers")
        .and_then(|()| out(num_addresses, "num_addresses"))
        .and_then(|()| out(num_datatypes, "num_datatypes"))
        .and_then(|()| out(comb, "combiner"))
        .and_then(|()| {
            let t = resolve(datatype)?;
            let (c, ni, na, nd) = match &t.def {
                None => (combiner::NAMED, 0, 0, 0),
                Some(d) => (d.combiner, d.ints.len(), d.addrs.len(), d.types.len()),
            };
            raw::put(num_integers, ni as c_int);
            raw::put(num_addresses, na as c_int);
            raw::put(num_datatypes, nd as c_int);
            raw::put(comb, c);
            Ok(())
        });
    finish("MPI_Type_get_envelope", MPI_COMM_WORLD, r)
}

/// `MPI_Type_get_contents`: the arguments of the constructor; derived old types come
/// back as new handles (committed) that the caller frees.
#[no_mangle]
pub extern "C" fn MPI_Type_get_contents(
    datatype: c_int,
    max_integers: c_int,
    max_addresses: c_int,
    max_datatypes: c_int,
    integers: *mut c_int,
    addresses: *mut isize,
    datatypes: *mut c_int,
) -> c_int {
    let r = (|| {
        let t = resolve(datatype)?;
        let Some(d) = &t.def else {
            return Err(MpiError::new(
                MPI_ERR_TYPE,
                format!(
                    "{} is predefined (MPI_COMBINER_NAMED): it has no contents",
                    super::describe(datatype)
                ),
            ));
        };
        let fits = |max: c_int, n: usize, what: &str| {
            if usize::try_from(max).map_or(true, |m| m < n) {
                Err(arg(format!("{what} = {max} is less than the {n} entries")))
            } else {
                Ok(())
            }
        };
        fits(max_integers, d.ints.len(), "max_integers")?;
        fits(max_addresses, d.addrs.len(), "max_addresses")?;
        fits(max_datatypes, d.types.len(), "max_datatypes")?;
        let null = |what: &str| arg(format!("{what} is a null pointer"));
        raw::array_mut(integers, d.ints.len())
            .ok_or_else(|| null("array_of_integers"))?
            .copy_from_slice(&d.ints);
        raw::array_mut(addresses, d.addrs.len())
            .ok_or_else(|| null("array_of_addresses"))?
            .copy_from_slice(&d.addrs);
        let handles =
            raw::array_mut(datatypes, d.types.len()).ok_or_else(|| null("array_of_datatypes"))?;
        for (h, old) in handles.iter_mut().zip(&d.types) {
            *h = match old {
                Old::Named(n) => *n,
                Old::Derived { info, def } => register_info(info.clone(), def.clone(), true)?,
            };
        }
        Ok(())
    })();
    finish("MPI_Type_get_contents", MPI_COMM_WORLD, r)
}

// ---------------------------------------------------------------------------------------
// Addresses

/// `MPI_Get_address`.
#[no_mangle]
pub extern "C" fn MPI_Get_address(location: *const c_void, address: *mut isize) -> c_int {
    let r = out(address, "address").map(|()| {
        raw::put(address, mem::address_of(location));
    });
    finish("MPI_Get_address", MPI_COMM_WORLD, r)
}

/// `MPI_Aint_add`.
#[no_mangle]
pub extern "C" fn MPI_Aint_add(base: isize, disp: isize) -> isize {
    base.wrapping_add(disp)
}

/// `MPI_Aint_diff`.
#[no_mangle]
pub extern "C" fn MPI_Aint_diff(addr1: isize, addr2: isize) -> isize {
    addr1.wrapping_sub(addr2)
}

// ---------------------------------------------------------------------------------------
// Elements of a received message

fn elements(status: *const MpiStatus, datatype: c_int) -> Result<Option<usize>, MpiError> {
    if status as usize == raw::STATUS_IGNORE {
        return Err(arg("status is MPI_STATUS_IGNORE"));
    }
    let st = raw::get(status).ok_or_else(|| arg("status is a null pointer"))?;
    let t = lookup(datatype)?;
    let bytes = usize::try_from(st.bytes()).unwrap_or(usize::MAX);
    Ok(t.elements(bytes))
}

/// `MPI_Get_elements`: basic elements received (a pair type's value and index count as
/// two), or `MPI_UNDEFINED`.
#[no_mangle]
pub extern "C" fn MPI_Get_elements(
    status: *const MpiStatus,
    datatype: c_int,
    count: *mut c_int,
) -> c_int {
    let r = out(count, "count").and_then(|()| {
        let n = elements(status, datatype)?;
        raw::put(count, n.map_or(MPI_UNDEFINED, int_or_undefined));
        Ok(())
    });
    finish("MPI_Get_elements", MPI_COMM_WORLD, r)
}

/// `MPI_Get_elements_x`.
#[no_mangle]
pub extern "C" fn MPI_Get_elements_x(
    status: *const MpiStatus,
    datatype: c_int,
    count: *mut i64,
) -> c_int {
    let r = out(count, "count").and_then(|()| {
        let n = elements(status, datatype)?;
        raw::put(count, n.map_or(i64::from(MPI_UNDEFINED), |n| n as i64));
        Ok(())
    });
    finish("MPI_Get_elements_x", MPI_COMM_WORLD, r)
}

// ---------------------------------------------------------------------------------------
// Packing. The packed form is the data in type-map order, native representation (the
// same bytes a message of the type carries), so MPI_PACKED buffers interoperate with
// typed messages of the same signature.

/// `count` elements of `t` in bytes, checked against `int`.
fn packed_len(n: usize, size: usize) -> Result<usize, MpiError> {
    n.checked_mul(size)
        .filter(|&b| b <= c_int::MAX as usize)
        .ok_or_else(|| arg(format!("{n} elements of {size} bytes exceed the int range")))
}

/// A buffer argument that must not be null when it has data (`MPI_BOTTOM` is null, so
/// only predefined types, which hold no absolute addresses, are checked).
fn data_buffer(p: *const c_void, datatype: c_int, bytes: usize) -> Result<(), MpiError> {
    if p.is_null() && bytes > 0 && builtin::index(datatype).is_some() {
        return Err(MpiError::new(MPI_ERR_BUFFER, "buffer is a null pointer"));
    }
    Ok(())
}

/// `MPI_Pack`.
#[no_mangle]
pub extern "C" fn MPI_Pack(
    inbuf: *const c_void,
    incount: c_int,
    datatype: c_int,
    outbuf: *mut c_void,
    outsize: c_int,
    position: *mut c_int,
    comm: c_int,
) -> c_int {
    let r = (|| {
        let n = count(incount, "incount")?;
        let t = lookup(datatype)?;
        let pos = raw::get(position).ok_or_else(|| arg("position is a null pointer"))?;
        let outsize = count(outsize, "outsize")?;
        let pos = usize::try_from(pos)
            .ok()
            .filter(|&p| p <= outsize)
            .ok_or_else(|| {
                arg(format!(
                    "position {pos} is outside the buffer of {outsize} bytes"
                ))
            })?;
        let len = packed_len(n, t.size())?;
        if len > outsize - pos {
            return Err(MpiError::new(
                MPI_ERR_TRUNCATE,
                format!("{len} packed bytes do not fit at position {pos} of {outsize} bytes"),
            ));
        }
        data_buffer(inbuf, datatype, len)?;
        let dst = raw::bytes_mut(outbuf.cast::<u8>().wrapping_add(pos), len)
            .filter(|_| !outbuf.is_null() || len == 0)
            .ok_or_else(|| MpiError::new(MPI_ERR_BUFFER, "outbuf is a null pointer"))?;
        // SAFETY: `inbuf` holds `incount` elements of the type (the caller's obligation
        // under MPI); it does not overlap `outbuf` (MPI forbids it).
        unsafe { t.pack(inbuf.cast(), n, dst) };
        raw::put(position, (pos + len) as c_int);
        Ok(())
    })();
    finish("MPI_Pack", comm, r)
}

/// `MPI_Unpack`.
#[no_mangle]
pub extern "C" fn MPI_Unpack(
    inbuf: *const c_void,
    insize: c_int,
    position: *mut c_int,
    outbuf: *mut c_void,
    outcount: c_int,
    datatype: c_int,
    comm: c_int,
) -> c_int {
    let r = (|| {
        let n = count(outcount, "outcount")?;
        let t = lookup(datatype)?;
        let pos = raw::get(position).ok_or_else(|| arg("position is a null pointer"))?;
        let insize = count(insize, "insize")?;
        let pos = usize::try_from(pos)
            .ok()
            .filter(|&p| p <= insize)
            .ok_or_else(|| {
                arg(format!(
                    "position {pos} is outside the buffer of {insize} bytes"
                ))
            })?;
        let len = packed_len(n, t.size())?;
        if len > insize - pos {
            return Err(MpiError::new(
                MPI_ERR_TRUNCATE,
                format!(
                    "unpacking {len} bytes at position {pos} overruns the {insize} packed bytes"
                ),
            ));
        }
        data_buffer(outbuf, datatype, len)?;
        let src = raw::bytes(inbuf.cast::<u8>().wrapping_add(pos), len)
            .filter(|_| !inbuf.is_null() || len == 0)
            .ok_or_else(|| MpiError::new(MPI_ERR_BUFFER, "inbuf is a null pointer"))?;
        // SAFETY: `outbuf` holds `outcount` writable elements of the type (the caller's
        // obligation under MPI); it does not overlap `inbuf`.
        unsafe { t.unpack(src, outbuf.cast(), n) };
        raw::put(position, (pos + len) as c_int);
        Ok(())
    })();
    finish("MPI_Unpack", comm, r)
}

/// `MPI_Pack_size`: exactly the packed size (zerorank's packed form has no header).
#[no_mangle]
pub extern "C" fn MPI_Pack_size(
    incount: c_int,
    datatype: c_int,
    comm: c_int,
    size: *mut c_int,
) -> c_int {
    let r = out(size, "size").and_then(|()| {
        let n = count(incount, "incount")?;
        let t = lookup_any(datatype)?;
        raw::put(size, packed_len(n, t.size())? as c_int);
        Ok(())
    });
    finish("MPI_Pack_size", comm, r)
}

/// `MPI_Type_match_size`: the Fortran-sized type of `typeclass` and `size` bytes, as MPICH
/// answers (`MPI_INTEGERn`, `MPI_REALn`, `MPI_COMPLEXn`).
#[no_mangle]
pub extern "C" fn MPI_Type_match_size(
    typeclass: c_int,
    size: c_int,
    datatype: *mut c_int,
) -> c_int {
    const REAL: c_int = 1;
    const INTEGER: c_int = 2;
    const COMPLEX: c_int = 3;
    let name = match (typeclass, size) {
        (INTEGER, 1) => Some("MPI_INTEGER1"),
        (INTEGER, 2) => Some("MPI_INTEGER2"),
        (INTEGER, 4) => Some("MPI_INTEGER4"),
        (INTEGER, 8) => Some("MPI_INTEGER8"),
        (REAL, 4) => Some("MPI_REAL4"),
        (REAL, 8) => Some("MPI_REAL8"),
        (REAL, 16) => Some("MPI_REAL16"),
        (COMPLEX, 8) => Some("MPI_COMPLEX8"),
        (COMPLEX, 16) => Some("MPI_COMPLEX16"),
        (COMPLEX, 32) => Some("MPI_COMPLEX32"),
        _ => None,
    };
    let r = out(datatype, "datatype").and_then(|()| {
        let h = name.and_then(builtin::handle_of).ok_or_else(|| {
            arg(format!(
                "no type of class {typeclass} (1 real, 2 integer, 3 complex) has {size} bytes"
            ))
        })?;
        raw::put(datatype, h);
        Ok(())
    });
    finish("MPI_Type_match_size", MPI_COMM_WORLD, r)
}
