//! `tw-inspect demo`: runs the scenarios and prints their timelines.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::{ColorChoice, DemoArgs, Format};
use crate::config;
use crate::demo::model::{self, Verdict};
use crate::demo::netns::{self, Isolation};
use crate::demo::timeline::{self, Ctx};
use crate::demo::{self, Scenario, sock};
use crate::exit::{Exit, usage};

/// The largest `--count`: one peer port offers about 28,000 ephemeral ports.
const MAX_COUNT: u32 = 25_000;

pub fn run(args: &DemoArgs, _color: ColorChoice) -> Result<ExitCode> {
    // Checked first, and before any thread exists: entering a user namespace
    // requires a single-threaded process.
    let chosen = choose(args)?;
    if args.list {
        let mut out = io::stdout().lock();
        for s in demo::SCENARIOS {
            writeln!(out, "{:<13} {}", s.name, s.claim)?;
        }
        out.flush()?;
        return Ok(Exit::Ok.into());
    }
    let json = match args.format {
        Format::Table => false,
        Format::Json => true,
        other => {
            return usage(format!(
                "--format: '{}' is not available for demo; valid: table, json",
                format_name(other)
            ));
        }
    };
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
    let ctx = Ctx {
        pace,
        step: args.step,
        live: !json,
        private_ns: iso.is_private(),
        count: args.count,
    };

    let mut results = Vec::new();
    for s in &chosen {
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
