//! Per-size statistics: the iteration times of one size in an hdrhistogram, summarised as
//! the percentiles the reports print.

use hdrhistogram::Histogram;

/// Iteration times (nanoseconds) of one size.
pub struct Times {
    h: Histogram<u64>,
}

impl Default for Times {
    fn default() -> Self {
        Times::new()
    }
}

impl Times {
    /// An empty record: 1 ns to 100 s, 3 significant digits.
    pub fn new() -> Times {
        Times {
            h: Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid bounds"),
        }
    }

    /// Add one time.
    pub fn record(&mut self, d: std::time::Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.h.saturating_record(ns);
    }

    /// Add one time given in nanoseconds (e.g. half a round trip).
    pub fn record_ns(&mut self, ns: u64) {
        self.h.saturating_record(ns.max(1));
    }

    /// Times recorded.
    pub fn len(&self) -> u64 {
        self.h.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.h.is_empty()
    }

    /// The summary (all zero when empty).
    pub fn summary(&self) -> Summary {
        let q = |p: f64| self.h.value_at_quantile(p) as f64 / 1e3;
        Summary {
            count: self.h.len(),
            mean_us: self.h.mean() / 1e3,
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: self.h.max() as f64 / 1e3,
        }
    }
}

/// Percentiles of one size's times, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Times recorded.
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Summary {
    /// The summary as numbers, for combining over ranks: [mean, p50, p90, p99, p99.9, max].
    pub fn to_array(&self) -> [f64; 6] {
        [
            self.mean_us,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p999_us,
            self.max_us,
        ]
    }

    /// The inverse of [`Summary::to_array`].
    pub fn from_array(count: u64, a: [f64; 6]) -> Summary {
        Summary {
            count,
            mean_us: a[0],
            p50_us: a[1],
            p90_us: a[2],
            p99_us: a[3],
            p999_us: a[4],
            max_us: a[5],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percentiles_of_known_times() {
        let mut t = Times::new();
        for us in 1..=1000u64 {
            t.record(Duration::from_micros(us));
        }
        let s = t.summary();
        assert_eq!(s.count, 1000);
        let close = |a: f64, b: f64| (a - b).abs() <= b * 0.002;
        assert!(close(s.p50_us, 500.0), "{s:?}");
        assert!(close(s.p90_us, 900.0), "{s:?}");
        assert!(close(s.p99_us, 990.0), "{s:?}");
        assert!(close(s.p999_us, 999.0), "{s:?}");
        assert!(close(s.max_us, 1000.0), "{s:?}");
        assert!(close(s.mean_us, 500.5), "{s:?}");
        assert_eq!(Summary::from_array(s.count, s.to_array()), s);
    }

    #[test]
    fn an_empty_record_is_zero() {
        let s = Times::new().summary();
        assert_eq!(s.count, 0);
        assert_eq!(s.max_us, 0.0);
    }
}
