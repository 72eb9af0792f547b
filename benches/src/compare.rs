//! The side-by-side comparison's arithmetic and report: records of several rounds of
//! several implementations, reduced to a median per (benchmark, ranks, size,
//! implementation), ratios against the best peer, and the markdown report.

use crate::report::{is_bandwidth, Record};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The implementation the others are compared with.
pub const OURS: &str = "zerorank";

/// One benchmark at one rank count.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub test: String,
    pub ranks: usize,
}

/// The medians over rounds of one size of one implementation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Median latency (p50, µs) or, for bandwidth tests, median MB/s.
    pub value: f64,
    /// Median of the rounds' p99 (µs; per window for bandwidth tests).
    pub p99_us: f64,
    /// Rounds that measured it.
    pub rounds: usize,
}

/// Per series, per size, per implementation.
pub type Table = BTreeMap<Series, BTreeMap<usize, BTreeMap<String, Point>>>;

/// The median of `v` (the mean of the middle two for an even count); NaN when empty.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Reduce the records of every round to medians.
pub fn aggregate(records: &[Record]) -> Table {
    // (series, size, implementation) -> (the rounds' values, the rounds' p99s)
    type Rounds = (Vec<f64>, Vec<f64>);
    let mut raw: BTreeMap<(Series, usize, String), Rounds> = BTreeMap::new();
    for r in records {
        let key = (
            Series {
                test: r.test.clone(),
                ranks: r.ranks,
            },
            r.size,
            r.implementation.clone(),
        );
        let e = raw.entry(key).or_default();
        e.0.push(if is_bandwidth(&r.test) {
            r.mb_per_s.unwrap_or(0.0)
        } else {
            r.p50_us
        });
        e.1.push(r.p99_us);
    }
    let mut t = Table::new();
    for ((series, size, imp), (mut v, mut p99)) in raw {
        let rounds = v.len();
        let point = Point {
            value: median(&mut v),
            p99_us: median(&mut p99),
            rounds,
        };
        t.entry(series)
            .or_default()
            .entry(size)
            .or_default()
            .insert(imp, point);
    }
    t
}

/// Is `a` better than `b` for `test` (lower latency, higher bandwidth)?
fn better(test: &str, a: f64, b: f64) -> bool {
    if is_bandwidth(test) {
        a > b
    } else {
        a < b
    }
}

/// zerorank's value over the best peer's at one size, and that peer; `None` without
/// zerorank or without a peer. Below 1 is better for latency, above 1 for bandwidth.
pub fn ratio_to_best(test: &str, at: &BTreeMap<String, Point>) -> Option<(f64, String)> {
    let ours = at.get(OURS)?.value;
    let (peer, best) = at
        .iter()
        .filter(|(k, _)| k.as_str() != OURS)
        .map(|(k, p)| (k.clone(), p.value))
        .reduce(|a, b| if better(test, b.1, a.1) { b } else { a })?;
    (best > 0.0).then(|| (ours / best, peer))
}

/// zerorank's value over `peer`'s at one size.
pub fn ratio_to(at: &BTreeMap<String, Point>, peer: &str) -> Option<f64> {
    let (o, p) = (at.get(OURS)?.value, at.get(peer)?.value);
    (p > 0.0).then_some(o / p)
}

/// Is zerorank behind the best peer at this ratio?
pub fn behind(test: &str, ratio: f64) -> bool {
    if is_bandwidth(test) {
        ratio < 1.0
    } else {
        ratio > 1.0
    }
}

/// The project's targets at 2 ranks (issue 4), as (what, ratio to Open MPI, met?).
pub fn targets(t: &Table) -> Vec<(String, Option<f64>, bool)> {
    let at = |test: &str, size: usize| {
        t.get(&Series {
            test: test.into(),
            ranks: 2,
        })
        .and_then(|s| s.get(&size))
    };
    let mut v = Vec::new();
    let lat = at("latency", 8).and_then(|p| ratio_to(p, "openmpi"));
    v.push((
        "8 B latency <= 0.75x Open MPI".to_string(),
        lat,
        lat.is_some_and(|r| r <= 0.75),
    ));
    let bw = at("bw", 1 << 20).and_then(|p| ratio_to(p, "openmpi"));
    v.push((
        "1 MiB bandwidth >= 1.2x Open MPI".to_string(),
        bw,
        bw.is_some_and(|r| r >= 1.2),
    ));
    for test in ["bcast", "allreduce"] {
        let worst = t
            .get(&Series {
                test: test.into(),
                ranks: 2,
            })
            .map(|s| {
                s.values()
                    .filter_map(|p| ratio_to(p, "openmpi"))
                    .fold(f64::NAN, f64::max)
            })
            .filter(|r| !r.is_nan());
        v.push((
            format!("{test} <= Open MPI at every size (worst ratio)"),
            worst,
            worst.is_some_and(|r| r <= 1.0),
        ));
    }
    v
}

