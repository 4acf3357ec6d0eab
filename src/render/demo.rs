//! `demo` output: the live timeline table (a header per scenario, a line per
//! step as the scenario records it, the verdict), the closing summary, the JSON
//! document, and `demo --list`.

use std::cell::RefCell;
use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::json;
use crate::demo::Scenario;
use crate::demo::model::{OBSERVED, Obs, ScenarioResult, Step, Verdict};
use crate::demo::timeline::Observer;
use crate::socket::Timer;
use crate::state::TcpState;

/// The formats `demo` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoFormat {
    Table,
    Json,
}

/// The table as it happens: scenarios tell it their steps ([`Observer`]), the
/// command tells it where a scenario starts and ends. Each line is flushed at
/// once, so a paced demo is read while it runs.
pub struct Live<W: Write> {
    out: RefCell<W>,
}

impl<W: Write> Live<W> {
    pub fn new(out: W) -> Live<W> {
        Live {
            out: RefCell::new(out),
        }
    }

    fn line(&self, args: std::fmt::Arguments) -> Result<()> {
        let mut out = self.out.borrow_mut();
        out.write_fmt(args)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    }

    /// The scenario's name, its claim, and the column heads.
    pub fn header(&self, name: &str, claim: &str) -> Result<()> {
        self.line(format_args!("\n== {name}: {claim}"))?;
        self.row("t", "action", "client", "server")
    }

    /// One step as one or more lines: the action and the client's state wrap
    /// inside their columns, so the columns stay aligned whatever the text
    /// (the table is written while the scenario runs: widths cannot wait for
    /// the longest row).
    fn row(&self, t: &str, action: &str, client: &str, server: &str) -> Result<()> {
        let action = wrap_cell(action, ACTION_WIDTH);
        let client = wrap_cell(client, CLIENT_WIDTH);
        for i in 0..action.len().max(client.len()) {
            let cell = |v: &[String]| v.get(i).cloned().unwrap_or_default();
            let (t, server) = if i == 0 { (t, server) } else { ("", "") };
            let line = format!(
                "{t:>8}  {:<ACTION_WIDTH$} {:<CLIENT_WIDTH$} {server}",
                cell(&action),
                cell(&client)
            );
            self.line(format_args!("{}", line.trim_end()))?;
        }
        Ok(())
    }

    /// `=> CONFIRMED: ...` after a scenario's steps.
    pub fn verdict(&self, r: &ScenarioResult) -> Result<()> {
        // A skipped scenario's summary is its reasons, which say "skipped" too.
        let summary = match r.verdict {
            Verdict::Skipped => r.summary.strip_prefix("skipped: ").unwrap_or(&r.summary),
            _ => &r.summary,
        };
        self.line(format_args!("=> {}: {}", label(r.verdict), summary))
    }

    /// The count of each verdict, and where the demo ran.
    pub fn summary(&self, results: &[ScenarioResult], private_ns: bool) -> Result<()> {
        let n = |v| results.iter().filter(|r| r.verdict == v).count();
        self.line(format_args!(
            "\n{} confirmed, {} contradicted, {} skipped ({})",
            n(Verdict::Confirmed),
            n(Verdict::Contradicted),
            n(Verdict::Skipped),
            if private_ns {
                "in a private network namespace"
            } else {
                "on the host's loopback"
            }
        ))
    }
}

impl<W: Write> Observer for Live<W> {
    fn step(&self, s: &Step) -> Result<()> {
        let action = if s.action == OBSERVED {
            "  (kernel)"
        } else {
            s.action.as_str()
        };
        self.row(
            &format!("{:.3}s", s.t_ms as f64 / 1000.0),
            action,
            &Obs::describe(s.client),
            &Obs::describe(s.server),
        )
    }
}

/// Widths of the live table's action and client columns.
const ACTION_WIDTH: usize = 44;
const CLIENT_WIDTH: usize = 34;

