//! Monitoring-plugin thresholds: what `check` compares, and the verdict. Pure:
//! values and thresholds in, a status and its items out; render/check.rs
//! writes the status line.

use crate::exit::{CheckStatus, UsageError};
use crate::state::{StateSet, TcpState, suggest};

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
}

/// One `METRIC=N`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub metric: Metric,
    pub value: f64,
    /// As given, for perfdata.
    pub text: String,
}

/// The metrics `--warning` and `--critical` accept.
pub const VALID_METRICS: &str = "time-wait, close-wait, port-pressure (percent), total, or any state (established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, closed, last-ack, listening, closing, new-syn-recv, bound-inactive)";

/// Parses `METRIC=N` for `flag` (`--warning` or `--critical`).
pub fn parse_threshold(flag: &str, arg: &str) -> Result<Threshold, UsageError> {
    let Some((m, v)) = arg.split_once('=') else {
        return Err(UsageError(format!(
            "{flag} '{arg}': expected METRIC=N, METRIC one of {VALID_METRICS}"
        )));
    };
    let metric = Metric::parse(m).ok_or_else(|| {
        let names = TcpState::ALL.iter().map(|s| s.name());
        let hint = suggest(m, names.chain(["port-pressure", "total"]))
            .map(|s| format!("did you mean {s}? "))
            .unwrap_or_default();
        UsageError(format!(
            "{flag} '{arg}': unknown metric '{m}'; {hint}valid: {VALID_METRICS}"
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
    /// The states that were counted: any other reads as unknown, never as 0.
    pub counted: StateSet,
    pub total: u64,
    pub port_pressure: Option<f64>,
}

impl Values {
    fn get(&self, m: Metric) -> Result<f64, &'static str> {
        match m {
            Metric::State(s) if self.counted.contains(s) => Ok(self.counts[s.index()] as f64),
            Metric::State(_) => Err("not counted"),
            Metric::Total => Ok(self.total as f64),
            Metric::PortPressure => self.port_pressure.ok_or("no ephemeral port range"),
        }
    }
}

/// One metric of the status line.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub metric: Metric,
    /// The value, or why there is none.
    pub value: Result<f64, &'static str>,
    pub warning: Option<Threshold>,
    pub critical: Option<Threshold>,
    /// Which threshold the value is above, if any.
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

/// Pure: the status and its items from values and thresholds. A value above
/// its threshold alerts; equal does not. Thresholded metrics come first, then
/// time-wait (when counted) and total, which are always in the perfdata.
pub fn evaluate(values: &Values, warn: &[Threshold], crit: &[Threshold]) -> Outcome {
    let mut metrics: Vec<Metric> = Vec::new();
    for t in warn.iter().chain(crit) {
        if !metrics.contains(&t.metric) {
            metrics.push(t.metric);
        }
    }
    let checked = metrics.len();
    for m in [Metric::State(TcpState::TimeWait), Metric::Total] {
        if !metrics.contains(&m) && values.get(m).is_ok() {
            metrics.push(m);
        }
    }
    let mut status = CheckStatus::Ok;
    let items = metrics
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let warning = warn.iter().find(|t| t.metric == *m).cloned();
            let critical = crit.iter().find(|t| t.metric == *m).cloned();
            let value = values.get(*m);
            let breached = match value {
                Err(_) => Some(CheckStatus::Unknown),
                Ok(v) if critical.as_ref().is_some_and(|c| v > c.value) => {
                    Some(CheckStatus::Critical)
                }
                Ok(v) if warning.as_ref().is_some_and(|w| v > w.value) => {
                    Some(CheckStatus::Warning)
                }
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
                .all(|i| i.metric != Metric::State(TcpState::TimeWait)),
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
    }
}
