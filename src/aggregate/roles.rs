//! Roles: whether a socket is the server side of a connection (incoming) or
//! the client side (outgoing), judged from the listening sockets read before
//! the dump.
//!
//! A socket is **incoming** when its local address and port are a listener's:
//! the same port, and the same address or a wildcard listener (`0.0.0.0` or
//! `::`, of either family: a wildcard IPv6 listener also accepts IPv4, and
//! addresses are canonical, so an IPv4-mapped listener or connection is plain
//! IPv4 here). A listener that has gone away (a server stopped while its
//! TIME_WAIT sockets run out) cannot be matched; such a socket still counts as
//! incoming when its local port is outside the ephemeral range (so `connect()`
//! did not pick it) and its peer's port is inside it (so the peer's did).
//! Everything else is **outgoing**. The listening sockets themselves are
//! incoming.

use std::net::IpAddr;

use serde::Serialize;

use crate::diag::listen::Listener;
use crate::host::procs::ProcessRef;
use crate::socket::SocketRecord;

/// The side of a connection a socket is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Its local address and port are (or were) a listener's: the server side.
    Incoming,
    /// The client side: it connected to someone.
    Outgoing,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Incoming, Role::Outgoing];

    pub fn name(self) -> &'static str {
        match self {
            Role::Incoming => "incoming",
            Role::Outgoing => "outgoing",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Role::Incoming => 0,
            Role::Outgoing => 1,
        }
    }
}

/// One listener as the classifier keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listening {
    pub port: u16,
    /// `None` for a wildcard listener.
    pub addr: Option<IpAddr>,
    /// Its socket inode (0 when unknown), to name its process.
    pub inode: u32,
    /// Its process, when the listener list already knows it (snapshots).
    pub process: Option<ProcessRef>,
}

/// The classifier: the listening sockets of one namespace and its ephemeral
/// port range. Built once before a dump; one bit test per socket on the hot
/// path, and a short scan only for sockets on a listening port.
#[derive(Clone, Debug, Default)]
pub struct Roles {
    /// Listening ports as a 65,536-bit set (8 KiB); `None` when there are none.
    ports: Option<Box<[u64]>>,
    /// Sorted by port; specific addresses before wildcards.
    listeners: Vec<Listening>,
    /// `ip_local_port_range`, for the gone-listener rule.
    range: Option<(u16, u16)>,
    /// Whether the listeners were read at all (a known empty set differs
    /// from an unknown one).
    known: bool,
}

impl Roles {
    /// From the listeners read before the dump (`None`: not known) and the
    /// ephemeral range (`None`: not known; the gone-listener rule is then off).
    pub fn new(listeners: Option<&[Listener]>, range: Option<(u16, u16)>) -> Roles {
        let mut v: Vec<Listening> = listeners
            .unwrap_or_default()
            .iter()
            .map(|l| Listening {
                port: l.port,
                addr: (!l.local.is_unspecified()).then_some(l.local),
                inode: l.inode,
                process: l.process.clone(),
            })
            .collect();
        v.sort_by_key(|l| (l.port, l.addr.is_none(), l.addr));
        v.dedup_by_key(|l| (l.port, l.addr));
        let ports = (!v.is_empty()).then(|| {
            let mut bits = vec![0u64; 1024].into_boxed_slice();
            for l in &v {
                bits[l.port as usize / 64] |= 1 << (l.port % 64);
            }
            bits
        });
        Roles {
            ports,
            listeners: v,
            range,
            known: listeners.is_some() || range.is_some(),
        }
    }

    /// True when roles mean something here: the listeners or the range are known.
    pub fn known(&self) -> bool {
        self.known
    }

    /// The role of a socket.
    #[inline]
    pub fn of(&self, r: &SocketRecord) -> Role {
        self.of_parts(r.local, r.local_port, r.peer_port)
    }

    /// The role of a socket with this local address and port and peer port.
    #[inline]
    pub fn of_parts(&self, local: IpAddr, local_port: u16, peer_port: u16) -> Role {
        if let Some(bits) = &self.ports {
            let p = local_port as usize;
            if bits[p / 64] & (1 << (p % 64)) != 0 && self.listener(local, local_port).is_some() {
                return Role::Incoming;
            }
        }
        match self.range {
            Some((lo, hi))
                if !(lo..=hi).contains(&local_port) && (lo..=hi).contains(&peer_port) =>
            {
                Role::Incoming
            }
            _ => Role::Outgoing,
        }
    }

