//! Which way a large broadcast (or a rank's operand of a large reduce) goes: streamed
//! through the publisher's slot, or read straight from its buffer ([`super::direct`]).
//! Neither is faster everywhere. On this project's VM a stream is 1.3-1.6x faster than the kernel copy while
//! a cache line crosses between its two vCPUs in about 100 ns round trip, and 2-3x slower
//! while that takes 400-500 ns, which the host switches between every few seconds
//! (measured at 2 ranks, fastest state / slowest: 1 MiB 66-87 against 104-135 us, and
//! 241 against 125).
//!
//! So the root measures: each large broadcast it sends records, for its size class (a
//! power of two), how long the whole call took from the root's first publication to the
//! last reader's release. It sends the first [`BURST`] calls of a class one way and the
//! next [`BURST`] the other, then takes the way whose best time over its last [`KEPT`]
//! samples is lower, and every [`PERIOD`] calls sends [`BURST`] in a row the other way,
//! so that a change of state is noticed.
//!
//! In bursts, and by the best of a few samples, because of what was measured at 2 ranks,
//! 1 MiB, on 2026-12-03, where kernel copies take 50-52 us and streams 63-66 when each
//! way is forced: the first call after a switch of ways is slow either way (direct
//! 87-95 us after streams, then 66, 62, 59 ... 52 over the next calls; the pages and
//! caches a way uses are cold), and a call slowed by something else (the rank
//! preempted, an interrupt) is only ever longer. With one call of exploration in eight
//! and a moving average, every exploration was a cold sample, the way that won the
//! first calls kept winning, and the median over rounds was 56-68 us; the best of a burst
//! is a warm sample. Only the root chooses: the readers follow what it published (each
//! publication says its kind), so the ranks never need to agree. The choice changes
//! timing only, never the bytes delivered.

use std::cell::RefCell;
use std::time::Duration;

/// Calls in a row a class sends the way not preferred when it explores it (and each way
/// at first).
pub(super) const BURST: u32 = 4;

/// Calls of a class from the start of one exploring burst to the next: a burst costs its
/// calls and the cold call after it (see the module docs), so 8 calls in 256 (at 1 MiB,
/// about 13 ms of broadcasts at 2 ranks: a change of the machine's state, which took
/// seconds here, is still noticed within milliseconds).
pub(super) const PERIOD: u32 = 256;

/// Size classes: broadcasts of `2^k` to `2^(k+1) - 1` bytes share class `k`.
const CLASSES: usize = 64;

/// How a large broadcast goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Way {
    /// Chunks through the root's slot.
    Stream,
    /// Every reader copies from the root's buffer.
    Direct,
}

/// Samples of one way's time kept per size class.
pub(super) const KEPT: usize = 4;

/// The last [`KEPT`] times of one way, in nanoseconds.
#[derive(Clone, Copy, Default)]
struct Samples {
    last: [u64; KEPT],
    /// Samples recorded so far (saturating).
    count: u32,
}

impl Samples {
    fn record(&mut self, t: u64) {
        self.last[self.count as usize % KEPT] = t;
        self.count = self.count.saturating_add(1);
    }

    /// The best kept time (`u64::MAX` with none).
    fn best(&self) -> u64 {
        let kept = (self.count as usize).min(KEPT);
        self.last[..kept].iter().copied().min().unwrap_or(u64::MAX)
    }
}

#[derive(Clone, Copy, Default)]
struct Class {
    stream: Samples,
    direct: Samples,
    /// Calls picked so far (wrapping).
    calls: u32,
    /// The way of the current exploring burst.
    exploring: Option<Way>,
}

/// A publisher's measurements (per rank and kind of call; one per node view).
#[derive(Default)]
pub(super) struct Chooser {
    classes: RefCell<Vec<Class>>,
}

