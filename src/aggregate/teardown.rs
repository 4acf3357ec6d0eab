//! The close sink: what the diagnoses need beyond the counts, gathered in the
//! same pass over the sockets.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use super::roles::{Role, Roles};
use crate::host::procs::ProcessRef;
use crate::socket::{Sink, SocketRecord};
use crate::state::TcpState;

/// One CLOSE_WAIT socket, as much of it as the reports need (24 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseWaitSock {
    pub inode: u32,
    pub local: IpAddr,
    pub local_port: u16,
    pub peer_port: u16,
    /// Milliseconds since the peer last sent anything, its FIN at the latest
    /// (`tcpi_last_ack_recv`); `None` when the dump did not ask for
    /// `INET_DIAG_INFO` (the summary's own dump, /proc, snapshots).
    pub age_ms: Option<u32>,
}

impl CloseWaitSock {
    pub fn of(r: &SocketRecord) -> CloseWaitSock {
        CloseWaitSock {
            inode: r.inode,
            local: r.local,
            local_port: r.local_port,
            peer_port: r.peer_port,
            age_ms: r.tcp_times.map(|t| t.last_ack_recv_ms),
        }
    }
}

/// CLOSE_WAIT sockets of one process: on one local port (incoming, a service
/// of this host), or on its outgoing connections taken together (their local
/// ports are ephemeral, one per socket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseWaitGroup {
    pub role: Role,
    /// `None` for outgoing connections.
    pub local_port: Option<u16>,
    pub owner: Option<ProcessRef>,
    pub count: u64,
    /// The longest wait since the peer closed, ms (`None`: not known).
    pub oldest_ms: Option<u32>,
}

/// CLOSE_WAIT sockets of one owner: how many, and the oldest age.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseWaitOwner {
    pub owner: Option<ProcessRef>,
    pub count: u64,
    pub oldest_ms: Option<u32>,
}

/// What the diagnoses need beyond [`Aggregate`](super::Aggregate): TIME_WAIT on listening ports,
/// the listening ports and the CLOSE_WAIT sockets. Memory grows with
/// listening ports and CLOSE_WAIT sockets only, never with TIME_WAIT.
#[derive(Clone, Debug, Default)]
pub struct Teardown {
    /// The listening ports, known before the dump, as a 65,536-bit set (8 KiB).
    watched: Option<Box<[u64]>>,
    /// TIME_WAIT per watched (listening) port.
    time_wait_by_port: foldhash::HashMap<u16, u64>,
    pub listen_ports: BTreeSet<u16>,
    pub close_wait: Vec<CloseWaitSock>,
    /// The first [`CLOSE_WAIT_IDS`] CLOSE_WAIT sockets whole, so that a few
    /// can be asked for again by exact id instead of by a second dump.
    pub close_wait_ids: Vec<SocketRecord>,
}

/// At most this many CLOSE_WAIT sockets are kept whole for exact lookups.
pub const CLOSE_WAIT_IDS: usize = 64;

impl Sink for Teardown {
    fn push(&mut self, r: &SocketRecord) {
        match r.state {
            TcpState::TimeWait => {
                let p = r.local_port as usize;
                if let Some(w) = &self.watched
                    && w[p / 64] & (1 << (p % 64)) != 0
                {
                    *self.time_wait_by_port.entry(r.local_port).or_insert(0) += 1;
                }
            }
            TcpState::Listen => {
                self.listen_ports.insert(r.local_port);
            }
            TcpState::CloseWait => {
                self.close_wait.push(CloseWaitSock::of(r));
                if self.close_wait_ids.len() < CLOSE_WAIT_IDS {
                    self.close_wait_ids.push(*r);
                }
            }
            _ => {}
        }
    }

    fn absorb(&mut self, other: Self) {
        for (p, n) in other.time_wait_by_port {
            *self.time_wait_by_port.entry(p).or_insert(0) += n;
        }
        self.listen_ports.extend(other.listen_ports);
        self.close_wait.extend(other.close_wait);
        let room = CLOSE_WAIT_IDS.saturating_sub(self.close_wait_ids.len());
        self.close_wait_ids
            .extend(other.close_wait_ids.into_iter().take(room));
    }
}

impl Teardown {
    /// Counts TIME_WAIT on these ports (the listening ones, read before the
    /// dump); without any, server-side TIME_WAIT is not counted.
    pub fn watching(ports: impl IntoIterator<Item = u16>) -> Teardown {
        let mut bits = vec![0u64; 1024].into_boxed_slice();
        for p in ports {
            bits[p as usize / 64] |= 1 << (p % 64);
        }
        Teardown {
            watched: Some(bits),
            ..Teardown::default()
        }
    }

