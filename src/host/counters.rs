//! The kernel's own TCP counters for one network namespace, from
//! `/proc/net/netstat` (`TcpExt`) and `/proc/net/snmp` (`Tcp`), named as
//! `nstat` names them (`TcpExtTW`, `TcpActiveOpens`).
//!
//! They are read through `/proc/thread-self/net`, which shows the namespace of
//! the reading thread: a collection inside another namespace runs on a thread
//! that entered it, while `/proc/self/net` would show the main thread's.
//! What each counter means was checked on Linux 6.18 with real sockets (README,
//! "The kernel's counters"); `tests/counters.rs` compares every value with
//! `nstat`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Instant;

/// Which file a counter is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// `/proc/net/netstat`, lines `TcpExt:`.
    TcpExt,
    /// `/proc/net/snmp`, lines `Tcp:`.
    Tcp,
}

impl Table {
    fn prefix(self) -> &'static str {
        match self {
            Table::TcpExt => "TcpExt",
            Table::Tcp => "Tcp",
        }
    }
}

/// A count that only grows, or a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterKind {
    Counter,
    Gauge,
}

/// One kernel counter: where it is, its `nstat` name, its Prometheus metric
/// and what it counts.
#[derive(Clone, Copy, Debug)]
pub struct CounterSpec {
    pub table: Table,
    /// The field name in the file (`TW`).
    pub field: &'static str,
    /// As `nstat` prints it (`TcpExtTW`): the JSON key and the `check` metric.
    pub nstat: &'static str,
    pub kind: CounterKind,
    /// The Prometheus metric (`_total` for counters).
    pub metric: &'static str,
    /// What it counts, in one sentence (Prometheus HELP, README, `check --help`).
    pub help: &'static str,
}

const fn c(
    table: Table,
    field: &'static str,
    nstat: &'static str,
    kind: CounterKind,
    metric: &'static str,
    help: &'static str,
) -> CounterSpec {
    CounterSpec {
        table,
        field,
        nstat,
        kind,
        metric,
        help,
    }
}

use CounterKind::{Counter, Gauge};
use Table::{Tcp, TcpExt};

/// The counters tw-inspect reads: those that explain TIME_WAIT and how
/// connections end. Every meaning here was checked on this kernel.
pub const COUNTERS: &[CounterSpec] = &[
    c(
        TcpExt,
        "TW",
        "TcpExtTW",
        Counter,
        "tw_inspect_kernel_timewait_entered_total",
        "Timewait sockets made with a timer over 4 s: connections entering TIME_WAIT, or orphaned FIN_WAIT2 on their way there (counted once each, when the kernel schedules the timer).",
    ),
    c(
        TcpExt,
        "TWRecycled",
        "TcpExtTWRecycled",
        Counter,
        "tw_inspect_kernel_timewait_reused_total",
        "TIME_WAIT four-tuples that connect() took over (tcp_tw_reuse).",
    ),
    c(
        TcpExt,
        "TWKilled",
        "TcpExtTWKilled",
        Counter,
        "tw_inspect_kernel_timewait_killed_total",
        "Timewait sockets made with a timer of 4 s or less (a short tcp_fin_timeout).",
    ),
    c(
        TcpExt,
        "TCPTimeWaitOverflow",
        "TcpExtTCPTimeWaitOverflow",
        Counter,
        "tw_inspect_kernel_timewait_overflow_total",
        "Closes that skipped TIME_WAIT because tcp_max_tw_buckets timewait sockets existed (\"time wait bucket table overflow\").",
    ),
    c(
        TcpExt,
        "TCPAbortOnData",
        "TcpExtTCPAbortOnData",
        Counter,
        "tw_inspect_kernel_abort_on_data_total",
        "Resets sent by close() with SO_LINGER 0, or because data arrived after close().",
    ),
    c(
        TcpExt,
        "TCPAbortOnClose",
        "TcpExtTCPAbortOnClose",
        Counter,
        "tw_inspect_kernel_abort_on_close_total",
        "Resets sent by close() on a socket with unread received data.",
    ),
    c(
        TcpExt,
        "TCPAbortOnMemory",
        "TcpExtTCPAbortOnMemory",
        Counter,
        "tw_inspect_kernel_abort_on_memory_total",
        "Connections reset because of too many orphaned sockets or TCP memory pressure.",
    ),
    c(
        TcpExt,
        "TCPAbortOnTimeout",
        "TcpExtTCPAbortOnTimeout",
        Counter,
        "tw_inspect_kernel_abort_on_timeout_total",
        "Connections dropped when retransmissions, keepalive or window probes timed out.",
    ),
    c(
        TcpExt,
        "TCPAbortOnLinger",
        "TcpExtTCPAbortOnLinger",
        Counter,
        "tw_inspect_kernel_abort_on_linger_total",
        "Resets sent instead of waiting in FIN_WAIT2 because TCP_LINGER2 is negative.",
    ),
    c(
        TcpExt,
        "TCPAbortFailed",
        "TcpExtTCPAbortFailed",
        Counter,
        "tw_inspect_kernel_abort_failed_total",
        "Resets the kernel meant to send but could not (no memory).",
    ),
    c(
        Tcp,
        "ActiveOpens",
        "TcpActiveOpens",
        Counter,
        "tw_inspect_kernel_active_opens_total",
        "Connections opened by connect() (SYN_SENT entered).",
    ),
    c(
        Tcp,
        "PassiveOpens",
        "TcpPassiveOpens",
        Counter,
        "tw_inspect_kernel_passive_opens_total",
        "Connections accepted by listeners (SYN_RECV entered).",
    ),
    c(
        Tcp,
        "AttemptFails",
        "TcpAttemptFails",
        Counter,
        "tw_inspect_kernel_attempt_fails_total",
        "Connection attempts that failed from SYN_SENT or SYN_RECV.",
    ),
    c(
        Tcp,
        "EstabResets",
        "TcpEstabResets",
        Counter,
        "tw_inspect_kernel_estab_resets_total",
        "Connections reset from ESTABLISHED or CLOSE_WAIT.",
    ),
    c(
        Tcp,
        "OutRsts",
        "TcpOutRsts",
        Counter,
        "tw_inspect_kernel_out_rsts_total",
        "Segments sent with the RST flag.",
    ),
    c(
        Tcp,
        "CurrEstab",
        "TcpCurrEstab",
        Gauge,
        "tw_inspect_kernel_curr_estab",
        "Connections now in ESTABLISHED or CLOSE_WAIT (a level, not a counter).",
    ),
];

