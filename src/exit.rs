//! Exit codes: one table here feeds the help text, the man pages and the
//! README (written by `cargo xtask gen`; a test fails when they are stale).

use std::process::ExitCode;

/// One documented exit code.
#[derive(Clone, Copy, Debug)]
pub struct CodeDoc {
    pub code: u8,
    /// A word or two, as in the help line.
    pub short: &'static str,
    pub meaning: &'static str,
}

/// The exit codes of `list`, `explain`, `demo` and `who`.
pub const EXIT_CODES: [CodeDoc; 3] = [
    CodeDoc {
        code: Exit::Ok as u8,
        short: "ok",
        meaning: "Success. Also when the reader of the output goes away early (broken pipe).",
    },
    CodeDoc {
        code: Exit::Failure as u8,
        short: "runtime failure",
        meaning: "Runtime failure: sock_diag refused, a file could not be read or written, a demo claim was contradicted.",
    },
    CodeDoc {
        code: Exit::Usage as u8,
        short: "usage error",
        meaning: "Usage error: unknown state, bad address or port, flags that cannot go together, a bad snapshot file.",
    },
];

/// The exit statuses of every command (`check` included) stopped by a signal:
/// 128 + the signal's number. Temporary files are removed first. `--watch`
/// and `who` take the first signal as the end of their run and exit 0 with
/// their report written; only a second signal gives these statuses there.
pub const SIGNAL_CODES: [CodeDoc; 7] = [
    signal_code(1, "SIGHUP", "hang-up: the terminal or session went away"),
    signal_code(2, "SIGINT", "Ctrl-C"),
    signal_code(3, "SIGQUIT", "Ctrl-\\"),
    signal_code(10, "SIGUSR1", "user signal 1"),
    signal_code(12, "SIGUSR2", "user signal 2"),
    signal_code(14, "SIGALRM", "alarm, as `timeout --signal=ALRM` sends"),
    signal_code(15, "SIGTERM", "termination, as `kill` and `timeout` send"),
];

/// What every signal exit has in common (README and man page, after the codes).
pub const SIGNAL_NOTE: &str = "Each of these signals stops any command with 128 + its number, after removing the temporary file of an unfinished write (`--output`, `--save`); a command writing to stdout only is ended by the signal itself, which shells report as the same number. `--watch` and `who` take the first one as the end of their run: they finish the report and exit 0; a second one exits at once with 128 + its number.";

const fn signal_code(number: u8, short: &'static str, meaning: &'static str) -> CodeDoc {
    CodeDoc {
        code: 128 + number,
        short,
        meaning,
    }
}

/// The exit codes of `check`, as monitoring plugins use them.
pub const CHECK_CODES: [CodeDoc; 4] = [
    CodeDoc {
        code: CheckStatus::Ok as u8,
        short: "OK",
        meaning: "Every value is within its thresholds.",
    },
    CodeDoc {
        code: CheckStatus::Warning as u8,
        short: "WARNING",
        meaning: "A value is above its warning threshold.",
    },
    CodeDoc {
        code: CheckStatus::Critical as u8,
        short: "CRITICAL",
        meaning: "A value is above its critical threshold.",
    },
    CodeDoc {
        code: CheckStatus::Unknown as u8,
        short: "UNKNOWN",
        meaning: "The check could not run: bad arguments (clap's own errors included), a threshold on a state not counted, netlink refused. The status line on stdout says why.",
    },
];

fn short_list(codes: &[CodeDoc]) -> String {
    codes
        .iter()
        .map(|c| format!("{} {}", c.code, c.short))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one-line summary at the end of `--help`.
pub fn help_line() -> String {
    format!(
        "Exit codes: {}, 128+N stopped by signal N (check: {}).",
        short_list(&EXIT_CODES),
        short_list(&CHECK_CODES)
    )
}

/// The summary for `check --help`.
pub fn check_help_line() -> String {
    format!(
        "Exit codes: {}, 128+N stopped by signal N.",
        short_list(&CHECK_CODES)
    )
}

/// The README's table of exit codes (Markdown).
pub fn markdown() -> String {
    let mut s = String::from("| code | `list`, `explain`, `demo`, `who` |\n|---|---|\n");
    for c in &EXIT_CODES {
        s.push_str(&format!("| {} | {} |\n", c.code, c.meaning));
    }
    s.push_str("\n| code | every command, `check` too: stopped by a signal |\n|---|---|\n");
    for c in &SIGNAL_CODES {
        s.push_str(&format!("| {} | {} ({}) |\n", c.code, c.short, c.meaning));
    }
    s.push_str(&format!("\n{SIGNAL_NOTE}\n"));
    s.push_str("\n| code | `check` (monitoring-plugin convention) |\n|---|---|\n");
    for c in &CHECK_CODES {
        s.push_str(&format!("| {} | {}: {} |\n", c.code, c.short, c.meaning));
    }
    s
}

/// Exit codes of `list`, `explain`, `demo` and `who`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success (also: output pipe closed early).
    Ok = 0,
    /// Runtime failure: netlink refused, file not writable, a demo claim contradicted.
    Failure = 1,
    /// Usage error: unknown state, bad address, port out of range, conflicting flags.
    Usage = 2,
}

/// Exit codes of `check`, as monitoring plugins use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckStatus {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl CheckStatus {
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Ok => "OK",
            CheckStatus::Warning => "WARNING",
            CheckStatus::Critical => "CRITICAL",
            CheckStatus::Unknown => "UNKNOWN",
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

impl From<CheckStatus> for ExitCode {
    fn from(s: CheckStatus) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

/// A mistake in how the program was called. Exits with [`Exit::Usage`]
/// (`check`: UNKNOWN) and prints its message as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand for returning a usage error.
pub fn usage<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(UsageError(msg.into()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(Exit::Ok as u8, 0);
        assert_eq!(Exit::Failure as u8, 1);
        assert_eq!(Exit::Usage as u8, 2);
        assert_eq!(CheckStatus::Unknown as u8, 3);
        assert!(CheckStatus::Critical > CheckStatus::Warning);
    }

    #[test]
    fn signal_codes_are_the_signals_stopping_the_program() {
        let numbers: Vec<u8> = crate::signals::STOPPING
            .iter()
            .map(|s| crate::signals::status_of(*s) as u8)
            .collect();
        let names: Vec<&str> = crate::signals::STOPPING
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(SIGNAL_CODES.map(|c| c.code).to_vec(), numbers);
        assert_eq!(SIGNAL_CODES.map(|c| c.short).to_vec(), names);
    }
}
