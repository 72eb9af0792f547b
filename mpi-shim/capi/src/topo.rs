//! Process topologies: what a communicator's topology is (Cartesian, graph or
//! distributed graph, see `graph.rs`) and its neighbours for the neighbourhood
//! collectives; and the Cartesian calls: `MPI_Dims_create`, `MPI_Cart_create`,
//! `MPI_Cart_map` and the queries on a Cartesian communicator. Ranks are laid out
//! row-major (the last dimension varies fastest), as MPI specifies; `reorder` is accepted
//! and ignored (rank `r` of the old communicator keeps rank `r`).

use crate::abi::*;
use crate::comm::{put_new_comm, rust_error};
use crate::error::{finish, MpiError};
use crate::raw;
use crate::state;
use std::ffi::c_int;
use std::rc::Rc;

/// A communicator's topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Topology {
    Cart(Cart),
    Graph(crate::graph::Graph),
    DistGraph(crate::graph::DistGraph),
}

/// A rank's neighbours, in the order the neighbourhood collectives use their blocks.
pub(crate) struct Neighbours {
    /// Where block `j` of the receive buffer comes from (`MPI_PROC_NULL`: nowhere).
    pub sources: Vec<c_int>,
    /// Where block `i` of the send buffer goes (`MPI_PROC_NULL`: nowhere).
    pub destinations: Vec<c_int>,
    /// The order in which this rank's blocks for one destination go out, so that they
    /// meet that destination's blocks from this rank in its order: a permutation of the
    /// destination indices.
    pub send_order: Vec<usize>,
}

impl Topology {
    /// The neighbours of `rank`.
    pub fn neighbours(&self, rank: c_int) -> Neighbours {
        match self {
            Topology::Cart(c) => c.neighbours(rank),
            Topology::Graph(g) => {
                let n = g.neighbours(rank);
                Neighbours {
                    send_order: (0..n.len()).collect(),
                    sources: n.clone(),
                    destinations: n,
                }
            }
            Topology::DistGraph(d) => Neighbours {
                send_order: (0..d.destinations.len()).collect(),
                sources: d.sources.clone(),
                destinations: d.destinations.clone(),
            },
        }
    }

    /// `MPI_CART`, `MPI_GRAPH` or `MPI_DIST_GRAPH`.
    fn kind(&self) -> c_int {
        match self {
            Topology::Cart(_) => MPI_CART,
            Topology::Graph(_) => MPI_GRAPH,
            Topology::DistGraph(_) => MPI_DIST_GRAPH,
        }
    }
}

/// The shape of a Cartesian communicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cart {
    pub dims: Vec<c_int>,
    pub periods: Vec<bool>,
}

impl Cart {
    /// The neighbours of `rank`: per dimension, the one in the negative direction, then
    /// the one in the positive (MPI-3.1 7.6), for receiving and for sending alike. A
    /// block sent in the positive direction is the neighbour's block from its negative
    /// one, so when both neighbours in a dimension are one process (a periodic dimension
    /// of size 1 or 2), the positive direction's block goes out first.
    fn neighbours(&self, rank: c_int) -> Neighbours {
        let c = self.coords(rank);
        let mut v = Vec::with_capacity(2 * c.len());
        for k in 0..c.len() {
            for step in [-1, 1] {
                let mut at = c.clone();
                at[k] += step;
                v.push(self.rank(&at).unwrap_or(MPI_PROC_NULL));
            }
        }
        Neighbours {
            send_order: (0..c.len()).flat_map(|k| [2 * k + 1, 2 * k]).collect(),
            sources: v.clone(),
            destinations: v,
        }
    }

    /// The grid's places, if they fit an `int`.
    fn size(&self) -> Option<c_int> {
        self.dims
            .iter()
            .try_fold(1 as c_int, |acc, &d| acc.checked_mul(d))
    }

