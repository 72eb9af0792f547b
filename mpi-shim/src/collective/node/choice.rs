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
//! last reader's release, in a moving average per way. It tries each way twice, then
//! takes the way with the lower average, and every [`EXPLORE`]th call of a class the
//! other one, so that a change of state is noticed within a few calls. Only the root chooses: the readers follow what it
//! published (each publication says its kind), so the ranks never need to agree. The
//! choice changes timing only, never the bytes delivered.

use std::cell::RefCell;
use std::time::Duration;

/// One call in this many of a size class tries the way not currently preferred.
pub(super) const EXPLORE: u32 = 8;

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

/// Samples of each way a class takes before it starts preferring one.
const WARM_UP: u32 = 2;

#[derive(Clone, Copy, Default)]
struct Class {
    /// Moving averages of the call's time, in nanoseconds.
    stream: f64,
    direct: f64,
    /// Samples behind each average.
    streams: u32,
    directs: u32,
    calls: u32,
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
        c.calls = c.calls.wrapping_add(1);
        if c.streams.min(c.directs) < WARM_UP {
            return if c.streams <= c.directs {
                Way::Stream
            } else {
                Way::Direct
            };
        }
        let (best, other) = match c.stream <= c.direct {
            true => (Way::Stream, Way::Direct),
            false => (Way::Direct, Way::Stream),
        };
        if c.calls.is_multiple_of(EXPLORE) {
            other
        } else {
            best
        }
    }

    /// A broadcast of `len` bytes sent `way` took `took`.
    pub(super) fn record(&self, len: usize, way: Way, took: Duration) {
        let mut cs = self.classes.borrow_mut();
        if cs.is_empty() {
            cs.resize(CLASSES, Class::default());
        }
        let c = &mut cs[class(len)];
        let (avg, samples) = match way {
            Way::Stream => (&mut c.stream, &mut c.streams),
            Way::Direct => (&mut c.direct, &mut c.directs),
        };
        // Half weight to the newest sample: the way not preferred is measured only once in
        // `EXPLORE` calls, and must catch up with a change of state in a few samples.
        let t = took.as_nanos() as f64;
        *avg = if *samples == 0 {
            t
        } else {
            0.5 * *avg + 0.5 * t
        };
        *samples = samples.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_both_then_takes_the_faster_and_still_explores() {
        let c = Chooser::default();
        let len = 1 << 20;
        for _ in 0..WARM_UP {
            assert_eq!(c.pick(len), Way::Stream);
            c.record(len, Way::Stream, Duration::from_micros(240));
            assert_eq!(c.pick(len), Way::Direct);
            c.record(len, Way::Direct, Duration::from_micros(125));
        }
        let picks: Vec<Way> = (0..2 * EXPLORE).map(|_| c.pick(len)).collect();
        let streams = picks.iter().filter(|&&w| w == Way::Stream).count();
        assert_eq!(streams, 2, "one exploration per {EXPLORE} calls: {picks:?}");
        // The state changes: streams get fast; two explorations switch over.
        for _ in 0..2 {
            c.record(len, Way::Stream, Duration::from_micros(70));
        }
        assert_eq!(c.pick(len), Way::Stream);
        // Other sizes are measured apart.
        assert_eq!(c.pick(64 << 10), Way::Stream);
    }
}
