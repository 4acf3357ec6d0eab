//! `tw-inspect demo`: runs the scenarios and prints their timelines.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::demo::model::Verdict;
use crate::demo::netns::{self, Isolation};
use crate::demo::sock;
use crate::demo::timeline::{Ctx, Observer};
use crate::exit::Exit;
use crate::plan::DemoPlan;
use crate::plan::demo::RunPlan;
use crate::render::demo::{self as show, DemoFormat, Live};

pub fn run(plan: &DemoPlan) -> Result<ExitCode> {
    match plan {
        DemoPlan::List { scenarios, json } => {
            let format = if *json {
                DemoFormat::Json
            } else {
                DemoFormat::Table
            };
            let mut out = io::stdout().lock();
            show::list(&mut out, scenarios, format)?;
            out.flush()?;
            Ok(Exit::Ok.into())
        }
        DemoPlan::Run(p) => run_scenarios(p),
    }
}

fn run_scenarios(plan: &RunPlan) -> Result<ExitCode> {
    let json = plan.json;
    let pace = match plan.pace {
        Some(p) => p,
        None if io::stdout().is_terminal() && !json => Duration::from_secs(1),
        None => Duration::ZERO,
    };
    // Entering a user namespace requires a single-threaded process: before
    // the signal watcher's thread exists.
    let iso = if plan.host {
        Isolation::Host { reason: None }
    } else {
        netns::enter_private()
    };
    sock::install_signal_cleanup().context("installing the signal watcher")?;
    let note = iso.note();
    if let Some(n) = &note {
        crate::output::note(n);
    }
    // The table is written as the scenarios run; JSON once at the end.
    let live = (!json).then(|| Live::new(io::stdout()));
    let ctx = Ctx {
        pace,
        step: plan.step,
        observer: live.as_ref().map(|l| l as &dyn Observer),
        private_ns: iso.is_private(),
        count: plan.count,
    };

    let mut results = Vec::new();
    for s in &plan.scenarios {
        if let Some(live) = &live {
            live.header(s.name, s.claim)?;
        }
        let r = (s.run)(&ctx).with_context(|| format!("scenario {}", s.name))?;
        if let Some(live) = &live {
            live.verdict(&r)?;
        }
        results.push(r);
    }
    match &live {
        Some(live) => live.summary(&results, iso.is_private())?,
        None => {
            let mut out = io::stdout().lock();
            show::json(&mut out, iso.name(), note.as_deref(), &results)?;
            out.flush()?;
        }
    }
    let bad = results.iter().any(|r| r.verdict == Verdict::Contradicted);
    Ok(if bad {
        Exit::Failure.into()
    } else {
        Exit::Ok.into()
    })
}
