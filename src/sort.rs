//! Socket rows in a chosen order (`list --sockets --sort KEY`): the one place
//! where rows are held.
//!
//! The first row of a sorted listing is known only once the last socket has
//! arrived, so a sorted listing keeps its sockets until the dump ends: every
//! record (about 80 bytes each, twice that at moments while the list grows: a
//! peak of 130 MiB for a million sockets), or only the N first in order with
//! `--top N` (a heap of N). Ties keep the kernel's order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::net::IpAddr;

use crate::socket::{Sink, SocketRecord, Timer};

/// What `--sort` orders socket rows by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// The kernel's state order (established first, as the summary lists them).
    State,
    /// Local address (IPv4 before IPv6), then local port.
    Local,
    /// Peer address (IPv4 before IPv6), then peer port.
    Peer,
    LocalPort,
    PeerPort,
    /// Time left on the timer, soonest first; sockets with no timer running last.
    Expires,
}

/// One comparable value per key: a class, an address, a number.
type Key = (u8, u128, u32);

fn address(a: IpAddr) -> (u8, u128) {
    match a {
        IpAddr::V4(v4) => (0, u32::from(v4) as u128),
        IpAddr::V6(v6) => (1, u128::from(v6)),
    }
}

impl SortKey {
    fn of(self, r: &SocketRecord) -> Key {
        match self {
            SortKey::State => (r.state.index() as u8, 0, 0),
            SortKey::Local => {
                let (c, a) = address(r.local);
                (c, a, r.local_port as u32)
            }
            SortKey::Peer => {
                let (c, a) = address(r.peer);
                (c, a, r.peer_port as u32)
            }
            SortKey::LocalPort => (0, 0, r.local_port as u32),
            SortKey::PeerPort => (0, 0, r.peer_port as u32),
            SortKey::Expires => (u8::from(r.timer == Timer::Off), 0, r.expires_ms),
        }
    }
}

/// A record with its key and arrival number, ordered by both.
#[derive(Debug)]
struct Entry {
    key: Key,
    seq: u64,
    rec: SocketRecord,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.key, self.seq) == (o.key, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.key, self.seq).cmp(&(o.key, o.seq))
    }
}

/// A sink that holds socket records and gives them back in `key` order.
#[derive(Debug)]
pub struct Sorted {
    key: SortKey,
    /// With `--top N`: the N first so far, the last of them on top.
    first: Option<(usize, BinaryHeap<Entry>)>,
    all: Vec<SocketRecord>,
    seq: u64,
}

impl Sorted {
    /// Holds every record, or with `limit` only that many (the first in order).
    pub fn new(key: SortKey, limit: Option<u64>) -> Sorted {
        Sorted {
            key,
            first: limit.map(|n| (n as usize, BinaryHeap::new())),
            all: Vec::new(),
            seq: 0,
        }
    }

    /// Hands the records to `sink` in order.
    pub fn drain_into(self, sink: &mut dyn Sink) {
        let records: Vec<SocketRecord> = match self.first {
            Some((_, heap)) => heap.into_sorted_vec().into_iter().map(|e| e.rec).collect(),
            None => {
                let mut all = self.all;
                let key = self.key;
                // Stable: ties keep the kernel's order.
                all.sort_by_key(|r| key.of(r));
                all
            }
        };
        for r in &records {
            if sink.stopped() {
                return;
            }
            sink.push(r);
        }
    }
}

impl Sink for Sorted {
    fn push(&mut self, r: &SocketRecord) {
        self.seq += 1;
        match &mut self.first {
            None => self.all.push(*r),
            Some((0, _)) => {}
            Some((n, heap)) => {
                let e = Entry {
                    key: self.key.of(r),
                    seq: self.seq,
                    rec: *r,
                };
                if heap.len() < *n {
                    heap.push(e);
                } else if heap.peek().is_some_and(|top| e < *top) {
                    heap.pop();
                    heap.push(e);
                }
            }
        }
    }
    /// Sorted rows are collected by one sink; merging keeps both sides.
    fn absorb(&mut self, o: Self) {
        match (&mut self.first, o.first) {
            (Some((n, heap)), Some((_, other))) => {
                for e in other {
                    heap.push(e);
                    if heap.len() > *n {
                        heap.pop();
                    }
                }
            }
            _ => self.all.extend(o.all),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::Family;
    use crate::state::TcpState;

    fn rec(state: TcpState, peer: &str, port: u16, expires: Option<u32>, tag: u32) -> SocketRecord {
        let mut r = SocketRecord::blank(Family::V4, state);
        r.peer = peer.parse().unwrap();
        r.peer_port = port;
        r.local_port = 60000 - port;
        if let Some(ms) = expires {
            r.timer = Timer::TimeWait;
            r.expires_ms = ms;
        }
        r.inode = tag;
        r
    }

    fn order(key: SortKey, limit: Option<u64>, recs: &[SocketRecord]) -> Vec<u32> {
        let mut s = Sorted::new(key, limit);
        for r in recs {
            s.push(r);
        }
        let mut out: Vec<SocketRecord> = Vec::new();
        s.drain_into(&mut out);
        out.iter().map(|r| r.inode).collect()
    }

    fn sample() -> Vec<SocketRecord> {
        vec![
            rec(TcpState::TimeWait, "10.0.0.2", 80, Some(500), 1),
            rec(TcpState::Established, "::1", 443, None, 2),
            rec(TcpState::TimeWait, "10.0.0.1", 443, Some(200), 3),
            rec(TcpState::Established, "10.0.0.1", 80, None, 4),
            rec(TcpState::TimeWait, "10.0.0.10", 22, Some(200), 5),
        ]
    }

    #[test]
    fn each_key_orders_and_ties_keep_the_kernel_order() {
        let s = sample();
        assert_eq!(order(SortKey::State, None, &s), [2, 4, 1, 3, 5]);
        assert_eq!(order(SortKey::Peer, None, &s), [4, 3, 1, 5, 2]);
        assert_eq!(order(SortKey::PeerPort, None, &s), [5, 1, 4, 2, 3]);
        assert_eq!(order(SortKey::LocalPort, None, &s), [2, 3, 1, 4, 5]);
        assert_eq!(order(SortKey::Expires, None, &s), [3, 5, 1, 2, 4]);
        assert_eq!(order(SortKey::Local, None, &s), [2, 3, 1, 4, 5]);
    }

    #[test]
    fn a_limit_keeps_the_first_in_order() {
        let s = sample();
        for key in [SortKey::State, SortKey::Peer, SortKey::Expires] {
            for n in 0..=6 {
                let all = order(key, None, &s);
                assert_eq!(
                    order(key, Some(n), &s),
                    all[..(n as usize).min(all.len())],
                    "{key:?} top {n}"
                );
            }
        }
    }
}
