//! The documented output model of `list`: plain data that every renderer reads.
//! Field names here are the JSON contract (README, "JSON output").

use std::net::IpAddr;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use crate::aggregate::conntrack::{CtAggregate, CtGroup};
use crate::aggregate::{Aggregate, CloseWaitGroup, GroupKey, GroupStats, Pressure, Role};
use crate::conntrack::CtState;
use crate::diagnose::Diagnosis;
use crate::host::conntrack::{CtStats, CtTable};
use crate::host::counters::{COUNTERS, Counters, Readings};
pub use crate::host::identity::NsIdentity;
pub use crate::host::netns::Skipped;
pub use crate::host::procs::ProcessRef;
use crate::socket::{Family, SocketRecord, Timer};
use crate::state::{MAX_STATE, StateSet, TcpState};

/// Counts for every state, serialized as an object in kernel order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateCounts(pub Vec<(TcpState, u64)>);

impl StateCounts {
    pub fn get(&self, s: TcpState) -> u64 {
        self.0
            .iter()
            .find(|(st, _)| *st == s)
            .map_or(0, |(_, n)| *n)
    }
}

impl Serialize for StateCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (st, n) in &self.0 {
            m.serialize_entry(st.name(), n)?;
        }
        m.end()
    }
}

/// Counts per state, with the states that were counted: a state not counted
/// has no count (JSON `null`), as 0 would claim it was looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Indexed by [`TcpState::index`].
    pub counts: [u64; MAX_STATE],
    pub counted: StateSet,
}

impl Counts {
    pub fn get(&self, s: TcpState) -> Option<u64> {
        self.counted.contains(s).then(|| self.counts[s.index()])
    }
}

/// Every state in kernel order, `null` for those not counted.
impl Serialize for Counts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(MAX_STATE))?;
        for st in TcpState::ALL {
            m.serialize_entry(st.name(), &self.get(st))?;
        }
        m.end()
    }
}

/// Why the counted states are the ones they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CountedBasis {
    /// The states asked of the kernel (live).
    Asked,
    /// The states a `list --save` snapshot was captured with.
    Captured,
    /// An `ss -D` dump does not record which states it asked for: only the
    /// states found in it count as seen.
    Found,
}

/// Which states were counted, and on what grounds. The JSON fields
/// `counted_states` and `counted_basis`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Counted {
    #[serde(rename = "counted_states", serialize_with = "state_names")]
    pub states: StateSet,
    #[serde(rename = "counted_basis")]
    pub basis: CountedBasis,
}

impl Counted {
    pub fn asked(states: StateSet) -> Counted {
        Counted {
            states,
            basis: CountedBasis::Asked,
        }
    }

    pub fn captured(states: StateSet) -> Counted {
        Counted {
            states,
            basis: CountedBasis::Captured,
        }
    }

    pub fn found(states: StateSet) -> Counted {
        Counted {
            states,
            basis: CountedBasis::Found,
        }
    }
}

/// A state set as an array of names in kernel order.
fn state_names<S: Serializer>(set: &StateSet, s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(None)?;
    for st in set.iter() {
        seq.serialize_element(st.name())?;
    }
    seq.end()
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Families {
    pub ipv4: u64,
    pub ipv6: u64,
}

/// One group: the grouping keys that apply, its count and its timer spread.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GroupRow {
    /// In the role view (the default): `incoming` or `outgoing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<TcpState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_port: Option<u16>,
    pub count: u64,
    /// Soonest timer expiry in the group, ms (for TIME_WAIT: the first to leave).
    pub soonest_ms: Option<u32>,
    /// Latest timer expiry in the group, ms.
    pub latest_ms: Option<u32>,
    /// Incoming groups: whether a listener holds this address and port now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listening: Option<bool>,
    /// Incoming groups: the listening process, when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessRef>,
    /// The listener's socket inode, to look its process up (0: none).
    #[serde(skip)]
    pub listener_inode: u32,
    /// Outgoing groups: ephemeral ports still free towards this destination
    /// (the usable ports minus those held from the busiest local address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headroom: Option<u64>,
}

