//! The plan of `list` and `list --watch`.

use std::path::PathBuf;
use std::time::Duration;

use super::values::{self, same_file};
use super::{Color, Destination, Plan, WhoPlan, refuse};
use crate::aggregate::GroupBy;
use crate::cli::{GroupKeyArg, ListArgs, ListFormat, SortKeyArg};
use crate::exit::UsageError;
use crate::filter::Query;
use crate::host::netns::NetnsChoice;
use crate::sample::{CtWant, Spec};
use crate::sort::SortKey;
use crate::state::{StateSet, TcpState};

/// Groups shown when `--top` is not given.
pub const DEFAULT_TOP: u32 = 10;
/// At most this many `--prom-port` ports: each is a series in every scrape.
pub const MAX_PROM_PORTS: usize = 64;

/// The formats of `list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Ndjson,
    Csv,
    Prometheus,
}

/// Where the sockets come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The kernel, in these network namespaces.
    Live(NetnsChoice),
    /// A file written by `--save` or by `ss -D`.
    Load(PathBuf),
}

/// How the report looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub format: Format,
    /// Largest groups shown; 0 shows every group.
    pub top: u32,
    /// With `--sockets --top N`: at most N rows per report.
    pub rows: Option<u32>,
    /// The plain meaning of each state (table; CSV socket rows).
    pub explain: bool,
    /// The owning process of each socket row.
    pub processes: bool,
    /// `--prom-port`: incoming ports always given a series of their own.
    pub prom_ports: Vec<u16>,
    /// `--sort KEY`: socket rows in this order, held until the dump ends;
    /// `None`: written as the kernel sends them.
    pub sort: Option<SortKey>,
}

/// `list` once.
#[derive(Clone, Debug)]
pub struct ListPlan {
    pub source: Source,
    /// What to collect: the kernel query, the grouping, what the diagnoses need.
    pub spec: Spec,
    pub view: View,
    /// `--save FILE`: the raw capture, written beside the report.
    pub save: Option<PathBuf>,
    pub output: Destination,
    pub color: Color,
}

/// `list --watch`.
#[derive(Clone, Debug)]
pub struct WatchPlan {
    pub interval: Duration,
    /// Stop after this many samples.
    pub count: Option<u64>,
    pub mode: WatchMode,
}

#[derive(Clone, Debug)]
pub enum WatchMode {
    /// `--output FILE`: the whole `list` report, rewritten atomically every sample.
    Rewrite(ListPlan),
    /// Counts per state and the TIME_WAIT arrival rate, one sample after another on stdout.
    Stream {
        netns: NetnsChoice,
        spec: Spec,
        /// Table, JSON lines or CSV rows (Prometheus needs a file to rewrite).
        format: Format,
        color: Color,
    },
}

fn format(f: ListFormat) -> Format {
    match f {
        ListFormat::Table => Format::Table,
        ListFormat::Json => Format::Json,
        ListFormat::Ndjson => Format::Ndjson,
        ListFormat::Csv => Format::Csv,
        ListFormat::Prometheus => Format::Prometheus,
    }
}

fn sort_key(k: SortKeyArg) -> SortKey {
    match k {
        SortKeyArg::State => SortKey::State,
        SortKeyArg::Local => SortKey::Local,
        SortKeyArg::Peer => SortKey::Peer,
        SortKeyArg::LocalPort => SortKey::LocalPort,
        SortKeyArg::PeerPort => SortKey::PeerPort,
        SortKeyArg::Expires => SortKey::Expires,
    }
}

/// `--by` as a grouping; `process` is handled apart.
fn group_by(by: Option<GroupKeyArg>) -> GroupBy {
    let one = |f: fn(&mut GroupBy)| {
        let mut g = GroupBy::default();
        f(&mut g);
        g
    };
    match by {
        None | Some(GroupKeyArg::Role) => GroupBy::ROLES,
        Some(GroupKeyArg::PeerAndPort) | Some(GroupKeyArg::Process) => GroupBy::PEER_PORT_PAIR,
        Some(GroupKeyArg::State) => one(|g| g.state = true),
        Some(GroupKeyArg::Peer) => one(|g| g.peer = true),
        Some(GroupKeyArg::PeerPort) => one(|g| g.peer_port = true),
        Some(GroupKeyArg::Local) => one(|g| g.local = true),
        Some(GroupKeyArg::LocalPort) => one(|g| g.local_port = true),
        Some(GroupKeyArg::LocalAndPort) => one(|g| {
            g.local = true;
            g.local_port = true
        }),
    }
}

