//! Call words: what each rank says, in its collective slot, about the on-node collective
//! call it is in, so that the other ranks can tell when waiting for it is futile.
//!
//! Ranks that disagree about a call (an erroneous program: different roots, or different
//! collectives) may each wait for a publication the other will never make: in a
//! broadcast where each rank names the other as the root, both wait to read. A reader
//! that has waited a while looks at the publisher's call word for the communicator
//! ([`CollSlot::call`](super::collslot::CollSlot::call)): if the publisher is in the same
//! call with another signature (kind and root), or has finished it, it will not publish
//! what the reader waits for, and the reader fails the call instead of waiting forever.
//! A publisher whose readers have all finished a call without reading its publication
//! (they named another root) takes the area back the same way.
//!
//! A rank that leaves a call with an error says so (finished and failed). One that left
//! parts of it undone (it gave up waiting, so it may not have read what others published
//! for it) also says so in a second word per communicator, its *failure word*
//! ([`failure`]), that keeps saying it after the rank has moved on to later calls: a
//! publisher waiting for its readers then fails the call too instead of waiting for a
//! release that will never come. An erroneous call thus ends with an error on every
//! rank that could not complete it.
//!
//! A word is one `u64`: valid (bit 63), finished (bit 62), failed (bit 61), the
//! communicator's collective
//! context (23 bits), the call's sequence number (20 bits, compared with wrap-around) and
//! the call's signature (16 bits: [`signature`]). A zero word (fresh memory) is not valid:
//! its rank has not entered any call under it.

/// Words in each slot's table; each communicator with on-node collectives uses one per
/// member (index agreed when the communicator is made; 0 is the world's).
pub const CALL_WORDS: usize = 256;

const VALID: u64 = 1 << 63;
const FINISHED: u64 = 1 << 62;
const FAILED: u64 = 1 << 61;
const CONTEXT_SHIFT: u32 = 36;
const CONTEXT_MASK: u64 = 0x7f_ffff;
const SEQ_SHIFT: u32 = 16;
const SEQ_MASK: u64 = 0xf_ffff;
const SIG_MASK: u64 = (1 << SEQ_SHIFT) - 1;

/// Bits of a signature.
pub const SIGNATURE_BITS: u32 = SEQ_SHIFT;

/// The signature of a call: which collective (`kind`, 1 to 15) and its root (`None` for
/// the collectives without one). Ranks of one call must have the same. Roots from 4094 up
/// (outside any on-node communicator, which has at most 2047 ranks) share one value.
#[inline]
pub fn signature(kind: u8, root: Option<u32>) -> u32 {
    assert!((1..16).contains(&kind), "collective kinds are 1 to 15");
    let root = root.map_or(0, |r| r.min(4094) + 1);
    u32::from(kind) << 12 | root
}

/// Where a rank is in a call, as its word says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// In the call.
    Entered,
    /// Finished it, successfully.
    Finished,
    /// Left it with an error.
    Failed,
}

/// One rank's word for call `seq` on the communicator of collective context `context`.
#[inline]
pub fn encode(context: u32, seq: u32, signature: u32, stage: Stage) -> u64 {
    debug_assert!(u64::from(signature) <= SIG_MASK);
    VALID
        | match stage {
            Stage::Entered => 0,
            Stage::Finished => FINISHED,
            Stage::Failed => FINISHED | FAILED,
        }
        | (u64::from(context) & CONTEXT_MASK) << CONTEXT_SHIFT
        | (u64::from(seq) & SEQ_MASK) << SEQ_SHIFT
        | u64::from(signature) & SIG_MASK
}

/// A rank's failure word: it failed call `seq` on the communicator of context `context`.
#[inline]
pub fn failure(context: u32, seq: u32) -> u64 {
    encode(context, seq, 0, Stage::Failed)
}

/// Does failure word `word` (another rank's) say it failed call `seq` on the communicator
/// of context `context`?
#[inline]
pub fn failed(word: u64, context: u32, seq: u32) -> bool {
    let call = (u64::from(context) & CONTEXT_MASK) << CONTEXT_SHIFT
        | (u64::from(seq) & SEQ_MASK) << SEQ_SHIFT;
    word & VALID != 0
        && word & FAILED != 0
        && word & (CONTEXT_MASK << CONTEXT_SHIFT | SEQ_MASK << SEQ_SHIFT) == call
}

/// Where a rank is, by its word, relative to a call this rank is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// It has not started the call yet (or its word says nothing about this
    /// communicator yet).
    Before,
    /// It is in the call, with the same signature.
    In,
    /// It is in the call with another signature: it will not publish what this rank
    /// waits for, nor read what this rank publishes.
    Elsewhere,
    /// It has finished the call (or left the communicator): it will publish nothing more
    /// for it and release nothing more of it.
    Done,
    /// It has left the call with an error: as [`Progress::Done`], and the call cannot
    /// complete as the ranks that wait in it expect.
    Failed,
}