    /// Coordinates of `rank`.
    fn coords(&self, mut rank: c_int) -> Vec<c_int> {
        let mut c = vec![0; self.dims.len()];
        for k in (0..self.dims.len()).rev() {
            c[k] = rank % self.dims[k];
            rank /= self.dims[k];
        }
        c
    }

    /// The rank at `coords`, wrapping periodic dimensions; `None` when a coordinate of a
    /// non-periodic dimension is out of range.
    fn rank(&self, coords: &[c_int]) -> Option<c_int> {
        let mut r = 0;
        for (k, &c) in coords.iter().enumerate() {
            let d = self.dims[k];
            let c = if self.periods[k] {
                c.rem_euclid(d)
            } else if (0..d).contains(&c) {
                c
            } else {
                return None;
            };
            r = r * d + c;
        }
        Some(r)
    }
}

/// The most balanced factorization of `n` into `free` factors, in non-increasing order
/// (the spread between largest and smallest is least; MPICH gives the same answers).
fn balanced(n: c_int, free: usize) -> Vec<c_int> {
    fn search(
        n: c_int,
        left: usize,
        max: c_int,
        cur: &mut Vec<c_int>,
        best: &mut Option<Vec<c_int>>,
    ) {
        if left == 0 {
            if n == 1 {
                let spread = cur[0] - cur[cur.len() - 1];
                let better = match best {
                    None => true,
                    Some(b) => spread < b[0] - b[b.len() - 1],
                };
                if better {
                    *best = Some(cur.clone());
                }
            }
            return;
        }
        // Factors come in non-increasing order, so once f^left < n no f or smaller works.
        for f in (1..=max.min(n)).rev() {
            if (f as f64).powi(left as i32) < n as f64 - 0.5 {
                break;
            }
            if n % f == 0 {
                cur.push(f);
                search(n / f, left - 1, f, cur, best);
                cur.pop();
            }
        }
    }
    if free == 0 {
        return Vec::new();
    }
    let mut best = None;
    search(n, free, n, &mut Vec::new(), &mut best);
    best.expect("n = n * 1 * ... * 1 is always a factorization")
}

/// `MPI_Dims_create`.
#[no_mangle]
pub extern "C" fn MPI_Dims_create(nnodes: c_int, ndims: c_int, dims: *mut c_int) -> c_int {
    let r = (|| {
        if ndims < 0 {
            return Err(MpiError::new(
                MPI_ERR_DIMS,
                format!("negative ndims {ndims}"),
            ));
        }
        if nnodes <= 0 {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                format!("nnodes {nnodes} is not positive"),
            ));
        }
        let d = raw::array_mut(dims, ndims as usize)
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "dims is a null pointer"))?;
        let mut fixed: c_int = 1;
        for &x in d.iter() {
            if x < 0 {
                return Err(MpiError::new(
                    MPI_ERR_DIMS,
                    format!("dims has a negative entry {x}"),
                ));
            }
            if x > 0 {
                fixed = fixed.saturating_mul(x);
            }
        }
        if nnodes % fixed != 0 {
            return Err(MpiError::new(
                MPI_ERR_DIMS,
                format!("{nnodes} processes cannot be split with the fixed dimensions given (product {fixed})"),
            ));
        }
        let free = d.iter().filter(|&&x| x == 0).count();
        if free == 0 {
            return if fixed == nnodes {
                Ok(())
            } else {
                Err(MpiError::new(
                    MPI_ERR_DIMS,
                    format!("the dimensions given multiply to {fixed}, not {nnodes}"),
                ))
            };
        }
        let mut f = balanced(nnodes / fixed, free).into_iter();
        for x in d.iter_mut().filter(|x| **x == 0) {
            *x = f.next().expect("one factor per free dimension");
        }
        Ok(())
    })();
    finish("MPI_Dims_create", MPI_COMM_WORLD, r)
}

