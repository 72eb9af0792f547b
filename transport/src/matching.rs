//! MPI message matching, as a pure data structure.
//!
//! A message is described by its [`Envelope`] (communicator, source, tag). A receive is
//! described by a [`Pattern`], where the source and the tag may be wildcards. Two queues
//! hold what has not met its partner yet:
//!
//! * the **posted-receive queue**, in the order receives were posted;
//! * the **unexpected-message queue**, in the order messages arrived.
//!
//! An arriving message takes the *first* posted receive it matches, and a posted receive
//! takes the *first* unexpected message it matches. Because transports deliver the frames
//! of one sender in order and this module never reorders either queue, messages from one
//! sender never overtake each other (MPI's non-overtaking rule).
//!
//! Both queues are bounded ([`MAX_POSTED`], [`MAX_UNEXPECTED`]): past the bound the caller
//! gets an error instead of unbounded growth.

use std::collections::VecDeque;

/// Most receives that may be posted at once per rank.
pub const MAX_POSTED: usize = 1 << 20;
/// Most unexpected messages held at once per rank.
pub const MAX_UNEXPECTED: usize = 1 << 20;

/// Who sent a message, where, and with which tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// Communicator context id.
    pub comm: u32,
    /// Source rank within the job.
    pub src: u32,
    /// Tag (non-negative for user messages).
    pub tag: i32,
}

/// What a receive accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    /// Communicator context id (never a wildcard).
    pub comm: u32,
    /// `None` accepts any source.
    pub src: Option<u32>,
    /// `None` accepts any tag.
    pub tag: Option<i32>,
}

impl Pattern {
    /// Does this pattern accept a message with envelope `e`?
    #[inline]
    pub fn matches(&self, e: &Envelope) -> bool {
        self.comm == e.comm
            && self.src.is_none_or(|s| s == e.src)
            && self.tag.is_none_or(|t| t == e.tag)
    }
}

/// A queue reached its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// Too many receives posted.
    #[error("more than {MAX_POSTED} receives posted at once")]
    TooManyPosted,
    /// Too many unexpected messages.
    #[error("more than {MAX_UNEXPECTED} unexpected messages held; the receiver is not receiving")]
    TooManyUnexpected,
}

/// The two matching queues. `P` is what a posted receive carries (a request id), `U` what
/// an unexpected message carries (its buffered payload or rendezvous header).
#[derive(Debug)]
pub struct Matcher<P, U> {
    posted: VecDeque<(Pattern, P)>,
    unexpected: VecDeque<(Envelope, U)>,
}

impl<P, U> Default for Matcher<P, U> {
    fn default() -> Self {
        Matcher {
            posted: VecDeque::new(),
            unexpected: VecDeque::new(),
        }
    }
}

impl<P, U> Matcher<P, U> {
    /// Empty queues.
    pub fn new() -> Self {
        Self::default()
    }

    /// A message with envelope `env` arrived: remove and return the first posted receive
    /// that accepts it. When this gives `None` the caller queues the message with
    /// [`Matcher::push_unexpected`], so a matched payload is copied once, straight into the
    /// posted buffer.
    pub fn arrive(&mut self, env: &Envelope) -> Option<P> {
        let i = self.posted.iter().position(|(pat, _)| pat.matches(env))?;
        self.posted.remove(i).map(|(_, p)| p)
    }

    /// Would a message with `env` match a posted receive now? (Nothing is removed.)
    pub fn has_posted_match(&self, env: &Envelope) -> bool {
        self.posted.iter().any(|(pat, _)| pat.matches(env))
    }

    /// Queue a message no posted receive accepted.
    pub fn push_unexpected(&mut self, env: Envelope, u: U) -> Result<(), MatchError> {
        if self.unexpected.len() >= MAX_UNEXPECTED {
            return Err(MatchError::TooManyUnexpected);
        }
        self.unexpected.push_back((env, u));
        Ok(())
    }

    /// Remove every unexpected message for which `pred` holds (for a failed peer).
    pub fn drop_unexpected(&mut self, mut pred: impl FnMut(&Envelope, &U) -> bool) {
        self.unexpected.retain(|(e, u)| !pred(e, u));
    }

