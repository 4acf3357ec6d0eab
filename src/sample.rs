//! One collection as `list`, `check` and `--watch` use it: counts, optional
//! port pressure, optional sockets and TIME_WAIT cookies, per namespace.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::aggregate::conntrack::CtAggregate;
use crate::aggregate::{
    Aggregate, CloseWaitSock, Fused, GroupBy, Pressure, ReusePolicy, Roles, Teardown,
};
use crate::diag::{self, Options};
use crate::filter::Query;
use crate::host::conntrack::CtTable;
use crate::host::counters::{self, Counters, Readings};
use crate::host::identity::NsIdentity;
use crate::host::netns::{Ran, Scope, Skipped};
use crate::host::sysctl::Sysctls;
use crate::snapshot::HostFacts;
use crate::socket::{Sink, SocketRecord};
use crate::state::{StateSet, TcpState};

/// What to collect.
#[derive(Clone, Debug)]
pub struct Spec {
    pub query: Query,
    pub by: GroupBy,
    pub group_states: StateSet,
    /// Socket rows are wanted (`--sockets`): they are handed to a row sink
    /// as they arrive (see [`stream`]), never kept here.
    pub sockets: bool,
    /// Count outgoing sockets per destination and read the ephemeral range.
    pub pressure: bool,
    /// Keep the cookies of TIME_WAIT sockets (`--watch` arrival rate).
    pub tw_cookies: bool,
    /// Keep the raw datagrams and this namespace's facts for `--save`.
    pub keep_raw: bool,
    /// Gather what the diagnoses need: sysctls and listening ports.
    pub diagnose: bool,
    /// Tell incoming from outgoing sockets (reads the listeners and the
    /// ephemeral range first).
    pub roles: bool,
    /// Read the kernel's TCP counters before and after the dumps.
    pub counters: bool,
    /// When CLOSE_WAIT sockets were counted, dump them again with
    /// `INET_DIAG_INFO` to learn how long each has waited.
    pub close_wait_ages: bool,
    /// When TIME_WAIT nearly fills `tcp_max_tw_buckets`, take the second
    /// counter reading [`OVERFLOW_WINDOW`] after the first (a single `list`;
    /// `--watch` compares with the previous sample instead).
    pub overflow_window: bool,
    /// How much of the conntrack table to read.
    pub conntrack: CtWant,
}

impl Spec {
    /// Only the counts per state: nothing else read, nothing kept.
    pub fn counts(query: Query) -> Spec {
        Spec {
            query,
            by: GroupBy::default(),
            group_states: StateSet::EMPTY,
            sockets: false,
            pressure: false,
            tw_cookies: false,
            keep_raw: false,
            diagnose: false,
            roles: false,
            counters: false,
            close_wait_ages: false,
            overflow_window: false,
            conntrack: CtWant::Off,
        }
    }
}

/// How much of the conntrack table a collection reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CtWant {
    #[default]
    Off,
    /// Size, limits and counters from /proc (no privilege needed).
    Table,
    /// The table, and the entries too when it is notable (the default `list` view).
    Auto,
    /// The table and every entry (`list --conntrack`; the dump needs CAP_NET_ADMIN).
    Entries,
}

/// Why the conntrack entries were not counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CtNotRead {
    /// The table is empty (or nf_conntrack is absent): nothing to count.
    NotInUse,
    /// The default view found nothing notable in the table's size and counters.
    NotNotable,
    /// The dump failed; the message names the capability when that is the cause.
    Failed(String),
}

/// The conntrack part of one sample.
#[derive(Clone, Debug)]
pub struct CtSample {
    pub table: CtTable,
    /// The entries counted, or why not.
    pub entries: Result<CtAggregate, CtNotRead>,
    pub elapsed: Duration,
}

/// The result of one collection in one namespace.
#[derive(Debug)]
pub struct Sample {
    pub agg: Aggregate,
    pub pressure: Pressure,
    /// Usable ephemeral ports in that namespace (when `pressure` was asked for).
    pub ephemeral_ports: Option<u64>,
    pub tw_cookies: HashSet<u64>,
    pub elapsed: Duration,
    /// With `keep_raw`: the snapshot of this collection, facts read in its namespace.
    pub capture: Option<crate::snapshot::Captured>,
    /// TIME_WAIT per local port, listeners, CLOSE_WAIT inodes (for diagnoses).
    pub teardown: Teardown,
    /// Sysctls and listeners of the namespace or snapshot, when `diagnose` asked.
    pub facts: HostFacts,
    /// Where the sockets came from: `netlink`, `proc` or `snapshot`.
    pub source: &'static str,
    /// The conntrack table, when the spec asked for it.
    pub conntrack: Option<CtSample>,
    /// The kernel's counters: two readings around the dumps (live), or the
    /// one a snapshot holds (then `first` and `last` are the same).
    pub counters: Option<Readings>,
}

