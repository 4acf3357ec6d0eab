//! The program behind `main`: parse, run, map the outcome to an exit code.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::error::ErrorKind;

use crate::cli::{self, Command};
use crate::commands;
use crate::exit::{CheckStatus, Exit, UsageError, one_line};
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
        Err(e) if e.kind() == ErrorKind::InvalidUtf8 => return bad_utf8(&args, is_check),
        Err(e) => return clap_exit(e, is_check, &args),
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
fn clap_exit(e: clap::Error, is_check: bool, args: &[OsString]) -> ExitCode {
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
            eprintln!("tw-inspect: {}", escape_non_utf8(clap_one_line(&e), args));
            if is_check {
                CheckStatus::Unknown.into()
            } else {
                Exit::Usage.into()
            }
        }
    }
}

/// Clap shows a non-UTF-8 argument with U+FFFD in place of its bytes; show
/// the bytes (`\xff`) so the message names the value actually given.
fn escape_non_utf8(mut msg: String, args: &[OsString]) -> String {
    use std::os::unix::ffi::OsStrExt;
    for a in args.iter().filter(|a| a.to_str().is_none()) {
        msg = msg.replace(
            &*a.to_string_lossy(),
            &a.as_bytes().escape_ascii().to_string(),
        );
    }
    msg
}

/// Clap says only that some argument was not UTF-8; name it (bytes escaped).
fn bad_utf8(args: &[OsString], is_check: bool) -> ExitCode {
    use std::os::unix::ffi::OsStrExt;
    let bad = args.iter().skip(1).find(|a| a.to_str().is_none());
    let shown = bad
        .map(|a| a.as_bytes().escape_ascii().to_string())
        .unwrap_or_default();
    eprintln!(
        "tw-inspect: argument '{shown}' is not valid UTF-8; names, states and numbers must be UTF-8 text"
    );
    if is_check {
        CheckStatus::Unknown.into()
    } else {
        Exit::Usage.into()
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