fn by_name(by: GroupKeyArg) -> &'static str {
    match by {
        GroupKeyArg::Role => "role",
        GroupKeyArg::State => "state",
        GroupKeyArg::Peer => "peer",
        GroupKeyArg::PeerPort => "peer-port",
        GroupKeyArg::PeerAndPort => "peer+port",
        GroupKeyArg::Local => "local",
        GroupKeyArg::LocalPort => "local-port",
        GroupKeyArg::LocalAndPort => "local+port",
        GroupKeyArg::Process => "process",
    }
}

pub fn build(a: &ListArgs, color: Color) -> Result<Plan, UsageError> {
    let query = values::query(&a.filter)?;
    if a.by == Some(GroupKeyArg::Process) {
        return by_process(a, query, color).map(Plan::Who);
    }
    if a.trace.is_some() {
        return Err(UsageError(
            "--trace records closes for --by process: add --by process, or drop --trace".into(),
        ));
    }
    let format = format(a.format);
    let by_flag = a.by.map(|b| format!("--by {}", by_name(b)));
    if a.conntrack {
        conntrack_combinations(a, format, by_flag.as_deref())?;
    }

    // --sockets lists rows; grouping flags would be silently lost on them.
    if a.sockets {
        if let Some(by) = &by_flag {
            return refuse(
                "--sockets",
                by,
                "--sockets lists one row per socket, --by counts groups: drop one (--top N limits the rows)",
            );
        }
        if format == Format::Prometheus {
            return refuse(
                "--sockets",
                "--format prometheus",
                "Prometheus output reports counts, not sockets",
            );
        }
    }
    if a.processes && !a.sockets {
        return Err(UsageError(
            "--processes shows the owner of each socket row: add --sockets".into(),
        ));
    }
    if a.sort.is_some() && !a.sockets {
        return Err(UsageError(
            "--sort orders the socket rows (groups are ordered by count): add --sockets".into(),
        ));
    }
    if a.explain {
        match format {
            Format::Json | Format::Ndjson => {
                return refuse(
                    "--explain",
                    if format == Format::Json {
                        "--format json"
                    } else {
                        "--format ndjson"
                    },
                    "JSON carries state names; `tw-inspect explain --format json` gives their meanings",
                );
            }
            Format::Prometheus => {
                return refuse("--explain", "--format prometheus", "metrics carry no prose");
            }
            Format::Csv if !a.sockets => {
                return refuse(
                    "--explain",
                    "--format csv",
                    "CSV adds a meaning column to --sockets rows only: add --sockets",
                );
            }
            _ => {}
        }
    }
    if format == Format::Prometheus
        && let Some(by) =
            a.by.filter(|b| !matches!(b, GroupKeyArg::Role | GroupKeyArg::PeerAndPort))
    {
        return refuse(
            &format!("--by {}", by_name(by)),
            "--format prometheus",
            "its TIME_WAIT series are by role (or by peer+port, the former series): drop --by",
        );
    }
    let prom_ports = prom_ports(&a.prom_port)?;
    if !prom_ports.is_empty() {
        if format != Format::Prometheus {
            return refuse(
                "--prom-port",
                &format!("--format {}", format_name(format)),
                "it chooses Prometheus series: add --format prometheus",
            );
        }
        if a.by == Some(GroupKeyArg::PeerAndPort) {
            return refuse(
                "--prom-port",
                "--by peer+port",
                "the peer+port series have no incoming series to keep ports in: drop --by",
            );
        }
    }
    if a.load.is_some() && a.processes {
        return refuse(
            "--processes",
            "--load",
            "owners are looked up in this host's /proc, which does not hold a snapshot's processes",
        );
    }
    if let (Some(save), Some(out)) = (&a.save, &a.output)
        && same_file(save, out)
    {
        return refuse(
            "--save",
            "--output",
            &format!(
                "'{}' and '{}' are the same file: give two different files",
                save.display(),
                out.display()
            ),
        );
    }
    if let (Some(load), Some(out)) = (&a.load, &a.output)
        && same_file(load, out)
    {
        return refuse(
            "--load",
            "--output",
            &format!(
                "'{}' and '{}' are the same file: the report would replace the snapshot it reads",
                load.display(),
                out.display()
            ),
        );
    }

    let mut by = group_by(a.by);
    // Groups cover TIME_WAIT unless states were chosen (or grouped on).
    let mut group_states = if a.filter.state.is_some() || by.state {
        query.states
    } else {
        StateSet::from_states(&[TcpState::TimeWait])
    };
    if format == Format::Prometheus {
        // Series per service port (whatever address it was reached on), and
        // per destination; or the former series per peer and port.
        by = match a.by {
            Some(GroupKeyArg::PeerAndPort) => GroupBy::PEER_PORT_PAIR,
            _ => GroupBy::ROLES_BY_PORT,
        };
        group_states = StateSet::from_states(&[TcpState::TimeWait]);
    }
    let view = View {
        format,
        top: a.top.unwrap_or(DEFAULT_TOP),
        rows: a.top.filter(|n| a.sockets && *n > 0),
        explain: a.explain,
        processes: a.processes,
        prom_ports,
        sort: a.sort.map(sort_key),
    };
    // CLOSE_WAIT ages need a second dump, made only where CLOSE_WAIT is
    // counted and reported (not for --sockets rows).
    let close_wait_ages = query.states.contains(TcpState::CloseWait) && !a.sockets;
    let netns = values::netns(&a.filter);
    if a.count.is_some() && a.watch.is_none() {
        return Err(UsageError(
            "--count stops --watch after N samples: add --watch, or drop --count".into(),
        ));
    }

    if let Some(every) = &a.watch {
        let interval = values::interval("--watch", every)?;
        if a.count == Some(0) {
            return Err(UsageError(
                "--count: 0 samples asked for; give 1 or more".into(),
            ));
        }
        let mode = match &a.output {
            Some(path) => {
                // The whole report, every sample: what `list -o FILE` would write then.
                let diagnose = format != Format::Prometheus;
                WatchMode::Rewrite(ListPlan {
                    source: Source::Live(netns),
                    spec: Spec {
                        query,
                        by,
                        group_states,
                        sockets: a.sockets,
                        pressure: true,
                        tw_cookies: false,
                        keep_raw: false,
                        diagnose,
                        roles: true,
                        counters: true,
                        close_wait_ages,
                        // Each sample measures growth since the one before.
                        overflow_window: false,
                        conntrack: conntrack_want(a, format),
                    },
                    view,
                    save: None,
                    output: Destination::File(path.clone()),
                    color,
                })
            }
            None => {
                let why = "--watch on stdout prints counts per state each sample; add --output FILE to rewrite the whole report instead";
                for (given, flag) in [
                    (a.sockets, "--sockets".to_string()),
                    (a.sort.is_some(), "--sort".to_string()),
                    (a.by.is_some(), by_flag.clone().unwrap_or_default()),
                    (a.top.is_some(), "--top".to_string()),
                    (a.explain, "--explain".to_string()),
                ] {
                    if given {
                        return refuse("--watch", &flag, why);
                    }
                }
                if format == Format::Prometheus {
                    return refuse(
                        "--watch",
                        "--format prometheus",
                        "Prometheus output is a file rewritten each sample: add --output FILE",
                    );
                }
                WatchMode::Stream {
                    netns,
                    spec: Spec {
                        tw_cookies: true,
                        // TcpExtTW: the kernel's own count of TIME_WAIT entries.
                        counters: true,
                        ..Spec::counts(query)
                    },
                    format,
                    color,
                }
            }
        };
        return Ok(Plan::Watch(WatchPlan {
            interval,
            count: a.count,
            mode,
        }));
    }

    let diagnose = format != Format::Prometheus;
    let source = match &a.load {
        Some(p) => Source::Load(p.clone()),
        None => Source::Live(netns),
    };
    Ok(Plan::List(ListPlan {
        source,
        spec: Spec {
            query,
            by,
            group_states,
            sockets: a.sockets,
            pressure: diagnose || format == Format::Prometheus,
            tw_cookies: false,
            keep_raw: a.save.is_some(),
            diagnose,
            roles: true,
            counters: true,
            close_wait_ages,
            overflow_window: true,
            conntrack: match &a.load {
                Some(_) => CtWant::Off,
                None => conntrack_want(a, format),
            },
        },
        view,
        save: a.save.clone(),
        output: Destination::from_flag(&a.output),
        color,
    }))
}