/// `ZR_NODE_WAY=stream` or `direct` forces a way, for measurements and for the tests
/// that run each way on purpose.
fn forced() -> Option<Way> {
    static CELL: std::sync::OnceLock<Option<Way>> = std::sync::OnceLock::new();
    *CELL.get_or_init(|| match std::env::var("ZR_NODE_WAY").as_deref() {
        Ok("stream") => Some(Way::Stream),
        Ok("direct") => Some(Way::Direct),
        _ => None,
    })
}

fn class(len: usize) -> usize {
    (usize::BITS - 1 - len.max(1).leading_zeros()) as usize
}

impl Chooser {
    /// The way to send a broadcast of `len` bytes now.
    pub(super) fn pick(&self, len: usize) -> Way {
        if let Some(w) = forced() {
            return w;
        }
        let mut cs = self.classes.borrow_mut();
        if cs.is_empty() {
            cs.resize(CLASSES, Class::default());
        }
        let c = &mut cs[class(len)];
        let k = c.calls;
        c.calls = c.calls.wrapping_add(1);
        if k < 2 * BURST {
            return if k < BURST { Way::Stream } else { Way::Direct };
        }
        let best = match c.stream.best() <= c.direct.best() {
            true => Way::Stream,
            false => Way::Direct,
        };
        match k % PERIOD {
            0 => {
                let other = match best {
                    Way::Stream => Way::Direct,
                    Way::Direct => Way::Stream,
                };
                *c.exploring.insert(other)
            }
            i if i < BURST => c.exploring.unwrap_or(best),
            _ => best,
        }
    }

    /// A broadcast of `len` bytes sent `way` took `took`.
    pub(super) fn record(&self, len: usize, way: Way, took: Duration) {
        let mut cs = self.classes.borrow_mut();
        if cs.is_empty() {
            cs.resize(CLASSES, Class::default());
        }
        let c = &mut cs[class(len)];
        let t = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        tracing::trace!(len, ?way, t, "choice");
        match way {
            Way::Stream => c.stream.record(t),
            Way::Direct => c.direct.record(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_both_then_takes_the_faster_and_still_explores() {
        let c = Chooser::default();
        let len = 1 << 20;
        let us = Duration::from_micros;
        // Warm-up: a burst each way; the first call of each is cold.
        for i in 0..BURST {
            assert_eq!(c.pick(len), Way::Stream);
            c.record(len, Way::Stream, us(if i == 0 { 300 } else { 240 }));
        }
        for i in 0..BURST {
            assert_eq!(c.pick(len), Way::Direct);
            c.record(len, Way::Direct, us(if i == 0 { 400 } else { 125 }));
        }
        // Direct is faster warm; exploring bursts of streams every PERIOD calls.
        let picks: Vec<Way> = (2 * BURST..2 * PERIOD)
            .map(|_| {
                let w = c.pick(len);
                c.record(len, w, us(if w == Way::Direct { 125 } else { 240 }));
                w
            })
            .collect();
        let streams = picks.iter().filter(|&&w| w == Way::Stream).count();
        assert_eq!(
            streams as u32, BURST,
            "one burst in {PERIOD} calls: {picks:?}"
        );
        // The state changes: streams get fast. The next burst finds it, cold first call
        // and all, and streams win.
        assert_eq!(
            c.pick(len),
            Way::Stream,
            "a burst starts every {PERIOD} calls"
        );
        c.record(len, Way::Stream, us(300));
        for _ in 1..BURST {
            assert_eq!(c.pick(len), Way::Stream, "the burst goes on");
            c.record(len, Way::Stream, us(70));
        }
        assert_eq!(c.pick(len), Way::Stream);
        // One slow stream (the rank was preempted) does not switch back.
        c.record(len, Way::Stream, us(900));
        assert_eq!(c.pick(len), Way::Stream);
        // Streams stay slow: once every kept sample is slower, direct wins again.
        for _ in 0..KEPT {
            c.record(len, Way::Stream, us(300));
        }
        assert_eq!(c.pick(len), Way::Direct);
        // Other sizes are measured apart.
        assert_eq!(c.pick(64 << 10), Way::Stream);
    }
}
