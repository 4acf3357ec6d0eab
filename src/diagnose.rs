//! Pure diagnosis: aggregates and host settings in, findings out. Every
//! threshold is a constant here, and every message carries its numbers.

use std::net::SocketAddr;

use serde::Serialize;
use serde_json::json;

use crate::aggregate::conntrack::CtAggregate;
use crate::aggregate::{Aggregate, CloseWaitOwner, HeldWhy, PortUse, Pressure};
use crate::conntrack::CtState;
use crate::host::conntrack::CtTable;
use crate::host::counters::Readings;
use crate::host::sysctl::Sysctls;
use crate::state::TcpState;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// One finding, with the numbers behind it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Diagnosis {
    /// Stable identifier: `port-pressure`, `close-wait`, `tw-buckets`, ...
    pub kind: &'static str,
    pub severity: Severity,
    /// One or two plain sentences with the numbers.
    pub message: String,
    /// The numbers behind the message, for machines.
    pub data: serde_json::Value,
}

/// Share of the usable ephemeral ports one destination uses: warning, critical (percent).
pub const PORT_PRESSURE: (f64, f64) = (50.0, 80.0);
/// Share of `tcp_max_tw_buckets` in use: warning, critical (percent).
pub const TW_BUCKETS: (f64, f64) = (50.0, 90.0);
/// CLOSE_WAIT sockets held by one process: warning from, critical from.
pub const CLOSE_WAIT: (u64, u64) = (10, 1000);
/// Orphaned FIN_WAIT2 sockets: info from, warning from.
pub const ORPHAN_FIN_WAIT2: (u64, u64) = (100, 1000);
/// TIME_WAIT sockets on listening ports: info from.
pub const SERVER_TIME_WAIT: u64 = 100;
/// Share of `nf_conntrack_max` one namespace's table holds: warning, critical (percent).
pub const CONNTRACK_FILL: (f64, f64) = (75.0, 90.0);
/// Conntrack TIME_WAIT entries at least this many, and at least
/// [`CONNTRACK_TW_RATIO`] times the TIME_WAIT sockets, are worth a word.
pub const CONNTRACK_TW_MIN: u64 = 1000;
pub const CONNTRACK_TW_RATIO: u64 = 10;
/// The default `list` view reads conntrack entries when the table is at least
/// this full (percent), has lost packets, or holds this many times more
/// entries than there are sockets (and at least [`CONNTRACK_TW_MIN`]).
pub const CONNTRACK_NOTABLE_FILL: f64 = 50.0;
pub const CONNTRACK_NOTABLE_RATIO: u64 = 4;
/// About this many bytes of kernel memory per entry (the `nf_conntrack` slab
/// object on Linux 6.18 x86_64; it varies with the kernel's options).
pub const CONNTRACK_ENTRY_BYTES: u64 = 256;

/// At most this many findings of one kind (the busiest first).
pub const MAX_PER_KIND: usize = 5;
/// Connections reset instead of closed, per second: a warning from this rate
/// (measured over at least [`ABORT_MIN_WINDOW_S`]); any at all is information.
pub const ABORTS_PER_S: f64 = 10.0;
/// A rate from a shorter window is too noisy to warn on.
pub const ABORT_MIN_WINDOW_S: f64 = 1.0;

/// The counters behind the `aborts` finding: resets sent where a close would
/// have been (checked on Linux 6.18: SO_LINGER 0 counts as TCPAbortOnData).
pub const ABORT_COUNTERS: [(&str, &str); 3] = [
    (
        "TcpExtTCPAbortOnData",
        "close() with SO_LINGER 0, or data arriving after close()",
    ),
    ("TcpExtTCPAbortOnClose", "close() with unread data"),
    (
        "TcpExtTCPAbortOnLinger",
        "FIN_WAIT2 cut short by a negative TCP_LINGER2",
    ),
];

/// Everything the diagnoses read.
pub struct Inputs<'a> {
    pub agg: &'a Aggregate,
    pub pressure: Option<&'a Pressure>,
    pub sysctls: &'a Sysctls,
    /// From [`Teardown::close_wait_owners`](crate::aggregate::Teardown::close_wait_owners).
    pub close_wait: &'a [CloseWaitOwner],
    /// From [`Teardown::server_time_wait`](crate::aggregate::Teardown::server_time_wait).
    pub server_time_wait: &'a [(u16, u64)],
    /// Two readings of the kernel's counters: growth between them is evidence.
    pub counters: Option<&'a Readings>,
}

/// The findings, most severe first. Empty when nothing is wrong.
pub fn diagnose(i: &Inputs) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    if let Some(p) = i.pressure {
        out.extend(port_pressure(p, i.sysctls));
    }
    out.extend(close_wait(i.close_wait, i.agg.count(TcpState::CloseWait)));
    out.extend(tw_buckets(i.agg, i.sysctls, i.counters));
    out.extend(aborts(i.counters));
    out.extend(orphan_fin_wait2(i.agg, i.sysctls));
    out.extend(server_time_wait(i.server_time_wait));
    out.sort_by_key(|d| std::cmp::Reverse(d.severity));
    out
}

