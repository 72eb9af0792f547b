//! The zrun launcher: starts N local ranks, serves PMI-1 to them over socketpairs, forwards
//! their output, and tears the job down when a rank fails, on a timeout or on SIGINT/SIGTERM.

pub mod cli;
pub mod output;
pub mod shm_cleanup;
pub mod status;

use crate::bootstrap::server::{KvsServer, ServerConfig};
use crate::bootstrap::stream::Stream;
use cli::Cli;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use output::Sink;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Grace between SIGTERM and SIGKILL when stopping ranks.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// Exit code when `--timeout` expires.
pub const TIMEOUT_EXIT: i32 = 124;

/// Parse the process arguments and run; returns zrun's exit code.
pub fn main_from_env() -> i32 {
    let args = cli::normalize_args(std::env::args_os().collect());
    let cli = match <Cli as clap::Parser>::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    run(&cli)
}

struct Rank {
    rank: u32,
    child: Child,
    pid: i32,
    status: Option<ExitStatus>,
}

fn say(msg: &str) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "zrun: {msg}");
}

fn env_pairs(cli: &Cli) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for x in &cli.export {
        match x.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            Some(_) => return Err(format!("-x {x:?}: expected VAR or VAR=VAL")),
            None => match std::env::var(x) {
                Ok(v) => out.push((x.clone(), v)),
                Err(_) => say(&format!(
                    "warning: -x {x}: {x} is not set in zrun's environment"
                )),
            },
        }
    }
    for e in &cli.env {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            _ => return Err(format!("--env {e:?}: expected VAR=VAL")),
        }
    }
    Ok(out)
}

