//! `MPI_Type_create_subarray`: a block of an n-dimensional array, built as MPI-3.1
//! section 4.1.3 defines it: the innermost dimension's run of elements, a vector per outer
//! dimension with the array's stride, placed at the block's start, and resized to the
//! whole array (lower bound 0, extent the array's).

use super::layout::Layout;
use super::{combiner, register, resolve, Def};
use crate::abi::*;
use crate::error::{finish, MpiError};
use crate::raw;
use std::ffi::c_int;

/// `MPI_ORDER_C` and `MPI_ORDER_FORTRAN` (`darray.rs` uses them too).
pub(super) const ORDER_C: c_int = 56;
pub(super) const ORDER_FORTRAN: c_int = 57;

pub(super) fn arg(what: impl Into<String>) -> MpiError {
    MpiError::new(MPI_ERR_ARG, what)
}

/// The number of an array's dimensions, `ndims`: at least one.
pub(super) fn array_dims(ndims: c_int) -> Result<usize, MpiError> {
    usize::try_from(ndims)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            arg(format!(
                "ndims {ndims}: an array has at least one dimension"
            ))
        })
}

fn overflow() -> MpiError {
    MpiError::new(MPI_ERR_ARG, "the subarray's extent overflows an address")
}

/// The subarray's layout from checked arguments: `dims` is (size, subsize, start) per
/// dimension, the slowest-varying first.
fn layout(dims: &[(usize, usize, usize)], old: &Layout) -> Result<Layout, MpiError> {
    let ext = old.extent();
    let (&(_, inner, _), outer) = dims.split_last().expect("at least one dimension");
    let mut t = Layout::contiguous(inner, old)?;
    // Bytes between consecutive indices of each dimension, innermost first.
    let mut stride = ext;
    let mut disp: isize = 0;
    let mut total = ext;
    for (i, &(size, sub, start)) in dims.iter().enumerate().rev() {
        if i < outer.len() {
            t = Layout::hvector(sub, 1, stride, &t)?;
        }
        let start = isize::try_from(start).map_err(|_| overflow())?;
        disp = start
            .checked_mul(stride)
            .and_then(|d| d.checked_add(disp))
            .ok_or_else(overflow)?;
        let size = isize::try_from(size).map_err(|_| overflow())?;
        stride = stride.checked_mul(size).ok_or_else(overflow)?;
        total = stride;
    }
    let placed = Layout::hindexed([(1, disp)], &t)?;
    Layout::resized(&placed, 0, total)
}

/// `MPI_Type_create_subarray`.
#[no_mangle]
pub extern "C" fn MPI_Type_create_subarray(
    ndims: c_int,
    sizes: *const c_int,
    subsizes: *const c_int,
    starts: *const c_int,
    order: c_int,
    oldtype: c_int,
    newtype: *mut c_int,
) -> c_int {
    let r = (|| {
        if newtype.is_null() {
            return Err(arg("newtype is a null pointer"));
        }
        let n = array_dims(ndims)?;
        let sizes = super::mem::array(sizes, n).ok_or_else(|| arg("sizes is a null pointer"))?;
        let subsizes =
            super::mem::array(subsizes, n).ok_or_else(|| arg("subsizes is a null pointer"))?;
        let starts = super::mem::array(starts, n).ok_or_else(|| arg("starts is a null pointer"))?;
        let mut dims = Vec::with_capacity(n);
        for i in 0..n {
            let (size, sub, start) = (sizes[i], subsizes[i], starts[i]);
            if size < 1 || sub < 1 || sub > size || start < 0 || start > size - sub {
                return Err(arg(format!(
                    "dimension {i}: size {size}, subsize {sub}, start {start} (need size >= 1, \
                     1 <= subsize <= size, 0 <= start <= size - subsize)"
                )));
            }
            dims.push((size as usize, sub as usize, start as usize));
        }
        match order {
            ORDER_C => {}
            ORDER_FORTRAN => dims.reverse(),
            o => return Err(arg(format!("order {o}: MPI_ORDER_C or MPI_ORDER_FORTRAN"))),
        }
        let old = resolve(oldtype)?;
        let l = layout(&dims, &old.info.0)?;
        let ints = std::iter::once(ndims)
            .chain(sizes.iter().copied())
            .chain(subsizes.iter().copied())
            .chain(starts.iter().copied())
            .chain(std::iter::once(order))
            .collect();
        let def = Def {
            combiner: combiner::SUBARRAY,
            ints,
            addrs: vec![],
            types: vec![old.as_old(oldtype)],
        };
        let h = register(l, def, false)?;
        raw::put(newtype, h);
        Ok(())
    })();
    finish("MPI_Type_create_subarray", MPI_COMM_WORLD, r)
}
