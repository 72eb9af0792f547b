//! `zr-compare` (run it as `benches/compare`): zerorank, Open MPI and MPICH side by side
//! on this machine, in one run.
//!
//! It compiles one C source, `benches/c/osu_bench.c`, with `zrcc`, `mpicc.openmpi` and
//! `mpicc.mpich` (installing Open MPI and MPICH from Debian when run as root and they are
//! missing), runs each benchmark under each implementation's launcher in alternation
//! (A B C A B C ...) for several rounds, takes the median over rounds per size, computes
//! zerorank's ratio to the best peer, writes a markdown report with SVG plots, and prints
//! the headline (the project's targets) on the terminal.

use clap::Parser;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zerorank_benches::compare::{self, Context, Series};
use zerorank_benches::{plot, report, size};

/// Compare zerorank with Open MPI and MPICH on this machine (one C benchmark source, each
/// implementation's compiler and launcher, alternating rounds, medians, ratios, a
/// markdown report with plots). Run from the repository, after `cargo build --release`
/// (the `benches/compare` script does both).
#[derive(Parser, Debug)]
#[command(name = "zr-compare", version)]
struct Cli {
    /// A short run: one round, sizes up to 64 KiB (1 MiB for bw), fewer iterations.
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Everything: bibw, reduce, allgather, alltoall and barrier too, and the
    /// collectives at 4 ranks as well as 2.
    #[arg(long)]
    full: bool,
    /// Rounds [default: 5; 1 with --quick].
    #[arg(long)]
    rounds: Option<usize>,
    /// Implementations, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "zerorank,openmpi,mpich")]
    impls: Vec<String>,
    /// Benchmarks, comma-separated [default: latency,bw,bcast,allreduce; more with --full].
    #[arg(long, value_delimiter = ',')]
    tests: Option<Vec<String>>,
    /// Largest message size of every benchmark (K, M suffixes) [default: each one's own].
    #[arg(long, value_parser = size::parse)]
    max_size: Option<usize>,
    /// Where binaries, raw outputs and records go.
    #[arg(long, default_value = "target/compare")]
    out: PathBuf,
    /// The report; its plots go to `results/` beside it.
    #[arg(long, default_value = "target/compare/RESULTS.md")]
    report: PathBuf,
    /// Seconds allowed per benchmark run.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Do not install missing MPI implementations (as root it would, with apt-get).
    #[arg(long)]
    no_install: bool,
    /// Where zerorank's `zrcc` and `zrun` are [default: target/release].
    #[arg(long)]
    zerorank_dir: Option<PathBuf>,
}

/// One implementation: how to build and how to launch.
struct Impl {
    name: String,
    cc: PathBuf,
    launcher: Vec<String>,
    apt: &'static [&'static str],
    exe: PathBuf,
}

fn main() {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("zr-compare: {e}");
            std::process::exit(2);
        }
    }
}

fn have(cmd: &Path) -> bool {
    if cmd.is_absolute() {
        return cmd.exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).exists()))
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// The first line of `cmd args` that contains `want` (or the first line), trimmed.
fn version_of(cmd: &str, args: &[&str], want: &str) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|l| l.contains(want))
        .or_else(|| text.lines().next())
        .map(|l| l.trim().to_string())
}

fn implementations(cli: &Cli, root: &Path) -> Result<Vec<Impl>, String> {
    let release = cli
        .zerorank_dir
        .clone()
        .unwrap_or_else(|| root.join("target/release"));
    let mut v = Vec::new();
    for name in &cli.impls {
        let (cc, launcher, apt): (PathBuf, Vec<String>, &'static [&'static str]) =
            match name.as_str() {
                "zerorank" => (
                    release.join("zrcc"),
                    vec![release.join("zrun").display().to_string(), "-n".into()],
                    &[],
                ),
                "openmpi" => (
                    "mpicc.openmpi".into(),
                    vec![
                        "mpirun.openmpi".into(),
                        "--oversubscribe".into(),
                        "-np".into(),
                    ],
                    &["openmpi-bin", "libopenmpi-dev"],
                ),
                "mpich" => (
                    "mpicc.mpich".into(),
                    vec!["mpiexec.mpich".into(), "-n".into()],
                    &["mpich", "libmpich-dev"],
                ),
                other => {
                    return Err(format!(
                        "unknown implementation `{other}` (zerorank, openmpi, mpich)"
                    ))
                }
            };
        let exe = cli.out.join(format!("osu_bench-{name}"));
        v.push(Impl {
            name: name.clone(),
            cc,
            launcher,
            apt,
            exe,
        });
    }
    Ok(v)
}