/// True when TIME_WAIT (with orphaned FIN_WAIT2) fills `tcp_max_tw_buckets`
/// to the critical share: then whether closes overflow it now is worth a
/// second reading of the counters a moment later.
pub fn tw_buckets_near_full(agg: &Aggregate, s: &Sysctls) -> bool {
    let Some(max) = s.tcp_max_tw_buckets.filter(|m| *m > 0) else {
        return false;
    };
    let used = agg.count(TcpState::TimeWait) + agg.orphaned[TcpState::FinWait2.index()];
    pct(used, max) >= TW_BUCKETS.1
}

/// A duration in words for messages: `850 ms`, `1.0 s`, `2m05s`.
pub fn age_words(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1e3),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 * 100.0 / of as f64
    }
}

fn level(value: f64, (warn, crit): (f64, f64)) -> Option<Severity> {
    if value >= crit {
        Some(Severity::Critical)
    } else if value >= warn {
        Some(Severity::Warning)
    } else {
        None
    }
}

/// Words for why TIME_WAIT ports to a destination are held.
fn held_why(w: HeldWhy) -> &'static str {
    match w {
        HeldWhy::ReuseOff => "tcp_tw_reuse = 0",
        HeldWhy::NotLoopback => "tcp_tw_reuse = 2 covers loopback only",
        HeldWhy::NoTimestamps => "tcp_timestamps = 0, and reuse needs timestamps",
        HeldWhy::Unknown => "the reuse settings are not known",
    }
}

fn held_why_key(w: HeldWhy) -> &'static str {
    match w {
        HeldWhy::ReuseOff => "tcp_tw_reuse=0",
        HeldWhy::NotLoopback => "tcp_tw_reuse=2-not-loopback",
        HeldWhy::NoTimestamps => "tcp_timestamps=0",
        HeldWhy::Unknown => "unknown",
    }
}

/// The remedies that apply, never one already in force.
fn pressure_remedies(u: &PortUse, why: Option<HeldWhy>, range: (u16, u16)) -> String {
    let mut r = vec![
        "reuse connections (keep-alive, pooling)".to_string(),
        "more source addresses or destinations".to_string(),
    ];
    // The widest range connect() can use starts at 1024 (below are privileged ports).
    if range.0 > 1024 || range.1 < 65535 {
        r.push(format!(
            "a wider ip_local_port_range (now {}-{})",
            range.0, range.1
        ));
    }
    if u.tw_held > 0 {
        match why {
            Some(HeldWhy::ReuseOff) => {
                r.push("tcp_tw_reuse=1 so connect() takes over TIME_WAIT ports (now 0)".into())
            }
            Some(HeldWhy::NotLoopback) => r.push(
                "tcp_tw_reuse=1 so connect() takes over TIME_WAIT ports to any destination (now 2: loopback only)"
                    .into(),
            ),
            Some(HeldWhy::NoTimestamps) => {
                r.push("tcp_timestamps=1, which tcp_tw_reuse needs (now 0)".into())
            }
            Some(HeldWhy::Unknown) | None => {}
        }
    }
    r.join("; ")
}

fn port_pressure(p: &Pressure, s: &Sysctls) -> Vec<Diagnosis> {
    let Some(usable) = s.ephemeral_ports().filter(|n| *n > 0) else {
        return Vec::new();
    };
    let (lo, hi) = p.range;
    let reserved = s.reserved_in_range(lo, hi);
    let policy = p.policy;
    let delay = policy.delay_ms;
    p.sorted()
        .into_iter()
        .filter_map(|(d, u)| {
            let (held, in_use) = (u.held(), u.in_use());
            let held_share = pct(held, usable);
            let share = pct(in_use, usable);
            // Ports connect() takes over do not count; when only they make the
            // numbers high, say so once, as information.
            let severity = match level(held_share, PORT_PRESSURE) {
                Some(s) => s,
                None if u.tw_reusable > 0 && level(share, PORT_PRESSURE).is_some() => {
                    Severity::Info
                }
                None => return None,
            };
            let why = policy.held_why(&d);
            let dest = SocketAddr::new(d.peer, d.peer_port);
            let reuse_now = policy.tw_reuse.map_or("?".into(), |v| v.to_string());
            let reusable = format!(
                "{} in TIME_WAIT whose ports connect() takes over (tcp_tw_reuse = {reuse_now}, timestamps on, older than {delay} ms)",
                u.tw_reusable
            );
            let message = if severity == Severity::Info {
                format!(
                    "{in_use} of {usable} ephemeral ports in use towards {dest} from {} ({share:.0}%), but only {held} held: \
{reusable}, so they do not make new connections fail.",
                    d.local
                )
            } else {
                let mut parts = Vec::new();
                if u.other > 0 {
                    parts.push(format!("{} connected or closing", u.other));
                }
                if u.tw_held > 0 {
                    let because = why.map_or("", held_why);
                    parts.push(format!(
                        "{} in TIME_WAIT that connect() cannot take over ({because})",
                        u.tw_held
                    ));
                }
                if u.tw_maturing > 0 {
                    parts.push(format!(
                        "{} in TIME_WAIT younger than the {delay} ms reuse delay, taken over once older",
                        u.tw_maturing
                    ));
                }
                let also = if u.tw_reusable > 0 {
                    format!(" Not counted: {reusable}.")
                } else {
                    String::new()
                };
                format!(
                    "{held} of {usable} usable ephemeral ports held towards {dest} from {} ({held_share:.0}%; range {lo}-{hi}, {reserved} reserved): \
{}. At {usable} held, new connections to that destination fail with EADDRNOTAVAIL.{also} Remedies: {}.",
                    d.local,
                    parts.join(", "),
                    pressure_remedies(&u, why, p.range)
                )
            };
            Some(Diagnosis {
                kind: "port-pressure",
                severity,
                message,
                data: json!({
                    "local": d.local.to_string(),
                    "peer": d.peer.to_string(),
                    "peer_port": d.peer_port,
                    "in_use": in_use,
                    "held": held,
                    "other": u.other,
                    "time_wait_held": u.tw_held,
                    "time_wait_maturing": u.tw_maturing,
                    "time_wait_reusable": u.tw_reusable,
                    "usable": usable,
                    "percent": (share * 10.0).round() / 10.0,
                    "held_percent": (held_share * 10.0).round() / 10.0,
                    "range": [lo, hi],
                    "reserved": reserved,
                    "tcp_tw_reuse": policy.tw_reuse,
                    "tcp_timestamps": policy.timestamps,
                    "tcp_tw_reuse_delay_ms": delay,
                    "held_because": why.map(held_why_key),
                }),
            })
        })
        .take(MAX_PER_KIND)
        .collect()
}