/// The headline for the terminal: the targets, met or not.
pub fn headline(t: &Table) -> String {
    let mut s = String::new();
    for (what, r, met) in targets(t) {
        let r = r.map_or("n/a".to_string(), |r| format!("{r:.2}x"));
        let _ = writeln!(
            s,
            "{:<48} {:>8}  {}",
            what,
            r,
            if met { "met" } else { "NOT met" }
        );
    }
    s
}

fn size_label(n: usize) -> String {
    crate::size::label(n)
}

/// What the report says about where it was made.
pub struct Context {
    /// Machine lines (CPU, cores, memory, kernel).
    pub machine: Vec<String>,
    /// Implementation -> version line.
    pub versions: Vec<(String, String)>,
    /// How it was run (rounds, sets), one line.
    pub method: String,
    /// The command that made the report.
    pub command: String,
    /// Plot file (relative to the report) per series.
    pub plots: BTreeMap<Series, String>,
}

/// The markdown report.
pub fn markdown(t: &Table, ctx: &Context) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# zerorank against Open MPI and MPICH\n");
    let _ = writeln!(
        s,
        "Generated by `{}`. Do not edit by hand: run it again.\n",
        ctx.command
    );
    let _ = writeln!(s, "## Machine\n");
    for m in &ctx.machine {
        let _ = writeln!(s, "- {m}");
    }
    let _ = writeln!(s, "\n## Versions\n");
    for (k, v) in &ctx.versions {
        let _ = writeln!(s, "- {k}: {v}");
    }
    let _ = writeln!(s, "\n## Method\n\n{}\n", ctx.method);
    let _ = writeln!(s, "## Targets (2 ranks, against Open MPI)\n");
    let _ = writeln!(s, "| target | ratio | met |\n|---|---|---|");
    for (what, r, met) in targets(t) {
        let r = r.map_or("n/a".to_string(), |r| format!("{r:.2}"));
        let _ = writeln!(
            s,
            "| {what} | {r} | {} |",
            if met { "yes" } else { "**no**" }
        );
    }
    let mut behind_rows = Vec::new();
    for (series, sizes) in t {
        let bw = is_bandwidth(&series.test);
        let impls: Vec<String> = {
            let mut v: Vec<String> = sizes
                .values()
                .flat_map(|m| m.keys().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            // zerorank first.
            v.sort_by_key(|k| (k != OURS, k.clone()));
            v
        };
        let _ = writeln!(s, "\n## {} at {} ranks\n", series.test, series.ranks);
        if let Some(p) = ctx.plots.get(series) {
            let _ = writeln!(s, "![{} at {} ranks]({p})\n", series.test, series.ranks);
        }
        let unit = if bw {
            "MB/s (median window; p99 of the window time in µs)"
        } else {
            "µs, p50 (p99)"
        };
        let _ = writeln!(
            s,
            "{unit}; ratio: zerorank / best peer ({}).\n",
            if bw {
                "above 1: zerorank is faster"
            } else {
                "below 1: zerorank is faster"
            }
        );
        let _ = write!(s, "| size |");
        for i in &impls {
            let _ = write!(s, " {i} |");
        }
        let _ = writeln!(s, " ratio |");
        let _ = writeln!(s, "|---|{}---|", "---|".repeat(impls.len()));
        for (&size, at) in sizes {
            let _ = write!(s, "| {} |", size_label(size));
            for i in &impls {
                match at.get(i) {
                    Some(p) if bw => {
                        let _ = write!(s, " {:.0} ({:.1}) |", p.value, p.p99_us);
                    }
                    Some(p) => {
                        let _ = write!(s, " {:.2} ({:.2}) |", p.value, p.p99_us);
                    }
                    None => {
                        let _ = write!(s, " - |");
                    }
                }
            }
            match ratio_to_best(&series.test, at) {
                Some((r, peer)) => {
                    let mark = if behind(&series.test, r) {
                        behind_rows.push(format!(
                            "{} at {} ranks, {}: {r:.2}x {peer}",
                            series.test,
                            series.ranks,
                            size_label(size)
                        ));
                        "**"
                    } else {
                        ""
                    };
                    let _ = writeln!(s, " {mark}{r:.2}{mark} |");
                }
                None => {
                    let _ = writeln!(s, " - |");
                }
            }
        }
    }
    let _ = writeln!(s, "\n## Where zerorank is behind the best peer\n");
    if behind_rows.is_empty() {
        let _ = writeln!(s, "Nowhere in this run.");
    } else {
        for b in behind_rows {
            let _ = writeln!(s, "- {b}");
        }
    }
    s
}

