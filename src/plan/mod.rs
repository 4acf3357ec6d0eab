//! The plan: the parsed command line turned into one typed, checked plan per
//! command before any work starts. Everything below `commands/` reads plans,
//! never clap types. Every combination of flags is either honoured by the plan
//! or refused here with a [`UsageError`] naming the flags; nothing falls through.

pub mod check;
pub mod demo;
pub mod explain;
pub mod list;
pub mod values;
pub mod who;

use std::path::PathBuf;

use crate::cli::{self, Cli, Command};
use crate::exit::UsageError;

pub use check::CheckPlan;
pub use demo::DemoPlan;
pub use explain::ExplainPlan;
pub use list::{ListPlan, WatchPlan};
pub use who::WhoPlan;

/// One plan per command; `list --watch` is a command of its own here, and
/// `list --by process --trace D` is the `who` recording restricted to list's filters.
#[derive(Debug)]
pub enum Plan {
    List(ListPlan),
    Watch(WatchPlan),
    Check(CheckPlan),
    Who(WhoPlan),
    Explain(ExplainPlan),
    Demo(DemoPlan),
}

/// `--color`, resolved against the destination once it is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    /// Whether to style output going to a terminal (`to_terminal`) or not:
    /// auto styles only a terminal, and never when `NO_COLOR` is set (non-empty).
    pub fn enabled(self, to_terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

/// Where a report goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    /// Replaced atomically (temporary file, then rename).
    File(PathBuf),
}

impl Destination {
    fn from_flag(p: &Option<PathBuf>) -> Destination {
        match p {
            Some(p) => Destination::File(p.clone()),
            None => Destination::Stdout,
        }
    }

    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Destination::Stdout => None,
            Destination::File(p) => Some(p),
        }
    }
}

/// Builds the plan of the parsed command.
pub fn build(cli: &Cli) -> Result<Plan, UsageError> {
    let color = match cli.color {
        cli::ColorChoice::Auto => Color::Auto,
        cli::ColorChoice::Always => Color::Always,
        cli::ColorChoice::Never => Color::Never,
    };
    match &cli.command {
        Command::List(a) => list::build(a, color),
        Command::Check(a) => check::build(a).map(Plan::Check),
        Command::Who(a) => who::build(a, color).map(Plan::Who),
        Command::Explain(a) => explain::build(a, color).map(Plan::Explain),
        Command::Demo(a) => demo::build(a).map(Plan::Demo),
    }
}

/// The usage error for two flags that cannot go together.
pub(crate) fn refuse<T>(a: &str, b: &str, why: &str) -> Result<T, UsageError> {
    Err(UsageError(format!("{a} cannot be used with {b}: {why}")))
}
