//! Distributed agreement and transaction control on top of the ring's total order (the
//! Harness design's table): pure functions of the delivery stream, so every member that
//! delivers the same broadcasts in the same order reaches the same outcomes.
//!
//! - **Agreement.** Members propose values for an instance (any `u64` the application
//!   names); the first proposal delivered for an instance is the decision, everywhere.
//!   Later proposals for it are reported as losing to the decision.
//! - **Transactions.** A member proposes a state change against the version of the
//!   shared history it has seen; the change is applied (and the version advances by
//!   one) if no other change was applied in between, else it aborts. Every member thus
//!   applies the same linear history, and a change never applies over one its proposer
//!   did not see (optimistic concurrency control, decided by the total order).
//!
//! Broadcasts that are neither (the application's own) pass through as [`Outcome::Plain`].
//! A joiner starts from the state a member sends it ([`Agreement::snapshot`],
//! [`Agreement::restore`]).

use super::types::NodeId;
use bytes::Bytes;
use std::collections::BTreeMap;

const PROPOSE: u8 = 0xA1;
const TRANSACT: u8 = 0xA2;

/// What one delivered broadcast meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The first proposal for `instance`: decided.
    Decided {
        instance: u64,
        value: Vec<u8>,
        proposer: NodeId,
    },
    /// A later proposal for a decided instance.
    Lost { instance: u64, proposer: NodeId },
    /// A change applied as version `version` of the history.
    Applied {
        version: u64,
        change: Vec<u8>,
        proposer: NodeId,
    },
    /// A change proposed against `base`, when the history was at `current` already.
    Aborted {
        base: u64,
        current: u64,
        proposer: NodeId,
    },
    /// An application broadcast: a slice of the delivered payload, not a copy.
    Plain(Bytes),
}

/// A payload to broadcast: a proposal of `value` for `instance`.
pub fn propose(instance: u64, value: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(9 + value.len());
    p.push(PROPOSE);
    p.extend_from_slice(&instance.to_le_bytes());
    p.extend_from_slice(value);
    p
}

/// A payload to broadcast: `change`, to apply if the history is still at `base`.
pub fn transact(base: u64, change: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(9 + change.len());
    p.push(TRANSACT);
    p.extend_from_slice(&base.to_le_bytes());
    p.extend_from_slice(change);
    p
}

/// An application payload, marked so that it is never taken for a proposal.
pub fn plain(payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(1 + payload.len());
    p.push(0);
    p.extend_from_slice(payload);
    p
}

/// One member's view of the agreements and the history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Agreement {
    decided: BTreeMap<u64, (NodeId, Vec<u8>)>,
    version: u64,
}

impl Agreement {
    /// The history's version: how many changes were applied.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The decision of `instance`, if there is one: (proposer, value).
    pub fn decision(&self, instance: u64) -> Option<(NodeId, &[u8])> {
        self.decided.get(&instance).map(|(p, v)| (*p, &v[..]))
    }

    /// Take in the next delivered broadcast (from `origin`), in delivery order.
    pub fn deliver(&mut self, origin: NodeId, payload: &Bytes) -> Outcome {
        let word = |b: &[u8]| u64::from_le_bytes(b[1..9].try_into().expect("8 bytes"));
        match payload.first() {
            Some(&PROPOSE) if payload.len() >= 9 => {
                let instance = word(payload);
                if self.decided.contains_key(&instance) {
                    return Outcome::Lost {
                        instance,
                        proposer: origin,
                    };
                }
                let value = payload[9..].to_vec();
                self.decided.insert(instance, (origin, value.clone()));
                Outcome::Decided {
                    instance,
                    value,
                    proposer: origin,
                }
            }
            Some(&TRANSACT) if payload.len() >= 9 => {
                let base = word(payload);
                if base != self.version {
                    return Outcome::Aborted {
                        base,
                        current: self.version,
                        proposer: origin,
                    };
                }
                self.version += 1;
                Outcome::Applied {
                    version: self.version,
                    change: payload[9..].to_vec(),
                    proposer: origin,
                }
            }
            Some(0) => Outcome::Plain(payload.slice(1..)),
            // Not one of ours (or malformed): the application's, as it is.
            _ => Outcome::Plain(payload.clone()),
        }
    }

    /// The state a joiner needs (decisions and version), as bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(&self.version.to_le_bytes());
        s.extend_from_slice(&(self.decided.len() as u64).to_le_bytes());
        for (i, (p, v)) in &self.decided {
            s.extend_from_slice(&i.to_le_bytes());
            s.extend_from_slice(&p.to_le_bytes());
            s.extend_from_slice(&(v.len() as u64).to_le_bytes());
            s.extend_from_slice(v);
        }
        s
    }

    /// The state in `bytes` (from [`Agreement::snapshot`]); `None` if they are not one.
    pub fn restore(bytes: &[u8]) -> Option<Agreement> {
        let mut r = Reader { bytes, at: 0 };
        let version = r.word()?;
        let n = r.word()?;
        let mut decided = BTreeMap::new();
        for _ in 0..n {
            let (i, p, len) = (r.word()?, r.word()?, r.word()?);
            let v = r.take(usize::try_from(len).ok()?)?.to_vec();
            decided.insert(i, (p, v));
        }
        (r.at == bytes.len()).then_some(Agreement { decided, version })
    }
}

/// Reads a snapshot.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(b)
    }

    fn word(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_proposal_wins_and_changes_apply_only_on_their_base() {
        let mut a = Agreement::default();
        assert_eq!(
            a.deliver(2, &propose(7, b"x").into()),
            Outcome::Decided {
                instance: 7,
                value: b"x".to_vec(),
                proposer: 2
            }
        );
        assert_eq!(
            a.deliver(1, &propose(7, b"y").into()),
            Outcome::Lost {
                instance: 7,
                proposer: 1
            }
        );
        assert_eq!(a.decision(7), Some((2, &b"x"[..])));
        assert!(matches!(
            a.deliver(1, &transact(0, b"c1").into()),
            Outcome::Applied { version: 1, .. }
        ));
        assert!(matches!(
            a.deliver(3, &transact(0, b"c2").into()),
            Outcome::Aborted {
                base: 0,
                current: 1,
                ..
            }
        ));
        assert_eq!(
            a.deliver(3, &plain(b"hi").into()),
            Outcome::Plain(Bytes::from_static(b"hi"))
        );
        let b = Agreement::restore(&a.snapshot()).unwrap();
        assert_eq!(a, b);
        assert!(Agreement::restore(&a.snapshot()[..5]).is_none());
        assert!(Agreement::restore(&[]).is_none());
    }

    #[test]
    fn members_with_one_order_reach_the_same_outcomes() {
        // Two members deliver the same interleaving of proposals and changes.
        let stream: Vec<(NodeId, Vec<u8>)> = (0..50u64)
            .map(|k| {
                let who = k % 3 + 1;
                if k % 2 == 0 {
                    (who, propose(k / 4, &who.to_le_bytes()))
                } else {
                    (who, transact(k / 5, &k.to_le_bytes()))
                }
            })
            .collect();
        let run = |s: &[(NodeId, Vec<u8>)]| {
            let mut a = Agreement::default();
            s.iter()
                .map(|(o, p)| a.deliver(*o, &p.clone().into()))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(&stream), run(&stream));
    }
}
