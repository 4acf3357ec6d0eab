//! `tw-inspect list`.

use anyhow::{Context, Result};

use crate::aggregate::Aggregate;
use crate::cli::{ColorChoice, Format, ListArgs};
use crate::config;
use crate::diag::{self, Collection, Options, Sink};
use crate::exit::usage;
use crate::filter::Query;
use crate::output::Output;
use crate::render::{self, Style};
use crate::report::ListReport;
use crate::snapshot::{self, Snapshot};
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
    if args.load.is_some() && args.processes {
        return usage("--processes looks up owners on this host: not available with --load");
    }
    if args.save.is_some() && args.save == args.output {
        return usage("--save and --output name the same file: give two different files");
    }
    // A snapshot replaces the kernel as the source; --save keeps the datagrams.
    let snap = args.load.as_deref().map(snapshot::load).transpose()?;
    let save_to = args.save.as_deref().map(snapshot::create).transpose()?;
    let mut out = Output::open(args.output.as_deref())?;
    let style = Style::resolve(color, out.is_terminal());

    let opts = Options {
        keep_raw: save_to.is_some(),
    };
    let (mut report, raw, elapsed) = if args.sockets {
        let c = gather(&query, opts, snap.as_ref(), || {
            (Aggregate::new(by, group_states), Vec::<SocketRecord>::new())
        })?;
        let ms = c.elapsed.as_secs_f64() * 1e3;
        let r = ListReport::new(&c.sink.0, args.top, Some(&c.sink.1), ms);
        (r, c.raw, c.elapsed)
    } else {
        let c = gather(&query, opts, snap.as_ref(), || {
            Aggregate::new(by, group_states)
        })?;
        let ms = c.elapsed.as_secs_f64() * 1e3;
        (
            ListReport::new(&c.sink, args.top, None, ms),
            c.raw,
            c.elapsed,
        )
    };
    if let Some(s) = &snap {
        report.source = "snapshot".into();
        report.snapshot = Some(s.info());
    }
    if let Some(file) = save_to {
        snapshot::save(file, &query, &raw, elapsed)?;
    }

    match args.format {
        Format::Table => render::table::list(&mut out, &report, style, args.explain)?,
        Format::Json => render::json::write(&mut out, &report)?,
        Format::Csv => render::csv::list(&mut out, &report, args.explain)?,
        Format::Prometheus => return usage("--format prometheus is not available yet"),
    }
    out.finish()
}

/// Sockets from the snapshot when one is loaded, from the kernel otherwise.
fn gather<S: Sink>(
    query: &Query,
    opts: Options,
    snap: Option<&Snapshot>,
    make: impl Fn() -> S + Sync,
) -> Result<Collection<S>> {
    match snap {
        Some(s) => s.collect(query, make),
        None => diag::collect(query, opts, make).context("reading sockets from the kernel"),
    }
}