/// How much of the conntrack table `list` reads: all of it with `--conntrack`;
/// for the default table view, its size and counters, and the entries when
/// those are notable; otherwise nothing (machine formats keep their shape).
fn conntrack_want(a: &ListArgs, format: Format) -> CtWant {
    if a.conntrack {
        CtWant::Entries
    } else if format == Format::Table && !a.sockets {
        CtWant::Auto
    } else {
        CtWant::Off
    }
}

/// `--conntrack` with every other flag: honoured, or refused here.
fn conntrack_combinations(
    a: &ListArgs,
    format: Format,
    by_flag: Option<&str>,
) -> Result<(), UsageError> {
    let f = &a.filter;
    let filters = [
        (!f.port.is_empty(), "--port"),
        (!f.local_port.is_empty(), "--local-port"),
        (!f.peer_port.is_empty(), "--peer-port"),
        (!f.peer.is_empty(), "--peer"),
        (!f.local.is_empty(), "--local"),
    ];
    for (given, flag) in filters {
        if given {
            return refuse(
                "--conntrack",
                flag,
                "conntrack counts cover the whole table; port and address filters select sockets only",
            );
        }
    }
    if a.sockets {
        return refuse(
            "--conntrack",
            "--sockets",
            "--sockets lists socket rows; the conntrack table is a summary: drop one",
        );
    }
    if a.save.is_some() {
        return refuse(
            "--conntrack",
            "--save",
            "a snapshot holds sockets, not the conntrack table",
        );
    }
    if a.load.is_some() {
        return refuse(
            "--conntrack",
            "--load",
            "a snapshot holds no conntrack table to read",
        );
    }
    if a.watch.is_some() && a.output.is_none() {
        return refuse(
            "--conntrack",
            "--watch",
            "--watch on stdout prints socket counts per state; add --output FILE to rewrite the whole report, conntrack included",
        );
    }
    if format == Format::Csv
        && let Some(by) = by_flag
    {
        return refuse(
            "--conntrack",
            by,
            "with --format csv the rows are the conntrack table's, where --by has no groups to make",
        );
    }
    Ok(())
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Table => "table",
        Format::Json => "json",
        Format::Ndjson => "ndjson",
        Format::Csv => "csv",
        Format::Prometheus => "prometheus",
    }
}

