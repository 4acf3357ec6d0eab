//! The plan of `who` (and of `list --by process --trace D`).

use std::time::Duration;

use super::values;
use super::{Color, Destination};
use crate::cli::{self, WhoArgs};
use crate::exit::UsageError;
use crate::filter::Query;
use crate::state::{StateSet, TcpState};
use crate::trace::attribute::By;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Prometheus,
}

#[derive(Clone, Debug)]
pub struct WhoPlan {
    /// The TIME_WAIT sockets matched against the recorded closes.
    pub query: Query,
    /// How long to record; zero records until Ctrl-C.
    pub duration: Duration,
    /// A progress line on stderr this often.
    pub interval: Option<Duration>,
    /// Busiest rows shown; 0 shows all.
    pub top: u32,
    /// One row per command or per process.
    pub by: By,
    /// `--netns`: attribute only processes in this namespace, and match its TIME_WAIT.
    pub netns: Option<String>,
    pub format: Format,
    pub output: Destination,
    pub color: Color,
}

pub fn build(a: &WhoArgs, color: Color) -> Result<WhoPlan, UsageError> {
    let duration = values::duration("--duration", &a.duration)?;
    let interval = a
        .interval
        .as_deref()
        .map(|s| values::interval("--interval", s))
        .transpose()?;
    Ok(WhoPlan {
        query: Query {
            states: StateSet::from_states(&[TcpState::TimeWait]),
            ..Query::default()
        },
        duration,
        interval,
        top: a.top,
        by: match a.by {
            cli::WhoBy::Command => By::Command,
            cli::WhoBy::Pid => By::Pid,
        },
        netns: a.netns.clone(),
        format: match a.format {
            cli::WhoFormat::Table => Format::Table,
            cli::WhoFormat::Json => Format::Json,
            cli::WhoFormat::Prometheus => Format::Prometheus,
        },
        output: Destination::from_flag(&a.output),
        color,
    })
}
