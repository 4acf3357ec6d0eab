//! What the user asked to see: families, states, ports and addresses.
//! The netlink collector sends all of it to the kernel (see `diag::bytecode`);
//! sources that cannot filter (/proc, snapshots) call [`Query::matches`].

use std::net::IpAddr;

use crate::socket::{Family, SocketRecord, canonical};
use crate::state::StateSet;

/// Which end of the connection a condition looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Local,
    Peer,
    Either,
}

/// An inclusive port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn contains(self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }

    /// `N` or `N-M`, 0..=65535, N <= M. The error names the bad value.
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let port = |t: &str| -> Result<u16, String> {
            let t = t.trim();
            let n: u64 = t.parse().map_err(|_| {
                format!("invalid port '{s}': expected a number 0-65535 or a range N-M")
            })?;
            u16::try_from(n).map_err(|_| format!("invalid port '{s}': {n} is out of range 0-65535"))
        };
        match s.split_once('-') {
            Some((a, b)) => {
                let (lo, hi) = (port(a)?, port(b)?);
                if lo > hi {
                    return Err(format!(
                        "invalid port range '{s}': {lo} is greater than {hi}"
                    ));
                }
                Ok(PortRange { lo, hi })
            }
            None => {
                let p = port(s)?;
                Ok(PortRange { lo: p, hi: p })
            }
        }
    }
}

/// An address with a prefix length (`10.0.0.0/8`, `::1`, `fe80::/10`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let a = a.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = a.parse().map_err(|_| {
            format!("invalid address '{s}': expected an IPv4 or IPv6 address, optionally /PREFIX")
        })?;
        let addr = canonical(addr);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match l {
            None => max,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => {
                    return Err(format!(
                        "invalid prefix length '{l}' in '{s}': expected 0-{max}"
                    ));
                }
            },
        };
        Ok(Prefix { addr, len })
    }

    /// True when `addr` (already canonical) lies inside this prefix.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.len)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.len)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// One condition; a query matches when all of its conditions do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Port(Side, PortRange),
    Addr(Side, Prefix),
}

/// Everything that decides which sockets are reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub ipv4: bool,
    pub ipv6: bool,
    pub states: StateSet,
    pub conds: Vec<Cond>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            ipv4: true,
            ipv6: true,
            states: StateSet::unfiltered(),
            conds: Vec::new(),
        }
    }
}

impl Query {
    /// The families to dump. An IPv4 address condition still needs the IPv6 dump,
    /// where IPv4-mapped peers live; an IPv6 (non-mapped) one rules out IPv4.
    pub fn families(&self) -> Vec<Family> {
        let v6_only_addr = self
            .conds
            .iter()
            .any(|c| matches!(c, Cond::Addr(_, p) if p.addr.is_ipv6()));
        let mut out = Vec::with_capacity(2);
        if self.ipv4 && !v6_only_addr {
            out.push(Family::V4);
        }
        if self.ipv6 {
            out.push(Family::V6);
        }
        out
    }

    /// The same test the kernel applies, for sources that cannot filter.
    pub fn matches(&self, r: &SocketRecord) -> bool {
        let fam_ok = match r.family {
            Family::V4 => self.ipv4,
            Family::V6 => self.ipv6,
        };
        fam_ok && self.states.contains(r.state) && self.conds.iter().all(|c| cond_matches(c, r))
    }
}

fn cond_matches(c: &Cond, r: &SocketRecord) -> bool {
    match *c {
        Cond::Port(Side::Local, p) => p.contains(r.local_port),
        Cond::Port(Side::Peer, p) => p.contains(r.peer_port),
        Cond::Port(Side::Either, p) => p.contains(r.local_port) || p.contains(r.peer_port),
        Cond::Addr(Side::Local, a) => a.contains(r.local),
        Cond::Addr(Side::Peer, a) => a.contains(r.peer),
        Cond::Addr(Side::Either, a) => a.contains(r.local) || a.contains(r.peer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::TcpState;

    #[test]
    fn port_ranges() {
        assert_eq!(
            PortRange::parse("80").unwrap(),
            PortRange { lo: 80, hi: 80 }
        );
        assert_eq!(
            PortRange::parse("1000-2000").unwrap(),
            PortRange { lo: 1000, hi: 2000 }
        );
        for bad in ["70000", "-1", "x", "", "2000-1000", "1-", "65536-65537"] {
            let e = PortRange::parse(bad).unwrap_err();
            assert!(
                e.contains(&format!("'{bad}'")) || e.contains("greater"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn prefixes() {
        let p = Prefix::parse("10.0.0.0/8").unwrap();
        assert!(p.contains("10.2.3.4".parse().unwrap()));
        assert!(!p.contains("11.2.3.4".parse().unwrap()));
        assert!(!p.contains("::1".parse().unwrap()));
        let m = Prefix::parse("::ffff:10.0.0.1").unwrap();
        assert_eq!(m.addr, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(m.len, 32);
        assert!(
            Prefix::parse("[::1]")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            Prefix::parse("::/0")
                .unwrap()
                .contains("fe80::1".parse().unwrap())
        );
        for bad in ["1.2.3", "1.2.3.4/33", "::1/129", "", "x/8", "1.2.3.4/"] {
            assert!(Prefix::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_like_the_kernel() {
        let mut r = SocketRecord::blank(Family::V6, TcpState::TimeWait);
        r.local = "127.0.0.1".parse().unwrap();
        r.peer = "127.0.0.2".parse().unwrap();
        r.local_port = 40000;
        r.peer_port = 80;
        let mut q = Query::default();
        q.conds
            .push(Cond::Port(Side::Either, PortRange { lo: 80, hi: 80 }));
        q.conds.push(Cond::Addr(
            Side::Peer,
            Prefix::parse("127.0.0.0/24").unwrap(),
        ));
        assert!(q.matches(&r));
        q.conds
            .push(Cond::Port(Side::Local, PortRange { lo: 80, hi: 80 }));
        assert!(!q.matches(&r));
        let q4 = Query {
            ipv6: false,
            ..Query::default()
        };
        assert!(!q4.matches(&r));
    }

    #[test]
    fn families_follow_address_conditions() {
        let mut q = Query::default();
        assert_eq!(q.families(), vec![Family::V4, Family::V6]);
        q.conds
            .push(Cond::Addr(Side::Peer, Prefix::parse("::1").unwrap()));
        assert_eq!(q.families(), vec![Family::V6]);
        let q = Query {
            ipv6: false,
            ..Query::default()
        };
        assert_eq!(q.families(), vec![Family::V4]);
    }
}
