//! The plan of `demo`.

use std::io::IsTerminal;
use std::time::Duration;

use super::refuse;
use super::values;
use crate::cli::{DemoArgs, TextFormat};
use crate::demo::{self, Scenario};
use crate::exit::UsageError;

/// The largest `--count`: one peer port offers about 28,000 ephemeral ports.
pub const MAX_COUNT: u32 = 25_000;
/// TIME_WAIT sockets the `cost` scenario makes by default.
pub const DEFAULT_COUNT: u32 = 10_000;

#[derive(Clone, Debug)]
pub enum DemoPlan {
    /// `--list`: the scenarios (those named, or all) with their claims.
    List {
        scenarios: Vec<&'static Scenario>,
        json: bool,
    },
    Run(RunPlan),
}

#[derive(Clone, Debug)]
pub struct RunPlan {
    pub scenarios: Vec<&'static Scenario>,
    /// Pause between steps; `None`: 1 s on a terminal, else none.
    pub pace: Option<Duration>,
    /// Wait for Enter before each step.
    pub step: bool,
    /// The host's loopback instead of a private network namespace.
    pub host: bool,
    /// TIME_WAIT sockets the `cost` scenario makes.
    pub count: u32,
    pub json: bool,
}

fn choose(names: &[String]) -> Result<Vec<&'static Scenario>, UsageError> {
    if names.is_empty() {
        return Ok(demo::SCENARIOS.iter().collect());
    }
    let mut out: Vec<&'static Scenario> = Vec::new();
    for name in names {
        match demo::find(name) {
            Some(s) if !out.iter().any(|o| o.name == s.name) => out.push(s),
            Some(_) => {}
            None => {
                return Err(UsageError(format!(
                    "unknown scenario '{name}'; valid: {}",
                    demo::names()
                )));
            }
        }
    }
    Ok(out)
}

pub fn build(a: &DemoArgs) -> Result<DemoPlan, UsageError> {
    let scenarios = choose(&a.scenarios)?;
    let json = a.format == TextFormat::Json;
    if a.list {
        let why = "--list only lists the scenarios; run them without --list";
        for (given, flag) in [
            (a.pace.is_some(), "--pace"),
            (a.step, "--step"),
            (a.host, "--host"),
            (a.count.is_some(), "--count"),
        ] {
            if given {
                return refuse("--list", flag, why);
            }
        }
        return Ok(DemoPlan::List { scenarios, json });
    }
    let count = a.count.unwrap_or(DEFAULT_COUNT);
    if count == 0 || count > MAX_COUNT {
        return Err(UsageError(format!(
            "--count: {count} is out of range; valid: 1-{MAX_COUNT}"
        )));
    }
    if a.count.is_some() && !scenarios.iter().any(|s| s.name == "cost") {
        return Err(UsageError(
            "--count sets how many TIME_WAIT sockets the cost scenario makes, and cost is not among the scenarios chosen: add cost, or drop --count".into(),
        ));
    }
    if a.step {
        if json {
            return refuse(
                "--step",
                "--format json",
                "JSON is written once at the end; --step shows each step as it happens",
            );
        }
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(
                "--step waits for Enter before each step: stdin must be a terminal".into(),
            ));
        }
    }
    let pace = a
        .pace
        .as_deref()
        .map(|p| values::duration("--pace", p))
        .transpose()?;
    Ok(DemoPlan::Run(RunPlan {
        scenarios,
        pace,
        step: a.step,
        host: a.host,
        count,
        json,
    }))
}