/// `MPI_Cart_create`. A rank whose arguments are wrong still takes part in the
/// communicator's creation (with nothing to gain from it), so that the others, which
/// cannot know, do not wait for it; then it returns the error.
#[no_mangle]
pub extern "C" fn MPI_Cart_create(
    comm: c_int,
    ndims: c_int,
    dims: *const c_int,
    periods: *const c_int,
    _reorder: c_int,
    newcomm: *mut c_int,
) -> c_int {
    let r = state::comm(comm).and_then(|e| {
        let checked = cart_args(&e, ndims, dims, periods);
        let color = match &checked {
            Ok((_, need)) if e.comm.rank() < *need => Some(0),
            _ => None,
        };
        let c = e
            .comm
            .split(color, e.comm.rank())
            .map_err(|x| rust_error(MPI_ERR_OTHER, x))?;
        let (topo, _) = checked?;
        put_new_comm(&e, c, Some(Rc::new(Topology::Cart(topo))), newcomm)
    });
    finish("MPI_Cart_create", comm, r)
}

/// The checked arguments of `MPI_Cart_create`: the grid and its number of places.
fn cart_args(
    e: &state::CommEntry,
    ndims: c_int,
    dims: *const c_int,
    periods: *const c_int,
) -> Result<(Cart, c_int), MpiError> {
    {
        if ndims < 0 {
            return Err(MpiError::new(
                MPI_ERR_DIMS,
                format!("negative ndims {ndims}"),
            ));
        }
        let n = ndims as usize;
        let null = || MpiError::new(MPI_ERR_ARG, "dims or periods is a null pointer");
        let d = raw::slice(dims, n).ok_or_else(null)?.to_vec();
        let p = raw::slice(periods, n).ok_or_else(null)?;
        if let Some(&x) = d.iter().find(|&&x| x <= 0) {
            return Err(MpiError::new(
                MPI_ERR_DIMS,
                format!("dimension {x} is not positive"),
            ));
        }
        let topo = Cart {
            periods: p.iter().map(|&x| x != 0).collect(),
            dims: d,
        };
        let Some(need) = topo.size().filter(|&n| n <= e.comm.size()) else {
            return Err(MpiError::new(
                MPI_ERR_DIMS,
                format!(
                    "the grid {:?} has more places than the communicator's {} ranks",
                    topo.dims,
                    e.comm.size()
                ),
            ));
        };
        Ok((topo, need))
    }
}

/// `MPI_Cart_map`: the rank `MPI_Cart_create` would give this process (zerorank does not
/// reorder): its rank, or `MPI_UNDEFINED` if the grid has no place for it.
#[no_mangle]
pub extern "C" fn MPI_Cart_map(
    comm: c_int,
    ndims: c_int,
    dims: *const c_int,
    _periods: *const c_int,
    newrank: *mut c_int,
) -> c_int {
    let r = state::comm(comm).and_then(|e| {
        let n = usize::try_from(ndims)
            .map_err(|_| MpiError::new(MPI_ERR_DIMS, format!("negative ndims {ndims}")))?;
        let d = raw::slice(dims, n)
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "dims is a null pointer"))?;
        if let Some(&x) = d.iter().find(|&&x| x <= 0) {
            return Err(MpiError::new(
                MPI_ERR_DIMS,
                format!("dimension {x} is not positive"),
            ));
        }
        let places = d
            .iter()
            .try_fold(1i64, |acc, &x| acc.checked_mul(i64::from(x)))
            .filter(|&p| p <= i64::from(e.comm.size()));
        let Some(places) = places else {
            return Err(MpiError::new(
                MPI_ERR_DIMS,
                format!(
                    "the grid {d:?} has more places than the communicator's {} ranks",
                    e.comm.size()
                ),
            ));
        };
        let me = e.comm.rank();
        let v = if i64::from(me) < places {
            me
        } else {
            MPI_UNDEFINED
        };
        raw::put(newrank, v)
            .then_some(())
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "newrank is a null pointer"))
    });
    finish("MPI_Cart_map", comm, r)
}