/// Counts and pressure: fused into one map where the grouping allows it.
enum Counts {
    Split(Aggregate, Pressure),
    Fused(Fused),
}

impl Counts {
    fn new(agg: Aggregate, pressure: Pressure) -> Counts {
        if Fused::applies(&agg, &pressure) {
            Counts::Fused(Fused::new(agg, pressure))
        } else {
            Counts::Split(agg, pressure)
        }
    }

    fn finish(self) -> (Aggregate, Pressure) {
        match self {
            Counts::Split(a, p) => (a, p),
            Counts::Fused(f) => f.finish(),
        }
    }
}

struct SampleSink<'r> {
    counts: Counts,
    /// Where each socket goes on, as it comes (socket rows).
    rows: Option<&'r mut (dyn Sink + Send)>,
    tw_cookies: Option<HashSet<u64>>,
    teardown: Option<Teardown>,
}

impl Sink for SampleSink<'_> {
    fn push(&mut self, r: &SocketRecord) {
        match &mut self.counts {
            Counts::Fused(f) => f.push(r),
            Counts::Split(a, p) => {
                a.push(r);
                p.push(r);
            }
        }
        if let Some(t) = &mut self.teardown {
            t.push(r);
        }
        if let Some(rows) = &mut self.rows {
            rows.push(r);
        }
        if let Some(c) = &mut self.tw_cookies
            && r.state == TcpState::TimeWait
        {
            c.insert(r.cookie);
        }
    }
    fn absorb(&mut self, o: Self) {
        match (&mut self.counts, o.counts) {
            (Counts::Fused(a), Counts::Fused(b)) => a.absorb(b),
            (Counts::Split(a, p), Counts::Split(b, q)) => {
                a.absorb(b);
                p.absorb(q);
            }
            // Sinks of one collection are made alike.
            (a, b) => {
                let (mut agg, mut pressure) = std::mem::replace(
                    a,
                    Counts::Split(
                        Aggregate::new(GroupBy::default(), StateSet::EMPTY),
                        Pressure::new((1, 0)),
                    ),
                )
                .finish();
                let (b_agg, b_pressure) = b.finish();
                agg.absorb(b_agg);
                pressure.absorb(b_pressure);
                *a = Counts::Split(agg, pressure);
            }
        }
        if let (Some(a), Some(b)) = (&mut self.teardown, o.teardown) {
            a.absorb(b);
        }
        if let (Some(a), Some(b)) = (&mut self.tw_cookies, o.tw_cookies) {
            a.extend(b);
        }
        // Rows are never merged: a collection with rows uses one sink.
    }
    fn stopped(&self) -> bool {
        self.rows.as_ref().is_some_and(|r| r.stopped())
    }
}

/// A second reading of the counters comes this long after the first when the
/// tw-buckets diagnosis needs to know whether the table overflows now.
pub const OVERFLOW_WINDOW: Duration = Duration::from_secs(1);

/// Collects in the calling thread's network namespace. Sysctls are read here
/// too: /proc/sys/net shows the namespace of the thread that reads it.
pub fn collect(spec: &Spec) -> Result<Sample> {
    collect_with(spec, None)
}

/// As [`collect`], handing every socket to `rows` as it arrives, in the
/// kernel's order (`--sockets`): one sink on this thread, memory that does
/// not grow with the sockets (with `keep_raw`, the datagrams are kept).
pub fn stream(spec: &Spec, rows: &mut (dyn Sink + Send)) -> Result<Sample> {
    collect_with(spec, Some(rows))
}