impl Progress {
    /// Will that rank play no further part in this call as this rank sees it (it is
    /// elsewhere, or has left it)?
    pub fn gone(self) -> bool {
        matches!(
            self,
            Progress::Elsewhere | Progress::Done | Progress::Failed
        )
    }
}

/// What `word` (another rank's) says about call `seq` with signature `signature` on the
/// communicator of context `context`.
#[inline]
pub fn progress(word: u64, context: u32, seq: u32, signature: u32) -> Progress {
    if word & VALID == 0 {
        return Progress::Before;
    }
    if (word >> CONTEXT_SHIFT) & CONTEXT_MASK != u64::from(context) & CONTEXT_MASK {
        // The word index went to another communicator: this one was freed on that rank,
        // which it does only after its last call on it.
        return Progress::Done;
    }
    let theirs = (word >> SEQ_SHIFT) & SEQ_MASK;
    let ahead = theirs.wrapping_sub(u64::from(seq)) & SEQ_MASK;
    match ahead {
        0 if word & FAILED != 0 => Progress::Failed,
        0 if word & FINISHED != 0 => Progress::Done,
        0 if word & SIG_MASK == u64::from(signature) & SIG_MASK => Progress::In,
        0 => Progress::Elsewhere,
        // Ranks of a communicator are never far apart (each on-node call involves
        // every rank): a sequence number less than half the range ahead is later.
        a if a <= SEQ_MASK >> 1 => Progress::Done,
        _ => Progress::Before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_word_is_before_every_call() {
        assert_eq!(progress(0, 0, 0, signature(1, None)), Progress::Before);
    }

    #[test]
    fn progress_follows_the_sequence_and_the_signature() {
        let s = signature(2, Some(0));
        let w = |seq, sig, stage| encode(7, seq, sig, stage);
        let (e, f, x) = (Stage::Entered, Stage::Finished, Stage::Failed);
        assert_eq!(progress(w(9, s, e), 7, 10, s), Progress::Before);
        assert_eq!(progress(w(9, s, x), 7, 10, s), Progress::Before);
        assert_eq!(progress(w(10, s, e), 7, 10, s), Progress::In);
        assert_eq!(progress(w(10, s, f), 7, 10, s), Progress::Done);
        assert_eq!(progress(w(10, s, x), 7, 10, s), Progress::Failed);
        // A failure with another signature is a failure of this call all the same.
        assert_eq!(
            progress(w(10, signature(3, None), x), 7, 10, s),
            Progress::Failed
        );
        assert_eq!(
            progress(w(10, signature(2, Some(1)), e), 7, 10, s),
            Progress::Elsewhere
        );
        assert_eq!(
            progress(w(10, signature(3, Some(0)), e), 7, 10, s),
            Progress::Elsewhere
        );
        assert_eq!(progress(w(11, s, e), 7, 10, s), Progress::Done);
        // A failure of a later call says nothing against this one.
        assert_eq!(progress(w(11, s, x), 7, 10, s), Progress::Done);
        // Another communicator's word under the same index: this one is finished there.
        assert_eq!(progress(encode(8, 10, s, e), 7, 10, s), Progress::Done);
    }

    #[test]
    fn a_failure_word_names_one_call() {
        assert!(!failed(0, 0, 0), "fresh memory");
        assert!(failed(failure(7, 10), 7, 10));
        assert!(!failed(failure(7, 10), 7, 11));
        assert!(!failed(failure(7, 10), 8, 10));
        assert!(!failed(encode(7, 10, 0, Stage::Finished), 7, 10));
        assert!(
            failed(failure(7, SEQ_MASK as u32 + 3), 7, 2),
            "20-bit sequence numbers"
        );
    }

    #[test]
    fn sequence_numbers_wrap() {
        let s = signature(1, None);
        let top = SEQ_MASK as u32;
        assert_eq!(
            progress(encode(0, 0, s, Stage::Entered), 0, top, s),
            Progress::Done
        );
        assert_eq!(
            progress(encode(0, top, s, Stage::Entered), 0, 0, s),
            Progress::Before
        );
        // Tags wrap at 2^31, a multiple of the 20-bit range.
        let t = i32::MAX as u32;
        assert_eq!(
            progress(encode(0, 0, s, Stage::Entered), 0, t, s),
            Progress::Done
        );
    }

    #[test]
    fn roots_and_kinds_make_distinct_signatures() {
        assert_ne!(signature(2, Some(0)), signature(2, Some(1)));
        assert_ne!(signature(2, Some(0)), signature(3, Some(0)));
        assert_ne!(signature(2, None), signature(2, Some(0)));
        assert_eq!(signature(2, Some(5000)), signature(2, Some(u32::MAX)));
        assert!(signature(15, Some(u32::MAX)) < 1 << SIGNATURE_BITS);
    }
}
