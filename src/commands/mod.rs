//! One module per command: each takes its plan and wires collect → aggregate →
//! render, nothing more. Nothing here sees clap types.

pub mod check;
pub mod demo;
pub mod explain;
pub mod list;
pub mod watch;
pub mod who;

use std::process::ExitCode;

use anyhow::Result;

use crate::plan::Plan;

/// Carries out a plan.
pub fn run(plan: Plan) -> Result<ExitCode> {
    match plan {
        Plan::List(p) => list::run(&p),
        Plan::Watch(p) => watch::run(&p),
        Plan::Check(p) => check::run(&p),
        Plan::Who(p) => who::run(&p),
        Plan::Explain(p) => explain::run(&p),
        Plan::Demo(p) => demo::run(&p),
    }
}
