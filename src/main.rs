//! The binary: hands the arguments to `app` and returns its exit code.

#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

fn main() -> ExitCode {
    tw_inspect::app::main_with(std::env::args_os().collect())
}
