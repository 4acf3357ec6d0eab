//! The plan of `explain`.

use std::path::PathBuf;

use super::Color;
use crate::cli::{ExplainArgs, TextFormat};
use crate::exit::UsageError;
use crate::state::{TcpState, suggest};

/// What `explain` was asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    All,
    State(TcpState),
    Sysctls,
    /// Conntrack's TIME_WAIT and this namespace's conntrack table.
    Conntrack,
}

#[derive(Clone, Debug)]
pub struct ExplainPlan {
    pub topic: Topic,
    /// With `sysctls`: the values saved in this snapshot instead of this host's.
    pub load: Option<PathBuf>,
    /// With `sysctls`: the values of this network namespace.
    pub netns: Option<String>,
    pub json: bool,
    pub color: Color,
}

/// The names `explain` accepts, for the usage error.
pub fn valid_topics() -> String {
    let mut v: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    v.push("sysctls");
    v.push("conntrack");
    v.join(", ")
}

/// Parses the topic; the error names the bad value and every valid one.
pub fn topic(arg: Option<&str>) -> Result<Topic, UsageError> {
    match arg {
        None => Ok(Topic::All),
        Some(t) if t.eq_ignore_ascii_case("sysctls") || t.eq_ignore_ascii_case("sysctl") => {
            Ok(Topic::Sysctls)
        }
        Some(t) if t.eq_ignore_ascii_case("conntrack") => Ok(Topic::Conntrack),
        Some(t) => TcpState::parse(t).map(Topic::State).ok_or_else(|| {
            let names = TcpState::ALL.iter().map(|s| s.name());
            let hint = suggest(t, names.chain(["sysctls", "conntrack"]))
                .map(|s| format!("did you mean {s}? "))
                .unwrap_or_default();
            UsageError(format!(
                "unknown topic '{t}'; {hint}valid: {}",
                valid_topics()
            ))
        }),
    }
}

pub fn build(a: &ExplainArgs, color: Color) -> Result<ExplainPlan, UsageError> {
    let topic = topic(a.topic.as_deref())?;
    if a.load.is_some() && topic != Topic::Sysctls {
        return Err(UsageError(
            "--load goes with 'explain sysctls': a snapshot holds sysctls, not state texts".into(),
        ));
    }
    if a.netns.is_some() && topic != Topic::Sysctls {
        return Err(UsageError(
            "--netns goes with 'explain sysctls': settings are per namespace, state texts are not"
                .into(),
        ));
    }
    if a.netns.is_some() && a.load.is_some() {
        return super::refuse(
            "--netns",
            "--load",
            "a snapshot holds the settings of the namespace it was taken in",
        );
    }
    Ok(ExplainPlan {
        topic,
        load: a.load.clone(),
        netns: a.netns.clone(),
        json: a.format == TextFormat::Json,
        color,
    })
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
        assert_eq!(topic(Some("conntrack")).unwrap(), Topic::Conntrack);
        let e = topic(Some("bogus")).unwrap_err().to_string();
        assert!(
            e.contains("'bogus'") && e.contains("time-wait") && e.contains("sysctls"),
            "{e}"
        );
    }
}