    /// TIME_WAIT count per listening port, busiest first.
    pub fn server_time_wait(&self) -> Vec<(u16, u64)> {
        let mut v: Vec<(u16, u64)> = self
            .listen_ports
            .iter()
            .filter_map(|p| self.time_wait_by_port.get(p).map(|n| (*p, *n)))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// CLOSE_WAIT sockets per owning process (`None`: owner not found), busiest first.
    pub fn close_wait_owners(&self, owners: &HashMap<u32, ProcessRef>) -> Vec<CloseWaitOwner> {
        let mut by: HashMap<Option<u32>, CloseWaitOwner> = HashMap::new();
        for s in &self.close_wait {
            let owner = owners.get(&s.inode);
            let e = by
                .entry(owner.map(|p| p.pid))
                .or_insert_with(|| CloseWaitOwner {
                    owner: owner.cloned(),
                    count: 0,
                    oldest_ms: None,
                });
            e.count += 1;
            e.oldest_ms = e.oldest_ms.max(s.age_ms);
        }
        let mut v: Vec<CloseWaitOwner> = by.into_values().collect();
        let pid = |o: &CloseWaitOwner| o.owner.as_ref().map(|p| p.pid);
        v.sort_by(|a, b| b.count.cmp(&a.count).then(pid(a).cmp(&pid(b))));
        v
    }

    /// CLOSE_WAIT per (local port, owner) for incoming sockets, per owner for
    /// outgoing ones; busiest first, then the oldest.
    pub fn close_wait_groups(
        &self,
        owners: &HashMap<u32, ProcessRef>,
        roles: &Roles,
    ) -> Vec<CloseWaitGroup> {
        let mut by: HashMap<(Role, Option<u16>, Option<u32>), CloseWaitGroup> = HashMap::new();
        for s in &self.close_wait {
            let role = roles.of_parts(s.local, s.local_port, s.peer_port);
            let port = (role == Role::Incoming).then_some(s.local_port);
            let owner = owners.get(&s.inode);
            let e = by
                .entry((role, port, owner.map(|p| p.pid)))
                .or_insert_with(|| CloseWaitGroup {
                    role,
                    local_port: port,
                    owner: owner.cloned(),
                    count: 0,
                    oldest_ms: None,
                });
            e.count += 1;
            e.oldest_ms = e.oldest_ms.max(s.age_ms);
        }
        let mut v: Vec<CloseWaitGroup> = by.into_values().collect();
        v.sort_by(|a, b| {
            (b.count, b.oldest_ms)
                .cmp(&(a.count, a.oldest_ms))
                .then((a.role, a.local_port).cmp(&(b.role, b.local_port)))
                .then(
                    a.owner
                        .as_ref()
                        .map(|p| p.pid)
                        .cmp(&b.owner.as_ref().map(|p| p.pid)),
                )
        });
        v
    }

    /// The longest any CLOSE_WAIT socket has waited, ms, when known.
    pub fn oldest_close_wait(&self) -> Option<u32> {
        self.close_wait.iter().filter_map(|s| s.age_ms).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::socket::fixtures::v4 as rec;

    #[test]
    fn time_wait_counts_on_listening_ports_only() {
        // Port 8080 listens (known before the dump); 30000+ are client ports.
        let mut t = Teardown::watching([8080]);
        for i in 0..150u16 {
            t.push(&rec(
                TcpState::TimeWait,
                "10.0.0.1",
                8080,
                "10.0.0.9",
                30000 + i,
            ));
            t.push(&rec(
                TcpState::TimeWait,
                "10.0.0.1",
                30000 + i,
                "10.0.0.9",
                443,
            ));
        }
        assert!(t.server_time_wait().is_empty(), "no listener seen yet");
        assert_eq!(t.time_wait_by_port.len(), 1, "client ports are not counted");
        let mut l = Teardown::default();
        l.push(&rec(TcpState::Listen, "0.0.0.0", 8080, "0.0.0.0", 0));
        t.absorb(l);
        assert_eq!(t.server_time_wait(), vec![(8080, 150)]);
    }

    #[test]
    fn close_wait_by_port_and_owner_with_the_oldest_age() {
        use crate::diag::listen::Listener;
        use crate::socket::TcpTimes;
        let mut t = Teardown::default();
        let mut add = |inode: u32, lport: u16, pport: u16, age: Option<u32>| {
            let mut r = rec(TcpState::CloseWait, "10.0.0.1", lport, "10.0.0.9", pport);
            r.inode = inode;
            r.tcp_times = age.map(|a| TcpTimes {
                last_data_recv_ms: a + 5000,
                last_ack_recv_ms: a,
            });
            t.push(&r);
        };
        add(1, 8080, 40001, Some(3000));
        add(2, 8080, 40002, Some(9000));
        add(3, 8080, 40003, None);
        add(4, 45000, 5432, Some(100)); // this host's client, to a database
        add(5, 45001, 5432, Some(200));
        let app = ProcessRef {
            pid: 42,
            comm: "app".into(),
        };
        let owners: HashMap<u32, ProcessRef> = (1..=5).map(|i| (i, app.clone())).collect();
        let listeners = [Listener {
            family: "ipv4".into(),
            local: "0.0.0.0".parse().unwrap(),
            port: 8080,
            inode: 77,
            process: None,
        }];
        let roles = Roles::new(Some(&listeners), Some((32768, 60999)));
        let g = t.close_wait_groups(&owners, &roles);
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(
            (g[0].role, g[0].local_port, g[0].count, g[0].oldest_ms),
            (Role::Incoming, Some(8080), 3, Some(9000))
        );
        assert_eq!(
            (g[1].role, g[1].local_port, g[1].count, g[1].oldest_ms),
            (Role::Outgoing, None, 2, Some(200))
        );
        let o = t.close_wait_owners(&owners);
        assert_eq!((o[0].count, o[0].oldest_ms), (5, Some(9000)));
        assert_eq!(t.oldest_close_wait(), Some(9000));
    }
}