fn close_wait(owners: &[CloseWaitOwner], total: u64) -> Vec<Diagnosis> {
    owners
        .iter()
        .filter(|o| o.count >= CLOSE_WAIT.0)
        .take(MAX_PER_KIND)
        .map(|o| {
            let n = o.count;
            let severity = if n >= CLOSE_WAIT.1 { Severity::Critical } else { Severity::Warning };
            let oldest = o
                .oldest_ms
                .map(|ms| format!(" The oldest has waited {} since its peer closed.", age_words(ms.into())))
                .unwrap_or_default();
            match &o.owner {
                Some(p) => Diagnosis {
                    kind: "close-wait",
                    severity,
                    message: format!(
                        "{n} CLOSE_WAIT sockets held by {} (pid {}), of {total} in all: their peers closed and this process \
has not closed its ends, the likely leak. They stay until it closes them or exits.{oldest}",
                        p.comm, p.pid
                    ),
                    data: json!({ "pid": p.pid, "comm": p.comm, "count": n, "total": total, "oldest_ms": o.oldest_ms }),
                },
                None => Diagnosis {
                    kind: "close-wait",
                    severity,
                    message: format!(
                        "{n} CLOSE_WAIT sockets, of {total} in all, held by processes that could not be identified \
(sockets from a snapshot, processes in another PID namespace, or no permission to read /proc/PID/fd: run as root): their peers closed and the \
application has not closed its ends, the likely leak.{oldest}"
                    ),
                    data: json!({ "pid": null, "comm": null, "count": n, "total": total, "oldest_ms": o.oldest_ms }),
                },
            }
        })
        .collect()
}

fn tw_buckets(agg: &Aggregate, s: &Sysctls, counters: Option<&Readings>) -> Option<Diagnosis> {
    let max = s.tcp_max_tw_buckets.filter(|m| *m > 0)?;
    let tw = agg.count(TcpState::TimeWait);
    let fw2 = agg.orphaned[TcpState::FinWait2.index()];
    let used = tw + fw2;
    let share = pct(used, max);
    const OVERFLOW: &str = "TcpExtTCPTimeWaitOverflow";
    let total = counters.and_then(|r| r.last.get(OVERFLOW));
    let (growth, window) = match counters.map(Readings::growth) {
        Some((g, w)) => (g.get(OVERFLOW), Some(w)),
        None => (None, None),
    };
    // Overflow growing is the kernel saying so itself: critical, whatever
    // the count shows now (a burst may have passed).
    let severity = match growth {
        Some(g) if g > 0 => Severity::Critical,
        _ => level(share, TW_BUCKETS)?,
    };
    let evidence = match (growth, window, total) {
        (Some(g), Some(w), Some(t)) if g > 0 => format!(
            " The kernel refused TIME_WAIT to {g} closing connections in the last {} (TCPTimeWaitOverflow, {t} in all): \
the table is full now.",
            age_words((w * 1e3) as u64)
        ),
        (Some(_), Some(w), Some(t)) => format!(
            " TCPTimeWaitOverflow did not grow in the last {} ({t} since the namespace began).",
            age_words((w * 1e3) as u64)
        ),
        (_, _, Some(t)) => format!(" TCPTimeWaitOverflow: {t} since the namespace began."),
        _ => String::new(),
    };
    Some(Diagnosis {
        kind: "tw-buckets",
        severity,
        message: format!(
            "{used} timewait sockets ({tw} TIME_WAIT, {fw2} orphaned FIN_WAIT2) of tcp_max_tw_buckets = {max} ({share:.0}%): \
beyond {max}, closing connections skip TIME_WAIT and the kernel logs \"TCP: time wait bucket table overflow\".{evidence} \
Reuse connections so fewer close, or raise tcp_max_tw_buckets (256 bytes each)."
        ),
        data: json!({
            "time_wait": tw,
            "orphaned_fin_wait2": fw2,
            "used": used,
            "max": max,
            "percent": (share * 10.0).round() / 10.0,
            "overflow_total": total,
            "overflow_growth": growth,
            "overflow_window_s": window,
        }),
    })
}