/// What the top-N cut left out, so groups add up to the grouped total.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, Default)]
pub struct OtherGroups {
    pub groups: u64,
    pub count: u64,
}

/// What the top-N cut left out of each role (the role view).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, Default)]
pub struct RoleOthers {
    pub incoming: OtherGroups,
    pub outgoing: OtherGroups,
}

impl RoleOthers {
    pub fn get(&self, r: Role) -> OtherGroups {
        match r {
            Role::Incoming => self.incoming,
            Role::Outgoing => self.outgoing,
        }
    }
}

/// Sockets per role for each state: the JSON `roles` object, a state not
/// counted is `null`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleCounts {
    /// Indexed by [`Role::index`], then [`TcpState::index`].
    pub counts: [[u64; MAX_STATE]; 2],
    pub counted: StateSet,
}

impl Serialize for RoleCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Pair {
            incoming: u64,
            outgoing: u64,
        }
        let mut m = s.serialize_map(Some(MAX_STATE))?;
        for st in TcpState::ALL {
            let pair = self.counted.contains(st).then(|| Pair {
                incoming: self.counts[0][st.index()],
                outgoing: self.counts[1][st.index()],
            });
            m.serialize_entry(st.name(), &pair)?;
        }
        m.end()
    }
}

/// The kernel's counters, every one tw-inspect reads: `nstat` name → value,
/// `null` where this kernel lacks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterValues(pub Counters);

impl Serialize for CounterValues {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(COUNTERS.len()))?;
        for c in COUNTERS {
            m.serialize_entry(c.nstat, &self.0.get(c.nstat))?;
        }
        m.end()
    }
}

/// How much the counters grew between two readings.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CounterChange {
    /// Seconds between the readings.
    pub interval_s: f64,
    /// `nstat` name → growth (counters only, not gauges).
    pub growth: Counters,
}

/// CLOSE_WAIT sockets of one local port and process (incoming), or of one
/// process's outgoing connections.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CloseWaitRow {
    pub role: Role,
    /// `null` for outgoing connections (one ephemeral port each).
    pub local_port: Option<u16>,
    pub count: u64,
    /// The longest wait since the peer closed (`tcpi_last_ack_recv`), ms;
    /// `null` when not known.
    pub oldest_ms: Option<u32>,
    pub process: Option<ProcessRef>,
}

/// One socket as `--sockets` reports it. The fields, in this order, are the
/// JSON contract of a socket object; `render::rows` writes them as each socket
/// arrives (and is tested to write exactly what serde writes for this struct).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct SocketRow<'a> {
    pub family: Family,
    pub state: TcpState,
    pub orphaned: bool,
    /// Addresses serialize as plain strings (`127.0.0.1`, `::1`); kept as
    /// addresses so that a row needs no heap memory of its own.
    pub local: IpAddr,
    pub local_port: u16,
    pub peer: IpAddr,
    pub peer_port: u16,
    pub timer: Timer,
    pub expires_ms: u32,
    pub retransmits: u8,
    pub uid: u32,
    pub inode: u32,
    pub cookie: u64,
    pub recv_q: u32,
    pub send_q: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<&'a ProcessRef>,
}

