//! Monitoring-plugin thresholds: what `check` compares, and the verdict. Pure:
//! values and thresholds in, a status and its items out; render/check.rs
//! writes the status line.
//!
//! A threshold is `METRIC[:SCOPE]=RANGE`. RANGE follows the monitoring-plugins
//! development guidelines: `10` alerts outside 0..10, `10:` below 10, `~:10`
//! above 10, `10:20` outside 10..20, `@10:20` inside 10..20 (ends included).
//! The metrics and their scopes come from one table, [`METRICS`], which the
//! parser and `check --help` both read.

use std::fmt;
use std::net::IpAddr;

use crate::aggregate::Role;
use crate::exit::{CheckStatus, UsageError};
use crate::host::counters::{COUNTERS, Counters};
use crate::state::{StateSet, TcpState, suggest};

/// What a metric counts or measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Sockets in one state.
    State(TcpState),
    /// Highest share of usable ephemeral ports held towards one destination, percent.
    PortPressure,
    /// Every socket counted.
    Total,
    /// Highest share of nf_conntrack_max one namespace's conntrack table holds, percent.
    ConntrackFill,
    /// Packets conntrack lost for want of an entry (its drop and insert_failed
    /// counters, since the namespace started), summed over the namespaces read.
    ConntrackDrops,
    /// A kernel counter (index into [`COUNTERS`]): its count since the
    /// namespace began.
    Counter(usize),
}

/// Which sockets a metric is restricted to (`:port=443`, `:peer=10.0.0.5:5432`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Local port: the sockets of one service on this host.
    Port(u16),
    /// Peer address, and port when given: one destination.
    Peer(IpAddr, Option<u16>),
    /// One side of connections: incoming (a listener's address and port) or outgoing.
    Role(Role),
}

/// What a threshold applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Metric {
    pub kind: Kind,
    pub scope: Option<Scope>,
}

impl Metric {
    pub const fn of(kind: Kind) -> Metric {
        Metric { kind, scope: None }
    }

    /// The table entry of this metric.
    pub fn spec(self) -> &'static MetricSpec {
        let name = match self.kind {
            Kind::State(_) => "STATE",
            Kind::Counter(_) => "COUNTER",
            kind => kind_name(kind),
        };
        METRICS
            .iter()
            .find(|m| m.name == name)
            .expect("every kind is in METRICS")
    }

    /// As written in the summary and accepted back: `time-wait:port=443`.
    pub fn name(self) -> String {
        let base = kind_name(self.kind);
        match self.scope {
            None => base.to_string(),
            Some(Scope::Role(r)) => format!("{base}:{}", r.name()),
            Some(Scope::Port(p)) => format!("{base}:port={p}"),
            Some(Scope::Peer(a, None)) => format!("{base}:peer={a}"),
            Some(Scope::Peer(a @ IpAddr::V4(_), Some(p))) => format!("{base}:peer={a}:{p}"),
            Some(Scope::Peer(a, Some(p))) => format!("{base}:peer=[{a}]:{p}"),
        }
    }

    /// Perfdata label: the name with `_` for `-`, `:` and `=`, which a label
    /// may not hold unquoted (`time_wait_port_443`).
    pub fn label(self) -> String {
        self.name()
            .chars()
            .map(|c| match c {
                '-' | ':' | '=' | '[' | ']' => '_',
                c => c,
            })
            .collect::<String>()
            .replace("__", "_")
            .trim_end_matches('_')
            .to_string()
    }

    pub fn unit(self) -> &'static str {
        self.spec().unit
    }
}

/// A metric's name before `=`.
fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::State(s) => s.name(),
        Kind::PortPressure => "port-pressure",
        Kind::Total => "total",
        Kind::ConntrackFill => "conntrack-fill",
        Kind::ConntrackDrops => "conntrack-drops",
        Kind::Counter(i) => COUNTERS[i].nstat,
    }
}

