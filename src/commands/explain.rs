//! `tw-inspect explain`: the state table, one state, or this host's sysctls.

use std::process::ExitCode;

use anyhow::Result;

use crate::exit::Exit;
use crate::host::identity::Resolver;
use crate::host::netns::{NetnsChoice, Scope};
use crate::host::sysctl::Sysctls;
use crate::output::Output;
use crate::plan::ExplainPlan;
use crate::plan::explain::Topic;
use crate::render::{self, Style, explain};

pub fn run(plan: &ExplainPlan) -> Result<ExitCode> {
    let mut out = Output::open(None)?;
    let style = Style::new(plan.color.enabled(out.is_terminal()));
    let width = explain::width();
    match plan.topic {
        Topic::All if plan.json => render::json::write(&mut out, &explain::states_json())?,
        Topic::All => explain::states(&mut out, style, width)?,
        Topic::State(s) if plan.json => render::json::write(
            &mut out,
            &explain::StateJson::new(crate::text::state(s), true),
        )?,
        Topic::State(s) => explain::state(&mut out, s, width)?,
        Topic::Conntrack => {
            let c = explain::conntrack_json(&crate::host::conntrack::CtTable::read());
            if plan.json {
                render::json::write(&mut out, &c)?
            } else {
                explain::conntrack(&mut out, &c, width)?
            }
        }
        Topic::Sysctls => {
            let s = match (&plan.load, &plan.netns) {
                (Some(file), _) => {
                    explain::sysctls_json(&crate::snapshot::load_sysctls(file)?, "snapshot")
                }
                (None, Some(ns)) => {
                    let scope =
                        Scope::resolve(&NetnsChoice::One(ns.clone()), &mut Resolver::new())?;
                    let mut read = scope.run(|| Ok(Sysctls::read_host()))?;
                    let (label, s) = read.results.pop().expect("one namespace");
                    let mut j = explain::sysctls_json(&s, "netns");
                    j.netns = label.map(|id| id.name);
                    j
                }
                (None, None) => explain::sysctls_json(&Sysctls::read_host(), "host"),
            };
            if plan.json {
                render::json::write(&mut out, &s)?
            } else {
                explain::sysctls(&mut out, &s, width)?
            }
        }
    }
    out.finish()?;
    Ok(Exit::Ok.into())
}