fn collect_with(spec: &Spec, rows: Option<&mut (dyn Sink + Send)>) -> Result<Sample> {
    let first = spec
        .counters
        .then(|| counters::read().map(|c| (c, Instant::now())))
        .flatten();
    // Read once, for the pressure sink, the roles and the diagnoses.
    let sysctls = (spec.pressure || spec.diagnose || spec.roles).then(Sysctls::read_host);
    // An empty range (1, 0) makes the pressure sink ignore every socket.
    let range = sysctls
        .as_ref()
        .filter(|_| spec.pressure)
        .and_then(|s| s.ip_local_port_range)
        .unwrap_or((1, 0));
    let opts = Options {
        keep_raw: spec.keep_raw,
        ..Options::default()
    };
    // Listeners first (a LISTEN-only dump skips the connection table, so it is
    // cheap): the diagnoses then count TIME_WAIT on listening ports only, and
    // roles tell the server side from the client side.
    let listening = match spec.diagnose || spec.roles {
        true => crate::diag::listen::listeners().ok(),
        false => None,
    };
    let roles = Arc::new(match spec.roles {
        true => Roles::new(
            listening.as_deref(),
            sysctls.as_ref().and_then(|s| s.ip_local_port_range),
        ),
        false => Roles::default(),
    });
    let ports: Vec<u16> = listening.iter().flatten().map(|l| l.port).collect();
    // Falls back to /proc/net/tcp when sock_diag is refused (see diag::procfs).
    let reuse = policy(sysctls.as_ref());
    let (sink_out, elapsed, raw, source) = match rows {
        None => {
            let (c, source) = diag::collect_any(&spec.query, opts, || {
                sink(spec, range, reuse, &ports, &roles, None)
            })
            .context("reading sockets from the kernel")?;
            (c.sink, c.elapsed, c.raw, source)
        }
        Some(rows) => {
            let mut s = sink(spec, range, reuse, &ports, &roles, Some(rows));
            let (st, source) = diag::procfs::stream_any(&spec.query, opts, &mut s)
                .context("reading sockets from the kernel")?;
            (s, st.elapsed, st.raw, source)
        }
    };
    if let Some(w) = source.warning() {
        crate::output::warn(&w);
    }
    if spec.keep_raw && raw.is_empty() {
        return Err(crate::exit::UsageError(format!(
            "--save needs sock_diag's raw messages, but the sockets came from {}",
            source.name()
        ))
        .into());
    }
    let (agg, pressure) = sink_out.counts.finish();
    let mut teardown = sink_out.teardown.unwrap_or_default();
    // Ages only where there is CLOSE_WAIT to age, and only from sock_diag.
    let close_wait_aged = spec.close_wait_ages
        && source == diag::Source::Netlink
        && agg.count(TcpState::CloseWait) > 0
        && close_wait_ages(&spec.query, &mut teardown).is_ok();
    let counters = first.map(|(first, first_at)| {
        let full = spec.diagnose
            && spec.overflow_window
            && sysctls
                .as_ref()
                .is_some_and(|s| crate::diagnose::tw_buckets_near_full(&agg, s));
        if full {
            // The count alone does not say whether closes are being refused
            // TIME_WAIT now: give the overflow counter a second to move.
            std::thread::sleep(
                (first_at + OVERFLOW_WINDOW).saturating_duration_since(Instant::now()),
            );
        }
        let last = counters::read().unwrap_or_else(|| first.clone());
        Readings {
            first,
            first_at,
            last,
            last_at: Instant::now(),
        }
    });
    let capture = if spec.keep_raw {
        // The listeners read for the diagnoses serve the snapshot too.
        let mut captured = crate::snapshot::capture(&spec.query, raw, elapsed, listening.clone())?;
        captured.meta.counters = counters.as_ref().map(|r| r.last.clone());
        if close_wait_aged {
            let mut ages: Vec<(u32, u32)> = teardown
                .close_wait
                .iter()
                .filter_map(|s| Some((s.inode, s.age_ms?)))
                .collect();
            ages.sort_by_key(|a| std::cmp::Reverse(a.1));
            ages.truncate(crate::snapshot::format::MAX_CLOSE_WAIT_AGES);
            captured.meta.close_wait_ages = Some(ages);
        }
        Some(captured)
    } else {
        None
    };
    let conntrack = collect_conntrack(spec, &agg);
    Ok(Sample {
        agg,
        pressure,
        ephemeral_ports: sysctls
            .as_ref()
            .filter(|_| spec.pressure)
            .and_then(|s| s.ephemeral_ports()),
        tw_cookies: sink_out.tw_cookies.unwrap_or_default(),
        elapsed,
        capture,
        teardown,
        facts: match spec.diagnose {
            true => HostFacts { sysctls, listening },
            false => HostFacts::default(),
        },
        source: source.name(),
        conntrack,
        counters,
    })
}

/// The message for a dump refused for want of privilege.
pub const NEEDS_NET_ADMIN: &str = "reading conntrack entries needs CAP_NET_ADMIN (run as root): the kernel refused the ctnetlink dump (EPERM); the table's size and counters are shown";