impl Kind {
    /// Read from the conntrack table rather than the sockets.
    pub fn is_conntrack(self) -> bool {
        matches!(self, Kind::ConntrackFill | Kind::ConntrackDrops)
    }
}

/// One row of the metric table.
#[derive(Clone, Copy, Debug)]
pub struct MetricSpec {
    /// As written before `=` (`STATE` stands for any state name).
    pub name: &'static str,
    /// Perfdata unit (`%`), or empty for a count.
    pub unit: &'static str,
    /// The scopes it accepts: `port`, `peer`.
    pub scopes: &'static [&'static str],
    /// One line for `check --help`.
    pub about: &'static str,
}

/// Every metric `check` knows, in `--help` order. New metrics are new rows
/// here, a [`Kind`] and a value in [`Values`].
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        name: "STATE",
        unit: "",
        scopes: &["port", "peer", "incoming", "outgoing"],
        about: "sockets in one state: time-wait, close-wait, established, ... (any state name)",
    },
    MetricSpec {
        name: "time-wait:incoming",
        unit: "",
        scopes: &[],
        about: "TIME_WAIT on the server side: local address and port a listener's (any state takes :incoming)",
    },
    MetricSpec {
        name: "time-wait:outgoing",
        unit: "",
        scopes: &[],
        about: "TIME_WAIT on the client side (any state takes :outgoing)",
    },
    MetricSpec {
        name: "total",
        unit: "",
        scopes: &["port", "peer", "incoming", "outgoing"],
        about: "every socket counted",
    },
    MetricSpec {
        name: "port-pressure",
        unit: "%",
        scopes: &["peer"],
        about: "percent of usable ephemeral ports held towards the busiest destination",
    },
    MetricSpec {
        name: "conntrack-fill",
        unit: "%",
        scopes: &[],
        about: "percent of nf_conntrack_max the fullest conntrack table holds (no privilege needed)",
    },
    MetricSpec {
        name: "conntrack-drops",
        unit: "",
        scopes: &[],
        about: "packets conntrack dropped for want of an entry (drop + insert_failed counters, since the namespace started)",
    },
    MetricSpec {
        name: "COUNTER",
        unit: "c",
        scopes: &[],
        about: "a kernel counter by its nstat name (TcpExtTW, TcpExtTCPTimeWaitOverflow, TcpExtTCPAbortOnData, TcpExtTCPAbortOnClose, TcpExtTCPAbortOnLinger, TcpActiveOpens, ...): its count since the network namespace began, perfdata unit c so the monitoring system graphs its rate",
    },
];

/// The scopes, for `--help`.
pub const SCOPES: &[(&str, &str)] = &[
    ("port=N", "sockets whose local port is N (one service here)"),
    (
        "peer=ADDR[:PORT]",
        "sockets to that peer address (and port; [v6]:port): one destination",
    ),
    (
        "incoming",
        "sockets whose local address and port are a listener's: the server side",
    ),
    ("outgoing", "the other sockets: the client side"),
];

/// The metric table as `check --help` (and its man page) shows it: one item
/// per line, not indented (indented lines are examples there).
pub fn help_table() -> String {
    // Blank lines keep each item a paragraph of its own in the man page.
    let mut out = String::from("Metrics (METRIC[:SCOPE]=RANGE):\n\n");
    // The role rows are examples of STATE with a scope, written out because
    // they are the questions most asked; the parser reads STATE's scopes.
    for m in METRICS {
        let scopes = if m.scopes.is_empty() {
            "no scope".to_string()
        } else {
            format!("scopes: {}", m.scopes.join(", "))
        };
        out.push_str(&format!("- {}: {} ({scopes})\n\n", m.name, m.about));
    }
    out.push_str("Scopes:\n\n");
    for (s, about) in SCOPES {
        out.push_str(&format!("- {s}: {about}\n\n"));
    }
    out.push_str(
        "Ranges (monitoring-plugins guidelines): 10 alerts outside 0..10; 10: below 10; ~:10 above 10; \
10:20 outside 10..20; @10:20 inside 10..20 (ends included).\n\n\
Critical must alert only where warning does (-w 1000 -c 5000), else the check is UNKNOWN.",
    );
    out
}

