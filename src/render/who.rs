//! `who` output: the table for people and the Prometheus exposition.
//! JSON is [`WhoReport`] serialised as is.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;

use anyhow::Result;

use super::prometheus::{Exposition, Kind};
use super::table::{grouped, new_table, num, write_table};
use super::{Style, json};
use crate::escape::Visible;
use crate::host::identity::ContainerRef;
use crate::trace::attribute::{By, ProcessReport, WhoReport};

/// The formats `who` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhoFormat {
    Table,
    Json,
    Prometheus,
}

/// What the Prometheus counts cover.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Window {
    /// One recording window: counts are gauges (they start from zero each run,
    /// so `rate()` does not apply; divide by `tw_inspect_who_window_seconds`).
    Once,
    /// The file is rewritten during one long recording: counts are counters
    /// that only grow while the process runs, and `rate()` works.
    Since { start_unix: f64 },
}

/// How to write a [`WhoReport`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WhoRender {
    pub format: WhoFormat,
    pub style: Style,
    /// Prometheus: the busiest commands that keep their own series (0 = all).
    pub top: usize,
    pub window: Window,
}

/// Writes `r`. Prometheus sums per command over `all` rows (the report
/// itself was cut to `--top` rows); the other formats use `r` alone.
pub fn write(
    w: &mut dyn Write,
    r: &WhoReport,
    all: &[ProcessReport],
    how: WhoRender,
) -> Result<()> {
    match how.format {
        WhoFormat::Table => table(w, r, how.style),
        WhoFormat::Json => json::write(w, r),
        WhoFormat::Prometheus => prometheus(w, r, all, how.top, how.window),
    }
}

