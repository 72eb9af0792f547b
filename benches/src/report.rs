//! One benchmark's results: a record per message size, printed as OSU-like columns, JSON
//! or CSV, and read back from JSON or CSV (the comparison and the tests read them).

use crate::summary::Summary;
use serde::{Deserialize, Serialize};

/// What one size of one benchmark measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The benchmark (`latency`, `bw`, `bcast`, ...).
    pub test: String,
    /// Which implementation ran it (a label: `zerorank` unless told otherwise).
    pub implementation: String,
    /// Ranks in the job.
    pub ranks: usize,
    /// Message size in bytes (per rank for allgather and alltoall, as in OSU).
    pub size: usize,
    /// Timed iterations (windows, for the bandwidth tests).
    pub iterations: u64,
    /// Bandwidth in MB/s (1e6 bytes) from the median window, for `bw` and `bibw`.
    pub mb_per_s: Option<f64>,
    /// Mean time, µs: one-way latency for `latency`, the time of the whole window for
    /// the bandwidth tests, and for collectives the mean over ranks of each rank's mean.
    pub mean_us: f64,
    /// Percentiles, µs. For collectives, the largest over ranks of each rank's percentile
    /// (the call as a whole is as slow as its slowest rank).
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Record {
    /// A record of `s`.
    pub fn new(test: &str, implementation: &str, ranks: usize, size: usize, s: &Summary) -> Record {
        Record {
            test: test.into(),
            implementation: implementation.into(),
            ranks,
            size,
            iterations: s.count,
            mb_per_s: None,
            mean_us: s.mean_us,
            p50_us: s.p50_us,
            p90_us: s.p90_us,
            p99_us: s.p99_us,
            p999_us: s.p999_us,
            max_us: s.max_us,
        }
    }
}

/// Is `test` a bandwidth test (its main column is MB/s)?
pub fn is_bandwidth(test: &str) -> bool {
    matches!(test, "bw" | "bibw" | "abcast-bw")
}

/// The OSU-like header of `test`'s table.
pub fn table_header(test: &str, implementation: &str, ranks: usize) -> String {
    let main = if is_bandwidth(test) {
        "Bandwidth(MB/s)"
    } else {
        "Avg Latency(us)"
    };
    format!(
        "# zr-bench {test} ({implementation}, {ranks} ranks)\n\
         # percentiles in us{}\n\
         # {:<10} {:>16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        if is_bandwidth(test) {
            ", per window"
        } else {
            ""
        },
        "Size",
        main,
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "iters"
    )
}

/// One row of the table.
pub fn table_row(r: &Record) -> String {
    let main = if is_bandwidth(&r.test) {
        r.mb_per_s.unwrap_or(0.0)
    } else {
        r.mean_us
    };
    format!(
        "  {:<10} {:>16.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>10}",
        r.size, main, r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us, r.iterations
    )
}

/// The records as a JSON array.
pub fn to_json(rs: &[Record]) -> String {
    serde_json::to_string_pretty(rs).expect("records serialise")
}

/// Records from a JSON array.
pub fn from_json(s: &str) -> Result<Vec<Record>, String> {
    serde_json::from_str(s).map_err(|e| format!("not zr-bench JSON: {e}"))
}

/// The records as CSV with a header line.
pub fn to_csv(rs: &[Record]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rs {
        w.serialize(r).expect("records serialise");
    }
    // With no records the header is still wanted.
    if rs.is_empty() {
        w.write_record(CSV_HEADER).expect("header");
    }
    String::from_utf8(w.into_inner().expect("flush")).expect("utf-8")
}

const CSV_HEADER: [&str; 12] = [
    "test",
    "implementation",
    "ranks",
    "size",
    "iterations",
    "mb_per_s",
    "mean_us",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "max_us",
];

/// Records from CSV with a header line.
pub fn from_csv(s: &str) -> Result<Vec<Record>, String> {
    let mut r = csv::Reader::from_reader(s.as_bytes());
    r.deserialize()
        .collect::<Result<Vec<Record>, _>>()
        .map_err(|e| format!("not zr-bench CSV: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        let s = Summary {
            count: 10,
            mean_us: 1.5,
            p50_us: 1.25,
            p90_us: 2.0,
            p99_us: 3.0,
            p999_us: 3.5,
            max_us: 4.0,
        };
        let mut bw = Record::new("bw", "zerorank", 2, 1 << 20, &s);
        bw.mb_per_s = Some(12345.5);
        vec![Record::new("latency", "zerorank", 2, 8, &s), bw]
    }

    #[test]
    fn json_and_csv_read_back_what_was_written() {
        let rs = sample();
        assert_eq!(from_json(&to_json(&rs)).unwrap(), rs);
        assert_eq!(from_csv(&to_csv(&rs)).unwrap(), rs);
        assert!(to_csv(&[]).starts_with("test,implementation,ranks,size"));
        assert!(from_json("[{").is_err());
        assert!(from_csv("a,b\n1,2\n").is_err());
    }

    #[test]
    fn table_rows_carry_the_main_column() {
        let rs = sample();
        assert!(table_header("bw", "zerorank", 2).contains("Bandwidth(MB/s)"));
        assert!(table_header("latency", "zerorank", 2).contains("Avg Latency(us)"));
        let line = table_row(&rs[1]);
        let row: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(row[0], "1048576");
        assert_eq!(row[1], "12345.50");
        let line = table_row(&rs[0]);
        let row: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((row[0], row[1], row[7]), ("8", "1.50", "10"));
    }
}