/// The counter named `nstat` (case-insensitive), if tw-inspect reads it.
pub fn spec(nstat: &str) -> Option<&'static CounterSpec> {
    COUNTERS
        .iter()
        .find(|c| c.nstat.eq_ignore_ascii_case(nstat))
}

/// One reading of the counters: `nstat` name → value, for those this kernel
/// has (a counter it lacks is absent, never 0).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Counters(pub BTreeMap<String, u64>);

impl Counters {
    pub fn get(&self, nstat: &str) -> Option<u64> {
        self.0.get(nstat).copied()
    }

    /// How much each counter grew from `earlier` to this reading (gauges left
    /// out; a counter that went down, as after a namespace was replaced, is
    /// left out too rather than shown as a huge growth).
    pub fn growth_since(&self, earlier: &Counters) -> Counters {
        Counters(
            COUNTERS
                .iter()
                .filter(|c| c.kind == Counter)
                .filter_map(|c| {
                    let (now, then) = (self.get(c.nstat)?, earlier.get(c.nstat)?);
                    Some((c.nstat.to_string(), now.checked_sub(then)?))
                })
                .collect(),
        )
    }

    /// Sums over namespaces (a name any reading lacks stays absent).
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Counters>) -> Option<Counters> {
        let mut it = all.into_iter();
        let mut total = it.next()?.clone();
        for c in it {
            total.0.retain(|k, v| match c.get(k) {
                Some(n) => {
                    *v += n;
                    true
                }
                None => false,
            });
        }
        Some(total)
    }
}

/// Two readings of one namespace's counters and the time between them.
#[derive(Clone, Debug, PartialEq)]
pub struct Readings {
    pub first: Counters,
    pub first_at: Instant,
    pub last: Counters,
    pub last_at: Instant,
}

impl Readings {
    /// Growth from the first reading to the last, and the seconds between them.
    pub fn growth(&self) -> (Counters, f64) {
        (
            self.last.growth_since(&self.first),
            self.last_at.duration_since(self.first_at).as_secs_f64(),
        )
    }
}

/// The files are a few KiB; more than this is not /proc.
const MAX_FILE: u64 = 256 * 1024;

fn read_bounded(path: &Path) -> Option<String> {
    let f = std::fs::File::open(path).ok()?;
    let mut s = String::new();
    f.take(MAX_FILE).read_to_string(&mut s).ok()?;
    Some(s)
}

/// Reads this thread's network namespace's counters. `None` when neither
/// file can be read (a /proc without them).
pub fn read() -> Option<Counters> {
    read_from(Path::new("/proc/thread-self/net"))
}

