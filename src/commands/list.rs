//! `tw-inspect list`: collect once, aggregate, diagnose, render. Socket rows
//! (`--sockets`) are written while the kernel's dump is read.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use anyhow::Result;

use crate::aggregate::Role;
use crate::diagnose::{self, Inputs};
use crate::exit::Exit;
use crate::host::counters::Counters;
use crate::host::identity::{NsIdentity, Resolver};
use crate::host::procs;
use crate::host::sysctl::Sysctls;
use crate::output::Output;
use crate::plan::ListPlan;
use crate::plan::list::{Format, Source};
use crate::render::list::{ListFormat, ListRender};
use crate::render::rows::{Owners, RowFormat, RowLayout, RowWriter};
use crate::render::{self, Style};
use crate::report::{
    ConntrackReport, Counted, CounterValues, ListDocument, ListReport, NamespaceReport,
    NetnsListReport,
};
use crate::sample::{self, CtNotRead, CtSample, CtWant, Origin, Sample};
use crate::snapshot::{self, Snapshot};
use crate::socket::Sink;
use crate::sort::Sorted;
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
    publish(plan, &origin, save_to, out, &mut CounterHistory::new())?;
    Ok(Exit::Ok.into())
}

/// The last counter reading of each namespace (by inode; `None` is the
/// current one), so that each sample of `--watch --output` measures growth
/// since the one before.
pub type CounterHistory = HashMap<Option<u64>, (Counters, Instant)>;