/// Records from an implementation's run output: the CSV lines of `osu_bench`, ignoring
/// whatever else its launcher printed on stdout.
pub fn parse_run(stdout: &str) -> Result<Vec<Record>, String> {
    let mut keep = String::new();
    let mut header = false;
    for line in stdout.lines() {
        if line.starts_with("test,implementation,") {
            if !header {
                keep.push_str(line);
                keep.push('\n');
            }
            header = true;
        } else if header && line.split(',').count() == 12 {
            keep.push_str(line);
            keep.push('\n');
        }
    }
    if !header {
        return Err("no osu_bench CSV header in the output".into());
    }
    crate::report::from_csv(&keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Summary;

    fn rec(test: &str, imp: &str, size: usize, p50: f64, bw: Option<f64>) -> Record {
        let s = Summary {
            count: 10,
            mean_us: p50,
            p50_us: p50,
            p90_us: p50,
            p99_us: p50 * 2.0,
            p999_us: p50 * 2.0,
            max_us: p50 * 3.0,
        };
        let mut r = Record::new(test, imp, 2, size, &s);
        r.mb_per_s = bw;
        r
    }

    fn sample() -> Vec<Record> {
        let mut v = Vec::new();
        for (k, f) in [1.0, 3.0, 2.0].into_iter().enumerate() {
            v.push(rec("latency", "zerorank", 8, 0.2 * f, None));
            v.push(rec("latency", "openmpi", 8, 0.4 * f, None));
            v.push(rec("latency", "mpich", 8, 0.5 * f, None));
            v.push(rec("bw", "zerorank", 1 << 20, 1.0, Some(9000.0 + k as f64)));
            v.push(rec("bw", "openmpi", 1 << 20, 1.0, Some(6000.0)));
            v.push(rec("bcast", "zerorank", 4, 0.3, None));
            v.push(rec("bcast", "openmpi", 4, 0.33, None));
            v.push(rec("bcast", "zerorank", 1 << 20, 90.0, None));
            v.push(rec("bcast", "openmpi", 1 << 20, 80.0, None));
        }
        v
    }

    #[test]
    fn medians_over_rounds_and_ratios_to_the_best_peer() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
        let t = aggregate(&sample());
        let lat = &t[&Series {
            test: "latency".into(),
            ranks: 2,
        }][&8];
        assert_eq!(lat["zerorank"].rounds, 3);
        assert!((lat["zerorank"].value - 0.4).abs() < 1e-9);
        assert!((lat["zerorank"].p99_us - 0.8).abs() < 1e-9);
        let (r, peer) = ratio_to_best("latency", lat).unwrap();
        assert_eq!(peer, "openmpi");
        assert!((r - 0.5).abs() < 1e-9);
        let bw = &t[&Series {
            test: "bw".into(),
            ranks: 2,
        }][&(1 << 20)];
        assert!((ratio_to_best("bw", bw).unwrap().0 - 9001.0 / 6000.0).abs() < 1e-9);
        assert!(!behind("bw", 1.5) && behind("bw", 0.9));
        assert!(behind("latency", 1.1) && !behind("latency", 0.9));
    }

    #[test]
    fn the_report_shows_every_series_the_targets_and_where_we_are_behind() {
        let t = aggregate(&sample());
        let ctx = Context {
            machine: vec!["cpu: test".into()],
            versions: vec![("openmpi".into(), "4.1".into())],
            method: "3 rounds".into(),
            command: "benches/compare".into(),
            plots: BTreeMap::from([(
                Series {
                    test: "latency".into(),
                    ranks: 2,
                },
                "latency-np2.svg".to_string(),
            )]),
        };
        let md = markdown(&t, &ctx);
        for want in [
            "## latency at 2 ranks",
            "## bw at 2 ranks",
            "## bcast at 2 ranks",
            "![latency at 2 ranks](latency-np2.svg)",
            "| 8 | 0.40 (0.80) | 1.00 (2.00) | 0.80 (1.60) | 0.50 |",
            "| 8 B latency <= 0.75x Open MPI | 0.50 | yes |",
            "| 1 MiB bandwidth >= 1.2x Open MPI | 1.50 | yes |",
            "| bcast <= Open MPI at every size (worst ratio) | 1.12 | **no** |",
            "- bcast at 2 ranks, 1M: 1.12x openmpi",
            "cpu: test",
        ] {
            assert!(md.contains(want), "report lacks {want:?}:\n{md}");
        }
        let h = headline(&t);
        assert!(h.contains("NOT met") && h.contains("0.50x"), "{h}");
    }

    #[test]
    fn run_output_is_read_past_launcher_noise() {
        let out = "Warning: something from the launcher\n\
                   test,implementation,ranks,size,iterations,mb_per_s,mean_us,p50_us,p90_us,p99_us,p999_us,max_us\n\
                   latency,openmpi,2,0,100,,0.5,0.4,0.6,0.7,0.8,0.9\n\
                   a line, of noise\n\
                   bw,openmpi,2,1024,10,900.5,1.0,1.0,1.0,1.0,1.0,1.0\n";
        let rs = parse_run(out).unwrap();
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].implementation, "openmpi");
        assert_eq!(rs[0].mb_per_s, None);
        assert_eq!(rs[1].mb_per_s, Some(900.5));
        assert!(parse_run("nothing here\n").is_err());
    }
}