/// Everything `list` reports.
#[derive(Clone, Debug, Serialize)]
pub struct ListReport {
    /// Where the sockets came from: `netlink`, `proc` (fallback) or `snapshot`.
    pub source: String,
    /// Sockets that matched the filters.
    pub total: u64,
    /// Per state; `null` for a state not counted.
    pub states: Counts,
    /// The states counted (`bound-inactive` is left out unless asked for), and why.
    #[serde(flatten)]
    pub counted: Counted,
    pub families: Families,
    /// Orphaned sockets (closed by their application, still finishing) per state.
    pub orphaned: StateCounts,
    /// Which fields form a group, as `--by` spells them.
    pub group_by: String,
    /// The states the groups cover.
    pub group_states: Vec<TcpState>,
    pub groups: Vec<GroupRow>,
    pub other_groups: OtherGroups,
    /// The role view: what the cut left out of each role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_roles: Option<RoleOthers>,
    /// Sockets per role for each counted state, when the listeners were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<RoleCounts>,
    /// CLOSE_WAIT per local port and process (busiest first, cut to `--top`),
    /// when CLOSE_WAIT was counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_wait: Option<Vec<CloseWaitRow>>,
    /// What the cut left out of `close_wait`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_wait_other: Option<OtherGroups>,
    /// The longest any CLOSE_WAIT socket has waited since its peer closed, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_wait_oldest_ms: Option<u32>,
    /// The kernel's TCP counters (the last reading), when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<CounterValues>,
    /// Their growth between two readings (before and after the dumps; the
    /// previous sample with `--watch`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters_change: Option<CounterChange>,
    pub diagnoses: Vec<Diagnosis>,
    /// Time spent collecting from the kernel, in milliseconds (for a snapshot:
    /// the original capture's, 0 when the file does not say).
    pub collect_ms: f64,
    /// Present when the sockets come from a snapshot (`list --load`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotInfo>,
    /// This namespace's conntrack table: with `--conntrack`, or in the table
    /// view when it is notable. Absent otherwise, and in the totals over
    /// several namespaces (each has its own table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<ConntrackReport>,
    /// Counts per address family (ipv4, ipv6) and state, indexed by
    /// [`TcpState::index`]: the Prometheus series (JSON has the sums).
    #[serde(skip)]
    pub family_states: [[u64; MAX_STATE]; 2],
    /// Ports held by outgoing sockets per destination (TIME_WAIT that connect()
    /// takes over left out) as a share of the usable ephemeral ports, busiest first, cut to `top` (the Prometheus series; the
    /// diagnoses say the same in words). Empty when the ports are unknown.
    #[serde(skip)]
    pub port_pressure: Vec<PressureRow>,
}

/// One destination's share of the usable ephemeral ports (1 = exhausted).
#[derive(Clone, Debug, PartialEq)]
pub struct PressureRow {
    pub local: IpAddr,
    pub peer: IpAddr,
    pub peer_port: u16,
    pub ratio: f64,
}

/// Which snapshot a report was computed from (docs/snapshot-format.md).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub file: String,
    /// `tw-inspect` (from `list --save`) or `ss-dump` (from `ss -D`).
    pub format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u16>,
    /// Hostname of the captured machine.
    pub host: Option<String>,
    /// Its kernel release.
    pub kernel: Option<String>,
    /// Capture time, RFC 3339 UTC.
    pub taken_at: Option<String>,
    pub netns_inode: Option<u64>,
    /// The states the capture asked for; sockets in other states are not in the file.
    pub captured_states: Option<Vec<String>>,
    /// The port/address conditions the capture ran with.
    pub captured_filter: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn group_row(agg: &Aggregate, k: &GroupKey, s: &GroupStats) -> GroupRow {
    let listener = match (k.role, k.local_port) {
        (Some(Role::Incoming), Some(port)) => Some(match k.local {
            Some(a) => agg.roles.listener(a, port),
            None => agg.roles.listener_on_port(port),
        }),
        _ => None,
    };
    GroupRow {
        role: k.role,
        state: k.state,
        peer: k.peer,
        peer_port: k.peer_port,
        local: k.local,
        local_port: k.local_port,
        count: s.count,
        soonest_ms: s.expires_min_ms,
        latest_ms: s.expires_max_ms,
        listening: listener.map(|l| l.is_some()),
        process: listener.flatten().and_then(|l| l.process.clone()),
        listener_inode: listener.flatten().map_or(0, |l| l.inode),
        headroom: None,
    }
}