/// The metric names `--warning` and `--critical` accept, for errors.
pub fn valid_metrics() -> String {
    let mut names: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    names.extend([
        "total",
        "port-pressure",
        "conntrack-fill",
        "conntrack-drops",
    ]);
    format!(
        "{}, or a kernel counter's nstat name ({}) (add :port=N, :peer=ADDR[:PORT], :incoming or :outgoing to restrict)",
        names.join(", "),
        COUNTERS
            .iter()
            .map(|c| c.nstat)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A monitoring-plugins range: alert when the value is outside `[start, end]`,
/// or inside it with `@`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// May be negative infinity (`~`).
    pub start: f64,
    /// May be infinity (`10:`).
    pub end: f64,
    /// `@`: alert inside instead of outside.
    pub inside: bool,
}

/// A bound written plainly: `1000`, never `1e3` (Display of f64 never uses exponents).
fn num(v: f64) -> String {
    format!("{v}")
}

impl fmt::Display for Range {
    /// The normalized form, for perfdata and messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        match (self.start, self.end) {
            (s, e) if s == 0.0 && e.is_finite() => write!(f, "{}", num(e)),
            (s, e) if e == f64::INFINITY && s.is_finite() => write!(f, "{}:", num(s)),
            (s, e) if s == f64::NEG_INFINITY && e.is_finite() => write!(f, "~:{}", num(e)),
            (s, _) if s == f64::NEG_INFINITY => write!(f, "~:"),
            (s, e) => write!(f, "{}:{}", num(s), num(e)),
        }
    }
}

fn bound(s: &str) -> Option<f64> {
    let t = s.trim();
    // Plain decimals only: no inf, nan, hex or exponents to misread.
    let ok = !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        && t.chars().any(|c| c.is_ascii_digit());
    ok.then(|| t.parse::<f64>().ok())
        .flatten()
        .filter(|v| v.is_finite())
}

impl Range {
    /// Parses `10`, `10:`, `~:10`, `10:20`, `@10:20`.
    pub fn parse(text: &str) -> Result<Range, String> {
        let t = text.trim();
        let (inside, body) = match t.strip_prefix('@') {
            Some(b) => (true, b),
            None => (false, t),
        };
        let bad = || {
            format!(
                "'{text}' is not a range: use N (alert outside 0..N), N: (below N), ~:N (above N), N:M (outside N..M) or @N:M (inside N..M)"
            )
        };
        let (start, end) = match body.split_once(':') {
            None => (0.0, bound(body).ok_or_else(bad)?),
            Some((s, e)) => {
                let start = if s.trim() == "~" {
                    f64::NEG_INFINITY
                } else {
                    bound(s).ok_or_else(bad)?
                };
                let end = if e.trim().is_empty() {
                    f64::INFINITY
                } else {
                    bound(e).ok_or_else(bad)?
                };
                (start, end)
            }
        };
        if start > end {
            return Err(format!(
                "'{text}': the start {} is above the end {}",
                num(start),
                num(end)
            ));
        }
        Ok(Range { start, end, inside })
    }

    /// True when `v` raises this alert.
    pub fn alerts(&self, v: f64) -> bool {
        let within = self.start <= v && v <= self.end;
        within == self.inside
    }

    /// True when every value this range lets pass, `other` lets pass too:
    /// then `other` never alerts where this one does not.
    fn passes_within(&self, other: &Range) -> bool {
        match (self.inside, other.inside) {
            // [s,e] ⊆ [S,E]
            (false, false) => self.start >= other.start && self.end <= other.end,
            // outside [s,e] ⊆ outside [S,E]
            (true, true) => self.start <= other.start && self.end >= other.end,
            // [s,e] ⊆ outside [S,E]
            (false, true) => self.end < other.start || self.start > other.end,
            // (-inf,s) ∪ (e,inf) ⊆ [S,E]: only halves that are empty or inside.
            (true, false) => {
                let low = self.start == f64::NEG_INFINITY
                    || (other.start == f64::NEG_INFINITY && self.start <= other.end);
                let high = self.end == f64::INFINITY
                    || (other.end == f64::INFINITY && self.end >= other.start);
                low && high
            }
        }
    }

