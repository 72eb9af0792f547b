//! Groups: ordered sets of processes, named by their world ranks.
//!
//! A [`Group`] is what a communicator is made of: the list of its members in rank order
//! (rank `i` of the group is the process of world rank `group.world_rank(i)`). Groups are
//! local objects (making one never communicates); a communicator is made from one with
//! [`Communicator::create`](crate::Communicator::create).
//!
//! ```no_run
//! let universe = zerorank::initialize().unwrap();
//! let world = universe.world();
//! let evens = world.group().range_incl(&[[0, world.size() - 1, 2]]).unwrap();
//! // Every rank of `world` calls `create`; the even ones get a communicator.
//! if let Some(comm) = world.create(&evens).unwrap() {
//!     assert_eq!(comm.rank(), world.rank() / 2);
//! }
//! ```

use crate::error::{Error, Result};
use std::cell::OnceCell;
use std::collections::HashSet;
use std::fmt;
use std::rc::Rc;

/// How two groups (or the groups of two communicators) compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupComparison {
    /// Same members in the same order (`MPI_IDENT`).
    Ident,
    /// Same members in another order (`MPI_SIMILAR`).
    Similar,
    /// Different members (`MPI_UNEQUAL`).
    Unequal,
}

/// Reverse lookup from world rank to group rank.
enum Index {
    /// Group rank `i` is world rank `i`.
    Identity,
    /// `(world rank, group rank)` sorted by world rank.
    Sorted(Box<[(u32, u32)]>),
}

/// An ordered set of distinct processes, named by their world ranks; cheap to clone.
#[derive(Clone)]
pub struct Group {
    ranks: Rc<[u32]>,
    me: u32,
    index: Rc<OnceCell<Index>>,
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("world_ranks", &&*self.ranks)
            .field("rank", &self.rank())
            .finish()
    }
}

impl PartialEq for Group {
    /// Same members in the same order.
    fn eq(&self, other: &Self) -> bool {
        self.ranks == other.ranks
    }
}
impl Eq for Group {}

/// The process the empty group is seen from: none (no world rank is this large).
const NOBODY: u32 = u32::MAX;

fn check_rank(rank: i32, size: usize) -> Result<u32> {
    if rank < 0 || rank as usize >= size {
        return Err(Error::GroupRank {
            rank,
            size: size as i32,
        });
    }
    Ok(rank as u32)
}

impl Group {
    /// The group of `world_ranks` (in that order), seen from the process of world rank
    /// `me` (which need not be a member). Ranks must be distinct.
    pub fn from_world_ranks(world_ranks: impl Into<Rc<[u32]>>, me: u32) -> Result<Group> {
        let ranks = world_ranks.into();
        let mut seen = HashSet::with_capacity(ranks.len());
        for &r in ranks.iter() {
            if !seen.insert(r) {
                return Err(Error::DuplicateRank(r as i32));
            }
        }
        Ok(Group::new_unchecked(ranks, me))
    }

    /// Ranks are known to be distinct.
    pub(crate) fn new_unchecked(ranks: Rc<[u32]>, me: u32) -> Group {
        Group {
            ranks,
            me,
            index: Rc::default(),
        }
    }

    /// The world group of `size` ranks seen from world rank `me`.
    pub(crate) fn world(size: u32, me: u32) -> Group {
        let g = Group::new_unchecked((0..size).collect(), me);
        let _ = g.index.set(Index::Identity);
        g
    }

    /// The empty group (`MPI_GROUP_EMPTY`).
    pub fn empty() -> Group {
        Group::new_unchecked(Rc::from([]), NOBODY)
    }

    /// A group of `ranks` seen from the same process as `self`.
    fn derive(&self, ranks: Vec<u32>) -> Group {
        Group::new_unchecked(ranks.into(), self.me)
    }

    /// A group of `ranks` made from `self` and `other`, seen from the process either is
    /// seen from (the empty group is seen from nobody).
    fn derive2(&self, other: &Group, ranks: Vec<u32>) -> Group {
        let me = if self.me == NOBODY { other.me } else { self.me };
        Group::new_unchecked(ranks.into(), me)
    }

    /// Number of members.
    pub fn size(&self) -> i32 {
        self.ranks.len() as i32
    }

    /// Is the group empty?
    pub fn is_empty(&self) -> bool {
        self.ranks.is_empty()
    }

    /// The rank of this process in the group, `None` if it is not a member
    /// (`MPI_UNDEFINED`).
    pub fn rank(&self) -> Option<i32> {
        self.rank_of_world(self.me)
    }

