//! `zr-bench`: OSU-style benchmarks over zerorank's Rust API, run under `zrun`.
//!
//! ```text
//! ./target/release/zrun -n 2 ./target/release/zr-bench latency
//! ./target/release/zrun -n 4 ./target/release/zr-bench allreduce -M 64K --json
//! ```
//!
//! Each size is run `warmup + iterations` times and every timed iteration goes into an
//! hdrhistogram. Point-to-point tests (`latency`, `bw`, `bibw`) run between ranks 0 and 1
//! and need exactly 2 ranks. Collectives time each call on every rank after an untimed
//! barrier (so the iterations do not pipeline into each other) and report the mean over
//! ranks of each rank's mean and, per percentile, the largest over ranks (the call is as
//! slow as its slowest rank). See `zr-bench --help` for the options.

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;
use zerorank::operation::SystemOperation;
use zerorank::traits::*;
use zerorank::Communicator;
use zerorank_benches::pattern;
use zerorank_benches::report::{self, Record};
use zerorank_benches::size;
use zerorank_benches::summary::{Summary, Times};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Test {
    /// Ping-pong between ranks 0 and 1: one-way latency (half the round trip).
    Latency,
    /// Rank 0 streams windows of non-blocking sends to rank 1, which acknowledges each.
    Bw,
    /// Both ranks stream windows to each other at once.
    Bibw,
    /// MPI_Bcast from rank 0.
    Bcast,
    /// MPI_Allreduce, sum of f32.
    Allreduce,
    /// MPI_Reduce to rank 0, sum of f32.
    Reduce,
    /// MPI_Allgather; the size is per rank.
    Allgather,
    /// MPI_Alltoall; the size is per pair of ranks.
    Alltoall,
    /// MPI_Barrier (no size).
    Barrier,
    /// Ring atomic broadcast (`Communicator::ring_group`): rank 0 broadcasts one message
    /// at a time; its send-to-delivery latency.
    Abcast,
    /// Ring atomic broadcast, every rank streaming: each window, every rank broadcasts
    /// `--window` messages and waits until it delivered everyone's; MB/s delivered per
    /// rank, window times as percentiles.
    AbcastBw,
}

impl Test {
    fn name(self) -> &'static str {
        match self {
            Test::Latency => "latency",
            Test::Bw => "bw",
            Test::Bibw => "bibw",
            Test::Bcast => "bcast",
            Test::Allreduce => "allreduce",
            Test::Reduce => "reduce",
            Test::Allgather => "allgather",
            Test::Alltoall => "alltoall",
            Test::Barrier => "barrier",
            Test::Abcast => "abcast",
            Test::AbcastBw => "abcast-bw",
        }
    }

    fn point_to_point(self) -> bool {
        matches!(self, Test::Latency | Test::Bw | Test::Bibw)
    }

    fn ring(self) -> bool {
        matches!(self, Test::Abcast | Test::AbcastBw)
    }

    /// Reductions run on f32 elements: sizes are whole elements.
    fn reduction(self) -> bool {
        matches!(self, Test::Allreduce | Test::Reduce)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// OSU-like columns, a row per size as it completes.
    Table,
    /// A JSON array of records at the end.
    Json,
    /// CSV with a header line at the end.
    Csv,
}

/// OSU-style latency, bandwidth and collective benchmarks over zerorank. Run it under
/// zrun (e.g. `zrun -n 2 zr-bench latency`). Results go to stdout (rank 0), a progress
/// bar to stderr when it is a terminal.
#[derive(Parser, Debug)]
#[command(name = "zr-bench", version)]
struct Cli {
    /// The benchmark.
    #[arg(value_enum)]
    test: Test,
    /// Smallest message size (bytes; K, M suffixes).
    #[arg(short = 'm', long, default_value = "0", value_parser = size::parse)]
    min_size: usize,
    /// Largest message size [default: 4M for latency, bw and bibw; 1M for collectives].
    #[arg(short = 'M', long, value_parser = size::parse)]
    max_size: Option<usize>,
    /// Timed iterations per size [default: 10000 up to 8 KiB for latency, 1000 for
    /// collectives, 100 above 8 KiB; windows for bw/bibw: 100, 20 above 64 KiB].
    #[arg(short = 'i', long, value_parser = clap::value_parser!(u64).range(1..))]
    iterations: Option<u64>,
    /// Untimed iterations before the timed ones [default: a tenth of the iterations, at
    /// least 2].
    #[arg(short = 'x', long)]
    warmup: Option<u64>,
    /// Messages in flight per window (bw, bibw); messages each rank broadcasts per window
    /// (abcast-bw: at most 256 MiB of them, fewer above 4 MiB, as every rank holds
    /// everyone's window of deliveries at once).
    #[arg(short = 'W', long, default_value_t = 64)]
    window: usize,
    /// Check the data every iteration received (outside the timed part where it can be;
    /// for latency the echoing rank's check is inside rank 0's round trip).
    #[arg(short = 'c', long)]
    validate: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Same as --format json.
    #[arg(long, conflicts_with_all = ["format", "csv"])]
    json: bool,
    /// Same as --format csv.
    #[arg(long, conflicts_with_all = ["format", "json"])]
    csv: bool,
    /// The implementation's name in the output.
    #[arg(long, default_value = "zerorank")]
    impl_name: String,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

impl Cli {
    fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else if self.csv {
            Format::Csv
        } else {
            self.format
        }
    }

