//! Replay one seed of the ring broadcast simulator and say what happened:
//! `cargo run -p zerorank-replication --example abcast_replay -- <seed> [-v]`
//! (`-v`: every member's log, entry by entry; `-t`: faults, views and stops as they
//! happen, on stderr).

use zerorank_replication::abcast::checker::{check, CheckOptions};
use zerorank_replication::abcast::sim::{run, SimConfig};
use zerorank_replication::abcast::LogEntry;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(seed) = args.next().and_then(|s| s.parse::<u64>().ok()) else {
        eprintln!("usage: abcast_replay <seed> [-v]");
        std::process::exit(2);
    };
    let flags: Vec<String> = args.collect();
    let verbose = flags.iter().any(|a| a == "-v");
    let mut cfg = SimConfig::random(seed);
    cfg.trace = flags.iter().any(|a| a == "-t");
    println!("{cfg:?}");
    let r = run(cfg);
    for f in &r.faults {
        println!("fault: {f}");
    }
    for l in &r.logs {
        let views: Vec<String> = l
            .entries
            .iter()
            .filter_map(|e| match e {
                LogEntry::View(v) => Some(format!("{}{:?}", v.id, v.members)),
                LogEntry::Blocked { reason } => Some(format!("BLOCKED({reason})")),
                _ => None,
            })
            .collect();
        let delivered = l
            .entries
            .iter()
            .filter(|e| matches!(e, LogEntry::Deliver { .. }))
            .count();
        println!(
            "member {}: sent {}, delivered {delivered}, crashed {}, views {}",
            l.node,
            l.sent.len(),
            l.crashed,
            views.join(" -> ")
        );
        if verbose {
            for e in &l.entries {
                println!("    {e:?}");
            }
        }
    }
    for st in &r.status {
        println!("state: {st}");
    }
    println!("{} events, {} deliveries", r.events, r.deliveries);
    if let Some(why) = &r.stuck {
        println!("stuck: {why}; safety properties only");
    }
    match check(
        &r.logs,
        CheckOptions {
            liveness: r.stuck.is_none(),
        },
    ) {
        Ok(()) => println!("checker: every property holds"),
        Err(v) => {
            println!("checker: {v}");
            std::process::exit(1);
        }
    }
}
