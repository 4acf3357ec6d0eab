//! `check`'s one status line, as monitoring plugins print it:
//! `TW_INSPECT OK|WARNING|CRITICAL|UNKNOWN - summary | perfdata`.

use std::io::{self, Write};

use crate::exit::CheckStatus;
use crate::threshold::{Item, Metric, Outcome};

/// The value as perfdata and the summary write it: plain decimals, a unit
/// where the metric has one (percentages with two decimals).
fn shown(m: Metric, v: f64) -> String {
    match m.unit() {
        "" => format!("{v}"),
        "%" => format!("{v:.2}%"),
        // `c`: a counter (monitoring-plugins' continuous counter unit).
        unit => format!("{v}{unit}"),
    }
}

fn summary(i: &Item) -> String {
    let name = i.metric.name();
    let v = match i.value {
        Ok(v) => v,
        Err(why) => return format!("{name} unknown ({why})"),
    };
    let unit = i.metric.unit();
    let note = match (i.breached, &i.critical, &i.warning) {
        (Some(CheckStatus::Critical), Some(c), _) => format!(" (critical: {}{unit})", c.why(v)),
        (Some(CheckStatus::Warning), _, Some(w)) => format!(" (warning: {}{unit})", w.why(v)),
        _ => String::new(),
    };
    format!("{name} {}{note}", shown(i.metric, v))
}

/// The status line of `o`.
pub fn line(o: &Outcome) -> String {
    let summary: Vec<String> = o
        .items
        .iter()
        .filter(|i| i.in_summary)
        .map(summary)
        .collect();
    // A metric without a value has no perfdata (a missing value is not 0).
    let perf: Vec<String> = o
        .items
        .iter()
        .filter_map(|i| {
            let v = i.value.ok()?;
            Some(format!(
                "{}={};{};{}",
                i.metric.label(),
                shown(i.metric, v),
                i.warning.map_or(String::new(), |r| r.to_string()),
                i.critical.map_or(String::new(), |r| r.to_string())
            ))
        })
        .collect();
    format!(
        "TW_INSPECT {} - {} | {}",
        o.status.label(),
        summary.join(", "),
        perf.join(" ")
    )
}

pub fn status(w: &mut dyn Write, o: &Outcome) -> io::Result<()> {
    writeln!(w, "{}", line(o))
}

/// The line for a check that could not run; `why` is the one-line error.
pub fn unknown(w: &mut dyn Write, why: &str) -> io::Result<()> {
    writeln!(w, "TW_INSPECT UNKNOWN - {why}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{StateSet, TcpState};
    use crate::threshold::evaluate;
    use crate::threshold::fixtures::{th, values};

    #[test]
    fn status_lines() {
        let w = [th("-w", "time-wait=1000")];
        let c = [th("-c", "time-wait=5000")];
        assert_eq!(
            line(&evaluate(&values(10), &w, &c)),
            "TW_INSPECT OK - time-wait 10 | time_wait=10;1000;5000 total=12;;"
        );
        let l = line(&evaluate(&values(1234), &w, &c));
        assert!(
            l.starts_with("TW_INSPECT WARNING - time-wait 1234 (warning: above 1000)"),
            "{l}"
        );
        let l = line(&evaluate(&values(6000), &w, &c));
        assert!(l.contains("(critical: above 5000)"), "{l}");
        // Ranges are written back normalized: never 1e3.
        let l = line(&evaluate(
            &values(5),
            &[th("-w", "time-wait=@1e3:2e3")],
            &[th("-c", "time-wait=10:")],
        ));
        assert!(
            l.starts_with("TW_INSPECT CRITICAL - time-wait 5 (critical: below 10)"),
            "{l}"
        );
        assert!(l.contains("time_wait=5;@1000:2000;10:"), "{l}");
        assert!(!l.contains("e3"), "{l}");
    }

    #[test]
    fn percent_and_states() {
        let w = [th("-w", "port-pressure=10"), th("-w", "CLOSE_WAIT=1")];
        let l = line(&evaluate(&values(0), &w, &[]));
        assert!(l.starts_with("TW_INSPECT WARNING"), "{l}");
        assert!(l.contains("port_pressure=12.35%;10;"), "{l}");
        assert!(l.contains("close_wait=2;1;"), "{l}");
        let mut v = values(0);
        v.counted = StateSet::from_states(&[TcpState::Established]);
        let l = line(&evaluate(&v, &[th("-w", "time-wait=1")], &[]));
        assert!(
            l.starts_with("TW_INSPECT UNKNOWN - time-wait unknown (not counted)"),
            "{l}"
        );
        assert!(
            !l.contains("time_wait="),
            "no perfdata for a value not read: {l}"
        );
    }
}