/// `--prom-port 443,80` (repeatable): ports 1-65535, each once, at most
/// [`MAX_PROM_PORTS`].
fn prom_ports(args: &[String]) -> Result<Vec<u16>, UsageError> {
    let mut out: Vec<u16> = Vec::new();
    for a in args {
        for p in a.split(',') {
            let port = p
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|n| *n > 0 && p.trim().bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    UsageError(format!(
                        "--prom-port: '{p}' is not a port; give ports 1-65535, comma-separated (--prom-port 443,80)"
                    ))
                })?;
            if !out.contains(&port) {
                out.push(port);
            }
        }
    }
    if out.len() > MAX_PROM_PORTS {
        return Err(UsageError(format!(
            "--prom-port: {} ports given; at most {MAX_PROM_PORTS} (each is a series in every scrape)",
            out.len()
        )));
    }
    Ok(out)
}

/// `list --by process --trace D`: the `who` recording, restricted to the
/// TIME_WAIT sockets that list's filters select.
fn by_process(a: &ListArgs, mut query: Query, color: Color) -> Result<WhoPlan, UsageError> {
    let why = "--by process traces closes on this host, then matches the TIME_WAIT sockets of this namespace";
    for (given, flag) in [
        (a.filter.netns.is_some(), "--netns"),
        (a.filter.all_netns, "--all-netns"),
        (a.save.is_some(), "--save"),
        (a.load.is_some(), "--load"),
        (a.watch.is_some(), "--watch"),
        (a.sockets, "--sockets"),
        (a.sort.is_some(), "--sort"),
        (a.processes, "--processes"),
        (a.explain, "--explain"),
        (a.conntrack, "--conntrack"),
    ] {
        if given {
            return refuse("--by process", flag, why);
        }
    }
    let format = match a.format {
        ListFormat::Table => super::who::Format::Table,
        ListFormat::Json => super::who::Format::Json,
        ListFormat::Prometheus => super::who::Format::Prometheus,
        ListFormat::Csv | ListFormat::Ndjson => {
            return refuse(
                "--by process",
                if a.format == ListFormat::Csv {
                    "--format csv"
                } else {
                    "--format ndjson"
                },
                "process attribution is written as table, json or prometheus",
            );
        }
    };
    let Some(d) = &a.trace else {
        return Err(UsageError(
            "--by process needs --trace DURATION (root): TIME_WAIT sockets have no owner, so closes must be traced first, e.g. --trace 30s".into(),
        ));
    };
    let duration = values::duration("--trace", d)?;
    if duration.is_zero() {
        return Err(UsageError(format!("--trace '{d}' must be greater than 0")));
    }
    if a.filter.state.is_some() && !query.states.contains(TcpState::TimeWait) {
        return Err(UsageError(
            "--by process attributes TIME_WAIT sockets: --state must include time-wait".into(),
        ));
    }
    query.states = StateSet::from_states(&[TcpState::TimeWait]);
    Ok(WhoPlan {
        query,
        duration,
        interval: None,
        top: a.top.unwrap_or(DEFAULT_TOP),
        by: crate::trace::attribute::By::Pid,
        netns: None,
        format,
        output: Destination::from_flag(&a.output),
        color,
    })
}
