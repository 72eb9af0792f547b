//! Agreeing on a call before running its schedule: every rank learns whether all ranks
//! passed the same arguments, and whether one of them refused its own.
//!
//! A schedule is chosen by each rank alone, from its own arguments (sizes against the
//! [`Tuning`](super::Tuning) thresholds, the root). Ranks that disagree on them (an
//! erroneous program: one rank passes 70000 elements and another 60000, or another root)
//! may choose different algorithms and then wait for messages the others' schedules never
//! send; a rank whose arguments fail its own checks would leave the others waiting for it.
//! So before the schedule, every rank runs the same fixed exchange, whatever its arguments:
//!
//! - each rank contributes a [`Word`]: a digest of what all ranks must pass alike (the
//!   collective, the root, the sizes that choose the algorithm, the element size and
//!   commutativity of the op; see [`digest`]), or a refusal;
//! - a dissemination exchange (round `k`: send the word to rank `r + 2^k`, receive from
//!   `r - 2^k`, combine) of `ceil(log2 n)` rounds of 32-byte messages combines them;
//!   combining (minimum and maximum digest, lowest refusing rank) is idempotent,
//!   commutative and associative, so after the last round every rank holds the
//!   combination of all n words, the same bytes on every rank;
//! - the [`Step::Verdict`](super::schedule::Step::Verdict) step then ends the call on
//!   every rank alike: nobody starts the schedule ([`CollError::Disagree`]) when a rank
//!   refused or two digests differ. No transfer of the schedule has been posted then, so
//!   nothing is left in flight with the caller's buffers.
//!
//! A refusing rank does not wait for the exchange ([`refuse`]): it sends its refusal in
//! every round at once (any word it forwards makes the receiver stop, so it need not
//! combine first), leaves its receives to the fabric, and returns its own error.
//!
//! What the digest cannot see, the schedule still checks: sizes only the root knows
//! (`Gatherv`'s counts against each rank's own), per-pair `Alltoallv` counts (a receive
//! of another size is a [`CollError::Truncated`]), and two ops with the same element size.

use super::schedule::{Sched, Step};
use super::{CollCtx, CollError, CollOp, Reducer};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;
use zerorank_transport::fabric::{RecvBufRef, SendBuf, SendMode};
use zerorank_transport::matching::Pattern;

/// Bytes of a word on the wire.
pub(crate) const WORD: usize = 32;

/// No rank refused.
const NOBODY: u32 = u32::MAX;

/// What a rank knows of the ranks' votes: the lowest and highest digest, with the lowest
/// rank that voted each, and the lowest rank that refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Word {
    min: (u64, u32),
    max: (u64, u32),
    refuser: u32,
}

impl Word {
    /// The vote of rank `me` with `digest`.
    pub fn vote(me: u32, digest: u64) -> Word {
        Word {
            min: (digest, me),
            max: (digest, me),
            refuser: NOBODY,
        }
    }

    /// The vote of rank `me`, which refuses its arguments.
    pub fn refusal(me: u32) -> Word {
        Word {
            refuser: me,
            ..Word::vote(me, 0)
        }
    }

    /// Both words' knowledge: idempotent, commutative and associative.
    pub fn combine(self, o: Word) -> Word {
        let lowest_rank = |a: (u64, u32), b: (u64, u32)| if a.1 <= b.1 { a } else { b };
        Word {
            min: if self.min.0 == o.min.0 {
                lowest_rank(self.min, o.min)
            } else if self.min.0 < o.min.0 {
                self.min
            } else {
                o.min
            },
            max: if self.max.0 == o.max.0 {
                lowest_rank(self.max, o.max)
            } else if self.max.0 > o.max.0 {
                self.max
            } else {
                o.max
            },
            refuser: self.refuser.min(o.refuser),
        }
    }

    pub fn to_bytes(self) -> [u8; WORD] {
        let mut b = [0u8; WORD];
        b[0..8].copy_from_slice(&self.min.0.to_le_bytes());
        b[8..16].copy_from_slice(&self.max.0.to_le_bytes());
        b[16..20].copy_from_slice(&self.min.1.to_le_bytes());
        b[20..24].copy_from_slice(&self.max.1.to_le_bytes());
        b[24..28].copy_from_slice(&self.refuser.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8]) -> Word {
        assert_eq!(b.len(), WORD, "an agreement word is {WORD} bytes");
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Word {
            min: (u64_at(0), u32_at(16)),
            max: (u64_at(8), u32_at(20)),
            refuser: u32_at(24),
        }
    }

    /// The outcome for a rank that voted `digest`, once the word holds every rank's vote:
    /// `None` when all agree, else the disagreement, naming a rank this one disagrees with
    /// (the refuser, or a holder of the other extreme digest).
    pub fn verdict(self, digest: u64) -> Option<CollError> {
        if self.refuser != NOBODY {
            return Some(CollError::Disagree { peer: self.refuser });
        }
        if self.min.0 == self.max.0 {
            return None;
        }
        let peer = if digest == self.min.0 {
            self.max.1
        } else {
            self.min.1
        };
        Some(CollError::Disagree { peer })
    }
}

