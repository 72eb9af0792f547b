//! A member's log of the broadcasts of its view that some member may not have delivered
//! yet, by total-order key `(ts, origin)` (see [`Data::key`]).
//!
//! One queue per origin, not one ordered map: an origin stamps its broadcasts with
//! strictly increasing Lamport timestamps and the links deliver them in its order, so
//! each origin's queue grows at its back, and garbage collection, which drops every
//! broadcast up to a key, takes from the fronts. A `BTreeMap` over all keys did the same
//! with a shift of the rest of a leaf on every insertion and removal at its front: at 64 B
//! broadcasts `memmove` under B-tree operations was 13% of a member's time (perf, 3
//! members in network namespaces, as fast as back-pressure allows).

use super::types::NodeId;
use super::wire::Data;
use std::collections::{BTreeMap, VecDeque};

/// The log (see the module docs).
#[derive(Default)]
pub(super) struct Log {
    /// Each origin's broadcasts, by timestamp (so by key: the origin is the same).
    /// Origins whose queue ran empty keep it: a view has a handful of members, and a new
    /// one comes only with a join.
    by_origin: BTreeMap<NodeId, VecDeque<Data>>,
}

impl Log {
    /// Broadcasts held.
    pub(super) fn len(&self) -> usize {
        self.by_origin.values().map(VecDeque::len).sum()
    }

    /// Hold `data`, in place of a broadcast of the same key if there is one.
    pub(super) fn insert(&mut self, data: Data) {
        let q = self.by_origin.entry(data.id.origin).or_default();
        match q.back() {
            Some(last) if last.ts >= data.ts => match q.binary_search_by_key(&data.ts, |d| d.ts) {
                Ok(i) => q[i] = data,
                Err(i) => q.insert(i, data),
            },
            _ => q.push_back(data),
        }
    }

    /// The broadcast of key `key`, if held.
    pub(super) fn get(&self, (ts, origin): (u64, NodeId)) -> Option<&Data> {
        let q = self.by_origin.get(&origin)?;
        q.binary_search_by_key(&ts, |d| d.ts).ok().map(|i| &q[i])
    }

    /// The lowest key held.
    #[cfg(test)]
    fn first_key(&self) -> Option<(u64, NodeId)> {
        self.by_origin
            .values()
            .filter_map(|q| q.front().map(Data::key))
            .min()
    }

    /// Drop every broadcast whose key is at most `low`.
    pub(super) fn remove_through(&mut self, low: (u64, NodeId)) {
        for q in self.by_origin.values_mut() {
            while q.front().is_some_and(|d| d.key() <= low) {
                q.pop_front();
            }
        }
    }

    /// Every broadcast held, in key order.
    pub(super) fn in_order(&self) -> Vec<Data> {
        let mut all: Vec<Data> = self.by_origin.values().flatten().cloned().collect();
        all.sort_unstable_by_key(Data::key);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abcast::types::MsgId;
    use bytes::Bytes;

    fn data(origin: NodeId, seq: u64, ts: u64) -> Data {
        Data {
            id: MsgId { origin, seq },
            ts,
            payload: Bytes::from(format!("{origin}:{seq}")),
        }
    }

    /// The log against a `BTreeMap` of the same keys, through insertions in and out of
    /// order, replacements and collections.
    #[test]
    fn behaves_as_an_ordered_map_of_keys() {
        let mut log = Log::default();
        let mut model: BTreeMap<(u64, NodeId), Data> = BTreeMap::new();
        let mut put = |log: &mut Log, d: Data| {
            model.insert(d.key(), d.clone());
            log.insert(d);
        };
        // In order per origin, interleaved across origins.
        for seq in 1..=20u64 {
            for origin in 1..=3u64 {
                put(&mut log, data(origin, seq, seq * 3 + origin));
            }
        }
        // Out of order (a flush of a view change) and a replacement.
        put(&mut log, data(4, 2, 17));
        put(&mut log, data(4, 1, 5));
        put(&mut log, data(2, 7, 23));
        assert_eq!(log.len(), model.len());
        for (k, d) in &model {
            assert_eq!(log.get(*k), Some(d), "key {k:?}");
        }
        assert_eq!(log.get((999, 1)), None);
        assert_eq!(log.get((4, 9)), None);
        let ordered: Vec<Data> = model.values().cloned().collect();
        assert_eq!(log.in_order(), ordered);
        for low in [(0, 0), (10, 2), (17, 4), (17, 9), (40, 1), (1000, 0)] {
            log.remove_through(low);
            model.retain(|k, _| *k > low);
            assert_eq!(log.len(), model.len(), "after removing through {low:?}");
            assert_eq!(log.first_key(), model.keys().next().copied());
            assert_eq!(log.in_order(), model.values().cloned().collect::<Vec<_>>());
        }
        assert_eq!(log.len(), 0);
    }
}
