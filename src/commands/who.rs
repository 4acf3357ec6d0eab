//! `tw-inspect who`: which processes close connections first, and so make TIME_WAIT.
//!
//! Records `sock:inet_sock_set_state` in a private tracing instance for the
//! duration (or until SIGINT/SIGTERM), then dumps TIME_WAIT sockets over
//! sock_diag and matches them to the closes recorded. `list --by process`
//! runs the same plan with list's filters.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::diag::{self, Options};
use crate::exit::Exit;
use crate::output::Output;
use crate::plan::WhoPlan;
use crate::plan::who::Format;
use crate::render::who::{WhoFormat, WhoRender};
use crate::render::{self, Style};
use crate::socket::SocketRecord;
use crate::trace::attribute::WhoReport;
use crate::trace::session;

pub fn run(plan: &WhoPlan) -> Result<ExitCode> {
    let mut out = Output::open(plan.output.path())?;
    let tty = out.is_terminal();
    let style = Style::new(plan.color.enabled(tty)).wrapped(render::wrap_width(tty));
    let session::Recording { mut attr, elapsed } = session::record(plan.duration, plan.interval)?;

    let tw = diag::collect(&plan.query, Options::default(), Vec::<SocketRecord>::new)
        .context("reading TIME_WAIT sockets from the kernel")?;
    attr.match_time_wait(&tw.sink);

    let top = plan.top as usize;
    let report = WhoReport::build(&attr, elapsed.as_secs_f64(), top);
    let (format, all) = match plan.format {
        Format::Table => (WhoFormat::Table, None),
        Format::Json => (WhoFormat::Json, None),
        // Per command over every process, not only the top ones.
        Format::Prometheus => (
            WhoFormat::Prometheus,
            Some(WhoReport::build(&attr, elapsed.as_secs_f64(), 0)),
        ),
    };
    let all = all.as_ref().map_or(&[][..], |a| &a.processes[..]);
    let how = WhoRender { format, style, top };
    crate::render::who::write(&mut out, &report, all, how)?;
    out.finish()?;
    Ok(Exit::Ok.into())
}