/// Where a row's active closes went: its listening ports (a server) and its
/// destinations (a client).
fn closed_on(p: &ProcessReport) -> String {
    let mut parts: Vec<String> = p
        .top_local_ports
        .iter()
        .take(3)
        .map(|x| format!("port {} ({})", x.port, grouped(x.count)))
        .collect();
    parts.extend(p.top_peers.iter().take(3).map(|x| {
        format!(
            "to {} ({})",
            SocketAddr::new(x.peer, x.peer_port),
            grouped(x.count)
        )
    }));
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn pids(p: &ProcessReport) -> String {
    if p.process_count == 1 {
        return p.pid.to_string();
    }
    let shown: Vec<String> = p.pids.iter().take(3).map(u32::to_string).collect();
    let more = p.process_count - shown.len() as u64;
    if more > 0 {
        format!("{} ({} and {more} more)", p.process_count, shown.join(","))
    } else {
        format!("{} ({})", p.process_count, shown.join(","))
    }
}

fn table(w: &mut dyn Write, r: &WhoReport, style: Style) -> Result<()> {
    let rows = r.processes.len() + r.processes_omitted;
    let what = match r.by {
        By::Command => "command(s)",
        By::Pid => "process(es)",
    };
    writeln!(
        w,
        "Recorded {:.1}s: {} {what} closed connections ({} with a FIN first, {} aborted with a reset); TIME_WAIT now {} ({} attributed, {} unattributed).",
        r.duration_s,
        grouped(rows as u64),
        grouped(r.active_closes),
        grouped(r.aborts),
        grouped(r.time_wait_total),
        grouped(r.time_wait_total - r.unattributed_time_wait.min(r.time_wait_total)),
        grouped(r.unattributed_time_wait),
    )?;
    if let Some(ns) = &r.netns {
        writeln!(
            w,
            "Network namespace {}: its processes and its TIME_WAIT only; {} active close(s) elsewhere left out.",
            Visible(ns),
            grouped(r.other_netns_closes.unwrap_or(0))
        )?;
    }
    writeln!(w)?;
    if r.processes.is_empty() {
        writeln!(
            w,
            "No TCP connection was closed by any process while recording."
        )?;
    } else {
        let any_netns = r.processes.iter().any(|p| p.netns.is_some());
        let any_container = r
            .processes
            .iter()
            .any(|p| p.container.is_some() || p.pod.is_some());
        let mut header = match r.by {
            By::Command => vec!["COMMAND", "PIDS"],
            By::Pid => vec!["PID", "COMMAND"],
        };
        header.extend([
            "FIN CLOSES",
            "PER S",
            "TIME_WAIT NOW",
            "RST ABORTS",
            "PASSIVE",
            "CLOSED ON",
        ]);
        if any_container {
            header.push("CONTAINER");
        }
        if any_netns {
            header.push("NETNS");
        }
        header.push("CGROUP");
        let mut t = new_table(style, &header);
        for p in &r.processes {
            let comm = match p.comm_note {
                Some(note) => format!("{} ({note})", Visible(&p.comm)),
                None => Visible(&p.comm).to_string(),
            };
            let mut row = match r.by {
                By::Command => vec![comfy_table::Cell::new(comm), num(pids(p))],
                By::Pid => vec![num(p.pid), comfy_table::Cell::new(comm)],
            };
            row.extend([
                num(grouped(p.active_closes)),
                num(format!("{:.1}", p.rate_per_s)),
                num(grouped(p.time_wait_now)),
                num(grouped(p.aborts)),
                num(grouped(p.passive_closes)),
                comfy_table::Cell::new(closed_on(p)),
            ]);
            if any_container {
                row.push(comfy_table::Cell::new(
                    Visible(&container_cell(p)).to_string(),
                ));
            }
            if any_netns {
                row.push(comfy_table::Cell::new(Visible(
                    p.netns.as_deref().unwrap_or("-"),
                )));
            }
            row.push(comfy_table::Cell::new(Visible(
                p.cgroup.as_deref().unwrap_or("-"),
            )));
            t.add_row(row);
        }
        write_table(w, &t)?;
        if r.processes_omitted > 0 {
            writeln!(
                w,
                "... and {} more row(s) (--top 0 shows all)",
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

/// `NAME`, or `POD_NAMESPACE/POD NAME` for a pod's container; `-` outside containers.
fn container_cell(p: &ProcessReport) -> String {
    let c = p.container.as_ref().map(ContainerRef::label);
    match (&p.pod, c) {
        (Some(pod), Some(c)) => format!("{} {c}", pod.label()),
        (Some(pod), None) => pod.label(),
        (None, Some(c)) => c,
        (None, None) => "-".into(),
    }
}

/// One command's sums over its processes.
#[derive(Clone, Copy, Default)]
struct PerComm {
    active: u64,
    aborts: u64,
    passive: u64,
    time_wait: u64,
}

impl PerComm {
    fn add(&mut self, o: PerComm) {
        self.active += o.active;
        self.aborts += o.aborts;
        self.passive += o.passive;
        self.time_wait += o.time_wait;
    }
}

/// A per-command metric family: gauge name (one window), counter name
/// (counted since the start), help, and which sum.
struct PerCommFamily {
    gauge: &'static str,
    counter: &'static str,
    help: &'static str,
    pick: fn(&PerComm) -> u64,
}

const PER_COMM: [PerCommFamily; 3] = [
    PerCommFamily {
        gauge: "tw_inspect_who_fin_closes",
        counter: "tw_inspect_who_fin_closes_total",
        help: "TCP connections this command closed first with a FIN (ESTABLISHED to FIN_WAIT1, once per connection); each leaves a TIME_WAIT here.",
        pick: |v| v.active,
    },
    PerCommFamily {
        gauge: "tw_inspect_who_rst_aborts",
        counter: "tw_inspect_who_rst_aborts_total",
        help: "TCP connections this command ended with a reset instead of a FIN (SO_LINGER 0, unread data): no TIME_WAIT, the peer sees ECONNRESET.",
        pick: |v| v.aborts,
    },
    PerCommFamily {
        gauge: "tw_inspect_who_passive_closes",
        counter: "tw_inspect_who_passive_closes_total",
        help: "TCP connections this command closed after its peer did (CLOSE_WAIT to LAST_ACK): no TIME_WAIT here.",
        pick: |v| v.passive,
    },
];

/// The labels of one row of who's metrics: the command, and the container
/// and pod its processes run in (when any), which stay the same across restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Who {
    comm: String,
    container: String,
    pod: String,
    pod_namespace: String,
}

impl Who {
    fn of(p: &ProcessReport) -> Who {
        let pod = p.pod.as_ref();
        Who {
            comm: p.comm.clone(),
            container: p
                .container
                .as_ref()
                .map(ContainerRef::label)
                .unwrap_or_default(),
            pod: pod
                .and_then(|p| p.name.clone().or_else(|| p.uid.as_ref().map(|_| p.label())))
                .unwrap_or_default(),
            pod_namespace: pod.and_then(|p| p.namespace.clone()).unwrap_or_default(),
        }
    }

    fn other() -> Who {
        Who {
            comm: "other".into(),
            ..Who::default()
        }
    }

    /// `comm`, then `container`, `pod` and `pod_namespace` where known.
    fn labels(&self) -> Vec<(&str, &str)> {
        let mut v = vec![("comm", self.comm.as_str())];
        for (k, val) in [
            ("container", &self.container),
            ("pod", &self.pod),
            ("pod_namespace", &self.pod_namespace),
        ] {
            if !val.is_empty() {
                v.push((k, val.as_str()));
            }
        }
        v
    }
}

/// Per command (and container or pod), not per pid, so that restarts do not
/// create series; the `top` busiest keep their labels and the rest are summed
/// as `comm="other"`.
fn prometheus(
    w: &mut dyn Write,
    r: &WhoReport,
    all: &[ProcessReport],
    top: usize,
    window: Window,
) -> Result<()> {
    let mut by_comm: BTreeMap<Who, PerComm> = BTreeMap::new();
    for p in all {
        by_comm.entry(Who::of(p)).or_default().add(PerComm {
            active: p.active_closes,
            aborts: p.aborts,
            passive: p.passive_closes,
            time_wait: p.time_wait_now,
        });
    }
    let mut rows: Vec<(Who, PerComm)> = by_comm.into_iter().collect();
    rows.sort_by(|a, b| {
        b.1.active
            .cmp(&a.1.active)
            .then(b.1.time_wait.cmp(&a.1.time_wait))
            .then(a.0.cmp(&b.0))
    });
    if top > 0 && rows.len() > top {
        let mut other = PerComm::default();
        for (_, v) in rows.split_off(top) {
            other.add(v);
        }
        rows.push((Who::other(), other));
    }
    let mut x = Exposition::new(w);
    for f in PER_COMM {
        match window {
            Window::Once => x.family(
                f.gauge,
                Kind::Gauge,
                &format!("{} Counted over the last recording window (tw_inspect_who_window_seconds); divide by it for a rate.", f.help),
            )?,
            Window::Since { .. } => x.family(
                f.counter,
                Kind::Counter,
                &format!("{} Counted since tw_inspect_who_start_time_seconds.", f.help),
            )?,
        }
        for (who, v) in &rows {
            x.sample(&who.labels(), (f.pick)(v))?;
        }
    }
    x.family(
        "tw_inspect_who_time_wait",
        Kind::Gauge,
        "TIME_WAIT sockets present at the end of recording that this command closed.",
    )?;
    for (who, v) in &rows {
        x.sample(&who.labels(), v.time_wait)?;
    }
    x.family(
        "tw_inspect_who_time_wait_unattributed",
        Kind::Gauge,
        "TIME_WAIT sockets at the end of recording that no recorded close explains.",
    )?;
    x.sample(&[], r.unattributed_time_wait)?;
    match window {
        Window::Once => {
            x.family(
                "tw_inspect_who_lost_events",
                Kind::Gauge,
                "Trace events the kernel dropped during the recording window.",
            )?;
            x.sample(&[], r.lost_events)?;
            x.family(
                "tw_inspect_who_window_seconds",
                Kind::Gauge,
                "Length of the recording window the counts cover.",
            )?;
            x.sample(&[], r.duration_s)?;
        }
        Window::Since { start_unix } => {
            x.family(
                "tw_inspect_who_lost_events_total",
                Kind::Counter,
                "Trace events the kernel dropped since the recording started.",
            )?;
            x.sample(&[], r.lost_events)?;
            x.family(
                "tw_inspect_who_start_time_seconds",
                Kind::Gauge,
                "When the recording behind the counters started, in seconds since the Unix epoch; a new value means the counters restarted.",
            )?;
            x.sample(&[], format!("{start_unix:.3}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::attribute::{LocalPortReport, NOTE, PeerReport};

    fn proc(pid: u32, comm: &str, active: u64) -> ProcessReport {
        ProcessReport {
            pid,
            comm: comm.into(),
            comm_note: None,
            pids: vec![pid],
            process_count: 1,
            cgroup: None,
            container: None,
            pod: None,
            active_closes: active,
            aborts: 0,
            passive_closes: 0,
            rate_per_s: 0.0,
            time_wait_now: active / 2,
            top_local_ports: vec![],
            top_peers: vec![],
            netns: None,
        }
    }

    fn report(procs: Vec<ProcessReport>) -> WhoReport {
        WhoReport {
            duration_s: 3.0,
            by: By::Command,
            lost_events: 0,
            active_closes: procs.iter().map(|p| p.active_closes).sum(),
            aborts: procs.iter().map(|p| p.aborts).sum(),
            processes: procs,
            unattributed_time_wait: 4,
            time_wait_total: 10,
            resets_received: 0,
            processes_omitted: 0,
            unparsed_records: 0,
            netns: None,
            other_netns_closes: None,
            note: NOTE,
        }
    }

    #[test]
    fn prometheus_names_the_container_and_pod_of_each_command() {
        use crate::host::identity::PodRef;
        let ctr = |id: char, name: &str| ContainerRef {
            id: id.to_string().repeat(64),
            name: Some(name.into()),
            runtime: None,
            sandbox: false,
        };
        let mut all = vec![
            proc(1, "httpd", 4),
            proc(2, "httpd", 3),
            proc(3, "httpd", 2),
            proc(4, "curl", 1),
        ];
        all[0].container = Some(ctr('a', "web1"));
        all[1].container = Some(ctr('a', "web1"));
        all[2].container = Some(ctr('b', "app"));
        all[2].pod = Some(PodRef {
            namespace: Some("shop".into()),
            name: Some("web-7f9c".into()),
            uid: None,
        });
        let mut out = Vec::new();
        prometheus(&mut out, &report(all.clone()), &all, 0, Window::Once).unwrap();
        let s = String::from_utf8(out).unwrap();
        for want in [
            "tw_inspect_who_fin_closes{comm=\"httpd\",container=\"web1\"} 7\n",
            "tw_inspect_who_fin_closes{comm=\"httpd\",container=\"app\",pod=\"web-7f9c\",pod_namespace=\"shop\"} 2\n",
            "tw_inspect_who_fin_closes{comm=\"curl\"} 1\n",
        ] {
            assert!(s.contains(want), "{want} in\n{s}");
        }
        assert_eq!(s.matches("tw_inspect_who_fin_closes{").count(), 3);
    }

    #[test]
    fn prometheus_is_bounded_escaped_and_typed_by_window() {
        let mut all = vec![
            proc(1, "a\"b", 10),
            proc(2, "nginx", 30),
            proc(3, "nginx", 5),
            proc(4, "c", 1),
        ];
        all[3].aborts = 7;
        let r = report(all.clone());
        let mut out = Vec::new();
        prometheus(&mut out, &r, &all, 2, Window::Once).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("tw_inspect_who_fin_closes{comm=\"nginx\"} 35\n"),
            "{s}"
        );
        assert!(
            s.contains("tw_inspect_who_fin_closes{comm=\"a\\\"b\"} 10\n"),
            "{s}"
        );
        assert!(
            s.contains("tw_inspect_who_fin_closes{comm=\"other\"} 1\n"),
            "{s}"
        );
        assert!(
            s.contains("tw_inspect_who_rst_aborts{comm=\"other\"} 7\n"),
            "{s}"
        );
        assert_eq!(s.matches("tw_inspect_who_fin_closes{").count(), 3);
        // A window's count is a gauge, never a counter that resets each run.
        assert!(s.contains("# TYPE tw_inspect_who_fin_closes gauge"));
        assert!(!s.contains("counter"), "{s}");
        assert!(s.contains("tw_inspect_who_window_seconds 3\n"), "{s}");
        assert!(s.contains("tw_inspect_who_time_wait_unattributed 4\n"));

        let mut out = Vec::new();
        prometheus(
            &mut out,
            &r,
            &all,
            0,
            Window::Since {
                start_unix: 1700000000.5,
            },
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("# TYPE tw_inspect_who_fin_closes_total counter"),
            "{s}"
        );
        assert!(
            s.contains("tw_inspect_who_fin_closes_total{comm=\"nginx\"} 35\n"),
            "{s}"
        );
        assert!(
            s.contains("tw_inspect_who_start_time_seconds 1700000000.500\n"),
            "{s}"
        );
        assert!(!s.contains("window_seconds"), "{s}");
    }

    #[test]
    fn table_has_rows_ports_and_note() {
        let mut curl = proc(42, "curl", 200);
        curl.pids = vec![42, 43, 44, 45];
        curl.process_count = 300;
        curl.aborts = 5;
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
        let mut nginx = proc(7, "nginx", 100);
        nginx.top_local_ports = vec![LocalPortReport {
            port: 8080,
            count: 100,
        }];
        nginx.netns = Some("blue".into());
        let mut gone = proc(9, "?", 1);
        gone.comm_note = Some(crate::trace::attribute::COMM_UNKNOWN);
        let r = report(vec![curl, nginx, gone]);
        let mut out = Vec::new();
        write(
            &mut out,
            &r,
            &[],
            WhoRender {
                format: WhoFormat::Table,
                style: Style::new(false),
                top: 0,
                window: Window::Once,
            },
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("curl") && s.contains("200") && s.contains("Attribution:"),
            "{s}"
        );
        assert!(
            s.contains("301 with a FIN first, 5 aborted with a reset"),
            "{s}"
        );
        assert!(s.contains("300 (42,43,44 and 297 more)"), "{s}");
        assert!(s.contains("to [::1]:80 (3), to 10.0.0.1:443 (1)"), "{s}");
        assert!(
            s.contains("port 8080 (100)") && s.contains("NETNS") && s.contains("blue"),
            "{s}"
        );
        assert!(s.contains("? (exited before"), "{s}");
        assert!(!s.contains("<...>"), "{s}");
        assert!(s.contains("4 unattributed"), "{s}");
    }
}