/// The groups kept by the top-N cut, and what it left out. In the role view
/// the cut is per role (incoming first), and the incoming groups of `keep`
/// ports are always kept (as 0 when there are none).
fn cut_groups(
    agg: &Aggregate,
    top: u32,
    keep: &[u16],
) -> (Vec<GroupRow>, OtherGroups, Option<RoleOthers>) {
    let sorted = agg.sorted_groups();
    let take = |v: &[(GroupKey, GroupStats)]| -> (Vec<GroupRow>, OtherGroups) {
        let n = if top == 0 {
            v.len()
        } else {
            (top as usize).min(v.len())
        };
        let rest = &v[n..];
        (
            v[..n].iter().map(|(k, s)| group_row(agg, k, s)).collect(),
            OtherGroups {
                groups: rest.len() as u64,
                count: rest.iter().map(|(_, s)| s.count).sum(),
            },
        )
    };
    if !agg.by.role {
        let (rows, other) = take(&sorted);
        return (rows, other, None);
    }
    let mut rows = Vec::new();
    let mut others = RoleOthers::default();
    for role in Role::ALL {
        let mine: Vec<(GroupKey, GroupStats)> = sorted
            .iter()
            .filter(|(k, _)| k.role == Some(role))
            .copied()
            .collect();
        let kept = |k: &GroupKey| {
            role == Role::Incoming && k.local_port.is_some_and(|p| keep.contains(&p))
        };
        let (pinned, free): (Vec<_>, Vec<_>) = mine.into_iter().partition(|(k, _)| kept(k));
        let (mut r, other) = take(&free);
        if role == Role::Incoming {
            for p in keep {
                if let Some((k, s)) = pinned.iter().find(|(k, _)| k.local_port == Some(*p)) {
                    r.push(group_row(agg, k, s));
                } else {
                    let k = GroupKey {
                        role: Some(Role::Incoming),
                        peer: None,
                        peer_port: None,
                        local: None,
                        local_port: Some(*p),
                        state: None,
                    };
                    r.push(group_row(agg, &k, &GroupStats::EMPTY));
                }
            }
        }
        rows.extend(r);
        match role {
            Role::Incoming => others.incoming = other,
            Role::Outgoing => others.outgoing = other,
        }
    }
    let total = OtherGroups {
        groups: others.incoming.groups + others.outgoing.groups,
        count: others.incoming.count + others.outgoing.count,
    };
    (rows, total, Some(others))
}

/// The row of `r`, with its owner when one was found.
pub fn socket_row<'a>(r: &SocketRecord, process: Option<&'a ProcessRef>) -> SocketRow<'a> {
    SocketRow {
        family: r.family,
        state: r.state,
        orphaned: r.orphaned,
        local: r.local,
        local_port: r.local_port,
        peer: r.peer,
        peer_port: r.peer_port,
        timer: r.timer,
        expires_ms: r.expires_ms,
        retransmits: r.retransmits,
        uid: r.uid,
        inode: r.inode,
        cookie: r.cookie,
        recv_q: r.recv_q,
        send_q: r.send_q,
        process,
    }
}

impl ListReport {
    /// Builds the report from an aggregate; `top` = 0 keeps every group.
    /// States outside `counted` get no count, whatever the aggregate holds.
    pub fn new(agg: &Aggregate, top: u32, collect_ms: f64, counted: Counted) -> ListReport {
        ListReport::new_keeping(agg, top, &[], collect_ms, counted)
    }

    /// As [`ListReport::new`], always keeping the incoming groups of `keep`
    /// ports (Prometheus' `--prom-port`).
    pub fn new_keeping(
        agg: &Aggregate,
        top: u32,
        keep: &[u16],
        collect_ms: f64,
        counted: Counted,
    ) -> ListReport {
        let (groups, other_groups, other_roles) = cut_groups(agg, top, keep);
        ListReport {
            source: "netlink".into(),
            total: agg.total,
            states: Counts {
                counts: agg.states,
                counted: counted.states,
            },
            counted,
            families: Families {
                ipv4: agg.by_family[0],
                ipv6: agg.by_family[1],
            },
            orphaned: StateCounts(
                TcpState::ALL
                    .iter()
                    .filter(|s| agg.orphaned[s.index()] > 0)
                    .map(|s| (*s, agg.orphaned[s.index()]))
                    .collect(),
            ),
            group_by: agg.by.name(),
            group_states: agg.group_states.iter().collect(),
            groups,
            other_groups,
            other_roles,
            roles: agg.roles.known().then_some(RoleCounts {
                counts: agg.role_states,
                counted: counted.states,
            }),
            close_wait: None,
            close_wait_other: None,
            close_wait_oldest_ms: None,
            counters: None,
            counters_change: None,
            diagnoses: Vec::new(),
            collect_ms,
            snapshot: None,
            conntrack: None,
            family_states: agg.family_states,
            port_pressure: Vec::new(),
        }
    }

