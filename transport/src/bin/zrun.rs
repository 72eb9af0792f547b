//! `zrun`: start N ranks of a zerorank program on this machine. See `zrun --help`.

fn main() {
    zerorank_transport::logging::init();
    std::process::exit(zerorank_transport::launcher::main_from_env());
}