/// `text` in lines of at most `width` characters, broken between words (a
/// word longer than the column is cut), its leading indent kept on each line.
fn wrap_cell(text: &str, width: usize) -> Vec<String> {
    let body = text.trim_start();
    let indent = &text[..text.len() - body.len()];
    let room = width.saturating_sub(indent.len()).max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in body.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = cur.chars().count();
            let gap = usize::from(used > 0);
            if used + gap + word.len() <= room {
                if gap == 1 {
                    cur.push(' ');
                }
                cur.extend(word.iter());
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut cur));
                continue;
            }
            // Longer than the whole column: cut it.
            let rest = word.split_off(room);
            lines.push(word.iter().collect());
            word = rest;
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines.into_iter().map(|l| format!("{indent}{l}")).collect()
}

fn label(v: Verdict) -> &'static str {
    match v {
        Verdict::Confirmed => "CONFIRMED",
        Verdict::Contradicted => "CONTRADICTED",
        Verdict::Skipped => "SKIPPED",
    }
}

// ---- JSON contract (README, "tw-inspect demo") ----

#[derive(Serialize)]
struct JsonDoc<'a> {
    /// `namespace` (a private network namespace) or `host` (the host's loopback).
    isolation: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    scenarios: Vec<JsonScenario<'a>>,
}

#[derive(Serialize)]
struct JsonScenario<'a> {
    name: &'a str,
    claim: &'a str,
    verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    steps: Vec<JsonStep<'a>>,
}

#[derive(Serialize)]
struct JsonStep<'a> {
    t_ms: u64,
    action: &'a str,
    client: Option<JsonSock>,
    server: Option<JsonSock>,
}

#[derive(Serialize)]
struct JsonSock {
    state: TcpState,
    timer: Timer,
    expires_ms: u32,
    retransmits: u8,
}

impl From<Obs> for JsonSock {
    fn from(o: Obs) -> JsonSock {
        JsonSock {
            state: o.state,
            timer: o.timer,
            expires_ms: o.expires_ms,
            retransmits: o.retransmits,
        }
    }
}

/// Every scenario's timeline and verdict as one JSON document.
pub fn json(
    w: &mut dyn Write,
    isolation: &str,
    note: Option<&str>,
    results: &[ScenarioResult],
) -> Result<()> {
    let doc = JsonDoc {
        isolation,
        note,
        scenarios: results
            .iter()
            .map(|r| JsonScenario {
                name: r.name,
                claim: r.claim,
                verdict: r.verdict,
                reason: r.reason.as_deref(),
                steps: r
                    .steps
                    .iter()
                    .map(|s| JsonStep {
                        t_ms: s.t_ms,
                        action: &s.action,
                        client: s.client.map(JsonSock::from),
                        server: s.server.map(JsonSock::from),
                    })
                    .collect(),
            })
            .collect(),
    };
    json::write(w, &doc)
}

/// One entry of `demo --list --format json`.
#[derive(Serialize)]
struct ListEntry<'a> {
    name: &'a str,
    claim: &'a str,
}

