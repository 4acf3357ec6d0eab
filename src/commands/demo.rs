//! `tw-inspect demo`.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::ColorChoice;

pub fn run(_args: &crate::cli::DemoArgs, _color: ColorChoice) -> Result<ExitCode> {
    crate::exit::usage("'demo' is not available in this build yet")
}
