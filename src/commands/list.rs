//! `tw-inspect list`: collect once, aggregate, diagnose, render.

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use crate::diagnose::{self, Inputs};
use crate::exit::Exit;
use crate::host::identity::Resolver;
use crate::host::procs;
use crate::host::sysctl::Sysctls;
use crate::output::Output;
use crate::plan::ListPlan;
use crate::plan::list::{Format, Source};
use crate::render::list::{ListFormat, ListRender};
use crate::render::{self, Style};
use crate::report::{
    ConntrackReport, Counted, ListDocument, ListReport, NamespaceReport, NetnsListReport,
};
use crate::sample::{self, CtNotRead, CtSample, CtWant, Origin, Sample};
use crate::snapshot::{self, Snapshot};
use crate::state::{StateSet, TcpState};

pub fn run(plan: &ListPlan) -> Result<ExitCode> {
    let snap = match &plan.source {
        Source::Load(path) => Some(snapshot::load(path)?),
        Source::Live(_) => None,
    };
    // Opened before any work, so an unwritable destination fails first.
    let save_to = plan.save.as_deref().map(snapshot::create).transpose()?;
    let out = Output::open(plan.output.path())?;
    let scope;
    let origin = match (&plan.source, &snap) {
        (_, Some(s)) => Origin::Snapshot(s),
        (Source::Live(ns), None) => {
            scope = super::scope(ns, &mut Resolver::new())?;
            Origin::Live(&scope)
        }
        (Source::Load(_), None) => unreachable!("loaded above"),
    };
    publish(plan, &origin, save_to, out)?;
    Ok(Exit::Ok.into())
}

