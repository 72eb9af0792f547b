//! Test rank program for bootstrap: `bootstrap_probe [--exit-rank R --code C] [--sleep SECS]
//! [--sleep-rank R] [--kill-rank R] [--early-exit-rank R]`. Calls bootstrap(), puts `ep-<rank>`, fences, reads
//! every rank's key, checks the values and prints
//! `rank R/N local L/M node K launcher X ok`.

use std::process::ExitCode;
use zerorank_transport::bootstrap::{bootstrap, Launcher};

fn arg(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() -> ExitCode {
    zerorank_transport::logging::init();
    let args: Vec<String> = std::env::args().collect();
    let (info, mut kvs) = match bootstrap() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("bootstrap_probe: bootstrap failed: {e}");
            return ExitCode::from(2);
        }
    };
    let me = info.rank;
    if arg(&args, "--early-exit-rank") == Some(me as u64) {
        // Leave without fencing: the others must not hang in their fence.
        return ExitCode::from(7);
    }
    let value = |r: u32| format!("{r};{};{:x}", info.advertise_ip, info.job_id);
    let mut run = || -> Result<(), String> {
        kvs.put(&format!("ep-{me}"), &value(me))
            .map_err(|e| e.to_string())?;
        kvs.fence().map_err(|e| e.to_string())?;
        for r in 0..info.size {
            let v = kvs.get(&format!("ep-{r}")).map_err(|e| e.to_string())?;
            let (rr, _) = v.split_once(';').ok_or("value without ';'")?;
            let job = v.rsplit(';').next().unwrap_or("");
            if rr != r.to_string() || job != format!("{:x}", info.job_id) {
                return Err(format!("ep-{r} is {v:?}: wrong rank or job id"));
            }
        }
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("bootstrap_probe: rank {me}: {e}");
        return ExitCode::from(3);
    }
    if info.local_rank >= info.local_size
        || info.rank >= info.size
        || (info.launcher == Launcher::Singleton && info.size != 1)
    {
        eprintln!("bootstrap_probe: inconsistent JobInfo {info:?}");
        return ExitCode::from(4);
    }
    println!(
        "rank {}/{} local {}/{} node {} launcher {:?} ok",
        info.rank, info.size, info.local_rank, info.local_size, info.node_id, info.launcher
    );
    if arg(&args, "--sleep-rank").is_none_or(|r| r == me as u64) {
        if let Some(s) = arg(&args, "--sleep") {
            std::thread::sleep(std::time::Duration::from_secs(s));
        }
    }
    if arg(&args, "--kill-rank") == Some(me as u64) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
    if arg(&args, "--exit-rank") == Some(me as u64) {
        return ExitCode::from(arg(&args, "--code").unwrap_or(1) as u8);
    }
    if let Err(e) = kvs.finalize() {
        eprintln!("bootstrap_probe: rank {me}: finalize: {e}");
        return ExitCode::from(5);
    }
    ExitCode::SUCCESS
}