    /// Adds the destinations' share of `usable` ephemeral ports (unknown or 0:
    /// none), and the headroom of each outgoing group; `top` = 0 keeps every
    /// destination.
    pub fn with_pressure(mut self, p: &Pressure, usable: Option<u64>, top: u32) -> ListReport {
        let Some(usable) = usable.filter(|n| *n > 0) else {
            return self;
        };
        // Held ports per (peer, port), from the local address that holds most.
        let mut held: std::collections::HashMap<(IpAddr, u16), u64> =
            std::collections::HashMap::new();
        for (d, u) in &p.per_destination {
            let e = held.entry((d.peer, d.peer_port)).or_insert(0);
            *e = (*e).max(u.held());
        }
        for g in &mut self.groups {
            if let (Some(Role::Outgoing), Some(peer), Some(port)) = (g.role, g.peer, g.peer_port) {
                let h = held.get(&(peer, port)).copied().unwrap_or(0);
                g.headroom = Some(usable.saturating_sub(h));
            }
        }
        let mut dests = p.sorted();
        if top > 0 {
            dests.truncate(top as usize);
        }
        self.port_pressure = dests
            .into_iter()
            .map(|(d, n)| PressureRow {
                local: d.local,
                peer: d.peer,
                peer_port: d.peer_port,
                ratio: n.held() as f64 / usable as f64,
            })
            .collect();
        self
    }

    /// Adds the kernel's counters: the last reading, and the growth between
    /// the two when they differ in time.
    pub fn with_counters(mut self, r: Option<&Readings>) -> ListReport {
        if let Some(r) = r {
            self.counters = Some(CounterValues(r.last.clone()));
            let (growth, interval_s) = r.growth();
            if r.last_at > r.first_at {
                self.counters_change = Some(CounterChange { interval_s, growth });
            }
        }
        self
    }

    /// Adds CLOSE_WAIT per local port and process, cut to `top` (0 keeps all),
    /// and the oldest age. Only when CLOSE_WAIT was counted.
    pub fn with_close_wait(
        mut self,
        groups: &[CloseWaitGroup],
        oldest: Option<u32>,
        top: u32,
    ) -> ListReport {
        if !self.counted.states.contains(TcpState::CloseWait) {
            return self;
        }
        let n = if top == 0 {
            groups.len()
        } else {
            (top as usize).min(groups.len())
        };
        self.close_wait = Some(
            groups[..n]
                .iter()
                .map(|g| CloseWaitRow {
                    role: g.role,
                    local_port: g.local_port,
                    count: g.count,
                    oldest_ms: g.oldest_ms,
                    process: g.owner.clone(),
                })
                .collect(),
        );
        let rest = &groups[n..];
        self.close_wait_other = Some(OtherGroups {
            groups: rest.len() as u64,
            count: rest.iter().map(|g| g.count).sum(),
        });
        self.close_wait_oldest_ms = oldest;
        self
    }
}

/// One namespace's conntrack table: its size against the limit, its
/// counters, and (when they could be read) its entries beside the sockets.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ConntrackReport {
    /// `in-use` (the table holds entries), `not-in-use` (empty: nothing is
    /// tracked in this namespace) or `not-loaded` (no nf_conntrack in this kernel).
    pub status: &'static str,
    /// `nf_conntrack_count`: entries now, every protocol.
    pub count: Option<u64>,
    /// `nf_conntrack_max` (host-wide limit each namespace's table is held to).
    pub max: Option<u64>,
    /// `count / max`, 0 to 1.
    pub fill: Option<f64>,
    /// `nf_conntrack_buckets` (host-wide).
    pub buckets: Option<u64>,
    /// `nf_conntrack_tcp_timeout_time_wait`, seconds.
    pub tcp_timeout_time_wait: Option<u64>,
    /// `nf_conntrack_tcp_timeout_established`, seconds.
    pub tcp_timeout_established: Option<u64>,
    /// Counters summed over CPUs since the namespace started (`null` when
    /// /proc/net/stat/nf_conntrack cannot be read).
    pub stats: Option<CtStats>,
    /// The entries, `null` when not read (`entries_note` says why).
    pub entries: Option<ConntrackEntries>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries_note: Option<String>,
}

