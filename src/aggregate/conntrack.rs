//! Pure conntrack aggregation: entries in, counts per TCP conntrack state and
//! per original-direction destination and source out. Memory grows with the
//! number of groups, and at most [`MAX_GROUPS`] of each kind are kept: the
//! entries of any further group are summed apart, so nothing is lost from the
//! totals however many clients a NAT gateway tracks.

use std::net::IpAddr;

use foldhash::HashMap;

use crate::conntrack::{CT_STATES, CtEntry, CtState, PROTO_TCP, PROTO_UDP};
use crate::socket::Family;

/// Distinct destinations (and, apart, sources) counted one by one.
pub const MAX_GROUPS: usize = 65_536;

/// TCP entries of one group, and how many of them are in TIME_WAIT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtGroup {
    pub tcp: u64,
    pub time_wait: u64,
}

impl CtGroup {
    fn add(&mut self, tw: bool) {
        self.tcp += 1;
        self.time_wait += tw as u64;
    }

    fn merge(&mut self, o: CtGroup) {
        self.tcp += o.tcp;
        self.time_wait += o.time_wait;
    }
}

/// Groups of one kind, capped at [`MAX_GROUPS`].
#[derive(Clone, Debug)]
pub struct CappedGroups<K> {
    pub groups: HashMap<K, CtGroup>,
    /// Entries whose group arrived after the cap was reached.
    pub beyond: CtGroup,
}