/// Run a job described by `cli`; returns zrun's exit code.
pub fn run(cli: &Cli) -> i32 {
    let extra_env = match env_pairs(cli) {
        Ok(e) => e,
        Err(m) => {
            say(&m);
            return 2;
        }
    };
    let n = cli.np;
    let job_id: u64 = rand::random();
    let secret: [u8; 32] = rand::random();
    let server = KvsServer::new(ServerConfig {
        size: n,
        kvsname: format!("zrun-{job_id:016x}"),
        preset: vec![("PMI_process_mapping".into(), format!("(vector,(0,1,{n}))"))],
        // zrun learns of departures from waitpid, so that the rank that really failed is the
        // one reported (not a rank whose fence failed because of it).
        break_on_disconnect: false,
    });

    // Signals: remember the first SIGINT/SIGTERM and act on it in the loop below.
    let got_signal = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let flag = got_signal.clone();
        if let Err(e) = signal_hook::flag::register_usize(sig, flag, sig as usize) {
            say(&format!("cannot install a handler for signal {sig}: {e}"));
        }
    }

    let mut ranks: Vec<Rank> = Vec::with_capacity(n as usize);
    let mut outputs: Vec<JoinHandle<()>> = Vec::new();
    let mut spawn_error: Option<(i32, String)> = None;
    for r in 0..n {
        match spawn_rank(cli, r, n, job_id, &secret, &extra_env, &server) {
            Ok((rank, outs)) => {
                ranks.push(rank);
                outputs.extend(outs);
            }
            Err((code, msg)) => {
                spawn_error = Some((code, msg));
                break;
            }
        }
    }

    let start = Instant::now();
    let mut exit_code = 0;
    let mut stopping: Option<Instant> = None; // when SIGTERM was sent
    let mut killed = false;
    if let Some((code, msg)) = spawn_error {
        say(&msg);
        exit_code = code;
        server.abort("zrun could not start every rank");
        stopping = Some(Instant::now());
        signal_all(&ranks, Signal::SIGTERM);
    }
    loop {
        let mut newly_failed = false;
        for rk in ranks.iter_mut().filter(|r| r.status.is_none()) {
            match rk.child.try_wait() {
                Ok(Some(st)) => {
                    rk.status = Some(st);
                    server.rank_exited(&format!("rank{}", rk.rank), &status::describe(&st));
                    let failed = !st.success();
                    if failed && stopping.is_none() {
                        say(&format!(
                            "rank {} (pid {}) {}",
                            rk.rank,
                            rk.pid,
                            status::describe(&st)
                        ));
                        exit_code = status::exit_code(&st);
                        if exit_code == 0 {
                            exit_code = 1;
                        }
                        stopping = Some(Instant::now());
                        server.abort(&format!("rank {} {}", rk.rank, status::describe(&st)));
                        newly_failed = true;
                    } else if failed {
                        tracing::debug!(rank = rk.rank, status = %status::describe(&st), "rank ended while stopping");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(rank = rk.rank, error = %e, "zrun: waitpid failed"),
            }
        }
        if newly_failed {
            signal_all(&ranks, Signal::SIGTERM);
        }
        if ranks.iter().all(|r| r.status.is_some()) {
            break;
        }
        if stopping.is_none() {
            let sig = got_signal.load(Ordering::Relaxed);
            if sig != 0 {
                let name = status::signal_name(sig as i32);
                say(&format!(
                    "got {name}, forwarding it to the ranks and stopping the job"
                ));
                let fwd = Signal::try_from(sig as i32).unwrap_or(Signal::SIGTERM);
                signal_all(&ranks, fwd);
                exit_code = 128 + sig as i32;
                stopping = Some(Instant::now());
                server.abort("zrun was interrupted");
            } else if let Some(t) = cli
                .timeout
                .filter(|&t| start.elapsed() >= Duration::from_secs(t))
            {
                say(&format!("timeout of {t} s reached, killing the job"));
                exit_code = TIMEOUT_EXIT;
                stopping = Some(Instant::now());
                server.abort("zrun --timeout expired");
                signal_all(&ranks, Signal::SIGTERM);
            }
        } else if let Some(t0) = stopping {
            if !killed && t0.elapsed() >= KILL_GRACE {
                signal_all(&ranks, Signal::SIGKILL);
                killed = true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    // Output threads end at end of file; do not wait forever for grandchildren that kept
    // the pipes open.
    let deadline = Instant::now() + Duration::from_secs(2);
    for h in outputs {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
    let removed = shm_cleanup::remove_job_segments(Path::new("/dev/shm"), job_id);
    if removed > 0 {
        tracing::info!(removed, "zrun: removed leftover shared-memory segments");
    }
    exit_code
}

fn signal_all(ranks: &[Rank], sig: Signal) {
    for r in ranks.iter().filter(|r| r.status.is_none()) {
        // Each rank leads its own process group: signal the group so its children go too.
        if killpg(Pid::from_raw(r.pid), sig).is_err() {
            let _ = nix::sys::signal::kill(Pid::from_raw(r.pid), sig);
        }
    }
}

/// A started rank and its output-forwarding threads.
type Started = (Rank, Vec<JoinHandle<()>>);

#[allow(clippy::too_many_arguments)]
fn spawn_rank(
    cli: &Cli,
    r: u32,
    n: u32,
    job_id: u64,
    secret: &[u8; 32],
    extra_env: &[(String, String)],
    server: &KvsServer,
) -> Result<Started, (i32, String)> {
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| (1, format!("cannot create a socketpair: {e}")))?;
    // The rank's end must survive exec; every other descriptor of ours stays close-on-exec.
    // Only this thread spawns, so no other child can inherit it in between.
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    fcntl(theirs.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))
        .map_err(|e| (1, format!("cannot clear FD_CLOEXEC on the PMI socket: {e}")))?;
    let program: &OsString = &cli.command[0];
    let mut cmd = Command::new(program);
    cmd.args(&cli.command[1..])
        // Rank 0 reads zrun's stdin when it is a file or pipe, never a terminal: the ranks
        // run in their own process groups, where a terminal read would stop them.
        .stdin(if r == 0 && !std::io::stdin().is_terminal() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    // If zrun dies, even by SIGKILL, the kernel kills the rank too: an orphaned rank
    // would wait for its peers or its launcher forever. (The death signal follows the
    // thread that forked, and this one runs the job to its end.)
    let zrun_pid = nix::unistd::getpid();
    // SAFETY: the closure runs in the child between fork and exec and calls only prctl
    // and getppid, which are async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // zrun died before the prctl: nothing would kill this rank later.
            if nix::unistd::getppid() != zrun_pid {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    cmd.env("ZR_LAUNCHER", "zrun")
        .env("PMI_FD", theirs.as_raw_fd().to_string())
        .env("PMI_RANK", r.to_string())
        .env("PMI_SIZE", n.to_string())
        .env("ZR_JOB_ID", format!("{job_id:016x}"))
        .env("ZR_SECRET", hex::encode(secret))
        .env("ZR_LOCAL_RANK", r.to_string())
        .env("ZR_LOCAL_SIZE", n.to_string())
        .env("ZR_NODE_ID", "0")
        .env("ZR_BIND", cli.bind.to_string());
    let mut child = cmd.spawn().map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        };
        (
            code,
            format!("cannot start {:?} for rank {r}: {e}", program),
        )
    })?;
    drop(theirs);
    let pid = child.id() as i32;
    let prefix = if cli.tag_output {
        format!("[{r}] ")
    } else {
        String::new()
    };
    let mut outs = Vec::new();
    if let Some(o) = child.stdout.take() {
        if let Ok(h) = output::forward(o, Sink::Stdout, prefix.clone()) {
            outs.push(h);
        }
    }
    if let Some(e) = child.stderr.take() {
        if let Ok(h) = output::forward(e, Sink::Stderr, prefix) {
            outs.push(h);
        }
    }
    if let Err(e) = server.serve(Stream::Unix(ours), format!("rank{r}")) {
        say(&format!("cannot start the PMI thread for rank {r}: {e}"));
    }
    tracing::debug!(rank = r, pid, "zrun: rank started");
    Ok((
        Rank {
            rank: r,
            child,
            pid,
            status: None,
        },
        outs,
    ))
}
