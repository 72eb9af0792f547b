//! zrun's command line.

use clap::Parser;
use std::ffi::OsString;
use zerorank_core::affinity::Bind;

/// Start N ranks of a zerorank (or PMI-1) program on this machine.
#[derive(Debug, Parser)]
#[command(
    name = "zrun",
    version,
    about = "Start N ranks of a zerorank program on this machine",
    long_about = "Start N ranks of a zerorank program on this machine.\n\n\
        Each rank gets PMI_FD/PMI_RANK/PMI_SIZE (PMI-1 over an inherited socket, served by \
        zrun) and ZR_LAUNCHER, ZR_JOB_ID, ZR_SECRET, ZR_LOCAL_RANK, ZR_LOCAL_SIZE, ZR_NODE_ID, \
        ZR_BIND. Output is forwarded line by line. If a rank fails, the others are stopped \
        (SIGTERM, then SIGKILL after 2 s) and zrun exits with that rank's status \
        (128+signal for a signal), like mpirun.",
    after_help = "Examples:\n  zrun -n 4 ./my_program arg1\n  zrun -np 2 --tag-output --timeout 60 ./my_program"
)]
pub struct Cli {
    /// Number of ranks to start (also -np N).
    #[arg(short = 'n', long = "np", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub np: u32,

    /// Prefix every output line with "\[rank\] ".
    #[arg(long)]
    pub tag_output: bool,

    /// Kill the job and exit non-zero after SECS seconds.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,

    /// CPU binding of the ranks: core (one CPU per rank) or none.
    #[arg(long, value_name = "core|none", default_value = "core", value_parser = parse_bind)]
    pub bind: Bind,

    /// Pass environment variable VAR (or set VAR=VAL) for the ranks; repeatable.
    #[arg(short = 'x', value_name = "VAR[=VAL]")]
    pub export: Vec<String>,

    /// Set VAR=VAL for the ranks; repeatable.
    #[arg(long = "env", value_name = "VAR=VAL")]
    pub env: Vec<String>,

    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
    pub command: Vec<OsString>,
}

fn parse_bind(s: &str) -> Result<Bind, String> {
    s.parse::<Bind>()
}

/// Options of zrun that take a value (used to find where the program starts).
const VALUE_OPTS: &[&str] = &["-n", "--np", "-np", "--timeout", "--bind", "-x", "--env"];

/// Rewrite mpirun-style `-np N` / `-np=N` into `--np N`, before the program name only.
pub fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    if let Some(argv0) = iter.next() {
        out.push(argv0);
    }
    let mut expect_value = false;
    let mut in_program = false;
    for a in iter {
        if in_program {
            out.push(a);
            continue;
        }
        let s = a.to_string_lossy().into_owned();
        if expect_value {
            expect_value = false;
            out.push(a);
            continue;
        }
        if s == "--" {
            in_program = true;
            out.push(a);
            continue;
        }
        if s == "-np" {
            out.push("--np".into());
            expect_value = true;
            continue;
        }
        if let Some(v) = s.strip_prefix("-np=") {
            out.push(format!("--np={v}").into());
            continue;
        }
        if VALUE_OPTS.contains(&s.as_str()) {
            expect_value = true;
        } else if !s.starts_with('-') {
            in_program = true;
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<OsString> {
        xs.iter().map(OsString::from).collect()
    }

    #[test]
    fn np_is_rewritten_only_before_the_program() {
        assert_eq!(
            normalize_args(v(&["zrun", "-np", "2", "prog", "-np", "x"])),
            v(&["zrun", "--np", "2", "prog", "-np", "x"])
        );
        assert_eq!(
            normalize_args(v(&["zrun", "-np=3", "prog"])),
            v(&["zrun", "--np=3", "prog"])
        );
        assert_eq!(
            normalize_args(v(&["zrun", "-x", "-np", "-n", "1", "p"])),
            v(&["zrun", "-x", "-np", "-n", "1", "p"])
        );
    }

    #[test]
    fn parses() {
        let c = Cli::try_parse_from(normalize_args(v(&[
            "zrun",
            "-np",
            "2",
            "--tag-output",
            "prog",
            "--flag",
        ])))
        .unwrap();
        assert_eq!(c.np, 2);
        assert!(c.tag_output);
        assert_eq!(c.command, v(&["prog", "--flag"]));
        assert!(Cli::try_parse_from(v(&["zrun", "-n", "0", "p"])).is_err());
        assert!(Cli::try_parse_from(v(&["zrun", "-n", "2"])).is_err());
        assert!(Cli::try_parse_from(v(&["zrun", "--bind", "socket", "-n", "1", "p"])).is_err());
    }
}
