//! `tw-inspect check`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ColorChoice;

pub fn run(_args: &crate::cli::CheckArgs, _color: ColorChoice) -> Result<ExitCode> {
    crate::exit::usage("'check' is not available in this build yet")
}