/// The peers of rank `r` of `n` in each round: (send to, receive from).
fn rounds(r: u32, n: u32) -> impl Iterator<Item = (u32, u32)> {
    std::iter::successors(Some(1u32), |d| d.checked_mul(2))
        .take_while(move |&d| d < n)
        .map(move |d| ((r + d) % n, (r + n - d) % n))
}

/// Add the agreement on `digest` to the start of a schedule of rank `r` of `n`.
pub(crate) fn prelude(s: &mut Sched, r: u32, n: u32, digest: u64) {
    assert!(n > 1 && r < n, "an agreement needs peers");
    let word = s.tmp(WORD);
    s.vote(word, digest, r);
    s.end_round();
    for (to, from) in rounds(r, n) {
        let input = s.tmp(WORD);
        s.send(to, word);
        s.recv(from, input);
        s.combine(input, word);
        s.end_round();
    }
    s.verdict(word, digest);
    s.end_round();
}

/// Run a [`Step::Vote`], [`Step::Combine`] or [`Step::Verdict`] over their regions'
/// bytes (`word` is the step's word region, `input` the received word of a combine).
pub(crate) fn local(step: &Step, word: &mut [u8], input: &[u8]) -> Option<CollError> {
    match *step {
        Step::Vote { digest, me, .. } => {
            word.copy_from_slice(&Word::vote(me, digest).to_bytes());
            None
        }
        Step::Combine { .. } => {
            let w = Word::from_bytes(word).combine(Word::from_bytes(input));
            word.copy_from_slice(&w.to_bytes());
            None
        }
        Step::Verdict { digest, .. } => Word::from_bytes(word).verdict(digest),
        _ => unreachable!("not an agreement step"),
    }
}

/// Take part in the agreement of the call `ctx` as a rank whose arguments failed its
/// checks: send the refusal to every rank it sends to and leave its receives to the
/// fabric (their messages need not wait as unexpected ones forever). Returns at once.
pub(crate) fn refuse(ctx: &CollCtx) {
    let n = ctx.ranks.len() as u32;
    if n < 2 {
        return;
    }
    let f = &ctx.fabric;
    let word: Rc<[u8; WORD]> = Rc::new(Word::refusal(ctx.rank).to_bytes());
    for (to, from) in rounds(ctx.rank, n) {
        // SAFETY: the bytes live in `word`, which the fabric keeps (adopt) until the send
        // completes and nobody writes.
        let id = unsafe {
            f.isend(
                ctx.ranks[to as usize],
                ctx.context,
                ctx.tag,
                SendBuf::new(word.as_ptr(), WORD),
                SendMode::Standard,
            )
        };
        f.adopt(id, Box::new(word.clone()));
        let mut into = Box::new([0u8; WORD]);
        let pat = Pattern {
            comm: ctx.context,
            src: Some(ctx.ranks[from as usize]),
            tag: Some(ctx.tag),
        };
        // SAFETY: the box is handed to the fabric with the request (adopt) and its heap
        // bytes do not move; nothing else touches them.
        let id = unsafe { f.irecv(pat, RecvBufRef::new(into.as_mut_ptr(), WORD)) };
        f.adopt(id, into);
    }
}

/// The digest of what every rank must pass alike to `op` (see the module docs).
pub(crate) fn digest(op: &CollOp) -> u64 {
    let mut h = DefaultHasher::new();
    std::mem::discriminant(op).hash(&mut h);
    let reducer = |h: &mut DefaultHasher, r: &Rc<dyn Reducer>| {
        (r.elem_size(), r.commutative()).hash(h);
    };
    match op {
        CollOp::Barrier | CollOp::Alltoallv { .. } => {}
        CollOp::Bcast { root, buf } => (root, buf.len()).hash(&mut h),
        CollOp::Reduce {
            root,
            send,
            recv,
            op,
        } => {
            // The operand: `send`, or in place the root's `recv`.
            let len = send.or(*recv).map_or(0, |b| b.len());
            (root, len).hash(&mut h);
            reducer(&mut h, op);
        }
        CollOp::Allreduce { recv, op, .. }
        | CollOp::Scan { recv, op, .. }
        | CollOp::Exscan { recv, op, .. } => {
            recv.len().hash(&mut h);
            reducer(&mut h, op);
        }
        CollOp::Gather { root, block, .. } | CollOp::Scatter { root, block, .. } => {
            (root, block).hash(&mut h)
        }
        CollOp::Gatherv { root, .. } | CollOp::Scatterv { root, .. } => root.hash(&mut h),
        CollOp::Allgather { block, .. } | CollOp::Alltoall { block, .. } => block.hash(&mut h),
        CollOp::Allgatherv { counts, .. } => counts.hash(&mut h),
        CollOp::ReduceScatter { counts, op, .. } => {
            counts.hash(&mut h);
            reducer(&mut h, op);
        }
    }
    h.finish()
}

