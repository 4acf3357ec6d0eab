//! `tw-inspect demo`: every claim about TIME_WAIT, shown live on loopback as the
//! kernel reports it. Each scenario opens its own connections, acts on them
//! (close, shutdown, drop packets on purpose with a socket filter) and records
//! what sock_diag reports for the client and server sockets, followed by cookie.
//! The verdict is computed from that record, never assumed.

pub mod close;
pub mod cost;
pub mod lost_ack;
pub mod model;
pub mod netns;
pub mod reuse;
pub mod sock;
pub mod timeline;
pub mod timeout;

use anyhow::Result;

use model::{ScenarioResult, Verdict};
use timeline::{Ctx, Timeline};

/// One scenario: its name on the command line, the claim it checks, and the code.
#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub claim: &'static str,
    pub run: fn(&Ctx) -> Result<ScenarioResult>,
}

/// Every scenario, in the order a full run shows them.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "active-close",
        claim: close::ACTIVE_CLAIM,
        run: close::active_close,
    },
    Scenario {
        name: "server-close",
        claim: close::SERVER_CLAIM,
        run: close::server_close,
    },
    Scenario {
        name: "abort",
        claim: close::ABORT_CLAIM,
        run: close::abort,
    },
    Scenario {
        name: "simultaneous",
        claim: close::SIMULTANEOUS_CLAIM,
        run: close::simultaneous,
    },
    Scenario {
        name: "reuse",
        claim: reuse::CLAIM,
        run: reuse::run,
    },
    Scenario {
        name: "lost-ack",
        claim: lost_ack::CLAIM,
        run: lost_ack::run,
    },
    Scenario {
        name: "timeout",
        claim: timeout::CLAIM,
        run: timeout::run,
    },
    Scenario {
        name: "cost",
        claim: cost::CLAIM,
        run: cost::run,
    },
];

pub fn names() -> String {
    SCENARIOS
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Collects what a scenario found wrong or skipped, and turns it into a verdict.
#[derive(Default)]
pub struct Checks {
    fails: Vec<String>,
    skipped: Vec<String>,
    nothing_ran: bool,
}

impl Checks {
    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.fails.push(what.into());
        }
    }

    pub fn fail(&mut self, what: impl Into<String>) {
        self.fails.push(what.into());
    }

    /// A part that could not run here, with why.
    pub fn skip(&mut self, what: impl Into<String>) {
        self.skipped.push(what.into());
    }

    /// Nothing of the claim could be checked.
    pub fn skip_all(&mut self, why: impl Into<String>) {
        self.skipped.push(why.into());
        self.nothing_ran = true;
    }

    pub fn finish(
        self,
        name: &'static str,
        claim: &'static str,
        shown: &str,
        tl: Timeline<'_>,
    ) -> ScenarioResult {
        let skipped =
            (!self.skipped.is_empty()).then(|| format!("skipped: {}", self.skipped.join("; ")));
        let (verdict, reason, summary) = if !self.fails.is_empty() {
            let r = self.fails.join("; ");
            (Verdict::Contradicted, Some(r.clone()), r)
        } else if self.nothing_ran {
            (
                Verdict::Skipped,
                skipped.clone(),
                skipped.unwrap_or_default(),
            )
        } else {
            let s = match &skipped {
                Some(sk) => format!("{shown} ({sk})"),
                None => shown.to_string(),
            };
            (Verdict::Confirmed, skipped, s)
        };
        ScenarioResult {
            name,
            claim,
            verdict,
            reason,
            summary,
            steps: tl.steps,
        }
    }
}
