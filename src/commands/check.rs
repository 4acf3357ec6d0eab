//! `tw-inspect check`: a monitoring plugin (Nagios, Icinga, Sensu conventions).
//!
//! One status line on stdout, `TW_INSPECT OK|WARNING|CRITICAL|UNKNOWN - summary | perfdata`,
//! and the exit code 0/1/2/3. A threshold `N` alerts when the value is above N.
//! Anything that stops the check (bad flags, netlink refused) is UNKNOWN: the
//! status line says why on stdout, the usual one-line error goes to stderr.

use std::process::ExitCode;

use anyhow::Result;

use crate::aggregate::GroupBy;
use crate::cli::{CheckArgs, ColorChoice};
use crate::config;
use crate::exit::{CheckStatus, UsageError};
use crate::host::netns::Scope;
use crate::sample::{self, Spec};
use crate::state::{StateSet, TcpState};

/// What a threshold applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    State(TcpState),
    /// Highest share of usable ephemeral ports used towards one destination, percent.
    PortPressure,
    Total,
}

impl Metric {
    pub fn parse(s: &str) -> Option<Metric> {
        match s.trim().to_ascii_lowercase().as_str() {
            "total" => Some(Metric::Total),
            "port-pressure" | "port_pressure" => Some(Metric::PortPressure),
            other => TcpState::parse(other).map(Metric::State),
        }
    }

    /// As written in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Metric::State(s) => s.name(),
            Metric::PortPressure => "port-pressure",
            Metric::Total => "total",
        }
    }

    /// Perfdata label: the name with underscores.
    fn label(self) -> String {
        self.name().replace('-', "_")
    }

    fn unit(self) -> &'static str {
        if self == Metric::PortPressure {
            "%"
        } else {
            ""
        }
    }
}

/// One `METRIC=N`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub metric: Metric,
    pub value: f64,
    /// As given, for perfdata.
    pub text: String,
}

/// Parses `METRIC=N` for `flag` (`--warning` or `--critical`).
pub fn parse_threshold(flag: &str, arg: &str) -> Result<Threshold, UsageError> {
    let valid = "time-wait, close-wait, port-pressure (percent), total, or any state (established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, closed, last-ack, listening, closing, new-syn-recv, bound-inactive)";
    let Some((m, v)) = arg.split_once('=') else {
        return Err(UsageError(format!(
            "{flag} '{arg}': expected METRIC=N, METRIC one of {valid}"
        )));
    };
    let metric = Metric::parse(m).ok_or_else(|| {
        UsageError(format!(
            "{flag} '{arg}': unknown metric '{m}'; valid: {valid}"
        ))
    })?;
    let value: f64 = v
        .trim()
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite() && *x >= 0.0)
        .ok_or_else(|| UsageError(format!("{flag} '{arg}': '{v}' is not a number >= 0")))?;
    if metric == Metric::PortPressure && value > 100.0 {
        return Err(UsageError(format!(
            "{flag} '{arg}': port-pressure is a percentage, 0 to 100"
        )));
    }
    Ok(Threshold {
        metric,
        value,
        text: v.trim().to_string(),
    })
}

/// The measured value of each metric.
pub struct Values {
    pub counts: [u64; crate::state::MAX_STATE],
    pub total: u64,
    pub port_pressure: Option<f64>,
}

impl Values {
    fn get(&self, m: Metric) -> Option<f64> {
        match m {
            Metric::State(s) => Some(self.counts[s.index()] as f64),
            Metric::Total => Some(self.total as f64),
            Metric::PortPressure => self.port_pressure,
        }
    }
}

/// Pure: the status and the status line from values and thresholds.
pub fn evaluate(values: &Values, warn: &[Threshold], crit: &[Threshold]) -> (CheckStatus, String) {
    let mut metrics: Vec<Metric> = Vec::new();
    for t in warn.iter().chain(crit) {
        if !metrics.contains(&t.metric) {
            metrics.push(t.metric);
        }
    }
    let checked = metrics.len();
    for m in [Metric::State(TcpState::TimeWait), Metric::Total] {
        if !metrics.contains(&m) {
            metrics.push(m);
        }
    }
    let mut status = CheckStatus::Ok;
    let mut summary = Vec::new();
    let mut perf = Vec::new();
    for (i, m) in metrics.iter().enumerate() {
        let w = warn.iter().rev().find(|t| t.metric == *m);
        let c = crit.iter().rev().find(|t| t.metric == *m);
        let fmt = |v: f64| {
            if *m == Metric::PortPressure {
                format!("{v:.2}")
            } else {
                format!("{v}")
            }
        };
        let Some(v) = values.get(*m) else {
            status = status.max(CheckStatus::Unknown);
            summary.push(format!("{} unknown (no ephemeral port range)", m.name()));
            continue;
        };
        let shown = format!("{}{}", fmt(v), m.unit());
        let note = if let Some(c) = c.filter(|c| v > c.value) {
            status = status.max(CheckStatus::Critical);
            format!(" (above critical {}{})", c.text, m.unit())
        } else if let Some(w) = w.filter(|w| v > w.value) {
            status = status.max(CheckStatus::Warning);
            format!(" (above warning {}{})", w.text, m.unit())
        } else {
            String::new()
        };
        if i < checked || checked == 0 {
            summary.push(format!("{} {shown}{note}", m.name()));
        }
        perf.push(format!(
            "{}={shown};{};{}",
            m.label(),
            w.map_or("", |t| t.text.as_str()),
            c.map_or("", |t| t.text.as_str())
        ));
    }
    (
        status,
        format!(
            "TW_INSPECT {} - {} | {}",
            status.label(),
            summary.join(", "),
            perf.join(" ")
        ),
    )
}