/// As [`read`], from a directory holding `netstat` and `snmp` (tests).
pub fn read_from(dir: &Path) -> Option<Counters> {
    let netstat = read_bounded(&dir.join("netstat"));
    let snmp = read_bounded(&dir.join("snmp"));
    if netstat.is_none() && snmp.is_none() {
        return None;
    }
    let mut out = BTreeMap::new();
    for (table, text) in [(TcpExt, &netstat), (Tcp, &snmp)] {
        let Some(text) = text else { continue };
        let fields = parse_table(text, table.prefix());
        for spec in COUNTERS.iter().filter(|c| c.table == table) {
            if let Some(v) = fields.get(spec.field) {
                out.insert(spec.nstat.to_string(), *v);
            }
        }
    }
    Some(Counters(out))
}

/// The `PREFIX:` header line and the value line after it, as field → value.
/// Values that are not unsigned numbers (`MaxConn -1`) are left out.
pub fn parse_table<'a>(text: &'a str, prefix: &str) -> BTreeMap<&'a str, u64> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(names) = line.strip_prefix(prefix).and_then(|r| r.strip_prefix(':')) else {
            continue;
        };
        let Some(values) = lines
            .next()
            .and_then(|l| l.strip_prefix(prefix))
            .and_then(|r| r.strip_prefix(':'))
        else {
            break;
        };
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse::<u64>() {
                out.insert(n, v);
            }
        }
        break;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETSTAT: &str = "TcpExt: SyncookiesSent TW TWRecycled TWKilled TCPAbortOnData TCPAbortOnLinger TCPTimeWaitOverflow\n\
TcpExt: 0 40319 32 0 1067 0 7\n\
IpExt: InNoRoutes InTruncatedPkts\n\
IpExt: 0 0\n";
    const SNMP: &str = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n\
Tcp: 1 200 120000 -1 41459 41420 0 2136 3 263903 261106 3 0 1226 0\n\
Udp: InDatagrams\nUdp: 5\n";

    fn dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("netstat"), NETSTAT).unwrap();
        std::fs::write(d.path().join("snmp"), SNMP).unwrap();
        d
    }

    #[test]
    fn reads_both_tables_by_nstat_name() {
        let d = dir();
        let c = read_from(d.path()).unwrap();
        assert_eq!(c.get("TcpExtTW"), Some(40319));
        assert_eq!(c.get("TcpExtTCPTimeWaitOverflow"), Some(7));
        assert_eq!(c.get("TcpActiveOpens"), Some(41459));
        assert_eq!(c.get("TcpCurrEstab"), Some(3));
        assert_eq!(c.get("TcpOutRsts"), Some(1226));
        // Absent from this file: absent, not 0.
        assert_eq!(c.get("TcpExtTCPAbortOnClose"), None);
        assert!(read_from(Path::new("/nonexistent")).is_none());
    }

    #[test]
    fn growth_skips_gauges_and_counters_that_went_down() {
        let mut a = Counters::default();
        let mut b = Counters::default();
        for (k, x, y) in [
            ("TcpExtTW", 10, 25),
            ("TcpCurrEstab", 5, 1),
            ("TcpExtTCPAbortOnData", 9, 3),
        ] {
            a.0.insert(k.into(), x);
            b.0.insert(k.into(), y);
        }
        let g = b.growth_since(&a);
        assert_eq!(g.get("TcpExtTW"), Some(15));
        assert_eq!(g.get("TcpCurrEstab"), None);
        assert_eq!(g.get("TcpExtTCPAbortOnData"), None);
        let s = Counters::sum([&a, &b]).unwrap();
        assert_eq!(s.get("TcpExtTW"), Some(35));
        assert!(Counters::sum([]).is_none());
    }

    #[test]
    fn every_spec_is_well_formed() {
        for c in COUNTERS {
            assert_eq!(c.nstat, format!("{}{}", c.table.prefix(), c.field));
            assert!(c.metric.starts_with("tw_inspect_kernel_"));
            assert_eq!(
                c.metric.ends_with("_total"),
                c.kind == Counter,
                "{}",
                c.metric
            );
            assert!(
                c.metric
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '_')
            );
        }
        assert_eq!(spec("tcpexttw").map(|c| c.field), Some("TW"));
    }

    #[test]
    fn this_kernel_has_every_counter() {
        let c = read().expect("/proc/thread-self/net");
        for spec in COUNTERS {
            assert!(c.get(spec.nstat).is_some(), "{} missing", spec.nstat);
        }
    }
}
