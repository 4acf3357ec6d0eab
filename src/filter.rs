//! What the user asked to see: families, states, ports and addresses.
//! The netlink collector sends all of it to the kernel (see `diag::bytecode`);
//! sources that cannot filter (/proc, snapshots) call [`Query::matches`].
//!
//! Port and address filters combine as people write them for `ss`
//! (`( sport = :80 or sport = :81 ) and dst 10.0.0.0/8`): the values of one
//! filter flag are alternatives, and every flag given must match.

use std::fmt;
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
    /// The range holding only `p`.
    pub fn single(p: u16) -> PortRange {
        PortRange { lo: p, hi: p }
    }

    pub fn contains(self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }

    /// `N` or `N-M`, 0..=65535, N <= M, ASCII digits only (no sign, no spaces).
    /// The error names the bad value and what is valid.
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let port = |t: &str| -> Result<u16, String> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "invalid port '{s}': expected a port 0-65535 or a range N-M, digits only"
                ));
            }
            t.parse()
                .map_err(|_| format!("invalid port '{s}': {t} is out of range 0-65535"))
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
            None => port(s).map(PortRange::single),
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// An address with a prefix length (`10.0.0.0/8`, `::1`, `fe80::/10`).
/// An IPv4-mapped address is kept as the IPv4 address it maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    /// `ADDR` or `ADDR/LEN`; an IPv6 address may be written in one pair of
    /// brackets (`[fe80::1]/64`), an IPv4 address may not; LEN is ASCII digits.
    /// `::ffff:a.b.c.d/LEN` takes an IPv6 length (96-128) and becomes `a.b.c.d/(LEN-96)`.
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let bad = || {
            format!(
                "invalid address '{s}': expected an IPv4 or IPv6 address, optionally /PREFIX \
                 (e.g. 10.0.0.0/8, ::1, [fe80::1]/64)"
            )
        };
        let (host, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let (host, bracketed) = match host.strip_prefix('[') {
            Some(inner) => (inner.strip_suffix(']').ok_or_else(bad)?, true),
            None => (host, false),
        };
        let written: IpAddr = host.parse().map_err(|_| bad())?;
        if bracketed && written.is_ipv4() {
            return Err(format!(
                "invalid address '{s}': brackets go only around an IPv6 address (e.g. [::1])"
            ));
        }
        let addr = canonical(written);
        let max: u8 = if written.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None if addr.is_ipv4() => 32,
            None => 128,
            Some(l) => {
                let n = Some(l)
                    .filter(|l| {
                        !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|l| l.parse::<u8>().ok())
                    .filter(|&n| n <= max)
                    .ok_or_else(|| {
                        format!(
                            "invalid prefix length '{l}' in '{s}': expected 0-{max}, digits only"
                        )
                    })?;
                match (written, addr) {
                    (IpAddr::V6(_), IpAddr::V4(_)) if n < 96 => {
                        return Err(format!(
                            "invalid prefix length '{l}' in '{s}': an IPv4-mapped address takes 96-128"
                        ));
                    }
                    (IpAddr::V6(_), IpAddr::V4(_)) => n - 96,
                    _ => n,
                }
            }
        };
        Ok(Prefix { addr, len })
    }

    /// True when `addr` lies inside this prefix (both of the same family).
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

    /// The kernel's test for an address of a socket of `family` (`addr` as
    /// records hold it, IPv4-mapped ones unmapped). As in net/ipv4/inet_diag.c
    /// (`inet_diag_bc_run`): a prefix of the other family fails, except that an
    /// IPv4 prefix also matches an IPv4-mapped address of an IPv6 socket; an
    /// IPv6 prefix sees such an address as stored, `::ffff:a.b.c.d`, so `::/0`
    /// matches it.
    pub fn matches(&self, family: Family, addr: IpAddr) -> bool {
        match (family, self.addr, addr) {
            (Family::V4, IpAddr::V6(_), _) => false,
            (Family::V6, IpAddr::V6(_), IpAddr::V4(a)) => {
                self.contains(IpAddr::V6(a.to_ipv6_mapped()))
            }
            _ => self.contains(addr),
        }
    }

    /// False when no IPv4 socket can match: an IPv6 prefix.
    fn may_match_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }
}

