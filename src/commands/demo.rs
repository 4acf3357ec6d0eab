//! `tw-inspect demo`: runs the scenarios and prints their timelines.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::{ColorChoice, DemoArgs, Format};
use crate::config;
use crate::demo::model::Verdict;
use crate::demo::netns::{self, Isolation};
use crate::demo::timeline::{Ctx, Observer};
use crate::demo::{self, Scenario, sock};
use crate::exit::{Exit, usage};
use crate::render::demo::{self as show, DemoFormat, Live};

/// The largest `--count`: one peer port offers about 28,000 ephemeral ports.
const MAX_COUNT: u32 = 25_000;

pub fn run(args: &DemoArgs, _color: ColorChoice) -> Result<ExitCode> {
    // Checked first, and before any thread exists: entering a user namespace
    // requires a single-threaded process.
    let chosen = choose(args)?;
    let format = match args.format {
        Format::Table => DemoFormat::Table,
        Format::Json => DemoFormat::Json,
        other => {
            return usage(format!(
                "--format: '{}' is not available for demo; valid: table, json",
                format_name(other)
            ));
        }
    };
    let json = format == DemoFormat::Json;
    if args.list {
        let mut out = io::stdout().lock();
        show::list(&mut out, demo::SCENARIOS, format)?;
        out.flush()?;
        return Ok(Exit::Ok.into());
    }
    if args.count == 0 || args.count > MAX_COUNT {
        return usage(format!(
            "--count: {} is out of range; valid: 1-{MAX_COUNT}",
            args.count
        ));
    }
    let pace = match &args.pace {
        Some(p) => config::duration("--pace", p)?,
        None if io::stdout().is_terminal() && !json => Duration::from_secs(1),
        None => Duration::ZERO,
    };

    let iso = if args.host {
        Isolation::Host { reason: None }
    } else {
        netns::enter_private()
    };
    sock::install_signal_cleanup().context("installing the signal handler")?;
    let note = iso.note();
    if let Some(n) = &note {
        eprintln!("tw-inspect: {n}");
    }
    // The table is written as the scenarios run; JSON once at the end.
    let live = (!json).then(|| Live::new(io::stdout()));
    let ctx = Ctx {
        pace,
        step: args.step,
        observer: live.as_ref().map(|l| l as &dyn Observer),
        private_ns: iso.is_private(),
        count: args.count,
    };

    let mut results = Vec::new();
    for s in &chosen {
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

fn choose(args: &DemoArgs) -> Result<Vec<&'static Scenario>> {
    if args.scenarios.is_empty() {
        return Ok(demo::SCENARIOS.iter().collect());
    }
    let mut out: Vec<&'static Scenario> = Vec::new();
    for name in &args.scenarios {
        match demo::find(name) {
            Some(s) if !out.iter().any(|o| o.name == s.name) => out.push(s),
            Some(_) => {}
            None => {
                return usage(format!(
                    "unknown scenario '{name}'; valid: {}",
                    demo::names()
                ));
            }
        }
    }
    Ok(out)
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Table => "table",
        Format::Json => "json",
        Format::Csv => "csv",
        Format::Prometheus => "prometheus",
    }
}
