//! `tw-inspect list`.

use anyhow::{Context, Result};

use crate::aggregate::Aggregate;
use crate::cli::{ColorChoice, Format, ListArgs};
use crate::config;
use crate::diag::{self, Options};
use crate::exit::usage;
use crate::output::Output;
use crate::render::{self, Style};
use crate::report::ListReport;
use crate::socket::SocketRecord;

pub fn run(args: &ListArgs, color: ColorChoice) -> Result<()> {
    let query = config::query(&args.filter)?;
    let (by, group_states) = config::grouping(args.by, &args.filter, &query);
    if args.processes && !args.sockets {
        return usage("--processes shows owners per socket: add --sockets");
    }
    if args.format == Format::Prometheus && args.sockets {
        return usage("--format prometheus reports counts, not sockets: drop --sockets");
    }
    let mut out = Output::open(args.output.as_deref())?;
    let style = Style::resolve(color, out.is_terminal());

    let opts = Options::default();
    // Falls back to /proc/net/tcp when sock_diag is refused (see diag::procfs).
    let (mut report, source) = if args.sockets {
        let (c, src) = diag::collect_any(&query, opts, || (Aggregate::new(by, group_states), Vec::<SocketRecord>::new()))
            .context("reading sockets from the kernel")?;
        (ListReport::new(&c.sink.0, args.top, Some(&c.sink.1), c.elapsed.as_secs_f64() * 1e3), src)
    } else {
        let (c, src) = diag::collect_any(&query, opts, || Aggregate::new(by, group_states))
            .context("reading sockets from the kernel")?;
        (ListReport::new(&c.sink, args.top, None, c.elapsed.as_secs_f64() * 1e3), src)
    };
    if let Some(w) = source.warning() {
        eprintln!("tw-inspect: warning: {w}");
    }
    report.source = source.name().into();

    match args.format {
        Format::Table => render::table::list(&mut out, &report, style, args.explain)?,
        Format::Json => render::json::write(&mut out, &report)?,
        Format::Csv => render::csv::list(&mut out, &report, args.explain)?,
        Format::Prometheus => return usage("--format prometheus is not available yet"),
    }
    out.finish()
}