/// Connections reset instead of closed, from the growth of the abort counters
/// between two readings.
fn aborts(counters: Option<&Readings>) -> Option<Diagnosis> {
    let (growth, window) = counters?.growth();
    let parts: Vec<(&str, &str, u64)> = ABORT_COUNTERS
        .iter()
        .filter_map(|(name, why)| Some((*name, *why, growth.get(name).filter(|g| *g > 0)?)))
        .collect();
    let n: u64 = parts.iter().map(|p| p.2).sum();
    if n == 0 {
        return None;
    }
    let rate = n as f64 / window.max(1e-3);
    let severity = if window >= ABORT_MIN_WINDOW_S && rate >= ABORTS_PER_S {
        Severity::Warning
    } else {
        Severity::Info
    };
    let list: Vec<String> = parts
        .iter()
        .map(|(name, why, g)| format!("{g} by {why} ({})", name.trim_start_matches("TcpExt")))
        .collect();
    Some(Diagnosis {
        kind: "aborts",
        severity,
        message: format!(
            "{n} connections reset instead of closed in the last {} ({rate:.1}/s): {}. Each peer got a reset \
(ECONNRESET) and no TIME_WAIT was left, so anything still in flight was lost. Read what the peer sent before \
close(), and leave SO_LINGER 0 for connections that must be dropped; if it is meant to avoid TIME_WAIT, see \
`tw-inspect explain time-wait`.",
            age_words((window * 1e3) as u64),
            list.join(", ")
        ),
        data: json!({
            "count": n,
            "window_s": window,
            "per_second": (rate * 100.0).round() / 100.0,
            "counters": parts.iter().map(|(name, _, g)| ((*name).to_string(), json!(g))).collect::<serde_json::Map<_, _>>(),
        }),
    })
}

fn orphan_fin_wait2(agg: &Aggregate, s: &Sysctls) -> Option<Diagnosis> {
    let n = agg.orphaned[TcpState::FinWait2.index()];
    let severity = if n >= ORPHAN_FIN_WAIT2.1 {
        Severity::Warning
    } else if n >= ORPHAN_FIN_WAIT2.0 {
        Severity::Info
    } else {
        return None;
    };
    let timeout = match s.tcp_fin_timeout {
        Some(t) => format!("tcp_fin_timeout = {t} s"),
        None => "tcp_fin_timeout (absent here)".into(),
    };
    Some(Diagnosis {
        kind: "orphan-fin-wait2",
        severity,
        message: format!(
            "{n} orphaned FIN_WAIT2 sockets: this host closed them and the peers have not sent their FIN; \
each is dropped after {timeout}. The peers' applications are not closing their side; \
a lower tcp_fin_timeout frees them sooner (it does not change TIME_WAIT)."
        ),
        data: json!({ "count": n, "tcp_fin_timeout": s.tcp_fin_timeout }),
    })
}

fn server_time_wait(per_port: &[(u16, u64)]) -> Option<Diagnosis> {
    let total: u64 = per_port.iter().map(|(_, n)| n).sum();
    if total < SERVER_TIME_WAIT {
        return None;
    }
    let ports: Vec<String> = per_port
        .iter()
        .take(MAX_PER_KIND)
        .map(|(p, n)| format!("{p} ({n})"))
        .collect();
    Some(Diagnosis {
        kind: "server-time-wait",
        severity: Severity::Info,
        message: format!(
            "{total} TIME_WAIT sockets on listening ports {}: this host's server closes connections first, so TIME_WAIT \
stays here rather than on the clients. Each holds one client's address and port for 60 s, which rarely limits a \
server: a client reconnecting from the same port ends it when its SYN is newer (a later sequence number or \
timestamp). Usual remedies: keep connections alive \
and let clients close first; keep SO_REUSEADDR on the listener so a restart can bind the port.",
            ports.join(", ")
        ),
        data: json!({
            "count": total,
            "ports": per_port.iter().map(|(p, n)| json!({ "port": p, "count": n })).collect::<Vec<_>>(),
        }),
    })
}

/// Whether the default view should read the conntrack entries and show the
/// table: it is half full, it has lost packets, or it holds far more entries
/// than this namespace has sockets (traffic tracked here, sockets elsewhere).
pub fn conntrack_notable(t: &CtTable, sockets: u64) -> bool {
    if !t.in_use() {
        return false;
    }
    let count = t.count.unwrap_or(0);
    t.fill()
        .is_some_and(|f| f * 100.0 >= CONNTRACK_NOTABLE_FILL)
        || t.stats.and_then(|s| s.losses()).is_some_and(|n| n > 0)
        || (count >= CONNTRACK_TW_MIN && count >= CONNTRACK_NOTABLE_RATIO * (sockets + 1))
}

/// The conntrack findings for one namespace: its table (`t`), its entries
/// when they were read, and its TIME_WAIT sockets when they were counted.
pub fn conntrack(
    t: &CtTable,
    entries: Option<&CtAggregate>,
    socket_time_wait: Option<u64>,
) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    out.extend(conntrack_full(t, entries));
    out.extend(conntrack_losses(t));
    if let (Some(e), Some(sockets)) = (entries, socket_time_wait) {
        out.extend(conntrack_time_wait(e, sockets, t));
    }
    out.sort_by_key(|d| std::cmp::Reverse(d.severity));
    out
}

