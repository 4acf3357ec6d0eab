//! `who` output: the table for people and the Prometheus exposition.
//! JSON is [`WhoReport`] serialised as is.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;

use crate::render::table::{grouped, new_table, num};
use crate::render::{Style, endpoint};
use crate::trace::attribute::WhoReport;

pub fn table(w: &mut dyn Write, r: &WhoReport, style: Style) -> Result<()> {
    writeln!(
        w,
        "Recorded {:.1}s: {} process(es) closed connections; TIME_WAIT now {} ({} attributed, {} unattributed).",
        r.duration_s,
        r.processes.len() + r.processes_omitted,
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
                .map(|x| format!("{} ({})", endpoint(&x.peer, x.peer_port), x.count))
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
        writeln!(w, "{t}")?;
        if r.processes_omitted > 0 {
            writeln!(
                w,
                "... and {} more process(es) (--top 0 shows all)",
                r.processes_omitted
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
            r.unparsed_records
        )?;
    }
    writeln!(w)?;
    for line in wrap(r.note, 100) {
        writeln!(w, "{line}")?;
    }
    Ok(())
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let cur = lines.last_mut().expect("never empty");
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
    }
    lines
}

/// A label value with `\`, `"` and newlines escaped as the exposition format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Per command, not per pid, so that restarts do not create series; the `top`
/// busiest commands keep their name and the rest are summed as `other`.
pub fn prometheus(
    w: &mut dyn Write,
    r: &WhoReport,
    all: &[crate::trace::attribute::ProcessReport],
    top: usize,
) -> Result<()> {
    let mut by_comm: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for p in all {
        let e = by_comm.entry(p.comm.as_str()).or_default();
        e.0 += p.active_closes;
        e.1 += p.aborts;
        e.2 += p.time_wait_now;
    }
    let mut rows: Vec<(String, (u64, u64, u64))> = by_comm
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    rows.sort_by(|a, b| {
        b.1.0
            .cmp(&a.1.0)
            .then(b.1.2.cmp(&a.1.2))
            .then(a.0.cmp(&b.0))
    });
    if top > 0 && rows.len() > top {
        let rest = rows.split_off(top);
        let mut other = (0, 0, 0);
        for (_, v) in rest {
            other.0 += v.0;
            other.1 += v.1;
            other.2 += v.2;
        }
        rows.push(("other".to_string(), other));
    }
    let metric = |w: &mut dyn Write,
                  name: &str,
                  kind: &str,
                  help: &str,
                  pick: fn(&(u64, u64, u64)) -> u64|
     -> Result<()> {
        writeln!(w, "# HELP {name} {help}")?;
        writeln!(w, "# TYPE {name} {kind}")?;
        for (comm, v) in &rows {
            writeln!(w, "{name}{{comm=\"{}\"}} {}", label(comm), pick(v))?;
        }
        Ok(())
    };
    metric(
        w,
        "tw_inspect_active_closes_total",
        "counter",
        "TCP connections this command closed first (ESTABLISHED to FIN_WAIT1) during the recording window.",
        |v| v.0,
    )?;
    metric(
        w,
        "tw_inspect_aborts_total",
        "counter",
        "TCP connections reset (to CLOSE) in this command's context during the recording window.",
        |v| v.1,
    )?;
    metric(
        w,
        "tw_inspect_time_wait_attributed",
        "gauge",
        "TIME_WAIT sockets at the end of recording that this command closed.",
        |v| v.2,
    )?;
    writeln!(
        w,
        "# HELP tw_inspect_time_wait_unattributed TIME_WAIT sockets at the end of recording that no recorded close explains."
    )?;
    writeln!(w, "# TYPE tw_inspect_time_wait_unattributed gauge")?;
    writeln!(
        w,
        "tw_inspect_time_wait_unattributed {}",
        r.unattributed_time_wait
    )?;
    writeln!(
        w,
        "# HELP tw_inspect_trace_lost_events_total Trace events the kernel dropped during recording."
    )?;
    writeln!(w, "# TYPE tw_inspect_trace_lost_events_total counter")?;
    writeln!(w, "tw_inspect_trace_lost_events_total {}", r.lost_events)?;
    writeln!(
        w,
        "# HELP tw_inspect_trace_duration_seconds Length of the recording window."
    )?;
    writeln!(w, "# TYPE tw_inspect_trace_duration_seconds gauge")?;
    writeln!(w, "tw_inspect_trace_duration_seconds {}", r.duration_s)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::attribute::{NOTE, ProcessReport};

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
        let r = report(vec![proc(42, "curl", 200)]);
        let mut out = Vec::new();
        table(&mut out, &r, Style { color: false }).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("curl") && s.contains("200") && s.contains("Attribution:"),
            "{s}"
        );
        assert!(s.contains("4 unattributed"), "{s}");
    }
}