/// Install what is missing (as root, with apt-get), then build osu_bench with each; the
/// implementations that could not be built are dropped with a warning.
fn prepare(cli: &Cli, root: &Path, impls: Vec<Impl>) -> Result<Vec<Impl>, String> {
    std::fs::create_dir_all(&cli.out).map_err(|e| format!("{}: {e}", cli.out.display()))?;
    let missing: Vec<&str> = impls
        .iter()
        .filter(|i| !have(&i.cc) || !have(Path::new(&i.launcher[0])))
        .flat_map(|i| i.apt.iter().copied())
        .collect();
    if !missing.is_empty() && is_root() && !cli.no_install {
        eprintln!("zr-compare: installing {}", missing.join(" "));
        let st = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        if !st.is_ok_and(|s| s.success()) {
            eprintln!(
                "zr-compare: warning: apt-get install {} failed",
                missing.join(" ")
            );
        }
    }
    let src = root.join("benches/c/osu_bench.c");
    let mut ok = Vec::new();
    for i in impls {
        if !have(&i.cc) || !have(Path::new(&i.launcher[0])) {
            let hint = if i.name == "zerorank" {
                "run `cargo build --release` first".to_string()
            } else if is_root() {
                format!("apt-get install {} did not provide it", i.apt.join(" "))
            } else {
                format!("install {} (as root this tool does)", i.apt.join(" "))
            };
            eprintln!(
                "zr-compare: warning: {} skipped: {} or {} not found ({hint})",
                i.name,
                i.cc.display(),
                i.launcher[0]
            );
            continue;
        }
        let out = Command::new(&i.cc)
            .args(["-O2", "-o"])
            .arg(&i.exe)
            .arg(&src)
            .output()
            .map_err(|e| format!("{}: {e}", i.cc.display()))?;
        if !out.status.success() {
            eprintln!(
                "zr-compare: warning: {} skipped: building with {} failed:\n{}",
                i.name,
                i.cc.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        ok.push(i);
    }
    if ok.is_empty() {
        return Err("no implementation could be built".into());
    }
    Ok(ok)
}

/// (benchmark, ranks, extra osu_bench arguments) of this run.
fn plan(cli: &Cli) -> Vec<(String, usize, Vec<String>)> {
    let tests: Vec<String> = cli.tests.clone().unwrap_or_else(|| {
        let mut t = vec!["latency", "bw", "bcast", "allreduce"];
        if cli.full {
            t.extend(["bibw", "reduce", "allgather", "alltoall", "barrier"]);
        }
        t.into_iter().map(String::from).collect()
    });
    let mut v = Vec::new();
    for t in tests {
        let p2p = matches!(t.as_str(), "latency" | "bw" | "bibw");
        let mut args = Vec::new();
        if let Some(m) = cli.max_size {
            args.extend(["-M".to_string(), m.to_string()]);
        } else if cli.quick {
            let m = if t == "bw" { "1M" } else { "64K" };
            args.extend(["-M".to_string(), m.to_string()]);
        }
        if cli.quick {
            let i = match t.as_str() {
                "bw" | "bibw" => "10",
                "latency" => "1000",
                _ => "200",
            };
            args.extend(["-i".to_string(), i.to_string()]);
        }
        let ranks: &[usize] = if cli.full && !p2p { &[2, 4] } else { &[2] };
        for &n in ranks {
            v.push((t.clone(), n, args.clone()));
        }
    }
    v
}

/// Run `cmd` with a time limit (its process group is killed then); (stdout, stderr, ok).
fn bounded(mut cmd: Command, limit: Duration) -> (String, String, Result<(), String>) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                String::new(),
                String::new(),
                Err(format!("cannot start: {e}")),
            )
        }
    };
    // Read both pipes on threads so that a chatty child cannot block on a full pipe.
    let read = |p: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = p {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let out = read(child.stdout.take().map(|p| Box::new(p) as _));
    let err = read(child.stderr.take().map(|p| Box::new(p) as _));
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Ok(st);
        }
        if start.elapsed() > limit {
            let g = -(child.id() as i32);
            // SAFETY: kill(2) on a process group has no memory-safety preconditions.
            unsafe { libc::kill(g, libc::SIGKILL) };
            let _ = child.wait();
            break Err(format!("still running after {} s, killed", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (o, e) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let r = match status {
        Ok(st) if st.success() => Ok(()),
        Ok(st) => Err(format!("exited with {st}")),
        Err(m) => Err(m),
    };
    (o, e, r)
}

fn machine() -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown".to_string(), |m| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or("unknown".to_string(), |kb| {
            format!("{:.1} GiB", kb as f64 / (1 << 20) as f64)
        });
    let kernel = version_of("uname", &["-sr"], "").unwrap_or_default();
    let date = version_of("date", &["-u", "+%Y-%m-%d %H:%M UTC"], "").unwrap_or_default();
    vec![
        format!("CPU: {model}, {cores} cores available"),
        format!("memory: {mem}"),
        format!("kernel: {kernel}"),
        format!("date: {date}"),
    ]
}

