//! The demo's model: what the kernel showed at each step and each verdict
//! (render/demo.rs writes it as the table or the JSON document).

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

#[cfg(test)]
mod tests {
    use super::*;

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