    /// The listener a socket with this local address and port belongs to:
    /// one bound to that address, else a wildcard one.
    pub fn listener(&self, local: IpAddr, port: u16) -> Option<&Listening> {
        let start = self.listeners.partition_point(|l| l.port < port);
        self.listeners[start..]
            .iter()
            .take_while(|l| l.port == port)
            .find(|l| l.addr.is_none_or(|a| a == local))
    }

    /// A listener on this port, any address (for groups keyed by port only).
    pub fn listener_on_port(&self, port: u16) -> Option<&Listening> {
        let start = self.listeners.partition_point(|l| l.port < port);
        self.listeners.get(start).filter(|l| l.port == port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::Family;
    use crate::state::TcpState;

    fn l(local: &str, port: u16, inode: u32) -> Listener {
        Listener {
            family: if local.contains(':') { "ipv6" } else { "ipv4" }.into(),
            local: local.parse().unwrap(),
            port,
            inode,
            process: None,
        }
    }

    fn role(r: &Roles, local: &str, lport: u16, pport: u16) -> Role {
        r.of_parts(local.parse().unwrap(), lport, pport)
    }

    #[test]
    fn listeners_make_incoming() {
        let ls = [
            l("0.0.0.0", 80, 1),
            l("127.0.0.1", 8080, 2),
            l("::", 443, 3),
            // An IPv4-mapped listener is stored as IPv4 (canonical).
            l("10.0.0.7", 9000, 4),
        ];
        let r = Roles::new(Some(&ls), Some((32768, 60999)));
        // Wildcard: any address, IPv4 or IPv6.
        assert_eq!(role(&r, "10.1.2.3", 80, 50000), Role::Incoming);
        assert_eq!(role(&r, "::1", 80, 50000), Role::Incoming);
        // A wildcard IPv6 listener accepts IPv4 (mapped, here canonical).
        assert_eq!(role(&r, "192.168.1.1", 443, 40000), Role::Incoming);
        // A specific address: only that address.
        assert_eq!(role(&r, "127.0.0.1", 8080, 40000), Role::Incoming);
        assert_eq!(role(&r, "127.0.0.2", 8080, 80), Role::Outgoing);
        assert_eq!(role(&r, "10.0.0.7", 9000, 1), Role::Incoming);
        // A client's ephemeral port to someone's 80.
        assert_eq!(role(&r, "10.1.2.3", 45000, 80), Role::Outgoing);
        assert_eq!(
            r.listener("10.9.9.9".parse().unwrap(), 80).unwrap().inode,
            1
        );
        assert_eq!(r.listener_on_port(8080).unwrap().inode, 2);
        assert!(r.listener_on_port(81).is_none());
    }

    #[test]
    fn a_gone_listener_is_judged_by_the_ports() {
        let r = Roles::new(Some(&[]), Some((32768, 60999)));
        // Port 80 is no ephemeral port, the peer's 51000 is: the server side.
        assert_eq!(role(&r, "10.0.0.1", 80, 51000), Role::Incoming);
        // NFS-style: a reserved local port to a service port: outgoing.
        assert_eq!(role(&r, "10.0.0.1", 700, 2049), Role::Outgoing);
        // Without the range, nothing but listeners makes incoming.
        let unknown = Roles::new(Some(&[]), None);
        assert_eq!(role(&unknown, "10.0.0.1", 80, 51000), Role::Outgoing);
        assert!(unknown.known());
        assert!(!Roles::default().known());
    }

    #[test]
    fn specific_addresses_are_preferred_to_wildcards() {
        let ls = [l("0.0.0.0", 80, 1), l("127.0.0.1", 80, 2)];
        let r = Roles::new(Some(&ls), None);
        assert_eq!(
            r.listener("127.0.0.1".parse().unwrap(), 80).unwrap().inode,
            2
        );
        assert_eq!(
            r.listener("127.0.0.9".parse().unwrap(), 80).unwrap().inode,
            1
        );
        let mut rec = SocketRecord::blank(Family::V4, TcpState::Listen);
        rec.local_port = 80;
        assert_eq!(r.of(&rec), Role::Incoming, "a listener is incoming");
    }
}
