//! Prometheus text exposition format (version 0.0.4), for node_exporter's
//! textfile collector or any scraper. [`Exposition`] is the one writer (`list`
//! and `who` use it): each metric family is one block, HELP and TYPE then its
//! samples for every namespace, as the format requires.
//!
//! `list`'s cardinality is bounded: states × families is fixed; TIME_WAIT is
//! given per role, each role cut to `--top` groups in the report plus one
//! `other` series (so the series add up to the TIME_WAIT total) plus the
//! `--prom-port` ports; CLOSE_WAIT per local port and process is cut the same
//! way; port-pressure destinations are cut to `--top`; the kernel counters are
//! a fixed list. States that were not counted have no series.
//!
//! With several namespaces every series carries `netns` (the stable label)
//! and, where known, `container`, `pod` and `pod_namespace`: names that stay
//! the same when a container restarts, so series do not churn.
//! `tw_inspect_netns_info` gives each namespace's kind, runtime and ids.

use std::fmt::{Display, Write as _};
use std::io::Write;

use anyhow::Result;

use crate::aggregate::Role;
use crate::escape::visible;
use crate::host::counters::{COUNTERS, CounterKind};
use crate::report::{ConntrackReport, ListReport, NsIdentity};
use crate::state::TcpState;

/// The metric types tw-inspect writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// Writes metric families one after the other: [`Exposition::family`] opens a
/// block, [`Exposition::sample`] adds a series to it.
pub struct Exposition<'w> {
    w: &'w mut dyn Write,
    name: &'static str,
    line: String,
}

impl<'w> Exposition<'w> {
    pub fn new(w: &'w mut dyn Write) -> Exposition<'w> {
        Exposition {
            w,
            name: "",
            line: String::new(),
        }
    }

    /// Starts the block of metric `name`: its HELP and TYPE lines.
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &str) -> Result<()> {
        self.name = name;
        writeln!(self.w, "# HELP {name} {help}")?;
        writeln!(self.w, "# TYPE {name} {}", kind.name())?;
        Ok(())
    }

    /// One series of the current family: `name{k="v",...} value`, the label
    /// values escaped (no braces when there are no labels).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Display) -> Result<()> {
        debug_assert!(!self.name.is_empty(), "a sample before its family");
        let line = &mut self.line;
        line.clear();
        line.push_str(self.name);
        for (i, (k, v)) in labels.iter().enumerate() {
            line.push(if i == 0 { '{' } else { ',' });
            line.push_str(k);
            line.push_str("=\"");
            escape_into(line, v);
            line.push('"');
        }
        if !labels.is_empty() {
            line.push('}');
        }
        let _ = write!(line, " {value}");
        writeln!(self.w, "{line}")?;
        Ok(())
    }
}