fn conntrack_full(t: &CtTable, entries: Option<&CtAggregate>) -> Option<Diagnosis> {
    let (count, max) = (t.count?, t.max.filter(|m| *m > 0)?);
    let share = pct(count, max);
    let severity = level(share, CONNTRACK_FILL)?;
    let tw_timeout = t.tcp_timeout_time_wait.unwrap_or(120);
    let tw = entries.map(|e| e.count(CtState::TimeWait));
    let tw_part = match tw {
        Some(n) => format!(" {n} of them TCP TIME_WAIT ({:.0}%).", pct(n, count)),
        None => String::new(),
    };
    let buckets = match t.buckets {
        Some(b) => format!("{b} hash buckets"),
        None => "the hash buckets".into(),
    };
    Some(Diagnosis {
        kind: "conntrack-full",
        severity,
        message: format!(
            "conntrack table {count} of nf_conntrack_max = {max} entries ({share:.0}%).{tw_part} When it is full the kernel evicts a closing or unconfirmed entry if one is near at hand (early_drop), else drops the new connection's packet and logs \"nf_conntrack: table full, dropping packet\", while sockets look normal. Knobs: nf_conntrack_max (host-wide; each entry costs about {CONNTRACK_ENTRY_BYTES} bytes of unswappable kernel memory, and above {buckets} lookups walk longer chains: raise nf_conntrack_buckets with it); nf_conntrack_tcp_timeout_time_wait (per namespace, now {tw_timeout} s: lower frees TIME_WAIT entries sooner, but a late retransmission of a closed connection is then seen as new or INVALID, dropped by ctstate INVALID rules or left untranslated by NAT); or exempt traffic that needs no state from tracking (a raw-table NOTRACK rule: no NAT or stateful matching for it)."
        ),
        data: json!({
            "count": count,
            "max": max,
            "percent": (share * 10.0).round() / 10.0,
            "time_wait": tw,
            "buckets": t.buckets,
            "tcp_timeout_time_wait": t.tcp_timeout_time_wait,
        }),
    })
}

fn conntrack_losses(t: &CtTable) -> Option<Diagnosis> {
    let s = t.stats?;
    let (drop, failed) = (s.drop.unwrap_or(0), s.insert_failed.unwrap_or(0));
    let early = s.early_drop.unwrap_or(0);
    if drop + failed == 0 && early == 0 {
        return None;
    }
    let severity = if drop + failed > 0 {
        Severity::Warning
    } else {
        Severity::Info
    };
    Some(Diagnosis {
        kind: "conntrack-drops",
        severity,
        message: format!(
            "conntrack counters since this namespace started: drop {drop} (packets lost because no entry could be made, the table being full), insert_failed {failed} (entries lost to a race), early_drop {early} (entries evicted to make room). They only grow: watch them with `tw-inspect check -w conntrack-drops=N` or the tw_inspect_conntrack_events_total series; growing drops mean new connections are failing here."
        ),
        data: json!({ "drop": drop, "insert_failed": failed, "early_drop": early }),
    })
}