impl fmt::Display for Prefix {
    /// The address alone for a single host, else `ADDR/LEN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.len == host {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// One condition on a socket's ports or addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cond {
    Port(Side, PortRange),
    Addr(Side, Prefix),
}

impl Cond {
    pub fn matches(&self, r: &SocketRecord) -> bool {
        let addr = |a: &Prefix, x: IpAddr| a.matches(r.family, x);
        match self {
            Cond::Port(Side::Local, p) => p.contains(r.local_port),
            Cond::Port(Side::Peer, p) => p.contains(r.peer_port),
            Cond::Port(Side::Either, p) => p.contains(r.local_port) || p.contains(r.peer_port),
            Cond::Addr(Side::Local, a) => addr(a, r.local),
            Cond::Addr(Side::Peer, a) => addr(a, r.peer),
            Cond::Addr(Side::Either, a) => addr(a, r.local) || addr(a, r.peer),
        }
    }

    fn may_match_ipv4(&self) -> bool {
        match self {
            Cond::Port(..) => true,
            Cond::Addr(_, a) => a.may_match_ipv4(),
        }
    }
}

impl fmt::Display for Cond {
    /// As the filter flags spell it: `port 80`, `peer-port 1000-2000`,
    /// `local 10.0.0.0/8`; an address at either end (no flag) is `address ::1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cond::Port(Side::Either, p) => write!(f, "port {p}"),
            Cond::Port(Side::Local, p) => write!(f, "local-port {p}"),
            Cond::Port(Side::Peer, p) => write!(f, "peer-port {p}"),
            Cond::Addr(Side::Either, a) => write!(f, "address {a}"),
            Cond::Addr(Side::Local, a) => write!(f, "local {a}"),
            Cond::Addr(Side::Peer, a) => write!(f, "peer {a}"),
        }
    }
}

/// Most port and address conditions one query may carry, over all groups.
/// The kernel's filter program is addressed with 16-bit offsets; this many of
/// the largest kind (an IPv6 prefix at either end, about 64 bytes with the
/// jump between alternatives) fit well (see `diag::bytecode`'s tests).
pub const MAX_CONDITIONS: usize = 64;

/// Conditions of which at least one must hold: the values of one filter flag.
/// An empty group matches nothing.
pub type AnyOf = Vec<Cond>;

/// Everything that decides which sockets are reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub ipv4: bool,
    pub ipv6: bool,
    pub states: StateSet,
    /// Port and address filters, a conjunction of disjunctions: a socket
    /// matches when each group has a condition it meets. The command line makes
    /// one group per filter flag: `--port 80 --port 81 --peer ::1` is
    /// `[[port 80, port 81], [peer ::1]]`. No groups: no filter.
    pub groups: Vec<AnyOf>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            ipv4: true,
            ipv6: true,
            states: StateSet::unfiltered(),
            groups: Vec::new(),
        }
    }
}

impl Query {
    /// This query narrowed by one more group (any of `group` must hold).
    pub fn and_any(mut self, group: AnyOf) -> Query {
        self.groups.push(group);
        self
    }

    /// This query narrowed by one more condition.
    pub fn and(self, c: Cond) -> Query {
        self.and_any(vec![c])
    }

    /// How many port and address conditions the query holds, over all groups.
    pub fn conditions(&self) -> usize {
        self.groups.iter().map(Vec::len).sum()
    }

