//! The demo's output model: what `--format json` prints and the table shows.

use serde::Serialize;

use crate::socket::{SocketRecord, Timer};
use crate::state::TcpState;

/// One socket as sock_diag reported it at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obs {
    pub state: TcpState,
    pub timer: Timer,
    pub expires_ms: u32,
    pub retransmits: u8,
}

impl Obs {
    pub fn from_record(r: &SocketRecord) -> Obs {
        Obs {
            state: r.state,
            timer: r.timer,
            expires_ms: r.expires_ms,
            retransmits: r.retransmits,
        }
    }

    /// Same state, timer and retransmits: the time left alone does not make a new step.
    pub fn same_phase(a: Option<Obs>, b: Option<Obs>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.state == b.state && a.timer == b.timer && a.retransmits == b.retransmits
            }
            _ => false,
        }
    }

    /// `time-wait (timewait 59.9s)`, `last-ack (on 0.4s, 2 retransmits)`.
    pub fn describe(o: Option<Obs>) -> String {
        let Some(o) = o else {
            return "gone".to_string();
        };
        let mut s = o.state.name().to_string();
        if o.timer != Timer::Off {
            s.push_str(&format!(
                " ({} {:.1}s",
                o.timer.name(),
                f64::from(o.expires_ms) / 1000.0
            ));
            if o.retransmits > 0 {
                s.push_str(&format!(
                    ", {} retransmit{}",
                    o.retransmits,
                    if o.retransmits == 1 { "" } else { "s" }
                ));
            }
            s.push(')');
        }
        s
    }
}

/// One line of a timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub t_ms: u64,
    /// What the program did; `observed` when the kernel changed a state on its own.
    pub action: String,
    pub client: Option<Obs>,
    pub server: Option<Obs>,
}

pub const OBSERVED: &str = "observed";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Confirmed,
    Contradicted,
    Skipped,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Confirmed => "CONFIRMED",
            Verdict::Contradicted => "CONTRADICTED",
            Verdict::Skipped => "SKIPPED",
        }
    }
}

/// The outcome of one scenario.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub claim: &'static str,
    pub verdict: Verdict,
    /// Why it was contradicted or skipped, or which parts were skipped.
    pub reason: Option<String>,
    /// The one sentence the table prints after the verdict.
    pub summary: String,
    pub steps: Vec<Step>,
}

// ---- JSON contract ----

#[derive(Serialize)]
pub struct JsonDoc<'a> {
    /// `namespace` (a private network namespace) or `host` (the host's loopback).
    pub isolation: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'a str>,
    pub scenarios: Vec<JsonScenario<'a>>,
}

#[derive(Serialize)]
pub struct JsonScenario<'a> {
    pub name: &'a str,
    pub claim: &'a str,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub steps: Vec<JsonStep<'a>>,
}

#[derive(Serialize)]
pub struct JsonStep<'a> {
    pub t_ms: u64,
    pub action: &'a str,
    pub client: Option<JsonSock>,
    pub server: Option<JsonSock>,
}

#[derive(Serialize)]
pub struct JsonSock {
    pub state: &'static str,
    pub timer: &'static str,
    pub expires_ms: u32,
    pub retransmits: u8,
}

impl From<Obs> for JsonSock {
    fn from(o: Obs) -> JsonSock {
        JsonSock {
            state: o.state.name(),
            timer: o.timer.name(),
            expires_ms: o.expires_ms,
            retransmits: o.retransmits,
        }
    }
}

pub fn to_json<'a>(
    isolation: &'a str,
    note: Option<&'a str>,
    results: &'a [ScenarioResult],
) -> JsonDoc<'a> {
    JsonDoc {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let tw = Obs {
            state: TcpState::TimeWait,
            timer: Timer::TimeWait,
            expires_ms: 59_000,
            retransmits: 0,
        };
        let r = ScenarioResult {
            name: "x",
            claim: "c",
            verdict: Verdict::Confirmed,
            reason: None,
            summary: String::new(),
            steps: vec![Step {
                t_ms: 5,
                action: "close".into(),
                client: Some(tw),
                server: None,
            }],
        };
        let v = serde_json::to_value(to_json("namespace", None, std::slice::from_ref(&r))).unwrap();
        let s = &v["scenarios"][0];
        assert_eq!(s["verdict"], "confirmed");
        assert!(s.get("reason").is_none());
        assert_eq!(s["steps"][0]["client"]["state"], "time-wait");
        assert_eq!(s["steps"][0]["client"]["timer"], "timewait");
        assert_eq!(s["steps"][0]["client"]["expires_ms"], 59_000);
        assert!(s["steps"][0]["server"].is_null());
    }

    #[test]
    fn describe_and_phase() {
        let la = Obs {
            state: TcpState::LastAck,
            timer: Timer::On,
            expires_ms: 400,
            retransmits: 2,
        };
        assert_eq!(Obs::describe(Some(la)), "last-ack (on 0.4s, 2 retransmits)");
        assert_eq!(Obs::describe(None), "gone");
        let later = Obs {
            expires_ms: 100,
            ..la
        };
        assert!(Obs::same_phase(Some(la), Some(later)));
        assert!(!Obs::same_phase(
            Some(la),
            Some(Obs {
                retransmits: 3,
                ..la
            })
        ));
        assert!(!Obs::same_phase(Some(la), None));
    }
}
