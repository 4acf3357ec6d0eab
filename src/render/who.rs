//! `who` output: the table for people and the Prometheus exposition.
//! JSON is [`WhoReport`] serialised as is.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;

use anyhow::Result;

use super::prometheus::{Exposition, Kind};
use super::table::{grouped, new_table, num, write_table};
use super::{Style, json};
use crate::trace::attribute::{ProcessReport, WhoReport};

/// The formats `who` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhoFormat {
    Table,
    Json,
    Prometheus,
}

/// How to write a [`WhoReport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WhoRender {
    pub format: WhoFormat,
    pub style: Style,
    /// Prometheus: the busiest commands that keep their own series (0 = all).
    pub top: usize,
}

/// Writes `r`. Prometheus sums per command over `all` processes (the report
/// itself was cut to `--top` processes); the other formats use `r` alone.
pub fn write(
    w: &mut dyn Write,
    r: &WhoReport,
    all: &[ProcessReport],
    how: WhoRender,
) -> Result<()> {
    match how.format {
        WhoFormat::Table => table(w, r, how.style),
        WhoFormat::Json => json::write(w, r),
        WhoFormat::Prometheus => prometheus(w, r, all, how.top),
    }
}

fn table(w: &mut dyn Write, r: &WhoReport, style: Style) -> Result<()> {
    writeln!(
        w,
        "Recorded {:.1}s: {} process(es) closed connections; TIME_WAIT now {} ({} attributed, {} unattributed).",
        r.duration_s,
        grouped((r.processes.len() + r.processes_omitted) as u64),
        grouped(r.time_wait_total),
        grouped(r.time_wait_total - r.unattributed_time_wait.min(r.time_wait_total)),
        grouped(r.unattributed_time_wait),
    )?;
    writeln!(w)?;
    if r.processes.is_empty() {
        writeln!(
            w,
            "No TCP connection was closed by any process while recording."
        )?;
    } else {
        let mut t = new_table(
            style,
            &[
                "PID",
                "COMMAND",
                "ACTIVE CLOSES",
                "PER S",
                "TIME_WAIT NOW",
                "ABORTS",
                "PASSIVE",
                "TOP PEERS",
                "CGROUP",
            ],
        );
        for p in &r.processes {
            let peers: Vec<String> = p
                .top_peers
                .iter()
                .take(3)
                .map(|x| format!("{} ({})", SocketAddr::new(x.peer, x.peer_port), x.count))
                .collect();
            t.add_row(vec![
                num(p.pid),
                comfy_table::Cell::new(&p.comm),
                num(grouped(p.active_closes)),
                num(format!("{:.1}", p.rate_per_s)),
                num(grouped(p.time_wait_now)),
                num(grouped(p.aborts)),
                num(grouped(p.passive_closes)),
                comfy_table::Cell::new(peers.join(", ")),
                comfy_table::Cell::new(p.cgroup.as_deref().unwrap_or("-")),
            ]);
        }
        write_table(w, &t)?;
        if r.processes_omitted > 0 {
            writeln!(
                w,
                "... and {} more process(es) (--top 0 shows all)",
                grouped(r.processes_omitted as u64)
            )?;
        }
    }
    if r.lost_events > 0 {
        writeln!(
            w,
            "WARNING: the kernel dropped {} event(s) (buffer overrun): counts are lower than the truth.",
            grouped(r.lost_events)
        )?;
    }
    if r.resets_received > 0 {
        writeln!(
            w,
            "{} reset(s) received from peers (not counted against any process).",
            grouped(r.resets_received)
        )?;
    }
    if r.unparsed_records > 0 {
        writeln!(
            w,
            "WARNING: {} trace record(s) could not be read and were skipped.",
            grouped(r.unparsed_records)
        )?;
    }
    writeln!(w)?;
    match style.width {
        Some(width) => writeln!(w, "{}", crate::text::wrap(r.note, width, "", ""))?,
        None => writeln!(w, "{}", r.note)?,
    }
    Ok(())
}

/// One command's sums over its processes.
#[derive(Clone, Copy, Default)]
struct PerComm {
    active: u64,
    aborts: u64,
    time_wait: u64,
}

impl PerComm {
    fn add(&mut self, o: PerComm) {
        self.active += o.active;
        self.aborts += o.aborts;
        self.time_wait += o.time_wait;
    }
}

/// The per-command metric families: name, type, help, and which sum.
type PerCommFamily = (&'static str, Kind, &'static str, fn(&PerComm) -> u64);

const PER_COMM: [PerCommFamily; 3] = [
    (
        "tw_inspect_active_closes_total",
        Kind::Counter,
        "TCP connections this command closed first (ESTABLISHED to FIN_WAIT1) during the recording window.",
        |v| v.active,
    ),
    (
        "tw_inspect_aborts_total",
        Kind::Counter,
        "TCP connections reset (to CLOSE) in this command's context during the recording window.",
        |v| v.aborts,
    ),
    (
        "tw_inspect_time_wait_attributed",
        Kind::Gauge,
        "TIME_WAIT sockets at the end of recording that this command closed.",
        |v| v.time_wait,
    ),
];