    /// The families to dump. An IPv4 socket can match only when every group
    /// has a condition an IPv4 socket can meet (a port, or an IPv4 prefix), so
    /// `--peer ::1` rules the IPv4 dump out and `--peer 127.0.0.1 --peer ::1`
    /// does not. The IPv6 dump is always needed: IPv4-mapped peers live there.
    pub fn families(&self) -> Vec<Family> {
        let v4_possible = self
            .groups
            .iter()
            .all(|g| g.iter().any(Cond::may_match_ipv4));
        let mut out = Vec::with_capacity(2);
        if self.ipv4 && v4_possible {
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
        fam_ok
            && self.states.contains(r.state)
            && self.groups.iter().all(|g| g.iter().any(|c| c.matches(r)))
    }

    /// The port and address filter in words, one entry per group, every entry
    /// required: `(port 8080 or port 8081)`, `peer ::1`.
    pub fn describe_groups(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|g| match g.as_slice() {
                [] => "nothing".to_string(),
                [one] => one.to_string(),
                many => {
                    let alts: Vec<String> = many.iter().map(Cond::to_string).collect();
                    format!("({})", alts.join(" or "))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::TcpState;

    #[test]
    fn port_ranges() {
        assert_eq!(PortRange::parse("80").unwrap(), PortRange::single(80));
        assert_eq!(PortRange::parse("0").unwrap(), PortRange::single(0));
        assert_eq!(PortRange::parse("65535").unwrap(), PortRange::single(65535));
        assert_eq!(
            PortRange::parse("1000-2000").unwrap(),
            PortRange { lo: 1000, hi: 2000 }
        );
        assert_eq!(PortRange::parse("080").unwrap(), PortRange::single(80));
        for bad in [
            "70000",
            "-1",
            "x",
            "",
            "2000-1000",
            "1-",
            "65536-65537",
            "+80",
            " 80",
            "80 ",
            "8 0",
            "1000 - 2000",
            "1-+2",
            "1-2-3",
            "0x50",
            "٨٠",
            "99999999999999999999999",
        ] {
            let e = PortRange::parse(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(
            PortRange::parse("+80")
                .unwrap_err()
                .contains("0-65535 or a range N-M, digits only")
        );
    }

    #[test]
    fn prefixes_accepted() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for (text, addr, len) in [
            ("80.0.0.1", "80.0.0.1", 32),
            ("10.0.0.0/8", "10.0.0.0", 8),
            ("10.0.0.0/08", "10.0.0.0", 8),
            ("0.0.0.0/0", "0.0.0.0", 0),
            ("::1", "::1", 128),
            ("[::1]", "::1", 128),
            ("[fe80::1]/64", "fe80::1", 64),
            ("fe80::/10", "fe80::", 10),
            ("::/0", "::", 0),
            ("::ffff:10.0.0.1", "10.0.0.1", 32),
            ("[::ffff:10.0.0.1]", "10.0.0.1", 32),
            ("::ffff:10.0.0.0/104", "10.0.0.0", 8),
            ("::ffff:0.0.0.0/96", "0.0.0.0", 0),
        ] {
            let p = Prefix::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((p.addr, p.len), (ip(addr), len), "{text}");
        }
        let p = Prefix::parse("10.0.0.0/8").unwrap();
        assert!(p.contains(ip("10.2.3.4")));
        assert!(!p.contains(ip("11.2.3.4")));
        assert!(!p.contains(ip("::1")));
        assert!(Prefix::parse("::/0").unwrap().contains(ip("fe80::1")));
    }

    #[test]
    fn prefixes_refused() {
        for bad in [
            "1.2.3",
            "1.2.3.4/33",
            "::1/129",
            "",
            "x/8",
            "1.2.3.4/",
            "/8",
            "[[[::1]]]",
            "[[::1]]",
            "10.0.0.0/+8",
            "10.0.0.0/-8",
            "10.0.0.0/ 8",
            "10.0.0.0/8 ",
            " 10.0.0.1",
            "10.0.0.0/0008",
            "[10.0.0.1]",
            "[10.0.0.0]/8",
            "::1]",
            "[::1",
            "[::1/64]",
            "[::1]]",
            "[]",
            "::ffff:10.0.0.0/8",
            "::1%lo",
            "10.0.0.0/8/8",
            "localhost",
        ] {
            let e = Prefix::parse(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{bad}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(
            Prefix::parse("[10.0.0.1]")
                .unwrap_err()
                .contains("only around an IPv6 address")
        );
        assert!(
            Prefix::parse("10.0.0.0/+8")
                .unwrap_err()
                .contains("expected 0-32, digits only")
        );
    }

    fn record(family: Family, local: &str, lport: u16, peer: &str, pport: u16) -> SocketRecord {
        crate::socket::fixtures::record(family, TcpState::TimeWait, local, lport, peer, pport)
    }

    fn port(side: Side, p: u16) -> Cond {
        Cond::Port(side, PortRange::single(p))
    }

    fn addr(side: Side, a: &str) -> Cond {
        Cond::Addr(side, Prefix::parse(a).unwrap())
    }

    #[test]
    fn and_across_groups_or_within() {
        let r = record(Family::V6, "127.0.0.1", 40000, "127.0.0.2", 80);
        let q = Query::default()
            .and(port(Side::Either, 80))
            .and(addr(Side::Peer, "127.0.0.0/24"));
        assert!(q.matches(&r));
        assert!(!q.clone().and(port(Side::Local, 80)).matches(&r));
        // Either of two ports; the port that is not there does not veto.
        let two = Query::default().and_any(vec![port(Side::Either, 81), port(Side::Either, 80)]);
        assert!(two.matches(&r));
        let neither =
            Query::default().and_any(vec![port(Side::Either, 81), port(Side::Either, 82)]);
        assert!(!neither.matches(&r));
        // Two peers of different families, then AND a port.
        let peers =
            Query::default().and_any(vec![addr(Side::Peer, "::1"), addr(Side::Peer, "127.0.0.2")]);
        assert!(peers.matches(&r));
        assert!(!peers.clone().and(port(Side::Peer, 81)).matches(&r));
        assert!(peers.and(port(Side::Peer, 80)).matches(&r));
        // An empty group matches nothing.
        assert!(!Query::default().and_any(Vec::new()).matches(&r));
        let q4 = Query {
            ipv6: false,
            ..Query::default()
        };
        assert!(!q4.matches(&r));
    }

    #[test]
    fn ipv6_prefixes_see_mapped_addresses_as_the_kernel_does() {
        let mapped = record(Family::V6, "127.0.0.1", 1, "10.0.0.1", 2);
        let plain = record(Family::V4, "127.0.0.1", 1, "10.0.0.1", 2);
        for (p, on_mapped, on_plain) in [
            ("::/0", true, false),
            ("::ffff:0:0/96", true, true), // parsed as 0.0.0.0/0
            ("10.0.0.0/8", true, true),
            ("fe80::/10", false, false),
        ] {
            let q = Query::default().and(addr(Side::Peer, p));
            assert_eq!(q.matches(&mapped), on_mapped, "{p} on a mapped peer");
            assert_eq!(q.matches(&plain), on_plain, "{p} on an IPv4 socket");
        }
    }

    #[test]
    fn families_follow_address_groups() {
        let q = Query::default();
        assert_eq!(q.families(), vec![Family::V4, Family::V6]);
        let v6 = q.clone().and(addr(Side::Peer, "::1"));
        assert_eq!(v6.families(), vec![Family::V6]);
        // One IPv4 alternative keeps the IPv4 dump.
        let both = q
            .clone()
            .and_any(vec![addr(Side::Peer, "127.0.0.1"), addr(Side::Peer, "::1")]);
        assert_eq!(both.families(), vec![Family::V4, Family::V6]);
        // ...unless another group can only be met by IPv6 sockets.
        let and6 = both.clone().and(addr(Side::Local, "::1"));
        assert_eq!(and6.families(), vec![Family::V6]);
        // Ports do not narrow the family.
        let port_and_v4 = q
            .clone()
            .and(port(Side::Either, 80))
            .and(addr(Side::Peer, "10.0.0.0/8"));
        assert_eq!(port_and_v4.families(), vec![Family::V4, Family::V6]);
        let q4 = Query {
            ipv6: false,
            ..Query::default()
        };
        assert_eq!(q4.families(), vec![Family::V4]);
    }

    #[test]
    fn groups_in_words() {
        let q = Query::default()
            .and_any(vec![port(Side::Either, 8080), port(Side::Either, 8081)])
            .and(addr(Side::Peer, "::1"))
            .and(Cond::Port(Side::Local, PortRange { lo: 1000, hi: 2000 }))
            .and_any(vec![
                addr(Side::Local, "10.0.0.0/8"),
                addr(Side::Either, "::ffff:10.0.0.1"),
            ]);
        assert_eq!(
            q.describe_groups(),
            [
                "(port 8080 or port 8081)",
                "peer ::1",
                "local-port 1000-2000",
                "(local 10.0.0.0/8 or address 10.0.0.1)"
            ]
        );
        assert_eq!(q.conditions(), 6);
    }
}