    /// Post a receive. If an unexpected message matches, it is removed and returned and the
    /// receive is not queued; otherwise the receive is queued.
    pub fn post(&mut self, pat: Pattern, p: P) -> Result<Option<(Envelope, U)>, MatchError> {
        if let Some(m) = self.take_unexpected(&pat) {
            return Ok(Some(m));
        }
        if self.posted.len() >= MAX_POSTED {
            return Err(MatchError::TooManyPosted);
        }
        self.posted.push_back((pat, p));
        Ok(None)
    }

    /// Remove and return the first unexpected message `pat` accepts.
    pub fn take_unexpected(&mut self, pat: &Pattern) -> Option<(Envelope, U)> {
        let i = self.unexpected.iter().position(|(e, _)| pat.matches(e))?;
        self.unexpected.remove(i)
    }

    /// The first unexpected message `pat` accepts, left in place (for probe).
    pub fn peek_unexpected(&self, pat: &Pattern) -> Option<(&Envelope, &U)> {
        self.unexpected
            .iter()
            .find(|(e, _)| pat.matches(e))
            .map(|(e, u)| (e, u))
    }

    /// Remove the first posted receive for which `pred` holds (for cancel or failure).
    pub fn remove_posted(&mut self, mut pred: impl FnMut(&Pattern, &P) -> bool) -> Option<P> {
        let i = self.posted.iter().position(|(pat, p)| pred(pat, p))?;
        self.posted.remove(i).map(|(_, p)| p)
    }

    /// Number of posted receives.
    pub fn posted_len(&self) -> usize {
        self.posted.len()
    }

    /// Number of unexpected messages.
    pub fn unexpected_len(&self) -> usize {
        self.unexpected.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(src: u32, tag: i32) -> Envelope {
        Envelope { comm: 0, src, tag }
    }
    fn pat(src: Option<u32>, tag: Option<i32>) -> Pattern {
        Pattern { comm: 0, src, tag }
    }

    #[test]
    fn posted_receive_takes_matching_arrival() {
        let mut m: Matcher<u32, &str> = Matcher::new();
        assert_eq!(m.post(pat(Some(1), Some(5)), 10).unwrap(), None);
        assert_eq!(m.arrive(&env(2, 5)), None, "wrong source stays unexpected");
        m.push_unexpected(env(2, 5), "other").unwrap();
        assert_eq!(m.arrive(&env(1, 5)), Some(10));
        assert_eq!(m.posted_len(), 0);
        assert_eq!(m.unexpected_len(), 1);
    }

    #[test]
    fn wildcards_take_the_first_arrival() {
        let mut m: Matcher<u32, u32> = Matcher::new();
        for i in 0..3 {
            m.push_unexpected(env(i, i as i32 + 7), i).unwrap();
        }
        let (e, u) = m.post(pat(None, None), 0).unwrap().unwrap();
        assert_eq!((e.src, u), (0, 0));
        let (e, _) = m.post(pat(None, Some(9)), 0).unwrap().unwrap();
        assert_eq!(e.src, 2);
        let (e, _) = m.post(pat(Some(1), None), 0).unwrap().unwrap();
        assert_eq!(e.tag, 8);
    }

    #[test]
    fn one_sender_never_overtakes() {
        let mut m: Matcher<u32, u32> = Matcher::new();
        for seq in 0..100 {
            m.push_unexpected(env(3, (seq % 2) as i32), seq).unwrap();
        }
        let mut last = None;
        while let Some((_, seq)) = m.take_unexpected(&pat(Some(3), None)) {
            assert!(
                last.is_none_or(|l| seq > l),
                "message {seq} overtook {last:?}"
            );
            last = Some(seq);
        }
        assert_eq!(last, Some(99));
    }

    #[test]
    fn posted_receives_are_matched_in_post_order() {
        let mut m: Matcher<u32, ()> = Matcher::new();
        m.post(pat(None, None), 1).unwrap();
        m.post(pat(Some(4), None), 2).unwrap();
        assert_eq!(m.arrive(&env(4, 0)), Some(1));
        assert_eq!(m.arrive(&env(4, 0)), Some(2));
    }

    #[test]
    fn communicators_are_separate() {
        let mut m: Matcher<u32, ()> = Matcher::new();
        m.post(
            Pattern {
                comm: 1,
                src: None,
                tag: None,
            },
            1,
        )
        .unwrap();
        assert_eq!(m.arrive(&env(0, 0)), None);
        m.push_unexpected(env(0, 0), ()).unwrap();
        assert!(m.peek_unexpected(&pat(None, None)).is_some());
        assert!(m.remove_posted(|_, &p| p == 1).is_some());
    }
}
