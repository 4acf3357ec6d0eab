//! `tw-inspect list`.

use std::io::Write;

use anyhow::Result;

use crate::aggregate::GroupBy;
use crate::cli::{ColorChoice, Format, GroupKeyArg, ListArgs};
use crate::config;
use crate::exit::usage;
use crate::netns::Scope;
use crate::output::Output;
use crate::render::{self, Style};
use crate::report::{ListReport, NamespaceReport, NetnsListReport};
use crate::sample::{self, Sample, Spec};
use crate::state::{StateSet, TcpState};

pub fn run(args: &ListArgs, color: ColorChoice) -> Result<()> {
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
    let spec = Spec {
        query,
        by,
        group_states,
        sockets: args.sockets,
        pressure: args.format == Format::Prometheus,
        tw_cookies: false,
    };
    if let Some(interval) = &args.watch {
        return crate::watch::run(args, spec, config::duration("--watch", interval)?, color);
    }
    let mut out = Output::open(args.output.as_deref())?;
    let style = Style::resolve(color, out.is_terminal());
    let scope = Scope::from_flags(&args.filter)?;
    match write_report(&mut out, args, &spec, &scope, style)? {
        None => out.finish(),
        // Prometheus: the file says `tw_inspect_up 0`, and the run still fails.
        Some(err) => {
            out.finish()?;
            Err(err)
        }
    }
}

/// Collects once in every namespace of `scope` and writes the report in the
/// chosen format. A collection failure in Prometheus format writes
/// `tw_inspect_up 0` and is returned as `Ok(Some(err))`, so the caller can
/// publish that before failing.
pub fn write_report(
    w: &mut dyn Write,
    args: &ListArgs,
    spec: &Spec,
    scope: &Scope,
    style: Style,
) -> Result<Option<anyhow::Error>> {
    let samples = match sample::collect_scope(scope, spec) {
        Ok(s) => s,
        Err(e) if args.format == Format::Prometheus => {
            render::prometheus::write_down(w)?;
            return Ok(Some(e));
        }
        Err(e) => return Err(e),
    };
    let report = |s: &Sample| {
        ListReport::new(
            &s.agg,
            args.top,
            s.sockets.as_deref(),
            s.elapsed.as_secs_f64() * 1e3,
        )
    };
    if args.format == Format::Prometheus {
        let items: Vec<_> = samples
            .iter()
            .map(|(label, s)| render::prometheus::NsMetrics {
                netns: label.as_deref(),
                agg: &s.agg,
                pressure: s.ephemeral_ports.map(|p| (&s.pressure, p)),
                collect_seconds: s.elapsed.as_secs_f64(),
            })
            .collect();
        render::prometheus::write(w, &items, args.top)?;
        return Ok(None);
    }
    if !scope.labelled() {
        let r = report(&samples[0].1);
        match args.format {
            Format::Table => render::table::list(w, &r, style, args.explain)?,
            Format::Json => render::json::write(w, &r)?,
            _ => render::csv::list(w, &r, args.explain)?,
        }
        return Ok(None);
    }
    // Several namespaces: each one's report, then the totals.
    let per_ns: Vec<NamespaceReport> = samples
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
    let mut total = ListReport::new(&sample::total(&samples, spec), args.top, None, total_ms);
    if args.sockets {
        total.sockets = Some(
            per_ns
                .iter()
                .flat_map(|n| n.report.sockets.clone().unwrap_or_default())
                .collect(),
        );
    }
    match args.format {
        Format::Json => render::json::write(
            w,
            &NetnsListReport {
                total,
                namespaces: per_ns,
            },
        )?,
        Format::Table => {
            for (i, n) in per_ns.iter().enumerate() {
                if i > 0 {
                    writeln!(w)?;
                }
                writeln!(w, "Network namespace {}", n.netns)?;
                render::table::list(w, &n.report, style, args.explain)?;
            }
            // One namespace: its report is the total.
            if per_ns.len() > 1 {
                writeln!(w)?;
                writeln!(w, "All {} network namespaces", per_ns.len())?;
                render::table::list(w, &total, style, args.explain)?;
            }
        }
        _ => {
            // One CSV document with a leading `netns` column; an empty netns marks the totals.
            let mut first = true;
            let rows = per_ns.iter().map(|n| (n.netns.as_str(), &n.report));
            let totals = (!args.sockets).then_some(("", &total));
            for (label, r) in rows.chain(totals) {
                let mut buf = Vec::new();
                render::csv::list(&mut buf, r, args.explain)?;
                let text = String::from_utf8_lossy(&buf);
                for (i, line) in text.lines().enumerate() {
                    if i == 0 {
                        if first {
                            writeln!(w, "netns,{line}")?;
                        }
                        continue;
                    }
                    writeln!(w, "{},{line}", render::csv::field(label))?;
                }
                first = false;
            }
        }
    }
    Ok(None)
}
