//! `list --watch` on stdout: one sample after another, as a redrawn table on a
//! terminal, a line of counts otherwise, JSON lines or CSV rows. States that
//! were not counted are left out (JSON: `null`), never shown as 0.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;
use serde::ser::SerializeMap;

use super::Style;
use super::table::{grouped, grouped_signed, new_table, write_table};
use crate::host::counters::Counters;
use crate::state::{MAX_STATE, TcpState};

pub use crate::report::Counts;
use crate::report::Skipped;

/// Signed change per counted state since the previous sample.
#[derive(Clone, Copy, Debug)]
pub struct Change<'a> {
    pub now: &'a Counts,
    pub before: &'a Counts,
}

impl Change<'_> {
    pub fn get(&self, s: TcpState) -> Option<i64> {
        Some(self.now.get(s)? as i64 - self.before.get(s)? as i64)
    }
}

impl Serialize for Change<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(MAX_STATE))?;
        for st in TcpState::ALL {
            m.serialize_entry(st.name(), &self.get(st))?;
        }
        m.end()
    }
}

/// One namespace's counts in a sample (`--all-netns`, `--netns`).
#[derive(Clone, Debug, Serialize)]
pub struct NsLine {
    pub netns: String,
    /// Who the namespace belongs to (README, "Containers and pods").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::host::identity::NsIdentity>,
    pub total: u64,
    pub states: Counts,
}

/// One sample: the JSON line's fields are the contract (README, `--watch`).
#[derive(Serialize)]
pub struct Sample<'a> {
    /// Unix time of the sample, seconds.
    pub time: f64,
    /// 1 for the first sample.
    pub sample: u64,
    /// Seconds since the previous sample (null for the first).
    pub interval_s: Option<f64>,
    pub total: u64,
    pub states: &'a Counts,
    /// Change per state since the previous sample (null for the first).
    pub change: Option<Change<'a>>,
    /// Sockets that entered TIME_WAIT since the previous sample.
    pub time_wait_new: Option<u64>,
    /// The same per second.
    pub time_wait_rate: Option<f64>,
    /// Sockets that entered TIME_WAIT since the previous sample by the
    /// kernel's own count (`TcpExtTW`, which also counts orphaned FIN_WAIT2
    /// on their way to TIME_WAIT).
    pub time_wait_entered: Option<u64>,
    /// The same per second.
    pub time_wait_entered_rate: Option<f64>,
    /// Growth of every kernel counter since the previous sample (`nstat`
    /// names); null for the first sample.
    pub counters_change: Option<&'a Counters>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<NsLine>,
    /// `--all-netns`: namespaces found but not read in this sample, with why.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub skipped: &'a [Skipped],
}

/// Counters shown on the screen when they grew: resets and refused TIME_WAIT.
const NOTABLE: [(&str, &str); 5] = [
    (
        "TcpExtTCPTimeWaitOverflow",
        "TIME_WAIT refused (table full)",
    ),
    (
        "TcpExtTCPAbortOnData",
        "resets: SO_LINGER 0 or data after close",
    ),
    ("TcpExtTCPAbortOnClose", "resets: closed with unread data"),
    ("TcpExtTCPAbortOnLinger", "resets: TCP_LINGER2 < 0"),
    ("TcpExtTWRecycled", "TIME_WAIT taken over by connect()"),
];

