//! `tw-inspect check`: a monitoring plugin (Nagios, Icinga, Sensu conventions).
//!
//! One status line on stdout and the exit code 0/1/2/3. Anything that stops
//! the check (bad flags, netlink refused) is UNKNOWN: app.rs prints that
//! status line and the usual one-line error on stderr.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use crate::aggregate::GroupBy;
use crate::host::netns::Scope;
use crate::plan::CheckPlan;
use crate::render;
use crate::sample::{self, Spec};
use crate::state::StateSet;
use crate::threshold::{Values, evaluate};

pub fn run(plan: &CheckPlan) -> Result<ExitCode> {
    let spec = Spec {
        query: plan.query.clone(),
        by: GroupBy::default(),
        group_states: StateSet::EMPTY,
        sockets: false,
        pressure: plan.pressure,
        tw_cookies: false,
        keep_raw: false,
        diagnose: false,
    };
    let scope = Scope::resolve(&plan.netns, true)?;
    let samples = sample::collect_scope(&scope, &spec)?;
    let total = sample::total(&samples, &spec);
    let port_pressure = if plan.pressure {
        samples
            .iter()
            .map(|(_, s)| s.max_pressure_percent())
            .try_fold(0.0f64, |m, p| p.map(|p| m.max(p)))
    } else {
        None
    };
    let values = Values {
        counts: total.states,
        counted: plan.query.states,
        total: total.total,
        port_pressure,
    };
    let outcome = evaluate(&values, &plan.warning, &plan.critical);
    let mut out = std::io::stdout().lock();
    render::check::status(&mut out, &outcome)?;
    out.flush()?;
    Ok(outcome.status.into())
}
