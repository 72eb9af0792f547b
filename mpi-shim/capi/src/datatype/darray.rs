//! `MPI_Type_create_darray`: this process's part of an n-dimensional array distributed
//! over a process grid (MPI-3.1 section 4.1.4), by block, cyclic or no distribution per
//! dimension. The process grid is row-major whatever the array's order.
//!
//! The type selects, in the order of the local array (row-major for `MPI_ORDER_C`,
//! column-major for `MPI_ORDER_FORTRAN`), the elements whose index in every dimension
//! this process owns; runs of consecutive indices along the fastest dimension are one
//! block each. Its lower bound is 0 and its extent the whole array's.

use super::layout::Layout;
use super::subarray::{arg, array_dims, ORDER_C, ORDER_FORTRAN};
use super::{combiner, register, resolve, Def};
use crate::abi::*;
use crate::error::{finish, MpiError};
use crate::raw;
use std::ffi::c_int;

const DISTRIBUTE_BLOCK: c_int = 121;
const DISTRIBUTE_CYCLIC: c_int = 122;
const DISTRIBUTE_NONE: c_int = 123;
const DISTRIBUTE_DFLT_DARG: c_int = -49767;

/// The global indices along one dimension of `gsize` that process coordinate `coord` of
/// `psize` owns.
fn owned(
    dim: usize,
    gsize: usize,
    distrib: c_int,
    darg: c_int,
    psize: usize,
    coord: usize,
) -> Result<Vec<usize>, MpiError> {
    match distrib {
        DISTRIBUTE_NONE => {
            if psize != 1 {
                return Err(arg(format!(
                    "dimension {dim}: MPI_DISTRIBUTE_NONE over {psize} processes (needs 1)"
                )));
            }
            Ok((0..gsize).collect())
        }
        DISTRIBUTE_BLOCK => {
            let b = if darg == DISTRIBUTE_DFLT_DARG {
                gsize.div_ceil(psize)
            } else {
                let b = usize::try_from(darg)
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or_else(|| arg(format!("dimension {dim}: block size {darg}")))?;
                if b * psize < gsize {
                    return Err(arg(format!(
                        "dimension {dim}: blocks of {b} over {psize} processes do not cover {gsize}"
                    )));
                }
                b
            };
            let from = (coord * b).min(gsize);
            Ok((from..(from + b).min(gsize)).collect())
        }
        DISTRIBUTE_CYCLIC => {
            let b = if darg == DISTRIBUTE_DFLT_DARG {
                1
            } else {
                usize::try_from(darg)
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or_else(|| arg(format!("dimension {dim}: cyclic block size {darg}")))?
            };
            let mut v = Vec::new();
            let mut start = coord * b;
            while start < gsize {
                v.extend(start..(start + b).min(gsize));
                start += psize * b;
            }
            Ok(v)
        }
        d => Err(arg(format!("dimension {dim}: distribution {d}"))),
    }
}

/// The layout from the owned indices per dimension, the slowest first, and the byte
/// stride of each dimension.
fn layout(
    owned: &[Vec<usize>],
    strides: &[isize],
    old: &Layout,
    total: isize,
) -> Result<Layout, MpiError> {
    let last = owned.len() - 1;
    // The fastest dimension: runs of consecutive indices.
    let mut runs: Vec<(usize, isize)> = Vec::new();
    for &i in &owned[last] {
        match runs.last_mut() {
            Some((len, start))
                if *start + (*len as isize) * strides[last] == i as isize * strides[last] =>
            {
                *len += 1
            }
            _ => runs.push((1, i as isize * strides[last])),
        }
    }
    let mut t = Layout::hindexed(runs, old)?;
    for k in (0..last).rev() {
        let blocks: Vec<(usize, isize)> = owned[k]
            .iter()
            .map(|&i| (1, i as isize * strides[k]))
            .collect();
        t = Layout::hindexed(blocks, &t)?;
    }
    Layout::resized(&t, 0, total)
}

/// `MPI_Type_create_darray`.
#[no_mangle]
pub extern "C" fn MPI_Type_create_darray(
    size: c_int,
    rank: c_int,
    ndims: c_int,
    gsizes: *const c_int,
    distribs: *const c_int,
    dargs: *const c_int,
    psizes: *const c_int,
    order: c_int,
    oldtype: c_int,
    newtype: *mut c_int,
) -> c_int {
    let r = (|| {
        if newtype.is_null() {
            return Err(arg("newtype is a null pointer"));
        }
        let n = array_dims(ndims)?;
        let get = |p: *const c_int, what: &str| {
            super::mem::array(p, n).ok_or_else(|| arg(format!("{what} is a null pointer")))
        };
        let (g, dist, darg, p) = (
            get(gsizes, "gsizes")?,
            get(distribs, "distribs")?,
            get(dargs, "dargs")?,
            get(psizes, "psizes")?,
        );
        if let Some(i) = (0..n).find(|&i| g[i] < 1 || p[i] < 1) {
            return Err(arg(format!(
                "dimension {i}: gsize {} over {} processes",
                g[i], p[i]
            )));
        }
        let grid: i64 = p.iter().map(|&x| i64::from(x)).product();
        if grid != i64::from(size) {
            return Err(arg(format!(
                "the process grid {p:?} has {grid} places, size is {size}"
            )));
        }
        if !(0..size).contains(&rank) {
            return Err(MpiError::new(
                MPI_ERR_RANK,
                format!("rank {rank} of {size}"),
            ));
        }
        // Row-major coordinates of `rank` in the process grid.
        let mut coords = vec![0usize; n];
        let mut rest = rank as usize;
        for i in (0..n).rev() {
            coords[i] = rest % p[i] as usize;
            rest /= p[i] as usize;
        }
        let mut mine = Vec::with_capacity(n);
        for i in 0..n {
            mine.push(owned(
                i,
                g[i] as usize,
                dist[i],
                darg[i],
                p[i] as usize,
                coords[i],
            )?);
        }
        let old = resolve(oldtype)?;
        let ext = old.info.extent();
        // The dimensions from the slowest to the fastest in memory, with their strides.
        let dims: Vec<usize> = match order {
            ORDER_C => (0..n).collect(),
            ORDER_FORTRAN => (0..n).rev().collect(),
            o => return Err(arg(format!("order {o}: MPI_ORDER_C or MPI_ORDER_FORTRAN"))),
        };
        let overflow = || arg("the array's extent overflows an address");
        let mut strides = vec![0isize; n];
        let mut s = ext;
        for &i in dims.iter().rev() {
            strides[i] = s;
            s = s.checked_mul(g[i] as isize).ok_or_else(overflow)?;
        }
        let owned_in_order: Vec<Vec<usize>> = dims.iter().map(|&i| mine[i].clone()).collect();
        let strides_in_order: Vec<isize> = dims.iter().map(|&i| strides[i]).collect();
        let l = layout(&owned_in_order, &strides_in_order, &old.info.0, s)?;
        let ints = [size, rank, ndims]
            .into_iter()
            .chain(g.iter().copied())
            .chain(dist.iter().copied())
            .chain(darg.iter().copied())
            .chain(p.iter().copied())
            .chain(std::iter::once(order))
            .collect();
        let def = Def {
            combiner: combiner::DARRAY,
            ints,
            addrs: vec![],
            types: vec![old.as_old(oldtype)],
        };
        let h = register(l, def, false)?;
        raw::put(newtype, h);
        Ok(())
    })();
    finish("MPI_Type_create_darray", MPI_COMM_WORLD, r)
}
