//! Graph and distributed graph topologies: `MPI_Graph_create` and its queries,
//! `MPI_Graph_map`, `MPI_Dist_graph_create_adjacent`, `MPI_Dist_graph_create` and their
//! queries. `reorder` is accepted and ignored, as for Cartesian topologies.
//!
//! `MPI_Dist_graph_create` lets any process name any edge: the edges go to both of their
//! ends in one all-to-all over the old communicator, and each end keeps them in the order
//! of (the process that named it, its place in that process's list), so both ends of
//! several edges between one pair see them in the same order.

use crate::abi::*;
use crate::comm::{put_new_comm, rust_error};
use crate::error::{finish, MpiError};
use crate::raw;
use crate::state;
use crate::symbols::{MPI_UNWEIGHTED, MPI_WEIGHTS_EMPTY};
use crate::topo::Topology;
use std::ffi::c_int;
use std::rc::Rc;

/// A graph topology (MPI-1): every process's neighbours, as `index` and `edges` give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Graph {
    pub index: Vec<c_int>,
    pub edges: Vec<c_int>,
}

impl Graph {
    /// The neighbours of `rank`, in order.
    pub fn neighbours(&self, rank: c_int) -> Vec<c_int> {
        let r = rank as usize;
        let from = if r == 0 {
            0
        } else {
            self.index[r - 1] as usize
        };
        self.edges[from..self.index[r] as usize].to_vec()
    }
}

/// This process's part of a distributed graph: its in- and out-edges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DistGraph {
    pub sources: Vec<c_int>,
    pub destinations: Vec<c_int>,
    /// The edges' weights, when the graph was made with them.
    pub weights: Option<(Vec<c_int>, Vec<c_int>)>,
}

fn arg(what: impl Into<String>) -> MpiError {
    MpiError::new(MPI_ERR_ARG, what)
}

fn no_topology(what: &str) -> MpiError {
    MpiError::new(
        MPI_ERR_TOPOLOGY,
        format!("the communicator has no {what} topology"),
    )
}

fn graph(comm: c_int) -> Result<Graph, MpiError> {
    match crate::topo::topology(comm)?.as_deref() {
        Some(Topology::Graph(g)) => Ok(g.clone()),
        _ => Err(no_topology("graph")),
    }
}

fn dist_graph(comm: c_int) -> Result<DistGraph, MpiError> {
    match crate::topo::topology(comm)?.as_deref() {
        Some(Topology::DistGraph(d)) => Ok(d.clone()),
        _ => Err(no_topology("distributed graph")),
    }
}

/// Check a graph's `index` and `edges` for `nnodes` processes.
fn graph_args(
    nnodes: c_int,
    index: *const c_int,
    edges: *const c_int,
    size: c_int,
) -> Result<Graph, MpiError> {
    if nnodes < 0 || nnodes > size {
        return Err(arg(format!(
            "nnodes {nnodes}: the communicator has {size} ranks"
        )));
    }
    let index = raw::slice(index, nnodes as usize)
        .ok_or_else(|| arg("index is a null pointer"))?
        .to_vec();
    let mut prev = 0;
    for (i, &x) in index.iter().enumerate() {
        if x < prev {
            return Err(arg(format!(
                "index[{i}] = {x} is below index[{}]",
                i.max(1) - 1
            )));
        }
        prev = x;
    }
    let edges = raw::slice(edges, prev as usize)
        .ok_or_else(|| arg("edges is a null pointer"))?
        .to_vec();
    if let Some(&e) = edges.iter().find(|&&e| !(0..nnodes).contains(&e)) {
        return Err(MpiError::new(
            MPI_ERR_RANK,
            format!("edge to {e}: the graph has {nnodes} nodes"),
        ));
    }
    Ok(Graph { index, edges })
}

/// `MPI_Graph_create`: processes past `nnodes` get `MPI_COMM_NULL`.
#[no_mangle]
pub extern "C" fn MPI_Graph_create(
    comm: c_int,
    nnodes: c_int,
    index: *const c_int,
    edges: *const c_int,
    _reorder: c_int,
    newcomm: *mut c_int,
) -> c_int {
    let r = state::comm(comm).and_then(|e| {
        // A rank with wrong arguments still takes part (see MPI_Cart_create).
        let g = graph_args(nnodes, index, edges, e.comm.size());
        let color = (g.is_ok() && e.comm.rank() < nnodes).then_some(0);
        let c = e
            .comm
            .split(color, e.comm.rank())
            .map_err(|x| rust_error(MPI_ERR_OTHER, x))?;
        put_new_comm(&e, c, Some(Rc::new(Topology::Graph(g?))), newcomm)
    });
    finish("MPI_Graph_create", comm, r)
}

