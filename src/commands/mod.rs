//! One module per command: each takes its plan and wires collect → aggregate →
//! render, nothing more. Nothing here sees clap types.

pub mod check;
pub mod demo;
pub mod explain;
pub mod list;
pub mod watch;
pub mod who;

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::host::identity::Resolver;
use crate::host::netns::{NetnsChoice, Scope};
use crate::plan::Plan;
use crate::signals::{self, OnSignal};

/// The namespaces of `choice`, named through `names`, with one warning line
/// each for processes that could not be looked at and metadata files skipped.
pub fn scope(choice: &NetnsChoice, names: &mut Resolver) -> Result<Scope> {
    let scope = Scope::resolve(choice, names)?;
    if let Some(w) = scope.denied_warning() {
        crate::output::warn(&w);
    }
    for w in names.take_warnings() {
        crate::output::warn(&w);
    }
    Ok(scope)
}

/// Carries out a plan. `--watch` and `who` start the signal watcher first,
/// before any thread: they stop on a signal and finish their report. The
/// others need one only to remove a temporary file, so the first file opened
/// for writing starts it (`Output`), before any collecting thread; a run that
/// writes to stdout only leaves signals to their default action. `demo`
/// installs its own once it is in its namespace (a user namespace can only be
/// entered while the process has one thread).
pub fn run(plan: Plan) -> Result<ExitCode> {
    if matches!(plan, Plan::Watch(_) | Plan::Who(_)) {
        signals::install(OnSignal::Stop).context("installing the signal watcher")?;
    }
    match plan {
        Plan::List(p) => list::run(&p),
        Plan::Watch(p) => watch::run(&p),
        Plan::Check(p) => check::run(&p),
        Plan::Who(p) => who::run(&p),
        Plan::Explain(p) => explain::run(&p),
        Plan::Demo(p) => demo::run(&p),
    }
}