/// `demo --list`: each scenario's name and the claim it checks.
pub fn list(w: &mut dyn Write, scenarios: &[&Scenario], format: DemoFormat) -> Result<()> {
    match format {
        DemoFormat::Table => {
            for s in scenarios {
                writeln!(w, "{:<13} {}", s.name, s.claim)?;
            }
            Ok(())
        }
        DemoFormat::Json => {
            let entries: Vec<ListEntry> = scenarios
                .iter()
                .map(|s| ListEntry {
                    name: s.name,
                    claim: s.claim,
                })
                .collect();
            json::write(w, &entries)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::SCENARIOS;

    fn tw() -> Obs {
        Obs {
            state: TcpState::TimeWait,
            timer: Timer::TimeWait,
            expires_ms: 59_000,
            retransmits: 0,
        }
    }

    fn result(verdict: Verdict) -> ScenarioResult {
        ScenarioResult {
            name: "x",
            claim: "c",
            verdict,
            reason: None,
            summary: "it held".into(),
            steps: vec![Step {
                t_ms: 5,
                action: "close".into(),
                client: Some(tw()),
                server: None,
            }],
        }
    }

    #[test]
    fn json_shape() {
        let mut out = Vec::new();
        json(&mut out, "namespace", None, &[result(Verdict::Confirmed)]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["isolation"], "namespace");
        assert!(v.get("note").is_none());
        let s = &v["scenarios"][0];
        assert_eq!(s["verdict"], "confirmed");
        assert!(s.get("reason").is_none());
        assert_eq!(s["steps"][0]["client"]["state"], "time-wait");
        assert_eq!(s["steps"][0]["client"]["timer"], "timewait");
        assert_eq!(s["steps"][0]["client"]["expires_ms"], 59_000);
        assert!(s["steps"][0]["server"].is_null());
    }

    #[test]
    fn live_lines() {
        let live = Live::new(Vec::new());
        live.header("x", "c").unwrap();
        live.step(&result(Verdict::Confirmed).steps[0]).unwrap();
        let mut kernel = result(Verdict::Confirmed).steps[0].clone();
        kernel.action = OBSERVED.into();
        live.step(&kernel).unwrap();
        let r = [result(Verdict::Confirmed), result(Verdict::Contradicted)];
        live.verdict(&r[1]).unwrap();
        live.summary(&r, true).unwrap();
        let text = String::from_utf8(live.out.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "== x: c");
        assert!(lines[2].trim_start().starts_with("t  action"), "{text}");
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text:?}");
        assert!(
            lines[3].starts_with("  0.005s  close ") && lines[3].ends_with(" gone"),
            "{text}"
        );
        assert!(lines[3].contains("time-wait (timewait 59.0s)"), "{text}");
        assert!(lines[4].starts_with("  0.005s    (kernel)"), "{text}");
        assert_eq!(lines[5], "=> CONTRADICTED: it held");
        assert_eq!(
            lines[7],
            "1 confirmed, 1 contradicted, 0 skipped (in a private network namespace)"
        );
    }

    #[test]
    fn columns_stay_aligned_whatever_the_action() {
        let live = Live::new(Vec::new());
        live.header("x", "c").unwrap();
        let mut long = result(Verdict::Confirmed).steps[0].clone();
        long.action = "(a) tcp_tw_reuse=0: bind :38035, connect fails with EADDRNOTAVAIL \
                       and a word far longer than any column could ever hold_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            .into();
        long.client = Some(Obs {
            state: TcpState::LastAck,
            timer: Timer::On,
            expires_ms: 12_300,
            retransmits: 15,
        });
        live.step(&long).unwrap();
        live.step(&result(Verdict::Confirmed).steps[0]).unwrap();
        let text = String::from_utf8(live.out.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().skip(2).collect();
        let head = text.lines().nth(2).unwrap();
        let client_col = head.find("client").unwrap();
        let server_col = head.find("server").unwrap();
        // Every line that has a client or server cell starts it at its column.
        for l in &lines[1..] {
            assert!(
                l.chars().count() <= server_col || l[server_col - 1..].starts_with(' '),
                "{text}"
            );
            let before = &l[..client_col.min(l.len())];
            assert!(before.chars().count() <= client_col, "{text}");
        }
        let first = lines[1];
        assert_eq!(&first[client_col..client_col + 8], "last-ack", "{text}");
        assert_eq!(&first[server_col..], "gone", "{text}");
        // The short step after the long one is aligned as the header is.
        let last = lines.last().unwrap();
        assert_eq!(&last[client_col..client_col + 9], "time-wait", "{text}");
        assert_eq!(&last[server_col..], "gone", "{text}");
        assert!(text.contains("EADDRNOTAVAIL"), "{text}");
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text:?}");
    }

    #[test]
    fn a_skipped_scenario_says_skipped_once() {
        let live = Live::new(Vec::new());
        let mut r = result(Verdict::Skipped);
        r.summary = "skipped: needs root".into();
        live.verdict(&r).unwrap();
        let text = String::from_utf8(live.out.into_inner()).unwrap();
        assert_eq!(text, "=> SKIPPED: needs root\n");
    }

    #[test]
    fn list_as_table_and_json() {
        let mut out = Vec::new();
        let all: Vec<&Scenario> = SCENARIOS.iter().collect();
        list(&mut out, &all, DemoFormat::Table).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), SCENARIOS.len());
        assert!(text.starts_with(&format!("{:<13} ", SCENARIOS[0].name)));

        let mut out = Vec::new();
        list(&mut out, &all, DemoFormat::Json).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), SCENARIOS.len());
        for (e, s) in arr.iter().zip(SCENARIOS) {
            assert_eq!(e["name"], s.name);
            assert_eq!(e["claim"], s.claim);
            assert_eq!(e.as_object().unwrap().len(), 2);
        }
    }
}