/// `MPI_Graph_map`: this process's rank if the graph has a place for it (no reordering).
#[no_mangle]
pub extern "C" fn MPI_Graph_map(
    comm: c_int,
    nnodes: c_int,
    index: *const c_int,
    edges: *const c_int,
    newrank: *mut c_int,
) -> c_int {
    let r = state::comm(comm).and_then(|e| {
        graph_args(nnodes, index, edges, e.comm.size())?;
        let me = e.comm.rank();
        raw::put(newrank, if me < nnodes { me } else { MPI_UNDEFINED })
            .then_some(())
            .ok_or_else(|| arg("newrank is a null pointer"))
    });
    finish("MPI_Graph_map", comm, r)
}

/// `MPI_Graphdims_get`.
#[no_mangle]
pub extern "C" fn MPI_Graphdims_get(comm: c_int, nnodes: *mut c_int, nedges: *mut c_int) -> c_int {
    let r = graph(comm).map(|g| {
        raw::put(nnodes, g.index.len() as c_int);
        raw::put(nedges, g.edges.len() as c_int);
    });
    finish("MPI_Graphdims_get", comm, r)
}

/// `MPI_Graph_get`: at most `maxindex` and `maxedges` entries.
#[no_mangle]
pub extern "C" fn MPI_Graph_get(
    comm: c_int,
    maxindex: c_int,
    maxedges: c_int,
    index: *mut c_int,
    edges: *mut c_int,
) -> c_int {
    let r = graph(comm).and_then(|g| {
        let ni = g.index.len().min(maxindex.max(0) as usize);
        let ne = g.edges.len().min(maxedges.max(0) as usize);
        raw::array_mut(index, ni)
            .ok_or_else(|| arg("index is a null pointer"))?
            .copy_from_slice(&g.index[..ni]);
        raw::array_mut(edges, ne)
            .ok_or_else(|| arg("edges is a null pointer"))?
            .copy_from_slice(&g.edges[..ne]);
        Ok(())
    });
    finish("MPI_Graph_get", comm, r)
}

/// Check `rank` against the graph.
fn graph_rank(g: &Graph, rank: c_int) -> Result<(), MpiError> {
    if (0..g.index.len() as c_int).contains(&rank) {
        Ok(())
    } else {
        Err(MpiError::new(
            MPI_ERR_RANK,
            format!("rank {rank}: the graph has {} nodes", g.index.len()),
        ))
    }
}

/// `MPI_Graph_neighbors_count`.
#[no_mangle]
pub extern "C" fn MPI_Graph_neighbors_count(comm: c_int, rank: c_int, n: *mut c_int) -> c_int {
    let r = graph(comm).and_then(|g| {
        graph_rank(&g, rank)?;
        raw::put(n, g.neighbours(rank).len() as c_int)
            .then_some(())
            .ok_or_else(|| arg("nneighbors is a null pointer"))
    });
    finish("MPI_Graph_neighbors_count", comm, r)
}

/// `MPI_Graph_neighbors`: at most `max` of them.
#[no_mangle]
pub extern "C" fn MPI_Graph_neighbors(
    comm: c_int,
    rank: c_int,
    max: c_int,
    neighbors: *mut c_int,
) -> c_int {
    let r = graph(comm).and_then(|g| {
        graph_rank(&g, rank)?;
        let n = g.neighbours(rank);
        let k = n.len().min(max.max(0) as usize);
        raw::array_mut(neighbors, k)
            .ok_or_else(|| arg("neighbors is a null pointer"))?
            .copy_from_slice(&n[..k]);
        Ok(())
    });
    finish("MPI_Graph_neighbors", comm, r)
}

/// Is `p` `MPI_UNWEIGHTED`?
fn unweighted(p: *const c_int) -> bool {
    MPI_UNWEIGHTED.is(p)
}

/// `n` ranks of a communicator of `size` at `p`.
fn ranks(p: *const c_int, n: usize, size: c_int, what: &str) -> Result<Vec<c_int>, MpiError> {
    let v = raw::slice(p, n)
        .ok_or_else(|| arg(format!("{what} is a null pointer")))?
        .to_vec();
    if let Some(&r) = v.iter().find(|&&r| !(0..size).contains(&r)) {
        return Err(MpiError::new(
            MPI_ERR_RANK,
            format!("{what}: rank {r} is not in the communicator of {size} ranks"),
        ));
    }
    Ok(v)
}