/// Reads the conntrack table of the calling thread's namespace as `spec`
/// asks, after the sockets (the default view compares the two).
fn collect_conntrack(spec: &Spec, sockets: &Aggregate) -> Option<CtSample> {
    if spec.conntrack == CtWant::Off {
        return None;
    }
    let start = std::time::Instant::now();
    let table = CtTable::read();
    let entries = match spec.conntrack {
        CtWant::Off | CtWant::Table => Err(CtNotRead::NotNotable),
        _ if !table.in_use() => Err(CtNotRead::NotInUse),
        CtWant::Auto if !crate::diagnose::conntrack_notable(&table, sockets.total) => {
            Err(CtNotRead::NotNotable)
        }
        CtWant::Auto | CtWant::Entries => {
            let families = spec.query.families();
            let mut agg = CtAggregate::default();
            match diag::conntrack::dump(|e| {
                if families.contains(&e.family) {
                    agg.push(e)
                }
            }) {
                Ok(_) => Ok(agg),
                Err(e) if e.needs_net_admin() => Err(CtNotRead::Failed(NEEDS_NET_ADMIN.into())),
                Err(e) => Err(CtNotRead::Failed(format!("reading conntrack entries: {e}"))),
            }
        }
    };
    Some(CtSample {
        table,
        entries,
        elapsed: start.elapsed(),
    })
}

/// Gives the CLOSE_WAIT sockets of `t` their ages, from the kernel's
/// `INET_DIAG_INFO`. Up to [`CLOSE_WAIT_IDS`](crate::aggregate::CLOSE_WAIT_IDS) sockets are asked for one by one
/// by exact id (a hash lookup each, well under a millisecond in all); more
/// are dumped again, CLOSE_WAIT only: a second walk of the table. Either is
/// made only when the main dump found CLOSE_WAIT, so a summary costs nothing
/// more where there is none.
fn close_wait_ages(query: &Query, t: &mut Teardown) -> Result<()> {
    let opts = Options {
        info: true,
        ..Options::default()
    };
    if t.close_wait.len() == t.close_wait_ids.len() {
        let mut aged: HashMap<u32, u32> = HashMap::new();
        diag::lookup_each(&t.close_wait_ids, opts, |r| {
            if let Some(times) = r.tcp_times {
                aged.insert(r.inode, times.last_ack_recv_ms);
            }
        })?;
        for s in &mut t.close_wait {
            s.age_ms = aged.get(&s.inode).copied();
        }
        return Ok(());
    }
    let mut q = query.clone();
    q.states = StateSet::from_states(&[TcpState::CloseWait]);
    let c = diag::collect(&q, opts, CloseWaitList::default)?;
    t.close_wait = c.sink.0;
    Ok(())
}

/// The CLOSE_WAIT sockets of a dump, kept small.
#[derive(Default)]
struct CloseWaitList(Vec<CloseWaitSock>);

impl Sink for CloseWaitList {
    fn push(&mut self, r: &SocketRecord) {
        if r.state == TcpState::CloseWait {
            self.0.push(CloseWaitSock::of(r));
        }
    }
    fn absorb(&mut self, mut other: Self) {
        self.0.append(&mut other.0);
    }
}

/// How connect() reuses TIME_WAIT ports under these settings.
fn policy(s: Option<&Sysctls>) -> ReusePolicy {
    s.map_or(ReusePolicy::default(), |s| {
        ReusePolicy::new(s.tcp_tw_reuse, s.tcp_timestamps, s.tcp_tw_reuse_delay)
    })
}

fn sink<'r>(
    spec: &Spec,
    range: (u16, u16),
    policy: ReusePolicy,
    listening: &[u16],
    roles: &Arc<Roles>,
    rows: Option<&'r mut (dyn Sink + Send)>,
) -> SampleSink<'r> {
    SampleSink {
        counts: Counts::new(
            Aggregate::new(spec.by, spec.group_states).with_roles(Arc::clone(roles)),
            Pressure::with_policy(range, policy),
        ),
        rows,
        tw_cookies: spec.tw_cookies.then(HashSet::new),
        teardown: (spec.diagnose || spec.close_wait_ages)
            .then(|| Teardown::watching(listening.iter().copied())),
    }
}