    /// Words for the summary: why `v` alerts.
    pub fn why(&self, v: f64) -> String {
        if self.inside {
            format!("inside {self}")
        } else if v > self.end {
            format!("above {}", num(self.end))
        } else {
            format!("below {}", num(self.start))
        }
    }
}

/// One `METRIC=RANGE`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub metric: Metric,
    pub range: Range,
}

fn parse_scope(flag: &str, arg: &str, base: &str, s: &str) -> Result<Scope, UsageError> {
    let err = |why: String| UsageError(format!("{flag} '{arg}': {why}"));
    match s.to_ascii_lowercase().as_str() {
        "incoming" => return Ok(Scope::Role(Role::Incoming)),
        "outgoing" => return Ok(Scope::Role(Role::Outgoing)),
        _ => {}
    }
    let (key, value) = s.split_once('=').ok_or_else(|| {
        err(format!(
            "scope '{s}' needs a value: {base}:port=N or {base}:peer=ADDR[:PORT]; or it is {base}:incoming or {base}:outgoing"
        ))
    })?;
    match key {
        "port" => value
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(Scope::Port)
            .ok_or_else(|| err(format!("'{value}' is not a port (1-65535)"))),
        "peer" => {
            if let Ok(a) = value.parse::<IpAddr>() {
                return Ok(Scope::Peer(a, None));
            }
            if let Ok(sa) = value.parse::<std::net::SocketAddr>() {
                return Ok(Scope::Peer(sa.ip(), Some(sa.port())));
            }
            Err(err(format!(
                "'{value}' is not ADDR, ADDR:PORT or [V6]:PORT"
            )))
        }
        other => Err(err(format!(
            "unknown scope '{other}'; valid: port=N, peer=ADDR[:PORT], incoming, outgoing"
        ))),
    }
}

/// Parses `METRIC[:SCOPE]=RANGE` for `flag` (`--warning` or `--critical`).
pub fn parse_threshold(flag: &str, arg: &str) -> Result<Threshold, UsageError> {
    // The range never holds '=', the scope may: split at the last one.
    let Some((m, v)) = arg.rsplit_once('=') else {
        return Err(UsageError(format!(
            "{flag} '{arg}': expected METRIC=RANGE, METRIC one of {}",
            valid_metrics()
        )));
    };
    let (base, scope) = match m.split_once(':') {
        Some((b, s)) => (b, Some(s)),
        None => (m, None),
    };
    let counter = COUNTERS
        .iter()
        .position(|c| c.nstat.eq_ignore_ascii_case(base.trim()));
    let kind = match base.trim().to_ascii_lowercase().as_str() {
        "total" => Kind::Total,
        "port-pressure" | "port_pressure" => Kind::PortPressure,
        "conntrack-fill" | "conntrack_fill" => Kind::ConntrackFill,
        "conntrack-drops" | "conntrack_drops" => Kind::ConntrackDrops,
        _ if counter.is_some() => Kind::Counter(counter.unwrap_or_default()),
        other => TcpState::parse(other).map(Kind::State).ok_or_else(|| {
            let names = TcpState::ALL.iter().map(|s| s.name());
            let counters = COUNTERS.iter().map(|c| c.nstat);
            let hint = suggest(
                base,
                names
                    .chain([
                        "port-pressure",
                        "total",
                        "conntrack-fill",
                        "conntrack-drops",
                    ])
                    .chain(counters),
            )
            .map(|s| format!("did you mean {s}? "))
            .unwrap_or_default();
            UsageError(format!(
                "{flag} '{arg}': unknown metric '{base}'; {hint}valid: {}",
                valid_metrics()
            ))
        })?,
    };
    let scope = scope.map(|s| parse_scope(flag, arg, base, s)).transpose()?;
    let metric = Metric { kind, scope };
    if let Some(s) = scope {
        let key = match s {
            Scope::Port(_) => "port",
            Scope::Peer(..) => "peer",
            Scope::Role(Role::Incoming) => "incoming",
            Scope::Role(Role::Outgoing) => "outgoing",
        };
        if !metric.spec().scopes.contains(&key) {
            let takes = match metric.spec().scopes {
                [] => "no scope (it is the namespace's as a whole)".to_string(),
                s => s.join(", "),
            };
            let what = if matches!(s, Scope::Role(_)) {
                format!(":{key}")
            } else {
                format!("{key}=")
            };
            return Err(UsageError(format!(
                "{flag} '{arg}': {base} takes no {what} scope; it takes {takes}"
            )));
        }
    }
    let range = Range::parse(v).map_err(|e| UsageError(format!("{flag} '{arg}': {e}")))?;
    if metric.unit() == "%"
        && [range.start, range.end]
            .iter()
            .any(|b| b.is_finite() && !(0.0..=100.0).contains(b))
    {
        return Err(UsageError(format!(
            "{flag} '{arg}': {} is a percentage, 0 to 100",
            kind_name(kind)
        )));
    }
    Ok(Threshold { metric, range })
}