/// `n` weights at `p` (`MPI_WEIGHTS_EMPTY` or anything, when `n` is 0).
fn weights(p: *const c_int, n: usize, what: &str) -> Result<Vec<c_int>, MpiError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if MPI_WEIGHTS_EMPTY.is(p) {
        return Err(arg(format!("{what} is MPI_WEIGHTS_EMPTY for {n} edges")));
    }
    let v = raw::slice(p, n)
        .ok_or_else(|| arg(format!("{what} is a null pointer")))?
        .to_vec();
    if let Some(&w) = v.iter().find(|&&w| w < 0) {
        return Err(arg(format!("{what}: negative weight {w}")));
    }
    Ok(v)
}

/// A new communicator over `comm`'s group with distributed graph `d`. A rank whose
/// graph is an error still takes part in the creation (see MPI_Cart_create), then
/// returns the error.
fn dist_comm(
    comm: c_int,
    d: Result<DistGraph, MpiError>,
    newcomm: *mut c_int,
) -> Result<(), MpiError> {
    let e = state::comm(comm)?;
    let c = e.comm.dup().map_err(|x| rust_error(MPI_ERR_OTHER, x))?;
    put_new_comm(&e, Some(c), Some(Rc::new(Topology::DistGraph(d?))), newcomm)
}

/// `MPI_Dist_graph_create_adjacent`.
#[no_mangle]
pub extern "C" fn MPI_Dist_graph_create_adjacent(
    comm: c_int,
    indegree: c_int,
    sources: *const c_int,
    sourceweights: *const c_int,
    outdegree: c_int,
    destinations: *const c_int,
    destweights: *const c_int,
    info: c_int,
    _reorder: c_int,
    newcomm: *mut c_int,
) -> c_int {
    let r = state::comm(comm).and_then(|e| {
        let d = (|| {
            crate::info::check_hints(info)?;
            let size = e.comm.size();
            let (ni, no) = match (usize::try_from(indegree), usize::try_from(outdegree)) {
                (Ok(i), Ok(o)) => (i, o),
                _ => {
                    return Err(arg(format!(
                        "negative degree (in {indegree}, out {outdegree})"
                    )))
                }
            };
            let s = ranks(sources, ni, size, "sources")?;
            let d = ranks(destinations, no, size, "destinations")?;
            let w = if unweighted(sourceweights) || unweighted(destweights) {
                None
            } else {
                Some((
                    weights(sourceweights, ni, "sourceweights")?,
                    weights(destweights, no, "destweights")?,
                ))
            };
            Ok(DistGraph {
                sources: s,
                destinations: d,
                weights: w,
            })
        })();
        dist_comm(comm, d, newcomm)
    });
    finish("MPI_Dist_graph_create_adjacent", comm, r)
}

/// `MPI_Dist_graph_create`: the edges any process names, sent to both their ends.
#[no_mangle]
pub extern "C" fn MPI_Dist_graph_create(
    comm: c_int,
    n: c_int,
    sources: *const c_int,
    degrees: *const c_int,
    destinations: *const c_int,
    weights_in: *const c_int,
    info: c_int,
    _reorder: c_int,
    newcomm: *mut c_int,
) -> c_int {
    let r = state::comm(comm).and_then(|e| {
        let size = e.comm.size();
        // Per end: (named by, its index there, is-in-edge, other end, weight). A rank
        // whose arguments are wrong names no edge and still takes part (see
        // MPI_Cart_create), then returns the error.
        let named = (|| {
            crate::info::check_hints(info)?;
            let n = usize::try_from(n).map_err(|_| arg(format!("negative n {n}")))?;
            let src = ranks(sources, n, size, "sources")?;
            let deg = raw::slice(degrees, n)
                .ok_or_else(|| arg("degrees is a null pointer"))?
                .to_vec();
            if let Some(&k) = deg.iter().find(|&&k| k < 0) {
                return Err(arg(format!("negative degree {k}")));
            }
            let total: usize = deg.iter().map(|&k| k as usize).sum();
            let dst = ranks(destinations, total, size, "destinations")?;
            let weighted = !unweighted(weights_in);
            let w = if weighted {
                weights(weights_in, total, "weights")?
            } else {
                Vec::new()
            };
            let me = e.comm.rank();
            let mut out: Vec<Vec<c_int>> = vec![Vec::new(); size as usize];
            let mut k = 0;
            for (i, &s) in src.iter().enumerate() {
                for _ in 0..deg[i] {
                    let (d, wt) = (dst[k], w.get(k).copied().unwrap_or(0));
                    let at = k as c_int;
                    out[s as usize].extend([me, at, 0, d, wt]);
                    out[d as usize].extend([me, at, 1, s, wt]);
                    k += 1;
                }
            }
            Ok((out, weighted))
        })();
        let (out, weighted) = match &named {
            Ok((out, w)) => (out.clone(), *w),
            Err(_) => (vec![Vec::new(); size as usize], false),
        };
        let edges = exchange(&e.comm, &out)?;
        let mut mine: Vec<[c_int; 5]> = edges
            .chunks_exact(5)
            .map(|c| [c[0], c[1], c[2], c[3], c[4]])
            .collect();
        mine.sort_unstable();
        let pick = |inward: c_int| -> (Vec<c_int>, Vec<c_int>) {
            mine.iter()
                .filter(|e| e[2] == inward)
                .map(|e| (e[3], e[4]))
                .unzip()
        };
        let (s, sw) = pick(1);
        let (d, dw) = pick(0);
        let g = named.map(|_| DistGraph {
            sources: s,
            destinations: d,
            weights: weighted.then_some((sw, dw)),
        });
        dist_comm(comm, g, newcomm)
    });
    finish("MPI_Dist_graph_create", comm, r)
}

