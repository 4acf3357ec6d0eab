//! The documented output model of `list`: plain data that every renderer reads.
//! Field names here are the JSON contract (README, "JSON output").

use std::net::IpAddr;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::aggregate::{Aggregate, GroupKey, GroupStats};
use crate::diagnose::Diagnosis;
pub use crate::host::procs::ProcessRef;
use crate::socket::SocketRecord;
use crate::state::TcpState;

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

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Families {
    pub ipv4: u64,
    pub ipv6: u64,
}

/// One group: the grouping keys that apply, its count and its timer spread.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct GroupRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_port: Option<u16>,
    pub count: u64,
    /// Soonest timer expiry in the group, ms (for TIME_WAIT: the first to leave).
    pub soonest_ms: Option<u32>,
    /// Latest timer expiry in the group, ms.
    pub latest_ms: Option<u32>,
}

/// What the top-N cut left out, so groups add up to the grouped total.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, Default)]
pub struct OtherGroups {
    pub groups: u64,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SocketRow {
    pub family: &'static str,
    pub state: &'static str,
    pub orphaned: bool,
    /// Addresses serialize as plain strings (`127.0.0.1`, `::1`); kept as
    /// addresses so that a row needs no heap memory of its own.
    pub local: IpAddr,
    pub local_port: u16,
    pub peer: IpAddr,
    pub peer_port: u16,
    pub timer: &'static str,
    pub expires_ms: u32,
    pub retransmits: u8,
    pub uid: u32,
    pub inode: u32,
    pub cookie: u64,
    pub recv_q: u32,
    pub send_q: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessRef>,
}

/// Everything `list` reports.
#[derive(Clone, Debug, Serialize)]
pub struct ListReport {
    /// Where the sockets came from: `netlink`, `proc` (fallback) or `snapshot`.
    pub source: String,
    /// Sockets that matched the filters.
    pub total: u64,
    pub states: StateCounts,
    /// The states asked of the kernel; a state outside it counts 0 because it was
    /// not looked at (`bound-inactive` is left out unless asked for).
    pub counted_states: Vec<&'static str>,
    pub families: Families,
    /// Orphaned sockets (closed by their application, still finishing) per state.
    pub orphaned: StateCounts,
    /// Which fields form a group, as `--by` spells them.
    pub group_by: String,
    /// The states the groups cover.
    pub group_states: Vec<&'static str>,
    pub groups: Vec<GroupRow>,
    pub other_groups: OtherGroups,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockets: Option<Vec<SocketRow>>,
    pub diagnoses: Vec<Diagnosis>,
    /// `-p` was given: renderers show an owner column even when no owner was found.
    #[serde(skip)]
    pub processes: bool,
    /// Time spent collecting from the kernel, in milliseconds (for a snapshot:
    /// the original capture's, 0 when the file does not say).
    pub collect_ms: f64,
    /// Present when the sockets come from a snapshot (`list --load`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotInfo>,
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

fn group_row(k: &GroupKey, s: &GroupStats) -> GroupRow {
    GroupRow {
        state: k.state.map(|s| s.name()),
        peer: k.peer.map(|a| a.to_string()),
        peer_port: k.peer_port,
        local: k.local.map(|a| a.to_string()),
        local_port: k.local_port,
        count: s.count,
        soonest_ms: s.expires_min_ms,
        latest_ms: s.expires_max_ms,
    }
}

pub fn socket_row(r: &SocketRecord) -> SocketRow {
    SocketRow {
        family: r.family.name(),
        state: r.state.name(),
        orphaned: r.orphaned,
        local: r.local,
        local_port: r.local_port,
        peer: r.peer,
        peer_port: r.peer_port,
        timer: r.timer.name(),
        expires_ms: r.expires_ms,
        retransmits: r.retransmits,
        uid: r.uid,
        inode: r.inode,
        cookie: r.cookie,
        recv_q: r.recv_q,
        send_q: r.send_q,
        process: None,
    }
}

impl ListReport {
    /// Builds the report from an aggregate; `top` = 0 keeps every group.
    pub fn new(
        agg: &Aggregate,
        top: u32,
        sockets: Option<&[SocketRecord]>,
        collect_ms: f64,
    ) -> ListReport {
        let sorted = agg.sorted_groups();
        let keep = if top == 0 {
            sorted.len()
        } else {
            (top as usize).min(sorted.len())
        };
        let other = &sorted[keep..];
        ListReport {
            source: "netlink".into(),
            total: agg.total,
            states: StateCounts(TcpState::ALL.iter().map(|s| (*s, agg.count(*s))).collect()),
            counted_states: TcpState::ALL.iter().map(|s| s.name()).collect(),
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
            group_states: agg.group_states.iter().map(|s| s.name()).collect(),
            groups: sorted[..keep]
                .iter()
                .map(|(k, s)| group_row(k, s))
                .collect(),
            other_groups: OtherGroups {
                groups: other.len() as u64,
                count: other.iter().map(|(_, s)| s.count).sum(),
            },
            sockets: sockets.map(|v| v.iter().map(socket_row).collect()),
            diagnoses: Vec::new(),
            processes: false,
            collect_ms,
            snapshot: None,
        }
    }

    /// Records which states were asked of the kernel.
    pub fn counted(mut self, states: crate::state::StateSet) -> ListReport {
        self.counted_states = states.iter().map(|s| s.name()).collect();
        self
    }
}

/// `list` over network namespaces (`--netns`, `--all-netns`): the totals over
/// every namespace at the top level, then each namespace's own report.
#[derive(Clone, Debug, Serialize)]
pub struct NetnsListReport {
    #[serde(flatten)]
    pub total: ListReport,
    pub namespaces: Vec<NamespaceReport>,
}

/// One namespace's report, under its label (name in /run/netns, `pid:PID (COMM)`, or the path given).
#[derive(Clone, Debug, Serialize)]
pub struct NamespaceReport {
    pub netns: String,
    #[serde(flatten)]
    pub report: ListReport,
}