/// Which collectives start with the agreement (`ZR_COLL_AGREE`, read once; every rank of a
/// job must have the same setting, as `zrun` passes it on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `0`: none (ranks that disagree may wait for each other forever).
    Off,
    /// The default: every call that runs a schedule (across nodes, non-blocking calls).
    Schedules,
    /// `all`: also the blocking calls on one node, through the slots (`on_node`): one
    /// more exchange per call, for finding a program's disagreeing roots (which the
    /// on-node path cannot tell: a rank that names another root waits for a publication
    /// that never comes).
    All,
}

/// The [`Mode`] of this process.
pub fn mode() -> Mode {
    static MODE: std::sync::OnceLock<Mode> = std::sync::OnceLock::new();
    *MODE.get_or_init(|| match std::env::var("ZR_COLL_AGREE") {
        Ok(v) if v.trim() == "0" => Mode::Off,
        Ok(v) if v.trim().eq_ignore_ascii_case("all") => Mode::All,
        _ => Mode::Schedules,
    })
}

/// Should schedule-run collectives agree first?
pub fn enabled() -> bool {
    mode() != Mode::Off
}

/// The agreement of a blocking call on one node ([`Mode::All`]), as the node's allgather
/// `tag` of every rank's word: `vote` is this rank's digest, `None` when it refuses its
/// arguments. `Err` on every rank alike when the ranks disagree; a refuser's outcome is
/// its own error, which the caller has.
pub(crate) fn on_node(
    node: &super::node::Node,
    tag: i32,
    me: u32,
    n: usize,
    vote: Option<u64>,
) -> Result<(), CollError> {
    let mine = match vote {
        Some(d) => Word::vote(me, d),
        None => Word::refusal(me),
    }
    .to_bytes();
    let mut all = vec![0u8; n * WORD];
    // SAFETY: both buffers outlive the blocking call and nothing else touches them.
    let (send, recv) = unsafe {
        (
            super::RawBuf::from_const(mine.as_ptr(), WORD),
            super::RawBuf::from_slice(&mut all),
        )
    };
    node.run(
        tag,
        CollOp::Allgather {
            send: Some(send),
            recv,
            block: WORD,
        },
    )?;
    let word = all
        .chunks_exact(WORD)
        .map(Word::from_bytes)
        .reduce(Word::combine)
        .expect("at least one rank");
    match (vote, word.verdict(vote.unwrap_or(0))) {
        (Some(_), Some(e)) => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the dissemination of `votes` in memory; every rank's final word.
    fn disseminate(votes: &[Word]) -> Vec<Word> {
        let n = votes.len() as u32;
        let mut words = votes.to_vec();
        for k in 0..rounds(0, n).count() {
            let sent: Vec<(u32, Word)> = (0..n)
                .map(|r| (rounds(r, n).nth(k).expect("round").0, words[r as usize]))
                .collect();
            for (to, w) in sent {
                let t = &mut words[to as usize];
                *t = if votes[to as usize].refuser == to {
                    *t // a refuser does not combine
                } else {
                    t.combine(w)
                };
            }
        }
        words
    }

    #[test]
    fn every_rank_ends_with_every_vote() {
        for n in 2..=17u32 {
            let votes: Vec<Word> = (0..n).map(|r| Word::vote(r, 7 + r as u64 % 3)).collect();
            let all = votes.iter().copied().reduce(Word::combine).expect("votes");
            for (r, w) in disseminate(&votes).iter().enumerate() {
                assert_eq!(*w, all, "rank {r} of {n}");
            }
        }
    }

    #[test]
    fn agreeing_ranks_go_on_and_disagreeing_ones_stop_alike() {
        for n in 2..=9u32 {
            let same: Vec<Word> = (0..n).map(|r| Word::vote(r, 42)).collect();
            for w in disseminate(&same) {
                assert!(w.verdict(42).is_none());
            }
            for odd in 0..n {
                let votes: Vec<Word> = (0..n)
                    .map(|r| Word::vote(r, if r == odd { 41 } else { 42 }))
                    .collect();
                for (r, w) in disseminate(&votes).iter().enumerate() {
                    let d = if r as u32 == odd { 41 } else { 42 };
                    match w.verdict(d) {
                        Some(CollError::Disagree { peer }) => {
                            assert_ne!(peer, r as u32);
                            assert!(peer == odd || r as u32 == odd);
                        }
                        e => panic!("rank {r} of {n}, odd {odd}: {e:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn a_refusal_reaches_every_rank_even_from_a_refuser_that_does_not_combine() {
        for n in 2..=9u32 {
            for a in 0..n {
                for b in [a, (a + n / 2) % n] {
                    let votes: Vec<Word> = (0..n)
                        .map(|r| {
                            if r == a || r == b {
                                Word::refusal(r)
                            } else {
                                Word::vote(r, 5)
                            }
                        })
                        .collect();
                    for (r, w) in disseminate(&votes).iter().enumerate() {
                        // Which refuser a rank names depends on the path its news took.
                        assert!(
                            matches!(w.verdict(5), Some(CollError::Disagree { peer }) if peer == a || peer == b),
                            "rank {r} of {n}, refusers {a} {b}: {w:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_word_survives_the_wire() {
        let w = Word::vote(3, u64::MAX - 1).combine(Word::refusal(9));
        assert_eq!(Word::from_bytes(&w.to_bytes()), w);
    }
}
