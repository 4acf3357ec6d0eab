//! `tw-inspect list`.

use std::io::Write;

use anyhow::Result;

use crate::aggregate::{Aggregate, GroupBy};
use crate::cli::{ColorChoice, Format, GroupKeyArg, ListArgs};
use crate::config;
use crate::diagnose::{self, Inputs};
use crate::exit::usage;
use crate::host::netns::Scope;
use crate::host::procs;
use crate::host::sysctl::Sysctls;
use crate::output::Output;
use crate::render::list::{ListFormat, ListRender};
use crate::render::{self, Style};
use crate::report::{Counted, ListDocument, ListReport, NamespaceReport, NetnsListReport};
use crate::sample::{self, Sample, Samples, Spec};
use crate::snapshot::{self, Snapshot};
use crate::state::{StateSet, TcpState};
use std::collections::HashSet;

pub fn run(args: &ListArgs, color: ColorChoice) -> Result<()> {
    // Process attribution traces closes first; it lives with `who`.
    if args.by == Some(crate::cli::GroupKeyArg::Process) {
        return crate::commands::who::list_by_process(args, color).map(|_| ());
    }
    let query = config::query(&args.filter)?;
    let (mut by, mut group_states) = config::grouping(args.by, &args.filter, &query);
    if args.processes && !args.sockets {
        return usage("--processes shows owners per socket: add --sockets");
    }
    if args.format == Format::Prometheus && args.sockets {
        return usage("--format prometheus reports counts, not sockets: drop --sockets");
    }
    if args.format == Format::Prometheus {
        if args.by.is_some_and(|b| b != GroupKeyArg::PeerAndPort) {
            return usage(
                "--format prometheus groups TIME_WAIT by peer+port only: drop --by or use --by peer+port",
            );
        }
        (by, group_states) = (
            GroupBy::PEER_PORT_PAIR,
            StateSet::from_states(&[TcpState::TimeWait]),
        );
    }
    if args.load.is_some() && args.processes {
        return usage("--processes looks up owners on this host: not available with --load");
    }
    if args.save.is_some() && args.save == args.output {
        return usage("--save and --output name the same file: give two different files");
    }
    let diagnose = args.watch.is_none() && args.format != Format::Prometheus;
    let spec = Spec {
        query,
        by,
        group_states,
        sockets: args.sockets,
        pressure: args.format == Format::Prometheus || diagnose,
        tw_cookies: false,
        keep_raw: args.save.is_some(),
        diagnose,
    };
    if let Some(interval) = &args.watch {
        return crate::commands::watch::run(
            args,
            spec,
            config::duration("--watch", interval)?,
            color,
        );
    }
    // A snapshot replaces the kernel as the source; --save keeps the datagrams.
    let snap = args.load.as_deref().map(snapshot::load).transpose()?;
    let save_to = args.save.as_deref().map(snapshot::create).transpose()?;
    let mut out = Output::open(args.output.as_deref())?;
    let style = Style::resolve(color, out.is_terminal());
    let scope;
    let source = match &snap {
        Some(s) => Source::Snapshot(s),
        None => {
            scope = Scope::from_flags(&args.filter)?;
            Source::Live(&scope)
        }
    };
    let mut samples = match collect_or_down(&mut out, args, &spec, &source)? {
        Ok(s) => s,
        Err(e) => {
            out.finish()?;
            return Err(e);
        }
    };
    if let Some(file) = save_to {
        let captured = samples.first_mut().and_then(|(_, s)| s.capture.take());
        snapshot::save(file, &captured.expect("keep_raw was set"))?;
    }
    write_report(&mut out, args, &spec, &source, &samples, style)?;
    out.finish()
}

/// Collects from `source`. When that fails in Prometheus format, writes
/// `tw_inspect_up 0` and returns the error inside `Ok`, so the caller can
/// publish the file before failing.
pub fn collect_or_down(
    w: &mut dyn Write,
    args: &ListArgs,
    spec: &Spec,
    source: &Source,
) -> Result<Result<Samples>> {
    match source.collect(spec) {
        Ok(s) => Ok(Ok(s)),
        Err(e) if args.format == Format::Prometheus => {
            render::prometheus::write_down(w)?;
            Ok(Err(e))
        }
        Err(e) => Err(e),
    }
}

/// Where the sockets come from.
pub enum Source<'a> {
    /// The kernel, in one or more network namespaces.
    Live(&'a Scope),
    /// A file written by `--save` or `ss -D`.
    Snapshot(&'a Snapshot),
}

impl Source<'_> {
    pub fn collect(&self, spec: &Spec) -> Result<Samples> {
        match self {
            Source::Live(scope) => sample::collect_scope(scope, spec),
            Source::Snapshot(snap) => Ok(vec![(None, sample::from_snapshot(snap, spec)?)]),
        }
    }

    fn labelled(&self) -> bool {
        matches!(self, Source::Live(s) if s.labelled())
    }
}