    /// The world rank of this process (the one the group is seen from; `None` for
    /// [`Group::empty`] and the groups made only from it).
    pub fn my_world_rank(&self) -> Option<u32> {
        (self.me != NOBODY).then_some(self.me)
    }

    /// The world rank of group rank `rank`, if there is one.
    pub fn world_rank(&self, rank: i32) -> Option<u32> {
        if rank < 0 {
            return None;
        }
        self.ranks.get(rank as usize).copied()
    }

    /// The world ranks of the members, in group order.
    pub fn world_ranks(&self) -> &[u32] {
        &self.ranks
    }

    /// The world ranks as a shared slice (for the collective engine).
    pub fn world_ranks_rc(&self) -> Rc<[u32]> {
        self.ranks.clone()
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            if self.ranks.iter().enumerate().all(|(i, &r)| r as usize == i) {
                Index::Identity
            } else {
                let mut v: Vec<(u32, u32)> = self
                    .ranks
                    .iter()
                    .enumerate()
                    .map(|(i, &w)| (w, i as u32))
                    .collect();
                v.sort_unstable();
                Index::Sorted(v.into_boxed_slice())
            }
        })
    }

    /// The group rank of the process of world rank `world`, `None` if it is not a member.
    pub fn rank_of_world(&self, world: u32) -> Option<i32> {
        match self.index() {
            Index::Identity => ((world as usize) < self.ranks.len()).then_some(world as i32),
            Index::Sorted(v) => v
                .binary_search_by_key(&world, |&(w, _)| w)
                .ok()
                .map(|i| v[i].1 as i32),
        }
    }

    /// Is world rank `world` a member?
    pub fn contains_world(&self, world: u32) -> bool {
        self.rank_of_world(world).is_some()
    }

    /// The members at `ranks` of this group, in that order (`MPI_Group_incl`). The ranks
    /// must be valid and distinct.
    pub fn incl(&self, ranks: &[i32]) -> Result<Group> {
        let mut seen = vec![false; self.ranks.len()];
        let mut out = Vec::with_capacity(ranks.len());
        for &r in ranks {
            let i = check_rank(r, self.ranks.len())? as usize;
            if std::mem::replace(&mut seen[i], true) {
                return Err(Error::DuplicateRank(r));
            }
            out.push(self.ranks[i]);
        }
        Ok(self.derive(out))
    }

    /// The members not at `ranks`, in group order (`MPI_Group_excl`). The ranks must be
    /// valid and distinct.
    pub fn excl(&self, ranks: &[i32]) -> Result<Group> {
        let mut drop = vec![false; self.ranks.len()];
        for &r in ranks {
            let i = check_rank(r, self.ranks.len())? as usize;
            if std::mem::replace(&mut drop[i], true) {
                return Err(Error::DuplicateRank(r));
            }
        }
        let out = self
            .ranks
            .iter()
            .zip(&drop)
            .filter(|(_, &d)| !d)
            .map(|(&w, _)| w)
            .collect();
        Ok(self.derive(out))
    }

    /// The group ranks of `[first, last, stride]` triples, in order, checked.
    fn expand_ranges(&self, ranges: &[[i32; 3]]) -> Result<Vec<i32>> {
        let size = self.ranks.len() as i64;
        let mut out = Vec::new();
        for &[first, last, stride] in ranges {
            let bad = || Error::InvalidRange {
                first,
                last,
                stride,
                size: size as i32,
            };
            let (f, l, s) = (first as i64, last as i64, stride as i64);
            // As MPICH: a zero stride, or one leading away from `last`, is an error.
            if s == 0 || f < 0 || f >= size || l < 0 || l >= size || (l - f) * s < 0 {
                return Err(bad());
            }
            let mut r = f;
            while (s > 0 && r <= l) || (s < 0 && r >= l) {
                out.push(r as i32);
                r += s;
            }
        }
        Ok(out)
    }

    /// The members at the ranks of the `[first, last, stride]` triples, in order
    /// (`MPI_Group_range_incl`): `first, first + stride, ...` up to `last`. `first` and
    /// `last` must be valid ranks, the stride non-zero and pointing from `first` towards
    /// `last`, and no rank may be named twice.
    pub fn range_incl(&self, ranges: &[[i32; 3]]) -> Result<Group> {
        let ranks = self.expand_ranges(ranges)?;
        self.incl(&ranks)
    }

    /// The members not at the ranks of the triples, in group order
    /// (`MPI_Group_range_excl`); the same checks as [`Group::range_incl`].
    pub fn range_excl(&self, ranges: &[[i32; 3]]) -> Result<Group> {
        let ranks = self.expand_ranges(ranges)?;
        self.excl(&ranks)
    }

    /// The members of `self`, then those of `other` not in `self`, each in its group's
    /// order (`MPI_Group_union`).
    pub fn union(&self, other: &Group) -> Group {
        let mut out: Vec<u32> = self.ranks.to_vec();
        out.extend(
            other
                .ranks
                .iter()
                .copied()
                .filter(|&w| !self.contains_world(w)),
        );
        self.derive2(other, out)
    }

    /// The members of `self` that are also in `other`, in `self`'s order
    /// (`MPI_Group_intersection`).
    pub fn intersection(&self, other: &Group) -> Group {
        let out = self
            .ranks
            .iter()
            .copied()
            .filter(|&w| other.contains_world(w))
            .collect();
        self.derive2(other, out)
    }

    /// The members of `self` not in `other`, in `self`'s order (`MPI_Group_difference`).
    pub fn difference(&self, other: &Group) -> Group {
        let out = self
            .ranks
            .iter()
            .copied()
            .filter(|&w| !other.contains_world(w))
            .collect();
        self.derive2(other, out)
    }

    /// For each rank of this group, the rank of the same process in `other`, `None` if it
    /// is not a member there (`MPI_Group_translate_ranks`; the C layer maps `None` to
    /// `MPI_UNDEFINED` and passes `MPI_PROC_NULL` through itself). Every rank must be
    /// valid in this group.
    pub fn translate_ranks(&self, ranks: &[i32], other: &Group) -> Result<Vec<Option<i32>>> {
        ranks
            .iter()
            .map(|&r| {
                let i = check_rank(r, self.ranks.len())?;
                Ok(other.rank_of_world(self.ranks[i as usize]))
            })
            .collect()
    }

    /// Compare the members and their order (`MPI_Group_compare`).
    pub fn compare(&self, other: &Group) -> GroupComparison {
        if self.ranks == other.ranks {
            return GroupComparison::Ident;
        }
        if self.ranks.len() == other.ranks.len()
            && self.ranks.iter().all(|&w| other.contains_world(w))
        {
            return GroupComparison::Similar;
        }
        GroupComparison::Unequal
    }

    /// A 32-bit fingerprint of the members in order (to check that ranks agree on a group).
    pub(crate) fn fingerprint(&self) -> u32 {
        // FNV-1a over the world ranks, with the size mixed in.
        let mut h: u32 = 0x811c_9dc5;
        for w in std::iter::once(self.ranks.len() as u32).chain(self.ranks.iter().copied()) {
            for b in w.to_le_bytes() {
                h ^= b as u32;
                h = h.wrapping_mul(0x0100_0193);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(ranks: &[u32]) -> Group {
        Group::from_world_ranks(ranks.to_vec(), 3).unwrap()
    }

    #[test]
    fn world_and_lookup() {
        let w = Group::world(5, 3);
        assert_eq!(w.size(), 5);
        assert_eq!(w.rank(), Some(3));
        assert_eq!(w.world_rank(4), Some(4));
        assert_eq!(w.world_rank(5), None);
        assert_eq!(w.world_rank(-1), None);
        assert_eq!(w.rank_of_world(7), None);
        let p = g(&[9, 3, 5]);
        assert_eq!(p.rank(), Some(1));
        assert_eq!(p.rank_of_world(5), Some(2));
        assert_eq!(p.rank_of_world(4), None);
        assert_eq!(g(&[0, 1]).rank(), None);
        assert!(Group::empty().is_empty());
        assert_eq!(Group::empty().rank(), None);
        assert!(matches!(
            Group::from_world_ranks(vec![1, 2, 1], 0),
            Err(Error::DuplicateRank(1))
        ));
    }

    #[test]
    fn incl_excl() {
        let w = Group::world(6, 3);
        let a = w.incl(&[5, 3, 0]).unwrap();
        assert_eq!(a.world_ranks(), &[5, 3, 0]);
        assert_eq!(a.rank(), Some(1));
        assert_eq!(w.incl(&[]).unwrap().size(), 0);
        assert!(matches!(
            w.incl(&[6]),
            Err(Error::GroupRank { rank: 6, size: 6 })
        ));
        assert!(matches!(w.incl(&[-1]), Err(Error::GroupRank { .. })));
        assert!(matches!(w.incl(&[1, 1]), Err(Error::DuplicateRank(1))));
        let b = a.excl(&[0]).unwrap();
        assert_eq!(b.world_ranks(), &[3, 0]);
        assert_eq!(w.excl(&[0, 2, 4]).unwrap().world_ranks(), &[1, 3, 5]);
        assert!(matches!(w.excl(&[2, 2]), Err(Error::DuplicateRank(2))));
        assert!(matches!(w.excl(&[9]), Err(Error::GroupRank { .. })));
        assert_eq!(w.excl(&[]).unwrap(), w);
    }

    #[test]
    fn ranges() {
        let w = Group::world(10, 0);
        let r = w.range_incl(&[[0, 9, 3]]).unwrap();
        assert_eq!(r.world_ranks(), &[0, 3, 6, 9]);
        let r = w.range_incl(&[[8, 1, -3], [0, 0, 1]]).unwrap();
        assert_eq!(r.world_ranks(), &[8, 5, 2, 0]);
        // A stride that leads away from `last` never gets there.
        assert!(matches!(
            w.range_incl(&[[5, 2, 1]]),
            Err(Error::InvalidRange { first: 5, .. })
        ));
        assert!(matches!(
            w.range_incl(&[[0, 4, 0]]),
            Err(Error::InvalidRange { stride: 0, .. })
        ));
        assert!(matches!(
            w.range_incl(&[[0, 10, 1]]),
            Err(Error::InvalidRange { .. })
        ));
        assert!(matches!(
            w.range_incl(&[[0, 4, 2], [4, 5, 1]]),
            Err(Error::DuplicateRank(4))
        ));
        assert_eq!(
            w.range_excl(&[[1, 9, 2]]).unwrap().world_ranks(),
            &[0, 2, 4, 6, 8]
        );
    }

    #[test]
    fn set_operations_follow_mpi_order() {
        let a = g(&[4, 1, 7, 2]);
        let b = g(&[2, 9, 4, 0]);
        assert_eq!(a.union(&b).world_ranks(), &[4, 1, 7, 2, 9, 0]);
        assert_eq!(b.union(&a).world_ranks(), &[2, 9, 4, 0, 1, 7]);
        assert_eq!(a.intersection(&b).world_ranks(), &[4, 2]);
        assert_eq!(b.intersection(&a).world_ranks(), &[2, 4]);
        assert_eq!(a.difference(&b).world_ranks(), &[1, 7]);
        assert_eq!(b.difference(&a).world_ranks(), &[9, 0]);
        let e = Group::empty();
        assert_eq!(a.union(&e), a);
        assert!(a.intersection(&e).is_empty());
        assert_eq!(a.difference(&e), a);
        assert!(e.difference(&a).is_empty());
        // A group made from the empty one is seen from the other operand's process.
        assert_eq!(e.union(&g(&[5, 3])).rank(), Some(1));
        assert_eq!(e.my_world_rank(), None);
    }

    #[test]
    fn translate_and_compare() {
        let a = g(&[4, 1, 7, 2]);
        let b = g(&[2, 9, 4, 0]);
        assert_eq!(
            a.translate_ranks(&[0, 1, 2, 3], &b).unwrap(),
            vec![Some(2), None, None, Some(0)]
        );
        assert!(matches!(
            a.translate_ranks(&[4], &b),
            Err(Error::GroupRank { rank: 4, size: 4 })
        ));
        assert_eq!(a.compare(&a.clone()), GroupComparison::Ident);
        assert_eq!(a.compare(&g(&[4, 1, 7, 2])), GroupComparison::Ident);
        assert_eq!(a.compare(&g(&[1, 2, 4, 7])), GroupComparison::Similar);
        assert_eq!(a.compare(&b), GroupComparison::Unequal);
        assert_eq!(a.compare(&g(&[4, 1, 7])), GroupComparison::Unequal);
        assert_eq!(
            Group::empty().compare(&Group::empty()),
            GroupComparison::Ident
        );
        assert_ne!(a.fingerprint(), g(&[1, 4, 7, 2]).fingerprint());
        assert_eq!(a.fingerprint(), g(&[4, 1, 7, 2]).fingerprint());
    }

    #[test]
    fn world_index_matches_sorted_index() {
        let w = Group::world(8, 0);
        let v = g(&[0, 1, 2, 3, 4, 5, 6, 7]);
        for r in 0..10 {
            assert_eq!(w.rank_of_world(r), v.rank_of_world(r));
        }
    }
}