/// Send `out[r]` to each rank `r` of `c` and return what all sent here, in rank order
/// (through the Rust layer's collectives, so an error reaches the program's error handler
/// once, from the caller).
fn exchange(c: &zerorank::Communicator, out: &[Vec<c_int>]) -> Result<Vec<c_int>, MpiError> {
    let fail = |x| rust_error(MPI_ERR_OTHER, x);
    let counts: Vec<c_int> = out.iter().map(|v| v.len() as c_int).collect();
    let mut incoming = vec![0 as c_int; out.len()];
    c.all_to_all_into(&counts[..], &mut incoming[..])
        .map_err(fail)?;
    let prefix = |c: &[usize]| -> Vec<usize> {
        c.iter()
            .scan(0, |acc, &x| {
                let d = *acc;
                *acc += x;
                Some(d)
            })
            .collect()
    };
    let sc: Vec<usize> = counts.iter().map(|&x| x as usize).collect();
    let rc: Vec<usize> = incoming.iter().map(|&x| x as usize).collect();
    let send: Vec<c_int> = out.concat();
    let mut recv = vec![0 as c_int; rc.iter().sum()];
    c.all_to_all_varcount_into(
        &send[..],
        &sc,
        &prefix(&sc),
        &mut recv[..],
        &rc,
        &prefix(&rc),
    )
    .map_err(fail)?;
    Ok(recv)
}

/// `MPI_Dist_graph_neighbors_count`.
#[no_mangle]
pub extern "C" fn MPI_Dist_graph_neighbors_count(
    comm: c_int,
    indegree: *mut c_int,
    outdegree: *mut c_int,
    weighted: *mut c_int,
) -> c_int {
    let r = dist_graph(comm).map(|d| {
        raw::put(indegree, d.sources.len() as c_int);
        raw::put(outdegree, d.destinations.len() as c_int);
        raw::put(weighted, c_int::from(d.weights.is_some()));
    });
    finish("MPI_Dist_graph_neighbors_count", comm, r)
}

/// `MPI_Dist_graph_neighbors`: at most `maxindegree` sources and `maxoutdegree`
/// destinations, with their weights when the graph has them and the caller asks.
#[no_mangle]
pub extern "C" fn MPI_Dist_graph_neighbors(
    comm: c_int,
    maxindegree: c_int,
    sources: *mut c_int,
    sourceweights: *mut c_int,
    maxoutdegree: c_int,
    destinations: *mut c_int,
    destweights: *mut c_int,
) -> c_int {
    let r = dist_graph(comm).and_then(|d| {
        let ni = d.sources.len().min(maxindegree.max(0) as usize);
        let no = d.destinations.len().min(maxoutdegree.max(0) as usize);
        raw::array_mut(sources, ni)
            .ok_or_else(|| arg("sources is a null pointer"))?
            .copy_from_slice(&d.sources[..ni]);
        raw::array_mut(destinations, no)
            .ok_or_else(|| arg("destinations is a null pointer"))?
            .copy_from_slice(&d.destinations[..no]);
        if let Some((sw, dw)) = &d.weights {
            if !unweighted(sourceweights) {
                if let Some(o) = raw::array_mut(sourceweights, ni) {
                    o.copy_from_slice(&sw[..ni]);
                }
            }
            if !unweighted(destweights) {
                if let Some(o) = raw::array_mut(destweights, no) {
                    o.copy_from_slice(&dw[..no]);
                }
            }
        }
        Ok(())
    });
    finish("MPI_Dist_graph_neighbors", comm, r)
}