/// Per command, not per pid, so that restarts do not create series; the `top`
/// busiest commands keep their name and the rest are summed as `other`.
fn prometheus(w: &mut dyn Write, r: &WhoReport, all: &[ProcessReport], top: usize) -> Result<()> {
    let mut by_comm: BTreeMap<&str, PerComm> = BTreeMap::new();
    for p in all {
        by_comm.entry(p.comm.as_str()).or_default().add(PerComm {
            active: p.active_closes,
            aborts: p.aborts,
            time_wait: p.time_wait_now,
        });
    }
    let mut rows: Vec<(&str, PerComm)> = by_comm.into_iter().collect();
    rows.sort_by(|a, b| {
        b.1.active
            .cmp(&a.1.active)
            .then(b.1.time_wait.cmp(&a.1.time_wait))
            .then(a.0.cmp(b.0))
    });
    if top > 0 && rows.len() > top {
        let mut other = PerComm::default();
        for (_, v) in rows.split_off(top) {
            other.add(v);
        }
        rows.push(("other", other));
    }
    let mut x = Exposition::new(w);
    for (name, kind, help, pick) in PER_COMM {
        x.family(name, kind, help)?;
        for (comm, v) in &rows {
            x.sample(&[("comm", comm)], pick(v))?;
        }
    }
    x.family(
        "tw_inspect_time_wait_unattributed",
        Kind::Gauge,
        "TIME_WAIT sockets at the end of recording that no recorded close explains.",
    )?;
    x.sample(&[], r.unattributed_time_wait)?;
    x.family(
        "tw_inspect_trace_lost_events_total",
        Kind::Counter,
        "Trace events the kernel dropped during recording.",
    )?;
    x.sample(&[], r.lost_events)?;
    x.family(
        "tw_inspect_trace_duration_seconds",
        Kind::Gauge,
        "Length of the recording window.",
    )?;
    x.sample(&[], r.duration_s)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::attribute::{NOTE, PeerReport};

    fn proc(pid: u32, comm: &str, active: u64) -> ProcessReport {
        ProcessReport {
            pid,
            comm: comm.into(),
            cgroup: None,
            active_closes: active,
            aborts: 0,
            passive_closes: 0,
            rate_per_s: 0.0,
            time_wait_now: active / 2,
            top_peers: vec![],
        }
    }

    fn report(procs: Vec<ProcessReport>) -> WhoReport {
        WhoReport {
            duration_s: 3.0,
            lost_events: 0,
            processes: procs,
            unattributed_time_wait: 4,
            time_wait_total: 10,
            resets_received: 0,
            processes_omitted: 0,
            unparsed_records: 0,
            note: NOTE,
        }
    }

    #[test]
    fn prometheus_is_bounded_and_escaped() {
        let all = vec![
            proc(1, "a\"b", 10),
            proc(2, "nginx", 30),
            proc(3, "nginx", 5),
            proc(4, "c", 1),
        ];
        let r = report(all.clone());
        let mut out = Vec::new();
        prometheus(&mut out, &r, &all, 2).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("tw_inspect_active_closes_total{comm=\"nginx\"} 35\n"),
            "{s}"
        );
        assert!(
            s.contains("tw_inspect_active_closes_total{comm=\"a\\\"b\"} 10\n"),
            "{s}"
        );
        assert!(
            s.contains("tw_inspect_active_closes_total{comm=\"other\"} 1\n"),
            "{s}"
        );
        assert_eq!(s.matches("tw_inspect_active_closes_total{").count(), 3);
        assert!(s.contains("# TYPE tw_inspect_active_closes_total counter"));
        assert!(s.contains("tw_inspect_time_wait_unattributed 4\n"));
    }

    #[test]
    fn table_has_rows_and_note() {
        let mut curl = proc(42, "curl", 200);
        curl.top_peers = vec![
            PeerReport {
                peer: "::1".parse().unwrap(),
                peer_port: 80,
                count: 3,
            },
            PeerReport {
                peer: "10.0.0.1".parse().unwrap(),
                peer_port: 443,
                count: 1,
            },
        ];
        let r = report(vec![curl]);
        let mut out = Vec::new();
        write(
            &mut out,
            &r,
            &[],
            WhoRender {
                format: WhoFormat::Table,
                style: Style::new(false),
                top: 0,
            },
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("curl") && s.contains("200") && s.contains("Attribution:"),
            "{s}"
        );
        assert!(s.contains("[::1]:80 (3), 10.0.0.1:443 (1)"), "{s}");
        assert!(s.contains("4 unattributed"), "{s}");
    }
}
