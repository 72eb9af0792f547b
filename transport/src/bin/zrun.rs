//! `zrun`: start N ranks of a zerorank program on this machine. See `zrun --help`.

fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ZR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    std::process::exit(zerorank_transport::launcher::main_from_env());
}