/// Appends a label value as the exposition format requires (backslash,
/// double quote and line feed escaped). The value is first shown as the table
/// shows it ([`visible`]): the format has no escape for other control
/// characters, and a raw ESC in a textfile reaches whoever `cat`s it.
pub fn escape_into(out: &mut String, v: &str) {
    for c in visible(v).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A namespace's labels: `netns`, then `container`, `pod`, `pod_namespace` where known.
struct NsLabels(Vec<(&'static str, String)>);

impl NsLabels {
    fn of(id: Option<&NsIdentity>) -> NsLabels {
        NsLabels(match id {
            None => Vec::new(),
            Some(i) => std::iter::once(("netns", i.name.clone()))
                .chain(i.prometheus_labels())
                .collect(),
        })
    }
}

/// The namespace's labels first, then the series' own.
fn labels<'a>(ns: &'a NsLabels, pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    ns.0.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(pairs.iter().copied())
        .collect()
}

const UP_HELP: &str = "1 when the sockets were read from the kernel, 0 when reading failed.";

/// `list`'s metrics for one report per namespace; an identity adds its labels
/// to every series of that report (`--netns`, `--all-netns`). The groups must
/// be TIME_WAIT by role (incoming by local port), or by peer and port (the
/// former series, `--by peer+port`), as the plan for this format makes them.
pub fn list(w: &mut dyn Write, reports: &[(Option<&NsIdentity>, &ListReport)]) -> Result<()> {
    let names: Vec<NsLabels> = reports.iter().map(|(id, _)| NsLabels::of(*id)).collect();
    let items: Vec<(&NsLabels, &ListReport)> =
        names.iter().zip(reports.iter().map(|(_, r)| *r)).collect();
    let mut x = Exposition::new(w);
    x.family("tw_inspect_up", Kind::Gauge, UP_HELP)?;
    for (netns, _) in &items {
        x.sample(&labels(netns, &[]), 1)?;
    }

    x.family(
        "tw_inspect_sockets",
        Kind::Gauge,
        "TCP sockets matching the filters, by state and address family; states not counted have no series.",
    )?;
    for (netns, r) in &items {
        for (fi, fam) in ["ipv4", "ipv6"].iter().enumerate() {
            for st in r.counted.states.iter() {
                let n = r.family_states[fi][st.index()];
                x.sample(&labels(netns, &[("state", st.name()), ("family", fam)]), n)?;
            }
        }
    }

    let by_role = items.iter().any(|(_, r)| r.other_roles.is_some());
    x.family(
        "tw_inspect_time_wait",
        Kind::Gauge,
        if by_role {
            "TIME_WAIT sockets by role: incoming per local port, outgoing per peer address and port; the largest groups of each role, the rest summed in local_port=\"other\" and peer=\"other\"."
        } else {
            "TIME_WAIT sockets per peer address and port: the largest groups, the rest summed in peer=\"other\"."
        },
    )?;
    for (netns, r) in &items {
        if !r.counted.states.contains(TcpState::TimeWait) {
            continue;
        }
        let Some(others) = r.other_roles else {
            for g in &r.groups {
                let peer = g.peer.map(|a| a.to_string()).unwrap_or_default();
                let port = g.peer_port.map(|p| p.to_string()).unwrap_or_default();
                x.sample(
                    &labels(netns, &[("peer", &peer), ("peer_port", &port)]),
                    g.count,
                )?;
            }
            x.sample(
                &labels(netns, &[("peer", "other"), ("peer_port", "other")]),
                r.other_groups.count,
            )?;
            continue;
        };
        for g in r.groups.iter().filter(|g| g.role == Some(Role::Incoming)) {
            let port = g.local_port.map(|p| p.to_string()).unwrap_or_default();
            x.sample(
                &labels(netns, &[("role", "incoming"), ("local_port", &port)]),
                g.count,
            )?;
        }
        x.sample(
            &labels(netns, &[("role", "incoming"), ("local_port", "other")]),
            others.incoming.count,
        )?;
        for g in r.groups.iter().filter(|g| g.role == Some(Role::Outgoing)) {
            let peer = g.peer.map(|a| a.to_string()).unwrap_or_default();
            let port = g.peer_port.map(|p| p.to_string()).unwrap_or_default();
            x.sample(
                &labels(
                    netns,
                    &[("role", "outgoing"), ("peer", &peer), ("peer_port", &port)],
                ),
                g.count,
            )?;
        }
        x.sample(
            &labels(
                netns,
                &[
                    ("role", "outgoing"),
                    ("peer", "other"),
                    ("peer_port", "other"),
                ],
            ),
            others.outgoing.count,
        )?;
    }

    x.family(
        "tw_inspect_close_wait",
        Kind::Gauge,
        "CLOSE_WAIT sockets per local port (\"outgoing\" for this host's own connections) and owning process: the largest, the rest summed in local_port=\"other\".",
    )?;
    for (netns, r) in &items {
        let Some(rows) = &r.close_wait else { continue };
        // Two processes of one name on one port are one series.
        let mut merged: Vec<(String, String, u64)> = Vec::new();
        for c in rows {
            let port = c.local_port.map_or("outgoing".into(), |p| p.to_string());
            let comm = c
                .process
                .as_ref()
                .map_or("unknown".into(), |p| p.comm.clone());
            match merged.iter_mut().find(|(p, n, _)| *p == port && *n == comm) {
                Some(e) => e.2 += c.count,
                None => merged.push((port, comm, c.count)),
            }
        }
        for (port, comm, n) in &merged {
            x.sample(
                &labels(netns, &[("local_port", port), ("process", comm)]),
                n,
            )?;
        }
        let other = r.close_wait_other.unwrap_or_default().count;
        x.sample(
            &labels(netns, &[("local_port", "other"), ("process", "other")]),
            other,
        )?;
    }

    x.family(
        "tw_inspect_close_wait_oldest_seconds",
        Kind::Gauge,
        "The longest any CLOSE_WAIT socket has waited since its peer closed (0 when there is none).",
    )?;
    for (netns, r) in &items {
        let Some(n) = r.states.get(TcpState::CloseWait) else {
            continue;
        };
        let oldest = match (r.close_wait_oldest_ms, n) {
            (Some(ms), _) => f64::from(ms) / 1e3,
            (None, 0) => 0.0,
            // CLOSE_WAIT there, its age not known: no series, not a 0.
            (None, _) => continue,
        };
        x.sample(&labels(netns, &[]), oldest)?;
    }

    x.family(
        "tw_inspect_port_pressure_ratio",
        Kind::Gauge,
        "Share of the usable ephemeral ports held by outgoing sockets to one destination (1 = exhausted), busiest destinations.",
    )?;
    for (netns, r) in &items {
        for p in &r.port_pressure {
            let (local, peer, port) = (
                p.local.to_string(),
                p.peer.to_string(),
                p.peer_port.to_string(),
            );
            x.sample(
                &labels(
                    netns,
                    &[("local", &local), ("peer", &peer), ("peer_port", &port)],
                ),
                p.ratio,
            )?;
        }
    }

    for c in COUNTERS {
        let kind = match c.kind {
            CounterKind::Counter => Kind::Counter,
            CounterKind::Gauge => Kind::Gauge,
        };
        x.family(
            c.metric,
            kind,
            &format!("{} ({}, from the kernel)", c.help, c.nstat),
        )?;
        for (netns, r) in &items {
            if let Some(v) = r.counters.as_ref().and_then(|v| v.0.get(c.nstat)) {
                x.sample(&labels(netns, &[]), v)?;
            }
        }
    }

    x.family(
        "tw_inspect_collect_duration_seconds",
        Kind::Gauge,
        "Time spent reading the sockets from the kernel.",
    )?;
    for (netns, r) in &items {
        x.sample(&labels(netns, &[]), r.collect_ms / 1e3)?;
    }

    let ids: Vec<&NsIdentity> = reports.iter().filter_map(|(id, _)| *id).collect();
    if !ids.is_empty() {
        x.family(
            "tw_inspect_netns_info",
            Kind::Gauge,
            "Who each network namespace belongs to (always 1): kind (host, named, container, pod, unknown), runtime, container id, pod uid.",
        )?;
        for id in ids {
            let ns = NsLabels::of(Some(id));
            let c = id.container.as_ref().or(id.containers.first());
            let runtime = c.and_then(|c| c.runtime).map_or("", |r| r.name());
            let container_id = c.map_or("", |c| c.id.as_str());
            let pod_uid = id.pod.as_ref().and_then(|p| p.uid.as_deref()).unwrap_or("");
            let mut extra: Vec<(&str, &str)> = vec![("kind", id.kind.name())];
            for (k, v) in [
                ("runtime", runtime),
                ("container_id", container_id),
                ("pod_uid", pod_uid),
            ] {
                if !v.is_empty() {
                    extra.push((k, v));
                }
            }
            x.sample(&labels(&ns, &extra), 1)?;
        }
    }
    let cts: Vec<(&NsLabels, &ConntrackReport)> = items
        .iter()
        .filter_map(|(n, r)| Some((*n, r.conntrack.as_ref()?)))
        .collect();
    if !cts.is_empty() {
        conntrack(&mut x, &cts)?;
    }
    Ok(())
}

/// `list --conntrack`'s series: the table's size and limit, its counters (as
/// counters), TCP entries per conntrack state, TIME_WAIT entries per top
/// destination (the rest summed in `destination="other"`). Values not read
/// have no series.
fn conntrack(x: &mut Exposition, items: &[(&NsLabels, &ConntrackReport)]) -> Result<()> {
    let gauge =
        |x: &mut Exposition, name, help, get: fn(&ConntrackReport) -> Option<u64>| -> Result<()> {
            x.family(name, Kind::Gauge, help)?;
            for (netns, c) in items {
                if let Some(v) = get(c) {
                    x.sample(&labels(netns, &[]), v)?;
                }
            }
            Ok(())
        };
    gauge(
        x,
        "tw_inspect_conntrack_entries",
        "Entries in the namespace's conntrack table now (nf_conntrack_count), every protocol.",
        |c| c.count,
    )?;
    gauge(
        x,
        "tw_inspect_conntrack_max",
        "nf_conntrack_max: the most entries one namespace's table may hold (host-wide).",
        |c| c.max,
    )?;
    gauge(
        x,
        "tw_inspect_conntrack_buckets",
        "nf_conntrack_buckets: the conntrack hash table's size (host-wide).",
        |c| c.buckets,
    )?;
    gauge(
        x,
        "tw_inspect_conntrack_entries_up",
        "1 when the conntrack entries were read (ctnetlink dump, CAP_NET_ADMIN), 0 when not.",
        |c| Some(c.entries.is_some() as u64),
    )?;
    x.family(
        "tw_inspect_conntrack_events_total",
        Kind::Counter,
        "Conntrack per-CPU counters summed, since the namespace started (drop: packets lost to a full table).",
    )?;
    for (netns, c) in items {
        for (name, v) in c.stats.iter().flat_map(|s| s.pairs()) {
            if let Some(v) = v {
                x.sample(&labels(netns, &[("event", name)]), v)?;
            }
        }
    }
    x.family(
        "tw_inspect_conntrack_tcp_entries",
        Kind::Gauge,
        "TCP conntrack entries per conntrack state (TIME_WAIT: closed connections kept nf_conntrack_tcp_timeout_time_wait).",
    )?;
    for (netns, c) in items {
        for row in c.entries.iter().flat_map(|e| &e.states) {
            x.sample(
                &labels(netns, &[("state", row.state.name())]),
                row.conntrack,
            )?;
        }
    }
    x.family(
        "tw_inspect_conntrack_time_wait",
        Kind::Gauge,
        "Conntrack TIME_WAIT entries per original destination: the busiest, the rest summed in destination=\"other\".",
    )?;
    for (netns, c) in items {
        let Some(e) = &c.entries else { continue };
        for g in &e.destinations {
            let (addr, port) = (g.address.to_string(), g.port.unwrap_or(0).to_string());
            x.sample(
                &labels(netns, &[("destination", &addr), ("port", &port)]),
                g.time_wait,
            )?;
        }
        x.sample(
            &labels(netns, &[("destination", "other"), ("port", "other")]),
            e.other_destinations.time_wait,
        )?;
    }
    Ok(())
}

/// What a failed run writes, so an alert on `tw_inspect_up == 0` fires instead
/// of the textfile silently going stale.
pub fn write_down(w: &mut dyn Write) -> Result<()> {
    let mut x = Exposition::new(w);
    x.family("tw_inspect_up", Kind::Gauge, UP_HELP)?;
    x.sample(&[], 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{GroupBy, Pressure};
    use crate::report::{Counted, fixtures};
    use crate::socket::{Family, SocketRecord};
    use crate::state::StateSet;

    fn tw(peer: &str, port: u16) -> SocketRecord {
        let fam = if peer.contains(':') {
            Family::V6
        } else {
            Family::V4
        };
        let mut r = SocketRecord::blank(fam, TcpState::TimeWait);
        r.peer = peer.parse().unwrap();
        r.peer_port = port;
        r.local = if fam == Family::V6 {
            "::1".parse().unwrap()
        } else {
            "127.0.0.1".parse().unwrap()
        };
        r.local_port = 40000;
        r
    }

    fn records() -> Vec<SocketRecord> {
        vec![
            tw("10.0.0.1", 80),
            tw("10.0.0.1", 80),
            tw("10.0.0.2", 443),
            tw("::1", 8080),
        ]
    }

    /// The report the Prometheus plan makes: TIME_WAIT by peer and port, cut to `top`.
    fn report(counted: StateSet, top: u32) -> ListReport {
        let mut r = fixtures::report(
            &records(),
            GroupBy::PEER_PORT_PAIR,
            StateSet::from_states(&[TcpState::TimeWait]),
            Counted::asked(counted),
        );
        let rest = r.groups.split_off((top as usize).min(r.groups.len()));
        r.other_groups.groups = rest.len() as u64;
        r.other_groups.count = rest.iter().map(|g| g.count).sum();
        r
    }

    fn pressure() -> Pressure {
        fixtures::pressure(&records(), (32768, 60999))
    }

    fn render(items: &[(Option<&NsIdentity>, &ListReport)]) -> String {
        let mut out = Vec::new();
        list(&mut out, items).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_label_values() {
        let esc = |v: &str| {
            let mut s = String::new();
            escape_into(&mut s, v);
            s
        };
        // The value carried is the name as the table shows it (a backslash
        // shown doubled, a control character as its escape), then escaped
        // for the format: a scraper reads back `a"b\\c` and `x\ny`.
        assert_eq!(esc(r#"a"b\c"#), r#"a\"b\\\\c"#);
        assert_eq!(esc("x\ny"), "x\\\\ny");
        assert_eq!(esc("\x1b[2J\u{9b}"), "\\\\x1b[2J\\\\x9b");
        assert_eq!(esc("plain-name_1"), "plain-name_1");
        let mut out = Vec::new();
        let mut x = Exposition::new(&mut out);
        x.family("m", Kind::Counter, "h").unwrap();
        x.sample(&[("netns", "q\""), ("peer", "::1")], 3).unwrap();
        x.sample(&[], 1.5).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP m h\n# TYPE m counter\nm{netns=\"q\\\"\",peer=\"::1\"} 3\nm 1.5\n"
        );
    }

    #[test]
    fn groups_and_other_add_up_and_zeros_are_present() {
        let r = report(StateSet::all(), 1).with_pressure(&pressure(), Some(28232), 1);
        let text = render(&[(None, &r)]);
        assert!(
            text.contains("tw_inspect_time_wait{peer=\"10.0.0.1\",peer_port=\"80\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tw_inspect_time_wait{peer=\"other\",peer_port=\"other\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("tw_inspect_sockets{state=\"time-wait\",family=\"ipv6\"} 1\n"));
        assert!(text.contains("tw_inspect_sockets{state=\"close-wait\",family=\"ipv4\"} 0\n"));
        let n_states = text
            .lines()
            .filter(|l| l.starts_with("tw_inspect_sockets{"))
            .count();
        assert_eq!(n_states, 2 * TcpState::ALL.len());
        assert!(text.contains(&format!(
            "tw_inspect_port_pressure_ratio{{local=\"127.0.0.1\",peer=\"10.0.0.1\",peer_port=\"80\"}} {}\n",
            2.0 / 28232.0
        )));
        assert_eq!(text.matches("tw_inspect_port_pressure_ratio{").count(), 1);
        assert!(text.contains("tw_inspect_up 1\n"));
        assert!(text.contains("tw_inspect_collect_duration_seconds 0.0015\n"));
        // Every family is one block: its TYPE line appears once.
        assert_eq!(text.matches("# TYPE tw_inspect_sockets gauge").count(), 1);
    }

    /// The sum of every `tw_inspect_time_wait` series with `filter` in its labels.
    fn sum_of(text: &str, filter: &str) -> u64 {
        text.lines()
            .filter(|l| l.starts_with("tw_inspect_time_wait{") && l.contains(filter))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }

    #[test]
    fn role_series_add_up_and_keep_chosen_ports() {
        use crate::aggregate::{Aggregate, CloseWaitGroup, Roles};
        use crate::diag::listen::Listener;
        use crate::socket::Sink;
        use std::sync::Arc;
        let listeners: Vec<Listener> = [80u16, 443, 8443]
            .iter()
            .map(|p| Listener {
                family: "ipv4".into(),
                local: "0.0.0.0".parse().unwrap(),
                port: *p,
                inode: 0,
                process: None,
            })
            .collect();
        let roles = Arc::new(Roles::new(Some(&listeners), Some((32768, 60999))));
        let mut agg = Aggregate::new(
            GroupBy::ROLES_BY_PORT,
            StateSet::from_states(&[TcpState::TimeWait]),
        )
        .with_roles(roles);
        // Incoming: 5 on 80, 3 on 443, 1 on 8443; outgoing: 4 destinations.
        for (lport, pport, n) in [
            (80, 50000, 5),
            (443, 50000, 3),
            (8443, 50000, 1),
            (40000, 5432, 6),
            (40000, 3306, 2),
            (40000, 6379, 1),
            (40000, 11211, 1),
        ] {
            for i in 0..n {
                let mut r = tw("10.0.0.2", pport + i);
                r.local_port = if lport == 40000 { lport + i } else { lport };
                r.peer_port = if lport == 40000 { pport } else { pport + i };
                agg.push(&r);
            }
        }
        let mut r =
            ListReport::new_keeping(&agg, 1, &[22, 443], 1.0, Counted::asked(StateSet::all()));
        r = r.with_close_wait(
            &[
                CloseWaitGroup {
                    role: crate::aggregate::Role::Incoming,
                    local_port: Some(80),
                    owner: Some(crate::host::procs::ProcessRef {
                        pid: 7,
                        comm: "nginx".into(),
                    }),
                    count: 2,
                    oldest_ms: Some(1500),
                },
                CloseWaitGroup {
                    role: crate::aggregate::Role::Incoming,
                    local_port: Some(80),
                    owner: Some(crate::host::procs::ProcessRef {
                        pid: 8,
                        comm: "nginx".into(),
                    }),
                    count: 3,
                    oldest_ms: Some(900),
                },
            ],
            Some(1500),
            10,
        );
        let text = render(&[(None, &r)]);
        let total = 5 + 3 + 1 + 6 + 2 + 1 + 1;
        assert_eq!(sum_of(&text, ""), total, "{text}");
        assert_eq!(sum_of(&text, "role=\"incoming\""), 9);
        assert_eq!(sum_of(&text, "role=\"outgoing\""), 10);
        for line in [
            "tw_inspect_time_wait{role=\"incoming\",local_port=\"80\"} 5\n",
            // Kept though not in the top 1: 443 with its 3, 22 with none.
            "tw_inspect_time_wait{role=\"incoming\",local_port=\"443\"} 3\n",
            "tw_inspect_time_wait{role=\"incoming\",local_port=\"22\"} 0\n",
            "tw_inspect_time_wait{role=\"incoming\",local_port=\"other\"} 1\n",
            "tw_inspect_time_wait{role=\"outgoing\",peer=\"10.0.0.2\",peer_port=\"5432\"} 6\n",
            "tw_inspect_time_wait{role=\"outgoing\",peer=\"other\",peer_port=\"other\"} 4\n",
            // Two nginx processes on port 80: one series.
            "tw_inspect_close_wait{local_port=\"80\",process=\"nginx\"} 5\n",
            "tw_inspect_close_wait_oldest_seconds 1.5\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert_eq!(text.matches("tw_inspect_time_wait{").count(), 6, "{text}");
    }

    #[test]
    fn kernel_counters_are_typed_and_only_those_read() {
        use crate::host::counters::{Counters, Readings};
        let mut c = Counters::default();
        c.0.insert("TcpExtTW".into(), 12);
        c.0.insert("TcpCurrEstab".into(), 3);
        let now = std::time::Instant::now();
        let r = report(StateSet::all(), 10).with_counters(Some(&Readings {
            first: c.clone(),
            first_at: now,
            last: c,
            last_at: now,
        }));
        let blue = crate::host::identity::fixtures::named("blue");
        let text = render(&[(Some(&blue), &r)]);
        assert!(text.contains("# TYPE tw_inspect_kernel_timewait_entered_total counter\n"));
        assert!(text.contains("tw_inspect_kernel_timewait_entered_total{netns=\"blue\"} 12\n"));
        assert!(text.contains("# TYPE tw_inspect_kernel_curr_estab gauge\n"));
        assert!(text.contains("tw_inspect_kernel_curr_estab{netns=\"blue\"} 3\n"));
        // Not read: its family is there, no sample.
        assert!(
            !text.contains("tw_inspect_kernel_abort_on_data_total{"),
            "{text}"
        );
    }

    #[test]
    fn uncounted_states_have_no_series() {
        let counted = StateSet::from_states(&[TcpState::TimeWait, TcpState::Established]);
        let text = render(&[(None, &report(counted, 10))]);
        assert!(text.contains("tw_inspect_sockets{state=\"established\",family=\"ipv4\"} 0\n"));
        assert!(!text.contains("state=\"close-wait\""), "{text}");
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("tw_inspect_sockets{"))
                .count(),
            4
        );
        // TIME_WAIT not counted: no TIME_WAIT series at all, not a 0.
        let text = render(&[(
            None,
            &report(StateSet::from_states(&[TcpState::Established]), 10),
        )]);
        assert!(!text.contains("tw_inspect_time_wait{"), "{text}");
        assert!(!text.contains("time-wait"), "{text}");
        assert!(text.contains("# TYPE tw_inspect_time_wait gauge"));
    }

    #[test]
    fn namespaces_label_every_series() {
        use crate::host::identity::fixtures as identity;
        let r = report(StateSet::all(), 10);
        let (blue, red) = (identity::named("blue"), identity::named("red\"x"));
        let (web, pod) = (
            identity::container("web1"),
            identity::pod("shop", "web-7f9c", &["app"]),
        );
        let text = render(&[
            (Some(&blue), &r),
            (Some(&red), &r),
            (Some(&web), &r),
            (Some(&pod), &r),
        ]);
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(
                l.contains("{netns=\"blue\"")
                    || l.contains("{netns=\"red\\\"x\"")
                    || l.contains("{netns=\"web1\",container=\"web1\"")
                    || l.contains(
                        "{netns=\"shop/web-7f9c\",container=\"app\",pod=\"web-7f9c\",pod_namespace=\"shop\""
                    ),
                "{l}"
            );
        }
        assert_eq!(text.matches("# HELP tw_inspect_up ").count(), 1);
        assert!(
            text.contains("tw_inspect_netns_info{netns=\"blue\",kind=\"named\"} 1\n"),
            "{text}"
        );
        assert!(text.contains(&format!(
            "tw_inspect_netns_info{{netns=\"web1\",container=\"web1\",kind=\"container\",runtime=\"podman\",container_id=\"{}\"}} 1\n",
            "e4".repeat(32)
        )));
        assert!(text.contains("pod_namespace=\"shop\",kind=\"pod\",runtime=\"containerd\","));
        // One namespace's own report (no --netns): no namespace labels, no info.
        let alone = render(&[(None, &r)]);
        assert!(!alone.contains("netns") && !alone.contains("tw_inspect_netns_info"));
    }

    #[test]
    fn down_is_one_series() {
        let mut out = Vec::new();
        write_down(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("# TYPE tw_inspect_up gauge\ntw_inspect_up 0\n"),
            "{text}"
        );
    }
}