/// The counted entries of one conntrack table.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ConntrackEntries {
    /// Entries dumped, every protocol (may differ a little from `count`,
    /// which was read a moment apart).
    pub total: u64,
    pub tcp: u64,
    pub udp: u64,
    pub other: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    /// Translated entries (NAT).
    pub nat: u64,
    /// Every TCP conntrack state in kernel order, with the matching sockets.
    pub states: Vec<ConntrackStateRow>,
    /// The TCP destinations (original direction) with the most TIME_WAIT entries.
    pub destinations: Vec<ConntrackGroupRow>,
    pub other_destinations: ConntrackOther,
    /// The TCP sources (original direction) with the most TIME_WAIT entries.
    pub sources: Vec<ConntrackGroupRow>,
    pub other_sources: ConntrackOther,
    /// Time spent dumping and counting, in milliseconds.
    pub collect_ms: f64,
}

/// TCP conntrack entries in one state and the sockets in the matching states.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ConntrackStateRow {
    pub state: CtState,
    pub conntrack: u64,
    /// Sockets in `socket_states` in this namespace; `null` when one of them
    /// was not counted or the state has no socket counterpart.
    pub sockets: Option<u64>,
    pub socket_states: Vec<TcpState>,
}

/// One destination (address and port) or source (address, `port` null).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ConntrackGroupRow {
    pub address: IpAddr,
    pub port: Option<u16>,
    /// TCP entries.
    pub tcp: u64,
    pub time_wait: u64,
}

/// What the top-N cut (and the group cap) left out.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Default)]
pub struct ConntrackOther {
    pub groups: u64,
    pub tcp: u64,
    pub time_wait: u64,
}

impl ConntrackReport {
    /// The report of one table. `entries` are the counted entries or why
    /// none were; `sockets` the same namespace's socket counts, beside them.
    pub fn new(
        t: &CtTable,
        entries: Result<(&CtAggregate, f64), String>,
        sockets: &Counts,
        top: u32,
    ) -> ConntrackReport {
        let status = if !t.loaded {
            "not-loaded"
        } else if t.in_use() {
            "in-use"
        } else {
            "not-in-use"
        };
        let (entries, entries_note) = match entries {
            Ok((a, ms)) => (Some(ConntrackEntries::new(a, sockets, top, ms)), None),
            Err(note) => (None, Some(note)),
        };
        ConntrackReport {
            status,
            count: t.count,
            max: t.max,
            fill: t.fill(),
            buckets: t.buckets,
            tcp_timeout_time_wait: t.tcp_timeout_time_wait,
            tcp_timeout_established: t.tcp_timeout_established,
            stats: t.stats,
            entries,
            entries_note,
        }
    }
}

fn cut<K: Copy>(
    sorted: Vec<(K, CtGroup)>,
    beyond: CtGroup,
    top: u32,
    row: impl Fn(K, CtGroup) -> ConntrackGroupRow,
) -> (Vec<ConntrackGroupRow>, ConntrackOther) {
    let keep = if top == 0 {
        sorted.len()
    } else {
        (top as usize).min(sorted.len())
    };
    let rest = &sorted[keep..];
    let other = ConntrackOther {
        groups: rest.len() as u64 + (beyond.tcp > 0) as u64,
        tcp: rest.iter().map(|(_, g)| g.tcp).sum::<u64>() + beyond.tcp,
        time_wait: rest.iter().map(|(_, g)| g.time_wait).sum::<u64>() + beyond.time_wait,
    };
    let rows = sorted[..keep].iter().map(|(k, g)| row(*k, *g)).collect();
    (rows, other)
}