/// Writes the report of `samples` (one per namespace) in the chosen format.
pub fn write_report(
    w: &mut dyn Write,
    args: &ListArgs,
    spec: &Spec,
    source: &Source,
    samples: &[(Option<String>, Sample)],
    style: Style,
) -> Result<()> {
    let prometheus = args.format == Format::Prometheus;
    let report = |s: &Sample| {
        let mut r = ListReport::new(
            &s.agg,
            args.top,
            s.sockets.as_deref(),
            s.elapsed.as_secs_f64() * 1e3,
            counted(spec, source, &s.agg),
        );
        r.source = s.source.into();
        if let Source::Snapshot(snap) = source {
            r.snapshot = Some(snap.info());
        }
        if prometheus {
            r = r.with_pressure(&s.pressure, s.ephemeral_ports, args.top);
        }
        if spec.diagnose {
            diagnose_into(&mut r, s, matches!(source, Source::Live(_)), args.processes);
        }
        r
    };
    let doc = if !source.labelled() {
        ListDocument::One(report(&samples[0].1))
    } else {
        let namespaces: Vec<NamespaceReport> = samples
            .iter()
            .map(|(label, s)| NamespaceReport {
                netns: label.clone().unwrap_or_default(),
                report: report(s),
            })
            .collect();
        let total_ms = samples
            .iter()
            .map(|(_, s)| s.elapsed.as_secs_f64() * 1e3)
            .sum();
        let mut total = ListReport::new(
            &sample::total(samples, spec),
            args.top,
            None,
            total_ms,
            Counted::asked(spec.query.states),
        );
        if args.sockets {
            total.sockets = Some(
                namespaces
                    .iter()
                    .flat_map(|n| n.report.sockets.clone().unwrap_or_default())
                    .collect(),
            );
        }
        ListDocument::Namespaces(NetnsListReport { total, namespaces })
    };
    let format = match args.format {
        Format::Table => ListFormat::Table,
        Format::Json => ListFormat::Json,
        Format::Csv => ListFormat::Csv,
        Format::Prometheus => ListFormat::Prometheus,
    };
    let how = ListRender {
        format,
        style,
        explain: args.explain,
    };
    render::list::write(w, &doc, how)
}

/// Which states a report counts: live, those asked of the kernel; from a
/// `--save` file, those asked that it captured; from an `ss -D` dump, which
/// does not record what it asked for, those asked that it holds sockets of.
fn counted(spec: &Spec, source: &Source, agg: &Aggregate) -> Counted {
    let asked = spec.query.states;
    let Source::Snapshot(snap) = source else {
        return Counted::asked(asked);
    };
    match &snap.meta {
        Some(m) => {
            let mut captured = StateSet::EMPTY;
            for st in m.capture.states.iter().filter_map(|n| TcpState::parse(n)) {
                captured.insert(st);
            }
            Counted::captured(StateSet(asked.0 & captured.0))
        }
        None => Counted::found(StateSet::from_states(
            &asked
                .iter()
                .filter(|s| agg.count(*s) > 0)
                .collect::<Vec<_>>(),
        )),
    }
}

/// Fills the diagnoses, and with `-p` the socket owners. Owners come from this
/// host's /proc, so only for live sockets, and only when CLOSE_WAIT sockets or
/// `-p` need them.
fn diagnose_into(r: &mut ListReport, s: &Sample, live: bool, processes: bool) {
    let mut wanted: HashSet<u32> = HashSet::new();
    if live {
        wanted.extend(s.teardown.close_wait_inodes.iter().filter(|i| **i != 0));
        if processes && let Some(rows) = &r.sockets {
            wanted.extend(rows.iter().map(|row| row.inode).filter(|i| *i != 0));
        }
    }
    let owners = procs::owners(&wanted);
    if processes {
        r.processes = true;
        for row in r.sockets.iter_mut().flatten() {
            row.process = owners.get(&row.inode).cloned();
        }
    }
    let mut teardown = s.teardown.clone();
    for l in s.facts.listening.iter().flatten() {
        teardown.listen_ports.insert(l.port);
    }
    let close_wait = teardown.close_wait_owners(&owners);
    let server_time_wait = match s.facts.listening {
        Some(_) => teardown.server_time_wait(),
        None => Vec::new(),
    };
    // An `ss -D` dump has no sysctls: only the diagnoses that need none.
    let none = Sysctls::default();
    r.diagnoses = diagnose::diagnose(&Inputs {
        agg: &s.agg,
        pressure: s.facts.sysctls.as_ref().map(|_| &s.pressure),
        sysctls: s.facts.sysctls.as_ref().unwrap_or(&none),
        close_wait: &close_wait,
        server_time_wait: &server_time_wait,
    });
}