/// The same collection replayed from a snapshot; port pressure uses the
/// snapshot's own ephemeral range, never this host's. With `rows`, each
/// socket goes there too, in the file's order.
pub fn from_snapshot(
    snap: &crate::snapshot::Snapshot,
    spec: &Spec,
    rows: Option<&mut (dyn Sink + Send)>,
) -> Result<Sample> {
    let sysctls = snap.host_facts().sysctls;
    let range = sysctls
        .as_ref()
        .and_then(|s| s.ip_local_port_range)
        .filter(|_| spec.pressure)
        .unwrap_or((1, 0));
    let facts = snap.host_facts();
    let ports: Vec<u16> = facts.listening.iter().flatten().map(|l| l.port).collect();
    let reuse = policy(sysctls.as_ref());
    let roles = Arc::new(match spec.roles {
        // An `ss -D` dump has no metadata: its own listening sockets, if it holds any.
        true => {
            let found = match &facts.listening {
                Some(_) => None,
                None => Some(snap.listeners()?),
            };
            Roles::new(
                facts.listening.as_deref().or(found.as_deref()),
                sysctls.as_ref().and_then(|s| s.ip_local_port_range),
            )
        }
        false => Roles::default(),
    });
    let mut one = Some(sink(spec, range, reuse, &ports, &roles, rows));
    let c = snap.collect(&spec.query, || {
        one.take().expect("a snapshot is replayed into one sink")
    })?;
    let (agg, pressure) = c.sink.counts.finish();
    let mut teardown = c.sink.teardown.unwrap_or_default();
    snap.apply_close_wait_ages(&mut teardown);
    let counters = snap.counters().filter(|_| spec.counters).map(|c| {
        let at = Instant::now();
        Readings {
            first: c.clone(),
            first_at: at,
            last: c,
            last_at: at,
        }
    });
    Ok(Sample {
        agg,
        pressure,
        ephemeral_ports: sysctls
            .filter(|_| spec.pressure)
            .and_then(|s| s.ephemeral_ports()),
        tw_cookies: c.sink.tw_cookies.unwrap_or_default(),
        elapsed: c.elapsed,
        capture: None,
        teardown,
        facts: match spec.diagnose {
            true => facts,
            false => HostFacts::default(),
        },
        source: "snapshot",
        // A snapshot holds no conntrack table (the plan refuses --conntrack with --load).
        conntrack: None,
        counters,
    })
}

/// Samples labelled by namespace (`None` = the current namespace), and the
/// namespaces skipped.
pub type Samples = Ran<Sample>;

/// Where the sockets of one collection come from.
pub enum Origin<'a> {
    /// The kernel, in one or more network namespaces.
    Live(&'a Scope),
    /// A file written by `--save` or `ss -D`.
    Snapshot(&'a crate::snapshot::Snapshot),
}

impl Origin<'_> {
    pub fn collect(&self, spec: &Spec) -> Result<Samples> {
        match self {
            Origin::Live(scope) => collect_scope(scope, spec),
            Origin::Snapshot(snap) => Ok(Ran {
                results: vec![(None, from_snapshot(snap, spec, None)?)],
                skipped: Vec::new(),
            }),
        }
    }

    /// True when the output carries a namespace label per sample.
    pub fn labelled(&self) -> bool {
        matches!(self, Origin::Live(s) if s.labelled())
    }
}

/// One sample per namespace in `scope`, with its identity (`None` = the
/// current namespace), and the namespaces skipped.
pub fn collect_scope(scope: &Scope, spec: &Spec) -> Result<Samples> {
    scope.run(|| collect(spec))
}

/// One warning line per namespace skipped.
pub fn warn_skipped<'a>(skipped: impl IntoIterator<Item = &'a Skipped>) {
    for s in skipped {
        crate::output::warn(&s.warning());
    }
}

impl Sample {
    /// Highest share of usable ephemeral ports any destination holds (TIME_WAIT
    /// ports that connect() takes over left out), in percent.
    pub fn max_pressure_percent(&self) -> Option<f64> {
        let ports = self.ephemeral_ports.filter(|p| *p > 0)? as f64;
        Some(
            self.pressure
                .per_destination
                .values()
                .map(|u| u.held())
                .max()
                .unwrap_or(0) as f64
                * 100.0
                / ports,
        )
    }
}

/// Sums counts and groups over namespaces. Port pressure is not summed: each
/// namespace has its own ports, so it stays per namespace.
pub fn total(samples: &[(Option<NsIdentity>, Sample)], spec: &Spec) -> Aggregate {
    let mut agg = Aggregate::new(spec.by, spec.group_states);
    for (_, s) in samples {
        agg.absorb(s.agg.clone());
    }
    agg
}

/// The counters summed over namespaces (the last readings), when every
/// namespace has them.
pub fn total_counters(samples: &[(Option<NsIdentity>, Sample)]) -> Option<Counters> {
    let readings: Option<Vec<&Counters>> = samples
        .iter()
        .map(|(_, s)| s.counters.as_ref().map(|r| &r.last))
        .collect();
    Counters::sum(readings?)
}