/// Collects once from `origin`, writes the report to `out` and finishes it
/// (a file is renamed into place). When collecting fails in Prometheus format,
/// `tw_inspect_up 0` is published first, so an alert fires instead of the
/// textfile going stale. Each sample of `--watch --output` is one of these.
pub fn publish(
    plan: &ListPlan,
    origin: &Origin,
    save_to: Option<Output>,
    mut out: Output,
    history: &mut CounterHistory,
) -> Result<()> {
    if plan.spec.sockets {
        return publish_rows(plan, origin, save_to, out, history);
    }
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
    for (label, s) in &mut samples.results {
        since_previous(history, label.as_ref(), s);
    }
    sample::warn_skipped(&samples.skipped);
    save_capture(save_to, &mut samples)?;
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

/// With `--watch`: the counters' growth since the previous sample, not only
/// within this one.
fn since_previous(history: &mut CounterHistory, label: Option<&NsIdentity>, s: &mut Sample) {
    if let Some(r) = &mut s.counters {
        // By inode: a namespace made again (a restarted container) starts
        // its counters again.
        let key = label.map(|id| id.inode);
        if let Some((prev, at)) = history.get(&key) {
            r.first = prev.clone();
            r.first_at = *at;
        }
        history.insert(key, (r.last.clone(), r.last_at));
    }
}

/// Writes the first sample's raw datagrams to `--save`'s file, when asked.
fn save_capture(save_to: Option<Output>, samples: &mut sample::Samples) -> Result<()> {
    let Some(file) = save_to else {
        return Ok(());
    };
    let captured = samples
        .results
        .first_mut()
        .and_then(|(_, s)| s.capture.take());
    snapshot::save(
        file,
        &captured.expect("the plan keeps raw datagrams for --save"),
    )
}

/// `list --sockets`: each socket is written as the dump hands it over (or,
/// with `--sort`, once the dump has ended), then each report's summary.
fn publish_rows(
    plan: &ListPlan,
    origin: &Origin,
    save_to: Option<Output>,
    mut out: Output,
    history: &mut CounterHistory,
) -> Result<()> {
    let view = &plan.view;
    let style = Style::new(plan.color.enabled(out.is_terminal()));
    let snap = match origin {
        Origin::Snapshot(s) => Some(*s),
        Origin::Live(_) => None,
    };
    // Rows are written before the dump ends, so owners are looked up before
    // it starts: a socket opened after this scan shows no owner.
    let owners = (view.processes && snap.is_none()).then(procs::socket_owners);
    let format = match view.format {
        Format::Json => RowFormat::Json,
        Format::Ndjson => RowFormat::Ndjson,
        Format::Csv => RowFormat::Csv,
        // Prometheus is refused with --sockets by the plan.
        Format::Table | Format::Prometheus => RowFormat::Table,
    };
    let prepared = owners.as_ref().map(|o| Owners::new(o, format));
    let layout = RowLayout {
        format,
        style,
        explain: view.explain,
        processes: view.processes,
        ipv6: plan.spec.query.ipv6,
        states: plan.spec.query.states,
        limit: view.rows.map(u64::from),
        labelled: origin.labelled(),
    };
    let mut writer = RowWriter::new(&mut out, layout, prepared.as_ref());
    let preamble = snap.map(|s| render::table::snapshot_line(&s.info()));
    writer.begin(preamble.as_deref());
    let state = Mutex::new((writer, history));
    // One namespace (or the snapshot): its rows, then its summary.
    let one = |label: Option<&NsIdentity>,
               collect: &dyn Fn(&mut (dyn Sink + Send)) -> Result<Sample>|
     -> Result<Sample> {
        let mut guard = state.lock().unwrap_or_else(PoisonError::into_inner);
        let (w, history) = &mut *guard;
        w.begin_report(label);
        let mut sample = match view.sort {
            None => collect(w)?,
            Some(key) => {
                let mut sorted = Sorted::new(key, layout.limit);
                let s = collect(&mut sorted)?;
                sorted.drain_into(w);
                s
            }
        };
        since_previous(history, label, &mut sample);
        w.end_report(&report(plan, origin, &sample, snap, owners.as_ref()));
        Ok(sample)
    };
    let mut samples = match origin {
        Origin::Live(scope) => {
            scope.run_labelled(|label| one(label, &|rows| sample::stream(&plan.spec, rows)))?
        }
        Origin::Snapshot(s) => sample::Samples {
            results: vec![(
                None,
                one(None, &|rows| {
                    sample::from_snapshot(s, &plan.spec, Some(rows))
                })?,
            )],
            skipped: Vec::new(),
        },
    };
    let (mut writer, _) = state.into_inner().unwrap_or_else(PoisonError::into_inner);
    sample::warn_skipped(&samples.skipped);
    let total = origin
        .labelled()
        .then(|| total_report(plan, &samples.results));
    writer.end(total.as_ref(), &samples.skipped);
    // A closed output ends here, before a snapshot of a dump cut short is saved.
    writer.finish()?;
    save_capture(save_to, &mut samples)?;
    out.finish()
}

/// The report over every namespace (socket rows are not repeated in it).
fn total_report(plan: &ListPlan, samples: &[(Option<NsIdentity>, Sample)]) -> ListReport {
    let total_ms = samples
        .iter()
        .map(|(_, s)| s.elapsed.as_secs_f64() * 1e3)
        .sum();
    let mut total = ListReport::new(
        &sample::total(samples, &plan.spec),
        plan.view.top,
        total_ms,
        Counted::asked(plan.spec.query.states),
    );
    // A listener belongs to one namespace: the totals name none.
    for g in &mut total.groups {
        (g.listening, g.process, g.listener_inode) = (None, None, 0);
    }
    total.counters = sample::total_counters(samples).map(CounterValues);
    total
}

/// One namespace's report. `known`: the owners already found (`-p` with
/// rows written as they arrive); else they are looked up for what the report
/// names.
fn report(
    plan: &ListPlan,
    origin: &Origin,
    s: &Sample,
    snap: Option<&Snapshot>,
    known: Option<&HashMap<u32, procs::ProcessRef>>,
) -> ListReport {
    let mut r = ListReport::new_keeping(
        &s.agg,
        plan.view.top,
        &plan.view.prom_ports,
        s.elapsed.as_secs_f64() * 1e3,
        counted(plan, origin, s),
    );
    r.source = s.source.into();
    r.snapshot = snap.map(Snapshot::info);
    if plan.spec.pressure {
        r = r.with_pressure(&s.pressure, s.ephemeral_ports, plan.view.top);
    }
    r = r.with_counters(s.counters.as_ref());
    let looked_up;
    let owners = match known {
        Some(o) => o,
        None => {
            looked_up = owners(&r, s, matches!(origin, Origin::Live(_)));
            &looked_up
        }
    };
    for g in &mut r.groups {
        if g.process.is_none() && g.role == Some(Role::Incoming) {
            g.process = owners.get(&g.listener_inode).cloned();
        }
    }
    if plan.spec.close_wait_ages {
        let groups = s.teardown.close_wait_groups(owners, &s.agg.roles);
        r = r.with_close_wait(&groups, s.teardown.oldest_close_wait(), plan.view.top);
    }
    if plan.spec.diagnose {
        diagnose_into(&mut r, s, owners);
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

/// The processes holding the sockets a report names: CLOSE_WAIT sockets and
/// the listeners of incoming groups (socket rows find theirs before the dump).
/// One scan of this host's /proc, so only for live sockets, and only when
/// something needs it.
fn owners(r: &ListReport, s: &Sample, live: bool) -> HashMap<u32, procs::ProcessRef> {
    let mut wanted: HashSet<u32> = HashSet::new();
    if live {
        wanted.extend(s.teardown.close_wait.iter().map(|c| c.inode));
        wanted.extend(
            r.groups
                .iter()
                .filter(|g| g.process.is_none())
                .map(|g| g.listener_inode),
        );
    }
    wanted.remove(&0);
    procs::owners(&wanted)
}

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
        ListDocument::One(report(plan, origin, &samples[0].1, snap, None))
    } else {
        // Several namespaces: each one's report, and the totals.
        let namespaces: Vec<NamespaceReport> = samples
            .iter()
            .map(|(id, s)| {
                let identity = id.clone().expect("a labelled origin names each namespace");
                NamespaceReport::new(identity, report(plan, origin, s, snap, None))
            })
            .collect();
        let total = total_report(plan, samples);
        ListDocument::Namespaces(NetnsListReport {
            total,
            namespaces,
            skipped: skipped.clone(),
        })
    };
    let format = match view.format {
        Format::Table => ListFormat::Table,
        Format::Json => ListFormat::Json,
        Format::Ndjson => ListFormat::Ndjson,
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

/// Fills the diagnoses, from the sample and the owners found for it.
fn diagnose_into(r: &mut ListReport, s: &Sample, owners: &HashMap<u32, procs::ProcessRef>) {
    let mut teardown = s.teardown.clone();
    for l in s.facts.listening.iter().flatten() {
        teardown.listen_ports.insert(l.port);
    }
    let close_wait = teardown.close_wait_owners(owners);
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
        counters: s.counters.as_ref().filter(|c| c.last_at > c.first_at),
    });
}