fn conntrack_time_wait(e: &CtAggregate, sockets: u64, t: &CtTable) -> Option<Diagnosis> {
    let ct = e.count(CtState::TimeWait);
    if ct < CONNTRACK_TW_MIN || ct < CONNTRACK_TW_RATIO * sockets.max(1) {
        return None;
    }
    let tw_timeout = t.tcp_timeout_time_wait.unwrap_or(120);
    let nat = if e.nat > 0 {
        format!(" {} entries are translated (NAT).", e.nat)
    } else {
        String::new()
    };
    Some(Diagnosis {
        kind: "conntrack-time-wait",
        severity: Severity::Info,
        message: format!(
            "{ct} conntrack TIME_WAIT entries against {sockets} TIME_WAIT sockets in this namespace.{nat} Conntrack keeps a closed connection {tw_timeout} s (nf_conntrack_tcp_timeout_time_wait), longer than a socket's 60 s, and it tracks connections whose sockets are elsewhere: forwarded or NATed through this host (a router, a Kubernetes node, containers in other namespaces). These entries fill nf_conntrack_max, not ports or tcp_max_tw_buckets; `tw-inspect explain conntrack` tells more."
        ),
        data: json!({ "conntrack_time_wait": ct, "socket_time_wait": sockets, "nat": e.nat }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use crate::aggregate::{GroupBy, ReusePolicy, Teardown};
    use crate::host::procs::ProcessRef;
    use crate::socket::{Family, Sink};
    use crate::state::StateSet;

    fn sysctls(range: (u16, u16), max_tw: u64) -> Sysctls {
        Sysctls {
            ip_local_port_range: Some(range),
            ip_local_reserved_ports: Some(String::new()),
            tcp_tw_reuse: Some(2),
            tcp_max_tw_buckets: Some(max_tw),
            tcp_fin_timeout: Some(60),
            ..Sysctls::default()
        }
    }

    use crate::socket::fixtures::v4 as rec;

    fn agg() -> Aggregate {
        Aggregate::new(
            GroupBy::PEER_PORT_PAIR,
            StateSet::from_states(&[TcpState::TimeWait]),
        )
    }

    fn run(
        a: &Aggregate,
        p: Option<&Pressure>,
        s: &Sysctls,
        cw: &[CloseWaitOwner],
        stw: &[(u16, u64)],
    ) -> Vec<Diagnosis> {
        diagnose(&Inputs {
            agg: a,
            pressure: p,
            sysctls: s,
            close_wait: cw,
            server_time_wait: stw,
            counters: None,
        })
    }

    fn pressure_with(n: u16) -> Pressure {
        pressure_to(n, "127.0.0.2", ReusePolicy::default(), 30_000)
    }

    /// `n` TIME_WAIT sockets from 127.0.0.1 to `peer`:80, each `expires` ms from its end.
    fn pressure_to(n: u16, peer: &str, policy: ReusePolicy, expires: u32) -> Pressure {
        let mut p = Pressure::with_policy((40000, 40099), policy);
        for i in 0..n {
            let local = if peer.starts_with("127.") {
                "127.0.0.1"
            } else {
                "10.0.0.1"
            };
            let mut r = rec(TcpState::TimeWait, local, 40000 + i, peer, 80);
            r.expires_ms = expires;
            p.push(&r);
        }
        p
    }

    #[test]
    fn nothing_wrong_means_no_diagnosis() {
        let s = sysctls((40000, 40099), 1000);
        assert!(run(&agg(), Some(&Pressure::new((40000, 40099))), &s, &[], &[]).is_empty());
    }

    #[test]
    fn port_pressure_thresholds() {
        let s = sysctls((40000, 40099), 1_000_000);
        for (n, want) in [
            (49, None),
            (50, Some(Severity::Warning)),
            (79, Some(Severity::Warning)),
            (80, Some(Severity::Critical)),
        ] {
            let d = run(&agg(), Some(&pressure_with(n)), &s, &[], &[]);
            assert_eq!(d.first().map(|d| d.severity), want, "{n}");
            if let Some(d) = d.first() {
                assert_eq!(d.kind, "port-pressure");
                assert!(
                    d.message.starts_with(&format!(
                        "{n} of 100 usable ephemeral ports held towards 127.0.0.2:80 from 127.0.0.1"
                    )),
                    "{}",
                    d.message
                );
                assert_eq!(d.data["in_use"], n as u64);
                assert_eq!(d.data["held"], n as u64);
                assert_eq!(d.data["usable"], 100);
            }
        }
    }

    fn reuse(tw_reuse: u32, ts: u32) -> ReusePolicy {
        ReusePolicy::new(Some(tw_reuse), Some(ts), Some(1000))
    }

    #[test]
    fn reusable_time_wait_ports_are_not_held() {
        let s = sysctls((40000, 40099), 1_000_000);
        // 85 TIME_WAIT, 30 s old, on loopback: reused under 1 and 2, held under 0.
        for (policy, peer, want, why) in [
            (
                reuse(0, 1),
                "127.0.0.2",
                Some(Severity::Critical),
                Some("tcp_tw_reuse=0"),
            ),
            (reuse(1, 1), "127.0.0.2", Some(Severity::Info), None),
            (reuse(2, 1), "127.0.0.2", Some(Severity::Info), None),
            (
                reuse(2, 1),
                "10.0.0.2",
                Some(Severity::Critical),
                Some("tcp_tw_reuse=2-not-loopback"),
            ),
            (reuse(1, 1), "10.0.0.2", Some(Severity::Info), None),
            (
                reuse(1, 0),
                "10.0.0.2",
                Some(Severity::Critical),
                Some("tcp_timestamps=0"),
            ),
        ] {
            let p = pressure_to(85, peer, policy, 30_000);
            let d = run(&agg(), Some(&p), &s, &[], &[]);
            assert_eq!(d.first().map(|d| d.severity), want, "{policy:?} {peer}");
            let d = &d[0];
            assert_eq!(d.data["held_because"].as_str(), why, "{policy:?} {peer}");
            assert_eq!(d.data["in_use"], 85);
            let held = if why.is_some() { 85 } else { 0 };
            assert_eq!(d.data["held"], held, "{}", d.message);
            assert_eq!(d.data["time_wait_reusable"], 85 - held);
            if held == 0 {
                assert!(
                    d.message.contains(
                        "but only 0 held: 85 in TIME_WAIT whose ports connect() takes over"
                    ),
                    "{}",
                    d.message
                );
            }
        }
        // Younger than the delay: held for now, and said so.
        let p = pressure_to(85, "127.0.0.2", reuse(1, 1), 59_500);
        let d = run(&agg(), Some(&p), &s, &[], &[]);
        assert_eq!(d[0].severity, Severity::Critical);
        assert_eq!(d[0].data["time_wait_maturing"], 85);
        assert!(
            d[0].message
                .contains("younger than the 1000 ms reuse delay"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn remedies_never_advise_what_is_in_force() {
        let s = sysctls((40000, 40099), 1_000_000);
        let msg = |policy, peer| {
            let d = run(
                &agg(),
                Some(&pressure_to(90, peer, policy, 30_000)),
                &s,
                &[],
                &[],
            );
            d[0].message.clone()
        };
        let off = msg(reuse(0, 1), "10.0.0.2");
        assert!(
            off.contains("tcp_tw_reuse=1 so connect() takes over TIME_WAIT ports (now 0)"),
            "{off}"
        );
        let lo_only = msg(reuse(2, 1), "10.0.0.2");
        assert!(lo_only.contains("(now 2: loopback only)"), "{lo_only}");
        let no_ts = msg(reuse(1, 0), "10.0.0.2");
        assert!(
            no_ts.contains("tcp_timestamps=1") && !no_ts.contains("tcp_tw_reuse=1"),
            "{no_ts}"
        );
        assert!(
            no_ts.contains("a wider ip_local_port_range (now 40000-40099)"),
            "{no_ts}"
        );
        // Established connections: reuse settings are beside the point.
        let mut p = Pressure::with_policy((40000, 40099), reuse(0, 1));
        for i in 0..90 {
            p.push(&rec(
                TcpState::Established,
                "10.0.0.1",
                40000 + i,
                "10.0.0.2",
                80,
            ));
        }
        let d = run(&agg(), Some(&p), &s, &[], &[]);
        assert!(!d[0].message.contains("tcp_tw_reuse="), "{}", d[0].message);
        // The widest range is not advised again.
        let wide = sysctls((1024, 65535), 1_000_000);
        let mut p = Pressure::with_policy((1024, 65535), reuse(1, 1));
        for i in 0..60000 {
            p.push(&rec(
                TcpState::Established,
                "10.0.0.1",
                1024 + i,
                "10.0.0.2",
                80,
            ));
        }
        let d = run(&agg(), Some(&p), &wide, &[], &[]);
        assert_eq!(d[0].severity, Severity::Critical);
        assert!(
            !d[0].message.contains("ip_local_port_range"),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn port_pressure_counts_reserved_ports_out() {
        let mut s = sysctls((40000, 40099), 1_000_000);
        s.ip_local_reserved_ports = Some("40000-40019".into());
        // 45 of 80 usable = 56 %: a warning that 45 of 100 would not be.
        let d = run(&agg(), Some(&pressure_with(45)), &s, &[], &[]);
        assert_eq!(d[0].severity, Severity::Warning);
        assert_eq!(d[0].data["usable"], 80);
        assert_eq!(d[0].data["reserved"], 20);
    }

    #[test]
    fn tw_bucket_thresholds_include_orphaned_fin_wait2() {
        let s = sysctls((40000, 40099), 100);
        let mut a = agg();
        for _ in 0..45 {
            a.push(&rec(TcpState::TimeWait, "10.0.0.1", 5000, "10.0.0.2", 80));
        }
        assert!(run(&a, None, &s, &[], &[]).is_empty());
        let mut fw2 = rec(TcpState::FinWait2, "10.0.0.1", 5001, "10.0.0.2", 80);
        fw2.orphaned = true;
        for _ in 0..5 {
            a.push(&fw2);
        }
        let d = run(&a, None, &s, &[], &[]);
        assert_eq!(
            (d[0].kind, d[0].severity),
            ("tw-buckets", Severity::Warning)
        );
        assert_eq!(d[0].data["used"], 50);
        for _ in 0..40 {
            a.push(&fw2);
        }
        let d = run(&a, None, &s, &[], &[]);
        assert_eq!(d[0].severity, Severity::Critical);
        assert!(d[0].message.contains("time wait bucket table overflow"));
    }

    #[test]
    fn close_wait_names_the_process() {
        let s = sysctls((40000, 40099), 1_000_000);
        let mut a = agg();
        let mut t = Teardown::default();
        for ino in 1..=60u32 {
            let mut r = rec(TcpState::CloseWait, "127.0.0.1", 80, "127.0.0.1", 40000);
            r.inode = ino;
            a.push(&r);
            t.push(&r);
        }
        let app = ProcessRef {
            pid: 42,
            comm: "leaky".into(),
        };
        let other = ProcessRef {
            pid: 43,
            comm: "fine".into(),
        };
        let mut owners: HashMap<u32, ProcessRef> = (1..=50).map(|i| (i, app.clone())).collect();
        owners.extend((51..=59).map(|i| (i, other.clone())));
        let cw = t.close_wait_owners(&owners);
        assert_eq!((&cw[0].owner, cw[0].count), (&Some(app), 50));
        let d = run(&a, None, &s, &cw, &[]);
        // 9 for "fine" and 1 unknown stay under the threshold of 10.
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].severity, Severity::Warning);
        assert_eq!(d[0].data["pid"], 42);
        assert_eq!(d[0].data["comm"], "leaky");
        assert!(
            d[0].message
                .starts_with("50 CLOSE_WAIT sockets held by leaky (pid 42), of 60")
        );
        let many = CloseWaitOwner {
            owner: None,
            count: 1000,
            oldest_ms: Some(200_000),
        };
        let crit = run(&a, None, &s, &[many], &[]);
        assert!(
            crit[0]
                .message
                .ends_with("The oldest has waited 3m20s since its peer closed.")
        );
        assert_eq!(crit[0].severity, Severity::Critical);
    }

    #[test]
    fn orphan_fin_wait2_thresholds() {
        let s = sysctls((40000, 40099), 1_000_000);
        let mut a = agg();
        let mut fw2 = rec(TcpState::FinWait2, "10.0.0.1", 5001, "10.0.0.2", 80);
        fw2.orphaned = true;
        for _ in 0..99 {
            a.push(&fw2);
        }
        // A FIN_WAIT2 the application still holds is not orphaned.
        a.push(&rec(TcpState::FinWait2, "10.0.0.1", 5002, "10.0.0.2", 80));
        assert!(run(&a, None, &s, &[], &[]).is_empty());
        a.push(&fw2);
        let d = run(&a, None, &s, &[], &[]);
        assert_eq!(
            (d[0].kind, d[0].severity),
            ("orphan-fin-wait2", Severity::Info)
        );
        assert!(d[0].message.contains("tcp_fin_timeout = 60 s"));
        for _ in 0..900 {
            a.push(&fw2);
        }
        assert_eq!(run(&a, None, &s, &[], &[])[0].severity, Severity::Warning);
    }

    #[test]
    fn server_time_wait_needs_a_listening_port() {
        // Port 8080 listens (known before the dump); counting is tested with
        // Teardown itself, the finding here.
        let mut t = Teardown::watching([8080]);
        for i in 0..150u16 {
            t.push(&rec(
                TcpState::TimeWait,
                "10.0.0.1",
                8080,
                "10.0.0.9",
                30000 + i,
            ));
        }
        t.push(&rec(TcpState::Listen, "0.0.0.0", 8080, "0.0.0.0", 0));
        assert_eq!(t.server_time_wait(), vec![(8080, 150)]);
        let s = sysctls((40000, 40099), 1_000_000);
        let d = run(&agg(), None, &s, &[], &t.server_time_wait());
        assert_eq!(
            (d[0].kind, d[0].severity),
            ("server-time-wait", Severity::Info)
        );
        assert!(
            d[0].message
                .starts_with("150 TIME_WAIT sockets on listening ports 8080 (150)")
        );
        assert!(run(&agg(), None, &s, &[], &[(8080, 99)]).is_empty());
    }

    fn table(count: u64, max: u64) -> CtTable {
        CtTable {
            loaded: true,
            count: Some(count),
            max: Some(max),
            buckets: Some(max),
            tcp_timeout_time_wait: Some(120),
            tcp_timeout_established: Some(432000),
            stats: Some(crate::host::conntrack::CtStats {
                drop: Some(0),
                early_drop: Some(0),
                insert_failed: Some(0),
                ..Default::default()
            }),
        }
    }

    fn ct_time_wait(n: u64) -> CtAggregate {
        let mut a = CtAggregate::default();
        let e = crate::conntrack::CtEntry::blank(
            Family::V4,
            crate::conntrack::PROTO_TCP,
            Some(CtState::TimeWait),
        );
        for _ in 0..n {
            a.push(&e);
        }
        a
    }

    #[test]
    fn conntrack_fill_thresholds() {
        for (count, want) in [
            (74, None),
            (75, Some(Severity::Warning)),
            (89, Some(Severity::Warning)),
            (90, Some(Severity::Critical)),
        ] {
            let d = conntrack(&table(count, 100), None, None);
            assert_eq!(d.first().map(|d| d.severity), want, "{count}");
            if let Some(d) = d.first() {
                assert_eq!(d.kind, "conntrack-full");
                assert!(d.message.contains("nf_conntrack_max"), "{}", d.message);
                assert!(d.message.contains("nf_conntrack_tcp_timeout_time_wait"));
            }
        }
        assert!(conntrack(&table(0, 0), None, None).is_empty());
    }

    #[test]
    fn conntrack_losses_and_evictions() {
        let mut t = table(1, 100);
        assert!(conntrack(&t, None, None).is_empty());
        t.stats.as_mut().unwrap().early_drop = Some(3);
        assert_eq!(conntrack(&t, None, None)[0].severity, Severity::Info);
        t.stats.as_mut().unwrap().drop = Some(2);
        let d = conntrack(&t, None, None);
        assert_eq!(
            (d[0].kind, d[0].severity),
            ("conntrack-drops", Severity::Warning)
        );
        assert_eq!(d[0].data["drop"], 2);
    }

    #[test]
    fn conntrack_time_wait_far_above_sockets() {
        let t = table(2000, 262144);
        let e = ct_time_wait(2000);
        let d = conntrack(&t, Some(&e), Some(10));
        assert_eq!(d[0].kind, "conntrack-time-wait");
        assert!(
            d[0].message
                .starts_with("2000 conntrack TIME_WAIT entries against 10")
        );
        // Close to the socket count: nothing to say.
        assert!(conntrack(&t, Some(&e), Some(500)).is_empty());
        // Sockets not counted: no comparison.
        assert!(conntrack(&t, Some(&e), None).is_empty());
        assert!(conntrack(&t, Some(&ct_time_wait(999)), Some(0)).is_empty());
    }

    #[test]
    fn conntrack_notable_when_full_lossy_or_far_above_sockets() {
        assert!(!conntrack_notable(&table(0, 100), 0));
        assert!(!conntrack_notable(&table(10, 100), 0));
        assert!(conntrack_notable(&table(50, 100), 0));
        assert!(conntrack_notable(&table(5000, 262144), 10));
        assert!(!conntrack_notable(&table(5000, 262144), 5000));
        let mut t = table(1, 100);
        t.stats.as_mut().unwrap().drop = Some(1);
        assert!(conntrack_notable(&t, 0));
    }

    #[test]
    fn most_severe_first() {
        let s = sysctls((40000, 40099), 1_000_000);
        let d = run(&agg(), Some(&pressure_with(80)), &s, &[], &[(80, 500)]);
        assert_eq!(
            d.iter().map(|d| d.kind).collect::<Vec<_>>(),
            ["port-pressure", "server-time-wait"]
        );
    }
}
