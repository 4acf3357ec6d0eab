//! The plan of `check`: what to count, and the thresholds.

use super::values;
use crate::cli::CheckArgs;
use crate::exit::UsageError;
use crate::filter::Query;
use crate::host::netns::NetnsChoice;
use crate::state::TcpState;
use crate::threshold::{Kind, Scope, Threshold, check_pair, parse_threshold};

#[derive(Clone, Debug)]
pub struct CheckPlan {
    pub netns: NetnsChoice,
    pub query: Query,
    pub warning: Vec<Threshold>,
    pub critical: Vec<Threshold>,
    /// A threshold on port pressure: count outgoing sockets per destination.
    pub pressure: bool,
    /// A threshold on the conntrack table: read its size and counters.
    pub conntrack: bool,
    /// Scoped metrics (`time-wait:port=443`), each once: a count is a filtered
    /// dump of its own, port pressure a look at the destinations counted, a
    /// role a count kept while dumping.
    pub scoped: Vec<crate::threshold::Metric>,
    /// A threshold on a role (`time-wait:incoming`): read the listeners first.
    pub roles: bool,
    /// A threshold on a kernel counter: read them.
    pub counters: bool,
}

fn thresholds(flag: &str, args: &[String]) -> Result<Vec<Threshold>, UsageError> {
    let mut out: Vec<Threshold> = Vec::new();
    for a in args {
        let t = parse_threshold(flag, a)?;
        if let Some(prev) = out.iter().find(|p| p.metric == t.metric) {
            return Err(UsageError(format!(
                "{flag} {}: given twice ('{}={}' and '{a}'); give each metric once",
                t.metric.name(),
                prev.metric.name(),
                prev.range
            )));
        }
        out.push(t);
    }
    Ok(out)
}

pub fn build(a: &CheckArgs) -> Result<CheckPlan, UsageError> {
    let mut query = values::query(&a.filter)?;
    let warning = thresholds("--warning", &a.warning)?;
    let critical = thresholds("--critical", &a.critical)?;
    for w in &warning {
        if let Some(c) = critical.iter().find(|c| c.metric == w.metric) {
            check_pair(w, c)?;
        }
    }
    let states: Vec<TcpState> = warning
        .iter()
        .chain(&critical)
        .filter_map(|t| match t.metric.kind {
            Kind::State(s) => Some(s),
            _ => None,
        })
        .collect();
    match &a.filter.state {
        // The user chose what to count: a threshold outside it would read 0 and say OK.
        Some(given) => {
            if let Some(s) = states.iter().find(|s| !query.states.contains(**s)) {
                return Err(UsageError(format!(
                    "a threshold is set on {s}, but --state {given} does not count it: add {s} to --state"
                )));
            }
        }
        // Count what the thresholds name (bound-inactive is not counted by default).
        None => {
            for s in states {
                query.states.insert(s);
            }
        }
    }
    let pressure = warning
        .iter()
        .chain(&critical)
        .any(|t| t.metric.kind == Kind::PortPressure);
    let mut scoped = Vec::new();
    for t in warning.iter().chain(&critical) {
        if t.metric.scope.is_some() && !scoped.contains(&t.metric) {
            scoped.push(t.metric);
        }
    }
    let conntrack = warning
        .iter()
        .chain(&critical)
        .any(|t| t.metric.kind.is_conntrack());
    let all = || warning.iter().chain(&critical);
    let roles = all().any(|t| matches!(t.metric.scope, Some(Scope::Role(_))));
    let counters = all().any(|t| matches!(t.metric.kind, Kind::Counter(_)));
    Ok(CheckPlan {
        netns: values::netns(&a.filter),
        query,
        warning,
        critical,
        pressure,
        scoped,
        conntrack,
        roles,
        counters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_given_twice_is_refused() {
        let twice = thresholds(
            "--warning",
            &["time-wait=1".to_string(), "TIME_WAIT=2".to_string()],
        )
        .unwrap_err();
        assert!(twice.0.contains("given twice"), "{twice}");
        // The same metric with two scopes is two metrics.
        assert!(
            thresholds(
                "--warning",
                &[
                    "time-wait:port=80=1".to_string(),
                    "time-wait:port=443=2".to_string()
                ],
            )
            .is_ok()
        );
    }
}
