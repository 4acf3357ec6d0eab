//! `tw-inspect explain`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ColorChoice;

pub fn run(_args: &crate::cli::ExplainArgs, _color: ColorChoice) -> Result<ExitCode> {
    crate::exit::usage("'explain' is not available in this build yet")
}