    fn sizes(&self) -> Vec<usize> {
        if self.test == Test::Barrier {
            return vec![0];
        }
        let max = self.max_size.unwrap_or(if self.test.point_to_point() {
            4 << 20
        } else if self.test.ring() {
            64 << 10
        } else {
            1 << 20
        });
        let all = size::list(self.min_size, max);
        if self.test.reduction() {
            // Whole f32 elements; OSU starts reductions at 4 bytes.
            all.into_iter().filter(|&n| n >= 4 && n % 4 == 0).collect()
        } else {
            all
        }
    }

    fn iterations(&self, n: usize) -> u64 {
        self.iterations.unwrap_or(match self.test {
            Test::AbcastBw => 20,
            Test::Bw | Test::Bibw if n > 64 << 10 => 20,
            Test::Bw | Test::Bibw => 100,
            _ if n > 8 << 10 => 100,
            Test::Latency => 10_000,
            _ => 1000,
        })
    }

    fn warmup(&self, n: usize) -> u64 {
        self.warmup.unwrap_or((self.iterations(n) / 10).max(2))
    }
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("{0}")]
    Mpi(#[from] zerorank::Error),
    #[error("{0}")]
    Usage(String),
    #[error("validation failed: {0}")]
    Invalid(String),
}

type Res<T> = Result<T, BenchError>;

fn main() {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => {}
        Err(BenchError::Usage(m)) => {
            eprintln!("zr-bench: {m}");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("zr-bench {}: {e}", cli.test.name());
            std::process::exit(1);
        }
    }
}

fn fill(buf: &mut [u8], rank: usize, it: u64) {
    pattern::fill(buf, rank, it)
}

fn check(buf: &[u8], rank: usize, it: u64, what: &str) -> Res<()> {
    pattern::check(buf, rank, it, what).map_err(BenchError::Invalid)
}

