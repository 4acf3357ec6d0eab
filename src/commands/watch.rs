//! `list --watch`: sample again every INTERVAL and show what changed.
//!
//! The TIME_WAIT arrival rate comes from socket cookies: a socket keeps its
//! cookie from ESTABLISHED to TIME_WAIT, and TIME_WAIT lasts 60 s, so the
//! TIME_WAIT cookies not present in the previous sample are the sockets that
//! entered TIME_WAIT in between (exact while the interval is under 60 s).
//! Keeping the previous sample's cookies costs O(TIME_WAIT) memory.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::aggregate::Aggregate;
use crate::commands::list::CounterHistory;
use crate::exit::Exit;
use crate::host::counters::Counters;
use crate::host::identity::Resolver;
use crate::host::netns::{NetnsChoice, Scope, SkipReason};
use crate::output::Output;
use crate::plan::WatchPlan;
use crate::plan::list::{Format, Source, WatchMode};
use crate::render::watch::{Change, Counts, NsLine, Sample};
use crate::render::{self, Style};
use crate::sample::{self, Origin, Spec};
use crate::signals::{self, OnSignal};
use crate::state::{StateSet, TcpState};

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn counts(agg: &Aggregate, counted: StateSet) -> Counts {
    Counts {
        counts: agg.states,
        counted,
    }
}

/// Namespaces come and go (pods): with `--all-netns` they are found again for
/// every sample (and none is held open, which would keep a dead one alive).
/// `names` keeps identities by inode, so only new namespaces are looked up in
/// the runtimes' files.
fn rescope(scope: &mut Scope, choice: &NetnsChoice, n: u64, names: &mut Resolver) -> Result<()> {
    if n > 0 && *choice == NetnsChoice::All {
        *scope = Scope::resolve(choice, names)?;
        for w in names.take_warnings() {
            crate::output::warn(&w);
        }
    }
    Ok(())
}

pub fn run(plan: &WatchPlan) -> Result<ExitCode> {
    signals::install(OnSignal::Stop).context("installing the signal watcher")?;
    match &plan.mode {
        WatchMode::Rewrite(list) => {
            let Source::Live(choice) = &list.source else {
                unreachable!("the plan watches the kernel only")
            };
            let path = list.output.path().expect("rewrite mode has a file");
            let mut names = Resolver::new();
            let mut scope = super::scope(choice, &mut names)?;
            let mut next = Instant::now();
            let mut n = 0;
            let mut history = CounterHistory::new();
            loop {
                rescope(&mut scope, choice, n, &mut names)?;
                let out = Output::open(Some(path))?;
                crate::commands::list::publish(
                    list,
                    &Origin::Live(&scope),
                    None,
                    out,
                    &mut history,
                )?;
                n += 1;
                if plan.count.is_some_and(|c| n >= c) {
                    break;
                }
                next = (next + plan.interval).max(Instant::now());
                if !signals::sleep_until(next) {
                    break;
                }
            }
        }
        WatchMode::Stream {
            netns,
            spec,
            format,
            color,
        } => stream(plan, netns, spec, *format, color.enabled(terminal(*format)))?,
    }
    Ok(Exit::Ok.into())
}

fn terminal(format: Format) -> bool {
    std::io::stdout().is_terminal() && format == Format::Table
}

fn stream(
    plan: &WatchPlan,
    choice: &NetnsChoice,
    spec: &Spec,
    format: Format,
    color: bool,
) -> Result<()> {
    let mut names = Resolver::new();
    let mut scope = super::scope(choice, &mut names)?;
    // A namespace skipped for the same reason sample after sample is said once.
    let mut warned: HashSet<(String, SkipReason)> = HashSet::new();
    let counted = spec.query.states;
    let redraw = terminal(format);
    let style = Style::new(color);
    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
    let mut prev: Option<(Instant, Counts, HashSet<u64>, Option<Counters>)> = None;
    let mut next = Instant::now();
    let mut n: u64 = 0;
    loop {
        rescope(&mut scope, choice, n, &mut names)?;
        let ran = sample::collect_scope(&scope, spec)?;
        sample::warn_skipped(
            ran.skipped
                .iter()
                .filter(|s| warned.insert((s.netns.clone(), s.reason))),
        );
        let samples = &ran.results;
        let at = Instant::now();
        let time = unix_now();
        n += 1;
        let total = sample::total(samples, spec);
        let mut cookies = HashSet::new();
        for (_, s) in samples {
            cookies.extend(s.tw_cookies.iter().copied());
        }
        let now = counts(&total, counted);
        let kernel = sample::total_counters(samples);
        let (dt, new) = match &prev {
            None => (None, None),
            Some((t0, _, k0, _)) => (
                Some(at.duration_since(*t0).as_secs_f64()),
                counted
                    .contains(TcpState::TimeWait)
                    .then(|| cookies.iter().filter(|c| !k0.contains(c)).count() as u64),
            ),
        };
        let per_s = |k: Option<u64>| match (k, dt) {
            (Some(k), Some(d)) if d > 0.0 => Some(k as f64 / d),
            _ => None,
        };
        let rate = per_s(new);
        // The kernel's own count of sockets entering TIME_WAIT (TcpExtTW),
        // whatever --state says: it is not a socket count.
        let growth = match (&prev, &kernel) {
            (Some((_, _, _, Some(before))), Some(now)) => Some(now.growth_since(before)),
            _ => None,
        };
        let entered = growth.as_ref().and_then(|g| g.get("TcpExtTW"));
        let line = Sample {
            time,
            sample: n,
            interval_s: dt,
            total: total.total,
            states: &now,
            change: prev
                .as_ref()
                .map(|(_, before, _, _)| Change { now: &now, before }),
            time_wait_new: new,
            time_wait_rate: rate,
            time_wait_entered: entered,
            time_wait_entered_rate: per_s(entered),
            counters_change: growth.as_ref(),
            namespaces: if scope.labelled() {
                samples
                    .iter()
                    .map(|(id, s)| NsLine {
                        netns: id.as_ref().map(|i| i.name.clone()).unwrap_or_default(),
                        identity: id.clone(),
                        total: s.agg.total,
                        states: counts(&s.agg, counted),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            skipped: &ran.skipped,
        };
        match format {
            // A JSON object per line is NDJSON already.
            Format::Json | Format::Ndjson => render::watch::json_line(&mut w, &line)?,
            Format::Csv => render::watch::csv_row(&mut w, &line)?,
            _ if redraw => {
                render::watch::screen(&mut w, &line, plan.interval.as_secs_f64(), style)?
            }
            _ => render::watch::line(&mut w, &line)?,
        }
        w.flush()?;
        prev = Some((at, now, cookies, kernel));
        if plan.count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        next = (next + plan.interval).max(Instant::now());
        if !signals::sleep_until(next) {
            return Ok(());
        }
    }
}