impl<K> Default for CappedGroups<K> {
    fn default() -> Self {
        CappedGroups {
            groups: HashMap::default(),
            beyond: CtGroup::default(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Copy + Ord> CappedGroups<K> {
    fn add(&mut self, k: K, tw: bool) {
        let n = self.groups.len();
        match self.groups.get_mut(&k) {
            Some(g) => g.add(tw),
            None if n < MAX_GROUPS => self.groups.entry(k).or_default().add(tw),
            None => self.beyond.add(tw),
        }
    }

    fn absorb(&mut self, o: CappedGroups<K>) {
        for (k, g) in o.groups {
            let n = self.groups.len();
            match self.groups.get_mut(&k) {
                Some(mine) => mine.merge(g),
                None if n < MAX_GROUPS => {
                    self.groups.insert(k, g);
                }
                None => self.beyond.merge(g),
            }
        }
        self.beyond.merge(o.beyond);
    }

    /// Groups by TIME_WAIT count, then TCP count (descending), ties by key.
    pub fn sorted(&self) -> Vec<(K, CtGroup)> {
        let mut v: Vec<_> = self.groups.iter().map(|(k, g)| (*k, *g)).collect();
        v.sort_by(|a, b| {
            (b.1.time_wait, b.1.tcp)
                .cmp(&(a.1.time_wait, a.1.tcp))
                .then(a.0.cmp(&b.0))
        });
        v
    }
}

/// Counts over one conntrack table.
#[derive(Clone, Debug, Default)]
pub struct CtAggregate {
    /// Every entry, any protocol.
    pub total: u64,
    pub tcp: u64,
    pub udp: u64,
    /// Protocols other than TCP and UDP (ICMP, SCTP, GRE, ...).
    pub other: u64,
    /// TCP entries per conntrack state, indexed by [`CtState::index`].
    pub states: [u64; CT_STATES],
    /// TCP entries whose state number this build does not know.
    pub unknown_state: u64,
    pub by_family: [u64; 2],
    /// Translated entries (NAT): their sockets, if any, are not where the tuple says.
    pub nat: u64,
    /// TCP entries by original destination address and port.
    pub destinations: CappedGroups<(IpAddr, u16)>,
    /// TCP entries by original source address.
    pub sources: CappedGroups<IpAddr>,
}

impl CtAggregate {
    pub fn push(&mut self, e: &CtEntry) {
        self.total += 1;
        self.by_family[match e.family {
            Family::V4 => 0,
            Family::V6 => 1,
        }] += 1;
        if e.is_nat() {
            self.nat += 1;
        }
        match e.proto {
            PROTO_TCP => {}
            PROTO_UDP => {
                self.udp += 1;
                return;
            }
            _ => {
                self.other += 1;
                return;
            }
        }
        self.tcp += 1;
        match e.tcp_state {
            Some(s) => self.states[s.index()] += 1,
            None => self.unknown_state += 1,
        }
        let tw = e.tcp_state == Some(CtState::TimeWait);
        self.destinations.add((e.dst, e.dport), tw);
        self.sources.add(e.src, tw);
    }

    pub fn count(&self, s: CtState) -> u64 {
        self.states[s.index()]
    }

    /// Adds another namespace's counts.
    pub fn absorb(&mut self, o: CtAggregate) {
        self.total += o.total;
        self.tcp += o.tcp;
        self.udp += o.udp;
        self.other += o.other;
        for i in 0..CT_STATES {
            self.states[i] += o.states[i];
        }
        self.unknown_state += o.unknown_state;
        self.by_family[0] += o.by_family[0];
        self.by_family[1] += o.by_family[1];
        self.nat += o.nat;
        self.destinations.absorb(o.destinations);
        self.sources.absorb(o.sources);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(state: CtState, src: &str, dst: &str, dport: u16) -> CtEntry {
        let mut e = CtEntry::blank(Family::V4, PROTO_TCP, Some(state));
        e.src = src.parse().unwrap();
        e.dst = dst.parse().unwrap();
        e.dport = dport;
        e.reply_src = e.dst;
        e.reply_dst = e.src;
        e
    }

    #[test]
    fn counts_states_protocols_and_groups() {
        let mut a = CtAggregate::default();
        for _ in 0..3 {
            a.push(&tcp(CtState::TimeWait, "10.0.0.1", "10.0.0.9", 80));
        }
        a.push(&tcp(CtState::Established, "10.0.0.2", "10.0.0.9", 80));
        a.push(&tcp(CtState::TimeWait, "10.0.0.2", "10.0.0.8", 443));
        a.push(&CtEntry::blank(Family::V6, PROTO_UDP, None));
        a.push(&CtEntry::blank(Family::V4, 1, None));
        assert_eq!((a.total, a.tcp, a.udp, a.other), (7, 5, 1, 1));
        assert_eq!(a.count(CtState::TimeWait), 4);
        assert_eq!(a.by_family, [6, 1]);
        assert_eq!(a.nat, 0);
        let d = a.destinations.sorted();
        assert_eq!(d[0].0, ("10.0.0.9".parse().unwrap(), 80));
        assert_eq!(
            d[0].1,
            CtGroup {
                tcp: 4,
                time_wait: 3
            }
        );
        let s = a.sources.sorted();
        assert_eq!(
            s[0].1,
            CtGroup {
                tcp: 3,
                time_wait: 3
            }
        );
        let mut nat = tcp(CtState::TimeWait, "10.0.0.1", "10.0.0.9", 80);
        nat.reply_src = "192.168.1.5".parse().unwrap();
        a.push(&nat);
        assert_eq!(a.nat, 1);
        let mut b = a.clone();
        b.absorb(a);
        assert_eq!(b.count(CtState::TimeWait), 10);
        assert_eq!(b.destinations.sorted()[0].1.time_wait, 8);
    }

    #[test]
    fn groups_beyond_the_cap_are_summed_not_lost() {
        let mut g: CappedGroups<u32> = CappedGroups::default();
        for k in 0..(MAX_GROUPS as u32 + 10) {
            g.add(k, k % 2 == 0);
        }
        g.add(0, true);
        assert_eq!(g.groups.len(), MAX_GROUPS);
        assert_eq!(g.beyond.tcp, 10);
        assert_eq!(g.groups[&0].tcp, 2);
    }
}