/// `HH:MM:SS` UTC.
fn clock(t: f64) -> String {
    let s = t as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub fn json_line(w: &mut dyn Write, s: &Sample) -> Result<()> {
    super::json::write_line(w, s)
}

/// A CSV row; the header (counted states only) before the first.
pub fn csv_row(w: &mut dyn Write, s: &Sample) -> Result<()> {
    let states: Vec<TcpState> = s.states.counted.iter().collect();
    if s.sample == 1 {
        let names: Vec<&str> = states.iter().map(|st| st.name()).collect();
        writeln!(
            w,
            "time,total,{},time_wait_new,time_wait_rate,time_wait_entered,time_wait_entered_rate",
            names.join(",")
        )?;
    }
    let vals: Vec<String> = states
        .iter()
        .map(|st| s.states.counts[st.index()].to_string())
        .collect();
    writeln!(
        w,
        "{:.3},{},{},{},{},{},{}",
        s.time,
        s.total,
        vals.join(","),
        s.time_wait_new.map(|v| v.to_string()).unwrap_or_default(),
        s.time_wait_rate
            .map(|r| format!("{r:.2}"))
            .unwrap_or_default(),
        s.time_wait_entered
            .map(|v| v.to_string())
            .unwrap_or_default(),
        s.time_wait_entered_rate
            .map(|r| format!("{r:.2}"))
            .unwrap_or_default()
    )?;
    Ok(())
}

/// The screen redrawn on a terminal.
pub fn screen(w: &mut dyn Write, s: &Sample, every_s: f64, style: Style) -> Result<()> {
    write!(w, "\x1b[H\x1b[2J")?;
    writeln!(
        w,
        "tw-inspect list --watch: every {every_s:.1}s, sample {} at {} UTC; Ctrl-C stops",
        s.sample,
        clock(s.time)
    )?;
    let mut t = new_table(style, &["State", "Sockets", "Change"]);
    for st in s.states.counted.iter() {
        let c = s.states.counts[st.index()];
        let d = s.change.and_then(|ch| ch.get(st));
        if c == 0 && d.unwrap_or(0) == 0 && st != TcpState::TimeWait {
            continue;
        }
        t.add_row(vec![
            st.name().to_string(),
            grouped(c),
            d.map_or(String::new(), grouped_signed),
        ]);
    }
    write_table(w, &t)?;
    writeln!(w, "Total {}", grouped(s.total))?;
    match (s.time_wait_rate, s.time_wait_new) {
        (Some(r), Some(k)) => writeln!(
            w,
            "Entering TIME_WAIT: {r:.1}/s ({} new since the last sample)",
            grouped(k)
        )?,
        _ if !s.states.counted.contains(TcpState::TimeWait) => {
            writeln!(w, "Entering TIME_WAIT: not counted (--state leaves it out)")?
        }
        _ => writeln!(w, "Entering TIME_WAIT: measured from the second sample on")?,
    }
    if let (Some(r), Some(k)) = (s.time_wait_entered_rate, s.time_wait_entered) {
        writeln!(
            w,
            "Kernel counter TW: {r:.1}/s ({} since the last sample)",
            grouped(k)
        )?;
    }
    if let Some(g) = s.counters_change {
        for (name, what) in NOTABLE {
            if let Some(n) = g.get(name).filter(|n| *n > 0) {
                writeln!(w, "  {what}: +{} ({name})", grouped(n))?;
            }
        }
    }
    Ok(())
}

/// One line of counts, for a pipe or a log.
pub fn line(w: &mut dyn Write, s: &Sample) -> Result<()> {
    let mut parts = vec![format!("{} total={}", clock(s.time), s.total)];
    for st in s.states.counted.iter() {
        let c = s.states.counts[st.index()];
        if c == 0 && st != TcpState::TimeWait {
            continue;
        }
        match s.change.and_then(|ch| ch.get(st)) {
            Some(d) => parts.push(format!("{}={c}({d:+})", st.name())),
            None => parts.push(format!("{}={c}", st.name())),
        }
    }
    if let Some(r) = s.time_wait_rate {
        parts.push(format!("time-wait-rate={r:.1}/s"));
    }
    if let Some(r) = s.time_wait_entered_rate {
        parts.push(format!("tw-counter-rate={r:.1}/s"));
    }
    if let Some(g) = s.counters_change {
        for (name, _) in NOTABLE {
            if let Some(n) = g.get(name).filter(|n| *n > 0) {
                parts.push(format!("{name}=+{n}"));
            }
        }
    }
    writeln!(w, "{}", parts.join(" "))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateSet;

    #[test]
    fn clock_is_utc_hms() {
        assert_eq!(clock(86_400.0 * 3.0 + 3661.5), "01:01:01");
    }

    #[test]
    fn uncounted_states_are_null_or_absent() {
        let mut counts = [0; MAX_STATE];
        counts[TcpState::Established.index()] = 3;
        let c = Counts {
            counts,
            counted: StateSet::from_states(&[TcpState::Established]),
        };
        let s = Sample {
            time: 0.0,
            sample: 1,
            interval_s: None,
            total: 3,
            states: &c,
            change: None,
            time_wait_new: None,
            time_wait_rate: None,
            time_wait_entered: None,
            time_wait_entered_rate: None,
            counters_change: None,
            namespaces: Vec::new(),
            skipped: &[],
        };
        let v: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(v["states"]["established"], 3);
        assert!(v["states"]["time-wait"].is_null());
        let mut out = Vec::new();
        csv_row(&mut out, &s).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("time,total,established,time_wait_new"),
            "{text}"
        );
        let mut out = Vec::new();
        line(&mut out, &s).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("time-wait"));
    }
}