impl ConntrackEntries {
    pub fn new(a: &CtAggregate, sockets: &Counts, top: u32, collect_ms: f64) -> ConntrackEntries {
        let states = CtState::ALL
            .iter()
            .map(|st| {
                let socket_states = st.socket_states().to_vec();
                let sockets = if socket_states.is_empty() {
                    None
                } else {
                    socket_states
                        .iter()
                        .map(|s| sockets.get(*s))
                        .sum::<Option<u64>>()
                };
                ConntrackStateRow {
                    state: *st,
                    conntrack: a.count(*st),
                    sockets,
                    socket_states,
                }
            })
            .collect();
        let (destinations, other_destinations) = cut(
            a.destinations.sorted(),
            a.destinations.beyond,
            top,
            |(addr, port), g| ConntrackGroupRow {
                address: addr,
                port: Some(port),
                tcp: g.tcp,
                time_wait: g.time_wait,
            },
        );
        let (sources, other_sources) = cut(a.sources.sorted(), a.sources.beyond, top, |addr, g| {
            ConntrackGroupRow {
                address: addr,
                port: None,
                tcp: g.tcp,
                time_wait: g.time_wait,
            }
        });
        ConntrackEntries {
            total: a.total,
            tcp: a.tcp,
            udp: a.udp,
            other: a.other,
            ipv4: a.by_family[0],
            ipv6: a.by_family[1],
            nat: a.nat,
            states,
            destinations,
            other_destinations,
            sources,
            other_sources,
            collect_ms,
        }
    }

    /// The row of one state.
    pub fn state(&self, s: CtState) -> &ConntrackStateRow {
        &self.states[s.index()]
    }
}

/// `list` over network namespaces (`--netns`, `--all-netns`): the totals over
/// every namespace at the top level, then each namespace's own report.
#[derive(Clone, Debug, Serialize)]
pub struct NetnsListReport {
    #[serde(flatten)]
    pub total: ListReport,
    pub namespaces: Vec<NamespaceReport>,
    /// Namespaces found but not read (deleted, half made, replaced or not
    /// enterable during the run), with the reason; empty when none.
    pub skipped: Vec<Skipped>,
}

/// Everything one `list` run writes, in any format.
#[derive(Clone, Debug)]
pub enum ListDocument {
    /// One source (this namespace, or a snapshot).
    One(ListReport),
    /// `--netns`/`--all-netns`: each namespace's report and the totals.
    Namespaces(NetnsListReport),
}

/// One namespace's report, under its stable label (`host`, its name in
/// /run/netns, its container or pod, or `net:[INODE]`), with who it belongs to.
#[derive(Clone, Debug, Serialize)]
pub struct NamespaceReport {
    pub netns: String,
    pub identity: NsIdentity,
    #[serde(flatten)]
    pub report: ListReport,
}

impl NamespaceReport {
    pub fn new(identity: NsIdentity, report: ListReport) -> NamespaceReport {
        NamespaceReport {
            netns: identity.name.clone(),
            identity,
            report,
        }
    }
}

/// Reports built from socket records, for the renderers' tests.
#[cfg(test)]
pub mod fixtures {
    use super::*;
    use crate::aggregate::GroupBy;
    use crate::socket::Sink;

    /// `records` counted as `counted` says (records in other states are left
    /// out, as the kernel would), grouped by `by` over `group_states`; every group kept.
    pub fn report(
        records: &[SocketRecord],
        by: GroupBy,
        group_states: StateSet,
        counted: Counted,
    ) -> ListReport {
        let kept: Vec<SocketRecord> = records
            .iter()
            .filter(|r| counted.states.contains(r.state))
            .copied()
            .collect();
        let mut agg = Aggregate::new(by, group_states);
        for r in &kept {
            agg.push(r);
        }
        ListReport::new(&agg, 0, 1.5, counted)
    }

    /// The outgoing sockets among `records` per destination.
    pub fn pressure(records: &[SocketRecord], range: (u16, u16)) -> Pressure {
        let mut p = Pressure::new(range);
        for r in records {
            p.push(r);
        }
        p
    }
}
