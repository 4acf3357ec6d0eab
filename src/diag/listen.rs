//! The listening sockets of the current network namespace, for the diagnoses
//! (TIME_WAIT on listening ports) and the snapshot metadata. The kernel skips
//! its connection table when only LISTEN is asked for, so this dump costs
//! little even on a busy host.

use std::net::IpAddr;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::Options;
use super::parse::{ParseStats, parse_datagram};
use crate::filter::Query;
use crate::host::procs::ProcessRef;
use crate::socket::{Family, SocketRecord};
use crate::state::{StateSet, TcpState};

/// One listening socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub family: String,
    pub local: IpAddr,
    pub port: u16,
    /// Its socket inode, to find its process (0 when unknown: snapshots of
    /// format version 1 did not keep it).
    #[serde(default)]
    pub inode: u32,
    /// The process holding it, when known (a snapshot records it at capture).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessRef>,
}

/// Listening sockets of the current namespace, from a LISTEN-only dump (or
/// from /proc/net/tcp where the main collection falls back to it, so roles
/// and the diagnoses that need listeners work there too).
pub fn listeners() -> Result<Vec<Listener>> {
    let (c, _) = super::collect_any(
        &listen_query(),
        Options::default(),
        Vec::<SocketRecord>::new,
    )
    .context("reading listening sockets from the kernel")?;
    Ok(to_listeners(&c.sink))
}

/// The listeners of a `keep_raw` collection made with `query`: taken from its
/// own datagrams when it holds every listener (so saving costs no extra
/// dump), else from a LISTEN-only dump.
pub fn listeners_for(query: &Query, raw: &[(Family, Vec<u8>)]) -> Result<Vec<Listener>> {
    let complete = query.states.contains(TcpState::Listen)
        && query.groups.is_empty()
        && query.families() == [Family::V4, Family::V6];
    if !complete {
        return listeners();
    }
    let mut v = Vec::<SocketRecord>::new();
    let q = listen_query();
    let mut stats = ParseStats::default();
    for (_, data) in raw {
        // A family's datagrams end to end are one walk of messages up to its
        // NLMSG_DONE, as the dump loop read them.
        parse_datagram(data, None, &mut stats, |r| {
            if q.matches(r) {
                v.push(*r)
            }
        })
        .map_err(|e| anyhow::anyhow!("re-reading the capture: {e}"))?;
    }
    Ok(to_listeners(&v))
}

/// The query of a LISTEN-only dump.
pub fn listen_query() -> Query {
    Query {
        states: StateSet::from_states(&[TcpState::Listen]),
        ..Query::default()
    }
}

/// The listeners among `recs` (from a replayed dump).
pub fn from_records(recs: &[SocketRecord]) -> Vec<Listener> {
    let l: Vec<SocketRecord> = recs
        .iter()
        .filter(|r| r.state == TcpState::Listen)
        .copied()
        .collect();
    to_listeners(&l)
}

/// One entry per family, address and port, in port order.
fn to_listeners(recs: &[SocketRecord]) -> Vec<Listener> {
    let mut v: Vec<Listener> = recs
        .iter()
        .map(|r| Listener {
            family: r.family.name().into(),
            local: r.local,
            port: r.local_port,
            inode: r.inode,
            process: None,
        })
        .collect();
    v.sort_by(|a, b| (a.port, &a.family, a.local).cmp(&(b.port, &b.family, b.local)));
    // SO_REUSEPORT listeners share an address and port: one entry.
    v.dedup_by(|a, b| (a.port, &a.family, a.local) == (b.port, &b.family, b.local));
    v
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;
    use crate::diag::collect;

    fn has(v: &[Listener], port: u16) -> bool {
        v.iter()
            .any(|l| l.port == port && l.family == "ipv4" && l.local.to_string() == "127.0.0.1")
    }

    #[test]
    fn a_capture_and_a_listen_dump_both_find_a_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(has(&listeners().unwrap(), port));
        // Every state: read back from the capture's own datagrams.
        let all = Query::default();
        let c = collect(
            &all,
            Options {
                keep_raw: true,
                ..Options::default()
            },
            Vec::<SocketRecord>::new,
        )
        .unwrap();
        assert!(has(&listeners_for(&all, &c.raw).unwrap(), port));
        // TIME_WAIT only: the capture holds no listener, a LISTEN dump runs.
        let tw = Query {
            states: StateSet::from_states(&[TcpState::TimeWait]),
            ..Query::default()
        };
        let c = collect(
            &tw,
            Options {
                keep_raw: true,
                ..Options::default()
            },
            Vec::<SocketRecord>::new,
        )
        .unwrap();
        assert!(has(&listeners_for(&tw, &c.raw).unwrap(), port));
    }
}
