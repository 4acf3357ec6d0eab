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

use crate::plan::Plan;
use crate::signals::{self, OnSignal};

/// Carries out a plan. The signal watcher starts first, before any thread and
/// any temporary file: `--watch` and `who` stop on a signal and finish their
/// report; the others exit at once, their temporary files removed. `demo`
/// installs its own once it is in its namespace (a user namespace can only
/// be entered while the process has one thread).
pub fn run(plan: Plan) -> Result<ExitCode> {
    let on = match plan {
        Plan::Watch(_) | Plan::Who(_) => Some(OnSignal::Stop),
        Plan::List(_) | Plan::Check(_) | Plan::Explain(_) => Some(signals::EXIT),
        Plan::Demo(_) => None,
    };
    if let Some(on) = on {
        signals::install(on).context("installing the signal watcher")?;
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