/// The topology of `comm`, if it has one.
pub(crate) fn topology(comm: c_int) -> Result<Option<Rc<Topology>>, MpiError> {
    state::with(|s| s.comm(comm).map(|e| e.topo.clone()))
}

fn cart(comm: c_int) -> Result<(Cart, c_int, c_int), MpiError> {
    state::with(|s| {
        let e = s.comm(comm)?;
        let t = match e.topo.as_deref() {
            Some(Topology::Cart(c)) => c.clone(),
            _ => {
                return Err(MpiError::new(
                    MPI_ERR_TOPOLOGY,
                    "the communicator has no Cartesian topology",
                ))
            }
        };
        Ok((t, e.comm.rank(), e.comm.size()))
    })
}

/// `MPI_Topo_test`: `MPI_CART`, `MPI_GRAPH`, `MPI_DIST_GRAPH` or `MPI_UNDEFINED`.
#[no_mangle]
pub extern "C" fn MPI_Topo_test(comm: c_int, status: *mut c_int) -> c_int {
    let r = state::with(|s| {
        let t = s
            .comm(comm)?
            .topo
            .as_deref()
            .map_or(MPI_UNDEFINED, Topology::kind);
        raw::put(status, t)
            .then_some(())
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "status is a null pointer"))
    });
    finish("MPI_Topo_test", comm, r)
}

/// `MPI_Cartdim_get`.
#[no_mangle]
pub extern "C" fn MPI_Cartdim_get(comm: c_int, ndims: *mut c_int) -> c_int {
    let r = cart(comm).map(|(t, _, _)| {
        raw::put(ndims, t.dims.len() as c_int);
    });
    finish("MPI_Cartdim_get", comm, r)
}

/// `MPI_Cart_get`.
#[no_mangle]
pub extern "C" fn MPI_Cart_get(
    comm: c_int,
    maxdims: c_int,
    dims: *mut c_int,
    periods: *mut c_int,
    coords: *mut c_int,
) -> c_int {
    let r = cart(comm).and_then(|(t, me, _)| {
        let n = t.dims.len();
        if maxdims < n as c_int {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                format!("maxdims {maxdims} < ndims {n}"),
            ));
        }
        let null = || MpiError::new(MPI_ERR_ARG, "a null array");
        raw::array_mut(dims, n)
            .ok_or_else(null)?
            .copy_from_slice(&t.dims);
        for (o, &p) in raw::array_mut(periods, n)
            .ok_or_else(null)?
            .iter_mut()
            .zip(&t.periods)
        {
            *o = c_int::from(p);
        }
        raw::array_mut(coords, n)
            .ok_or_else(null)?
            .copy_from_slice(&t.coords(me));
        Ok(())
    });
    finish("MPI_Cart_get", comm, r)
}

/// `MPI_Cart_coords`.
#[no_mangle]
pub extern "C" fn MPI_Cart_coords(
    comm: c_int,
    rank: c_int,
    maxdims: c_int,
    coords: *mut c_int,
) -> c_int {
    let r = cart(comm).and_then(|(t, _, size)| {
        let n = t.dims.len();
        if !(0..size).contains(&rank) {
            return Err(MpiError::new(
                MPI_ERR_RANK,
                format!("rank {rank} is not in the grid of {size}"),
            ));
        }
        if maxdims < n as c_int {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                format!("maxdims {maxdims} < ndims {n}"),
            ));
        }
        raw::array_mut(coords, n)
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "coords is a null pointer"))?
            .copy_from_slice(&t.coords(rank));
        Ok(())
    });
    finish("MPI_Cart_coords", comm, r)
}

