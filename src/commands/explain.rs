//! `tw-inspect explain`: the state table, one state, or this host's sysctls.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{ColorChoice, ExplainArgs, Format};
use crate::exit::{Exit, usage};
use crate::host::sysctl::Sysctls;
use crate::output::Output;
use crate::render::{self, Style, explain};
use crate::state::TcpState;

/// What `explain` was asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    All,
    State(TcpState),
    Sysctls,
}

/// The names `explain` accepts, for the usage error.
pub fn valid_topics() -> String {
    let mut v: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    v.push("sysctls");
    v.join(", ")
}

/// Parses the topic; the error names the bad value and every valid one.
pub fn topic(arg: Option<&str>) -> Result<Topic> {
    match arg {
        None => Ok(Topic::All),
        Some(t) if t.eq_ignore_ascii_case("sysctls") || t.eq_ignore_ascii_case("sysctl") => {
            Ok(Topic::Sysctls)
        }
        Some(t) => match TcpState::parse(t) {
            Some(s) => Ok(Topic::State(s)),
            None => usage(format!("unknown topic '{t}'; valid: {}", valid_topics())),
        },
    }
}

pub fn run(args: &ExplainArgs, color: ColorChoice) -> Result<ExitCode> {
    let topic = topic(args.topic.as_deref())?;
    if !matches!(args.format, Format::Table | Format::Json) {
        let name = if args.format == Format::Csv {
            "csv"
        } else {
            "prometheus"
        };
        return usage(format!(
            "explain --format {name} is not available; valid: table, json"
        ));
    }
    if args.load.is_some() && topic != Topic::Sysctls {
        return usage(
            "--load goes with 'explain sysctls': a snapshot holds sysctls, not state texts",
        );
    }
    let mut out = Output::open(None)?;
    let style = Style::resolve(color, out.is_terminal());
    let width = explain::width();
    let json = args.format == Format::Json;
    match topic {
        Topic::All if json => render::json::write(&mut out, &explain::states_json())?,
        Topic::All => explain::states(&mut out, style, width)?,
        Topic::State(s) if json => render::json::write(
            &mut out,
            &explain::StateJson::new(crate::text::state(s), true),
        )?,
        Topic::State(s) => explain::state(&mut out, s, width)?,
        Topic::Sysctls => {
            let s = match &args.load {
                Some(file) => {
                    explain::sysctls_json(&crate::snapshot::load_sysctls(file)?, "snapshot")
                }
                None => explain::sysctls_json(&Sysctls::read_host(), "host"),
            };
            if json {
                render::json::write(&mut out, &s)?
            } else {
                explain::sysctls(&mut out, &s, width)?
            }
        }
    }
    out.finish()?;
    Ok(Exit::Ok.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert_eq!(topic(None).unwrap(), Topic::All);
        assert_eq!(
            topic(Some("TIME_WAIT")).unwrap(),
            Topic::State(TcpState::TimeWait)
        );
        assert_eq!(topic(Some("sysctls")).unwrap(), Topic::Sysctls);
        let e = topic(Some("bogus")).unwrap_err().to_string();
        assert!(
            e.contains("'bogus'") && e.contains("time-wait") && e.contains("sysctls"),
            "{e}"
        );
    }
}
