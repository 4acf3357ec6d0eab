//! The program behind `main`: parse, run, map the outcome to an exit code.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::error::ErrorKind;

use crate::cli::{self, Command};
use crate::commands;
use crate::exit::{CheckStatus, Exit, UsageError};
use crate::output::is_broken_pipe;

/// Runs the program with these arguments and returns its exit code.
pub fn main_with(args: Vec<OsString>) -> ExitCode {
    let is_check = args
        .iter()
        .skip(1)
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .is_some_and(|a| a == "check");
    let cli = match cli::parse_from(&args) {
        Ok(c) => c,
        Err(e) => return clap_exit(e, is_check),
    };
    let result = match &cli.command {
        Command::List(a) => commands::list::run(a, cli.color).map(|_| Exit::Ok.into()),
        Command::Explain(a) => commands::explain::run(a, cli.color),
        Command::Demo(a) => commands::demo::run(a, cli.color),
        Command::Who(a) => commands::who::run(a, cli.color),
        Command::Check(a) => commands::check::run(a, cli.color),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => Exit::Ok.into(),
        Err(e) => {
            let usage = e.downcast_ref::<UsageError>().is_some();
            eprintln!("tw-inspect: {}", one_line(&format!("{e:#}")));
            match (usage, is_check) {
                (_, true) => CheckStatus::Unknown.into(),
                (true, false) => Exit::Usage.into(),
                (false, false) => Exit::Failure.into(),
            }
        }
    }
}

/// Help and version go to stdout with exit 0; real parse errors become one line.
fn clap_exit(e: clap::Error, is_check: bool) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // clap styles only a terminal and honours NO_COLOR; a closed pipe is not an error.
            let _ = e.print();
            let _ = std::io::stdout().flush();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                return Exit::Usage.into();
            }
            Exit::Ok.into()
        }
        _ => {
            eprintln!("tw-inspect: {}", clap_one_line(&e));
            if is_check {
                CheckStatus::Unknown.into()
            } else {
                Exit::Usage.into()
            }
        }
    }
}

/// Clap's message without its "Usage:" block and hints, on one line.
pub fn clap_one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut parts = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        if !l.is_empty() {
            parts.push(l.trim_start_matches("error: ").to_string());
        }
    }
    parts.join(" ")
}

/// Joins a multi-line message into one line.
pub fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
