//! `tw-inspect check`: a monitoring plugin (Nagios, Icinga, Sensu conventions).
//!
//! One status line on stdout and the exit code 0/1/2/3. Anything that stops
//! the check (bad flags, netlink refused) is UNKNOWN: app.rs prints that
//! status line and the usual one-line error on stderr.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use crate::aggregate::{Aggregate, GroupBy, Role};
use crate::diag::{self, Options};
use crate::filter::{Cond, PortRange, Prefix, Query, Side};
use crate::host::identity::{NsIdentity, Resolver};
use crate::host::netns::Scope;
use crate::plan::CheckPlan;
use crate::render;
use crate::sample::{self, CtWant, Sample, Spec};
use crate::socket::canonical;
use crate::state::{StateSet, TcpState};
use crate::threshold::{Kind, Metric, Scope as MetricScope, Values, evaluate};

pub fn run(plan: &CheckPlan) -> Result<ExitCode> {
    let spec = Spec {
        pressure: plan.pressure,
        roles: plan.roles,
        counters: plan.counters,
        conntrack: if plan.conntrack {
            CtWant::Table
        } else {
            CtWant::Off
        },
        ..Spec::counts(plan.query.clone())
    };
    let scope = super::scope(&plan.netns, &mut Resolver::new())?;
    let ran = sample::collect_scope(&scope, &spec)?;
    sample::warn_skipped(&ran.skipped);
    let samples = &ran.results;
    let total = sample::total(samples, &spec);
    let port_pressure = if plan.pressure {
        samples
            .iter()
            .map(|(_, s)| s.max_pressure_percent())
            .try_fold(0.0f64, |m, p| p.map(|p| m.max(p)))
    } else {
        None
    };
    let mut scoped = Vec::new();
    for &m in &plan.scoped {
        let value = match (m.kind, m.scope) {
            (Kind::PortPressure, _) => scoped_pressure(samples, m).ok_or("no ephemeral port range"),
            (kind, Some(MetricScope::Role(role))) => role_count(&total, kind, role, &plan.query),
            _ => Ok(count_scoped(&scope, &plan.query, m)?),
        };
        scoped.push((m, value));
    }
    // Each namespace has its own table against the one host-wide maximum:
    // the fullest one, and the drops of all of them.
    let tables: Vec<_> = samples
        .iter()
        .filter_map(|(_, s)| s.conntrack.as_ref().map(|c| c.table))
        .collect();
    let unknown = |why: &'static str| -> Result<f64, &'static str> {
        match () {
            _ if !plan.conntrack => Err("not read"),
            _ if tables.iter().any(|t| !t.loaded) => Err("nf_conntrack not loaded"),
            _ => Err(why),
        }
    };
    let conntrack_fill = match tables.iter().map(|t| t.fill()).collect::<Option<Vec<_>>>() {
        Some(f) if plan.conntrack && tables.iter().all(|t| t.loaded) => {
            Ok(f.into_iter().fold(0.0f64, f64::max) * 100.0)
        }
        _ => unknown("nf_conntrack_count or nf_conntrack_max unreadable"),
    };
    let conntrack_drops = match tables
        .iter()
        .map(|t| t.stats.and_then(|s| s.losses()))
        .collect::<Option<Vec<_>>>()
    {
        Some(d) if plan.conntrack && tables.iter().all(|t| t.loaded) => {
            Ok(d.into_iter().sum::<u64>() as f64)
        }
        _ => unknown("/proc/net/stat/nf_conntrack unreadable"),
    };
    let values = Values {
        counts: total.states,
        counted: plan.query.states,
        total: total.total,
        port_pressure,
        counters: sample::total_counters(samples),
        scoped,
        conntrack_fill,
        conntrack_drops,
    };
    let outcome = evaluate(&values, &plan.warning, &plan.critical);
    let mut out = std::io::stdout().lock();
    let written = render::check::status(&mut out, &outcome).and_then(|()| out.flush());
    match written {
        // The verdict is the exit code; a reader that left early does not change it.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(outcome.status.into()),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(outcome.status.into()),
    }
}

/// Sockets of one role: of a state, or of every state counted (`total`).
fn role_count(
    total: &Aggregate,
    kind: Kind,
    role: Role,
    query: &Query,
) -> Result<f64, &'static str> {
    let count = |s: TcpState| total.roles_of(s).map(|r| r[role.index()]);
    match kind {
        Kind::State(s) if !query.states.contains(s) => Err("not counted"),
        Kind::State(s) => count(s).map(|n| n as f64).ok_or("listeners not read"),
        Kind::Total => query
            .states
            .iter()
            .map(count)
            .sum::<Option<u64>>()
            .map(|n| n as f64)
            .ok_or("listeners not read"),
        _ => Err("takes no role"),
    }
}

/// The condition a metric's scope adds to the query.
fn condition(s: MetricScope) -> Vec<Cond> {
    match s {
        MetricScope::Port(p) => vec![Cond::Port(Side::Local, PortRange::single(p))],
        MetricScope::Peer(a, port) => {
            let addr = canonical(a);
            let len = if addr.is_ipv4() { 32 } else { 128 };
            let mut v = vec![Cond::Addr(Side::Peer, Prefix { addr, len })];
            if let Some(p) = port {
                v.push(Cond::Port(Side::Peer, PortRange::single(p)));
            }
            v
        }
        // Counted while dumping, never a filter of its own.
        MetricScope::Role(_) => Vec::new(),
    }
}

/// A scoped count: one dump per namespace with the scope's filter run in the
/// kernel, summed (a count, never a list of sockets).
fn count_scoped(scope: &Scope, base: &Query, m: Metric) -> Result<f64> {
    let mut q = base.clone();
    if let Kind::State(s) = m.kind {
        q.states = StateSet::from_states(&[s]);
    }
    for c in condition(m.scope.expect("a scoped metric")) {
        q = q.and(c);
    }
    let counts = scope.run(|| {
        diag::collect(&q, Options::default(), || {
            Aggregate::new(GroupBy::default(), StateSet::EMPTY)
        })
        .map_err(anyhow::Error::from)
    })?;
    Ok(counts
        .results
        .iter()
        .map(|(_, c)| c.sink.total)
        .sum::<u64>() as f64)
}

/// Port pressure towards the destinations a scope selects: the highest held
/// share among them (0 when none is used), per namespace.
fn scoped_pressure(samples: &[(Option<NsIdentity>, Sample)], m: Metric) -> Option<f64> {
    let Some(MetricScope::Peer(addr, port)) = m.scope else {
        return None;
    };
    let addr = canonical(addr);
    samples
        .iter()
        .map(|(_, s)| {
            let usable = s.ephemeral_ports.filter(|p| *p > 0)? as f64;
            let held = s
                .pressure
                .per_destination
                .iter()
                .filter(|(d, _)| d.peer == addr && port.is_none_or(|p| d.peer_port == p))
                .map(|(_, u)| u.held())
                .max()
                .unwrap_or(0);
            Some(held as f64 * 100.0 / usable)
        })
        .try_fold(0.0f64, |m, p| p.map(|p| m.max(p)))
}