/// Refuses a warning and a critical range on one metric that cannot both
/// make sense: a value the warning range lets pass must not be critical
/// (critical alerts on a subset of what warning alerts on).
pub fn check_pair(w: &Threshold, c: &Threshold) -> Result<(), UsageError> {
    if w.range.passes_within(&c.range) {
        Ok(())
    } else {
        Err(UsageError(format!(
            "{}: warning {} and critical {} contradict: some values would be critical without being a warning; \
critical must alert only where warning does (e.g. -w {0}=1000 -c {0}=5000)",
            w.metric.name(),
            w.range,
            c.range
        )))
    }
}

/// The measured value of each metric.
pub struct Values {
    pub counts: [u64; crate::state::MAX_STATE],
    /// The states that were counted: any other reads as unknown, never as 0.
    pub counted: StateSet,
    pub total: u64,
    pub port_pressure: Option<f64>,
    /// The kernel's counters (summed over namespaces), when read.
    pub counters: Option<Counters>,
    /// Scoped metrics, measured apart.
    pub scoped: Vec<(Metric, Result<f64, &'static str>)>,
    /// Percent of nf_conntrack_max, or why unknown.
    pub conntrack_fill: Result<f64, &'static str>,
    /// drop + insert_failed, or why unknown.
    pub conntrack_drops: Result<f64, &'static str>,
}

impl Values {
    fn get(&self, m: Metric) -> Result<f64, &'static str> {
        if m.scope.is_some() {
            return self
                .scoped
                .iter()
                .find(|(k, _)| *k == m)
                .map_or(Err("not measured"), |(_, v)| *v);
        }
        match m.kind {
            Kind::State(s) if self.counted.contains(s) => Ok(self.counts[s.index()] as f64),
            Kind::State(_) => Err("not counted"),
            Kind::Total => Ok(self.total as f64),
            Kind::PortPressure => self.port_pressure.ok_or("no ephemeral port range"),
            Kind::ConntrackFill => self.conntrack_fill,
            Kind::ConntrackDrops => self.conntrack_drops,
            Kind::Counter(i) => self
                .counters
                .as_ref()
                .and_then(|c| c.get(COUNTERS[i].nstat))
                .map(|v| v as f64)
                .ok_or("not read from the kernel"),
        }
    }
}

