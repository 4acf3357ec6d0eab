//! Exit codes, documented here, in README and in the man page.

use std::process::ExitCode;

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

/// Joins a multi-line message into one line.
pub fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
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
}
