//! The program behind `main`: parse, plan, run, and map the outcome to an exit code.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};

use crate::cli::{self, Cli};
use crate::commands;
use crate::escape::visible;
use crate::exit::{self, CheckStatus, Exit, UsageError};
use crate::output::is_broken_pipe;
use crate::plan;

/// The command-line definition with the generated parts added: the exit codes
/// after the examples. The binary, the man pages and the completions use it.
pub fn command() -> clap::Command {
    Cli::command()
        .after_help(format!("{}\n\n{}", cli::MAIN_EXAMPLES, exit::help_line()))
        .mut_subcommand("check", |c| {
            c.after_help(format!(
                "{}\n\n{}\n\n{}",
                cli::CHECK_EXAMPLES,
                crate::threshold::help_table(),
                exit::check_help_line()
            ))
        })
}

/// Runs the program with these arguments and returns its exit code.
pub fn main_with(args: Vec<OsString>) -> ExitCode {
    let parsed = command()
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => return clap_exit(e, &args),
    };
    let is_check = matches!(cli.command, cli::Command::Check(_));
    let result = plan::build(&cli)
        .map_err(anyhow::Error::from)
        .and_then(commands::run);
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => Exit::Ok.into(),
        Err(e) => {
            let usage = e.downcast_ref::<UsageError>().is_some();
            fail(&visible(&format!("{e:#}")), is_check, usage)
        }
    }
}

/// Prints the one-line error (and for `check` its UNKNOWN status line on
/// stdout, where plugin runners read it) and returns the exit code. Paths,
/// names and values quoted in an error may hold anything, a newline included:
/// `msg` comes already escaped ([`visible`]), so it is one line.
fn fail(msg: &str, is_check: bool, usage: bool) -> ExitCode {
    if is_check {
        let mut out = std::io::stdout().lock();
        let _ = crate::render::check::unknown(&mut out, msg);
        let _ = out.flush();
    }
    // A failing stderr must not change the exit code.
    let _ = writeln!(std::io::stderr().lock(), "tw-inspect: {msg}");
    match (is_check, usage) {
        (true, _) => CheckStatus::Unknown.into(),
        (false, true) => Exit::Usage.into(),
        (false, false) => Exit::Failure.into(),
    }
}

/// The subcommand the arguments name, as clap finds it even when they hold
/// errors (so `tw-inspect --color never check --bogus` is still a `check`).
fn subcommand_of(args: &[OsString]) -> Option<String> {
    command()
        .ignore_errors(true)
        .try_get_matches_from(args)
        .ok()?
        .subcommand_name()
        .map(str::to_string)
}

/// Help and version go to stdout with exit 0; real parse errors become one line.
fn clap_exit(e: clap::Error, args: &[OsString]) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // clap styles only a terminal and honours NO_COLOR; a closed pipe is not an error.
            let _ = e.print();
            let _ = std::io::stdout().flush();
            Exit::Ok.into()
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            Exit::Usage.into()
        }
        kind => {
            let is_check = subcommand_of(args).as_deref() == Some("check");
            let msg = if kind == ErrorKind::InvalidUtf8 {
                bad_utf8(args)
            } else {
                escape_non_utf8(visible(&clap_one_line(&e)).into_owned(), args)
            };
            fail(&msg, is_check, true)
        }
    }
}

/// Clap shows a non-UTF-8 argument with U+FFFD in place of its bytes; show
/// the bytes (`\xff`) so the message names the value actually given. `msg`
/// is already escaped, so the argument is looked for as it shows there.
fn escape_non_utf8(mut msg: String, args: &[OsString]) -> String {
    use std::os::unix::ffi::OsStrExt;
    for a in args.iter().filter(|a| a.to_str().is_none()) {
        msg = msg.replace(
            &*visible(&a.to_string_lossy()),
            &a.as_bytes().escape_ascii().to_string(),
        );
    }
    msg
}

/// Clap says only that some argument was not UTF-8; name it (bytes escaped).
fn bad_utf8(args: &[OsString]) -> String {
    use std::os::unix::ffi::OsStrExt;
    let shown = args
        .iter()
        .skip(1)
        .find(|a| a.to_str().is_none())
        .map(|a| a.as_bytes().escape_ascii().to_string())
        .unwrap_or_default();
    format!("argument '{shown}' is not valid UTF-8; names, states and numbers must be UTF-8 text")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_subcommand_is_found_past_global_flags_and_errors() {
        for a in [
            &["tw-inspect", "check", "--bogus"][..],
            &["tw-inspect", "--color", "never", "check", "-w", "bogus=1"],
            &["tw-inspect", "--color=never", "check", "--bogus"],
            &["tw-inspect", "check", "--state"],
        ] {
            assert_eq!(subcommand_of(&args(a)).as_deref(), Some("check"), "{a:?}");
        }
        assert_eq!(
            subcommand_of(&args(&["tw-inspect", "list", "--bogus"])).as_deref(),
            Some("list")
        );
    }
}