/// Collects once from `origin`, writes the report to `out` and finishes it
/// (a file is renamed into place). When collecting fails in Prometheus format,
/// `tw_inspect_up 0` is published first, so an alert fires instead of the
/// textfile going stale. Each sample of `--watch --output` is one of these.
pub fn publish(
    plan: &ListPlan,
    origin: &Origin,
    save_to: Option<Output>,
    mut out: Output,
) -> Result<()> {
    let tty = out.is_terminal();
    let style = Style::new(plan.color.enabled(tty)).wrapped(render::wrap_width(tty));
    let mut samples = match origin.collect(&plan.spec) {
        Ok(s) => s,
        Err(e) if plan.view.format == Format::Prometheus => {
            render::prometheus::write_down(&mut out)?;
            out.finish()?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    sample::warn_skipped(&samples.skipped);
    if let Some(file) = save_to {
        let captured = samples
            .results
            .first_mut()
            .and_then(|(_, s)| s.capture.take());
        snapshot::save(
            file,
            &captured.expect("the plan keeps raw datagrams for --save"),
        )?;
    }
    for (label, s) in &samples.results {
        if let Some(CtSample {
            entries: Err(CtNotRead::Failed(msg)),
            ..
        }) = &s.conntrack
        {
            let at = label
                .as_ref()
                .map(|l| format!(" (network namespace {})", l.name))
                .unwrap_or_default();
            crate::output::warn(&format!("{msg}{at}"));
        }
    }
    write_report(&mut out, plan, origin, &samples, style)?;
    out.finish()
}

/// The states a report may show counts for, and why: those asked of the
/// kernel; of a snapshot, those it captured; of an `ss -D` dump, which does
/// not record what was asked, only those found in it.
fn counted(plan: &ListPlan, origin: &Origin, s: &Sample) -> Counted {
    let asked = plan.spec.query.states;
    let Origin::Snapshot(snap) = origin else {
        return Counted::asked(asked);
    };
    match snap.info().captured_states {
        Some(names) => {
            let captured = names.iter().filter_map(|n| TcpState::parse(n));
            Counted::captured(StateSet(
                asked.0 & StateSet::from_states(&captured.collect::<Vec<_>>()).0,
            ))
        }
        None => Counted::found(StateSet::from_states(
            &asked
                .iter()
                .filter(|st| s.agg.count(*st) > 0)
                .collect::<Vec<_>>(),
        )),
    }
}

fn report(plan: &ListPlan, origin: &Origin, s: &Sample, snap: Option<&Snapshot>) -> ListReport {
    let rows = s.sockets.as_deref().map(|v| match plan.view.rows {
        Some(n) => &v[..v.len().min(n as usize)],
        None => v,
    });
    let mut r = ListReport::new(
        &s.agg,
        plan.view.top,
        rows,
        s.elapsed.as_secs_f64() * 1e3,
        counted(plan, origin, s),
    );
    r.source = s.source.into();
    r.snapshot = snap.map(Snapshot::info);
    if plan.view.format == Format::Prometheus {
        r = r.with_pressure(&s.pressure, s.ephemeral_ports, plan.view.top);
    }
    if plan.spec.diagnose {
        diagnose_into(
            &mut r,
            s,
            matches!(origin, Origin::Live(_)),
            plan.view.processes,
        );
    }
    if let Some(c) = &s.conntrack {
        r.conntrack = conntrack_report(c, &r, plan);
        if plan.spec.diagnose && r.conntrack.is_some() {
            let entries = c.entries.as_ref().ok();
            let socket_tw = r.states.get(TcpState::TimeWait);
            r.diagnoses
                .extend(diagnose::conntrack(&c.table, entries, socket_tw));
            r.diagnoses.sort_by_key(|d| std::cmp::Reverse(d.severity));
        }
    }
    r
}

/// The conntrack part of one namespace's report: always with `--conntrack`;
/// in the default view only when the table was found notable.
fn conntrack_report(c: &CtSample, r: &ListReport, plan: &ListPlan) -> Option<ConntrackReport> {
    let entries = match &c.entries {
        Ok(a) => Ok((a, c.elapsed.as_secs_f64() * 1e3)),
        Err(_)
            if plan.spec.conntrack == CtWant::Auto
                && !matches!(c.entries, Err(CtNotRead::Failed(_))) =>
        {
            return None;
        }
        Err(CtNotRead::NotInUse) if !c.table.loaded => {
            Err("conntrack not in use: nf_conntrack is not loaded in this kernel".to_string())
        }
        Err(CtNotRead::NotInUse) => Err(NOT_IN_USE.to_string()),
        Err(CtNotRead::NotNotable) => Err("entries not read".to_string()),
        Err(CtNotRead::Failed(msg)) => Err(msg.clone()),
    };
    Some(ConntrackReport::new(
        &c.table,
        entries,
        &r.states,
        plan.view.top,
    ))
}

/// What `list` says of a namespace whose conntrack table is empty.
pub const NOT_IN_USE: &str = "conntrack not in use in this namespace: its table is empty (no firewall or NAT rule here uses connection tracking, or nothing has matched one yet)";

/// Writes the report of `samples` (one per namespace) in the plan's format.
fn write_report(
    w: &mut dyn Write,
    plan: &ListPlan,
    origin: &Origin,
    samples: &sample::Samples,
    style: Style,
) -> Result<()> {
    let (samples, skipped) = (&samples.results[..], &samples.skipped);
    let view = &plan.view;
    let snap = match origin {
        Origin::Snapshot(s) => Some(*s),
        Origin::Live(_) => None,
    };
    let doc = if !origin.labelled() {
        ListDocument::One(report(plan, origin, &samples[0].1, snap))
    } else {
        // Several namespaces: each one's report, and the totals.
        let namespaces: Vec<NamespaceReport> = samples
            .iter()
            .map(|(id, s)| {
                let identity = id.clone().expect("a labelled origin names each namespace");
                NamespaceReport::new(identity, report(plan, origin, s, snap))
            })
            .collect();
        let total_ms = samples
            .iter()
            .map(|(_, s)| s.elapsed.as_secs_f64() * 1e3)
            .sum();
        let mut total = ListReport::new(
            &sample::total(samples, &plan.spec),
            view.top,
            None,
            total_ms,
            Counted::asked(plan.spec.query.states),
        );
        if plan.spec.sockets {
            total.sockets = Some(
                namespaces
                    .iter()
                    .flat_map(|n| n.report.sockets.clone().unwrap_or_default())
                    .collect(),
            );
        }
        ListDocument::Namespaces(NetnsListReport {
            total,
            namespaces,
            skipped: skipped.clone(),
        })
    };
    let format = match view.format {
        Format::Table => ListFormat::Table,
        Format::Json => ListFormat::Json,
        Format::Csv => ListFormat::Csv,
        Format::Prometheus => ListFormat::Prometheus,
    };
    let how = ListRender {
        format,
        style,
        explain: view.explain,
    };
    render::list::write(w, &doc, how)
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
