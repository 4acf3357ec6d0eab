//! The close sink: what the diagnoses need beyond the counts, gathered in the
//! same pass over the sockets.

use std::collections::{BTreeSet, HashMap};

use crate::host::procs::ProcessRef;
use crate::socket::{Sink, SocketRecord};
use crate::state::TcpState;

/// What the diagnoses need beyond [`Aggregate`](super::Aggregate): TIME_WAIT on listening ports,
/// the listening ports and the inodes of CLOSE_WAIT sockets. Memory grows with
/// listening ports and CLOSE_WAIT sockets only, never with TIME_WAIT.
#[derive(Clone, Debug, Default)]
pub struct Teardown {
    /// The listening ports, known before the dump, as a 65,536-bit set (8 KiB).
    watched: Option<Box<[u64]>>,
    /// TIME_WAIT per watched (listening) port.
    time_wait_by_port: foldhash::HashMap<u16, u64>,
    pub listen_ports: BTreeSet<u16>,
    pub close_wait_inodes: Vec<u32>,
}

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
            TcpState::CloseWait => self.close_wait_inodes.push(r.inode),
            _ => {}
        }
    }

    fn absorb(&mut self, other: Self) {
        for (p, n) in other.time_wait_by_port {
            *self.time_wait_by_port.entry(p).or_insert(0) += n;
        }
        self.listen_ports.extend(other.listen_ports);
        self.close_wait_inodes.extend(other.close_wait_inodes);
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
    pub fn close_wait_owners(
        &self,
        owners: &HashMap<u32, ProcessRef>,
    ) -> Vec<(Option<ProcessRef>, u64)> {
        let mut counts: HashMap<Option<u32>, (Option<&ProcessRef>, u64)> = HashMap::new();
        for ino in &self.close_wait_inodes {
            let owner = owners.get(ino);
            counts.entry(owner.map(|p| p.pid)).or_insert((owner, 0)).1 += 1;
        }
        let mut v: Vec<(Option<ProcessRef>, u64)> =
            counts.into_values().map(|(p, n)| (p.cloned(), n)).collect();
        v.sort_by(|a, b| {
            b.1.cmp(&a.1).then(
                a.0.as_ref()
                    .map(|p| p.pid)
                    .cmp(&b.0.as_ref().map(|p| p.pid)),
            )
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::Family;

    fn rec(state: TcpState, local: &str, lport: u16, peer: &str, pport: u16) -> SocketRecord {
        let mut r = SocketRecord::blank(Family::V4, state);
        r.local = local.parse().unwrap();
        r.local_port = lport;
        r.peer = peer.parse().unwrap();
        r.peer_port = pport;
        r
    }

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
}