fn versions(impls: &[Impl], root: &Path) -> Vec<(String, String)> {
    impls
        .iter()
        .map(|i| {
            let v = match i.name.as_str() {
                "zerorank" => Command::new("git")
                    .args([
                        "-C",
                        &root.display().to_string(),
                        "describe",
                        "--always",
                        "--dirty",
                    ])
                    .output()
                    .ok()
                    .map(|o| format!("git {}", String::from_utf8_lossy(&o.stdout).trim())),
                "openmpi" => version_of("mpirun.openmpi", &["--version"], "Open MPI"),
                _ => version_of("mpichversion", &[], "Version")
                    .or_else(|| version_of("mpiexec.mpich", &["--version"], "Version")),
            };
            (i.name.clone(), v.unwrap_or_else(|| "unknown".into()))
        })
        .collect()
}

fn run(cli: &Cli) -> Result<bool, String> {
    let root = std::env::current_dir().map_err(|e| e.to_string())?;
    if !root.join("benches/c/osu_bench.c").exists() {
        return Err("run it from the repository (benches/compare does)".into());
    }
    let impls = prepare(cli, &root, implementations(cli, &root)?)?;
    // Before any output is written: the plots and the report are in the work tree, and
    // `git describe --dirty` would call a clean checkout dirty once they are.
    let versions = versions(&impls, &root);
    let rounds = cli.rounds.unwrap_or(if cli.quick { 1 } else { 5 }).max(1);
    let plan = plan(cli);
    let raw_dir = cli.out.join("raw");
    std::fs::create_dir_all(&raw_dir).map_err(|e| format!("{}: {e}", raw_dir.display()))?;
    let total = rounds * plan.len() * impls.len();
    let started = Instant::now();
    let mut records = Vec::new();
    let mut failures = Vec::new();
    let mut k = 0;
    for round in 1..=rounds {
        for (test, ranks, args) in &plan {
            for i in &impls {
                k += 1;
                eprintln!(
                    "[{k}/{total} {:.0}s] round {round}: {} {test} at {ranks} ranks",
                    started.elapsed().as_secs_f64(),
                    i.name
                );
                let mut cmd = Command::new(&i.launcher[0]);
                cmd.args(&i.launcher[1..])
                    .arg(ranks.to_string())
                    .arg(&i.exe)
                    .arg(test)
                    .args(args)
                    .args(["-n", &i.name])
                    .env_remove("ZR_XFAIL");
                if is_root() {
                    // Open MPI refuses to start as root without these.
                    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
                        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
                }
                let (out, err, r) = bounded(cmd, Duration::from_secs(cli.timeout));
                let base = raw_dir.join(format!("{}-{test}-np{ranks}-r{round}", i.name));
                let _ = std::fs::write(base.with_extension("csv"), &out);
                let _ = std::fs::write(base.with_extension("err"), &err);
                let parsed = r.and_then(|()| compare::parse_run(&out));
                match parsed {
                    Ok(rs) => records.extend(rs),
                    Err(e) => {
                        let tail: Vec<&str> = err.lines().rev().take(5).collect();
                        eprintln!(
                            "zr-compare: {} {test} at {ranks} ranks, round {round}: {e}",
                            i.name
                        );
                        for l in tail.iter().rev() {
                            eprintln!("    {l}");
                        }
                        failures.push(format!(
                            "{} {test} at {ranks} ranks, round {round}: {e}",
                            i.name
                        ));
                    }
                }
            }
        }
    }
    std::fs::write(cli.out.join("records.json"), report::to_json(&records))
        .map_err(|e| format!("records.json: {e}"))?;
    let table = compare::aggregate(&records);
    let report_dir = cli
        .report
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let plot_dir = report_dir.join("results");
    std::fs::create_dir_all(&plot_dir).map_err(|e| format!("{}: {e}", plot_dir.display()))?;
    let mut plots = BTreeMap::new();
    for (series, sizes) in &table {
        let file = format!("{}-np{}.svg", series.test, series.ranks);
        match plot::series(series, sizes, &plot_dir.join(&file)) {
            Ok(()) => {
                plots.insert(
                    Series {
                        test: series.test.clone(),
                        ranks: series.ranks,
                    },
                    format!("results/{file}"),
                );
            }
            Err(e) => eprintln!("zr-compare: warning: {e}"),
        }
    }
    let mode = if cli.quick {
        " --quick"
    } else if cli.full {
        " --full"
    } else {
        ""
    };
    let names: Vec<&str> = impls.iter().map(|i| i.name.as_str()).collect();
    let ctx = Context {
        machine: machine(),
        versions,
        method: format!(
            "One C source, `benches/c/osu_bench.c`, compiled with each implementation's compiler \
             (`zrcc`, `mpicc.openmpi`, `mpicc.mpich`, `-O2`) and run under its launcher (`zrun -n`, \
             `mpirun.openmpi --oversubscribe -np`, `mpiexec.mpich -n`), all ranks on this one node. \
             {rounds} round(s); in each round every benchmark runs under {} one after another \
             (A B C A B C ...). Each number is the median over rounds of one run's p50: one-way \
             latency for `latency` (half the round trip), the slowest rank's p50 for the \
             collectives (each call timed after an untimed barrier); for `bw` the MB/s of the \
             median window of 64 messages. In brackets the median of the rounds' p99. A \
             collective's per-rank time starts when that rank leaves the untimed barrier, \
             and how far apart the ranks leave it differs between implementations, which \
             shows most at the smallest sizes (a broadcast root returns once its data is out; \
             Open MPI and zerorank return from a 0-byte broadcast at once, and what is left \
             there is each one's cost of a call: a 2-rank loop of 0-byte MPI_Bcast took \
             about 105 ns a call with zerorank and 7.5 with Open MPI on this machine). The \
             ratio is zerorank's over the best peer's at that size. This machine's cross-core \
             latency switches between two states every few seconds (see the README's \
             Measured section), which moves every implementation's small-message times 2-3x \
             within a run; the rounds' medians damp it but do not remove it. {} run(s) failed{}.",
            names.join(", "),
            failures.len(),
            if failures.is_empty() {
                String::new()
            } else {
                format!(": {}", failures.join("; "))
            }
        ),
        command: format!("benches/compare{mode}"),
        plots,
    };
    let md = compare::markdown(&table, &ctx);
    std::fs::write(&cli.report, &md).map_err(|e| format!("{}: {e}", cli.report.display()))?;
    println!("{}", compare::headline(&table));
    println!(
        "report: {}  (raw outputs in {}; {} of {total} runs failed; {:.0} s)",
        cli.report.display(),
        raw_dir.display(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(failures.is_empty())
}