/// One metric of the status line.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub metric: Metric,
    /// The value, or why there is none.
    pub value: Result<f64, &'static str>,
    pub warning: Option<Range>,
    pub critical: Option<Range>,
    /// Which threshold the value breaks, if any.
    pub breached: Option<CheckStatus>,
    /// Named in the summary (thresholded metrics; the defaults when none is).
    pub in_summary: bool,
}

/// The verdict of a check.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: CheckStatus,
    pub items: Vec<Item>,
}

/// Pure: the status and its items from values and thresholds. Thresholded
/// metrics come first, then time-wait (when counted) and total, which are
/// always in the perfdata.
pub fn evaluate(values: &Values, warn: &[Threshold], crit: &[Threshold]) -> Outcome {
    let mut metrics: Vec<Metric> = Vec::new();
    for t in warn.iter().chain(crit) {
        if !metrics.contains(&t.metric) {
            metrics.push(t.metric);
        }
    }
    let checked = metrics.len();
    for m in [
        Metric::of(Kind::State(TcpState::TimeWait)),
        Metric::of(Kind::Total),
    ] {
        if !metrics.contains(&m) && values.get(m).is_ok() {
            metrics.push(m);
        }
    }
    let mut status = CheckStatus::Ok;
    let items = metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let warning = warn.iter().find(|t| t.metric == *m).map(|t| t.range);
            let critical = crit.iter().find(|t| t.metric == *m).map(|t| t.range);
            let value = values.get(*m);
            let breached = match value {
                Err(_) => Some(CheckStatus::Unknown),
                Ok(v) if critical.is_some_and(|c| c.alerts(v)) => Some(CheckStatus::Critical),
                Ok(v) if warning.is_some_and(|w| w.alerts(v)) => Some(CheckStatus::Warning),
                Ok(_) => None,
            };
            status = status.max(breached.unwrap_or(CheckStatus::Ok));
            Item {
                metric: *m,
                value,
                warning,
                critical,
                breached,
                in_summary: i < checked || checked == 0,
            }
        })
        .collect();
    Outcome { status, items }
}