pub fn run(args: &CheckArgs, _color: ColorChoice) -> Result<ExitCode> {
    match check(args) {
        Ok((status, line)) => {
            println!("{line}");
            Ok(status.into())
        }
        Err(e) => {
            // Plugin runners read stdout; app.rs also writes the error to stderr and exits 3.
            println!(
                "TW_INSPECT UNKNOWN - {}",
                crate::exit::one_line(&format!("{e:#}"))
            );
            Err(e)
        }
    }
}

fn check(args: &CheckArgs) -> Result<(CheckStatus, String)> {
    let query = config::query(&args.filter)?;
    let warn = args
        .warning
        .iter()
        .map(|a| parse_threshold("--warning", a))
        .collect::<Result<Vec<_>, _>>()?;
    let crit = args
        .critical
        .iter()
        .map(|a| parse_threshold("--critical", a))
        .collect::<Result<Vec<_>, _>>()?;
    let pressure = warn
        .iter()
        .chain(&crit)
        .any(|t| t.metric == Metric::PortPressure);
    let spec = Spec {
        query,
        by: GroupBy::default(),
        group_states: StateSet::EMPTY,
        sockets: false,
        pressure,
        tw_cookies: false,
        keep_raw: false,
        diagnose: false,
    };
    let scope = Scope::from_flags(&args.filter)?;
    let samples = sample::collect_scope(&scope, &spec)?;
    let total = sample::total(&samples, &spec);
    let port_pressure = if pressure {
        samples
            .iter()
            .map(|(_, s)| s.max_pressure_percent())
            .try_fold(0.0f64, |m, p| p.map(|p| m.max(p)))
    } else {
        None
    };
    let values = Values {
        counts: total.states,
        total: total.total,
        port_pressure,
    };
    Ok(evaluate(&values, &warn, &crit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(tw: u64) -> Values {
        let mut counts = [0; crate::state::MAX_STATE];
        counts[TcpState::TimeWait.index()] = tw;
        counts[TcpState::CloseWait.index()] = 2;
        Values {
            counts,
            total: tw + 2,
            port_pressure: Some(12.345),
        }
    }

    fn th(flag: &str, a: &str) -> Threshold {
        parse_threshold(flag, a).unwrap()
    }

    #[test]
    fn status_follows_thresholds() {
        let w = [th("-w", "time-wait=1000")];
        let c = [th("-c", "time-wait=5000")];
        let (s, line) = evaluate(&values(10), &w, &c);
        assert_eq!(s, CheckStatus::Ok);
        assert_eq!(
            line,
            "TW_INSPECT OK - time-wait 10 | time_wait=10;1000;5000 total=12;;"
        );
        assert_eq!(
            evaluate(&values(1000), &w, &c).0,
            CheckStatus::Ok,
            "equal is not above"
        );
        let (s, line) = evaluate(&values(1234), &w, &c);
        assert_eq!(s, CheckStatus::Warning);
        assert!(
            line.contains("time-wait 1234 (above warning 1000)"),
            "{line}"
        );
        assert_eq!(evaluate(&values(6000), &w, &c).0, CheckStatus::Critical);
    }

    #[test]
    fn percent_and_states() {
        let w = [th("-w", "port-pressure=10"), th("-w", "CLOSE_WAIT=1")];
        let (s, line) = evaluate(&values(0), &w, &[]);
        assert_eq!(s, CheckStatus::Warning);
        assert!(line.contains("port_pressure=12.35%;10;"), "{line}");
        assert!(line.contains("close_wait=2;1;"), "{line}");
        let none = Values {
            port_pressure: None,
            ..values(0)
        };
        assert_eq!(evaluate(&none, &w, &[]).0, CheckStatus::Unknown);
    }

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
                .contains("METRIC=N")
        );
        assert!(
            parse_threshold("--warning", "time-wait=-1")
                .unwrap_err()
                .0
                .contains("'-1'")
        );
        assert!(
            parse_threshold("--critical", "port-pressure=150")
                .unwrap_err()
                .0
                .contains("0 to 100")
        );
    }
}
