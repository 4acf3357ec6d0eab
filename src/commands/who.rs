//! `tw-inspect who`: which processes close connections first, and so make TIME_WAIT.
//!
//! Records `sock:inet_sock_set_state` in a private tracing instance for the
//! duration (or until SIGINT/SIGTERM), then dumps TIME_WAIT sockets over
//! sock_diag and matches them to the closes recorded.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::{ColorChoice, Format, ListArgs, WhoArgs};
use crate::config;
use crate::diag::{self, Options};
use crate::exit::{Exit, usage};
use crate::filter::Query;
use crate::output::Output;
use crate::render::Style;
use crate::render::who::{WhoFormat, WhoRender};
use crate::socket::SocketRecord;
use crate::state::{StateSet, TcpState};
use crate::trace::attribute::WhoReport;
use crate::trace::{self as tr};

pub fn run(args: &WhoArgs, color: ColorChoice) -> Result<ExitCode> {
    let duration = config::duration("--duration", &args.duration)?;
    let interval = match &args.interval {
        None => None,
        Some(s) => match config::duration("--interval", s)? {
            d if d.is_zero() => return usage(format!("--interval '{s}' must be greater than 0")),
            d => Some(d),
        },
    };
    let query = Query {
        ipv4: true,
        ipv6: true,
        states: time_wait(),
        conds: Vec::new(),
    };
    report(
        duration,
        interval,
        &query,
        args.format,
        args.top as usize,
        args.output.as_deref(),
        color,
    )
}

/// `list --by process --trace D`: the same attribution, restricted to the
/// TIME_WAIT sockets that list's filters select.
pub fn list_by_process(args: &ListArgs, color: ColorChoice) -> Result<ExitCode> {
    let Some(d) = &args.trace else {
        return usage(
            "--by process needs --trace DURATION (root): TIME_WAIT sockets have no owner, so closes must be traced first, e.g. --trace 30s",
        );
    };
    let duration = config::duration("--trace", d)?;
    if duration.is_zero() {
        return usage(format!("--trace '{d}' must be greater than 0"));
    }
    let mut query = config::query(&args.filter)?;
    if args.filter.state.is_some() && !query.states.contains(TcpState::TimeWait) {
        return usage("--by process attributes TIME_WAIT sockets: --state must include time-wait");
    }
    query.states = time_wait();
    report(
        duration,
        None,
        &query,
        args.format,
        args.top as usize,
        args.output.as_deref(),
        color,
    )
}

fn time_wait() -> StateSet {
    StateSet::from_states(&[TcpState::TimeWait])
}

fn report(
    duration: Duration,
    interval: Option<Duration>,
    query: &Query,
    format: Format,
    top: usize,
    output: Option<&std::path::Path>,
    color: ColorChoice,
) -> Result<ExitCode> {
    if matches!(format, Format::Csv) {
        return usage(
            "--format csv is not available for process attribution: use table, json or prometheus",
        );
    }
    let mut out = Output::open(output)?;
    let style = Style::resolve(color, out.is_terminal());

    let tr::session::Recording { mut attr, elapsed } = tr::session::record(duration, interval)?;

    let tw = diag::collect(query, Options::default(), Vec::<SocketRecord>::new)
        .context("reading TIME_WAIT sockets from the kernel")?;
    attr.match_time_wait(&tw.sink);

    let report = WhoReport::build(&attr, elapsed.as_secs_f64(), top);
    let (format, all) = match format {
        Format::Table => (WhoFormat::Table, None),
        Format::Json => (WhoFormat::Json, None),
        // Per command over every process, not only the top ones.
        Format::Prometheus => (
            WhoFormat::Prometheus,
            Some(WhoReport::build(&attr, elapsed.as_secs_f64(), 0)),
        ),
        Format::Csv => unreachable!("refused above"),
    };
    let all = all.as_ref().map_or(&[][..], |a| &a.processes[..]);
    let how = WhoRender { format, style, top };
    crate::render::who::write(&mut out, &report, all, how)?;
    out.finish()?;
    Ok(Exit::Ok.into())
}