/// Values and thresholds for the tests of this module and of render/check.rs.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// `tw` TIME_WAIT, 2 CLOSE_WAIT, every default state counted, 12.345% pressure.
    pub fn values(tw: u64) -> Values {
        let mut counts = [0; crate::state::MAX_STATE];
        counts[TcpState::TimeWait.index()] = tw;
        counts[TcpState::CloseWait.index()] = 2;
        Values {
            counts,
            counted: StateSet::unfiltered(),
            total: tw + 2,
            port_pressure: Some(12.345),
            counters: None,
            scoped: Vec::new(),
            conntrack_fill: Err("not read"),
            conntrack_drops: Err("not read"),
        }
    }

    pub fn th(flag: &str, a: &str) -> Threshold {
        parse_threshold(flag, a).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{th, values};
    use super::*;

    #[test]
    fn bad_thresholds_name_the_valid_metrics() {
        let e = parse_threshold("--warning", "bogus=1").unwrap_err();
        assert!(
            e.0.contains("'bogus'") && e.0.contains("time-wait") && e.0.contains("port-pressure"),
            "{e}"
        );
        assert!(
            parse_threshold("--warning", "time-wait")
                .unwrap_err()
                .0
                .contains("METRIC=RANGE")
        );
        for bad in [
            "time-wait=x",
            "time-wait=20:10",
            "time-wait=inf",
            "time-wait=",
            "time-wait=@",
        ] {
            let e = parse_threshold("--warning", bad).unwrap_err();
            assert!(e.0.contains(&format!("'{bad}'")), "{e}");
        }
        assert!(
            parse_threshold("--critical", "port-pressure=150")
                .unwrap_err()
                .0
                .contains("0 to 100")
        );
        let e = parse_threshold("-w", "port-pressure:port=80=10").unwrap_err();
        assert!(e.0.contains("takes no port= scope"), "{e}");
        let e = parse_threshold("-w", "time-wait:dest=1=10").unwrap_err();
        assert!(e.0.contains("unknown scope 'dest'"), "{e}");
        let e = parse_threshold("-w", "time-wait:port=0=10").unwrap_err();
        assert!(e.0.contains("not a port"), "{e}");
        let e = parse_threshold("-w", "port-pressure:incoming=10").unwrap_err();
        assert!(e.0.contains("takes no :incoming scope"), "{e}");
        let e = parse_threshold("-w", "TcpExtTW:port=80=10").unwrap_err();
        assert!(
            e.0.contains("takes no port= scope; it takes no scope"),
            "{e}"
        );
        let e = parse_threshold("-w", "TcpExtTCPTimeWaitOverfow=1").unwrap_err();
        assert!(
            e.0.contains("did you mean TcpExtTCPTimeWaitOverflow?"),
            "{e}"
        );
    }

    #[test]
    fn roles_and_counters() {
        let t = th("-w", "time-wait:incoming=1000");
        assert_eq!(
            t.metric.scope,
            Some(Scope::Role(Role::Incoming)),
            "{:?}",
            t.metric
        );
        assert_eq!(t.metric.name(), "time-wait:incoming");
        assert_eq!(t.metric.label(), "time_wait_incoming");
        assert_eq!(
            th("-w", "close-wait:OUTGOING=5").metric.name(),
            "close-wait:outgoing"
        );
        let c = th("-c", "tcpexttcptimewaitoverflow=0");
        assert_eq!(c.metric.name(), "TcpExtTCPTimeWaitOverflow");
        assert_eq!(c.metric.unit(), "c");
        let mut v = values(0);
        assert_eq!(
            evaluate(&v, &[], std::slice::from_ref(&c)).status,
            CheckStatus::Unknown,
            "not read: unknown, never 0"
        );
        let mut counters = Counters::default();
        counters.0.insert("TcpExtTCPTimeWaitOverflow".into(), 3);
        v.counters = Some(counters);
        assert_eq!(evaluate(&v, &[], &[c]).status, CheckStatus::Critical);
    }

    #[test]
    fn ranges_follow_the_guidelines() {
        let r = |s: &str| Range::parse(s).unwrap();
        // (range, value, alerts)
        for (range, v, alerts) in [
            ("10", 10.0, false),
            ("10", 11.0, true),
            ("10", -1.0, true),
            ("10:", 10.0, false),
            ("10:", 9.0, true),
            ("10:", 1e9, false),
            ("~:10", -1e9, false),
            ("~:10", 10.5, true),
            ("10:20", 15.0, false),
            ("10:20", 9.0, true),
            ("10:20", 21.0, true),
            ("@10:20", 10.0, true),
            ("@10:20", 20.0, true),
            ("@10:20", 21.0, false),
            ("@10:20", 9.99, false),
            ("1e3", 1000.0, false),
            ("1e3", 1001.0, true),
        ] {
            assert_eq!(r(range).alerts(v), alerts, "{range} at {v}");
        }
        // Written back plainly, for perfdata.
        for (given, shown) in [
            ("10", "10"),
            ("1e3", "1000"),
            ("0:1e3", "1000"),
            ("10:", "10:"),
            ("~:10", "~:10"),
            ("@10:20", "@10:20"),
            ("2.5:7.25", "2.5:7.25"),
            ("-5:5", "-5:5"),
        ] {
            assert_eq!(r(given).to_string(), shown);
        }
    }

    #[test]
    fn contradictory_pairs_are_refused() {
        let pair = |w: &str, c: &str| {
            check_pair(
                &th("-w", &format!("time-wait={w}")),
                &th("-c", &format!("time-wait={c}")),
            )
        };
        for (w, c) in [
            ("1000", "5000"),
            ("10:", "5:"),
            ("@10:20", "@12:18"),
            ("10:20", "5:30"),
            ("5", "5"),
        ] {
            assert!(pair(w, c).is_ok(), "-w {w} -c {c}");
        }
        for (w, c) in [
            ("5000", "1000"),
            ("5:", "10:"),
            ("@12:18", "@10:20"),
            ("~:10", "10:"),
        ] {
            let e = pair(w, c).unwrap_err();
            assert!(e.0.contains("contradict"), "-w {w} -c {c}: {e}");
        }
    }

    #[test]
    fn scoped_metrics() {
        let t = th("-w", "time-wait:port=443=1000");
        assert_eq!(
            t.metric,
            Metric {
                kind: Kind::State(TcpState::TimeWait),
                scope: Some(Scope::Port(443))
            }
        );
        assert_eq!(t.metric.name(), "time-wait:port=443");
        assert_eq!(t.metric.label(), "time_wait_port_443");
        let p = th("-w", "port-pressure:peer=[::1]:5432=50");
        assert_eq!(p.metric.name(), "port-pressure:peer=[::1]:5432");
        let c = th("-w", "close-wait:peer=10.0.0.5=1");
        assert_eq!(
            c.metric.scope,
            Some(Scope::Peer("10.0.0.5".parse().unwrap(), None))
        );
        assert!(help_table().contains("port=N") && help_table().contains("port-pressure"));
    }

    #[test]
    fn status_follows_thresholds() {
        let w = [th("-w", "time-wait=1000")];
        let c = [th("-c", "time-wait=5000")];
        assert_eq!(evaluate(&values(10), &w, &c).status, CheckStatus::Ok);
        assert_eq!(
            evaluate(&values(1000), &w, &c).status,
            CheckStatus::Ok,
            "equal is not above"
        );
        assert_eq!(evaluate(&values(1234), &w, &c).status, CheckStatus::Warning);
        assert_eq!(
            evaluate(&values(6000), &w, &c).status,
            CheckStatus::Critical
        );
        // At least 10 established connections, or critical.
        let low = [th("-c", "established=10:")];
        assert_eq!(
            evaluate(&values(0), &[], &low).status,
            CheckStatus::Critical
        );
    }

    #[test]
    fn what_was_not_counted_is_unknown_never_zero() {
        let mut v = values(0);
        v.counted = StateSet::from_states(&[TcpState::Established]);
        let o = evaluate(&v, &[], &[]);
        assert_eq!(o.status, CheckStatus::Ok);
        assert!(
            o.items
                .iter()
                .all(|i| i.metric != Metric::of(Kind::State(TcpState::TimeWait))),
            "time-wait was not counted: not reported as 0"
        );
        let o = evaluate(&v, &[th("-w", "time-wait=5")], &[]);
        assert_eq!(o.status, CheckStatus::Unknown);
        let none = Values {
            port_pressure: None,
            ..values(0)
        };
        let o = evaluate(&none, &[th("-w", "port-pressure=10")], &[]);
        assert_eq!(o.status, CheckStatus::Unknown);
        let o = evaluate(&values(0), &[th("-w", "time-wait:port=80=10")], &[]);
        assert_eq!(o.status, CheckStatus::Unknown);
    }

    #[test]
    fn conntrack_metrics() {
        let v = Values {
            conntrack_fill: Ok(80.0),
            conntrack_drops: Ok(3.0),
            ..values(0)
        };
        let o = evaluate(
            &v,
            &[th("-w", "conntrack-fill=75"), th("-w", "conntrack-drops=0")],
            &[th("-c", "conntrack-fill=90")],
        );
        assert_eq!(o.status, CheckStatus::Warning);
        let o = evaluate(&values(0), &[th("-w", "conntrack-fill=10")], &[]);
        assert_eq!(o.status, CheckStatus::Unknown, "not read: unknown, never 0");
        assert!(
            parse_threshold("-w", "conntrack-fill=101")
                .unwrap_err()
                .0
                .contains("conntrack-fill is a percentage")
        );
        assert!(
            parse_threshold("-w", "conntrack-drops:port=80=1")
                .unwrap_err()
                .0
                .contains("takes no port= scope")
        );
    }
}