fn run(cli: &Cli) -> Res<()> {
    let universe = zerorank::initialize()?;
    let world = universe.world();
    let (rank, n) = (world.rank() as usize, world.size() as usize);
    if cli.test.point_to_point() && n != 2 {
        return Err(BenchError::Usage(format!(
            "{} runs between two ranks: start it with `zrun -n 2` (this job has {n})",
            cli.test.name()
        )));
    }
    if cli.window == 0 {
        return Err(BenchError::Usage("--window must be at least 1".into()));
    }
    let sizes = cli.sizes();
    if sizes.is_empty() {
        return Err(BenchError::Usage(format!(
            "no sizes between --min-size {} and --max-size {}{}",
            cli.min_size,
            cli.max_size
                .map_or("(default)".to_string(), |m| m.to_string()),
            if cli.test.reduction() {
                " (reductions need whole 4-byte elements)"
            } else {
                ""
            }
        )));
    }
    let format = cli.format();
    let bar = (rank == 0).then(|| progress(cli, sizes.len() as u64));
    if rank == 0 && format == Format::Table {
        println!(
            "{}",
            report::table_header(cli.test.name(), &cli.impl_name, n)
        );
    }
    let group = if cli.test.ring() {
        Some(world.ring_group()?)
    } else {
        None
    };
    let mut records = Vec::new();
    for &sz in &sizes {
        if let Some(b) = &bar {
            b.set_message(format!("{} {}", cli.test.name(), size::label(sz)));
        }
        let rec = match cli.test {
            Test::Latency => latency(cli, &world, sz)?,
            Test::Bw | Test::Bibw => bandwidth(cli, &world, sz)?,
            Test::Abcast | Test::AbcastBw => {
                ring(cli, &world, group.as_ref().expect("made above"), sz)?
            }
            _ => collective(cli, &world, sz)?,
        };
        if let Some(b) = &bar {
            b.inc(1);
        }
        if let Some(r) = rec {
            if format == Format::Table {
                if let Some(b) = &bar {
                    b.suspend(|| println!("{}", report::table_row(&r)));
                } else {
                    println!("{}", report::table_row(&r));
                }
            }
            records.push(r);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if rank == 0 {
        match format {
            Format::Table => {}
            Format::Json => println!("{}", report::to_json(&records)),
            Format::Csv => print!("{}", report::to_csv(&records)),
        }
    }
    universe.finalize()?;
    Ok(())
}

fn progress(cli: &Cli, len: u64) -> ProgressBar {
    let target = if cli.no_progress || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} sizes  {msg}  {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Ping-pong between ranks 0 and 1; rank 0 records half of each round trip.
fn latency(cli: &Cli, c: &Communicator, sz: usize) -> Res<Option<Record>> {
    let rank = c.rank() as usize;
    let peer = c.process_at_rank(1 - rank as i32);
    let mut sbuf = vec![0u8; sz];
    let mut rbuf = vec![0u8; sz];
    let mut times = Times::new();
    let (warm, iters) = (cli.warmup(sz), cli.iterations(sz));
    c.barrier()?;
    for it in 0..warm + iters {
        if cli.validate {
            fill(&mut sbuf, rank, it);
        }
        if rank == 0 {
            let t0 = Instant::now();
            peer.send(&sbuf[..])?;
            peer.receive_into(&mut rbuf[..])?;
            let dt = t0.elapsed();
            if it >= warm {
                times.record_ns(u64::try_from(dt.as_nanos() / 2).unwrap_or(u64::MAX));
            }
            if cli.validate {
                check(&rbuf, 1, it, "latency echo")?;
            }
        } else {
            peer.receive_into(&mut rbuf[..])?;
            if cli.validate {
                check(&rbuf, 0, it, "latency")?;
            }
            peer.send(&sbuf[..])?;
        }
    }
    Ok((rank == 0).then(|| Record::new("latency", &cli.impl_name, 2, sz, &times.summary())))
}

/// Windows of non-blocking sends (bw: rank 0 to 1; bibw: both ways at once), each ended
/// by a 4-byte acknowledgement; rank 0 records each window's time.
fn bandwidth(cli: &Cli, c: &Communicator, sz: usize) -> Res<Option<Record>> {
    let rank = c.rank() as usize;
    let peer = c.process_at_rank(1 - rank as i32);
    let both = cli.test == Test::Bibw;
    let w = cli.window;
    let mut sbuf = vec![0u8; sz];
    // (At least a byte per message, so that zero-byte windows still have w parts.)
    let mut rbuf = vec![0u8; sz.max(1) * w];
    let mut times = Times::new();
    let (warm, iters) = (cli.warmup(sz), cli.iterations(sz));
    let (data_tag, ack_tag) = (100, 101);
    let mut ack = [0u8; 4];
    c.barrier()?;
    for it in 0..warm + iters {
        if cli.validate {
            fill(&mut sbuf, rank, it);
        }
        let sends = rank == 0 || both;
        let receives = rank == 1 || both;
        let t0 = Instant::now();
        zerorank::request::scope(|sc| -> zerorank::Result<()> {
            let mut reqs = Vec::with_capacity(2 * w);
            if receives {
                for part in rbuf.chunks_mut(sz.max(1)).take(w) {
                    let part = if sz == 0 { &mut part[..0] } else { part };
                    reqs.push(peer.immediate_receive_into_with_tag(sc, part, data_tag)?);
                }
            }
            if sends {
                for _ in 0..w {
                    reqs.push(peer.immediate_send_with_tag(sc, &sbuf[..], data_tag)?);
                }
            }
            for r in zerorank::request::wait_all(reqs) {
                r?;
            }
            Ok(())
        })?;
        if rank == 0 {
            peer.receive_into_with_tag(&mut ack[..], ack_tag)?;
        } else {
            peer.send_with_tag(&ack[..], ack_tag)?;
        }
        let dt = t0.elapsed();
        if it >= warm {
            times.record(dt);
        }
        if cli.validate && receives && sz > 0 {
            for (k, part) in rbuf.chunks(sz).take(w).enumerate() {
                check(
                    part,
                    1 - rank,
                    it,
                    &format!("{} message {k}", cli.test.name()),
                )?;
            }
        }
    }
    if rank != 0 {
        return Ok(None);
    }
    let s = times.summary();
    let mut r = Record::new(cli.test.name(), &cli.impl_name, 2, sz, &s);
    let bytes = (sz * w) as f64 * if both { 2.0 } else { 1.0 };
    r.mb_per_s = Some(if s.p50_us > 0.0 {
        bytes / s.p50_us
    } else {
        0.0
    });
    Ok(Some(r))
}

/// One collective per timed iteration, after an untimed barrier.
fn collective(cli: &Cli, c: &Communicator, sz: usize) -> Res<Option<Record>> {
    let (rank, n) = (c.rank() as usize, c.size() as usize);
    let root = c.process_at_rank(0);
    let elems = sz / 4;
    let mut times = Times::new();
    let (warm, iters) = (cli.warmup(sz), cli.iterations(sz));
    let mut sbuf = vec![0u8; sz];
    let mut rbuf = vec![0u8; sz * n];
    let mut fsend = vec![0f32; elems];
    let mut frecv = vec![0f32; elems];
    for it in 0..warm + iters {
        if cli.validate {
            fill(&mut sbuf, rank, it);
            for (i, x) in fsend.iter_mut().enumerate() {
                *x = ((i + rank + it as usize) % 1000) as f32;
            }
        }
        c.barrier()?;
        let t0 = Instant::now();
        match cli.test {
            Test::Bcast => root.broadcast_into(&mut sbuf[..])?,
            Test::Allreduce => {
                c.all_reduce_into(&fsend[..], &mut frecv[..], SystemOperation::sum())?
            }
            Test::Reduce => {
                if rank == 0 {
                    root.reduce_into_root(&fsend[..], &mut frecv[..], SystemOperation::sum())?
                } else {
                    root.reduce_into(&fsend[..], SystemOperation::sum())?
                }
            }
            Test::Allgather => c.all_gather_into(&sbuf[..], &mut rbuf[..])?,
            Test::Alltoall => {
                let mut send = vec![0u8; sz * n];
                if cli.validate {
                    fill(&mut send, rank, it);
                }
                let t = Instant::now();
                c.all_to_all_into(&send[..], &mut rbuf[..])?;
                // Only the exchange is timed, not building its send buffer.
                if it >= warm {
                    times.record(t.elapsed());
                }
                if cli.validate {
                    for j in 0..n {
                        let want: Vec<u8> = (0..sz)
                            .map(|i| pattern::byte(j, it, rank * sz + i))
                            .collect();
                        if rbuf[j * sz..(j + 1) * sz] != want[..] {
                            return Err(BenchError::Invalid(format!(
                                "alltoall: block from rank {j} differs at iteration {it}"
                            )));
                        }
                    }
                }
                continue;
            }
            Test::Barrier => c.barrier()?,
            Test::Latency | Test::Bw | Test::Bibw | Test::Abcast | Test::AbcastBw => {
                unreachable!("not a collective")
            }
        }
        let dt = t0.elapsed();
        if it >= warm {
            times.record(dt);
        }
        if cli.validate {
            validate_collective(cli.test, rank, n, it, &sbuf, &rbuf, &frecv, sz)?;
        }
    }
    // Combine over ranks: the mean of the means, the largest of each percentile.
    let s = times.summary();
    let mut worst = [0f64; 6];
    c.all_reduce_into(&s.to_array()[..], &mut worst[..], SystemOperation::max())?;
    let mut mean = 0f64;
    c.all_reduce_into(&s.mean_us, &mut mean, SystemOperation::sum())?;
    worst[0] = mean / n as f64;
    let combined = Summary::from_array(s.count, worst);
    Ok((rank == 0).then(|| Record::new(cli.test.name(), &cli.impl_name, n, sz, &combined)))
}

#[allow(clippy::too_many_arguments)]
fn validate_collective(
    test: Test,
    rank: usize,
    n: usize,
    it: u64,
    sbuf: &[u8],
    rbuf: &[u8],
    frecv: &[f32],
    sz: usize,
) -> Res<()> {
    match test {
        Test::Bcast => check(sbuf, 0, it, "bcast"),
        Test::Allgather => {
            for j in 0..n {
                check(
                    &rbuf[j * sz..(j + 1) * sz],
                    j,
                    it,
                    &format!("allgather block {j}"),
                )?;
            }
            Ok(())
        }
        Test::Allreduce | Test::Reduce if test == Test::Allreduce || rank == 0 => {
            for (i, &x) in frecv.iter().enumerate() {
                let want: f32 = (0..n).map(|r| ((i + r + it as usize) % 1000) as f32).sum();
                if x != want {
                    return Err(BenchError::Invalid(format!(
                        "{}: element {i} is {x}, expected {want} (iteration {it})",
                        test.name()
                    )));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The next delivery, within 30 s (a ring that stalls fails the run instead of hanging).
fn next_delivery(g: &zerorank::RingGroup) -> Res<zerorank::Delivery> {
    g.next_delivery(std::time::Duration::from_secs(30))?
        .ok_or_else(|| BenchError::Invalid("no ring delivery within 30 s".into()))
}

/// Most bytes a rank broadcasts in one `abcast-bw` window.
const ABCAST_WINDOW_BYTES: usize = 256 << 20;

/// `abcast`: rank 0 broadcasts one message at a time and times it to its own delivery;
/// every rank delivers each. `abcast-bw`: windows in which every rank broadcasts
/// `--window` messages and delivers everyone's.
fn ring(cli: &Cli, c: &Communicator, g: &zerorank::RingGroup, sz: usize) -> Res<Option<Record>> {
    let (rank, n) = (c.rank() as usize, c.size() as usize);
    let (warm, iters) = (cli.warmup(sz), cli.iterations(sz));
    let mut times = Times::new();
    let mut payload = vec![0u8; sz];
    let mut delivered_bytes = 0u64;
    let mut total = std::time::Duration::ZERO;
    // (At 16 MiB a window of 64 from each of 4 ranks held 14 GB.)
    let window = cli.window.min((ABCAST_WINDOW_BYTES / sz.max(1)).max(1));
    if cli.test == Test::AbcastBw && window < cli.window && rank == 0 {
        eprintln!(
            "zr-bench abcast-bw: {sz} B: windows of {window} broadcasts a rank, not {} (at most {} MiB a window)",
            cli.window,
            ABCAST_WINDOW_BYTES >> 20
        );
    }
    // A rank's k-th broadcast of the run (from 0, over every size) carries pattern k,
    // checked by its sequence number.
    thread_local! {
        static SENT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    let send = |g: &zerorank::RingGroup, payload: &mut Vec<u8>| -> Res<()> {
        let k = SENT.with(|s| s.get());
        if cli.validate {
            fill(payload, rank, k);
        }
        let seq = g.broadcast(payload)?;
        debug_assert_eq!(seq, k + 1, "this rank's only broadcasts");
        SENT.with(|s| s.set(k + 1));
        Ok(())
    };
    c.barrier()?;
    for it in 0..warm + iters {
        let t0 = Instant::now();
        let expected = if cli.test == Test::Abcast {
            if rank == 0 {
                send(g, &mut payload)?;
            }
            1
        } else {
            for _ in 0..window {
                send(g, &mut payload)?;
            }
            window * n
        };
        for _ in 0..expected {
            let d = next_delivery(g)?;
            if d.payload.len() != sz {
                return Err(BenchError::Invalid(format!(
                    "a delivery of {} bytes from rank {}, expected {sz}",
                    d.payload.len(),
                    d.origin
                )));
            }
            if cli.validate {
                check(&d.payload, d.origin as usize, d.seq - 1, "abcast")?;
            }
            if it >= warm {
                delivered_bytes += sz as u64;
            }
        }
        let dt = t0.elapsed();
        if it >= warm {
            times.record(dt);
            total += dt;
        }
    }
    let s = times.summary();
    let mut r = Record::new(cli.test.name(), &cli.impl_name, n, sz, &s);
    if cli.test == Test::AbcastBw && !total.is_zero() {
        r.mb_per_s = Some(delivered_bytes as f64 / total.as_secs_f64() / 1e6);
    }
    Ok((rank == 0).then_some(r))
}
