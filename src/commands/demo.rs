//! `tw-inspect demo`: runs the scenarios and prints their timelines.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::demo::model::{self, Verdict};
use crate::demo::netns::{self, Isolation};
use crate::demo::sock;
use crate::demo::timeline::{self, Ctx};
use crate::exit::Exit;
use crate::plan::DemoPlan;
use crate::plan::demo::RunPlan;

pub fn run(plan: &DemoPlan) -> Result<ExitCode> {
    match plan {
        DemoPlan::List { scenarios, json } => {
            let mut out = io::stdout().lock();
            if *json {
                let list: Vec<_> = scenarios
                    .iter()
                    .map(|s| serde_json::json!({"name": s.name, "claim": s.claim}))
                    .collect();
                crate::render::json::write(&mut out, &list)?;
            } else {
                for s in scenarios {
                    writeln!(out, "{:<13} {}", s.name, s.claim)?;
                }
            }
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
        eprintln!("tw-inspect: {n}");
    }
    let ctx = Ctx {
        pace,
        step: plan.step,
        live: !json,
        private_ns: iso.is_private(),
        count: plan.count,
    };

    let mut results = Vec::new();
    for s in &plan.scenarios {
        if ctx.live {
            timeline::print_header(s.name, s.claim);
        }
        let r = (s.run)(&ctx).with_context(|| format!("scenario {}", s.name))?;
        if ctx.live {
            let mut out = io::stdout().lock();
            writeln!(out, "=> {}: {}", r.verdict.label(), r.summary)?;
            out.flush()?;
        }
        results.push(r);
    }
    if json {
        let doc = model::to_json(iso.name(), note.as_deref(), &results);
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        out.flush()?;
    } else {
        let n = |v| results.iter().filter(|r| r.verdict == v).count();
        println!(
            "\n{} confirmed, {} contradicted, {} skipped ({})",
            n(Verdict::Confirmed),
            n(Verdict::Contradicted),
            n(Verdict::Skipped),
            if iso.is_private() {
                "in a private network namespace"
            } else {
                "on the host's loopback"
            }
        );
    }
    let bad = results.iter().any(|r| r.verdict == Verdict::Contradicted);
    Ok(if bad {
        Exit::Failure.into()
    } else {
        Exit::Ok.into()
    })
}
