//! `tw-inspect who`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ColorChoice;

pub fn run(_args: &crate::cli::WhoArgs, _color: ColorChoice) -> Result<ExitCode> {
    crate::exit::usage("'who' is not available in this build yet")
}