/// `MPI_Cart_rank`.
#[no_mangle]
pub extern "C" fn MPI_Cart_rank(comm: c_int, coords: *const c_int, rank: *mut c_int) -> c_int {
    let r = cart(comm).and_then(|(t, _, _)| {
        let c = raw::slice(coords, t.dims.len())
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "coords is a null pointer"))?;
        let r = t.rank(c).ok_or_else(|| {
            MpiError::new(
                MPI_ERR_RANK,
                format!("coordinates {c:?} are outside the grid {:?}", t.dims),
            )
        })?;
        raw::put(rank, r);
        Ok(())
    });
    finish("MPI_Cart_rank", comm, r)
}

/// `MPI_Cart_shift`: `MPI_PROC_NULL` past a non-periodic edge.
#[no_mangle]
pub extern "C" fn MPI_Cart_shift(
    comm: c_int,
    direction: c_int,
    disp: c_int,
    source: *mut c_int,
    dest: *mut c_int,
) -> c_int {
    let r = cart(comm).and_then(|(t, me, _)| {
        if !(0..t.dims.len() as c_int).contains(&direction) {
            return Err(MpiError::new(
                MPI_ERR_ARG,
                format!(
                    "direction {direction} is not a dimension of the {}-d grid",
                    t.dims.len()
                ),
            ));
        }
        let k = direction as usize;
        let mut c = t.coords(me);
        let at = |c: &[c_int]| t.rank(c).unwrap_or(MPI_PROC_NULL);
        let mine = c[k];
        c[k] = mine + disp;
        let d = at(&c);
        c[k] = mine - disp;
        let s = at(&c);
        raw::put(source, s);
        raw::put(dest, d);
        Ok(())
    });
    finish("MPI_Cart_shift", comm, r)
}

/// `MPI_Cart_sub`: the sub-grids that keep the dimensions `remain_dims` marks.
#[no_mangle]
pub extern "C" fn MPI_Cart_sub(
    comm: c_int,
    remain_dims: *const c_int,
    newcomm: *mut c_int,
) -> c_int {
    let r = cart(comm).and_then(|(t, me, _)| {
        let keep = raw::slice(remain_dims, t.dims.len())
            .ok_or_else(|| MpiError::new(MPI_ERR_ARG, "remain_dims is a null pointer"))?;
        let c = t.coords(me);
        // Colour: my coordinates in the dropped dimensions; key: my rank (row-major order
        // of the kept dimensions follows from it).
        let mut color = 0;
        let mut sub = Cart {
            dims: Vec::new(),
            periods: Vec::new(),
        };
        for k in 0..t.dims.len() {
            if keep[k] != 0 {
                sub.dims.push(t.dims[k]);
                sub.periods.push(t.periods[k]);
            } else {
                color = color * t.dims[k] + c[k];
            }
        }
        let e = state::comm(comm)?;
        let nc = e
            .comm
            .split(Some(color), me)
            .map_err(|x| rust_error(MPI_ERR_OTHER, x))?;
        put_new_comm(&e, nc, Some(Rc::new(Topology::Cart(sub))), newcomm)
    });
    finish("MPI_Cart_sub", comm, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_factorizations_match_mpich() {
        assert_eq!(balanced(6, 2), [3, 2]);
        assert_eq!(balanced(7, 2), [7, 1]);
        assert_eq!(balanced(12, 3), [3, 2, 2]);
        assert_eq!(balanced(60, 3), [5, 4, 3]);
        assert_eq!(balanced(120, 4), [5, 4, 3, 2]);
        assert_eq!(balanced(27, 2), [9, 3]);
        assert_eq!(balanced(1000, 3), [10, 10, 10]);
        assert_eq!(balanced(1, 3), [1, 1, 1]);
    }

    #[test]
    fn row_major_coordinates_round_trip() {
        let t = Cart {
            dims: vec![3, 4],
            periods: vec![true, false],
        };
        for r in 0..12 {
            assert_eq!(t.rank(&t.coords(r)), Some(r));
        }
        assert_eq!(t.coords(5), [1, 1]);
        assert_eq!(t.rank(&[4, 1]), Some(5));
        assert_eq!(t.rank(&[1, 4]), None);
    }
}
