//! The `rustcracker` binary: a drop-in successor to nutcracker. All logic is
//! in the library (`rustcracker::cli`); this only hands over the arguments.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    ExitCode::from(rustcracker::cli::run(&args))
}
